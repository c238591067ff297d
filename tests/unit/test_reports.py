"""Port and chassis status from the agents' reports (pure rules)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tether.model.reports import ChassisReport, PortReport, chassis_status, port_status
from tether.model.resources import Chassis, Port, Status

HV1 = Chassis(id="c1", name="hv1", tunnel_ip="192.0.2.11")
PORT = Port(id="p1", name="vm1", network="n1", mac="02:00:00:00:01:01", ips=[], chassis="hv1")


def report(revision: int, error: str = "", **ports: PortReport) -> ChassisReport:
    return ChassisReport(revision=revision, ports=ports, error=error)


REALIZED = PortReport(state="realized")


def test_a_port_is_realized_once_its_chassis_applied_this_version_of_it() -> None:
    assert port_status(PORT, HV1, report(10, p1=REALIZED), changed_at=10).state == "realized"
    assert port_status(PORT, HV1, report(12, p1=REALIZED), changed_at=10).state == "realized"


def test_a_port_changed_after_the_report_is_pending_again() -> None:
    status = port_status(PORT, HV1, report(9, p1=REALIZED), changed_at=10)
    assert status == Status(state="pending", message="waiting for chassis hv1 to apply it")


@pytest.mark.parametrize(
    ("port", "chassis", "chassis_report", "message"),
    [
        (PORT.model_copy(update={"chassis": None}), None, None, "not bound to a chassis"),
        (PORT, None, None, "not bound to a chassis"),  # its chassis is gone
        (PORT, HV1, None, "chassis hv1 has not reported yet"),
        (PORT, HV1, report(10), "no interface for it on chassis hv1"),
    ],
)
def test_pending_says_why(
    port: Port, chassis: Chassis | None, chassis_report: ChassisReport | None, message: str
) -> None:
    assert port_status(port, chassis, chassis_report, changed_at=10) == Status(
        state="pending", message=message
    )


def test_an_interface_open_vswitch_cannot_attach_is_an_error_with_its_reason() -> None:
    broken = PortReport(state="error", message="could not open network device tap9")
    status = port_status(PORT, HV1, report(10, p1=broken), changed_at=10)
    assert status == Status(state="error", message="could not open network device tap9")


def test_a_failed_sync_shows_on_ports_it_could_not_apply_but_not_on_applied_ones() -> None:
    failing = report(10, "ovs-ofctl: bundle rejected", p1=REALIZED)
    assert port_status(PORT, HV1, failing, changed_at=10).state == "realized"
    status = port_status(PORT, HV1, failing, changed_at=11)
    assert status == Status(state="error", message="chassis hv1: ovs-ofctl: bundle rejected")


def test_chassis_status_follows_its_agent() -> None:
    assert chassis_status(None).state == "pending"
    assert chassis_status(report(3)) == Status(state="realized", message="")
    assert chassis_status(report(3, "no bridge")) == Status(state="error", message="no bridge")


@pytest.mark.parametrize(
    "bad",
    [
        {"ports": {}},  # no revision
        {"revision": -1},
        {"revision": "7"},
        {"revision": 1, "ports": {"p1": {"state": "pending"}}},
        {"revision": 1, "ports": {"p1": {"state": "realized", "extra": 1}}},
        {"revision": 1, "error": "x" * 1001},
    ],
)
def test_bad_reports_are_refused(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        ChassisReport.model_validate(bad)


def test_a_report_stands_only_while_its_agent_is_alive() -> None:
    standing = report(10, p1=REALIZED)
    assert port_status(PORT, HV1, standing, changed_at=10, alive=True).state == "realized"
    silent = port_status(PORT, HV1, standing, changed_at=10, alive=False)
    assert silent.state == "error"
    assert silent.message.startswith("the agent of chassis hv1 is not heard from")
    assert silent.message.endswith("changes no longer reach its switch")
    assert chassis_status(standing, alive=True).state == "realized"
    assert chassis_status(standing, alive=False).state == "error"
    assert chassis_status(report(10, error="bundle failed"), alive=False).message.startswith(
        "its agent is not heard from"
    ), "a silent agent's last error is old news"


def test_without_any_report_presence_changes_nothing() -> None:
    """An agent that never reported is pending either way; an unbound port is not the
    chassis's business."""
    assert chassis_status(None, alive=False).state == "pending"
    assert port_status(PORT, HV1, None, changed_at=10, alive=False).state == "pending"
    unbound = PORT.model_copy(update={"chassis": None})
    assert port_status(unbound, None, None, changed_at=10, alive=False).state == "pending"
