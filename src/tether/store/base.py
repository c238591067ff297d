"""The store contract: a revisioned key-value space modelled on etcd's v3 API.

Every backend (``sqlite``, ``etcd``) implements :class:`Store`, and one contract test
suite (``tests/integration/test_store_contract.py``) runs against each of them.

Semantics, as in etcd:

* The store has one **revision**, a counter that every successful write transaction
  raises by exactly one. All keys written by one transaction share that revision as their
  ``mod_revision``. The revision is the order every later decision uses (the newest MAC
  claim is the one with the highest revision); wall clocks are never used for ordering.
* A key carries ``create_revision`` (the revision of the write that created it since it
  last did not exist), ``mod_revision`` (its last write) and ``version`` (writes since
  creation, starting at 1).
* :meth:`Store.txn` evaluates every :class:`Compare`; when all hold it applies the
  ``success`` operations, otherwise the ``failure`` operations, atomically.
* :meth:`Store.watch` streams every change under a prefix from a start revision
  (inclusive), so a watcher that reconnects with ``last seen + 1`` misses nothing. A start
  revision older than the compaction point raises :class:`CompactedError`: the watcher must
  list again.
* Leases have a TTL; :meth:`Store.lease_keepalive` refreshes it; when it runs out every key
  attached to the lease is deleted in one revision.

Errors (all derive from :class:`StoreError`)::

    StoreError
     ├── CompactedError        start revision already compacted away (re-list)
     ├── LeaseNotFoundError    unknown or expired lease
     ├── TxnTooLargeError      the backend refuses a transaction this large
     └── StoreUnavailableError backend unreachable (temporary: retry with delay)
"""

from __future__ import annotations

import enum
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

__all__ = [
    "CompactedError",
    "Compare",
    "CompareOp",
    "CompareTarget",
    "Delete",
    "Event",
    "EventType",
    "Get",
    "KeyValue",
    "LeaseNotFoundError",
    "Op",
    "Put",
    "RangeResult",
    "Store",
    "StoreError",
    "StoreUnavailableError",
    "TxnResult",
    "TxnTooLargeError",
    "WatchBatch",
    "prefix_end",
]


class StoreError(Exception):
    """Base of every store error."""


class CompactedError(StoreError):
    """The requested revision is older than the compaction point."""

    def __init__(self, requested: int, compact_revision: int) -> None:
        super().__init__(
            f"revision {requested} has been compacted (oldest available: {compact_revision + 1})"
        )
        self.requested = requested
        self.compact_revision = compact_revision


class LeaseNotFoundError(StoreError):
    """The lease does not exist (never granted, revoked or expired)."""


class TxnTooLargeError(StoreError):
    """The backend refuses a transaction of this many operations or bytes."""


class StoreUnavailableError(StoreError):
    """The backend cannot be reached; a temporary fault worth retrying."""


@dataclass(frozen=True, slots=True)
class KeyValue:
    key: str
    value: bytes
    create_revision: int
    mod_revision: int
    version: int
    lease: int = 0


class CompareTarget(enum.Enum):
    MOD = "mod"
    CREATE = "create"
    VERSION = "version"
    VALUE = "value"


class CompareOp(enum.Enum):
    EQUAL = "="
    NOT_EQUAL = "!="
    LESS = "<"
    GREATER = ">"


