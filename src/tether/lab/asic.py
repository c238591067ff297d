"""The memory ASIC: an emulated switch's forwarding tables held in a dict, with their history.

The switch agent (:mod:`.agent`) programs it one logical switch at a time with a whole
:class:`~tether.lab.forwarding.ForwardingTable` (or None to remove it); every change that
alters something is appended to :attr:`MemoryAsic.history` and, when the ASIC has
:class:`~tether.lab.records.AsicFiles`, to the switch's files. :meth:`MemoryAsic.lookup`
answers where a frame goes. A few dicts per switch: hundreds fit in one process.

The ASIC never reads the clock: the agent passes ``now``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from tether.lab.forwarding import ForwardingTable, HistoryEntry, Verdict, lookup
from tether.lab.records import AsicFiles

__all__ = ["MemoryAsic"]


class MemoryAsic:
    """Forwarding tables by logical switch name, and every change applied to them."""

    kind = "memory"

    def __init__(self, files: AsicFiles | None = None) -> None:
        self._tables: dict[str, ForwardingTable] = {}
        self.history: list[HistoryEntry] = []
        self._files = files

    @property
    def tables(self) -> Mapping[str, ForwardingTable]:
        """What is programmed now (read-only view)."""
        return MappingProxyType(self._tables)

    def reset(self, now: float) -> None:
        """Power on: nothing is programmed (the state file says so too)."""
        self._tables.clear()
        if self._files is not None:
            self._files.record(None, self._tables, now)

    def program(self, name: str, table: ForwardingTable | None, *, now: float) -> bool:
        """Make ``table`` the logical switch ``name``'s state (None: remove it).

        Returns whether anything changed; only changes are recorded.
        """
        old = self._tables.get(name)
        if table == old:
            return False
        if table is None:
            del self._tables[name]
        else:
            self._tables[name] = table
        vni = table.vni if table is not None else old.vni if old is not None else 0
        entry = HistoryEntry(now, name, vni, table)
        self.history.append(entry)
        if self._files is not None:
            self._files.record(entry, self._tables, now)
        return True

    def lookup(self, *, port: str, vlan: int, mac: str) -> Verdict:
        return lookup(self._tables, port=port, vlan=vlan, mac=mac)
