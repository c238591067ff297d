"""The REST API against a real server on the embedded store: every resource, every rule."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def ok(reply: httpx.Response, status: int = 200) -> Any:
    assert reply.status_code == status, reply.text
    return reply.json()


def snapshot(http: httpx.Client) -> dict[str, Any]:
    """Everything stored; a gateway's ``runtime`` is its agent's, and every ``status`` is
    derived when read (from the agents' reports and records), live."""
    kinds = ["networks", "ports", "routers", "chassis", "gateways"]
    state = {kind: ok(http.get(f"/v1/{kind}", params={"limit": 1000}))["items"] for kind in kinds}
    for gateway in state["gateways"]:
        gateway.pop("runtime", None)
    state["bindings"] = [
        ok(http.get(f"/v1/gateways/{g['id']}/bindings"))["items"] for g in state["gateways"]
    ]
    for items in [*(state[kind] for kind in kinds), *state["bindings"]]:
        for item in items:
            item.pop("status", None)
    return state


def refused(
    http: httpx.Client, method: str, path: str, body: Any = None, *, status: int, field: str | None
) -> dict[str, Any]:
    """The request fails with ``status`` naming ``field`` and changes nothing."""
    before = snapshot(http)
    reply = http.request(method, path, json=body)
    assert reply.status_code == status, reply.text
    error = reply.json()["error"]
    assert set(error) == {"code", "message", "field"} and error["message"]
    if field is not None:
        assert error["field"] == field, error
    assert snapshot(http) == before, "a refused request changed stored data"
    return dict(error)


@pytest.fixture
def fabric(http: httpx.Client) -> dict[str, Any]:
    """web (5001, 10.0.1.0/24) with vm1; db (5002); hv1; tor1 with eth1/100 -> web."""
    web = ok(
        http.post(
            "/v1/networks", json={"name": "web", "vni": 5001, "subnets": [{"cidr": "10.0.1.0/24"}]}
        ),
        201,
    )
    db = ok(
        http.post(
            "/v1/networks", json={"name": "db", "vni": 5002, "subnets": [{"cidr": "10.0.2.0/24"}]}
        ),
        201,
    )
    hv1 = ok(http.post("/v1/chassis", json={"name": "hv1", "tunnel_ip": "192.0.2.11"}), 201)
    vm1 = ok(
        http.post(
            "/v1/ports",
            json={
                "network": "web",
                "name": "vm1",
                "mac": "02:00:00:00:01:01",
                "ips": ["10.0.1.11"],
            },
        ),
        201,
    )
    tor1 = ok(
        http.post(
            "/v1/gateways",
            json={
                "name": "tor1",
                "ovsdb": "tcp:127.0.0.1:6640",
                "tunnel_ip": "192.0.2.21",
                "mode": "lock",
                "max_rows_per_txn": 500,
            },
        ),
        201,
    )
    binding = ok(
        http.post(
            "/v1/gateways/tor1/bindings", json={"port": "eth1", "vlan": 100, "network": "web"}
        ),
        201,
    )
    return {"web": web, "db": db, "hv1": hv1, "vm1": vm1, "tor1": tor1, "binding": binding}


def test_networks_crud_by_name_and_id(http: httpx.Client) -> None:
    created = ok(
        http.post(
            "/v1/networks",
            json={
                "name": "web",
                "subnets": [
                    {"cidr": "10.0.1.0/24", "dhcp": {"dns_servers": ["10.0.1.2"], "mtu": 1400}}
                ],
            },
        ),
        201,
    )
    assert 1 <= created["vni"] <= 16_777_215 and created["status"]["state"] == "pending"
    assert created["subnets"][0]["gateway_ip"] == "10.0.1.1"
    assert ok(http.get(f"/v1/networks/{created['id']}")) == ok(http.get("/v1/networks/web"))
    renamed = ok(http.patch("/v1/networks/web", json={"name": "frontend", "vni": 7000}))
    assert (renamed["id"], renamed["vni"]) == (created["id"], 7000)
    ok(http.delete("/v1/networks/frontend"))
    assert http.get(f"/v1/networks/{created['id']}").status_code == 404


def test_ports_bind_unbind_and_filters(http: httpx.Client, fabric: dict[str, Any]) -> None:
    bound = ok(http.patch("/v1/ports/vm1", json={"chassis": "hv1"}))
    assert bound["chassis"] == "hv1"
    assert [p["name"] for p in ok(http.get("/v1/ports", params={"chassis": "hv1"}))["items"]] == [
        "vm1"
    ]
    assert ok(http.get("/v1/ports", params={"network": "db"}))["items"] == []
    assert ok(http.patch("/v1/ports/vm1", json={"unbind": True}))["chassis"] is None
    auto = ok(http.post("/v1/ports", json={"network": "web"}), 201)
    assert auto["ips"] == ["10.0.1.2"] and auto["mac"][1] in "26ae"
    ok(http.delete(f"/v1/ports/{auto['id']}"))


def test_routers_gateways_chassis_lifecycle(http: httpx.Client, fabric: dict[str, Any]) -> None:
    router = ok(
        http.post(
            "/v1/routers",
            json={
                "name": "edge",
                "interfaces": [{"network": "web"}, {"network": "db", "ip": "10.0.2.254"}],
                "routes": [{"destination": "0.0.0.0/0", "nexthop": "10.0.2.1"}],
            },
        ),
        201,
    )
    assert [i["ip"] for i in router["interfaces"]] == ["10.0.1.1", "10.0.2.254"]
    patched = ok(http.patch("/v1/routers/edge", json={"routes": []}))
    assert patched["routes"] == [] and patched["interfaces"] == router["interfaces"]
    moved = ok(http.patch("/v1/chassis/hv1", json={"tunnel_ip": "192.0.2.99"}))
    assert moved["tunnel_ip"] == "192.0.2.99"
    gw = ok(http.get("/v1/gateways/tor1"))
    assert (gw["mode"], gw["max_rows_per_txn"], gw["physical_switch"]) == ("lock", 500, "tor1")
    assert ok(http.patch("/v1/gateways/tor1", json={"mode": "bind-last"}))["mode"] == "bind-last"
    # state-consistent needs the switch's schema checked; this switch is not reachable
    refused(
        http, "PATCH", "/v1/gateways/tor1", {"mode": "state-consistent"}, status=409, field="ovsdb"
    )
    bindings = ok(http.get("/v1/gateways/tor1/bindings"))["items"]
    assert [(b["port"], b["vlan"], b["network"]) for b in bindings] == [
        ("eth1", 100, fabric["web"]["id"])
    ]
    ok(http.delete("/v1/gateways/tor1/bindings/eth1/100"))
    ok(http.delete("/v1/gateways/tor1"))
    ok(http.delete("/v1/routers/edge"))
    ok(http.delete("/v1/chassis/hv1"))


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        ("POST", "/v1/networks", {"name": "x", "vni": 0}, 400, "vni"),
        ("POST", "/v1/networks", {"name": "x", "vni": 16_777_216}, 400, "vni"),
        ("POST", "/v1/networks", {"name": "x", "vni": "5003"}, 400, "vni"),
        ("POST", "/v1/networks", {"name": "x", "vni": 5001}, 409, "vni"),
        ("POST", "/v1/networks", {"name": "web"}, 409, "name"),
        ("POST", "/v1/networks", {"name": "bad name"}, 400, "name"),
        (
            "POST",
            "/v1/networks",
            {"name": "x", "subnets": [{"cidr": "10.0.3.7/24"}]},
            400,
            "subnets[0].cidr",
        ),
        (
            "POST",
            "/v1/networks",
            {"name": "x", "subnets": [{"cidr": "10.0.3.0/24"}, {"cidr": "10.0.3.128/25"}]},
            400,
            "subnets[1].cidr",
        ),
        (
            "POST",
            "/v1/networks",
            {"name": "x", "subnets": [{"cidr": "10.0.3.0/24", "gateway_ip": "10.0.4.1"}]},
            400,
            "subnets[0].gateway_ip",
        ),
        (
            "POST",
            "/v1/networks",
            {"name": "x", "subnets": [{"cidr": "10.0.3.0/24", "dhcp": {"mtu": 100}}]},
            400,
            "subnets[0].dhcp.mtu",
        ),
        ("POST", "/v1/networks", {"name": "x", "colour": "red"}, 400, "colour"),
        ("POST", "/v1/ports", {"network": "web", "mac": "01:00:5e:00:00:01"}, 400, "mac"),
        ("POST", "/v1/ports", {"network": "web", "mac": "02:00:00:00:01:01"}, 409, "mac"),
        ("POST", "/v1/ports", {"network": "web", "ips": ["10.0.2.9"]}, 400, "ips[0]"),
        ("POST", "/v1/ports", {"network": "web", "ips": ["10.0.1.11"]}, 409, "ips[0]"),
        ("POST", "/v1/ports", {"network": "web", "ips": ["10.0.1.1"]}, 409, "ips[0]"),
        ("POST", "/v1/ports", {"network": "web", "ips": ["not-an-ip"]}, 400, "ips[0]"),
        ("POST", "/v1/ports", {"network": "nowhere"}, 404, "network"),
        ("POST", "/v1/ports", {"network": "web", "chassis": "hv9"}, 404, "chassis"),
        ("POST", "/v1/ports", {"network": "web", "name": "vm1"}, 409, "name"),
        ("POST", "/v1/ports", {"network": "web", "tenant": "blue"}, 404, "network"),
        ("PATCH", "/v1/ports/vm1", {"chassis": "hv1", "unbind": True}, 400, "unbind"),
        ("POST", "/v1/chassis", {"name": "hv2", "tunnel_ip": "192.0.2.21"}, 409, "tunnel_ip"),
        ("POST", "/v1/chassis", {"name": "hv1", "tunnel_ip": "192.0.2.12"}, 409, "name"),
        ("POST", "/v1/chassis", {"name": "hv2", "tunnel_ip": "192.0.2"}, 400, "tunnel_ip"),
        (
            "POST",
            "/v1/gateways",
            {"name": "tor2", "ovsdb": "tcp:127.0.0.1", "tunnel_ip": "192.0.2.22"},
            400,
            "ovsdb",
        ),
        (
            "POST",
            "/v1/gateways",
            {"name": "tor2", "ovsdb": "unix:/x", "tunnel_ip": "192.0.2.22", "mode": "fast"},
            400,
            "mode",
        ),
        (
            "POST",
            "/v1/gateways",
            {"name": "tor2", "ovsdb": "unix:/x", "tunnel_ip": "192.0.2.22", "max_rows_per_txn": 0},
            400,
            "max_rows_per_txn",
        ),
        (
            "POST",
            "/v1/gateways/tor1/bindings",
            {"port": "eth1", "vlan": 5000, "network": "web"},
            400,
            "vlan",
        ),
        (
            "POST",
            "/v1/gateways/tor1/bindings",
            {"port": "eth1", "vlan": -1, "network": "web"},
            400,
            "vlan",
        ),
        (
            "POST",
            "/v1/gateways/tor1/bindings",
            {"port": "eth1", "vlan": 100, "network": "db"},
            409,
            "vlan",
        ),
        (
            "POST",
            "/v1/gateways/tor1/bindings",
            {"port": "eth1", "vlan": 101, "network": "nowhere"},
            404,
            "network",
        ),
        (
            "POST",
            "/v1/gateways/tor9/bindings",
            {"port": "eth1", "vlan": 101, "network": "web"},
            404,
            "gateway",
        ),
        (
            "POST",
            "/v1/routers",
            {"name": "r", "interfaces": [{"network": "web", "ip": "10.0.1.11"}]},
            409,
            "interfaces[0].ip",
        ),
        (
            "POST",
            "/v1/routers",
            {"name": "r", "interfaces": [{"network": "web"}, {"network": "web", "ip": "10.0.1.5"}]},
            400,
            "interfaces[1].network",
        ),
        (
            "POST",
            "/v1/routers",
            {"name": "r", "routes": [{"destination": "0.0.0.0/0", "nexthop": "10.9.9.9"}]},
            400,
            "routes[0].nexthop",
        ),
        ("DELETE", "/v1/networks/web", None, 409, "force"),
        ("DELETE", "/v1/gateways/tor1", None, 409, "force"),
        ("DELETE", "/v1/networks/nowhere", None, 404, "network"),
        ("DELETE", "/v1/gateways/tor1/bindings/eth1/200", None, 404, "vlan"),
        ("PATCH", "/v1/networks/web", {"subnets": [{"cidr": "10.7.0.0/16"}]}, 409, "subnets"),
        ("POST", "/v1/ports", {"network": "web", "ips": ["fe80::1%eth0"]}, 400, "ips[0]"),
        (
            "POST",
            "/v1/routers",
            {"name": "r", "interfaces": [{"network": "db", "mac": "02:00:00:00:01:01"}]},
            201,
            None,
        ),
        (
            "POST",
            "/v1/routers",
            {"name": "r", "interfaces": [{"network": "web", "mac": "02:00:00:00:01:01"}]},
            409,
            "interfaces[0].mac",
        ),
        (
            "POST",
            "/v1/routers",
            {
                "name": "r",
                "interfaces": [{"network": "web"}],
                "routes": [{"destination": "2001:db8::/32", "nexthop": "10.0.1.9"}],
            },
            400,
            "routes[0].nexthop",
        ),
        ("POST", "/v1/chassis", {"name": "hv2", "tunnel_ip": "0.0.0.0"}, 400, "tunnel_ip"),
        ("POST", "/v1/chassis", {"name": "hv2", "tunnel_ip": "224.0.0.1"}, 400, "tunnel_ip"),
        (
            "POST",
            "/v1/chassis",
            {"name": "hv2", "tunnel_ip": "::ffff:192.0.2.11"},
            400,
            "tunnel_ip",
        ),
        (
            "POST",
            "/v1/gateways/tor1/bindings",
            {"port": "eth\u00001", "vlan": 7, "network": "web"},
            400,
            "port",
        ),
        (
            "POST",
            "/v1/bulk",
            {
                "items": [
                    {
                        "kind": "binding",
                        "gateway": "tor1",
                        "spec": {"port": "eth2", "vlan": 9999, "network": "web"},
                    }
                ]
            },
            400,
            "items[0].spec.vlan",
        ),
        (
            "POST",
            "/v1/bulk",
            {"items": [{"kind": "port", "op": "delete", "ref": "vm9"}]},
            404,
            "items[0].port",
        ),
    ],
)
def test_every_rule_refuses_bad_input_and_keeps_data(
    http: httpx.Client,
    fabric: dict[str, Any],
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str,
) -> None:
    if status < 400:  # a control case: the same shape with a valid value is accepted
        assert http.request(method, path, json=body).status_code == status
        return
    refused(http, method, path, body, status=status, field=field)


