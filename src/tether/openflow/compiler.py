"""The flow compiler: what one hypervisor must know of the model -> its complete flow set.

:class:`AgentView` is the part of the model one chassis needs: its own ports (with their
OpenFlow port numbers), the networks they are in (every host address of each, where the
MACs behind other VTEPs live, which VTEPs carry it), and the router interfaces attached to
those networks. :func:`compile_flows` turns it into the flows of
:mod:`tether.openflow.pipeline` — the same view always gives the same ``frozenset``, so the
agent diffs it against what the switch holds and applies only the difference. Pure.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from tether.openflow.flows import (
    IN_PORT,
    Action,
    Controller,
    DecTtl,
    Flow,
    Goto,
    Load,
    Move,
    Output,
    SetField,
    match,
)
from tether.openflow.pipeline import (
    BROADCAST_BIT,
    COOKIE,
    ETH_ARP,
    ETH_IP,
    FROM_TUNNEL_REG,
    NETWORK,
    PORT_REG,
    UDP,
    Table,
)

__all__ = ["AgentView", "LocalPort", "NetworkView", "RouterInterface", "compile_flows"]

Fields = dict[str, str | int | None]


@dataclass(frozen=True, slots=True)
class LocalPort:
    """A VM interface on this hypervisor."""

    port_id: str
    network: str
    mac: str
    ips: tuple[str, ...]
    ofport: int
    key: int
    """The number naming the port in ``reg6`` (unique on this hypervisor; the agent uses
    its OpenFlow port)."""


@dataclass(frozen=True, slots=True)
class NetworkView:
    id: str
    vni: int
    key: int
    """The network's number in ``metadata`` (unique on this hypervisor, never 0; the agent
    uses its VNI)."""
    hosts: Mapping[str, str] = field(default_factory=dict)
    """IP -> MAC of every port of the network, wherever it lives (the ARP responder)."""
    remote: Mapping[str, str] = field(default_factory=dict)
    """MAC -> tunnel IP of the VTEP it lives behind (another chassis or a gateway)."""
    vteps: frozenset[str] = frozenset()
    """Tunnel IPs of the other VTEPs carrying the network (broadcast replication)."""
    dhcp: bool = True
    """The agent answers DHCP for the network's ports."""


@dataclass(frozen=True, slots=True)
class RouterInterface:
    router: str
    network: str
    ip: str
    mac: str
    cidr: str
    """The subnet the interface serves (its hosts are routed to)."""


@dataclass(frozen=True, slots=True)
class AgentView:
    tunnel_ofport: int
    """The flow-based VXLAN port (``options:remote_ip=flow, key=flow``)."""
    networks: Mapping[str, NetworkView]
    ports: tuple[LocalPort, ...] = ()
    routers: tuple[RouterInterface, ...] = ()


def compile_flows(view: AgentView) -> frozenset[Flow]:
    """Every flow the hypervisor's integration bridge should hold."""
    return frozenset(
        [
            *_ingress(view),
            *_port_security(view),
            *_arp_responder(view),
            *_dhcp(view),
            *_l3(view),
            *_l2_lookup(view),
            *_flood(view),
        ]
    )


def _flow(
    table: Table,
    priority: int,
    fields: Mapping[str, str | int | None],
    *actions: Action,
    why: str = "",
) -> Flow:
    return Flow(int(table), priority, match(**fields), tuple(actions), COOKIE, why)


def _default(table: Table, *actions: Action) -> Flow:
    return _flow(table, 0, {}, *actions, why="table miss")


def _ingress(view: AgentView) -> Iterator[Flow]:
    for port in view.ports:
        network = view.networks.get(port.network)
        if network is None:
            continue
        yield _flow(
            Table.INGRESS,
            100,
            {"in_port": port.ofport},
            Load(NETWORK, network.key),
            Load(PORT_REG, port.key),
            Goto(Table.PORT_SECURITY),
            why=f"port {port.port_id}",
        )
    for network in view.networks.values():
        yield _flow(
            Table.INGRESS,
            100,
            {"in_port": view.tunnel_ofport, "tun_id": network.vni},
            Load(NETWORK, network.key),
            Load(FROM_TUNNEL_REG, 1),
            Goto(Table.L2_LOOKUP),
            why=f"tunnel traffic of network {network.id}",
        )
    yield _default(Table.INGRESS)


def _port_security(view: AgentView) -> Iterator[Flow]:
    next_table = Goto(Table.ARP_RESPONDER)
    for port in view.ports:
        if port.network not in view.networks:
            continue
        base: Fields = {"in_port": port.ofport, "dl_src": port.mac}
        if not port.ips:  # no address to hold it to: the MAC alone
            yield _flow(Table.PORT_SECURITY, 100, base, next_table, why="MAC only")
            continue
        for ip in port.ips:
            if ":" in ip:
                continue  # IPv6 is not carried yet: dropped
            yield _flow(
                Table.PORT_SECURITY, 100, {**base, "dl_type": ETH_IP, "nw_src": ip}, next_table
            )
            arp = {**base, "dl_type": ETH_ARP, "arp_spa": ip, "arp_sha": port.mac}
            yield _flow(Table.PORT_SECURITY, 100, arp, next_table)
        discover = {
            **base,
            "dl_type": ETH_IP,
            "nw_src": "0.0.0.0",
            "nw_proto": UDP,
            "tp_dst": 67,
        }
        yield _flow(Table.PORT_SECURITY, 90, discover, next_table, why="DHCP before an address")
    yield _default(Table.PORT_SECURITY)


