"""MAC-mobility damping: a MAC that moves too often is held where it is, like EVPN.

RFC 7432 §15.1 has a PE stop believing a MAC that moves N times in M seconds; tether does
the same for the reconciled location. With :class:`Damping` ``max_moves`` M and ``window``
S seconds:

* a **move** is a change of the elected owner from one device to another (a MAC appearing or
  disappearing is not a move); its time is the ``now`` at which the reconciler decided it;
* the move that makes more than M moves within the last S seconds is not made: the MAC is
  **held** at its current location and flagged ``damped``;
* while damped, every change of the elected owner still counts as a move (the MAC keeps
  flapping, the hold keeps holding);
* the hold is **released** once the MAC has not moved for S seconds: its next decision (or
  the reconciler's ``tick``) moves it to the owner the election picks then.

One :class:`Mobility` record exists only for MACs that have moved; the reconciler
(:mod:`tether.logical.reconcile`) creates it on the first move and drops it when the MAC
disappears or has been still for S seconds.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from tether.logical.claims import DeviceName

__all__ = ["Damping", "Mobility", "note_winner"]


@dataclass(frozen=True, slots=True)
class Damping:
    """Hold a MAC that moves more than ``max_moves`` times within ``window`` seconds.

    The defaults are EVPN's (RFC 7432: 5 moves in 180 s).
    """

    max_moves: int = 5
    window: float = 180.0

    def __post_init__(self) -> None:
        if self.max_moves < 1 or self.window <= 0:
            raise ValueError(f"max_moves must be >= 1 and window > 0: {self}")


class Mobility:
    """Recent moves of one MAC and whether it is held."""

    __slots__ = ("damped", "desired", "held", "last_move", "moves")

    def __init__(self, desired: DeviceName | None) -> None:
        self.desired = desired
        """The owner the election picked last (the held location may differ)."""
        self.held: DeviceName | None = None
        """Where the MAC is held while damped."""
        self.moves: deque[float] = deque()
        """When it moved, within the window ending at the last move."""
        self.last_move = float("-inf")
        self.damped = False

    def quiet_since(self, now: float, policy: Damping) -> bool:
        """Whether the MAC has not moved for a whole window by ``now``."""
        return now - self.last_move >= policy.window

    def held_until(self, policy: Damping) -> float:
        """When the hold ends if the MAC stays put."""
        return self.last_move + policy.window


def note_winner(mobility: Mobility, winner: DeviceName | None, now: float, policy: Damping) -> None:
    """Record the election's ``winner`` at ``now``: release an expired hold, count a move,
    damp when the move is one too many."""
    if mobility.damped and mobility.quiet_since(now, policy):
        mobility.damped = False
        mobility.held = None
        mobility.moves.clear()
    previous, mobility.desired = mobility.desired, winner
    if winner is None or previous is None or winner == previous:
        return
    moves = mobility.moves
    moves.append(now)
    mobility.last_move = now
    horizon = now - policy.window
    while moves[0] <= horizon:
        moves.popleft()
    if len(moves) > policy.max_moves:
        mobility.damped = True
