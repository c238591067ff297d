"""The ``hardware_vtep`` schema with tether's ``Logical_Switch.state_consistent`` column. Pure.

The column (an optional boolean; absent or empty means consistent) carries the
``state-consistent`` transaction mode (US 12,388,743, FIG. 8-9). Switches that lack it are
converted online by ``tether gateway add --convert-schema``; the lab's emulated switches are
created with it.
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["STATE_CONSISTENT", "has_state_consistent", "with_state_consistent"]

STATE_CONSISTENT = "state_consistent"
_COLUMN = {"type": {"key": {"type": "boolean"}, "min": 0, "max": 1}}


def has_state_consistent(schema: dict[str, Any]) -> bool:
    table = schema.get("tables", {}).get("Logical_Switch", {})
    return STATE_CONSISTENT in table.get("columns", {})


def with_state_consistent(schema: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``schema`` with the column added (unchanged if it is there already)."""
    if has_state_consistent(schema):
        return copy.deepcopy(schema)
    converted = copy.deepcopy(schema)
    if "Logical_Switch" not in converted.get("tables", {}):
        raise ValueError("not a hardware_vtep schema: no Logical_Switch table")
    converted["tables"]["Logical_Switch"]["columns"][STATE_CONSISTENT] = copy.deepcopy(_COLUMN)
    major, minor, patch = (int(p) for p in str(converted.get("version", "0.0.0")).split("."))
    converted["version"] = f"{major}.{minor}.{patch + 1}"
    return converted
