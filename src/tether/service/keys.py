"""Where the model lives in the store.

``/tether/model/<kind>/<id>`` holds one object as JSON; ``/tether/model/_fence`` is written by
every model change and compared by the next one, so model writes are totally ordered and
validated against a catalog that saw every earlier write (see :mod:`tether.service.models`).

``/tether/status/chassis/<chassis id>`` holds the last report of the chassis's agent
(:mod:`tether.model.reports`): not part of the model, written without the fence.
``/tether/status/presence/<chassis id>`` says the chassis's agent is alive: it is attached
to a store lease its agent keeps alive, so it goes when the agent stops.
"""

from __future__ import annotations

__all__ = [
    "AGENTS_ONLY_STATUS",
    "CHASSIS_PRESENCE",
    "CHASSIS_REPORTS",
    "FENCE",
    "MODEL_PREFIX",
    "WATCHABLE_PREFIX",
    "kind_and_id",
    "object_key",
    "presence_key",
    "report_key",
]

ROOT = "/tether/"
WATCHABLE_PREFIX = ROOT
MODEL_PREFIX = "/tether/model/"
FENCE = "/tether/model/_fence"
CHASSIS_REPORTS = "/tether/status/chassis/"
CHASSIS_PRESENCE = "/tether/status/presence/"
AGENTS_ONLY_STATUS = (CHASSIS_REPORTS, CHASSIS_PRESENCE)
"""What agents write about themselves: no agent's model stream carries it."""


def presence_key(chassis_id: str) -> str:
    return f"{CHASSIS_PRESENCE}{chassis_id}"


def report_key(chassis_id: str) -> str:
    return f"{CHASSIS_REPORTS}{chassis_id}"


def object_key(kind: str, obj_id: str) -> str:
    return f"{MODEL_PREFIX}{kind}/{obj_id}"


def kind_and_id(key: str) -> tuple[str, str] | None:
    """``(kind, id)`` of an object key; None for the fence or anything else."""
    if not key.startswith(MODEL_PREFIX):
        return None
    kind, sep, obj_id = key[len(MODEL_PREFIX) :].partition("/")
    return (kind, obj_id) if sep and obj_id else None
