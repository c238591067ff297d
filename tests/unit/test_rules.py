"""The cross-object rules on a pure catalog: uniqueness, references, dependencies, drafts."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import TypeVar

import pytest

from tether.model import Catalog, ConflictError, InvalidError, ModelError, NotFoundError, Rules
from tether.model.bulk import BulkRequest, apply_bulk
from tether.model.resources import (
    ChassisCreate,
    GatewayBindingCreate,
    GatewayCreate,
    NetworkCreate,
    NetworkUpdate,
    PortCreate,
    PortUpdate,
    Route,
    RouterCreate,
    RouterInterfaceCreate,
    Subnet,
)

T = TypeVar("T")


class CountingIds:
    def __init__(self) -> None:
        self._n = itertools.count(1)

    def new_id(self) -> str:
        return f"id-{next(self._n):04d}"

    def new_mac(self) -> str:
        return f"02:00:00:00:{next(self._n) // 256:02x}:{next(self._n) % 256:02x}"


@pytest.fixture
def rules() -> Rules:
    return Rules(Catalog(), CountingIds())


def do(rules: Rules, operation: Callable[[Rules], T]) -> T:
    """Run one operation in a draft, as the service does: commit on success, else roll back."""
    rules.catalog.begin()
    try:
        result = operation(rules)
    except BaseException:
        rules.catalog.rollback()
        raise
    rules.catalog.commit()
    return result


def web(rules: Rules, **extra: object) -> None:
    spec = {"name": "web", "vni": 5001, "subnets": [Subnet(cidr="10.0.1.0/24")], **extra}
    do(rules, lambda r: r.create_network(NetworkCreate(**spec)))  # type: ignore[arg-type]


def error_of(rules: Rules, operation: Callable[[Rules], object]) -> ModelError:
    snapshot = {kind: dict(objs) for kind, objs in rules.catalog.objects.items()}
    with pytest.raises(ModelError) as info:
        do(rules, operation)
    assert rules.catalog.objects == snapshot, "a refused change must leave the catalog intact"
    return info.value


def test_vnis_are_allocated_unique_and_explicit_ones_conflict(rules: Rules) -> None:
    web(rules)
    allocated = [
        do(rules, lambda r, i=i: r.create_network(NetworkCreate(name=f"n{i}"))).vni
        for i in range(5)
    ]
    assert len(set(allocated)) == 5 and 5001 not in allocated
    err = error_of(rules, lambda r: r.create_network(NetworkCreate(name="other", vni=5001)))
    assert isinstance(err, ConflictError) and err.field == "vni"


def test_names_are_unique_per_tenant_only(rules: Rules) -> None:
    web(rules)
    do(rules, lambda r: r.create_network(NetworkCreate(name="web", tenant="blue")))
    err = error_of(rules, lambda r: r.create_network(NetworkCreate(name="web")))
    assert err.field == "name"
    amb = error_of(rules, lambda r: r.create_port(PortCreate(network="web")))
    assert isinstance(amb, ConflictError) and "several tenants" in amb.message
    port = do(rules, lambda r: r.create_port(PortCreate(network="web", tenant="blue", ips=[])))
    assert rules.catalog.objects["networks"][port.network].tenant == "blue"


def test_port_ips_must_be_in_a_subnet_unique_and_not_the_gateway(rules: Rules) -> None:
    web(rules)
    do(rules, lambda r: r.create_port(PortCreate(network="web", ips=["10.0.1.11"], name="vm1")))
    cases = {
        "10.0.2.5": ("ips[0]", InvalidError),
        "10.0.1.11": ("ips[0]", ConflictError),
        "10.0.1.1": ("ips[0]", ConflictError),
        "10.0.1.255": ("ips[0]", InvalidError),
        "10.0.1.0": ("ips[0]", InvalidError),
    }
    for ip, (field, kind) in cases.items():
        err = error_of(rules, lambda r, ip=ip: r.create_port(PortCreate(network="web", ips=[ip])))
        assert (err.field, type(err)) == (field, kind), ip
    err = error_of(
        rules, lambda r: r.create_port(PortCreate(network="web", ips=["10.0.1.20", "10.0.1.20"]))
    )
    assert err.field == "ips"


def test_macs_are_unique_per_network_and_ips_are_allocated(rules: Rules) -> None:
    web(rules)
    first = do(rules, lambda r: r.create_port(PortCreate(network="web", mac="02:00:00:00:01:01")))
    second = do(rules, lambda r: r.create_port(PortCreate(network="web")))
    assert first.ips == ["10.0.1.2"] and second.ips == ["10.0.1.3"]
    err = error_of(
        rules, lambda r: r.create_port(PortCreate(network="web", mac="02:00:00:00:01:01"))
    )
    assert err.field == "mac"
    do(
        rules,
        lambda r: r.create_network(NetworkCreate(name="db", subnets=[Subnet(cidr="10.0.1.0/24")])),
    )
    do(
        rules,
        lambda r: r.create_port(
            PortCreate(network="db", mac="02:00:00:00:01:01", ips=["10.0.1.2"])
        ),
    )


def test_updates_keep_identity_and_revalidate(rules: Rules) -> None:
    web(rules)
    do(rules, lambda r: r.create_chassis(ChassisCreate(name="hv1", tunnel_ip="192.0.2.11")))
    port = do(
        rules, lambda r: r.create_port(PortCreate(network="web", name="vm1", ips=["10.0.1.11"]))
    )
    bound = do(rules, lambda r: r.update_port("vm1", PortUpdate(chassis="hv1")))
    assert (bound.id, bound.chassis, bound.ips) == (port.id, "hv1", ["10.0.1.11"])
    err = error_of(rules, lambda r: r.update_port("vm1", PortUpdate(chassis="hv9")))
    assert isinstance(err, NotFoundError) and err.field == "chassis"
    unbound = do(rules, lambda r: r.update_port(port.id, PortUpdate(unbind=True)))
    assert unbound.chassis is None
    err = error_of(
        rules,
        lambda r: r.update_network("web", NetworkUpdate(subnets=[Subnet(cidr="10.9.0.0/24")])),
    )
    assert err.field == "subnets"


def test_one_network_per_gateway_port_and_vlan(rules: Rules) -> None:
    web(rules)
    do(rules, lambda r: r.create_network(NetworkCreate(name="db")))
    do(
        rules,
        lambda r: r.create_gateway(
            GatewayCreate(name="tor1", ovsdb="tcp:127.0.0.1:6640", tunnel_ip="192.0.2.21")
        ),
    )
    do(
        rules,
        lambda r: r.bind_gateway(
            "tor1", GatewayBindingCreate(port="eth1", vlan=100, network="web")
        ),
    )
    err = error_of(
        rules,
        lambda r: r.bind_gateway("tor1", GatewayBindingCreate(port="eth1", vlan=100, network="db")),
    )
    assert err.field == "vlan" and "web" in err.message
    do(
        rules,
        lambda r: r.bind_gateway("tor1", GatewayBindingCreate(port="eth1", vlan=101, network="db")),
    )


def test_tunnel_ips_are_unique_across_chassis_and_gateways(rules: Rules) -> None:
    do(rules, lambda r: r.create_chassis(ChassisCreate(name="hv1", tunnel_ip="192.0.2.11")))
    err = error_of(
        rules,
        lambda r: r.create_gateway(
            GatewayCreate(name="tor1", ovsdb="unix:/x.sock", tunnel_ip="192.0.2.11")
        ),
    )
    assert err.field == "tunnel_ip" and "hv1" in err.message


def test_deleting_a_used_network_needs_force_and_force_cleans_up(rules: Rules) -> None:
    web(rules)
    do(rules, lambda r: r.create_port(PortCreate(network="web", name="vm1")))
    do(
        rules,
        lambda r: r.create_gateway(
            GatewayCreate(name="tor1", ovsdb="tcp:127.0.0.1:6640", tunnel_ip="192.0.2.21")
        ),
    )
    do(
        rules,
        lambda r: r.bind_gateway(
            "tor1", GatewayBindingCreate(port="eth1", vlan=100, network="web")
        ),
    )
    do(
        rules,
        lambda r: r.create_router(
            RouterCreate(name="edge", interfaces=[RouterInterfaceCreate(network="web")])
        ),
    )
    err = error_of(rules, lambda r: r.delete_network("web"))
    assert err.field == "force" and "1 ports" in err.message
    do(rules, lambda r: r.delete_network("web", force=True))
    assert not rules.catalog.objects["ports"] and not rules.catalog.objects["bindings"]
    edge = next(iter(rules.catalog.objects["routers"].values()))
    assert edge.interfaces == []  # type: ignore[attr-defined]


def test_router_interfaces_take_the_gateway_ip_and_routes_need_a_reachable_nexthop(
    rules: Rules,
) -> None:
    web(rules)
    router = do(
        rules,
        lambda r: r.create_router(
            RouterCreate(name="edge", interfaces=[RouterInterfaceCreate(network="web")])
        ),
    )
    assert router.interfaces[0].ip == "10.0.1.1"
    err = error_of(
        rules,
        lambda r: r.create_router(
            RouterCreate(name="r2", interfaces=[RouterInterfaceCreate(network="web")])
        ),
    )
    assert err.field == "interfaces[0].ip"
    err = error_of(
        rules,
        lambda r: r.create_router(
            RouterCreate(name="r3", routes=[Route(destination="0.0.0.0/0", nexthop="10.0.1.254")])
        ),
    )
    assert err.field == "routes[0].nexthop"


def test_chassis_with_bound_ports_needs_force_which_unbinds(rules: Rules) -> None:
    web(rules)
    do(rules, lambda r: r.create_chassis(ChassisCreate(name="hv1", tunnel_ip="192.0.2.11")))
    do(rules, lambda r: r.create_port(PortCreate(network="web", name="vm1", chassis="hv1")))
    assert error_of(rules, lambda r: r.delete_chassis("hv1")).field == "force"
    do(rules, lambda r: r.delete_chassis("hv1", force=True))
    assert (
        rules.catalog.resolve(
            type(next(iter(rules.catalog.objects["ports"].values()))), "vm1", field="port"
        ).chassis
        is None
    )  # type: ignore[attr-defined]


def test_bulk_is_all_or_nothing_and_names_the_failing_item(rules: Rules) -> None:
    items = [
        {"kind": "network", "spec": {"name": f"n{i}", "subnets": [{"cidr": f"10.{i}.0.0/24"}]}}
        for i in range(3)
    ]
    items += [
        {"kind": "port", "spec": {"network": "n1", "mac": "02:00:00:00:00:01"}},
        {"kind": "port", "spec": {"network": "n1", "mac": "02:00:00:00:00:01"}},
    ]
    request = BulkRequest.model_validate({"items": items})
    err = error_of(rules, lambda r: apply_bulk(r, request.items))
    assert err.field == "items[4].spec.mac"
    assert all(not objs for objs in rules.catalog.objects.values())
    done = do(rules, lambda r: apply_bulk(r, request.items[:4]))
    assert [op for op, _ in done] == ["create"] * 4
