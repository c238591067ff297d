"""MAC claims: what each VTEP says about the MACs behind it, and how they reach a reconciler.

A :class:`Claim` is one device's statement about one (network, MAC): "it lives behind me"
(``put``, as ``master`` or as ``slave`` of an HA group) or "forget what I said" (``withdraw``).
Its :attr:`Claim.revision` is the store revision at which the claim was recorded — the only
order between claims (DESIGN.md §2): wall clocks never order claims, so controllers on
different machines reach the same answer.

Neighbours: the physical controller role (a shell) turns each switch's ``Ucast_Macs_Local``
into claims, records them in the store, splits them per network (:func:`split_by_network`)
and feeds each network's reconciler (:mod:`tether.logical.reconcile`) either at once or in
batches that a :class:`Batcher` cuts: every ``max_wait`` seconds or every ``max_claims``
claims, whichever comes first (US 9,942,058, FIG. 2: "on a periodic basis or after the
inventory has reached a certain size").

Two shapes of the same claim: the :class:`Claim` value, checked and self-describing, for
callers and tests; and the flat :data:`ClaimRow` tuple, for the reconciler's fast entry point
(a million claims a second cannot afford one object per claim). :meth:`Claim.row` converts.

Pure: no I/O, no clock; ``now`` comes in as an argument (seconds, any monotonic origin).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, NewType

__all__ = [
    "MASTER",
    "SLAVE",
    "WITHDRAWN",
    "Batch",
    "BatchPolicy",
    "Batcher",
    "Claim",
    "ClaimKind",
    "ClaimRow",
    "DeviceName",
    "Mac",
    "NetworkId",
    "Revision",
    "Role",
    "normalize_mac",
    "split_by_network",
]

NetworkId = NewType("NetworkId", str)
"""A logical network's id (the ``Logical_Switch`` name on the switches)."""
Mac = NewType("Mac", str)
"""An Ethernet address, lower-case ``aa:bb:cc:dd:ee:ff``."""
DeviceName = NewType("DeviceName", str)
"""The name of the gateway or chassis a claim comes from."""
Revision = NewType("Revision", int)
"""A store revision: the order of claims."""

# Claim states in a ClaimRow, ordered so that a bigger state is a stronger claim.
WITHDRAWN: Final = 0
SLAVE: Final = 1
MASTER: Final = 2

ClaimRow = tuple[NetworkId, Mac, DeviceName, Revision, int, str | None]
"""``(network, mac, device, revision, state, ip)``; state is MASTER, SLAVE or WITHDRAWN.
The mac must already be lower-case: the fast path does not check."""


class Role(StrEnum):
    """The role a device claims for a MAC: the active location, or an HA standby."""

    MASTER = "master"
    SLAVE = "slave"


class ClaimKind(StrEnum):
    """``put`` states or restates a claim; ``withdraw`` removes the device's own claim."""

    PUT = "put"
    WITHDRAW = "withdraw"


def normalize_mac(mac: str) -> Mac:
    """``AA-BB-CC-DD-EE-FF`` or ``aa:bb:...`` -> ``aa:bb:cc:dd:ee:ff``; ValueError otherwise."""
    parts = mac.strip().lower().replace("-", ":").split(":")
    if len(parts) != 6 or not all(len(p) == 2 and _is_hex(p) for p in parts):
        raise ValueError(f"not a MAC address: {mac!r}")
    return Mac(":".join(parts))


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


@dataclass(frozen=True, slots=True)
class Claim:
    """One device's statement about one (network, MAC), recorded at ``revision``."""

    network: NetworkId
    mac: Mac
    device: DeviceName
    revision: Revision
    role: Role = Role.MASTER
    ip: str | None = None
    kind: ClaimKind = ClaimKind.PUT

    def __post_init__(self) -> None:
        object.__setattr__(self, "mac", normalize_mac(self.mac))
        if self.revision < 0:
            raise ValueError(f"a store revision is never negative: {self.revision}")

    @classmethod
    def withdraw(
        cls, network: NetworkId, mac: Mac, device: DeviceName, revision: Revision
    ) -> Claim:
        """The device's delete of its claim, recorded at ``revision``."""
        return cls(network, mac, device, revision, kind=ClaimKind.WITHDRAW)

    def row(self) -> ClaimRow:
        """The flat tuple the reconciler's fast path takes."""
        state = SLAVE
        if self.kind is _WITHDRAW:
            state = WITHDRAWN
        elif self.role is _MASTER:
            state = MASTER
        return (self.network, self.mac, self.device, self.revision, state, self.ip)


