"""The controller's store, mirrored read-only through its watch API (``GET /v1/watch``).

A hypervisor agent runs the same model service and MAC inventory as the controller
(:mod:`tether.service`), so it reaches the same locations from the same claims — the store
revision orders them, not who computes. On the embedded store the agent cannot open the
store itself; :class:`WatchedStore` gives those services the :class:`~tether.store.Store`
interface over one NDJSON stream: a snapshot, then every change, with ``synced`` lines that
say when the mirror has caught up. Writes are refused (the agent writes through the REST API);
deletes are ignored (cleaning up is the controller's job). A dropped stream resumes from the
last revision; history gone (410) means a new snapshot, turned into the events that lead from
the old mirror to the new one.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import orjson

from tether.store import (
    CompactedError,
    Compare,
    Event,
    EventType,
    KeyValue,
    Op,
    RangeResult,
    StoreError,
    StoreUnavailableError,
    TxnResult,
    WatchBatch,
)

__all__ = ["ReadOnlyStore", "WatchedStore"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5


class _ReadOnly:
    """The writing half of :class:`~tether.store.Store` for the agent's stores: writes are
    refused (the agent writes through the REST API), deletes ignored (cleaning up is the
    controller's job)."""

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        raise StoreError(READ_ONLY)

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        return 0

    async def txn(
        self,
        compares: Sequence[Compare],
        success: Sequence[Op],
        failure: Sequence[Op] = (),
    ) -> TxnResult:
        raise StoreError(READ_ONLY)

    async def lease_grant(self, ttl: int) -> int:
        raise StoreError(READ_ONLY)

    async def lease_keepalive(self, lease: int) -> int:
        raise StoreError(READ_ONLY)

    async def lease_revoke(self, lease: int) -> None:
        raise StoreError(READ_ONLY)

    async def compact(self, revision: int) -> None:
        return None


READ_ONLY = "the agent reads the store; it writes through the REST API"


class WatchedStore(_ReadOnly):
    """A read-only :class:`~tether.store.Store` fed by ``GET {url}/v1/watch``."""

    name = "watch"

    def __init__(self, url: str, *, prefix: str = "/tether/", chassis: str | None = None) -> None:
        self.url = url
        self.prefix = prefix
        self.chassis = chassis
        """Ask only for what this chassis needs (``/v1/watch?chassis=``); such a stream
        always starts with a snapshot, so a reconnect takes a new one."""
        self._kvs: dict[str, KeyValue] = {}
        self._revision = 0
        self._watchers: list[tuple[str, asyncio.Queue[WatchBatch]]] = []
        self._task: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()
        self.sessions = 0
        """Watch streams that reached the store's current revision (a resume counts)."""
        self._session_synced = False

    async def start(self, *, timeout: float = 30.0) -> None:
        """Follow the stream; returns once the mirror has caught up the first time."""
        self._task = asyncio.get_running_loop().create_task(self._follow())
        try:
            await asyncio.wait_for(self.synced.wait(), timeout)
        except TimeoutError:
            raise StoreUnavailableError(
                f"{self.url}: no watch snapshot in {timeout:.0f} s"
            ) from None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    # -- reading ------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return self._kvs.get(key)

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        keys = sorted(k for k in self._kvs if k.startswith(prefix) and k > start_after)
        more = bool(limit) and len(keys) > limit
        chosen = keys[:limit] if limit else keys
        return RangeResult(tuple(self._kvs[k] for k in chosen), self._revision, more)

    @property
    def followed_revision(self) -> int:
        """The newest store revision the mirror holds."""
        return self._revision

    async def revision(self) -> int:
        return self._revision

    def items(self, prefix: str) -> list[tuple[str, KeyValue]]:
        """The mirrored keys under ``prefix``, now (no await)."""
        return [(k, kv) for k, kv in self._kvs.items() if k.startswith(prefix)]

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]:
        return self._watch(prefix, start_revision)

    async def _watch(self, prefix: str, start_revision: int) -> AsyncIterator[WatchBatch]:
        if start_revision <= self._revision:
            raise CompactedError(start_revision, self._revision)  # no history kept here
        queue: asyncio.Queue[WatchBatch] = asyncio.Queue()
        entry = (prefix, queue)
        self._watchers.append(entry)
        try:
            while True:
                yield await queue.get()
        finally:
            self._watchers.remove(entry)

    # -- following the stream -------------------------------------------------------------

    async def _follow(self) -> None:
        async with httpx.AsyncClient(base_url=self.url, timeout=None) as http:
            while True:
                params: dict[str, Any] = {"prefix": self.prefix}
                if self.chassis is not None:
                    params["chassis"] = self.chassis
                elif self._revision:
                    params["revision"] = self._revision + 1
                self._session_synced = False
                try:
                    async with http.stream("GET", "/v1/watch", params=params) as reply:
                        if reply.status_code == 410:
                            self._revision = 0  # history gone: take a new snapshot
                            continue
                        reply.raise_for_status()
                        async for line in reply.aiter_lines():
                            if line.strip():
                                self._take(orjson.loads(line))
                except (httpx.HTTPError, orjson.JSONDecodeError, _ResyncError) as exc:
                    log.warning("store watch through %s interrupted (%s); resuming", self.url, exc)
                await asyncio.sleep(RETRY_SECONDS)

    def _take(self, line: dict[str, Any]) -> None:
        if "error" in line:  # the stream fell behind compaction: list everything again
            self._revision = 0
            raise _ResyncError(str(line["error"].get("message", "watch error")))
        revision = int(line["revision"])
        if line.get("snapshot"):
            self._snapshot([_kv(e) for e in line.get("events", ())], revision)
        elif line.get("events"):
            events = tuple(_event(e) for e in line["events"])
            for event in events:
                if event.type is EventType.DELETE:
                    self._kvs.pop(event.kv.key, None)
                else:
                    self._kvs[event.kv.key] = event.kv
            self._revision = max(self._revision, revision)
            self._publish(WatchBatch(revision, events))
        if line.get("synced"):
            self._revision = max(self._revision, revision)
            self._publish(WatchBatch(revision))
            self.synced.set()
            if not self._session_synced:
                self._session_synced = True
                self.sessions += 1

    def _snapshot(self, kvs: list[KeyValue], revision: int) -> None:
        """A fresh listing: the events that turn the mirror into it."""
        fresh = {kv.key: kv for kv in kvs}
        events = [
            Event(EventType.DELETE, KeyValue(key, b"", 0, revision, 0))
            for key in self._kvs
            if key not in fresh
        ]
        events += [
            Event(EventType.PUT, kv) for key, kv in fresh.items() if self._kvs.get(key) != kv
        ]
        self._kvs = fresh
        self._revision = revision
        if events:
            self._publish(WatchBatch(revision, tuple(events)))

    def _publish(self, batch: WatchBatch) -> None:
        for prefix, queue in self._watchers:
            mine = tuple(e for e in batch.events if e.kv.key.startswith(prefix))
            if mine or not batch.events:
                queue.put_nowait(WatchBatch(batch.revision, mine))


