"""From (desired, observed) to the next stage of transactions, in the gateway's mode. Pure.

Planning is stateless and level-triggered: each call looks at what the switch holds now and
returns the next *stage* — a list of transactions, none carrying more than ``max_rows`` rows,
that the agent runs in order and confirms before it plans again. An empty stage means the
switch holds exactly what tether wants. A restart (of tether or of the switch) is just
another call. The stages follow the patent's processes (US 12,388,743):

``bind-last`` (FIG. 5-6)
    1. unbind: bindings tether no longer wants (teardown unbinds first);
    2. update: a bound logical switch whose change fits in one transaction gets it in place
       (one transaction is atomic: the switch never sees it half-written, and never goes
       dark — a MAC move costs one row); one whose change spans several transactions takes
       the patent's path — unbind; its rows; rebind — each step confirmed before the next,
       one switch after the other, so a switch is dark only while its own rows are written
       (the gap is measured);
    3. content: the rows (Logical_Switch, locators, Mcast/Ucast_Macs_Remote) of switches
       not yet bound, all together;
    4. bind: the ``vlan_bindings`` of logical switches whose rows are now complete;
    5. delete: logical switches nobody wants, once empty.

``lock`` (FIG. 7)
    1. content, bindings included, as one stage; the agent steals ``ls_<VNI>`` of every
       logical switch the stage touches first, every transaction asserts the locks of the
       switches it writes, and the agent unlocks once the stage is confirmed. A stage of
       more than one transaction is bracketed by a mark that outlives tether's session,
       ``Logical_Switch.other_config:tether-pending=true``: its first transaction(s) mark
       every logical switch it touches (new ones are inserted marked), its last one(s)
       clear the marks, after every other row. Should tether die in between, the server
       hands the locks back to the switch with the dead session, but the switch keeps
       forwarding on its last complete state while the mark is set; the next tether counts
       a marked switch as touched and finishes the update (one with nothing else left gets
       a stage that only clears the mark, under its lock, so the switch reads it again
       when the lock comes back). A one-transaction stage is atomic: it marks nothing, and
       clears a mark left over. A switch whose schema has no ``Logical_Switch.other_config``
       gets no marks: there a crash in the middle of a stage lets the switch apply a
       partial logical switch, as before the mark existed;
    2. delete.

``state-consistent`` (FIG. 8-9)
    1. mark: ``state_consistent=false`` on logical switches about to change (new ones are
       inserted with it false);
    2. content, bindings included, of marked switches;
    3. mark ``true`` where the content is now complete (for switches nobody wants: now
       empty and unbound, so the switch applies the removal);
    4. delete.

In every mode, a mark that a stage cut short or another mode left behind
(``state_consistent=false``, ``tether-pending``) is cleared once the logical switch's content
is complete: in ``state-consistent`` together with the stage that completes it (or any
other), in ``lock`` by the content stage (or ``unmark``), in ``bind-last`` by a last
``unmark`` stage.

A single operation larger than ``max_rows`` (an ``unknown-dst`` set with many new locators)
goes alone in a transaction: it cannot be split.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from typing import Literal

from tether.vtep.ops import (
    BARRIER,
    Barrier,
    Bind,
    EnsureLogicalSwitch,
    EnsureRemoteMac,
    EnsureUnknownDst,
    MarkConsistent,
    MarkPending,
    Op,
    RemoveLogicalSwitch,
    RemoveRow,
    Stage,
    Transaction,
    Unbind,
    lock_name,
    switch_of,
)
from tether.vtep.state import (
    GatewayConfig,
    LogicalSwitchConfig,
    ObservedSwitch,
    SwitchView,
)

__all__ = ["Mode", "missing_ports", "plan"]

Mode = Literal["bind-last", "lock", "state-consistent"]


# -- comparing one logical switch --------------------------------------------------------------


def _header_differs(want: LogicalSwitchConfig, have: ObservedSwitch) -> bool:
    return have.tunnel_key != want.tunnel_key or have.description != want.description


def _row_ops(want: LogicalSwitchConfig | None, have: ObservedSwitch | None) -> list[Op]:
    """Ops that make the switch's remote rows (not its bindings) match ``want``."""
    ops: list[Op] = []
    if want is not None and (have is None or _header_differs(want, have)):
        ops.append(
            EnsureLogicalSwitch(
                want.name, want.tunnel_key, want.description, exists=have is not None
            )
        )
    observed = have.remote_macs if have else {}
    wanted = want.remote_macs if want else {}
    name = want.name if want else (have.name if have else "")
    for mac, remote in wanted.items():
        seen = observed.get(mac)
        if seen is None or seen.locator != remote.locator or seen.ip != remote.ip:
            uuid = seen.uuid if seen else None
            ops.append(EnsureRemoteMac(name, mac, remote.locator, remote.ip, uuid))
    ops.extend(
        RemoveRow("Ucast_Macs_Remote", seen.uuid, name)
        for mac, seen in observed.items()
        if mac not in wanted
    )
    flood = want.flood_locators if want else frozenset()
    unknown = have.unknown_dst if have else None
    if flood and (unknown is None or unknown[1] != flood):
        ops.append(EnsureUnknownDst(name, flood, unknown[0] if unknown else None))
    elif not flood and unknown is not None:
        ops.append(RemoveRow("Mcast_Macs_Remote", unknown[0], name))
    if have is not None:
        ops.extend(RemoveRow(table, uuid, name) for table, uuid in have.extra_remote_rows)
    return ops


