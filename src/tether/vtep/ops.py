"""The operations a plan is made of, and how they are grouped: transactions and stages. Pure.

An operation (:data:`Op`) is one change to a switch's ``hardware_vtep`` tables, named by
what it means (ensure a remote MAC, bind a port) rather than by rows;
:mod:`tether.vtep.encode` turns it into OVSDB operations. Each says how many rows it writes
and which locators it needs, so :mod:`tether.vtep.plan` can chunk a stage into transactions
of at most ``max_rows`` rows. A :class:`Barrier` ends a transaction early; a
:class:`Stage` is the list of transactions the agent runs, in order, before planning again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "BARRIER",
    "Barrier",
    "Bind",
    "EnsureLogicalSwitch",
    "EnsureRemoteMac",
    "EnsureUnknownDst",
    "MarkConsistent",
    "MarkPending",
    "Op",
    "RemoveLogicalSwitch",
    "RemoveRow",
    "Stage",
    "Transaction",
    "Unbind",
    "lock_name",
    "switch_of",
]


def lock_name(vni: int) -> str:
    """The OVSDB lock guarding one logical switch."""
    return f"ls_{vni}"


class _Op:
    """What every operation says about itself: the rows it writes (1 unless it says
    otherwise) and the tunnel IPs whose ``Physical_Locator`` it needs."""

    __slots__ = ()
    rows = 1

    def locators(self) -> frozenset[str]:
        return frozenset()


@dataclass(frozen=True, slots=True)
class EnsureLogicalSwitch(_Op):
    name: str
    tunnel_key: int
    description: str
    state_consistent: bool | None = None
    """Written only in ``state-consistent`` mode."""
    exists: bool = False
    pending: bool = False
    """Inserted with the ``tether-pending`` mark (``lock`` mode, a stage of several
    transactions); only ever set for a switch that does not exist yet."""


@dataclass(frozen=True, slots=True)
class MarkConsistent(_Op):
    switch: str
    value: bool


@dataclass(frozen=True, slots=True)
class MarkPending(_Op):
    """Set (True) or clear (False) ``other_config:tether-pending`` of a logical switch,
    leaving the switch's own ``other_config`` keys alone."""

    switch: str
    value: bool


@dataclass(frozen=True, slots=True)
class EnsureRemoteMac(_Op):
    switch: str
    mac: str
    locator: str
    ip: str
    uuid: str | None = None
    """The existing row to update; None inserts."""

    def locators(self) -> frozenset[str]:
        return frozenset({self.locator})


@dataclass(frozen=True, slots=True)
class EnsureUnknownDst(_Op):
    switch: str
    locator_ips: frozenset[str]
    uuid: str | None = None
    rows = 2  # a new Physical_Locator_Set and the Mcast_Macs_Remote row

    def locators(self) -> frozenset[str]:
        return self.locator_ips


@dataclass(frozen=True, slots=True)
class RemoveRow(_Op):
    table: str
    uuid: str
    switch: str = ""
    """The logical switch the row belongs to (for its lock)."""


@dataclass(frozen=True, slots=True)
class Bind(_Op):
    port: str
    vlan: int
    switch: str


@dataclass(frozen=True, slots=True)
class Unbind(_Op):
    port: str
    vlan: int
    switch: str = ""
    """The logical switch it is bound to now (for its lock)."""


@dataclass(frozen=True, slots=True)
class RemoveLogicalSwitch(_Op):
    name: str
    uuid: str


Op = (
    EnsureLogicalSwitch
    | MarkConsistent
    | MarkPending
    | EnsureRemoteMac
    | EnsureUnknownDst
    | RemoveRow
    | Bind
    | Unbind
    | RemoveLogicalSwitch
)


@dataclass(frozen=True, slots=True)
class Barrier:
    """Not an operation: what follows goes in a later transaction, after this one is
    confirmed (the bind-last update path: unbind | rows | rebind)."""


BARRIER = Barrier()


@dataclass(frozen=True, slots=True)
class Transaction:
    ops: tuple[Op, ...]
    locks: frozenset[str] = frozenset()
    """Locks every op of this transaction needs (asserted in it)."""

    @property
    def rows(self) -> int:
        return sum(op.rows for op in self.ops)


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    """``unbind``, ``content``, ``bind``, ``mark``, ``unmark`` or ``delete``."""
    transactions: tuple[Transaction, ...] = ()
    steal: frozenset[str] = frozenset()
    """Locks to steal before the first transaction and release after the last."""
    switches: frozenset[str] = field(default_factory=frozenset)
    """Logical switches this stage changes."""


def switch_of(op: Op) -> str | None:
    """The logical switch an operation writes to (for its lock), if any."""
    if isinstance(op, EnsureLogicalSwitch | RemoveLogicalSwitch):
        return op.name
    if isinstance(
        op,
        MarkConsistent
        | MarkPending
        | EnsureRemoteMac
        | EnsureUnknownDst
        | Bind
        | Unbind
        | RemoveRow,
    ):
        return op.switch or None
    return None