def test_shrinking_a_subnet_under_a_route_is_refused(
    http: httpx.Client, fabric: dict[str, Any]
) -> None:
    ok(
        http.post(
            "/v1/routers",
            json={
                "name": "edge",
                "interfaces": [{"network": "db"}],
                "routes": [{"destination": "0.0.0.0/0", "nexthop": "10.0.2.200"}],
            },
        ),
        201,
    )
    refused(
        http,
        "PATCH",
        "/v1/networks/db",
        {"subnets": [{"cidr": "10.0.2.0/25"}]},
        status=409,
        field="subnets",
    )
    assert (
        ok(http.patch("/v1/routers/edge", json={"name": "edge2"}))["routes"][0]["nexthop"]
        == "10.0.2.200"
    )


def test_force_delete_removes_dependents(http: httpx.Client, fabric: dict[str, Any]) -> None:
    ok(http.patch("/v1/ports/vm1", json={"chassis": "hv1"}))
    refused(http, "DELETE", "/v1/chassis/hv1", status=409, field="force")
    ok(http.delete("/v1/chassis/hv1", params={"force": "true"}))
    assert ok(http.get("/v1/ports/vm1"))["chassis"] is None
    ok(http.delete("/v1/networks/web", params={"force": "true"}))
    assert http.get("/v1/ports/vm1").status_code == 404
    assert ok(http.get("/v1/gateways/tor1/bindings"))["items"] == []


