"""The emulated fabric (``tether lab``): hardware VTEPs built from a real ovsdb-server.

An emulated hardware VTEP (:class:`EmulatedSwitch`) is an ``ovsdb-server`` with the
``hardware_vtep`` schema (plus tether's ``state_consistent`` column) and tether's own switch
agent, which plays the switch's side of US 12,388,743 (FIG. 4, 6, 7, 9) and programs an ASIC.

Modules — pure cores first, then the shells:

* :mod:`.forwarding` (pure): forwarding tables as values, and where a frame goes;
* :mod:`.switch_agent` (pure): what to program and which locks to hold, from the database;
* :mod:`.bootstrap` (pure): the switch's own rows at power-on;
* :mod:`.asic`: the memory ASIC; :mod:`.records`: its history and state files;
* :mod:`.ovsdb_server`: the ovsdb-server process; :mod:`.agent`: the switch agent's loop;
* :mod:`.emulated`: the switch that puts them together. Errors: :mod:`.errors`.
"""

from __future__ import annotations

from tether.lab.asic import MemoryAsic
from tether.lab.emulated import AsicKind, EmulatedSwitch
from tether.lab.errors import AsicNotAvailableError, DaemonError, LabError
from tether.lab.forwarding import ForwardingTable, HistoryEntry, RemoteEntry, Verdict, lookup
from tether.lab.records import AsicState, read_history, read_state
from tether.lab.switch_agent import Decision, decide

__all__ = [
    "AsicKind",
    "AsicNotAvailableError",
    "AsicState",
    "DaemonError",
    "Decision",
    "EmulatedSwitch",
    "ForwardingTable",
    "HistoryEntry",
    "LabError",
    "MemoryAsic",
    "RemoteEntry",
    "Verdict",
    "decide",
    "lookup",
    "read_history",
    "read_state",
]
