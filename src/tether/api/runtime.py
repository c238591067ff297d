"""Runtime status that agents write to the store, read back for the API."""

from __future__ import annotations

from typing import Any

import orjson

from tether.store import Store
from tether.vtep.controller import STATUS_PREFIX, status_key

__all__ = ["gateway_status", "gateway_statuses"]


async def gateway_statuses(store: Store) -> dict[str, dict[str, Any]]:
    """Gateway id -> its agent's last status."""
    listing = await store.range(STATUS_PREFIX)
    return {kv.key.removeprefix(STATUS_PREFIX): orjson.loads(kv.value) for kv in listing.kvs}


async def gateway_status(store: Store, gateway_id: str) -> dict[str, Any] | None:
    kv = await store.get(status_key(gateway_id))
    return orjson.loads(kv.value) if kv else None
