"""Why a MAC is where it is: every live claim, oldest first, the owner, the rule and a reason.

What ``tether mac show`` and ``GET /v1/macs/{mac}`` print. Built on demand from the
reconciler's state (:mod:`tether.logical.reconcile`) with the same election
(:mod:`tether.logical.election`), so the words can never disagree with the decision. Examples
of reasons:

* ``only master: tor1 (revision 40); slaves: tor2``
* ``newest master (revision 812) of 2 masters; tor1 demoted to slave``
* ``no master: tor2 designated by HA priority 200 over 100 (tor1)``
* ``damped: moved 6 times in 10 s; held at tor1 until 42 unless it moves again; ...``
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from tether.logical.claims import (
    MASTER,
    WITHDRAWN,
    ClaimRow,
    DeviceName,
    Mac,
    NetworkId,
    Revision,
    Role,
)
from tether.logical.damping import Damping, Mobility
from tether.logical.election import Rule, explain_election
from tether.logical.location import Location

__all__ = ["ClaimView", "Explanation", "Standing", "explain"]


class Standing(StrEnum):
    """What a claim amounts to after reconciliation."""

    OWNER = "owner"
    SLAVE = "slave"
    """Any other live claim: a slave, a demoted master, or a candidate damping holds off."""


@dataclass(frozen=True, slots=True)
class ClaimView:
    """One live claim as shown to users: as claimed (role) and as decided (standing)."""

    device: DeviceName
    role: Role
    revision: Revision
    ip: str | None
    standing: Standing


@dataclass(frozen=True, slots=True)
class Explanation:
    """A MAC's claims (oldest first), its location and why."""

    network: NetworkId
    mac: Mac
    owner: Location | None
    claims: tuple[ClaimView, ...]
    rule: Rule
    reason: str
    damped: bool

    @property
    def slaves(self) -> tuple[DeviceName, ...]:
        """Every claimant but the owner, oldest claim first."""
        return tuple(c.device for c in self.claims if c.standing is Standing.SLAVE)


def explain(
    network: NetworkId,
    mac: Mac,
    rows: tuple[ClaimRow, ...],
    owner: Location | None,
    priorities: Mapping[DeviceName, int],
    held: Mobility | None,
    damping: Damping | None,
) -> Explanation:
    """The explanation of one MAC from its claims (one row per device, tombstones included);
    ``held`` is its mobility record when it is damped."""
    verdict = explain_election(rows, priorities)
    rule, reason = verdict.rule, verdict.reason
    if held is not None and damping is not None and owner is not None:
        rule = Rule.DAMPED
        reason = (
            f"damped: moved {len(held.moves)} times in {damping.window:g} s; held at "
            f"{owner.device} until {held.held_until(damping):g} unless it moves again; "
            f"election: {verdict.reason}"
        )
    return Explanation(
        network=network,
        mac=mac,
        owner=owner,
        claims=_views(rows, owner),
        rule=rule,
        reason=reason,
        damped=held is not None,
    )


def _views(rows: tuple[ClaimRow, ...], owner: Location | None) -> tuple[ClaimView, ...]:
    live = sorted((row for row in rows if row[4] != WITHDRAWN), key=lambda row: (row[3], row[2]))
    return tuple(
        ClaimView(
            device=device,
            role=Role.MASTER if state == MASTER else Role.SLAVE,
            revision=revision,
            ip=ip,
            standing=Standing.OWNER
            if owner is not None and device == owner.device
            else Standing.SLAVE,
        )
        for _network, _mac, device, revision, state, ip in live
    )
