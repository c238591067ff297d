"""The files in which an emulated switch records what its ASIC forwards on.

In the switch's directory:

* ``asic-history.jsonl`` — one JSON line per applied change, appended across restarts:
  ``{"time": unix seconds, "switch": logical switch, "vni": N, "state": table or null}``;
* ``asic-state.json`` — the whole programmed state now, replaced atomically (temp file and
  rename) after every change: ``{"switch": NAME, "updated": unix seconds,
  "logical_switches": {name: table}}``. A (re)started switch starts it empty: its ASIC does
  not survive a restart, the database does.

:class:`AsicFiles` writes them for :class:`~tether.lab.asic.MemoryAsic`; :func:`read_state`
and :func:`read_history` read them back (``tether lab vtep-state`` and tests). The table form
is :meth:`~tether.lab.forwarding.ForwardingTable.to_json`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import orjson

from tether.lab.errors import LabError
from tether.lab.forwarding import ForwardingTable, HistoryEntry

__all__ = ["HISTORY_FILE", "STATE_FILE", "AsicFiles", "AsicState", "read_history", "read_state"]

HISTORY_FILE = "asic-history.jsonl"
_SORTED = orjson.OPT_SORT_KEYS
"""orjson, not json: every applied change rewrites these files, and on a fabric of a hundred
emulated switches json's encoder was the emulator's main cost."""
STATE_FILE = "asic-state.json"


@dataclass(frozen=True, slots=True)
class AsicState:
    switch: str
    """The physical switch's name."""
    updated: float
    tables: Mapping[str, ForwardingTable]
    """By logical switch name."""


class AsicFiles:
    """Writes one switch's history and state files.

    The history gets every change at once (through a handle kept open). The state file is
    rewritten after every change, or — with a ``state_interval`` of some seconds — left
    :attr:`pending` until :meth:`flush`, which the switch's agent runs that long after the
    first change it holds (and when it settles or stops): bursts coalesce, and the rewrite
    leaves the path from the database to the ASIC. A fabric of a hundred emulated switches on
    one machine spent most of its time rewriting these files.
    """

    def __init__(self, directory: Path, switch: str, *, state_interval: float = 0.0) -> None:
        self.directory = directory
        self.switch = switch
        self.history_path = directory / HISTORY_FILE
        self.state_path = directory / STATE_FILE
        self.state_interval = state_interval
        self._pending: tuple[dict[str, ForwardingTable], float] | None = None
        self._history: BinaryIO | None = None

    def record(
        self, entry: HistoryEntry | None, tables: Mapping[str, ForwardingTable], now: float
    ) -> None:
        """Append ``entry`` (if any) to the history, then rewrite the state file."""
        self.record_many([entry] if entry is not None else [], tables, now)

    def record_many(
        self, entries: list[HistoryEntry], tables: Mapping[str, ForwardingTable], now: float
    ) -> None:
        """Append ``entries`` to the history, then rewrite the state file once (or leave it
        pending, within the state interval)."""
        if entries:
            lines = b"".join(orjson.dumps(e.to_json(), option=_SORTED) + b"\n" for e in entries)
            if self._history is None:
                self._history = self.history_path.open("ab")
            self._history.write(lines)
            self._history.flush()
        if self.state_interval <= 0:
            self._write_state(tables, now)
        else:
            self._pending = (dict(tables), now)

    @property
    def pending(self) -> bool:
        """A change is not in the state file yet."""
        return self._pending is not None

    def flush(self) -> None:
        """Write the pending state, if any."""
        if self._pending is not None:
            self._write_state(*self._pending)

    def close(self) -> None:
        self.flush()
        if self._history is not None:
            self._history.close()
            self._history = None

    def _write_state(self, tables: Mapping[str, ForwardingTable], now: float) -> None:
        state = {
            "switch": self.switch,
            "updated": now,
            "logical_switches": {name: t.to_json() for name, t in sorted(tables.items())},
        }
        temporary = self.state_path.with_name(STATE_FILE + ".tmp")
        temporary.write_bytes(orjson.dumps(state, option=_SORTED | orjson.OPT_INDENT_2))
        os.replace(temporary, self.state_path)
        self._pending = None


def read_state(directory: Path) -> AsicState:
    """The state file of the switch in ``directory``; ``LabError`` if absent or unreadable."""
    path = directory / STATE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        tables = {
            str(name): ForwardingTable.from_json(table)
            for name, table in data["logical_switches"].items()
        }
        return AsicState(str(data["switch"]), float(data["updated"]), tables)
    except FileNotFoundError:
        raise LabError(f"{path} does not exist: no emulated switch ran in {directory}") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path} is unreadable: {exc}") from exc


def read_history(directory: Path) -> list[HistoryEntry]:
    """Every change recorded in ``directory`` (oldest first); empty if none was."""
    path = directory / HISTORY_FILE
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    try:
        return [HistoryEntry.from_json(json.loads(line)) for line in lines if line.strip()]
    except (ValueError, KeyError, TypeError) as exc:
        raise LabError(f"{path} is unreadable: {exc}") from exc