def _binding_ops(
    desired: GatewayConfig, view: SwitchView, *, only: Iterable[str] | None = None
) -> tuple[list[Op], list[Op]]:
    """(unbinds, binds) that make ``vlan_bindings`` match; ``only`` limits to switch names."""
    uuid_to_name = {s.uuid: s.name for s in view.switches.values()}
    wanted = {binding: ls.name for ls in desired.switches.values() for binding in ls.bindings}
    scope = set(only) if only is not None else None
    unbinds: list[Op] = []
    for binding, ls_uuid in sorted(view.bindings.items()):
        current = uuid_to_name.get(ls_uuid, "")
        if wanted.get(binding) != current and (
            scope is None or current in scope or wanted.get(binding) in scope
        ):
            unbinds.append(Unbind(binding[0], binding[1], current))
    binds: list[Op] = []
    for binding, name in sorted(wanted.items()):
        if binding[0] not in view.ports:
            continue  # reported by missing_ports(); nothing to bind to
        if uuid_to_name.get(view.bindings.get(binding, "")) != name and (
            scope is None or name in scope
        ):
            binds.append(Bind(binding[0], binding[1], name))
    return unbinds, binds


def _unwanted(desired: GatewayConfig, view: SwitchView) -> list[ObservedSwitch]:
    return [
        s
        for name, s in sorted(view.switches.items())
        if name not in desired.switches and not s.bound_elsewhere
    ]


def _changed(desired: GatewayConfig, view: SwitchView) -> dict[str, list[Op]]:
    """Switch name -> row ops, for every switch whose rows differ (wanted or not)."""
    changed: dict[str, list[Op]] = {}
    for name, want in sorted(desired.switches.items()):
        ops = _row_ops(want, view.switches.get(name))
        if ops:
            changed[name] = ops
    for have in _unwanted(desired, view):
        ops = _row_ops(None, have)
        if ops:
            changed[have.name] = ops
    return changed


def _deletions(desired: GatewayConfig, view: SwitchView) -> list[Op]:
    """Unwanted switches that are empty, unbound and not used by the switch itself."""
    return [
        RemoveLogicalSwitch(s.name, s.uuid)
        for s in _unwanted(desired, view)
        if not s.remote_macs
        and s.unknown_dst is None
        and not s.extra_remote_rows
        and not s.bindings
        and not s.in_local_use
    ]


# -- chunking ----------------------------------------------------------------------------------


