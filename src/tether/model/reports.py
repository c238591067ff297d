"""What a hypervisor agent reports, and the status of ports and chassis derived from it. Pure.

After each sync, the agent of a chassis reports (``PUT /v1/chassis/{ref}/report``):

* ``revision`` — the store revision of the model its flows were compiled from;
* ``ports`` — its ports that are ``realized`` (the VIF is on the bridge and the bundle with
  the port's flows was applied) or in ``error`` (e.g. Open vSwitch could not open the VIF's
  device), by port id;
* ``error`` — why its last sync failed, or empty.

A port's status is read from the report of the chassis it is bound to, and only counts for
the version of the port (and of its network) the report covers: a port changed after the
agent's last sync is ``pending`` again until the agent has applied the change. A port on no
chassis, or whose VIF the agent has not seen, is ``pending`` too, with a message saying why.

A report stands only while its agent is *alive* (it keeps a presence lease alive, see
:mod:`tether.api.reports`). Once the agent stops or loses the controller, its chassis and
ports are in ``error``: nobody vouches for them any more, and changes no longer reach the
switch, which keeps forwarding on the flows it last had.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, StringConstraints

from tether.model.resources import Chassis, Port, Status

__all__ = [
    "MAX_REPORTED_PORTS",
    "ChassisReport",
    "PortReport",
    "chassis_status",
    "port_status",
]

MAX_REPORTED_PORTS = 10_000
"""More VIFs than one hypervisor holds; keeps a report well inside etcd's request limit."""
PortId = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class PortReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    state: Literal["realized", "error"]
    message: str = Field(default="", max_length=1000)


class ChassisReport(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    revision: StrictInt = Field(ge=0)
    """The store revision of the model the agent's flows were compiled from."""
    ports: dict[PortId, PortReport] = Field(default_factory=dict, max_length=MAX_REPORTED_PORTS)
    error: str = Field(default="", max_length=1000)
    """Why the agent's last sync failed; empty when it worked."""


NOT_HEARD = "not heard from (stopped, or cut off from the controller)"
UNREACHED = "changes no longer reach its switch"
KEPT = "its switch keeps the flows it last applied"


def port_status(
    port: Port,
    chassis: Chassis | None,
    report: ChassisReport | None,
    changed_at: int,
    alive: bool = True,
) -> Status:
    """The status of ``port``, bound to ``chassis`` (None: unbound or unknown), from that
    chassis's ``report``; ``changed_at`` is the newest store revision of the port and of its
    network; ``alive``, whether the chassis's agent is."""
    if port.chassis is None or chassis is None:
        return Status(state="pending", message="not bound to a chassis")
    if report is None:
        return Status(state="pending", message=f"chassis {chassis.name} has not reported yet")
    if not alive:
        return Status(
            state="error",
            message=f"the agent of chassis {chassis.name} is {NOT_HEARD}; {UNREACHED}",
        )
    found = report.ports.get(port.id) if report.revision >= changed_at else None
    if found is not None:
        return Status(state=found.state, message=found.message)
    if report.error:  # the agent could not apply the model as it is now
        return Status(state="error", message=f"chassis {chassis.name}: {report.error}")
    if report.revision < changed_at:
        return Status(state="pending", message=f"waiting for chassis {chassis.name} to apply it")
    return Status(state="pending", message=f"no interface for it on chassis {chassis.name}")


def chassis_status(report: ChassisReport | None, alive: bool = True) -> Status:
    """A chassis is realized once its agent reported a sync that worked, while the agent is
    ``alive``."""
    if report is None:
        return Status(state="pending", message="its agent has not reported yet")
    if not alive:
        return Status(
            state="error",
            message=f"its agent is {NOT_HEARD}; {KEPT}",
        )
    if report.error:
        return Status(state="error", message=report.error)
    return Status(state="realized", message="")
