"""The VTEP planner on an in-memory switch: convergence, row limits, and — the point of the
three modes — a switch agent that never sees a partial logical switch."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import pytest

from tests.unit.fake_vtep import FakeVtepDb
from tether.vtep.encode import Refs, encode
from tether.vtep.ops import Stage
from tether.vtep.plan import Mode, missing_ports, plan
from tether.vtep.state import GatewayConfig, LogicalSwitchConfig, RemoteMac, SwitchView, observe

MODES: list[Mode] = ["bind-last", "lock", "state-consistent"]
Check = Callable[[FakeVtepDb, Stage], None]


def network(
    n: int, macs: range, *, locator: str = "192.0.2.11", port: str = "eth1"
) -> LogicalSwitchConfig:
    remote = {
        f"02:00:00:{n:02x}:00:{m:02x}": RemoteMac(
            f"02:00:00:{n:02x}:00:{m:02x}", locator, f"10.{n}.0.{m}"
        )
        for m in macs
    }
    return LogicalSwitchConfig(
        name=f"net-{n}",
        tunnel_key=5000 + n,
        description=f"t/net{n}",
        remote_macs=remote,
        flood_locators=frozenset({locator, "192.0.2.12"}),
        bindings=frozenset({(port, 100 + n)}),
    )


def config(*switches: LogicalSwitchConfig) -> GatewayConfig:
    return GatewayConfig("tor1", {s.name: s for s in switches})


def view_of(db: FakeVtepDb) -> SwitchView:
    return observe(db.tables, "tor1")


def refs_of(view: SwitchView) -> Refs:
    return Refs({n: s.uuid for n, s in view.switches.items()}, view.locators, view.ports)


def converge(
    db: FakeVtepDb, desired: GatewayConfig, mode: Mode, max_rows: int, check: Check | None = None
) -> list[Stage]:
    """Run stages until done, as the agent does; ``check`` runs after every transaction."""
    stages = []
    for _ in range(50):
        stage = plan(desired, view_of(db), mode, max_rows)
        if not stage.transactions:
            return stages
        stages.append(stage)
        db.locks |= stage.steal
        for txn in stage.transactions:
            assert txn.rows <= max_rows or len(txn.ops) == 1
            db.transact(encode(txn, refs_of(view_of(db))))
            if check:
                check(db, stage)
        db.locks -= stage.steal
        if check:
            check(db, Stage("released"))
    raise AssertionError("did not converge")


def applied(view: SwitchView, name: str) -> tuple[object, ...]:
    """What a switch agent would program for one logical switch."""
    have = view.switches[name]
    macs = tuple(sorted((m, o.locator, o.ip) for m, o in have.remote_macs.items()))
    flood = have.unknown_dst[1] if have.unknown_dst else frozenset()
    return (have.tunnel_key, macs, flood, have.bindings)


def expected(ls: LogicalSwitchConfig) -> tuple[object, ...]:
    macs = tuple(sorted((m, r.locator, r.ip) for m, r in ls.remote_macs.items()))
    return (ls.tunnel_key, macs, ls.flood_locators, ls.bindings)


def complete_only(allowed: Mapping[str, list[LogicalSwitchConfig]], mode: Mode) -> Check:
    """A switch agent of ``mode``: what it would apply must always be a complete version."""

    def check(db: FakeVtepDb, stage: Stage) -> None:
        view = view_of(db)
        for name, have in view.switches.items():
            # a switch holds a pending or inconsistent logical switch whatever tether's
            # mode (a restart may change the mode with either left behind)
            visible = (
                bool(have.bindings) and not have.pending and have.state_consistent is not False
            )
            if mode == "lock":  # the agent reads only while it holds the lock
                visible = visible and stage.name in ("released", "done")
            if visible:
                assert applied(view, name) in [expected(v) for v in allowed[name]], (
                    stage.name,
                    name,
                )

    return check


@pytest.mark.parametrize("mode", MODES)
def test_create_converges_within_the_row_limit_without_partial_views(mode: Mode) -> None:
    db = FakeVtepDb()
    desired = config(network(1, range(1, 30)), network(2, range(1, 25), port="eth2"))
    allowed = {n: [s] for n, s in desired.switches.items()}
    stages = converge(db, desired, mode, max_rows=5, check=complete_only(allowed, mode))
    view = view_of(db)
    assert {n: applied(view, n) for n in view.switches} == {
        n: expected(s) for n, s in desired.switches.items()
    }
    assert db.transactions >= 10, "a small row limit must spread the work over many transactions"
    assert plan(desired, view, mode, 5).transactions == ()
    if mode == "bind-last":
        assert [s.name for s in stages] == ["content", "bind"]


@pytest.mark.parametrize("mode", MODES)
def test_update_of_a_bound_switch_never_shows_a_mix(mode: Mode) -> None:
    db = FakeVtepDb()
    old = network(1, range(1, 20))
    converge(db, config(old), mode, max_rows=4)
    new = network(1, range(10, 40), locator="192.0.2.13")
    stages = converge(
        db, config(new), mode, max_rows=4, check=complete_only({old.name: [old, new]}, mode)
    )
    assert applied(view_of(db), new.name) == expected(new)
    if mode == "bind-last":  # the patent's unbind -> update -> rebind path, confirmed steps
        assert [s.name for s in stages] == ["update"]
        first, *middle, last = stages[0].transactions
        assert {type(op).__name__ for op in first.ops} == {"Unbind"}
        assert {type(op).__name__ for op in last.ops} == {"Bind"}
        assert all(type(op).__name__ not in ("Bind", "Unbind") for t in middle for op in t.ops)
    else:  # no gap: the binding is never removed
        assert all(s.name != "unbind" for s in stages)


def test_bind_last_updates_in_place_what_fits_in_one_transaction() -> None:
    """A MAC move is one row: one transaction is atomic, so the switch stays bound (no gap),
    and small changes of several switches share transactions without splitting any."""
    db = FakeVtepDb()
    nets = [network(n, range(1, 6)) for n in range(1, 5)]
    converge(db, config(*nets), "bind-last", max_rows=10)
    moved = [network(n, range(1, 6), locator="192.0.2.13") for n in range(1, 4)]
    moved = [
        LogicalSwitchConfig(
            m.name,
            m.tunnel_key,
            m.description,
            {**old.remote_macs, **dict(list(m.remote_macs.items())[:2])},
            old.flood_locators,
            old.bindings,
        )
        for m, old in zip(moved, nets, strict=False)
    ]
    desired = config(*moved, nets[3])
    allowed = {n.name: [n, *[m for m in moved if m.name == n.name]] for n in nets}

    def never_unbound(db: FakeVtepDb, stage: Stage) -> None:
        complete_only(allowed, "bind-last")(db, stage)
        assert all(s.bindings for s in view_of(db).switches.values()), "a switch went dark"

    stages = converge(db, desired, "bind-last", max_rows=10, check=never_unbound)
    assert [s.name for s in stages] == ["update"]
    # three switches x (2 moved MACs + 1 new locator, counted once each): 9 rows <= 10
    assert len(stages[0].transactions) == 1
    assert {n: applied(view_of(db), n) for n in desired.switches} == {
        n: expected(s) for n, s in desired.switches.items()
    }


@pytest.mark.parametrize("mode", MODES)
def test_teardown_unbinds_first_and_removes_everything_tether_owns(mode: Mode) -> None:
    db = FakeVtepDb()
    keep, drop = network(1, range(1, 5)), network(2, range(1, 9), port="eth2")
    converge(db, config(keep, drop), mode, max_rows=3)
    stages = converge(
        db,
        config(keep),
        mode,
        max_rows=3,
        check=complete_only({keep.name: [keep], drop.name: [drop]}, mode),
    )
    view = view_of(db)
    assert set(view.switches) == {keep.name}
    assert view.bindings == {("eth1", 101): view.switches[keep.name].uuid}
    assert stages[-1].name == "delete"
    if mode == "bind-last":
        assert stages[0].name == "unbind"


def test_lock_mode_asserts_the_lock_of_every_switch_it_writes() -> None:
    desired = config(network(1, range(1, 4)), network(2, range(1, 4), port="eth2"))
    stage = plan(desired, view_of(FakeVtepDb()), "lock", 4)
    assert stage.steal == {"ls_5001", "ls_5002"}
    for txn in stage.transactions:
        touched = {getattr(op, "switch", getattr(op, "name", "")) for op in txn.ops}
        assert txn.locks == {f"ls_{5000 + int(name[-1])}" for name in touched}
    db = FakeVtepDb()
    head = stage.transactions[0]
    first = encode(head, refs_of(view_of(db)))
    assert [op["lock"] for op in first[: len(head.locks)]] == sorted(head.locks)
    with pytest.raises(Exception, match="not owner"):
        db.transact(first)  # without the stolen lock the switch refuses the write


@pytest.mark.parametrize("mode", MODES)
def test_a_switch_used_by_local_macs_is_emptied_but_not_deleted(mode: Mode) -> None:
    db = FakeVtepDb()
    gone = network(1, range(1, 3))
    converge(db, config(gone), mode, 10)
    ls_uuid = view_of(db).switches[gone.name].uuid
    locator = next(iter(db.tables["Physical_Locator"]))
    db.tables["Ucast_Macs_Local"]["u1"] = {
        "MAC": "02:aa:00:00:00:01",
        "logical_switch": ["uuid", ls_uuid],
        "locator": ["uuid", locator],
        "ipaddr": "",
    }
    converge(db, config(), mode, 10)
    have = view_of(db).switches[gone.name]
    assert not have.remote_macs and not have.bindings and have.in_local_use
    # never left inconsistent: the switch must be allowed to apply the removal
    assert have.state_consistent is not False


def test_ports_the_switch_lacks_are_reported_not_bound() -> None:
    desired = config(network(1, range(1, 3), port="eth9"))
    db = FakeVtepDb()
    converge(db, desired, "bind-last", 10)
    assert missing_ports(desired, view_of(db)) == ["eth9"]
    assert view_of(db).bindings == {}


def test_rows_written_by_someone_else_are_repaired() -> None:
    db = FakeVtepDb()
    desired = config(network(1, range(1, 4)))
    converge(db, desired, "state-consistent", 10)
    umr = next(iter(db.tables["Ucast_Macs_Remote"]))
    db.tables["Ucast_Macs_Remote"][umr]["ipaddr"] = "10.9.9.9"
    dup = dict(db.tables["Ucast_Macs_Remote"][umr])
    db.tables["Ucast_Macs_Remote"]["zz-dup"] = dup
    converge(db, desired, "state-consistent", 10)
    assert applied(view_of(db), "net-1") == expected(desired.switches["net-1"])
    assert len(db.tables["Ucast_Macs_Remote"]) == 3