def _chunks(
    ops: Sequence[Op | Barrier],
    max_rows: int,
    known_locators: Iterable[str],
    locks_of: dict[str, frozenset[str]],
) -> Iterator[Transaction]:
    """Split ops into transactions of at most ``max_rows`` rows, counting the locator rows a
    transaction must insert (a locator is created in the first transaction that uses it)."""
    known = set(known_locators)
    batch: list[Op] = []
    rows = 0
    new_here: set[str] = set()
    for op in ops:
        if isinstance(op, Barrier):
            if batch:
                yield _transaction(batch, locks_of)
                known |= new_here
                batch, rows, new_here = [], 0, set()
            continue
        fresh = {ip for ip in op.locators() if ip not in known and ip not in new_here}
        cost = op.rows + len(fresh)
        if batch and rows + cost > max_rows:
            yield _transaction(batch, locks_of)
            known |= new_here
            batch, rows, new_here = [], 0, set()
            fresh = {ip for ip in op.locators() if ip not in known}
            cost = op.rows + len(fresh)
        batch.append(op)
        rows += cost
        new_here |= fresh
    if batch:
        yield _transaction(batch, locks_of)


def _transaction(ops: list[Op], locks_of: dict[str, frozenset[str]]) -> Transaction:
    locks = frozenset().union(*(locks_of[s] for op in ops if (s := switch_of(op)) in locks_of))
    return Transaction(tuple(ops), locks)


def _stage(
    name: str,
    ops: Sequence[Op | Barrier],
    view: SwitchView,
    max_rows: int,
    switches: Iterable[str],
    locks_of: dict[str, frozenset[str]] | None = None,
) -> Stage:
    locks = locks_of or {}
    transactions = tuple(_chunks(ops, max_rows, view.locators, locks))
    steal = frozenset().union(*(locks[s] for s in switches if s in locks))
    return Stage(name, transactions, steal, frozenset(switches))


# -- the modes ---------------------------------------------------------------------------------


def plan(desired: GatewayConfig, view: SwitchView, mode: Mode, max_rows: int) -> Stage:
    """The next stage to run; ``Stage("done")`` with no transactions once converged."""
    if max_rows < 1:
        raise ValueError("max_rows must be at least 1")
    if mode == "bind-last":
        return _plan_bind_last(desired, view, max_rows)
    if mode == "lock":
        return _plan_lock(desired, view, max_rows)
    return _plan_state_consistent(desired, view, max_rows)


def _plan_bind_last(desired: GatewayConfig, view: SwitchView, max_rows: int) -> Stage:
    changed = _changed(desired, view)
    # a lock-mode update cut short and finished since: its mark rides along with whatever
    # this pass does, so churn elsewhere never keeps that switch held
    clears: list[Op] = [
        MarkPending(name, False) for name in sorted(_pending(desired, view)) if name not in changed
    ]
    cleared = _names(clears)
    updating = [
        name
        for name in changed
        if name in desired.switches and name in view.switches and view.switches[name].bindings
    ]
    unbinds, _ = _binding_ops(desired, view)
    # teardown (and bindings that moved) first — except the bindings of switches about to be
    # updated: their update path unbinds them all at once, never one by one
    unbinds = [op for op in unbinds if not (isinstance(op, Unbind) and op.switch in updating)]
    if unbinds:
        names = _names_of(unbinds, view) | cleared
        return _stage("unbind", [*unbinds, *clears], view, max_rows, names)
    if updating:
        in_place = [name for name in updating if _cost(changed[name], view) <= max_rows]
        pipelined = [name for name in updating if name not in in_place]
        steps = _packed([changed[name] for name in in_place], view, max_rows)
        if pipelined:
            steps += [BARRIER, *_update_pipelines(desired, view, changed, pipelined)]
        return _stage("update", [*steps, *clears], view, max_rows, set(updating) | cleared)
    if changed:
        ops: list[Op | Barrier] = [op for name in changed for op in changed[name]]
        return _stage("content", [*ops, *clears], view, max_rows, set(changed) | cleared)
    _, binds = _binding_ops(desired, view)
    if binds:
        names = {b.switch for b in binds if isinstance(b, Bind)} | cleared
        return _stage("bind", [*binds, *clears], view, max_rows, names)
    deletions = _deletions(desired, view)
    if deletions:
        return _stage("delete", deletions, view, max_rows, _names(deletions))
    unmarks = _unmarks(desired, view)  # left by an earlier state-consistent or lock mode
    if unmarks:
        return _stage("unmark", unmarks, view, max_rows, _names(unmarks))
    return Stage("done")


