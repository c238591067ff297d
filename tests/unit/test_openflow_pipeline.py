"""The hypervisor pipeline, asked behavioural questions through the flow-table simulator:
where does this packet go? (Issue 5: the compiler, without a switch.)"""

from __future__ import annotations

from typing import Any

import pytest

from tether.openflow import (
    AgentView,
    Flow,
    LocalPort,
    NetworkView,
    RouterInterface,
    compile_flows,
    diff_flows,
    simulate,
    to_ofctl,
)
from tether.openflow.flows import Output, match
from tether.openflow.simulator import Outcome

TUNNEL = 100
HV2, GW = "192.0.2.21", "192.0.2.31"
VM1, VM2, VM3, VM4 = (f"02:00:00:00:00:0{i}" for i in range(1, 5))
REMOTE, BAREMETAL = "02:00:00:00:00:21", "02:00:00:00:00:31"
R_WEB, R_DB = "02:aa:00:00:00:01", "02:aa:00:00:00:02"
BROADCAST = "ff:ff:ff:ff:ff:ff"

WEB = NetworkView(
    "web",
    5001,
    1,
    hosts={"10.0.1.11": VM1, "10.0.1.12": VM2, "10.0.1.21": REMOTE, "10.0.1.31": BAREMETAL},
    remote={REMOTE: HV2, BAREMETAL: GW},
    vteps=frozenset({HV2, GW}),
)
DB = NetworkView("db", 5002, 2, hosts={"10.0.2.13": VM3})
RED = NetworkView("red", 6001, 3, hosts={"10.0.1.11": VM4}, dhcp=False)  # another tenant
VIEW = AgentView(
    tunnel_ofport=TUNNEL,
    networks={"web": WEB, "db": DB, "red": RED},
    ports=(
        LocalPort("vm1", "web", VM1, ("10.0.1.11",), 1, 1),
        LocalPort("vm2", "web", VM2, ("10.0.1.12",), 2, 2),
        LocalPort("vm3", "db", VM3, ("10.0.2.13",), 3, 3),
        LocalPort("vm4", "red", VM4, ("10.0.1.11",), 4, 4),
    ),
    routers=(
        RouterInterface("r1", "web", "10.0.1.1", R_WEB, "10.0.1.0/24"),
        RouterInterface("r1", "db", "10.0.2.1", R_DB, "10.0.2.0/24"),
    ),
)
FLOWS = compile_flows(VIEW)


def ip_packet(
    in_port: int, src_mac: str, dst_mac: str, src: str, dst: str, **more: Any
) -> dict[str, Any]:
    return {
        "in_port": in_port,
        "dl_src": src_mac,
        "dl_dst": dst_mac,
        "dl_type": 0x0800,
        "nw_src": src,
        "nw_dst": dst,
        "nw_proto": 1,
        "nw_ttl": 64,
        **more,
    }


def ip(in_port: int, src_mac: str, dst_mac: str, src: str, dst: str, **more: Any) -> Outcome:
    return simulate(FLOWS, ip_packet(in_port, src_mac, dst_mac, src, dst, **more))


def arp_packet(in_port: int, mac: str, spa: str, tpa: str) -> dict[str, Any]:
    return {
        "in_port": in_port,
        "dl_src": mac,
        "dl_dst": BROADCAST,
        "dl_type": 0x0806,
        "arp_op": 1,
        "arp_sha": mac,
        "arp_spa": spa,
        "arp_tha": "00:00:00:00:00:00",
        "arp_tpa": tpa,
    }


def arp(in_port: int, mac: str, spa: str, tpa: str) -> Outcome:
    return simulate(FLOWS, arp_packet(in_port, mac, spa, tpa))


def tunnel_packet(vni: int, dst_mac: str) -> dict[str, Any]:
    return {
        "in_port": TUNNEL,
        "tun_id": vni,
        "dl_src": REMOTE,
        "dl_dst": dst_mac,
        "dl_type": 0x0800,
        "nw_src": "10.0.1.21",
        "nw_dst": "10.0.1.12",
    }


def tunnelled(vni: int, dst_mac: str) -> Outcome:
    return simulate(FLOWS, tunnel_packet(vni, dst_mac))


