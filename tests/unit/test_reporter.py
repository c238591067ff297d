"""The agent's reporter: what it sends, what it leaves out, how it retries."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from tether.agent import reporter as reporter_module
from tether.agent.reporter import Reporter
from tether.agent.runner import UNKNOWN_CHASSIS, _newest_revision
from tether.model import Catalog
from tether.model.resources import Chassis, Network, Port, Router, RouterInterface

pytestmark = pytest.mark.anyio


async def _nothing() -> None:
    return None


def accepted_after(reporter: Reporter, revision: int, realized: list[str]) -> None:
    reporter.applied(revision, revision, realized, {})
    reporter.accepted = reporter.due


def test_a_change_elsewhere_in_the_fabric_sends_nothing() -> None:
    reporter = Reporter("hv1", _nothing)
    accepted_after(reporter, 10, ["p1"])
    reporter.applied(50, 10, ["p1"], {})  # the model moved on, none of hv1's ports did
    assert reporter.due is reporter.accepted


@pytest.mark.parametrize(
    ("newest", "realized", "errors", "error"),
    [
        (11, ["p1"], {}, ""),  # one of its ports (or their networks) changed
        (10, ["p1", "p2"], {}, ""),  # another port realized
        (10, [], {}, ""),  # unplugged
        (10, ["p1"], {"p2": "could not open network device"}, ""),
        (10, ["p1"], {}, "binding failed"),
    ],
)
def test_what_a_reader_would_see_differently_is_sent(
    newest: int, realized: list[str], errors: dict[str, str], error: str
) -> None:
    reporter = Reporter("hv1", _nothing)
    accepted_after(reporter, 10, ["p1"])
    reporter.applied(50, newest, realized, errors, error)
    assert reporter.due is not None and reporter.due != reporter.accepted
    assert reporter.due.revision == 50


def test_a_failure_keeps_what_was_applied_and_a_lost_switch_keeps_nothing() -> None:
    reporter = Reporter("hv1", _nothing)
    accepted_after(reporter, 10, ["p1"])
    reporter.failed("ovs-ofctl: timed out")
    assert reporter.due is not None
    assert (set(reporter.due.ports), reporter.due.error) == ({"p1"}, "ovs-ofctl: timed out")
    reporter.lost("lost the OpenFlow session with br-int")
    assert reporter.due.ports == {} and reporter.due.revision == 10


async def _run_with(answers: list[int], reporter: Reporter) -> list[dict[str, Any]]:
    """Run the reporter against a controller answering ``answers`` in turn (then 200)."""
    bodies: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        code = answers.pop(0) if answers else 200
        if code == 404:
            return httpx.Response(code, json={"error": {"code": "not_found", "field": "chassis"}})
        return httpx.Response(code, json={})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handle), base_url="http://controller"
    ) as http:
        task = asyncio.ensure_future(reporter.run(http))
        await asyncio.sleep(0.3)
        task.cancel()
    return bodies


async def test_a_deleted_chassis_registers_again_before_the_report_is_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registered = []

    async def register() -> None:
        registered.append(True)

    reporter = Reporter("hv1", register)
    reporter.applied(3, 3, ["p1"], {})
    bodies = await _run_with([404], reporter)
    assert registered == [True] and len(bodies) == 2
    assert reporter.accepted == reporter.due


async def test_a_refused_report_is_not_retried_and_a_failed_one_is(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reporter_module, "RETRY_SECONDS", 0.01)
    reporter = Reporter("hv1", _nothing)
    reporter.applied(3, 3, ["p1"], {})
    assert len(await _run_with([400], reporter)) == 1
    assert reporter.accepted is None

    reporter = Reporter("hv1", _nothing)
    reporter.applied(3, 3, ["p1"], {})
    assert len(await _run_with([503, 503], reporter)) == 3
    assert reporter.accepted == reporter.due and reporter.sent == 1


def test_the_newest_revision_covers_the_chassis_its_ports_and_their_networks() -> None:
    catalog = Catalog()
    assert _newest_revision(catalog, "hv1") == UNKNOWN_CHASSIS, "deleted: the report must go"
    catalog.put("chassis", Chassis(id="c1", name="hv1", tunnel_ip="192.0.2.11"))
    catalog.put("networks", Network(id="n1", name="web", vni=5001))
    catalog.put("networks", Network(id="n2", name="db", vni=5002))
    catalog.put("ports", Port(id="p1", network="n1", mac="02:00:00:00:00:01", chassis="hv1"))
    catalog.put("ports", Port(id="p2", network="n2", mac="02:00:00:00:00:02", chassis="hv2"))
    catalog.mod_revisions.update(
        {("chassis", "c1"): 3, ("networks", "n1"): 5, ("ports", "p1"): 4, ("networks", "n2"): 9}
    )
    assert _newest_revision(catalog, "hv1") == 5  # not n2: no port of hv1 is on it
    catalog.mod_revisions[("chassis", "c1")] = 12  # registered again
    assert _newest_revision(catalog, "hv1") == 12

    # a router on n1 and n2: hv1 runs its part, so the router and n2 count too
    router = Router(
        id="r1",
        name="edge",
        interfaces=[
            RouterInterface(network="n1", ip="10.0.1.1", mac="02:00:00:00:ff:01"),
            RouterInterface(network="n2", ip="10.0.2.1", mac="02:00:00:00:ff:02"),
        ],
    )
    catalog.put("routers", router)
    catalog.mod_revisions[("routers", "r1")] = 14
    assert _newest_revision(catalog, "hv1") == 14
    catalog.mod_revisions[("networks", "n2")] = 20
    assert _newest_revision(catalog, "hv1") == 20
