"""The status of objects that are realized through others. Pure.

* A **network** is realized through its bound ports (each by its chassis's agent, see
  :mod:`tether.model.reports`) and the gateways that bind it to a VLAN (each by its VTEP
  agent). Ports bound to no chassis are not the network's to wait for.
* A **router** is realized through every chassis with a bound port on one of its networks:
  each chassis's agent runs the router's part of the pipeline, so each must have applied the
  router's latest version.
* A **gateway binding** is realized through its gateway, once the gateway's agent was given
  the binding and the switch holds it (``Physical_Port.vlan_bindings``).

:func:`rollup` gives the worst of the parts: ``error`` if any part is in error, else
``pending`` if any part is pending, else ``realized``; the message names the first such part
and how many more there are. An object with no part at all is ``pending``, saying why.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.model.reports import NOT_HEARD, ChassisReport
from tether.model.resources import Status

__all__ = ["Part", "chassis_part", "gateway_part", "rollup"]

REALIZED = Status(state="realized", message="")


@dataclass(frozen=True, slots=True)
class Part:
    """Something an object is realized through: ``what`` names it ("port vm1")."""

    what: str
    status: Status


def rollup(parts: Sequence[Part], nothing: str) -> Status:
    """The worst status of ``parts``; ``pending`` with ``nothing`` when there are none."""
    if not parts:
        return Status(state="pending", message=nothing)
    for state in ("error", "pending"):
        found = [part for part in parts if part.status.state == state]
        if found:
            first = found[0]
            more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
            return Status(state=state, message=f"{first.what}: {first.status.message}{more}")
    return REALIZED


def gateway_part(
    runtime: Mapping[str, Any] | None, binding: tuple[str, int], changed_at: int
) -> Status:
    """A gateway's status for one of its bindings, ``(physical port, VLAN)`` written at store
    revision ``changed_at``, from its VTEP agent's record (``runtime``). The agent's desired
    generation is the store revision its desired state was computed at; a binding always
    changes that state, so a generation older than the binding means the agent has not been
    given it yet. An error of the gateway holds every binding: the switch is not converging.
    """
    if runtime is None:
        return Status(state="pending", message="its agent has not reported yet")
    state = runtime.get("state")
    if state == "error":
        return Status(state="error", message=str(runtime.get("last_error") or "error"))
    connection = runtime.get("connection")
    if connection != "connected":
        return Status(state="pending", message=f"switch {connection or 'not connected'}")
    generation = runtime.get("desired_generation")
    if state != "realized" or not isinstance(generation, int) or generation < changed_at:
        return Status(state="pending", message="applying its latest change")
    port, vlan = binding
    if [port, vlan] not in (runtime.get("vlan_bindings") or ()):
        return Status(state="pending", message=f"port {port} VLAN {vlan} is not bound yet")
    return REALIZED


def chassis_part(report: ChassisReport | None, alive: bool, changed_at: int) -> Status:
    """Whether a chassis's agent applied everything up to store revision ``changed_at``."""
    if report is None:
        return Status(state="pending", message="has not reported yet")
    if not alive:
        return Status(state="error", message=f"its agent is {NOT_HEARD}")
    if report.error:
        return Status(state="error", message=report.error)
    if report.revision < changed_at:
        return Status(state="pending", message="has not applied the latest change")
    return REALIZED
