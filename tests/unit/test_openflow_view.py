"""From the model to one hypervisor's view, and through the compiler to packets: what a
chassis knows is exactly what its VMs need (issue 5, pure)."""

from __future__ import annotations

from tests.unit.test_rules import CountingIds
from tether.logical import DeviceName, Location
from tether.model import Catalog, Rules
from tether.model.resources import (
    ChassisCreate,
    GatewayBindingCreate,
    GatewayCreate,
    NetworkCreate,
    PortCreate,
    RouterCreate,
    RouterInterfaceCreate,
    Subnet,
)
from tether.openflow import AgentView, compile_flows, simulate
from tether.openflow.view import Vif, agent_view

HV1, HV2, TOR1 = "192.0.2.11", "192.0.2.12", "192.0.2.21"
BAREMETAL = "02:00:00:00:0b:01"


def _fabric() -> tuple[Catalog, dict[str, str]]:
    rules = Rules(Catalog(), CountingIds())
    for name, cidr in (("web", "10.0.1.0/24"), ("db", "10.0.2.0/24"), ("lonely", "10.0.9.0/24")):
        rules.create_network(NetworkCreate(name=name, subnets=[Subnet(cidr=cidr)]))
    rules.create_network(NetworkCreate(name="red", tenant="other"))
    rules.create_chassis(ChassisCreate(name="hv1", tunnel_ip=HV1))
    rules.create_chassis(ChassisCreate(name="hv2", tunnel_ip=HV2))
    rules.create_gateway(GatewayCreate(name="tor1", ovsdb="tcp:127.0.0.1:1", tunnel_ip=TOR1))
    rules.bind_gateway("tor1", GatewayBindingCreate(port="eth1", vlan=10, network="web"))
    macs = {}
    for name, network, chassis in (
        ("vm1", "web", "hv1"),
        ("vm2", "web", "hv2"),
        ("vm3", "db", "hv2"),
        ("vm5", "lonely", "hv2"),
    ):
        port = rules.create_port(PortCreate(network=network, name=name, chassis=chassis))
        macs[name] = port.mac
    rules.create_router(
        RouterCreate(
            name="r1",
            interfaces=[RouterInterfaceCreate(network="web"), RouterInterfaceCreate(network="db")],
        )
    )
    return rules.catalog, macs


def _located(catalog: Catalog, macs: dict[str, str]):  # type: ignore[no-untyped-def]
    by_name = {n.name: n.id for n in catalog.objects["networks"].values()}
    where = {
        by_name["web"]: {
            macs["vm1"]: Location(DeviceName("hv1"), None),
            macs["vm2"]: Location(DeviceName("hv2"), None),
            BAREMETAL: Location(DeviceName("tor1"), None),
        },
        by_name["db"]: {macs["vm3"]: Location(DeviceName("hv2"), None)},
        by_name["lonely"]: {macs["vm5"]: Location(DeviceName("hv2"), None)},
    }
    return lambda network: where.get(network, {})


TUNNEL_IPS = {"hv1": HV1, "hv2": HV2, "tor1": TOR1}


def test_a_chassis_sees_its_networks_and_the_ones_its_routers_reach() -> None:
    catalog, macs = _fabric()
    vifs = {"vm1": Vif("vm1", 7), "vm2": Vif("vm2", 8)}  # vm2 is on the bridge, bound to hv2
    view = agent_view(
        catalog, "hv1", vifs, _located(catalog, macs), TUNNEL_IPS,
        tunnel_ofport=100,
    )  # fmt: skip
    names = {n.id: n.name for n in catalog.objects["networks"].values()}
    assert sorted(names[n] for n in view.networks) == ["db", "web"]
    assert [(p.port_id, p.ofport) for p in view.ports] == [(_port_id(catalog, "vm1"), 7)]
    web = next(n for n in view.networks.values() if names[n.id] == "web")
    assert web.remote == {macs["vm2"]: HV2, BAREMETAL: TOR1}, "never its own MACs"
    assert web.vteps == {HV2, TOR1}
    assert set(web.hosts.values()) == {macs["vm1"], macs["vm2"]}
    assert {(names[i.network], i.cidr) for i in view.routers} == {
        ("web", "10.0.1.0/24"),
        ("db", "10.0.2.0/24"),
    }


def test_the_view_compiles_to_a_pipeline_that_routes_to_another_hypervisor() -> None:
    catalog, macs = _fabric()
    view = agent_view(
        catalog, "hv1", {"vm1": Vif("vm1", 7)}, _located(catalog, macs), TUNNEL_IPS,
        tunnel_ofport=100,
    )  # fmt: skip
    vm1 = next(p for p in view.ports)
    router_mac = next(i.mac for i in view.routers if i.network == vm1.network)
    vm3_ip = _port(catalog, "vm3").ips[0]
    db_vni = next(n.vni for n in view.networks.values() if n.id == _port(catalog, "vm3").network)
    outcome = simulate(
        compile_flows(view),
        {
            "in_port": 7,
            "dl_src": vm1.mac,
            "dl_dst": router_mac,
            "dl_type": 0x0800,
            "nw_src": vm1.ips[0],
            "nw_dst": vm3_ip,
            "nw_ttl": 64,
        },
    )
    assert [(d.port, d.packet["tun_id"], d.packet["tun_dst"]) for d in outcome.deliveries] == [
        (100, db_vni, HV2)
    ], "routed on hv1, carried to hv2 in db's VNI"
    assert outcome.deliveries[0].packet["dl_dst"] == macs["vm3"]


def _port(catalog: Catalog, name: str):  # type: ignore[no-untyped-def]
    return next(p for p in catalog.objects["ports"].values() if p.name == name)


def _port_id(catalog: Catalog, name: str) -> str:
    return str(_port(catalog, name).id)


def test_numbers_in_flows_depend_on_nothing_but_the_object() -> None:
    """``metadata`` is the network's VNI and ``reg6`` the port's OpenFlow port: a network or
    port arriving or leaving never renumbers another, and a restarted agent compiles the very
    flows its predecessor installed (only the cookie differs)."""
    catalog, macs = _fabric()
    located = _located(catalog, macs)
    alone = agent_view(catalog, "hv2", {"vm3": Vif("vm3", 7)}, located, TUNNEL_IPS,
                       tunnel_ofport=100)  # fmt: skip
    more = agent_view(catalog, "hv2", {"vm5": Vif("vm5", 3), "vm3": Vif("vm3", 7)}, located,
                      TUNNEL_IPS, tunnel_ofport=100)  # fmt: skip
    assert len(more.networks) == len(alone.networks) + 1
    web = {n.id: n for n in alone.networks.values()}
    for network_id, network in web.items():
        assert more.networks[network_id].key == network.key == network.vni
    first = {f for f in compile_flows(alone) if dict(f.match).get("metadata") in _keys(alone)}
    again = {f for f in compile_flows(more) if dict(f.match).get("metadata") in _keys(alone)}
    assert first <= again, "the flows of the networks already there did not change"
    assert [p.key for p in more.ports] == [3, 7]


def _keys(view: AgentView) -> set[int]:
    return {network.key for network in view.networks.values()}