DHCP = {"nw_proto": 17, "tp_src": 68, "tp_dst": 67}
QUESTIONS = {
    "vm to vm": ip_packet(1, VM1, VM2, "10.0.1.11", "10.0.1.12"),
    "vm to remote mac": ip_packet(1, VM1, REMOTE, "10.0.1.11", "10.0.1.21"),
    "vm to bare metal": ip_packet(1, VM1, BAREMETAL, "10.0.1.11", "10.0.1.31"),
    "broadcast": ip_packet(1, VM1, BROADCAST, "10.0.1.11", "10.0.1.255"),
    "unknown unicast": ip_packet(1, VM1, "02:00:00:00:00:99", "10.0.1.11", "10.0.1.99"),
    "tunnel to vm": tunnel_packet(5001, VM2),
    "tunnel broadcast": tunnel_packet(5001, BROADCAST),
    "tunnel unknown vni": tunnel_packet(9999, VM2),
    "spoofed mac": ip_packet(1, "02:00:00:00:00:66", VM2, "10.0.1.11", "10.0.1.12"),
    "spoofed ip": ip_packet(1, VM1, VM2, "10.0.1.99", "10.0.1.12"),
    "arp for remote host": arp_packet(1, VM1, "10.0.1.11", "10.0.1.21"),
    "arp for router": arp_packet(1, VM1, "10.0.1.11", "10.0.1.1"),
    "arp for unknown": arp_packet(1, VM1, "10.0.1.11", "10.0.1.99"),
    "dhcp discover": ip_packet(1, VM1, BROADCAST, "0.0.0.0", "255.255.255.255", **DHCP),
    "dhcp without server": ip_packet(4, VM4, BROADCAST, "0.0.0.0", "255.255.255.255", **DHCP),
    "routed": ip_packet(1, VM1, R_WEB, "10.0.1.11", "10.0.2.13"),
    "no route": ip_packet(1, VM1, R_WEB, "10.0.1.11", "10.0.2.99"),
    "other tenant": ip_packet(4, VM4, VM1, "10.0.1.11", "10.0.1.11"),
}
"""Named packets: the unit tests ask the simulator about them, the integration tests ask
the same of ``ofproto/trace`` on a real switch loaded with the same flows."""


def tunnel_copies(outcome: Outcome) -> set[tuple[int, str]]:
    return {
        (d.packet["tun_id"], d.packet["tun_dst"]) for d in outcome.deliveries if d.port == TUNNEL
    }


def test_a_local_vm_reaches_a_local_vm_of_its_network_only() -> None:
    outcome = ip(1, VM1, VM2, "10.0.1.11", "10.0.1.12")
    assert outcome.ports() == {2}


def test_a_remote_mac_is_reached_through_the_tunnel_with_the_vni() -> None:
    assert tunnel_copies(ip(1, VM1, REMOTE, "10.0.1.11", "10.0.1.21")) == {(5001, HV2)}
    outcome = ip(1, VM1, BAREMETAL, "10.0.1.11", "10.0.1.31")
    assert outcome.ports() == {TUNNEL} and tunnel_copies(outcome) == {(5001, GW)}


@pytest.mark.parametrize("dst", [BROADCAST, "02:00:00:00:00:99"])
def test_broadcast_and_unknown_go_to_local_ports_and_every_other_vtep(dst: str) -> None:
    outcome = ip(1, VM1, dst, "10.0.1.11", "10.0.1.255")
    assert outcome.ports() == {2, TUNNEL}, "never back to the sender, never to other networks"
    assert tunnel_copies(outcome) == {(5001, HV2), (5001, GW)}


def test_tunnel_traffic_enters_its_network_and_is_never_sent_back_out() -> None:
    assert tunnelled(5001, VM2).ports() == {2}
    assert tunnelled(5001, BROADCAST).ports() == {1, 2}, "split horizon: no tunnel copies"
    assert tunnelled(5001, BAREMETAL).dropped or TUNNEL not in tunnelled(5001, BAREMETAL).ports()
    assert tunnelled(9999, VM2).dropped, "an unknown VNI enters no network"


@pytest.mark.parametrize(
    ("src_mac", "src_ip"),
    [("02:00:00:00:00:66", "10.0.1.11"), (VM1, "10.0.1.12"), (VM1, "10.0.1.99")],
)
def test_a_spoofed_source_mac_or_ip_is_dropped(src_mac: str, src_ip: str) -> None:
    assert ip(1, src_mac, VM2, src_ip, "10.0.1.12").dropped
    assert arp(1, src_mac, src_ip, "10.0.1.12").dropped