def test_malformed_requests_are_4xx(http: httpx.Client, fabric: dict[str, Any]) -> None:
    reply = http.post(
        "/v1/networks", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert reply.status_code == 400 and reply.json()["error"]["code"] == "invalid"
    assert http.post("/v1/networks", json=[1, 2]).status_code == 400
    assert http.get("/v1/nothing").json()["error"]["code"] == "not_found"
    assert http.put("/v1/networks/web", json={}).status_code == 405
    assert http.get("/v1/networks", params={"limit": 0}).status_code == 400


def test_lists_paginate(http: httpx.Client) -> None:
    items = [{"kind": "network", "spec": {"name": f"n{i:03d}"}} for i in range(25)]
    ok(http.post("/v1/bulk", json={"items": items}))
    seen, after = [], None
    while True:
        page = ok(
            http.get("/v1/networks", params={"limit": 10, **({"after": after} if after else {})})
        )
        assert page["total"] == 25
        seen += [n["name"] for n in page["items"]]
        after = page["next"]
        if after is None:
            break
    assert sorted(seen) == [f"n{i:03d}" for i in range(25)]


def test_bulk_creates_everything_or_nothing(http: httpx.Client) -> None:
    items: list[dict[str, Any]] = []
    for n in range(50):
        items.append(
            {
                "kind": "network",
                "spec": {
                    "name": f"net{n}",
                    "vni": 10_000 + n,
                    "subnets": [{"cidr": f"10.{n}.0.0/24"}],
                },
            }
        )
        items += [
            {
                "kind": "port",
                "spec": {
                    "network": f"net{n}",
                    "mac": f"02:00:00:00:{n:02x}:{p:02x}",
                    "ips": [f"10.{n}.0.{p + 10}"],
                },
            }
            for p in range(10)
        ]
    bad = [*items, {"kind": "port", "spec": {"network": "net3", "mac": "02:00:00:00:03:01"}}]
    error = refused(
        http, "POST", "/v1/bulk", {"items": bad}, status=409, field=f"items[{len(items)}].spec.mac"
    )
    assert "02:00:00:00:03:01" in error["message"]
    result = ok(http.post("/v1/bulk", json={"items": items}))
    assert result["created"] == 550 and len(result["ids"]) == 550
    status = ok(http.get("/v1/status"))
    assert status["objects"]["networks"] == 50 and status["objects"]["ports"] == 500
    deletes = [
        {"kind": "network", "op": "delete", "ref": f"net{n}", "force": True} for n in range(50)
    ]
    assert ok(http.post("/v1/bulk", json={"items": deletes}))["deleted"] == 50
    assert ok(http.get("/v1/status"))["objects"]["ports"] == 0


def test_watch_streams_snapshot_then_changes_and_resumes(
    http: httpx.Client, fabric: dict[str, Any], api: str
) -> None:
    def read_lines(params: dict[str, Any], count: int) -> list[dict[str, Any]]:
        lines = []
        with httpx.stream("GET", f"{api}/v1/watch", params=params, timeout=10) as stream:
            for line in stream.iter_lines():
                lines.append(json.loads(line))
                if len(lines) == count:
                    break
        return lines

    snap, synced = read_lines({"prefix": "/tether/model/networks/"}, 2)
    assert snap["snapshot"] and synced["synced"]
    names = {json.loads(base64.b64decode(e["value"]))["name"] for e in snap["events"]}
    assert names == {"web", "db"}
    start = snap["revision"] + 1
    ok(http.post("/v1/networks", json={"name": "late"}), 201)
    ok(http.delete("/v1/networks/db"))
    events = [
        e
        for line in read_lines({"prefix": "/tether/model/networks/", "revision": start}, 2)
        for e in line.get("events", [])
    ]
    assert [e["type"] for e in events] == ["put", "delete"]
    assert http.get("/v1/watch", params={"prefix": "/etc/"}).json()["error"]["field"] == "prefix"


def test_operations_endpoints(http: httpx.Client, fabric: dict[str, Any]) -> None:
    assert ok(http.get("/healthz"))["ok"] is True
    status = ok(http.get("/v1/status"))
    assert status["store"]["backend"] == "sqlite" and status["objects"]["bindings"] == 1
    metrics = http.get("/metrics").text
    assert 'tether_objects{kind="networks"} 2.0' in metrics
    assert "tether_api_requests_total" in metrics
    spec = ok(http.get("/openapi.json"))
    assert {"/v1/networks", "/v1/bulk", "/v1/watch", "/v1/gateways/{ref}/bindings"} <= set(
        spec["paths"]
    )


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5)
    ),
    max_leaves=12,
)
bodies = st.dictionaries(
    st.sampled_from(
        [
            "name",
            "vni",
            "subnets",
            "network",
            "mac",
            "ips",
            "chassis",
            "tunnel_ip",
            "ovsdb",
            "mode",
            "port",
            "vlan",
            "interfaces",
            "routes",
            "items",
            "tenant",
            "unbind",
        ]
    ),
    json_values,
    max_size=6,
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    path=st.sampled_from(
        [
            "/v1/networks",
            "/v1/ports",
            "/v1/routers",
            "/v1/chassis",
            "/v1/gateways",
            "/v1/gateways/tor1/bindings",
            "/v1/bulk",
            "/v1/ports/vm1",
        ]
    ),
    body=bodies,
)
def test_no_input_gives_a_500(
    http: httpx.Client, fabric: dict[str, Any], path: str, body: dict[str, Any]
) -> None:
    method = "PATCH" if path == "/v1/ports/vm1" else "POST"
    reply = http.request(method, path, json=body)
    assert reply.status_code < 500, reply.text
    if reply.status_code >= 400:
        assert set(reply.json()["error"]) == {"code", "message", "field"}