@dataclass(frozen=True, slots=True)
class Compare:
    """A condition on one key. A missing key has revisions and version 0, value b""."""

    key: str
    target: CompareTarget
    op: CompareOp
    value: int | bytes

    @classmethod
    def mod_revision(cls, key: str, revision: int) -> Compare:
        """The key was last written at ``revision`` (0: the key does not exist)."""
        return cls(key, CompareTarget.MOD, CompareOp.EQUAL, revision)

    @classmethod
    def absent(cls, key: str) -> Compare:
        """The key does not exist."""
        return cls(key, CompareTarget.CREATE, CompareOp.EQUAL, 0)

    def holds(self, kv: KeyValue | None) -> bool:
        """Evaluate against the key's current state (used by embedded backends)."""
        actual: int | bytes
        if self.target is CompareTarget.VALUE:
            actual = kv.value if kv else b""
        elif self.target is CompareTarget.MOD:
            actual = kv.mod_revision if kv else 0
        elif self.target is CompareTarget.CREATE:
            actual = kv.create_revision if kv else 0
        else:
            actual = kv.version if kv else 0
        expected = self.value
        if type(actual) is not type(expected):
            return False
        if self.op is CompareOp.EQUAL:
            return actual == expected
        if self.op is CompareOp.NOT_EQUAL:
            return actual != expected
        if self.op is CompareOp.LESS:
            return actual < expected  # type: ignore[operator]
        return actual > expected  # type: ignore[operator]


@dataclass(frozen=True, slots=True)
class Put:
    key: str
    value: bytes
    lease: int = 0


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete ``key``, or every key starting with ``key`` when ``prefix`` is true."""

    key: str
    prefix: bool = False


@dataclass(frozen=True, slots=True)
class Get:
    """Read ``key`` (or the prefix) inside a transaction, at the transaction's revision."""

    key: str
    prefix: bool = False


Op = Put | Delete | Get


@dataclass(frozen=True, slots=True)
class TxnResult:
    succeeded: bool
    revision: int
    """The store revision after the transaction (unchanged if nothing was written)."""
    reads: tuple[tuple[KeyValue, ...], ...] = ()
    """One tuple per :class:`Get` of the branch that ran, in order."""


@dataclass(frozen=True, slots=True)
class RangeResult:
    kvs: tuple[KeyValue, ...]
    revision: int
    more: bool = False


class EventType(enum.Enum):
    PUT = "put"
    DELETE = "delete"


@dataclass(frozen=True, slots=True)
class Event:
    type: EventType
    kv: KeyValue
    """For a delete: the key, empty value, and ``mod_revision`` = the deleting revision."""


@dataclass(frozen=True, slots=True)
class WatchBatch:
    """Events of one or more whole revisions, in revision order.

    An empty batch is a progress notification: every change up to ``revision`` has been
    delivered. Watchers use it to know they have caught up.
    """

    revision: int
    events: tuple[Event, ...] = field(default=())


def prefix_end(prefix: str) -> str:
    """The smallest key greater than every key starting with ``prefix`` ("" = no end)."""
    raw = bytearray(prefix.encode())
    while raw:
        if raw[-1] < 0xFF:
            raw[-1] += 1
            return raw.decode(errors="surrogateescape")
        raw.pop()
    return ""


@runtime_checkable
class Store(Protocol):
    """The interface every backend implements. All methods are coroutine-safe."""

    name: str
    """``sqlite`` or ``etcd``."""

    async def get(self, key: str) -> KeyValue | None: ...

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        """Keys starting with ``prefix`` in key order, after ``start_after``, at most
        ``limit`` (0 = all). ``revision`` 0 reads the newest state; other revisions are
        only guaranteed on etcd."""
        ...

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        """Write one key; returns the new revision."""
        ...

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        """Delete a key (or a prefix); returns the number of keys deleted."""
        ...

    async def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
    ) -> TxnResult: ...

    async def revision(self) -> int:
        """The current store revision."""
        ...

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]:
        """Changes under ``prefix`` from ``start_revision`` (inclusive), forever.

        Raises :class:`CompactedError` (on first iteration) when ``start_revision`` is no
        longer available. Ends only when the consumer stops iterating or the store closes.
        """
        ...

    async def lease_grant(self, ttl: int) -> int:
        """A new lease of ``ttl`` seconds; returns its id."""
        ...

    async def lease_keepalive(self, lease: int) -> int:
        """Refresh the lease; returns its TTL. Raises LeaseNotFoundError if expired."""
        ...

    async def lease_revoke(self, lease: int) -> None:
        """Revoke the lease now, deleting its keys."""
        ...

    async def compact(self, revision: int) -> None:
        """Forget history up to and including ``revision``."""
        ...

    async def close(self) -> None: ...
