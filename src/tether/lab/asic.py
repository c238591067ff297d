"""The memory ASIC: an emulated switch's forwarding tables held in a dict, with their history.

The switch agent (:mod:`.agent`) programs it one logical switch at a time with a whole
:class:`~tether.lab.forwarding.ForwardingTable` (or None to remove it); every change that
alters something is appended to :attr:`MemoryAsic.history` and, when the ASIC has
:class:`~tether.lab.records.AsicFiles`, to the switch's files. :meth:`MemoryAsic.lookup`
answers where a frame goes. A few dicts per switch: hundreds fit in one process.

It is also the record of the ovs ASIC (:mod:`.ovs_asic`): an ``on_change`` hook hears every
new programmed state (after power-on and after each change) and installs it in a real
datapath, while history, state files and lookups stay the same for both models.

The ASIC never reads the clock: the agent passes ``now``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from tether.lab.forwarding import ForwardingTable, HistoryEntry, Verdict, lookup
from tether.lab.records import AsicFiles

__all__ = ["MemoryAsic"]


class MemoryAsic:
    """Forwarding tables by logical switch name, and every change applied to them."""

    kind = "memory"

    def __init__(
        self,
        files: AsicFiles | None = None,
        *,
        on_change: Callable[[Mapping[str, ForwardingTable]], None] | None = None,
    ) -> None:
        self._tables: dict[str, ForwardingTable] = {}
        self.history: list[HistoryEntry] = []
        self._files = files
        self._on_change = on_change

    @property
    def tables(self) -> Mapping[str, ForwardingTable]:
        """What is programmed now (read-only view)."""
        return MappingProxyType(self._tables)

    def reset(self, now: float) -> None:
        """Power on: nothing is programmed (the state file says so too)."""
        self._tables.clear()
        if self._files is not None:
            self._files.record(None, self._tables, now)
        if self._on_change is not None:
            self._on_change(self.tables)

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
        if self._on_change is not None:
            self._on_change(self.tables)
        return True

    def program_many(
        self, changes: Mapping[str, ForwardingTable | None], *, now: float
    ) -> list[HistoryEntry]:
        """Apply several logical switches' new states at once: the files are written and the
        change hook runs once for the batch (one pass of the agent), not once per switch."""
        entries = []
        for name, table in changes.items():
            old = self._tables.get(name)
            if table == old:
                continue
            if table is None:
                del self._tables[name]
            else:
                self._tables[name] = table
            vni = table.vni if table is not None else old.vni if old is not None else 0
            entries.append(HistoryEntry(now, name, vni, table))
        if entries:
            self.history.extend(entries)
            if self._files is not None:
                self._files.record_many(entries, self._tables, now)
            if self._on_change is not None:
                self._on_change(self.tables)
        return entries

    @property
    def state_interval(self) -> float:
        return self._files.state_interval if self._files is not None else 0.0

    @property
    def files_pending(self) -> bool:
        """The state file lags a change (see :class:`~tether.lab.records.AsicFiles`)."""
        return self._files is not None and self._files.pending

    def flush_files(self) -> None:
        if self._files is not None:
            self._files.flush()

    def close_files(self) -> None:
        if self._files is not None:
            self._files.close()

    def lookup(self, *, port: str, vlan: int, mac: str) -> Verdict:
        return lookup(self._tables, port=port, vlan=vlan, mac=mac)
