"""Port and chassis status from the agents' reports, through a real API server."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.integration.test_api import ok
from tests.servers import running_api
from tether.store import open_store


def revision(http: httpx.Client) -> int:
    return int(ok(http.get("/healthz"))["revision"])


def status_of(http: httpx.Client, path: str) -> dict[str, str]:
    return dict(ok(http.get(path))["status"])


@pytest.fixture
def ports(http: httpx.Client) -> dict[str, Any]:
    return make_ports(http)


def make_ports(http: httpx.Client) -> dict[str, Any]:
    """Network web; vm1 bound to chassis hv1, vm2 unbound."""
    ok(http.post("/v1/networks", json={"name": "web", "subnets": [{"cidr": "10.0.1.0/24"}]}), 201)
    ok(http.post("/v1/chassis", json={"name": "hv1", "tunnel_ip": "192.0.2.11"}), 201)
    vm1 = ok(http.post("/v1/ports", json={"network": "web", "name": "vm1"}), 201)
    vm2 = ok(http.post("/v1/ports", json={"network": "web", "name": "vm2"}), 201)
    ok(http.patch("/v1/ports/vm1", json={"chassis": "hv1"}))
    return {"vm1": vm1, "vm2": vm2}


def stored_reports(http: httpx.Client, prefix: str = "/tether/status/chassis/") -> int:
    """How many chassis reports (or other keys under ``prefix``) the store holds (the watch
    API's snapshot of the prefix)."""
    params = {"prefix": prefix}
    with http.stream("GET", "/v1/watch", params=params) as reply:
        snapshot = json.loads(next(reply.iter_lines()))
    assert snapshot["snapshot"]
    return len(snapshot["events"])


def test_a_bulk_delete_of_a_chassis_drops_its_report(
    http: httpx.Client, ports: dict[str, Any]
) -> None:
    ok(report(http, {"revision": 1}))
    ok(http.patch("/v1/ports/vm1", json={"unbind": True}))
    ok(http.post("/v1/bulk", json={"items": [{"kind": "chassis", "op": "delete", "ref": "hv1"}]}))
    assert stored_reports(http) == 0


def report(http: httpx.Client, body: dict[str, Any], chassis: str = "hv1") -> httpx.Response:
    return http.put(f"/v1/chassis/{chassis}/report", json=body)


def test_a_port_is_realized_when_its_chassis_reports_this_version_of_it(
    http: httpx.Client, ports: dict[str, Any]
) -> None:
    vm1 = ports["vm1"]["id"]
    assert status_of(http, "/v1/ports/vm1") == {
        "state": "pending",
        "message": "chassis hv1 has not reported yet",
    }
    assert status_of(http, "/v1/chassis/hv1")["state"] == "pending"
    model_revision = ok(http.get("/v1/status"))["model_revision"]

    answer = ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    assert answer["name"] == "hv1" and answer["status"]["state"] == "realized"
    assert status_of(http, "/v1/ports/vm1") == {"state": "realized", "message": ""}
    assert status_of(http, "/v1/chassis/hv1") == {"state": "realized", "message": ""}
    listed = {p["name"]: p["status"] for p in ok(http.get("/v1/ports"))["items"]}
    assert listed["vm1"]["state"] == "realized"
    assert listed["vm2"] == {"state": "pending", "message": "not bound to a chassis"}
    assert ok(http.get("/v1/chassis"))["items"][0]["status"]["state"] == "realized"
    assert ok(http.get("/v1/status"))["model_revision"] == model_revision, "not a model change"

    # changed after the agent's last sync: pending until the agent applied the change
    ok(http.patch("/v1/ports/vm1", json={"ips": ["10.0.1.50"]}))
    assert status_of(http, "/v1/ports/vm1") == {
        "state": "pending",
        "message": "waiting for chassis hv1 to apply it",
    }
    ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    assert status_of(http, "/v1/ports/vm1")["state"] == "realized"

    # a change to its network counts too
    ok(http.patch("/v1/networks/web", json={"subnets": [{"cidr": "10.0.0.0/16"}]}))
    assert status_of(http, "/v1/ports/vm1")["state"] == "pending"

    # bound elsewhere: hv1's report no longer speaks for it
    ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    ok(http.post("/v1/chassis", json={"name": "hv2", "tunnel_ip": "192.0.2.12"}), 201)
    ok(http.patch("/v1/ports/vm1", json={"chassis": "hv2"}))
    assert status_of(http, "/v1/ports/vm1") == {
        "state": "pending",
        "message": "chassis hv2 has not reported yet",
    }


def test_errors_show_on_the_port_the_chassis_and_in_the_status_summary(
    http: httpx.Client, ports: dict[str, Any]
) -> None:
    vm1 = ports["vm1"]["id"]
    broken = {"state": "error", "message": "could not open network device tap9 (No such device)"}
    ok(report(http, {"revision": revision(http), "ports": {vm1: broken}}))
    assert status_of(http, "/v1/ports/vm1") == broken
    errors = ok(http.get("/v1/status"))["errors"]
    assert {"kind": "ports", "id": vm1, "name": "vm1", "message": broken["message"]} in errors

    ok(report(http, {"revision": revision(http), "error": "bridge br-int is gone"}))
    assert status_of(http, "/v1/chassis/hv1") == {
        "state": "error",
        "message": "bridge br-int is gone",
    }
    errors = ok(http.get("/v1/status"))["errors"]
    assert [e["kind"] for e in errors] == ["chassis"]
    assert errors[0]["message"] == "bridge br-int is gone"
    # the port was not in that report: the failed sync is why
    assert status_of(http, "/v1/ports/vm1") == {
        "state": "error",
        "message": "chassis hv1: bridge br-int is gone",
    }


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ports": {}}, "revision"),
        ({"revision": -1}, "revision"),
        ({"revision": "seven"}, "revision"),
        ({"revision": 1, "ports": {"p1": {"state": "up"}}}, "ports.p1.state"),
        ({"revision": 1, "ports": {"p1": {"state": "realized", "why": ""}}}, "ports.p1.why"),
        ({"revision": 1, "error": "x" * 1001}, "error"),
        ({"revision": 1, "extra": True}, "extra"),
        ({"revision": 1, "ports": {"": {"state": "realized"}}}, "ports"),
        ({"revision": 1, "ports": {"p" * 65: {"state": "realized"}}}, "ports"),
        ({"revision": 10**9}, "revision"),  # ahead of the store: it would vouch for the future
    ],
)
def test_bad_reports_get_a_400_naming_the_field_and_change_nothing(
    http: httpx.Client, ports: dict[str, Any], body: dict[str, Any], field: str
) -> None:
    vm1 = ports["vm1"]["id"]
    ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    reply = report(http, body)
    assert reply.status_code == 400, reply.text
    assert str(reply.json()["error"]["field"]).startswith(field), reply.text
    assert status_of(http, "/v1/ports/vm1")["state"] == "realized", "the last report stands"