def test_arp_for_a_known_address_is_answered_on_the_hypervisor() -> None:
    outcome = arp(1, VM1, "10.0.1.11", "10.0.1.21")  # a host behind another VTEP
    assert [d.port for d in outcome.deliveries] == [1], "answered to the asker, not flooded"
    reply = outcome.deliveries[0].packet
    assert (reply["arp_op"], reply["arp_sha"], reply["arp_spa"]) == (2, REMOTE, "10.0.1.21")
    assert (reply["dl_src"], reply["dl_dst"], reply["arp_tha"]) == (REMOTE, VM1, VM1)
    router = arp(1, VM1, "10.0.1.11", "10.0.1.1").deliveries[0].packet
    assert router["arp_sha"] == R_WEB


def test_arp_for_an_unknown_address_is_flooded_in_the_network() -> None:
    outcome = arp(1, VM1, "10.0.1.11", "10.0.1.99")
    assert outcome.ports() == {2, TUNNEL}


def test_dhcp_reaches_the_agent_and_nothing_else_does() -> None:
    discover = ip(
        1, VM1, BROADCAST, "0.0.0.0", "255.255.255.255", nw_proto=17, tp_src=68, tp_dst=67
    )
    assert discover.to_controller and not discover.deliveries
    no_dhcp = ip(4, VM4, BROADCAST, "0.0.0.0", "255.255.255.255", nw_proto=17, tp_src=68, tp_dst=67)
    assert not no_dhcp.to_controller, "a network without DHCP: the tenant's own server"
    for outcome in (
        ip(1, VM1, "02:00:00:00:00:99", "10.0.1.11", "10.0.9.9"),
        arp(1, VM1, "10.0.1.11", "10.0.1.99"),
        ip(1, VM1, R_WEB, "10.0.1.11", "10.0.2.99"),
    ):
        assert not outcome.to_controller, "unknown destinations are never punted"


def test_the_router_is_distributed_to_the_source_hypervisor() -> None:
    outcome = ip(1, VM1, R_WEB, "10.0.1.11", "10.0.2.13")
    assert outcome.ports() == {3}
    routed = outcome.deliveries[0].packet
    assert (routed["dl_src"], routed["dl_dst"], routed["nw_ttl"]) == (R_DB, VM3, 63)
    assert ip(1, VM1, R_WEB, "10.0.1.11", "10.0.2.99").dropped, "no such host: dropped"
    assert ip(1, VM1, R_WEB, "10.0.1.11", "10.0.2.13", nw_ttl=1).dropped, "TTL expired"


def test_tenants_cannot_reach_each_other() -> None:
    assert not ip(4, VM4, VM1, "10.0.1.11", "10.0.1.11").ports() & {1, 2, 3}
    assert not arp(4, VM4, "10.0.1.11", "10.0.1.12").ports() & {1, 2, 3}
    assert ip(4, VM4, R_WEB, "10.0.1.11", "10.0.2.13").ports().isdisjoint({1, 2, 3})


def test_a_mac_move_is_one_modified_flow_and_foreign_flows_stay() -> None:
    moved = AgentView(
        tunnel_ofport=TUNNEL,
        networks={**VIEW.networks, "web": _moved_web()},
        ports=VIEW.ports,
        routers=VIEW.routers,
    )
    foreign = Flow(0, 200, match(in_port=77), (Output(78),), cookie=0)
    changes = diff_flows(compile_flows(moved), FLOWS | {foreign})
    assert not changes.add and not changes.delete
    assert [dict(f.match).get("dl_dst") for f in changes.modify] == [REMOTE]
    assert not diff_flows(FLOWS, FLOWS)
    gone = diff_flows(compile_flows(AgentView(TUNNEL, {})), FLOWS | {foreign})
    assert foreign not in gone.delete and len(gone.delete) > 20
    assert [step for step, _ in gone.ordered()][-1] == "delete"


def test_flows_render_as_ovs_ofctl_text() -> None:
    responder = next(f for f in FLOWS if "10.0.1.21 is at" in f.comment)
    text = to_ofctl(responder)
    assert text.startswith("cookie=0x7e7e000000000000,table=20,priority=100,")
    assert "arp_tpa=10.0.1.21" in text and "dl_type=0x0806" in text
    assert "move:NXM_OF_ETH_SRC[]->NXM_OF_ETH_DST[]" in text and text.endswith(",in_port")


def _moved_web() -> NetworkView:
    return NetworkView(WEB.id, WEB.vni, WEB.key, WEB.hosts, {**WEB.remote, REMOTE: GW}, WEB.vteps)
