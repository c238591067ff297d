"""``lock`` mode's pending mark on the in-memory switch: a tether killed in the middle of a
stage of several transactions (its session closes, the server hands the stolen locks back to
the switch) must leave the switch forwarding on its last complete state, and the next tether
must finish the update — whatever mode it then runs in — and clear the mark."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.unit.fake_vtep import FakeVtepDb
from tests.unit.test_vtep_plan import (
    MODES,
    Check,
    applied,
    complete_only,
    config,
    converge,
    expected,
    network,
    refs_of,
    view_of,
)
from tether.vtep.encode import encode
from tether.vtep.ops import EnsureLogicalSwitch, MarkPending, Stage, Transaction
from tether.vtep.plan import Mode, plan
from tether.vtep.state import GatewayConfig, LogicalSwitchConfig, ObservedSwitch, SwitchView

OLD = network(1, range(1, 9))
NEW = network(1, range(5, 15), locator="192.0.2.13")
FRESH = network(2, range(1, 6), port="eth2")


def crash_after(db: FakeVtepDb, stage: Stage, k: int, check: Check) -> None:
    """Run the first ``k`` transactions of ``stage``, then die as ``kill -9`` does: the server
    releases the stolen locks with the session; nothing is unlocked or unmarked by tether."""
    db.locks |= stage.steal
    for txn in stage.transactions[:k]:
        db.transact(encode(txn, refs_of(view_of(db))))
        check(db, stage)
    db.locks -= stage.steal
    check(db, Stage("released"))  # the switch agent gets `locked` back and reads


def killed_after(
    db: FakeVtepDb, desired: GatewayConfig, mode: Mode, max_rows: int, k: int, check: Check
) -> None:
    """Converge as the agent does, but die after ``k`` transactions, whatever stage runs."""
    for _ in range(50):
        stage = plan(desired, view_of(db), mode, max_rows)
        crash_after(db, stage, min(k, len(stage.transactions)), check)
        if k <= len(stage.transactions) or not stage.transactions:
            return
        k -= len(stage.transactions)


def pending(db: FakeVtepDb) -> set[str]:
    return {name for name, have in view_of(db).switches.items() if have.pending}


def set_pending(db: FakeVtepDb, name: str) -> None:
    db.transact(encode(Transaction((MarkPending(name, True),)), refs_of(view_of(db))))


def allowed_of(*configs: GatewayConfig) -> dict[str, list[LogicalSwitchConfig]]:
    allowed: dict[str, list[LogicalSwitchConfig]] = {}
    for desired in configs:
        for name, ls in desired.switches.items():
            allowed.setdefault(name, []).append(ls)
    return allowed


def switch_with(desired: GatewayConfig) -> FakeVtepDb:
    db = FakeVtepDb()
    converge(db, desired, "lock", 4)
    return db


def converged(db: FakeVtepDb, desired: GatewayConfig, max_rows: int) -> None:
    view = view_of(db)
    assert {n: applied(view, n) for n in desired.switches} == {
        n: expected(s) for n, s in desired.switches.items()
    }
    assert set(view.switches) == set(desired.switches)
    assert pending(db) == set(), "a pending mark was left behind"
    assert all(s.state_consistent is not False for s in view.switches.values())
    for mode in MODES:
        assert plan(desired, view, mode, max_rows).transactions == ()


def test_a_stage_of_several_transactions_marks_first_and_clears_last() -> None:
    db = FakeVtepDb()
    converge(db, config(OLD), "lock", 4)
    stage = plan(config(NEW, FRESH), view_of(db), "lock", 4)
    assert stage.name == "content" and len(stage.transactions) > 5
    ops = [op for txn in stage.transactions for op in txn.ops]
    # the existing switch is marked before any row; the new one is inserted marked
    assert ops[0] == MarkPending(NEW.name, True)
    assert [op for op in ops if isinstance(op, EnsureLogicalSwitch)] == [
        EnsureLogicalSwitch(FRESH.name, FRESH.tunnel_key, FRESH.description, pending=True)
    ]
    # both marks are cleared, after the last row of all
    rows = [i for i, op in enumerate(ops) if not isinstance(op, MarkPending)]
    assert ops[rows[-1] + 1 :] == [MarkPending(NEW.name, False), MarkPending(FRESH.name, False)]
    assert [op for op in ops if isinstance(op, MarkPending)] == [
        MarkPending(NEW.name, True),
        MarkPending(NEW.name, False),
        MarkPending(FRESH.name, False),
    ]
    # marking and clearing are writes like the others: under the switch's lock
    for txn in stage.transactions:
        for op in txn.ops:
            if isinstance(op, MarkPending):
                assert f"ls_{5000 + int(op.switch[-1])}" in txn.locks
    # run it: marked from the first transaction until after the last row
    last_row = max(
        i
        for i, txn in enumerate(stage.transactions)
        if not all(isinstance(op, MarkPending) for op in txn.ops)
    )
    db.locks |= stage.steal
    for i, txn in enumerate(stage.transactions):
        db.transact(encode(txn, refs_of(view_of(db))))
        if i < last_row:  # (cleared at the earliest with the last row: atomic)
            assert NEW.name in pending(db)
    db.locks -= stage.steal
    converged(db, config(NEW, FRESH), 4)


def test_a_stage_of_one_transaction_is_atomic_and_marks_nothing() -> None:
    db = FakeVtepDb()
    converge(db, config(OLD), "lock", 4)
    moved = replace(OLD, remote_macs={**OLD.remote_macs, **dict(list(NEW.remote_macs.items())[:1])})
    stage = plan(config(moved), view_of(db), "lock", 4)
    assert len(stage.transactions) == 1
    assert not any(isinstance(op, MarkPending) for op in stage.transactions[0].ops)
    converge(db, config(moved), "lock", 4)
    converged(db, config(moved), 4)


def test_a_stage_of_one_transaction_clears_a_mark_left_over() -> None:
    db = FakeVtepDb()
    converge(db, config(OLD), "lock", 4)
    set_pending(db, OLD.name)
    moved = replace(OLD, remote_macs={**OLD.remote_macs, **dict(list(NEW.remote_macs.items())[:1])})
    stage = plan(config(moved), view_of(db), "lock", 4)
    [txn] = stage.transactions
    assert txn.ops[-1] == MarkPending(OLD.name, False) and txn.locks == {"ls_5001"}
    assert not any(op == MarkPending(OLD.name, True) for op in txn.ops)
    converge(db, config(moved), "lock", 4)
    converged(db, config(moved), 4)


def test_a_marked_switch_with_nothing_else_to_do_is_unmarked_under_its_lock() -> None:
    db = FakeVtepDb()
    converge(db, config(OLD), "lock", 4)
    set_pending(db, OLD.name)  # tether died after the last row, before the clearing
    stage = plan(config(OLD), view_of(db), "lock", 4)
    assert stage.name == "unmark" and stage.steal == {"ls_5001"}
    assert stage.transactions == (
        Transaction((MarkPending(OLD.name, False),), frozenset({"ls_5001"})),
    )
    converge(db, config(OLD), "lock", 4)
    converged(db, config(OLD), 4)


@pytest.mark.parametrize("mode", ["bind-last", "state-consistent"])
def test_the_other_modes_clear_a_mark_left_over(mode: Mode) -> None:
    db = FakeVtepDb()
    converge(db, config(OLD), mode, 4)
    set_pending(db, OLD.name)  # a lock-mode stage cut short, then the mode changed
    stages = converge(db, config(OLD), mode, 4)
    assert [s.name for s in stages] == ["unmark"]
    converged(db, config(OLD), 4)


def test_without_other_config_lock_mode_writes_as_before() -> None:
    """The degradation: a switch whose schema lacks ``Logical_Switch.other_config``."""
    db = FakeVtepDb()
    converge(db, config(OLD), "lock", 4)
    view = replace(view_of(db), can_mark_pending=False)
    stage = plan(config(NEW, FRESH), view, "lock", 4)
    assert len(stage.transactions) > 1
    ops = [op for txn in stage.transactions for op in txn.ops]
    assert not any(isinstance(op, MarkPending) for op in ops)
    assert not any(isinstance(op, EnsureLogicalSwitch) and op.pending for op in ops)


def test_the_switchs_own_other_config_keys_stay() -> None:
    db = FakeVtepDb()
    converge(db, config(OLD), "lock", 4)
    [row] = db.tables["Logical_Switch"].values()
    row["other_config"] = ["map", [["vendor:asic", "x"]]]
    stage = plan(config(NEW), view_of(db), "lock", 4)
    crash_after(db, stage, 1, lambda db, stage: None)
    assert dict(row["other_config"][1]) == {"tether-pending": "true", "vendor:asic": "x"}
    converge(db, config(NEW), "lock", 4)
    assert dict(row["other_config"][1]) == {"vendor:asic": "x"}


@pytest.mark.parametrize("restart", MODES)
def test_a_tether_killed_mid_stage_leaves_the_last_state_and_the_next_one_finishes(
    restart: Mode,
) -> None:
    """Killed after each transaction of the stage in turn; the next tether may even run in
    another mode (the gateway's mode changed while it was down)."""
    first, second = config(OLD), config(NEW, FRESH)
    check = complete_only(allowed_of(first, second), "lock")
    count = len(plan(second, view_of(switch_with(first)), "lock", 4).transactions)
    assert count > 5
    for k in range(1, count):
        db = switch_with(first)
        stage = plan(second, view_of(db), "lock", 4)
        crash_after(db, stage, k, check)
        marked = pending(db)
        assert marked, f"killed after {k}: the switches must still be marked"
        after = converge(
            db, second, restart, 4, check=complete_only(allowed_of(first, second), restart)
        )
        if restart == "lock":  # the marked switches are finished under their locks
            assert {f"ls_{5000 + int(name[-1])}" for name in marked} <= after[0].steal
        converged(db, second, 4)


LOCATORS = ["192.0.2.11", "192.0.2.13", "192.0.2.14"]
present = st.tuples(st.integers(0, 6), st.integers(0, 8), st.sampled_from(LOCATORS))
networks = st.tuples(present, st.none() | present, st.none() | present).map(list)
"""Three networks: the first always there (an update, not only creations and removals)."""


def _config(specs: list[tuple[int, int, str] | None]) -> GatewayConfig:
    return config(
        *(
            network(n + 1, range(start, start + size), locator=locator)
            for n, spec in enumerate(specs)
            if spec is not None
            for start, size, locator in [spec]
        )
    )


@settings(max_examples=150, deadline=None)
@given(
    old=networks,
    new=networks,
    max_rows=st.integers(1, 6),
    crash=st.integers(0, 1000),
    killed=st.sampled_from(MODES),
    restart=st.sampled_from(MODES),
)
def test_a_kill_anywhere_in_a_stage_never_shows_a_partial_switch(
    old: list[tuple[int, int, str] | None],
    new: list[tuple[int, int, str] | None],
    max_rows: int,
    crash: int,
    killed: Mode,
    restart: Mode,
) -> None:
    """Killed after any transaction of an update, in any mode, then restarted in any mode
    (bind-last may leave a switch dark, unbound, but never half written)."""
    first, second = _config(old), _config(new)
    allowed = allowed_of(first, second)
    db = FakeVtepDb()
    converge(db, first, killed, max_rows, check=complete_only(allowed, killed))
    total = sum(len(s.transactions) for s in converge(copy.deepcopy(db), second, killed, max_rows))
    k = crash % (total + 1)
    killed_after(db, second, killed, max_rows, k, complete_only(allowed, killed))
    converge(db, second, restart, max_rows, check=complete_only(allowed, restart))
    converged(db, second, max_rows)


@pytest.mark.parametrize("mode", ["bind-last", "lock", "state-consistent"])
def test_another_gateways_mark_on_a_shared_database_is_left_alone(mode: Mode) -> None:
    """Two gateways on one ``hardware_vtep`` database: a logical switch bound only on the
    other's physical switch, marked mid-update by the other. Clearing it (under a stolen
    lock, which drops the other from the lock queue) would let the switch apply a part."""
    theirs = ObservedSwitch(
        uuid="u-x", name="net-x", tunnel_key=7001, description="", state_consistent=False,
        remote_macs={}, unknown_dst=None, extra_remote_rows=(), bindings=frozenset(),
        in_local_use=False, bound_elsewhere=True, pending=True,
    )  # fmt: skip
    view = SwitchView({"net-x": theirs}, {"eth1": "p1"}, {}, {}, True, ("192.0.2.22",), True)
    stage = plan(GatewayConfig("tor2", {}), view, mode, 4)
    assert stage.name == "done", stage


def test_bind_last_clears_a_mark_left_over_along_with_other_work() -> None:
    """Churn on another logical switch never keeps a marked one held: its mark goes in the
    same stage as that work."""
    db = FakeVtepDb()
    converge(db, config(OLD), "bind-last", 4)
    set_pending(db, OLD.name)
    stage = plan(config(OLD, FRESH), view_of(db), "bind-last", 4)
    assert stage.name != "unmark" and OLD.name in stage.switches
    ops = [op for txn in stage.transactions for op in txn.ops]
    assert ops[-1] == MarkPending(OLD.name, False)
    converge(db, config(OLD, FRESH), "bind-last", 4)
    converged(db, config(OLD, FRESH), 4)