def test_only_known_chassis_report_and_a_deleted_chassis_leaves_no_report(
    http: httpx.Client, ports: dict[str, Any]
) -> None:
    reply = report(http, {"revision": 1}, chassis="hv9")
    assert reply.status_code == 404 and reply.json()["error"]["field"] == "chassis"
    assert http.get("/v1/chassis/hv1/report").status_code == 404

    ok(report(http, {"revision": 1, "error": "old news"}))
    assert ok(http.get("/v1/chassis/hv1/report"))["error"] == "old news"
    assert stored_reports(http) == 1
    ok(http.patch("/v1/ports/vm1", json={"unbind": True}))
    ok(http.delete("/v1/chassis/hv1"))
    assert stored_reports(http) == 0, "the deleted chassis's report is gone from the store"
    ok(http.post("/v1/chassis", json={"name": "hv1", "tunnel_ip": "192.0.2.11"}), 201)
    assert http.get("/v1/chassis/hv1/report").status_code == 404
    assert status_of(http, "/v1/chassis/hv1")["state"] == "pending"
    assert ok(http.get("/v1/status"))["errors"] == []


AGENT_TIMEOUT = 3


async def _wipe(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        await store.delete("", prefix=True)  # one etcd per session: start each test empty
    finally:
        await store.close()


@pytest.fixture
def quick(store_url: str) -> Iterator[httpx.Client]:
    """A client of a server, on each backend, that takes an agent for gone after 3 s
    without a heartbeat (the presence leases are the store's own)."""
    if store_url.startswith("etcd"):
        asyncio.run(_wipe(store_url))
    with (
        running_api(store_url, agent_timeout=AGENT_TIMEOUT) as url,
        httpx.Client(base_url=url, timeout=30) as client,
    ):
        yield client


def heartbeat(http: httpx.Client, chassis: str = "hv1") -> httpx.Response:
    return http.put(f"/v1/chassis/{chassis}/presence")


def wait_for(check: Any, what: str, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
        time.sleep(0.1)


def test_heartbeats_write_nothing_and_a_silent_agent_turns_its_chassis_to_error(
    quick: httpx.Client,
) -> None:
    http = quick
    vm1 = make_ports(http)["vm1"]["id"]
    ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    assert status_of(http, "/v1/ports/vm1")["state"] == "realized"
    before = revision(http)
    for _ in range(3):
        answer = ok(heartbeat(http))
        assert answer == {"chassis": "hv1", "alive": True, "ttl": AGENT_TIMEOUT}
        time.sleep(AGENT_TIMEOUT / 3)
    assert revision(http) == before, "a heartbeat refreshes a lease; it writes no revision"
    assert status_of(http, "/v1/chassis/hv1")["state"] == "realized", "kept alive past the ttl"

    # silence: once the timeout has passed, nobody vouches for hv1 or its ports
    wait_for(lambda: status_of(http, "/v1/chassis/hv1")["state"] == "error", "hv1 in error")
    chassis = status_of(http, "/v1/chassis/hv1")
    assert chassis["message"].startswith("its agent is not heard from")
    port = status_of(http, "/v1/ports/vm1")
    assert port["state"] == "error"
    assert port["message"].startswith("the agent of chassis hv1 is not heard from")
    assert status_of(http, "/v1/ports/vm2")["state"] == "pending", "not on hv1"
    errors = {(e["kind"], e["name"]) for e in ok(http.get("/v1/status"))["errors"]}
    assert {("chassis", "hv1"), ("ports", "vm1")} <= errors
    assert ("ports", "vm2") not in errors

    # back: its last report stands again
    ok(heartbeat(http))
    assert status_of(http, "/v1/ports/vm1") == {"state": "realized", "message": ""}
    assert ok(http.get("/v1/status"))["errors"] == []


def test_a_stopping_agent_ends_its_presence_at_once(quick: httpx.Client) -> None:
    http = quick
    vm1 = make_ports(http)["vm1"]["id"]
    ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    assert ok(http.delete("/v1/chassis/hv1/presence")) == {
        "chassis": "hv1",
        "alive": False,
        "ttl": 0,
    }
    assert status_of(http, "/v1/ports/vm1")["state"] == "error"
    assert status_of(http, "/v1/chassis/hv1")["state"] == "error"
    ok(http.delete("/v1/chassis/hv1/presence"))  # ending it twice is no error
    ok(heartbeat(http))
    assert status_of(http, "/v1/ports/vm1")["state"] == "realized"


def test_presence_of_unknown_or_deleted_chassis(quick: httpx.Client) -> None:
    http = quick
    for reply in (heartbeat(http, "nope"), http.delete("/v1/chassis/nope/presence")):
        assert reply.status_code == 404
        assert reply.json()["error"]["field"] == "chassis"
    make_ports(http)
    ok(heartbeat(http))
    assert stored_reports(http, "/tether/status/presence/") == 1
    ok(http.patch("/v1/ports/vm1", json={"unbind": True}))
    ok(http.delete("/v1/chassis/hv1"))
    assert stored_reports(http, "/tether/status/presence/") == 0, "gone with its chassis"
    assert heartbeat(http).status_code == 404


def test_a_new_agent_timeout_applies_to_the_presences_already_there(store_url: str) -> None:
    """A controller restarted with another ``agent_timeout`` moves each presence to a lease
    of the new one at its next heartbeat: agents are told the new ttl and held to it."""
    if store_url.startswith("etcd"):
        asyncio.run(_wipe(store_url))
    with running_api(store_url, agent_timeout=3) as url, httpx.Client(base_url=url) as http:
        make_ports(http)
        assert ok(heartbeat(http))["ttl"] == 3
    with running_api(store_url, agent_timeout=6) as url, httpx.Client(base_url=url) as http:
        ok(report(http, {"revision": revision(http)}))
        assert ok(heartbeat(http))["ttl"] == 6
        time.sleep(4)  # past the old 3 s, inside the new 6 s
        assert status_of(http, "/v1/chassis/hv1")["state"] == "realized"


def test_a_network_and_a_router_are_realized_through_their_chassis(
    quick: httpx.Client,
) -> None:
    """A network waits for its bound ports (not the unbound ones), a router for every
    chassis carrying one of its networks to apply its latest version; both turn to error
    when that chassis's agent falls silent."""
    http = quick
    vm1 = make_ports(http)["vm1"]["id"]
    ok(http.post("/v1/networks", json={"name": "db", "subnets": [{"cidr": "10.0.2.0/24"}]}), 201)
    edge = {"name": "edge", "interfaces": [{"network": "web"}, {"network": "db"}]}
    ok(http.post("/v1/routers", json=edge), 201)
    assert status_of(http, "/v1/networks/web") == {
        "state": "pending",
        "message": "port vm1: chassis hv1 has not reported yet",
    }
    assert status_of(http, "/v1/networks/db")["message"].startswith("not on any chassis")
    assert status_of(http, "/v1/routers/edge") == {
        "state": "pending",
        "message": "chassis hv1: has not reported yet",
    }

    ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    assert status_of(http, "/v1/networks/web") == {"state": "realized", "message": ""}
    assert status_of(http, "/v1/routers/edge") == {"state": "realized", "message": ""}
    listed = {n["name"]: n["status"]["state"] for n in ok(http.get("/v1/networks"))["items"]}
    assert listed == {"web": "realized", "db": "pending"}
    assert ok(http.get("/v1/routers"))["items"][0]["status"]["state"] == "realized"

    # a change to the router's other network: hv1 runs the router, so it must apply it
    ok(http.patch("/v1/networks/db", json={"name": "database"}))
    assert status_of(http, "/v1/routers/edge") == {
        "state": "pending",
        "message": "chassis hv1: has not applied the latest change",
    }
    assert status_of(http, "/v1/networks/web")["state"] == "realized", "web did not change"
    ok(report(http, {"revision": revision(http), "ports": {vm1: {"state": "realized"}}}))
    assert status_of(http, "/v1/routers/edge")["state"] == "realized"

    # a port on web bound to hv2, whose agent reported before: hv2 now runs the router too,
    # and has not applied it yet, however recent its last report
    ok(http.post("/v1/chassis", json={"name": "hv2", "tunnel_ip": "192.0.2.12"}), 201)
    ok(report(http, {"revision": revision(http)}, chassis="hv2"))
    ok(http.patch("/v1/ports/vm2", json={"chassis": "hv2"}))
    assert status_of(http, "/v1/routers/edge") == {
        "state": "pending",
        "message": "chassis hv2: has not applied the latest change",
    }
    vm2 = ok(http.get("/v1/ports/vm2"))["id"]
    ok(report(http, {"revision": revision(http), "ports": {vm2: {"state": "realized"}}}, "hv2"))
    assert status_of(http, "/v1/routers/edge")["state"] == "realized"

    ok(http.delete("/v1/chassis/hv1/presence"))
    assert status_of(http, "/v1/networks/web")["message"].startswith(
        "port vm1: the agent of chassis hv1 is not heard from"
    )
    assert status_of(http, "/v1/routers/edge")["state"] == "error"
