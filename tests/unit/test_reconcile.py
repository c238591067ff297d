"""The MAC reconciler's behaviour (issue 4, item 2), driven with claims and a fake clock.

The tests apply the returned changes to a :class:`Fabric` — a stand-in for distribution that
only ever learns what the reconciler says changed — and ask where the fabric believes a MAC
lives. So they also check that only changes travel, and that the changes are enough.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.logical import (
    Batcher,
    BatchPolicy,
    Claim,
    ClaimKind,
    Damping,
    DeviceName,
    Explanation,
    Location,
    LocationChange,
    Mac,
    NetworkId,
    Reconciler,
    Revision,
    Role,
    Rule,
    Standing,
    split_by_network,
)

NET = NetworkId("net-blue")
VM = Mac("02:00:00:00:00:01")
ROUTER = Mac("00:00:5e:00:01:01")  # a VRRP virtual router MAC
TOR1, TOR2, TOR3 = DeviceName("tor1"), DeviceName("tor2"), DeviceName("tor3")


def put(
    device: DeviceName,
    revision: int,
    mac: Mac = VM,
    *,
    role: Role = Role.MASTER,
    ip: str | None = "10.0.0.5",
    net: NetworkId = NET,
) -> Claim:
    return Claim(net, mac, device, Revision(revision), role=role, ip=ip)


def withdraw(device: DeviceName, revision: int, mac: Mac = VM, net: NetworkId = NET) -> Claim:
    return Claim.withdraw(net, mac, device, Revision(revision))


class Fabric:
    """What distribution has told the VTEPs: built from the returned changes only."""

    def __init__(self) -> None:
        self.believed: dict[tuple[NetworkId, Mac], Location] = {}

    def learn(self, changes: Sequence[LocationChange]) -> Sequence[LocationChange]:
        """Apply one call's changes: each must start from what the fabric believes, change
        something, and be the only one for its MAC in the call."""
        seen = set()
        for change in changes:
            key = (change.network, change.mac)
            assert key not in seen, f"two changes for one MAC in one call: {change}"
            assert self.believed.get(key) == change.old, f"stale 'old' in {change}"
            assert change.old != change.new, f"a change that changes nothing: {change}"
            seen.add(key)
            if change.new is None:
                del self.believed[key]
            else:
                self.believed[key] = change.new
        return changes

    def where(self, mac: Mac = VM, net: NetworkId = NET) -> DeviceName | None:
        location = self.believed.get((net, mac))
        return location.device if location else None


def reconciler(
    *, priorities: Mapping[DeviceName, int] | None = None, damping: Damping | None = Damping()
) -> tuple[Reconciler, Fabric]:
    return Reconciler(priorities=priorities, damping=damping), Fabric()


def test_a_mac_claimed_by_one_device_lives_there() -> None:
    rec, fabric = reconciler()
    changes = fabric.learn(rec.apply([put(TOR1, 10, ip="10.0.0.5")], now=0.0))
    assert list(changes) == [LocationChange(NET, VM, None, Location(TOR1, "10.0.0.5"))]
    assert changes[0].ip == "10.0.0.5"
    assert fabric.where() == TOR1
    assert rec.owner(NET, VM) == Location(TOR1, "10.0.0.5")
    assert rec.owner(NET, Mac("02:00:00:00:00:99")) is None
    explanation = rec.explain(NET, VM)
    assert explanation is not None
    assert explanation.rule is Rule.MASTER
    assert explanation.reason == "only master: tor1 (revision 10)"


def test_vrrp_failover_newest_master_wins_and_the_late_delete_changes_nothing() -> None:
    # tor1 has the higher HA priority: the revision still decides between masters.
    rec, fabric = reconciler(priorities={TOR1: 200, TOR2: 100})
    fabric.learn(rec.apply([put(TOR1, 100, ROUTER), put(TOR2, 90, ROUTER, role=Role.SLAVE)], 0))
    assert fabric.where(ROUTER) == TOR1
    # Failover: tor2 becomes active and reports the router MAC as master, last.
    changes = fabric.learn(rec.apply([put(TOR2, 120, ROUTER)], 1))
    assert [(c.old, c.new) for c in changes] == [
        (Location(TOR1, "10.0.0.5"), Location(TOR2, "10.0.0.5"))
    ]
    explanation = rec.explain(NET, ROUTER)
    assert explanation is not None and explanation.rule is Rule.NEWEST_MASTER
    assert explanation.reason == "newest master (revision 120) of 2 masters; tor1 demoted to slave"
    assert explanation.slaves == (TOR1,)
    # tor1's delete arrives late: it is no longer the owner, nothing moves.
    assert not fabric.learn(rec.apply([withdraw(TOR1, 130, ROUTER)], 2))
    assert fabric.where(ROUTER) == TOR2
    assert rec.counters().claims == 1


def test_vm_migration_moves_the_mac_to_the_new_rack() -> None:
    rec, fabric = reconciler()
    fabric.learn(rec.apply([put(TOR1, 5, ip="10.0.0.7")], 0))
    changes = fabric.learn(rec.apply([put(TOR3, 9, ip="10.0.0.7")], 1))
    assert list(changes) == [
        LocationChange(NET, VM, Location(TOR1, "10.0.0.7"), Location(TOR3, "10.0.0.7"))
    ]
    assert not fabric.learn(rec.apply([withdraw(TOR1, 11)], 2))  # the old rack forgets it
    assert fabric.where() == TOR3
    assert rec.counters().moves == 1


def test_three_simultaneous_masters_the_newest_wins_the_others_are_slaves() -> None:
    rec, fabric = reconciler()
    batch = [put(TOR1, 7), put(TOR2, 9), put(TOR3, 8)]
    changes = fabric.learn(rec.apply(batch, 0))
    assert len(changes) == 1 and fabric.where() == TOR2
    explanation = rec.explain(NET, VM)
    assert explanation is not None
    assert explanation.reason == (
        "newest master (revision 9) of 3 masters; tor3, tor1 demoted to slaves"
    )
    assert [(c.device, c.role, c.standing) for c in explanation.claims] == [
        (TOR1, Role.MASTER, Standing.SLAVE),
        (TOR3, Role.MASTER, Standing.SLAVE),
        (TOR2, Role.MASTER, Standing.OWNER),
    ]
    assert rec.counters().conflicts == 1
    # The newest master leaves: the next newest master (not the first) takes over.
    fabric.learn(rec.apply([withdraw(TOR2, 10)], 1))
    assert fabric.where() == TOR3


def test_no_master_designates_by_ha_priority_then_by_name() -> None:
    rec, fabric = reconciler(priorities={TOR1: 100, TOR2: 200})
    mac2 = Mac("02:00:00:00:00:02")
    slaves = [
        put(TOR1, 1, role=Role.SLAVE),
        put(TOR2, 2, role=Role.SLAVE),
        put(TOR3, 3, mac2, role=Role.SLAVE),
        put(TOR2, 4, mac2, role=Role.SLAVE),  # tor2 has a priority, tor3 has none (0)
        put(TOR3, 5, Mac("02:00:00:00:00:03"), role=Role.SLAVE),
        put(DeviceName("hv9"), 6, Mac("02:00:00:00:00:03"), role=Role.SLAVE),
    ]
    fabric.learn(rec.apply(slaves, 0))
    assert fabric.where() == TOR2 and fabric.where(mac2) == TOR2
    assert fabric.where(Mac("02:00:00:00:00:03")) == "hv9"  # equal priority: lowest name
    first = rec.explain(NET, VM)
    assert first is not None and first.rule is Rule.HA_PRIORITY
    assert first.reason == "no master: tor2 designated by HA priority 200 over 100 (tor1)"
    third = rec.explain(NET, Mac("02:00:00:00:00:03"))
    assert third is not None and third.rule is Rule.NAME
    assert rec.counters().conflicts == 3  # three MACs nobody claimed as master
    # A master claim, even from the lowest priority, beats every slave.
    fabric.learn(rec.apply([put(TOR3, 7, role=Role.MASTER)], 1))
    assert fabric.where() == TOR3


def test_priority_changes_redesignate_masterless_macs() -> None:
    rec, fabric = reconciler(priorities={TOR1: 100, TOR2: 200})
    fabric.learn(rec.apply([put(TOR1, 1, role=Role.SLAVE), put(TOR2, 2, role=Role.SLAVE)], 0))
    assert fabric.where() == TOR2
    fabric.learn(rec.set_priorities({TOR1: 300, TOR2: 200}, 1))
    assert fabric.where() == TOR1


def flap(rec: Reconciler, fabric: Fabric, moves: int, *, start: int, t0: float) -> int:
    """Move the VM back and forth between tor1 and tor2 once a second; returns the next
    revision."""
    revision = start
    for i in range(moves):
        device = TOR2 if i % 2 == 0 else TOR1
        fabric.learn(rec.apply([put(device, revision)], t0 + i))
        revision += 1
    return revision


def test_a_flapping_mac_is_held_then_released_after_a_quiet_window() -> None:
    rec, fabric = reconciler(damping=Damping(max_moves=3, window=10.0))
    fabric.learn(rec.apply([put(TOR1, 1)], 0.0))
    flap(rec, fabric, 3, start=2, t0=1.0)  # t=1,2,3: tor2, tor1, tor2 — three moves: allowed
    assert fabric.where() == TOR2 and not rec.is_damped(NET, VM)
    assert not fabric.learn(rec.apply([put(TOR1, 10)], 4.0))  # the fourth move is one too many
    assert fabric.where() == TOR2 and rec.is_damped(NET, VM)
    explanation = rec.explain(NET, VM)
    assert explanation is not None and explanation.rule is Rule.DAMPED and explanation.damped
    assert explanation.reason.startswith(
        "damped: moved 4 times in 10 s; held at tor2 until 14 unless it moves again"
    )
    assert rec.counters().damped == 1
    assert not fabric.learn(rec.tick(13.9))  # not quiet long enough
    assert not fabric.learn(rec.apply([put(TOR1, 11, ip="10.0.0.5")], 13.95))  # no move
    changes = fabric.learn(rec.tick(14.0))
    assert [(c.old, c.new) for c in changes] == [
        (Location(TOR2, "10.0.0.5"), Location(TOR1, "10.0.0.5"))
    ]
    assert fabric.where() == TOR1 and not rec.is_damped(NET, VM)
    assert rec.counters().damped == 0


def test_a_mac_that_keeps_flapping_stays_held() -> None:
    rec, fabric = reconciler(damping=Damping(max_moves=2, window=10.0))
    fabric.learn(rec.apply([put(TOR1, 1)], 0.0))
    flap(rec, fabric, 3, start=2, t0=1.0)  # held at tor1 by the third move (t=3)
    assert rec.is_damped(NET, VM) and fabric.where() == TOR1
    flap(rec, fabric, 4, start=10, t0=8.0)  # it goes on moving until t=11
    assert not fabric.learn(rec.tick(20.0))  # 10 s after t=3, but only 9 s after t=11
    assert fabric.where() == TOR1
    fabric.learn(rec.tick(21.0))
    assert fabric.where() == TOR1 and not rec.is_damped(NET, VM)  # t=11 put it on tor1


def test_a_hold_does_not_outlive_the_holders_claim() -> None:
    rec, fabric = reconciler(damping=Damping(max_moves=1, window=60.0))
    fabric.learn(rec.apply([put(TOR1, 1)], 0.0))
    flap(rec, fabric, 2, start=2, t0=1.0)  # tor2 (a move), then tor1: held at tor2
    assert rec.is_damped(NET, VM) and fabric.where() == TOR2
    fabric.learn(rec.apply([withdraw(TOR2, 9)], 3.0))
    assert fabric.where() == TOR1


def test_a_device_that_disappears_takes_its_claims_along() -> None:
    rec, fabric = reconciler(priorities={TOR3: 10})
    alone, contested, backed = (Mac(f"02:00:00:00:00:0{i}") for i in (1, 2, 3))
    claims = [
        put(TOR1, 1, alone),
        put(TOR2, 2, contested),
        put(TOR1, 3, contested),
        put(TOR1, 4, backed),
        put(TOR2, 5, backed, role=Role.SLAVE),
        put(TOR3, 6, backed, role=Role.SLAVE),
        put(TOR2, 7, Mac("02:00:00:00:00:04")),
    ]
    fabric.learn(rec.apply(claims, 0))
    assert {fabric.where(m) for m in (alone, contested, backed)} == {TOR1}
    changes = fabric.learn(rec.withdraw_device(TOR1, Revision(50), 1))
    assert len(changes) == 3
    assert fabric.where(alone) is None
    assert fabric.where(contested) == TOR2  # the remaining master
    assert fabric.where(backed) == TOR3  # no master left: designated by priority
    assert TOR1 not in {location.device for location in fabric.believed.values()}
    assert rec.counters().claims == 4


def test_reapplying_the_same_claims_changes_nothing() -> None:
    rec, fabric = reconciler()
    batch = [put(TOR1, 1), put(TOR2, 2, role=Role.SLAVE), put(TOR3, 3, ROUTER), withdraw(TOR3, 4)]
    assert len(fabric.learn(rec.apply(batch, 0))) == 2
    assert not rec.apply(batch, 1)
    assert not rec.apply(batch[:2], 2)
    assert rec.counters().claims == 3


def test_an_older_claim_arriving_late_changes_nothing() -> None:
    rec, fabric = reconciler()
    fabric.learn(rec.apply([put(TOR1, 10, ip="10.0.0.2")], 0))
    assert not rec.apply([put(TOR1, 8, ip="10.0.0.1")], 1)  # older than what tor1 said
    fabric.learn(rec.apply([withdraw(TOR1, 12)], 2))
    assert not rec.apply([put(TOR1, 11)], 3)  # older than its withdraw: stays withdrawn
    assert fabric.where() is None


def test_the_owner_changing_ip_travels() -> None:
    rec, fabric = reconciler()
    fabric.learn(rec.apply([put(TOR1, 1, ip="10.0.0.1")], 0))
    changes = fabric.learn(rec.apply([put(TOR1, 2, ip="10.0.0.9")], 1))
    assert [c.new for c in changes] == [Location(TOR1, "10.0.0.9")]
    assert rec.counters().moves == 0


def test_the_explanation_lists_claims_oldest_first_and_names_the_rule() -> None:
    rec, _ = reconciler(priorities={TOR1: 5})
    rec.apply([put(TOR3, 30, role=Role.SLAVE), put(TOR1, 10, ip="10.0.0.1"), put(TOR2, 20)], 0)
    explanation = rec.explain(NET, VM)
    assert explanation is not None
    assert [(c.revision, c.device) for c in explanation.claims] == [
        (10, TOR1),
        (20, TOR2),
        (30, TOR3),
    ]
    assert explanation.rule is Rule.NEWEST_MASTER
    assert explanation.owner == Location(TOR2, "10.0.0.5")
    assert explanation.reason == (
        "newest master (revision 20) of 2 masters; tor1 demoted to slave; slaves: tor3"
    )
    rec.apply([withdraw(TOR1, 40), withdraw(TOR2, 41), withdraw(TOR3, 42)], 1)
    gone = rec.explain(NET, VM)
    assert gone is not None and gone.rule is Rule.NO_CLAIM and gone.claims == ()
    assert rec.explain(NET, Mac("02:00:00:00:00:77")) is None


def test_a_tie_on_revision_is_broken_by_priority_and_said_so() -> None:
    rec, fabric = reconciler(priorities={TOR2: 7})
    fabric.learn(rec.apply([put(TOR1, 5), put(TOR2, 5)], 0))  # one store transaction
    assert fabric.where() == TOR2
    explanation = rec.explain(NET, VM)
    assert explanation is not None and explanation.owner == Location(TOR2, "10.0.0.5")
    assert "tie on revision broken by HA priority 7 over 0 (tor1)" in explanation.reason
    fabric.learn(rec.apply([put(TOR3, 6), put(DeviceName("hv1"), 6)], 1))
    assert fabric.where() == "hv1"  # equal priorities: the lowest name


def test_compaction_forgets_tombstones_only_up_to_the_revision() -> None:
    rec, fabric = reconciler()
    fabric.learn(rec.apply([put(TOR1, 1), put(TOR2, 2, ROUTER), withdraw(TOR1, 3)], 0))
    fabric.learn(rec.apply([withdraw(TOR3, 9, ROUTER)], 0))
    assert rec.compact(Revision(5)) == 1
    assert rec.explain(NET, VM) is None  # nothing left to remember about it
    assert rec.compact(Revision(9)) == 1
    assert fabric.where(ROUTER) == TOR2


def test_claims_normalize_their_mac_and_convert_to_rows() -> None:
    claim = Claim(NET, Mac("02-AB-00-00-00-01"), TOR1, Revision(3), role=Role.SLAVE)
    assert claim.mac == "02:ab:00:00:00:01"
    assert claim.row() == (NET, "02:ab:00:00:00:01", TOR1, 3, 1, None)
    assert withdraw(TOR1, 4).kind is ClaimKind.WITHDRAW and withdraw(TOR1, 4).row()[4] == 0
    with pytest.raises(ValueError, match="not a MAC"):
        Claim(NET, Mac("02:00:00"), TOR1, Revision(1))


def test_changes_read_the_same_as_values_and_as_flat_rows() -> None:
    rec, _ = reconciler()
    rec.apply([put(TOR1, 1)], 0)
    changes = rec.apply([put(TOR2, 2), put(TOR1, 3, ROUTER), put(TOR3, 4, MACS[2])], 1)
    assert len(changes) == 3
    assert [changes[i] for i in range(-3, 3)] == list(changes) * 2
    assert [c.mac for c in changes] == [VM, ROUTER, MACS[2]]  # moved, then appeared
    assert list(changes[1:]) == list(changes)[1:]
    assert [
        (c.network, c.mac, c.old.device if c.old else None, c.new.device if c.new else None)
        for c in changes
    ] == [(n, m, od, nd) for n, m, od, _oi, nd, _ni in changes.flat()]
    with pytest.raises(IndexError):
        changes[3]


# --- the batcher -----------------------------------------------------------------------


def test_the_batcher_flushes_a_network_when_full_or_when_its_oldest_claim_is_due() -> None:
    batcher = Batcher(BatchPolicy(max_claims=3, max_wait=0.25))
    red = NetworkId("net-red")
    assert batcher.add([put(TOR1, 1), put(TOR1, 2, net=red)], now=10.0) == []
    assert batcher.deadline() == 10.25
    full = batcher.add([put(TOR1, 3), put(TOR2, 4)], now=10.125)
    assert [(b.network, len(b.claims)) for b in full] == [(NET, 3)]
    assert batcher.due(10.24) == []
    due = batcher.due(10.25)
    assert [(b.network, [c.revision for c in b.claims]) for b in due] == [(red, [2])]
    assert batcher.deadline() is None and batcher.pending() == 0
    batcher.add([put(TOR3, 5)], now=11.0)
    assert [len(b.claims) for b in batcher.drain()] == [1]


def test_real_time_batching_hands_over_every_claim_at_once() -> None:
    batcher = Batcher(BatchPolicy.real_time())
    batches = batcher.add([put(TOR1, 1), put(TOR2, 2)], now=0.0)
    assert [[c.revision for c in b.claims] for b in batches] == [[1], [2]]


def test_split_by_network_keeps_each_networks_order() -> None:
    red = NetworkId("net-red")
    split = split_by_network([put(TOR1, 1), put(TOR1, 2, net=red), put(TOR2, 3)])
    assert {n: [c.revision for c in cs] for n, cs in split.items()} == {NET: [1, 3], red: [2]}


# --- properties --------------------------------------------------------------------------

DEVICES = [TOR1, TOR2, TOR3, DeviceName("hv1")]
MACS = [Mac(f"02:00:00:00:00:0{i}") for i in range(1, 4)]
NETS = [NET, NetworkId("net-red")]


@st.composite
def claim_sets(draw: st.DrawFn) -> list[Claim]:
    """Claims on a few MACs by a few devices, with distinct revisions, in revision order."""
    shapes = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NETS),
                st.sampled_from(MACS),
                st.sampled_from(DEVICES),
                st.sampled_from([Role.MASTER, Role.SLAVE]),
                st.sampled_from([ClaimKind.PUT, ClaimKind.PUT, ClaimKind.WITHDRAW]),
                st.sampled_from([None, "10.0.0.1", "10.0.0.2"]),
            ),
            max_size=40,
        )
    )
    return [
        Claim(net, mac, dev, Revision(rev), role=role, ip=ip, kind=kind)
        for rev, (net, mac, dev, role, kind, ip) in enumerate(shapes, start=1)
    ]


PRIORITIES = {TOR2: 50, DeviceName("hv1"): 50}


def final_state(
    batches: Iterable[Sequence[Claim]],
) -> tuple[dict[tuple[NetworkId, Mac], Location], Fabric, list[Explanation | None]]:
    rec, fabric = Reconciler(priorities=PRIORITIES, damping=None), Fabric()
    for now, batch in enumerate(batches):
        fabric.learn(rec.apply(batch, float(now)))
    explanations = [rec.explain(net, mac) for net in NETS for mac in MACS]
    return dict(rec.locations()), fabric, explanations


@settings(max_examples=300)
@given(claims=claim_sets(), data=st.data())
def test_any_arrival_order_gives_the_same_owners(claims: list[Claim], data: st.DataObject) -> None:
    shuffled = data.draw(st.permutations(claims))
    in_order, _, explained = final_state([[c] for c in claims])
    out_of_order, fabric, explained_again = final_state([[c] for c in shuffled])
    assert out_of_order == in_order
    assert fabric.believed == out_of_order  # the changes alone rebuilt the same picture
    assert explained_again == explained


@settings(max_examples=300)
@given(claims=claim_sets(), data=st.data())
def test_batches_and_real_time_give_the_same_final_state(
    claims: list[Claim], data: st.DataObject
) -> None:
    policy = BatchPolicy(
        max_claims=data.draw(st.integers(1, 10)), max_wait=data.draw(st.sampled_from([0, 1, 5]))
    )
    batcher, batches, now = Batcher(policy), [], 0.0
    for claim in claims:
        now += data.draw(st.sampled_from([0.0, 0.5, 2.0]))
        batches += [b.claims for b in batcher.add([claim], now)]
    batches += [b.claims for b in batcher.drain()]
    real_time, _, explained = final_state([[c] for c in claims])
    batched, fabric, explained_batched = final_state(batches)
    one_batch, _, _ = final_state([claims])
    assert batched == real_time == one_batch
    assert fabric.believed == batched
    assert explained_batched == explained
    assert sum(len(b) for b in batches) == len(claims)


@settings(max_examples=300)
@given(data=st.data())
def test_the_changes_always_rebuild_exactly_the_reconciled_locations(data: st.DataObject) -> None:
    """Whatever arrives — ties on revision, stale claims, flapping, device removals, holds
    expiring — a fabric that only applies the returned changes agrees with the reconciler."""
    rec = Reconciler(priorities=PRIORITIES, damping=Damping(max_moves=2, window=3.0))
    fabric, now = Fabric(), 0.0
    for _ in range(data.draw(st.integers(1, 12))):
        now += data.draw(st.sampled_from([0.0, 1.0, 4.0]))
        action = data.draw(st.sampled_from(["claims", "claims", "device", "tick"]))
        if action == "claims":
            batch = data.draw(st.lists(tied_claims(), max_size=6))
            fabric.learn(rec.apply(batch, now))
        elif action == "device":
            gone, revision = data.draw(st.sampled_from(DEVICES)), data.draw(st.integers(1, 12))
            fabric.learn(rec.withdraw_device(gone, Revision(revision), now))
        else:
            fabric.learn(rec.tick(now))
        assert fabric.believed == dict(rec.locations())
        for (net, mac), location in fabric.believed.items():
            explanation = rec.explain(net, mac)
            assert explanation is not None and explanation.owner == location


def tied_claims() -> st.SearchStrategy[Claim]:
    """Claims whose revisions often tie (several devices in one store transaction)."""
    return st.builds(
        Claim,
        st.sampled_from(NETS),
        st.sampled_from(MACS),
        st.sampled_from(DEVICES),
        st.integers(1, 12).map(Revision),
        role=st.sampled_from([Role.MASTER, Role.SLAVE]),
        ip=st.sampled_from([None, "10.0.0.1"]),
        kind=st.sampled_from([ClaimKind.PUT, ClaimKind.PUT, ClaimKind.WITHDRAW]),
    )
