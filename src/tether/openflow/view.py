"""What one hypervisor needs of the model, as the compiler's :class:`AgentView`. Pure.

Given the catalog, the reconciled MAC locations, the tunnel IPs of the devices and the VIFs
the hypervisor's bridge holds (``Interface.external_ids:iface-id`` = a port's id or name),
:func:`agent_view` picks out:

* the **local ports**: ports bound to this chassis whose VIF is on the bridge;
* the **networks** those ports are in, and the networks reachable from them through a router
  (routing happens on the source hypervisor, so it must know the destination network's
  hosts and where its MACs live);
* per network: every host address (ports anywhere, for the ARP responder), the MACs living
  behind *other* devices with those devices' tunnel IPs, the other VTEPs carrying the network
  (devices MACs of it live behind, gateways bound to it), and whether DHCP is on;
* the router interfaces on those networks, with the subnet each serves.

A network's number in ``metadata`` is its VNI and a port's number in ``reg6`` its OpenFlow
port: both stay put across syncs and restarts, so a restarted agent compiles the very flows
its predecessor installed, only under its own cookie.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from tether.logical import Location
from tether.model import Catalog
from tether.model.resources import GatewayBinding, Network, Port, Router
from tether.openflow.compiler import AgentView, LocalPort, NetworkView, RouterInterface
from tether.openflow.dhcp import DhcpLease

__all__ = ["AGENT_MAC", "Vif", "agent_view", "dhcp_lease"]

Located = Callable[[str], Mapping[str, Location]]


@dataclass(frozen=True, slots=True)
class Vif:
    """A VM interface on the bridge, as OVS reports it."""

    iface_id: str
    ofport: int
    attached_mac: str = ""


def agent_view(
    catalog: Catalog,
    chassis: str,
    vifs: Mapping[str, Vif],
    located: Located,
    tunnel_ips: Mapping[str, str],
    *,
    tunnel_ofport: int,
) -> AgentView:
    """The view of hypervisor ``chassis`` (see the module)."""
    local: list[tuple[Port, Vif]] = []
    for port in catalog.objects["ports"].values():
        assert isinstance(port, Port)
        vif = vifs.get(port.id) or (vifs.get(port.name) if port.name else None)
        if vif is not None and port.chassis == chassis:
            local.append((port, vif))
    wanted = {port.network for port, _ in local}
    routers = _routers_of(catalog, wanted)
    for router in routers:
        wanted |= {iface.network for iface in router.interfaces}
    networks = {
        network_id: _network_view(catalog, network_id, chassis, located, tunnel_ips)
        for network_id in sorted(wanted)
        if network_id in catalog.objects["networks"]
    }
    ports = tuple(
        LocalPort(port.id, port.network, port.mac, tuple(port.ips), vif.ofport, vif.ofport)
        for port, vif in sorted(local, key=lambda pv: pv[1].ofport)
    )
    interfaces = tuple(
        RouterInterface(
            router.id,
            iface.network,
            iface.ip,
            iface.mac,
            _cidr_of(catalog, iface.network, iface.ip),
        )
        for router in routers
        for iface in router.interfaces
        if iface.network in networks
    )
    return AgentView(tunnel_ofport, networks, ports, interfaces)


def _routers_of(catalog: Catalog, networks: set[str]) -> list[Router]:
    found = []
    for router in catalog.objects["routers"].values():
        assert isinstance(router, Router)
        if any(iface.network in networks for iface in router.interfaces):
            found.append(router)
    return sorted(found, key=lambda r: r.id)


def _network_view(
    catalog: Catalog,
    network_id: str,
    chassis: str,
    located: Located,
    tunnel_ips: Mapping[str, str],
) -> NetworkView:
    network = catalog.get(Network, network_id)
    hosts: dict[str, str] = {}
    for kind, obj_id in catalog.dependents("network", network_id):
        if kind == "ports":
            port = catalog.objects[kind][obj_id]
            assert isinstance(port, Port)
            for ip in port.ips:
                hosts[ip] = port.mac
    remote: dict[str, str] = {}
    vteps: set[str] = set()
    for mac, where in located(network_id).items():
        if where.device == chassis:
            continue
        vtep = tunnel_ips.get(where.device)
        if vtep is not None:
            remote[mac] = vtep
            vteps.add(vtep)
    for kind, obj_id in catalog.dependents("network", network_id):
        if kind == "bindings":
            binding = catalog.objects[kind][obj_id]
            assert isinstance(binding, GatewayBinding)
            gateway_ip = tunnel_ips.get(binding.gateway)
            if gateway_ip is not None and binding.gateway != chassis:
                vteps.add(gateway_ip)
    own = tunnel_ips.get(chassis)
    vteps.discard(own or "")
    dhcp = any(subnet.dhcp.enabled for subnet in network.subnets)
    return NetworkView(network_id, network.vni, network.vni, hosts, remote, frozenset(vteps), dhcp)


def _cidr_of(catalog: Catalog, network_id: str, ip: str) -> str:
    network = catalog.get(Network, network_id)
    address = ipaddress.ip_address(ip)
    for subnet in network.subnets:
        if address in ipaddress.ip_network(subnet.cidr, strict=False):
            return subnet.cidr
    return f"{ip}/32" if address.version == 4 else f"{ip}/128"


AGENT_MAC = "02:7e:7e:00:00:01"
"""The DHCP server's MAC on a network whose subnet gateway is no router interface."""


def dhcp_lease(catalog: Catalog, port_id: str) -> DhcpLease | None:
    """The lease the agent gives a port: its first IPv4 address in a subnet with DHCP on,
    the subnet's gateway as router and server, the subnet's DHCP options."""
    port = catalog.objects["ports"].get(port_id)
    if not isinstance(port, Port):
        return None
    network = catalog.get(Network, port.network)
    for ip in port.ips:
        if ":" in ip:
            continue
        address = ipaddress.ip_address(ip)
        for subnet in network.subnets:
            if address in ipaddress.ip_network(subnet.cidr) and subnet.dhcp.enabled:
                gateway = subnet.gateway_ip or ""
                return DhcpLease(
                    mac=port.mac,
                    ip=ip,
                    cidr=subnet.cidr,
                    router_ip=gateway,
                    router_mac=_router_mac(catalog, network.id, gateway) or AGENT_MAC,
                    dns_servers=tuple(subnet.dhcp.dns_servers),
                    lease_time=subnet.dhcp.lease_time,
                    mtu=subnet.dhcp.mtu,
                    domain_name=subnet.dhcp.domain_name,
                )
    return None


def _router_mac(catalog: Catalog, network_id: str, ip: str) -> str | None:
    for router in catalog.objects["routers"].values():
        assert isinstance(router, Router)
        for iface in router.interfaces:
            if iface.network == network_id and iface.ip == ip:
                return iface.mac
    return None
