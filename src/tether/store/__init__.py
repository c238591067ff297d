"""The store: one etcd-shaped interface, two backends (embedded SQLite, etcd).

``open_store(url)`` turns a store URL into a backend:

* ``sqlite:PATH`` — the embedded default (:mod:`tether.store.sqlite`);
* ``etcd://HOST:PORT[,HOST:PORT...]`` — an etcd v3 cluster (:mod:`tether.store.etcd`).
"""

from __future__ import annotations

from tether.store.base import (
    CompactedError,
    Compare,
    CompareOp,
    CompareTarget,
    Delete,
    Event,
    EventType,
    Get,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    RangeResult,
    Store,
    StoreError,
    StoreUnavailableError,
    TxnResult,
    TxnTooLargeError,
    WatchBatch,
    prefix_end,
)
from tether.store.url import StoreURL, parse_store_url

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
    "StoreURL",
    "StoreUnavailableError",
    "TxnResult",
    "TxnTooLargeError",
    "WatchBatch",
    "open_store",
    "parse_store_url",
    "prefix_end",
]


async def open_store(url: str) -> Store:
    """Open the backend ``url`` names (see the module docstring)."""
    parsed = parse_store_url(url)
    if parsed.backend == "sqlite":
        from tether.store.sqlite import SqliteStore

        return await SqliteStore.open(parsed.path)
    from tether.store.etcd import EtcdStore

    return await EtcdStore.open(parsed.endpoints)
