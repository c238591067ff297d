"""The MAC reconciler: one location per (network, MAC) from every device's claims. Pure.

The logical controller role of US 9,942,058 (FIG. 2, steps 225-240): it keeps the master
inventory — every device's latest claim on every MAC — and, each time claims arrive, decides
where each touched MAC lives and returns **only what changed** (:class:`Changes`), so that
distribution sends nothing else. Re-applying claims it already holds changes nothing.

Per (network, MAC):

* **Claims merge by revision.** A device holds one claim per MAC; a claim replaces the
  device's previous one only if its store revision is higher, so duplicates and
  late-arriving older claims change nothing. A withdraw stays as a tombstone at its revision
  (an older put arriving after it stays dead) and removes only that device's claim: from a
  device that is not the owner it changes nothing, from the owner it hands the MAC to the
  next best claim or, with none left, removes it. :meth:`Reconciler.compact` forgets
  tombstones once no older claim can still arrive.
* **Election** (:mod:`tether.logical.election`): the newest master wins; no master: highest
  HA priority, then lowest name. The owner depends on the set of claims only, never on the
  order they arrived in — except through damping.
* **Damping** (:mod:`tether.logical.damping`): a MAC moving more than M times in S seconds
  stays where it is until it has been still for S seconds (:meth:`Reconciler.tick`). A hold
  never outlives the holder's claim: if the held device withdraws, the MAC goes to the
  election's winner (still flagged).
* **Devices that disappear**: :meth:`Reconciler.withdraw_device` withdraws all their claims.

Claims arrive as :class:`~tether.logical.claims.Claim` values (:meth:`Reconciler.apply`) or,
on the hot path, as flat rows (:meth:`Reconciler.apply_rows`). A batch is merged first and
decided after, once per touched MAC, so a MAC that moves twice within a batch yields one
change (or none, if it came back) and one decision at the batch's ``now``.

Data layout — a million claims must reconcile within about twice the time of filling a plain
dict with them (``benchmarks/mac_inventory.py``):

* one dict, ``(network, mac)`` -> :data:`Record`, a plain tuple ``(epoch, row, row, ...)``:
  the number of the batch that last touched the MAC, then each device's latest ClaimRow —
  the caller's own tuples, never copied. One lookup per claim; plain tuples of strings and
  ints, which the garbage collector stops tracking;
* the owner is not stored: it is the election's winner (a scan of one to three rows), or the
  held device of a damped MAC (in ``_mobility``, which only MACs that moved have);
* the epoch tells a MAC's first touch in a batch without a second dict: MACs new to the
  inventory are the dict's last entries, read back in order without a lookup; only MACs
  that existed before go through ``touched`` (with their old record, to diff against);
* no device -> MACs index: it would cost every claim a set insertion, for the rare
  :meth:`~Reconciler.withdraw_device`, which scans the inventory instead.

Why each MAC is where it is: :meth:`Reconciler.explain` (:mod:`tether.logical.explain`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice

from tether.logical.claims import (
    MASTER,
    WITHDRAWN,
    Claim,
    ClaimRow,
    DeviceName,
    Mac,
    NetworkId,
    Revision,
)
from tether.logical.damping import Damping, Mobility, note_winner
from tether.logical.election import elect
from tether.logical.explain import Explanation, explain
from tether.logical.location import ChangeRow, Changes, Location

__all__ = ["Counters", "Key", "Reconciler", "Record"]

Key = tuple[NetworkId, Mac]
Record = tuple[int, *tuple[ClaimRow, ...]]
"""``(epoch, row, ...)``: the batch that last touched a MAC, then each device's latest claim
(one row per device; a WITHDRAWN row is a tombstone)."""
Where = tuple[DeviceName, str | None]
"""A location as a plain tuple: (device, ip)."""


@dataclass(frozen=True, slots=True)
class Counters:
    """For metrics: gauges (claims, damped) and counters since start (moves, conflicts)."""

    claims: int
    """Live claims held (withdrawn ones excluded)."""
    moves: int
    """Location changes from one device to another."""
    conflicts: int
    """Decisions among disagreeing claims: two or more masters, or none."""
    damped: int
    """MACs held by damping now."""


class Reconciler:
    """The master inventory of every claim, and one location per (network, MAC).

    ``priorities`` maps devices to their HA priority (absent: 0); ``damping`` defaults to
    EVPN's 5 moves in 180 s, None turns it off. Every method that takes ``now`` (seconds,
    monotonic) returns the location changes it caused.
    """

    def __init__(
        self,
        *,
        priorities: Mapping[DeviceName, int] | None = None,
        damping: Damping | None = Damping(),
    ) -> None:
        self._priorities: dict[DeviceName, int] = dict(priorities or {})
        self._damping = damping
        self._inventory: dict[Key, Record] = {}
        self._mobility: dict[Key, Mobility] = {}
        self._damped: set[Key] = set()
        self._epoch = 0
        self._live = 0
        self._moves = 0
        self._conflicts = 0

    # --- input -------------------------------------------------------------------------

    def apply(self, claims: Iterable[Claim], now: float) -> Changes:
        """Merge a batch of claims and decide every MAC they touch."""
        return self.apply_rows([claim.row() for claim in claims], now)

    def apply_rows(self, rows: Iterable[ClaimRow], now: float, *, ordered: bool = False) -> Changes:
        """:meth:`apply` for flat rows: the hot path. MACs must be lower-case; the rows are
        kept as they are (they are immutable).

        ``ordered``: the caller has put each device's claims in order itself (the MAC
        inventory service, which merges claims from the store and the model and derives HA
        slave claims): each row replaces its device's claim whatever its revision. The
        revisions still decide which master is newest."""
        fresh, touched = self._merge(rows, ordered)
        changed = self._settle(self._before(touched), now)
        return Changes(changed, self._settle_fresh(fresh))

    def withdraw_device(self, device: DeviceName, revision: Revision, now: float) -> Changes:
        """Withdraw, at ``revision``, every claim of a device that is gone (gateway deleted,
        chassis lost): its MACs go to their next best claims or disappear. Scans the
        inventory (a rare event pays, so that every claim does not)."""
        rows: list[ClaimRow] = [
            (row[0], row[1], device, revision, WITHDRAWN, None)
            for record in self._inventory.values()
            for row in record[1:]
            if row[2] == device and row[4] != WITHDRAWN
        ]
        return self.apply_rows(rows, now)

    def set_priorities(self, priorities: Mapping[DeviceName, int], now: float) -> Changes:
        """Replace the HA priorities; re-decide the MACs of every device whose changed."""
        old = self._priorities
        changed = {d for d in old.keys() | priorities.keys() if old.get(d) != priorities.get(d)}
        before = [
            (key, self._owner_in(key, record))
            for key, record in self._inventory.items()
            if any(row[2] in changed for row in record[1:])
        ]
        self._priorities = dict(priorities)
        return Changes(self._settle(before, now))

    def tick(self, now: float) -> Changes:
        """Release the holds that have been quiet for a whole window by ``now``; forget the
        move history of MACs that have been still that long."""
        policy = self._damping
        if policy is None:
            return Changes([])
        before = [
            (key, self._owner_in(key, self._inventory[key]))
            for key in self._damped
            if self._mobility[key].quiet_since(now, policy)
        ]
        changes = self._settle(before, now)
        still = [
            k for k, m in self._mobility.items() if not m.damped and m.quiet_since(now, policy)
        ]
        for key in still:
            del self._mobility[key]
        return Changes(changes)

    def compact(self, revision: Revision) -> int:
        """Forget tombstones at or below ``revision`` — once no claim that old can still
        arrive (the store's compaction revision). Returns how many were dropped."""
        dropped = 0
        for key, record in list(self._inventory.items()):
            kept = tuple(row for row in record[1:] if row[4] != WITHDRAWN or row[3] > revision)
            if len(kept) == len(record) - 1:
                continue
            dropped += len(record) - 1 - len(kept)
            if kept:
                self._inventory[key] = (record[0], *kept)
            else:
                del self._inventory[key]
        return dropped

    # --- queries -------------------------------------------------------------------------

    def owner(self, network: NetworkId, mac: Mac) -> Location | None:
        """Where the MAC lives now, or None."""
        key = (network, mac)
        record = self._inventory.get(key)
        where = self._owner_in(key, record) if record else None
        return Location(*where) if where else None

    def locations(self) -> Iterator[tuple[Key, Location]]:
        """Every MAC with a location, in no particular order."""
        for key, record in self._inventory.items():
            where = self._owner_in(key, record)
            if where is not None:
                yield key, Location(*where)

    @property
    def priorities(self) -> Mapping[DeviceName, int]:
        """The HA priorities in force (see :meth:`set_priorities`)."""
        return self._priorities

    def is_damped(self, network: NetworkId, mac: Mac) -> bool:
        return (network, mac) in self._damped

    def explain(self, network: NetworkId, mac: Mac) -> Explanation | None:
        """Every live claim, oldest first, the owner and why; None for an unknown MAC."""
        key = (network, mac)
        record = self._inventory.get(key)
        if record is None:
            return None
        held = self._mobility.get(key) if key in self._damped else None
        owner = self.owner(network, mac)
        return explain(network, mac, record[1:], owner, self._priorities, held, self._damping)

    def counters(self) -> Counters:
        return Counters(
            claims=self._live,
            moves=self._moves,
            conflicts=self._conflicts,
            damped=len(self._damped),
        )

    # --- the hot path --------------------------------------------------------------------

    def _merge(
        self, rows: Iterable[ClaimRow], ordered: bool = False
    ) -> tuple[int, dict[Key, Record]]:
        """Fold rows into the inventory. Returns how many MACs are new (the inventory's last
        entries) and the previous record of every other MAC that changed."""
        self._epoch = epoch = self._epoch + 1
        inventory = self._inventory
        known = inventory.get
        touched: dict[Key, Record] = {}
        size = len(inventory)
        for row in rows:
            key = (row[0], row[1])
            record = known(key)
            if record is None:
                inventory[key] = (epoch, row)
                continue
            if len(record) == 2:  # the common case, inline: one claimant so far
                mine = record[1]
                if mine[2] != row[2]:
                    inventory[key] = (epoch, mine, row)
                elif mine[3] < row[3] or (ordered and mine != row):
                    inventory[key] = (epoch, row)
                else:
                    continue  # a duplicate, or older than what the device said since
            else:
                new = _replace(record, row, epoch, ordered)
                if new is None:
                    continue
                inventory[key] = new
            if record[0] != epoch:
                touched[key] = record
        return len(inventory) - size, touched

    def _before(self, touched: Mapping[Key, Record]) -> list[tuple[Key, Where | None]]:
        """Where each touched MAC was before the batch; counts the live claims it changed."""
        before = []
        for key, old in touched.items():
            before.append((key, self._owner_in(key, old)))
            self._live += _live(self._inventory[key]) - _live(old)
        return before

    def _settle_fresh(self, count: int) -> list[ClaimRow]:
        """Decide the MACs the last batch added — the inventory's last ``count`` entries —
        and return the claim that placed each."""
        appeared: list[ClaimRow] = []
        append = appeared.append
        live = 0
        for record in islice(reversed(self._inventory.values()), count):
            if len(record) == 2:
                row = record[1]
                if row[4]:
                    append(row)
                    live += 1
                continue
            winner, claims = self._elect(record[1:])
            live += claims
            if winner is not None:
                append(winner)
        self._live += live
        appeared.reverse()
        return appeared

    def _settle(self, before: Iterable[tuple[Key, Where | None]], now: float) -> list[ChangeRow]:
        """Decide MACs that had a record already, given where each was before."""
        inventory = self._inventory
        damping = self._damping is not None
        changes: list[ChangeRow] = []
        for key, old in before:
            rows = inventory[key][1:]
            winner, _live_claims = self._elect(rows)
            if damping and (key in self._mobility or (old and winner and old[0] != winner[2])):
                winner = self._hold_or_move(key, rows, old, winner, now)
            new: Where | None = (winner[2], winner[5]) if winner else None
            if new == old:
                continue
            old_device, old_ip = old or (None, None)
            new_device, new_ip = new or (None, None)
            changes.append((key[0], key[1], old_device, old_ip, new_device, new_ip))
            if old_device and new_device and old_device != new_device:
                self._moves += 1
        return changes

    def _elect(self, rows: tuple[ClaimRow, ...]) -> tuple[ClaimRow | None, int]:
        """:func:`elect`, and how many claims are live; counts decisions among disagreeing
        claims. One pass when the newest master is alone at its revision; the full rules
        (a tie, or no master) otherwise."""
        newest: ClaimRow | None = None
        live = masters = 0
        tie = False
        for row in rows:
            if not row[4]:
                continue
            live += 1
            if row[4] == MASTER:
                masters += 1
                if newest is None or row[3] > newest[3]:
                    newest, tie = row, False
                elif row[3] == newest[3]:
                    tie = True
        if masters > 1 or (masters == 0 and live > 1):
            self._conflicts += 1
        if (newest is not None and not tie) or live == 0:
            return newest, live
        return elect(rows, self._priorities), live

    def _owner_in(self, key: Key, record: Record) -> Where | None:
        """Where a MAC with this record lives: the held device if it is damped, else the
        election's winner."""
        if len(record) == 2:  # a sole claimant: a hold never outlives its claim anyway
            row = record[1]
            return (row[2], row[5]) if row[4] else None
        rows = record[1:]
        mobility = self._mobility.get(key)
        if mobility is not None and mobility.damped:
            for row in rows:
                if row[2] == mobility.held:
                    return (row[2], row[5])
        winner = elect(rows, self._priorities)
        return (winner[2], winner[5]) if winner else None

    def _hold_or_move(
        self,
        key: Key,
        rows: tuple[ClaimRow, ...],
        old: Where | None,
        winner: ClaimRow | None,
        now: float,
    ) -> ClaimRow | None:
        """Damping's say on a MAC that moves or has moved: the claim it follows now."""
        assert self._damping is not None
        mobility = self._mobility.get(key)
        if mobility is None:  # a first move: the winner differs from where the MAC was
            mobility = self._mobility[key] = Mobility(old[0] if old else None)
        note_winner(mobility, winner[2] if winner else None, now, self._damping)
        if winner is None:  # the MAC disappears: nothing left to hold or to count
            del self._mobility[key]
            self._damped.discard(key)
            return None
        if not mobility.damped:
            self._damped.discard(key)
            return winner
        self._damped.add(key)
        for row in rows:
            if old is not None and row[2] == old[0] and row[4] != WITHDRAWN:
                mobility.held = row[2]
                return row
        mobility.held = winner[2]  # the holder withdrew: a hold never outlives its claim
        return winner


def _replace(record: Record, row: ClaimRow, epoch: int, ordered: bool = False) -> Record | None:
    """``record`` with ``row`` as its device's claim; None when the device already said
    something as new (``ordered``: only when it said exactly that)."""
    rows = record[1:]
    device = row[2]
    for i, mine in enumerate(rows):
        if mine[2] == device:
            if (mine[3] >= row[3] and not ordered) or mine == row:
                return None
            kept: tuple[ClaimRow, ...] = (*rows[:i], row, *rows[i + 1 :])
            return (epoch, *kept)
    return (epoch, *rows, row)


def _live(record: Record) -> int:
    """How many of a record's claims are live (not withdrawn)."""
    live = 0
    for row in record[1:]:
        if row[4] != WITHDRAWN:
            live += 1
    return live