def test_concurrent_router_edits_never_lose_each_other(
    http: httpx.Client, fabric: dict[str, Any], api: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    ok(http.post("/v1/routers", json={"name": "edge", "interfaces": [{"network": "web"}]}), 201)

    def add(i: int) -> int:
        with httpx.Client(base_url=api, timeout=30) as client:
            body = {"destination": f"172.16.{i}.0/24", "nexthop": "10.0.1.254"}
            return client.post("/v1/routers/edge/routes", json=body).status_code

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(add, range(16))) == {200}
    routes = ok(http.get("/v1/routers/edge"))["routes"]
    assert sorted(r["destination"] for r in routes) == sorted(f"172.16.{i}.0/24" for i in range(16))
    ok(http.delete("/v1/routers/edge/routes/172.16.3.0/24"))
    refused(
        http, "DELETE", "/v1/routers/edge/routes/172.16.3.0/24", status=404, field="destination"
    )
    refused(http, "DELETE", "/v1/routers/edge/routes/nonsense", status=400, field="destination")
    refused(
        http,
        "POST",
        "/v1/routers/edge/interfaces",
        {"network": "web"},
        status=400,
        field="interfaces[1].network",
    )
    assert (
        len(ok(http.post("/v1/routers/edge/interfaces", json={"network": "db"}))["interfaces"]) == 2
    )
    assert len(ok(http.delete("/v1/routers/edge/interfaces/db"))["interfaces"]) == 1