def _cost(ops: Sequence[Op], view: SwitchView) -> int:
    """Rows a group of operations writes, counting each locator it needs that the switch
    lacks (an upper bound: a locator shared with an earlier group is counted again)."""
    fresh = {ip for op in ops for ip in op.locators() if ip not in view.locators}
    return sum(op.rows for op in ops) + len(fresh)


def _packed(groups: Sequence[Sequence[Op]], view: SwitchView, max_rows: int) -> list[Op | Barrier]:
    """Groups that must each land in one transaction, packed into as few as possible: a
    barrier before any group that would not fit in the current one."""
    ops: list[Op | Barrier] = []
    used = 0
    for group in groups:
        cost = _cost(group, view)
        if used and used + cost > max_rows:
            ops.append(BARRIER)
            used = 0
        ops += group
        used += cost
    return ops


def _update_pipelines(
    desired: GatewayConfig, view: SwitchView, changed: dict[str, list[Op]], names: list[str]
) -> list[Op | Barrier]:
    """The patent's update path for bound switches, one switch after the other — unbind,
    confirmed; rows, confirmed; rebind — so each switch's gap lasts only its own update."""
    ops: list[Op | Barrier] = []
    for name in names:
        have, want = view.switches[name], desired.switches[name]
        ops += [Unbind(port, vlan, name) for port, vlan in sorted(have.bindings)]
        ops += [BARRIER, *changed[name], BARRIER]
        ops += [
            Bind(port, vlan, name) for port, vlan in sorted(want.bindings) if port in view.ports
        ]
        ops.append(BARRIER)
    return ops


def _plan_lock(desired: GatewayConfig, view: SwitchView, max_rows: int) -> Stage:
    changed = _changed(desired, view)
    unbinds, binds = _binding_ops(desired, view)
    touched = (
        set(changed)
        | _names_of(unbinds, view)
        | {b.switch for b in binds if isinstance(b, Bind)}
        | _pending(desired, view)  # an update cut short: finished (or just unmarked) under the lock
    )
    if touched:
        locks_of = _locks(desired, view, touched)
        ops = unbinds + [op for name in sorted(changed) for op in changed[name]] + binds
        name = "content" if ops else "unmark"
        ops = _bracketed(ops, touched, desired, view, max_rows)
        return _stage(name, ops, view, max_rows, touched, locks_of)
    deletions = _deletions(desired, view)
    if deletions:
        return _stage("delete", deletions, view, max_rows, _names(deletions))
    unmarks = _unmarks(desired, view)  # left false by an earlier state-consistent mode
    if unmarks:
        return _stage("unmark", unmarks, view, max_rows, _names(unmarks))
    return Stage("done")


def _bracketed(
    ops: list[Op], touched: set[str], desired: GatewayConfig, view: SwitchView, max_rows: int
) -> list[Op]:
    """``ops`` with ``lock`` mode's pending marks. Ops that fit in one transaction are atomic:
    no mark, only marks left over cleared with them. Otherwise every touched switch is
    marked before its first row (existing ones first, new ones as they are inserted) and
    cleared after the last row of all, so a switch given its lock back by a dead session
    never applies a partial state."""
    pending = _pending(desired, view)
    single = [*ops, *(MarkPending(name, False) for name in sorted(touched & pending))]
    if not view.can_mark_pending or len(single) <= 1 or _cost(single, view) <= max_rows:
        return single  # _cost is exactly what one transaction of them all would write
    marks: list[Op] = [
        MarkPending(name, True)
        for name in sorted(touched)
        if name in view.switches and name not in pending
    ]
    body = [
        replace(op, pending=True) if isinstance(op, EnsureLogicalSwitch) and not op.exists else op
        for op in ops
    ]
    return [*marks, *body, *(MarkPending(name, False) for name in sorted(touched))]