def _arp_responder(view: AgentView) -> Iterator[Flow]:
    routers: dict[str, list[RouterInterface]] = {}
    for interface in view.routers:
        routers.setdefault(interface.network, []).append(interface)
    for network in view.networks.values():
        answers = dict(network.hosts)
        for interface in routers.get(network.id, ()):
            answers[interface.ip] = interface.mac
        for ip, mac in sorted(answers.items()):
            if ":" in ip:
                continue
            fields: Fields = {
                "metadata": network.key,
                "dl_type": ETH_ARP,
                "arp_op": 1,
                "arp_tpa": ip,
            }
            yield _flow(
                Table.ARP_RESPONDER,
                100,
                fields,
                Move("dl_src", "dl_dst"),
                SetField("dl_src", mac),
                Load("arp_op", 2),
                Move("arp_sha", "arp_tha"),
                Move("arp_spa", "arp_tpa"),
                SetField("arp_sha", mac),
                SetField("arp_spa", ip),
                Output(IN_PORT),
                why=f"{ip} is at {mac}",
            )
    yield _default(Table.ARP_RESPONDER, Goto(Table.DHCP))


def _dhcp(view: AgentView) -> Iterator[Flow]:
    for port in view.ports:
        network = view.networks.get(port.network)
        if network is None or not network.dhcp:
            continue
        fields: Fields = {"in_port": port.ofport, "dl_type": ETH_IP, "nw_proto": UDP, "tp_dst": 67}
        yield _flow(Table.DHCP, 100, fields, Controller(), why=f"DHCP of {port.port_id}")
    yield _default(Table.DHCP, Goto(Table.L3))


def _l3(view: AgentView) -> Iterator[Flow]:
    by_router: dict[str, list[RouterInterface]] = {}
    for interface in view.routers:
        by_router.setdefault(interface.router, []).append(interface)
    for interfaces in by_router.values():
        for source in interfaces:
            from_net = view.networks.get(source.network)
            if from_net is None:
                continue
            for target in interfaces:
                to_net = view.networks.get(target.network)
                if to_net is None or target is source:
                    continue
                subnet = ipaddress.ip_network(target.cidr, strict=False)
                for ip, mac in sorted(to_net.hosts.items()):
                    if ":" in ip or ipaddress.ip_address(ip) not in subnet:
                        continue
                    fields: Fields = {
                        "metadata": from_net.key,
                        "dl_dst": source.mac,
                        "dl_type": ETH_IP,
                        "nw_dst": ip,
                    }
                    yield _flow(
                        Table.L3,
                        100,
                        fields,
                        DecTtl(),
                        SetField("dl_src", target.mac),
                        SetField("dl_dst", mac),
                        Load(NETWORK, to_net.key),
                        Goto(Table.L2_LOOKUP),
                        why=f"route to {ip} in {to_net.id}",
                    )
            # to the router's MAC but no host it knows: dropped, never flooded or punted
            yield _flow(
                Table.L3, 50, {"metadata": from_net.key, "dl_dst": source.mac}, why="no route"
            )
    yield _default(Table.L3, Goto(Table.L2_LOOKUP))


def _l2_lookup(view: AgentView) -> Iterator[Flow]:
    for port in view.ports:
        network = view.networks.get(port.network)
        if network is not None:
            fields: Fields = {"metadata": network.key, "dl_dst": port.mac}
            yield _flow(Table.L2_LOOKUP, 100, fields, Output(port.ofport))
    macs: dict[str, set[str]] = {}
    for port in view.ports:
        macs.setdefault(port.network, set()).add(port.mac)
    for network in view.networks.values():
        local = macs.get(network.id, set())
        for mac, vtep in sorted(network.remote.items()):
            if mac in local:
                continue
            remote: Fields = {"metadata": network.key, "dl_dst": mac, FROM_TUNNEL_REG: 0}
            yield _flow(Table.L2_LOOKUP, 100, remote, *_to_vtep(view, network, vtep))
        yield _flow(
            Table.L2_LOOKUP,
            50,
            {"metadata": network.key, "dl_dst": BROADCAST_BIT},
            Goto(Table.FLOOD),
        )
    yield _default(Table.L2_LOOKUP, Goto(Table.FLOOD))


def _flood(view: AgentView) -> Iterator[Flow]:
    outputs: dict[str, list[Output]] = {}
    for port in sorted(view.ports, key=lambda p: p.ofport):
        outputs.setdefault(port.network, []).append(Output(port.ofport))
    for network in view.networks.values():
        local = tuple(outputs.get(network.id, ()))
        from_tunnel = {"metadata": network.key, FROM_TUNNEL_REG: 1}
        yield _flow(Table.FLOOD, 100, from_tunnel, *local, why="split horizon")
        remote = [a for vtep in sorted(network.vteps) for a in _to_vtep(view, network, vtep)]
        yield _flow(Table.FLOOD, 90, {"metadata": network.key}, *local, *remote)
    yield _default(Table.FLOOD)


def _to_vtep(view: AgentView, network: NetworkView, vtep: str) -> tuple[Action, ...]:
    return (
        SetField("tun_id", network.vni),
        SetField("tun_dst", vtep),
        Output(view.tunnel_ofport),
    )
