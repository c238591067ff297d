"""A hypervisor's stream carries its own networks whole and nothing else of the fabric."""

from __future__ import annotations

import orjson

from tether.service.inventory import claim_key
from tether.service.keys import report_key
from tether.service.scope import ChassisScope
from tether.store import Event, EventType, KeyValue

REV = 10


def put(key: str, value: dict[str, object] | None = None) -> Event:
    return Event(EventType.PUT, KeyValue(key, orjson.dumps(value or {}), 1, REV, 1))


def delete(key: str) -> Event:
    return Event(EventType.DELETE, KeyValue(key, b"", 0, REV, 0))


def port(pid: str, network: str, chassis: str | None) -> Event:
    return put(f"/tether/model/ports/{pid}", {"network": network, "chassis": chassis})


def router(rid: str, *networks: str) -> Event:
    return put(f"/tether/model/routers/{rid}", {"interfaces": [{"network": n} for n in networks]})


def keys(events: tuple[Event, ...] | list[Event]) -> set[str]:
    return {e.kv.key for e in events}


def test_only_the_chassis_networks_and_what_its_routers_reach_pass() -> None:
    scope = ChassisScope("hv1")
    everything = [
        put("/tether/model/networks/web"),
        put("/tether/model/networks/db"),
        put("/tether/model/networks/other"),
        port("p1", "web", "hv1"),
        port("p2", "web", "hv2"),
        port("p3", "db", "hv2"),
        port("p4", "other", "hv2"),
        router("r1", "web", "db"),
        router("r2", "other"),
        put("/tether/model/chassis/c2"),
        put("/tether/model/gateways/g1"),
        put(claim_key("tor1", "web", "02:00:00:00:00:01"), {"role": "master"}),
        put(claim_key("tor1", "other", "02:00:00:00:00:02"), {"role": "master"}),
    ]
    change = scope.take(everything, REV)
    assert scope.relevant == {"web", "db"}
    assert keys(change.passed) == {
        "/tether/model/networks/web",
        "/tether/model/networks/db",
        "/tether/model/ports/p1",
        "/tether/model/ports/p2",
        "/tether/model/ports/p3",
        "/tether/model/routers/r1",
        "/tether/model/chassis/c2",
        "/tether/model/gateways/g1",
        claim_key("tor1", "web", "02:00:00:00:00:01"),
    }


def test_a_network_that_becomes_relevant_arrives_whole_and_leaves_with_deletes() -> None:
    scope = ChassisScope("hv1")
    listing = [
        put("/tether/model/networks/other"),
        port("p4", "other", "hv2"),
        put(claim_key("tor1", "other", "02:00:00:00:00:02"), {"role": "master"}),
    ]
    assert not scope.take(listing, REV).passed
    change = scope.take([port("p5", "other", "hv1")], REV + 1)  # a port of it moves here
    assert change.gained == {"other"} and keys(change.passed) == {"/tether/model/ports/p5"}
    filled = scope.backfill([e.kv for e in listing], change.gained)
    assert {kv.key for kv in filled} == keys(listing)
    gone = scope.take([delete("/tether/model/ports/p5")], REV + 2)
    assert keys(gone.passed) == {"/tether/model/ports/p5"}, "its own delete passes"
    assert keys(gone.dropped) == keys(listing), "the rest of the network is taken back"
    assert all(e.type is EventType.DELETE for e in gone.dropped)
    assert not scope.take([port("p6", "other", "hv2")], REV + 3).passed


def test_chassis_reports_reach_no_agent_but_gateway_statuses_do() -> None:
    scope = ChassisScope("hv1")
    change = scope.take(
        [
            port("p1", "web", "hv1"),
            put(report_key("c1"), {"revision": 3, "ports": {"p1": {"state": "realized"}}}),
            put(report_key("c2"), {"revision": 3}),
            put("/tether/status/gateways/g1", {"state": "realized"}),
        ],
        REV,
    )
    assert keys(change.passed) == {"/tether/model/ports/p1", "/tether/status/gateways/g1"}