# Enum members as plain globals: reading them through the class costs more than the rest of
# Claim.row, which runs once per claim.
_WITHDRAW: Final = ClaimKind.WITHDRAW
_MASTER: Final = Role.MASTER


def split_by_network(claims: Iterable[Claim]) -> dict[NetworkId, list[Claim]]:
    """Each network's claims, in the order given (FIG. 2, step 215)."""
    split: dict[NetworkId, list[Claim]] = {}
    for claim in claims:
        split.setdefault(claim.network, []).append(claim)
    return split


@dataclass(frozen=True, slots=True)
class BatchPolicy:
    """When a network's pending claims go to its reconciler.

    A network's batch is flushed once it holds ``max_claims`` claims or once its oldest
    pending claim has waited ``max_wait`` seconds, whichever comes first.
    :meth:`real_time` flushes every claim as soon as it arrives.
    """

    max_claims: int = 1000
    max_wait: float = 0.05

    def __post_init__(self) -> None:
        if self.max_claims < 1 or self.max_wait < 0:
            raise ValueError(f"max_claims must be >= 1 and max_wait >= 0: {self}")

    @classmethod
    def real_time(cls) -> BatchPolicy:
        return cls(max_claims=1, max_wait=0.0)


@dataclass(frozen=True, slots=True)
class Batch:
    """Claims of one network, in arrival order, to hand to its reconciler (as values or as
    flat rows, as they were added)."""

    network: NetworkId
    claims: tuple[Claim | ClaimRow, ...]

    def rows(self) -> list[ClaimRow]:
        """The claims as the reconciler's flat rows."""
        return [c if isinstance(c, tuple) else c.row() for c in self.claims]


class Batcher:
    """Collects claims per network and says when each network's batch is due.

    A state machine driven by the shell: :meth:`add` when claims arrive, :meth:`due` when
    the timer set to :meth:`deadline` fires, :meth:`drain` at shutdown. Each returns the
    batches to hand over now; nothing else leaves the batcher.
    """

    def __init__(self, policy: BatchPolicy | None = None) -> None:
        self.policy = policy or BatchPolicy()
        self._pending: dict[NetworkId, list[Claim | ClaimRow]] = {}
        # Network -> when its oldest pending claim arrived. Insertion order is arrival order
        # of each batch's first claim, so the front always holds the earliest deadline.
        self._since: dict[NetworkId, float] = {}

    def add(self, claims: Iterable[Claim | ClaimRow], now: float) -> list[Batch]:
        """Take claims arriving at ``now``; return the batches that are full or due."""
        out: list[Batch] = []
        for claim in claims:
            network = claim[0] if isinstance(claim, tuple) else claim.network
            pending = self._pending.get(network)
            if pending is None:
                pending = self._pending[network] = []
                self._since[network] = now
            pending.append(claim)
            if len(pending) >= self.policy.max_claims:
                out.append(self._take(network))
        out.extend(self.due(now))
        return out

    def due(self, now: float) -> list[Batch]:
        """The batches whose oldest claim has waited ``max_wait`` seconds by ``now``."""
        ready: list[NetworkId] = []
        for network, since in self._since.items():
            if now - since < self.policy.max_wait:
                break
            ready.append(network)
        return [self._take(network) for network in ready]

    def deadline(self) -> float | None:
        """When the next batch falls due (for the shell's timer); None when nothing waits."""
        for since in self._since.values():
            return since + self.policy.max_wait
        return None

    def drain(self) -> list[Batch]:
        """Every pending batch, due or not."""
        return [self._take(network) for network in list(self._since)]

    def pending(self) -> int:
        """How many claims wait."""
        return sum(len(claims) for claims in self._pending.values())

    def _take(self, network: NetworkId) -> Batch:
        del self._since[network]
        return Batch(network, tuple(self._pending.pop(network)))
