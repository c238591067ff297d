"""``GET /v1/watch``: the store's changes as newline-delimited JSON, from a revision.

Hypervisor agents sync through it when the store is the embedded one. Each line is one
object::

    {"revision": R, "events": [{"type": "put", "key": K, "value": B64, "mod_revision": R,
                                "create_revision": C, "version": V}, ...]}
    {"revision": R, "synced": true}        every change up to R has been sent

Without ``revision`` the stream starts with a snapshot of every key under the prefix (one
line with ``"snapshot": true``), then follows changes from the snapshot's revision + 1. With
``revision=N`` it replays history from N (inclusive); a compacted N answers 410 and the client
lists again. Values are base64, as in etcd's JSON gateway.

``chassis=NAME`` narrows the stream to what that hypervisor needs
(:class:`~tether.service.scope.ChassisScope`): the networks of its ports and the networks
its routers reach, with their ports, routers and MAC claims, plus every chassis, gateway,
binding and status. A network that becomes relevant arrives whole; one that stops being
relevant is deleted from the stream. Such a stream always starts with a snapshot.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, StreamingResponse

from tether.api.errors import error_response
from tether.service.keys import WATCHABLE_PREFIX
from tether.service.scope import ChassisScope
from tether.store import CompactedError, Event, EventType, KeyValue, Store, WatchBatch

__all__ = ["router"]

router = APIRouter(prefix="/v1")


def _kv(kv: KeyValue) -> dict[str, Any]:
    return {
        "key": kv.key,
        "value": base64.b64encode(kv.value).decode(),
        "mod_revision": kv.mod_revision,
        "create_revision": kv.create_revision,
        "version": kv.version,
    }


def _event(event: Event) -> dict[str, Any]:
    return {"type": event.type.value, **_kv(event.kv)}


def _line(payload: dict[str, Any]) -> bytes:
    return orjson.dumps(payload) + b"\n"


def _batch_line(batch: WatchBatch) -> bytes:
    if not batch.events:
        return _line({"revision": batch.revision, "synced": True})
    return _line({"revision": batch.revision, "events": [_event(e) for e in batch.events]})


@router.get("/watch", tags=["watch"], response_model=None)
async def watch(
    request: Request,
    prefix: str = Query(WATCHABLE_PREFIX, description="key prefix, under /tether/"),
    revision: int | None = Query(None, ge=1, description="replay from this revision"),
    chassis: str | None = Query(None, description="only what this hypervisor needs"),
) -> StreamingResponse | JSONResponse:
    if not prefix.startswith(WATCHABLE_PREFIX):
        return error_response(
            400, "invalid", f"prefix must start with {WATCHABLE_PREFIX}", "prefix"
        )
    if chassis is not None and revision is not None:
        return error_response(
            400, "invalid", "a chassis stream starts with a snapshot: no revision", "revision"
        )
    store: Store = request.app.state.store
    scope = ChassisScope(chassis) if chassis is not None else None
    head: list[bytes] = []
    if revision is None:
        listing = await store.range(prefix)
        kvs = list(listing.kvs)
        if scope is not None:
            change = scope.take([Event(EventType.PUT, kv) for kv in kvs], listing.revision)
            kvs = [event.kv for event in change.passed]
        head.append(
            _line(
                {
                    "revision": listing.revision,
                    "snapshot": True,
                    "events": [{"type": "put", **_kv(kv)} for kv in kvs],
                }
            )
        )
        head.append(_line({"revision": listing.revision, "synced": True}))
        revision = listing.revision + 1
    stream = store.watch(prefix, start_revision=revision)
    first = asyncio.ensure_future(anext(stream))
    await asyncio.wait({first}, timeout=0.5)
    if first.done() and isinstance(first.exception(), CompactedError):
        exc = first.exception()
        assert isinstance(exc, CompactedError)
        return error_response(410, "compacted", str(exc), "revision")
    batches = _scoped(stream, scope, store, prefix) if scope is not None else stream
    closing: asyncio.Event = request.app.state.closing
    return StreamingResponse(
        _until(closing, _stream(head, first, batches, scope, store, prefix)),
        media_type="application/x-ndjson",
    )


async def _until(closing: asyncio.Event, lines: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """``lines`` until the server begins to shut down (the client resumes elsewhere)."""
    stop = asyncio.ensure_future(closing.wait())
    line: asyncio.Future[bytes] | None = None
    try:
        while True:
            line = asyncio.ensure_future(anext(lines))
            await asyncio.wait({line, stop}, return_when=asyncio.FIRST_COMPLETED)
            if not line.done():
                return
            try:
                yield line.result()
            except StopAsyncIteration:
                return
    finally:  # also when the client went away and the response was cancelled
        stop.cancel()
        if line is not None and not line.done():
            line.cancel()
            await asyncio.wait({line})
        with contextlib.suppress(Exception):
            await lines.aclose()  # type: ignore[attr-defined]


async def _scoped(
    stream: AsyncIterator[WatchBatch], scope: ChassisScope, store: Store, prefix: str
) -> AsyncIterator[WatchBatch]:
    try:
        async for batch in stream:
            narrowed = await _narrow(batch, scope, store, prefix)
            if batch.events and not narrowed.events:
                continue  # nothing for this chassis: an empty line would read as progress
            yield narrowed
    finally:
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]


async def _narrow(batch: WatchBatch, scope: ChassisScope, store: Store, prefix: str) -> WatchBatch:
    """The batch as the chassis sees it: what passes, the networks it gains, whole, and
    deletes for the networks it loses."""
    if not batch.events:
        return batch
    change = scope.take(batch.events, batch.revision)
    events = list(change.passed)
    if change.gained:
        passed = {event.kv.key for event in events}
        listing = await store.range(prefix)
        events += [
            Event(EventType.PUT, kv)
            for kv in scope.backfill(listing.kvs, change.gained)
            if kv.key not in passed
        ]
    events += change.dropped
    return WatchBatch(batch.revision, tuple(events))


async def _stream(
    head: list[bytes],
    first: asyncio.Future[WatchBatch],
    stream: AsyncIterator[WatchBatch],
    scope: ChassisScope | None,
    store: Store,
    prefix: str,
) -> AsyncIterator[bytes]:
    try:
        for line in head:
            yield line
        try:
            batch = await first
            narrowed = batch if scope is None else await _narrow(batch, scope, store, prefix)
            if not batch.events or narrowed.events:  # as in _scoped
                yield _batch_line(narrowed)
            async for batch in stream:
                yield _batch_line(batch)
        except CompactedError as exc:
            yield _line({"error": {"code": "compacted", "message": str(exc), "field": "revision"}})
    finally:
        first.cancel()
        with contextlib.suppress(Exception):
            await stream.aclose()  # type: ignore[attr-defined]
