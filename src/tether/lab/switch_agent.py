"""The switch agent's decisions: what to program into the ASIC, which locks to hold. Pure.

This is the hardware switch's own OVSDB client (client 452 of US 12,388,743, FIG. 4) seen
as a function. It takes the switch's ``hardware_vtep`` database as observed
(:func:`tether.vtep.state.observe`), the locks this session holds, the locks it has asked for
and what the ASIC holds, and returns the tables to program and the locks to ask for or give
up. :mod:`.agent` is the asyncio shell that feeds it and carries the result out.

The rules, per logical switch:

* **bind first** (FIG. 6): a logical switch is programmed only while a VLAN binding on one of
  this switch's ports uses it (and it has a ``tunnel_key``); once unbound it is removed — the
  bind-last update path's gap is real;
* **lock** (FIG. 7): for every logical switch it wants programmed the agent asks for lock
  ``ls_<VNI>`` (with ``lock``, so a thief leaves it queued) and changes that logical switch
  only while it holds the lock; stolen, the ASIC keeps the last programmed state; when the
  lock comes back, the whole current state is applied at once. A lock nothing needs any more
  (the logical switch is gone or unbound, and removed from the ASIC) is released;
* **state_consistent** (FIG. 9): while ``Logical_Switch.state_consistent`` is False the
  ASIC keeps the last programmed state; absent or empty means consistent;
* **pending** (``lock`` mode's crash guard): while ``other_config:tether-pending`` is
  ``"true"`` the ASIC keeps the last programmed state *even with the lock held*: the
  controller marks a logical switch so before an update that spans several transactions and
  clears the mark after its last row, so a mark still there when the lock comes back means
  its writer died mid-update and the lock came back only because the session closed. The
  restarted controller finishes the update and clears the mark under the lock, and the
  ``locked`` that follows applies the whole new state;
* everything else is applied as it arrives.

Each decision compares whole tables, so a repeated ``locked`` or a repeated update changes
nothing, and a decision after a reconnect is just another decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass, field
from typing import Any

from tether.lab.forwarding import ForwardingTable, RemoteEntry
from tether.ovsdb.replica import Row, Uuid, Value
from tether.vtep.ops import lock_name
from tether.vtep.state import ObservedSwitch, SwitchView, Tables

__all__ = ["Decision", "decide", "raw_tables", "target"]


@dataclass(frozen=True, slots=True)
class Decision:
    program: Mapping[str, ForwardingTable | None] = field(default_factory=dict)
    """Logical switch name -> its new whole table, or None to remove it from the ASIC."""
    lock: tuple[str, ...] = ()
    """Locks to ask for (with ``lock``)."""
    unlock: tuple[str, ...] = ()
    """Locks to give up (asked for, no longer needed)."""
    held_back: Mapping[str, str] = field(default_factory=dict)
    """Logical switches whose change waits, and why (for logs)."""

    @property
    def is_empty(self) -> bool:
        return not (self.program or self.lock or self.unlock)


def raw_tables(tables: Mapping[str, Mapping[Uuid, Row]]) -> Tables:
    """A replica's decoded rows (``frozenset``, ``dict``, ``None``) in OVSDB JSON notation,
    the form :func:`~tether.vtep.state.observe` reads."""
    return {
        table: {
            uuid: {column: _raw(value) for column, value in row.items()}
            for uuid, row in rows.items()
        }
        for table, rows in tables.items()
    }


def _raw(value: Value) -> Any:
    if isinstance(value, frozenset):
        return ["set", list(value)]
    if isinstance(value, dict):
        return ["map", [[key, item] for key, item in value.items()]]
    if value is None:
        return ["set", []]
    return value


def target(switch: ObservedSwitch) -> ForwardingTable | None:
    """The table the database asks for, or None when the switch must not carry it."""
    if not switch.bindings or switch.tunnel_key is None:
        return None
    flood = switch.unknown_dst[1] if switch.unknown_dst is not None else frozenset()
    return ForwardingTable(
        name=switch.name,
        vni=int(switch.tunnel_key),
        bindings=switch.bindings,
        remote_macs={
            mac: RemoteEntry(observed.locator, observed.ip)
            for mac, observed in switch.remote_macs.items()
        },
        flood_locators=frozenset(ip for ip in flood if ip),
    )


def decide(
    view: SwitchView,
    *,
    programmed: Mapping[str, ForwardingTable],
    held: Set[str],
    requested: Set[str],
) -> Decision:
    """The next step: tables to program now, locks to ask for and to give up."""
    wanted = {name: target(switch) for name, switch in view.switches.items()}
    program: dict[str, ForwardingTable | None] = {}
    held_back: dict[str, str] = {}
    for name in sorted(wanted.keys() | programmed.keys()):
        want, have = wanted.get(name), programmed.get(name)
        if want == have:
            continue
        table = want if want is not None else have
        assert table is not None  # they differ, so one of them is a table
        reason = _hold_reason(view.switches.get(name), table, held)
        if reason is None:
            program[name] = want
        else:
            held_back[name] = reason
    after = {**programmed, **program}
    needed = {lock_name(t.vni) for t in (*wanted.values(), *after.values()) if t is not None}
    return Decision(
        program=program,
        lock=tuple(sorted(needed - requested)),
        unlock=tuple(sorted(requested - needed)),
        held_back=held_back,
    )


def _hold_reason(
    switch: ObservedSwitch | None, table: ForwardingTable, held: Set[str]
) -> str | None:
    """Why a change to ``table``'s logical switch must wait, or None to apply it now."""
    if switch is not None and switch.state_consistent is False:
        return "state_consistent is false"
    lock = lock_name(table.vni)
    if lock not in held:
        return f"lock {lock} is not held"
    if switch is not None and switch.pending:  # the lock came back with a dead session
        return "tether-pending is set: its writer died mid-update"
    return None