class _ResyncError(Exception):
    """The stream asked for a new snapshot."""


def _kv(data: dict[str, Any]) -> KeyValue:
    return KeyValue(
        key=str(data["key"]),
        value=base64.b64decode(data.get("value", "")),
        create_revision=int(data.get("create_revision", 0)),
        mod_revision=int(data.get("mod_revision", 0)),
        version=int(data.get("version", 0)),
    )


def _event(data: dict[str, Any]) -> Event:
    kind = EventType.DELETE if data.get("type") == "delete" else EventType.PUT
    return Event(kind, _kv(data))


class ReadOnlyStore(_ReadOnly):
    """A store the agent opened itself (``etcd://``), with writes refused and deletes
    ignored, like :class:`WatchedStore`: the agent writes through the REST API only."""

    def __init__(self, store: Any) -> None:
        self._store = store
        self.name = f"{store.name} (read-only)"

    async def get(self, key: str) -> KeyValue | None:
        result: KeyValue | None = await self._store.get(key)
        return result

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        result: RangeResult = await self._store.range(
            prefix, start_after=start_after, limit=limit, revision=revision
        )
        return result

    async def revision(self) -> int:
        return int(await self._store.revision())

    def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]:
        stream: AsyncIterator[WatchBatch] = self._store.watch(prefix, start_revision=start_revision)
        return stream

    async def close(self) -> None:
        await self._store.close()
