"""Status of networks, routers and bindings rolled up from what realizes them (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from tether.model.reports import ChassisReport
from tether.model.resources import Status
from tether.model.rollup import Part, chassis_part, gateway_part, rollup

REALIZED = Status(state="realized", message="")


def pending(message: str) -> Status:
    return Status(state="pending", message=message)


def error(message: str) -> Status:
    return Status(state="error", message=message)


def test_the_worst_part_wins_and_is_named_with_how_many_more() -> None:
    parts = [
        Part("port vm1", REALIZED),
        Part("port vm2", pending("waiting for chassis hv1 to apply it")),
        Part("port vm3", pending("no interface for it on chassis hv2")),
    ]
    assert rollup(parts, "-") == pending(
        "port vm2: waiting for chassis hv1 to apply it (and 1 more)"
    )
    parts.append(Part("gateway tor1", error("transaction timed out")))
    assert rollup(parts, "-") == error("gateway tor1: transaction timed out")
    assert rollup([Part("port vm1", REALIZED)], "-") == REALIZED


def test_nothing_to_realize_through_is_pending_with_why() -> None:
    assert rollup([], "no bound port") == pending("no bound port")


RUNTIME: dict[str, Any] = {
    "state": "realized",
    "connection": "connected",
    "desired_generation": 40,
    "vlan_bindings": [["eth1", 100]],
    "last_error": "",
}
ETH1 = ("eth1", 100)


@pytest.mark.parametrize(
    ("runtime", "binding", "changed_at", "expected"),
    [
        (None, ETH1, 30, pending("its agent has not reported yet")),
        (RUNTIME, ETH1, 30, REALIZED),
        (RUNTIME, ETH1, 40, REALIZED),
        # the agent was not given the binding yet (its desired state is older)
        (RUNTIME, ETH1, 41, pending("applying its latest change")),
        (RUNTIME, ("eth1", 200), 30, pending("port eth1 VLAN 200 is not bound yet")),
        (RUNTIME, ("eth2", 100), 30, pending("port eth2 VLAN 100 is not bound yet")),
        ({**RUNTIME, "state": "error", "last_error": "refused"}, ETH1, 30, error("refused")),
        ({**RUNTIME, "state": "pending"}, ETH1, 30, pending("applying its latest change")),
        (
            {**RUNTIME, "state": "pending", "connection": "connecting"},
            ETH1,
            30,
            pending("switch connecting"),
        ),
    ],
)
def test_a_gateway_part_follows_its_agents_record(
    runtime: dict[str, Any] | None, binding: tuple[str, int], changed_at: int, expected: Status
) -> None:
    assert gateway_part(runtime, binding, changed_at) == expected


def test_a_chassis_part_needs_the_latest_change_applied_by_a_live_agent() -> None:
    applied = ChassisReport(revision=10)
    assert chassis_part(applied, alive=True, changed_at=10) == REALIZED
    assert chassis_part(applied, alive=True, changed_at=11) == pending(
        "has not applied the latest change"
    )
    assert chassis_part(None, alive=True, changed_at=1) == pending("has not reported yet")
    assert chassis_part(applied, alive=False, changed_at=1).state == "error"
    failed = ChassisReport(revision=10, error="bundle failed")
    assert chassis_part(failed, alive=True, changed_at=1) == error("bundle failed")
