"""The MAC reconciler: one location per (network, MAC) from every device's claims. Pure.

The logical controller role of US 9,942,058 (FIG. 2, steps 225-240): it keeps the master
inventory — every live claim of every device — and, each time claims arrive, decides where
each touched MAC lives and returns **only what changed** (:class:`LocationChange`), so that
distribution sends nothing else. Re-applying claims it already holds changes nothing.

Per (network, MAC):

* **Claims merge by revision.** A device holds at most one claim per MAC; a claim replaces
  the device's previous one only if its store revision is higher, so duplicates and
  late-arriving older claims change nothing. A withdraw leaves a tombstone at its revision
  (an older put arriving after it stays dead) and removes only that device's claim: from a
  device that is not the owner it changes nothing, from the owner it hands the MAC to the
  next best claim or, with none left, removes it. :meth:`Reconciler.compact` forgets
  tombstones once no older claim can still arrive.
* **Election** (:mod:`tether.logical.election`): the newest master wins; no master: highest
  HA priority, then lowest name. The result depends on the set of claims only, not on the
  order of arrival — except through damping.
* **Damping** (:mod:`tether.logical.damping`): a MAC moving more than M times in S seconds
  stays where it is until it has been still for S seconds (:meth:`Reconciler.tick`). A hold
  never outlives the holder's claim: if the held device withdraws, the MAC goes to the
  election's winner (still flagged).
* **Devices that disappear**: :meth:`Reconciler.withdraw_device` withdraws all their claims.

Claims arrive as :class:`~tether.logical.claims.Claim` values (:meth:`Reconciler.apply`) or,
on the hot path, as flat rows (:meth:`Reconciler.apply_rows`). A batch is merged first and
decided after, once per touched MAC, so a MAC that moves twice within a batch yields one
change (or none, if it came back) and one decision at the batch's ``now``.

Data layout, chosen for a million claims in well under two seconds: parallel dicts keyed by
``(network, mac)`` — claims (device -> ``(revision, state, ip)`` tuple), owners (only MACs
with a location), mobility (only MACs that moved) — plus a device -> keys index for
withdrawing a device. No object per claim beyond its tuple; a max, never a sort, per MAC.

Why each MAC is where it is: :meth:`Reconciler.explain` (:mod:`tether.logical.explain`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

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
from tether.logical.election import Entry, elect
from tether.logical.explain import Explanation, explain
from tether.logical.location import Location, LocationChange

__all__ = ["Counters", "Key", "Location", "LocationChange", "Reconciler"]

Key = tuple[NetworkId, Mac]


@dataclass(frozen=True, slots=True)
class Counters:
    """For metrics: gauges (claims, macs, damped) and counters since start (moves,
    conflicts)."""

    claims: int
    """Live claims held (withdrawn ones excluded)."""
    macs: int
    """MACs with a location."""
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
    monotonic) returns the location changes it caused, in the order the MACs were first
    touched.
    """

    def __init__(
        self,
        *,
        priorities: Mapping[DeviceName, int] | None = None,
        damping: Damping | None = Damping(),
    ) -> None:
        self._priorities: dict[DeviceName, int] = dict(priorities or {})
        self._damping = damping
        self._claims: dict[Key, dict[DeviceName, Entry]] = {}
        self._owners: dict[Key, Location] = {}
        self._mobility: dict[Key, Mobility] = {}
        self._damped: set[Key] = set()
        self._by_device: dict[DeviceName, set[Key]] = {}
        self._live = 0
        self._moves = 0
        self._conflicts = 0

    # --- input -------------------------------------------------------------------------

    def apply(self, claims: Iterable[Claim], now: float) -> list[LocationChange]:
        """Merge a batch of claims and decide every MAC they touch."""
        return self.apply_rows([claim.row() for claim in claims], now)

    def apply_rows(self, rows: Iterable[ClaimRow], now: float) -> list[LocationChange]:
        """:meth:`apply` for flat rows: the hot path (lower-case MACs expected)."""
        return self._settle(self._merge(rows), now)

    def withdraw_device(
        self, device: DeviceName, revision: Revision, now: float
    ) -> list[LocationChange]:
        """Withdraw, at ``revision``, every claim of a device that is gone (gateway deleted,
        chassis lost); its MACs go to their next best claims or disappear."""
        rows: list[ClaimRow] = [
            (network, mac, device, revision, WITHDRAWN, None)
            for network, mac in self._by_device.get(device, ())
        ]
        return self.apply_rows(rows, now)

    def set_priorities(
        self, priorities: Mapping[DeviceName, int], now: float
    ) -> list[LocationChange]:
        """Replace the HA priorities and re-decide the MACs of every device whose changed."""
        old, self._priorities = self._priorities, dict(priorities)
        changed = {
            d for d in old.keys() | self._priorities.keys() if old.get(d) != priorities.get(d)
        }
        touched = {
            key: self._claims[key] for device in changed for key in self._by_device.get(device, ())
        }
        return self._settle(touched, now)

    def tick(self, now: float) -> list[LocationChange]:
        """Release the holds that have been quiet for a whole window by ``now``; forget the
        move history of MACs that have been still that long."""
        policy = self._damping
        if policy is None:
            return []
        expired = {
            key: self._claims[key]
            for key in self._damped
            if self._mobility[key].quiet_since(now, policy)
        }
        changes = self._settle(expired, now)
        still = [
            k for k, m in self._mobility.items() if not m.damped and m.quiet_since(now, policy)
        ]
        for key in still:
            del self._mobility[key]
        return changes

    def compact(self, revision: Revision) -> int:
        """Forget tombstones at or below ``revision`` — call it once no claim that old can
        still arrive (the store's compaction revision). Returns how many were dropped."""
        dropped = 0
        for key in [k for k, c in self._claims.items() if any(not e[1] for e in c.values())]:
            claims = self._claims[key]
            for device in [d for d, e in claims.items() if not e[1] and e[0] <= revision]:
                del claims[device]
                self._by_device[device].discard(key)
                dropped += 1
            if not claims:
                del self._claims[key]
        return dropped

    # --- queries -------------------------------------------------------------------------

    def owner(self, network: NetworkId, mac: Mac) -> Location | None:
        """Where the MAC lives now, or None."""
        return self._owners.get((network, mac))

    def locations(self) -> Mapping[Key, Location]:
        """Every MAC with a location (a live view: do not modify)."""
        return self._owners

    def is_damped(self, network: NetworkId, mac: Mac) -> bool:
        return (network, mac) in self._damped

    def explain(self, network: NetworkId, mac: Mac) -> Explanation | None:
        """Every live claim, oldest first, the owner and why; None for an unknown MAC."""
        key = (network, mac)
        claims = self._claims.get(key)
        if claims is None:
            return None
        mobility = self._mobility.get(key)
        return explain(
            network,
            mac,
            claims,
            self._owners.get(key),
            self._priorities,
            mobility if key in self._damped else None,
            self._damping,
        )

    def counters(self) -> Counters:
        return Counters(
            claims=self._live,
            macs=len(self._owners),
            moves=self._moves,
            conflicts=self._conflicts,
            damped=len(self._damped),
        )

    # --- the hot path --------------------------------------------------------------------

    def _merge(self, rows: Iterable[ClaimRow]) -> dict[Key, dict[DeviceName, Entry]]:
        """Fold rows into the inventory; return the claims of every MAC that changed."""
        inventory = self._claims
        by_device = self._by_device
        touched: dict[Key, dict[DeviceName, Entry]] = {}
        live = 0
        for network, mac, device, revision, state, ip in rows:
            key = (network, mac)
            claims = inventory.get(key)
            if claims is None:
                inventory[key] = touched[key] = {device: (revision, state, ip)}
            else:
                old = claims.get(device)
                if old is not None:
                    if old[0] >= revision:
                        continue  # a duplicate, or older than what the device said since
                    live -= old[1] != WITHDRAWN
                    claims[device] = (revision, state, ip)
                    touched[key] = claims
                    live += state != WITHDRAWN
                    continue
                claims[device] = (revision, state, ip)
                touched[key] = claims
            live += state != WITHDRAWN
            keys = by_device.get(device)
            if keys is None:
                keys = by_device[device] = set()
            keys.add(key)
        self._live += live
        return touched

    def _settle(
        self, touched: Mapping[Key, dict[DeviceName, Entry]], now: float
    ) -> list[LocationChange]:
        """Decide each touched MAC; record and return the locations that changed."""
        owners = self._owners
        priorities = self._priorities
        mobility = self._mobility
        damping = self._damping is not None
        changes: list[LocationChange] = []
        for key, claims in touched.items():
            if len(claims) == 1:
                ((device, entry),) = claims.items()
                winner = device if entry[1] else None
            else:
                winner = self._elect_contested(claims, priorities)
            owner = owners.get(key)
            if damping and (key in mobility or (owner and winner and owner.device != winner)):
                winner = self._hold_or_move(key, claims, owner, winner, now)
            if winner is None:
                if owner is not None:
                    del owners[key]
                    changes.append(LocationChange(key[0], key[1], owner, None))
                continue
            ip = claims[winner][2]
            if owner is not None and owner.device == winner and owner.ip == ip:
                continue
            new = owners[key] = Location(winner, ip)
            changes.append(LocationChange(key[0], key[1], owner, new))
            if owner is not None and owner.device != winner:
                self._moves += 1
        return changes

    def _elect_contested(
        self, claims: Mapping[DeviceName, Entry], priorities: Mapping[DeviceName, int]
    ) -> DeviceName | None:
        """:func:`elect` for a MAC with several claimants, counting disagreements."""
        masters = 0
        claimants = 0
        for _revision, state, _ip in claims.values():
            if state:
                claimants += 1
                masters += state == MASTER
        if claimants > 1 and masters != 1:
            self._conflicts += 1
        return elect(claims, priorities)

    def _hold_or_move(
        self,
        key: Key,
        claims: Mapping[DeviceName, Entry],
        owner: Location | None,
        winner: DeviceName | None,
        now: float,
    ) -> DeviceName | None:
        """Damping's say on a MAC that moves or has moved: the device it goes to now."""
        assert self._damping is not None
        mobility = self._mobility.get(key)
        if mobility is None:  # first move: the election winner differs from the owner
            mobility = self._mobility[key] = Mobility(owner.device if owner else None)
        note_winner(mobility, winner, now, self._damping)
        if winner is None:  # the MAC disappears: nothing left to hold or to count
            del self._mobility[key]
            self._damped.discard(key)
            return None
        if not mobility.damped:
            self._damped.discard(key)
            return winner
        self._damped.add(key)
        held = claims.get(owner.device) if owner else None
        if owner is not None and held is not None and held[1] != WITHDRAWN:
            return owner.device
        return winner  # the holder withdrew: a hold never outlives its claim
