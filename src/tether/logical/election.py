"""Who owns a (network, MAC): the election among its claims, and the words that explain it.

The rule, applied to the *live* claims of one MAC, one per device (withdrawn ones are
ignored):

1. **Masters first, newest wins.** If any device claims ``master``, the master claim with
   the highest store revision wins; other masters are reported as slaves ("demoted"). A
   failover's new active switch reports the MAC last (US 9,942,058: "the latest [switch] to
   report the MAC is the active one"), and the store revision — never a clock — says who
   was last. Two masters recorded at the same revision (one store transaction) are ranked
   as in rules 2 and 3: HA priority, then name.
2. **No master: designate one.** If every claimant says ``slave``, the one with the highest
   HA priority wins (the ``--priority`` of its HA group membership; a device without one
   counts as priority 0).
3. **Ties: lowest name.** Equal priority is broken by device name, lowest first
   (``tor1`` before ``tor2``), so every controller designates the same device.

A demotion is a view, not a rewrite: a demoted master's claim keeps its ``master`` role, so
when the newest master withdraws, the previous one is the next best master again. The owner
is then a function of the set of claims alone, never of the order they arrived in.

:func:`elect` decides (at most two passes, no sorting, no allocation);
:func:`explain_election` ranks the same claims the same way and says why, for ``tether mac
show``. The reconciler (:mod:`tether.logical.reconcile`) has a one-pass shortcut for the
common case (a newest master alone at its revision) and calls :func:`elect` otherwise; all
three must agree, which the property tests check by rebuilding every location from the
changes alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from tether.logical.claims import MASTER, SLAVE, ClaimRow, DeviceName

__all__ = ["Rule", "Verdict", "elect", "explain_election", "outranks"]


class Rule(StrEnum):
    """Which rule decided a MAC's location."""

    MASTER = "master"
    """Exactly one device claims master."""
    NEWEST_MASTER = "newest-master"
    """Two or more masters: the highest revision won."""
    HA_PRIORITY = "ha-priority"
    """No master: the highest HA priority was designated."""
    NAME = "name"
    """No master, equal priorities: the lowest name was designated."""
    ONLY_SLAVE = "only-slave"
    """No master and a single claimant: it was designated."""
    DAMPED = "damped"
    """The MAC moves too often: held where it is (MAC-mobility damping)."""
    NO_CLAIM = "no-claim"
    """Every claim was withdrawn: the MAC has no location."""


@dataclass(frozen=True, slots=True)
class Verdict:
    """The winner of an election, the rule that picked it, and a sentence saying why."""

    winner: DeviceName | None
    rule: Rule
    reason: str


def outranks(a: DeviceName, b: DeviceName, priorities: Mapping[DeviceName, int]) -> bool:
    """Whether ``a`` beats ``b`` on rules 2-3: higher HA priority, then lower name."""
    pa = priorities.get(a, 0)
    pb = priorities.get(b, 0)
    return pa > pb or (pa == pb and a < b)


def elect(rows: Sequence[ClaimRow], priorities: Mapping[DeviceName, int]) -> ClaimRow | None:
    """The winning claim among one MAC's claims (one per device; WITHDRAWN ones are
    tombstones and never win), or None when no live claim is left."""
    best: ClaimRow | None = None
    for row in rows:
        if row[4] == MASTER and (
            best is None
            or row[3] > best[3]
            or (row[3] == best[3] and outranks(row[2], best[2], priorities))
        ):
            best = row
    if best is not None:
        return best
    for row in rows:
        if row[4] == SLAVE and (best is None or outranks(row[2], best[2], priorities)):
            best = row
    return best


def explain_election(rows: Sequence[ClaimRow], priorities: Mapping[DeviceName, int]) -> Verdict:
    """The same election as :func:`elect`, with the rule and a human sentence."""
    masters = sorted(
        (row for row in rows if row[4] == MASTER),
        key=lambda row: (-row[3], -priorities.get(row[2], 0), row[2]),
    )
    slaves = sorted(row[2] for row in rows if row[4] == SLAVE)
    if masters:
        return _explain_masters(masters, slaves, priorities)
    if not slaves:
        return Verdict(None, Rule.NO_CLAIM, "no claims: every device withdrew its claim")
    return _explain_designation(slaves, priorities)


def _explain_masters(
    masters: list[ClaimRow], slaves: list[DeviceName], priorities: Mapping[DeviceName, int]
) -> Verdict:
    winner, revision = masters[0][2], masters[0][3]
    also = f"; slaves: {', '.join(slaves)}" if slaves else ""
    if len(masters) == 1:
        return Verdict(winner, Rule.MASTER, f"only master: {winner} (revision {revision}){also}")
    demoted = [row[2] for row in masters[1:]]
    tie = ""
    if masters[1][3] == revision:
        tie = f", tie on revision broken by {_tiebreak(winner, demoted[0], priorities)}"
    verb = "demoted to slave" if len(demoted) == 1 else "demoted to slaves"
    reason = (
        f"newest master (revision {revision}) of {len(masters)} masters{tie}; "
        f"{', '.join(demoted)} {verb}{also}"
    )
    return Verdict(winner, Rule.NEWEST_MASTER, reason)


def _explain_designation(slaves: list[DeviceName], priorities: Mapping[DeviceName, int]) -> Verdict:
    ranked = sorted(slaves, key=lambda d: (-priorities.get(d, 0), d))
    winner = ranked[0]
    if len(ranked) == 1:
        return Verdict(winner, Rule.ONLY_SLAVE, f"no master: {winner} is the only claimant")
    runner_up = ranked[1]
    rule = Rule.HA_PRIORITY
    if priorities.get(winner, 0) == priorities.get(runner_up, 0):
        rule = Rule.NAME
    reason = f"no master: {winner} designated by {_tiebreak(winner, runner_up, priorities)}"
    return Verdict(winner, rule, reason)


def _tiebreak(
    winner: DeviceName, runner_up: DeviceName, priorities: Mapping[DeviceName, int]
) -> str:
    pw, pr = priorities.get(winner, 0), priorities.get(runner_up, 0)
    if pw != pr:
        return f"HA priority {pw} over {pr} ({runner_up})"
    return f"name ({winner} before {runner_up}, HA priority {pw} each)"