def _pending(desired: GatewayConfig, view: SwitchView) -> set[str]:
    """Logical switches of this gateway's left marked ``tether-pending``."""
    return {
        name for name, have in view.switches.items() if have.pending and _ours(desired, name, have)
    }


def _ours(desired: GatewayConfig, name: str, have: ObservedSwitch) -> bool:
    """A logical switch this gateway answers for: one it wants, or one no other physical
    switch of the database uses. Another gateway's marks on a shared database are that
    gateway's to clear (clearing them mid-update would let the switch apply a part)."""
    return name in desired.switches or not have.bound_elsewhere


def _plan_state_consistent(desired: GatewayConfig, view: SwitchView, max_rows: int) -> Stage:
    changed = _changed(desired, view)
    unbinds, binds = _binding_ops(desired, view)
    touched = (
        set(changed) | _names_of(unbinds, view) | {b.switch for b in binds if isinstance(b, Bind)}
    )
    marks: list[Op] = []
    for name in sorted(touched):
        have, want = view.switches.get(name), desired.switches.get(name)
        if have is None and want is not None:
            marks.append(EnsureLogicalSwitch(name, want.tunnel_key, want.description, False))
        elif have is not None and have.state_consistent is not False:
            marks.append(MarkConsistent(name, False))
    # Complete again: wanted switches that now match, unwanted ones now empty and unbound
    # (marking those consistent lets the switch apply the removal and drop its local MACs,
    # which would otherwise keep the logical switch from being deleted). They ride along
    # with whatever else this pass does, so churn elsewhere never starves them.
    unmarks: list[Op] = _unmarks(desired, view, exclude=touched)
    if marks:
        return _stage("mark", [*marks, *unmarks], view, max_rows, _names(marks) | _names(unmarks))
    if touched:
        ops = unbinds + [op for name in sorted(changed) for op in changed[name]] + binds
        return _stage("content", [*ops, *unmarks], view, max_rows, touched | _names(unmarks))
    if unmarks:
        return _stage("unmark", unmarks, view, max_rows, _names(unmarks))
    deletions = _deletions(desired, view)
    if deletions:
        return _stage("delete", deletions, view, max_rows, _names(deletions))
    return Stage("done")


def _unmarks(desired: GatewayConfig, view: SwitchView, *, exclude: Iterable[str] = ()) -> list[Op]:
    """Marks left on switches that nothing is changing: ``state_consistent=true`` where it
    was left false, and ``tether-pending`` cleared (a ``lock``-mode stage cut short, then
    finished in another mode)."""
    skip = set(exclude)
    ops: list[Op] = []
    for name, have in sorted(view.switches.items()):
        if name in skip or not _ours(desired, name, have):
            continue
        if have.state_consistent is False:
            ops.append(MarkConsistent(name, True))
        if have.pending:
            ops.append(MarkPending(name, False))
    return ops


def missing_ports(desired: GatewayConfig, view: SwitchView) -> list[str]:
    """Physical ports the bindings name that the switch does not have."""
    wanted = {port for ls in desired.switches.values() for port, _ in ls.bindings}
    return sorted(wanted - set(view.ports))


def _names(ops: Iterable[Op]) -> set[str]:
    return {name for op in ops if (name := switch_of(op)) is not None}


def _names_of(unbinds: Iterable[Op], view: SwitchView) -> set[str]:
    del view
    return {op.switch for op in unbinds if isinstance(op, Unbind) and op.switch}


def _locks(
    desired: GatewayConfig, view: SwitchView, names: Iterable[str]
) -> dict[str, frozenset[str]]:
    """The locks guarding each switch: its VNI's — both the old and the new one while the VNI
    changes, since the switch's agent still holds the old one."""
    locks = {}
    for name in names:
        want, have = desired.switches.get(name), view.switches.get(name)
        vnis = {ls.tunnel_key for ls in (want, have) if ls is not None}
        locks[name] = frozenset(lock_name(vni) for vni in vnis if vni is not None)
    return locks
