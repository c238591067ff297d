"""The etcd backend: :class:`tether.store.base.Store` on an etcd v3 cluster over gRPC.

Requests are built from etcd's protobuf messages (``aetcd.rpc``) and sent on the stubs of a
connected ``aetcd.Client``; every gRPC error is translated to a :class:`StoreError` here, at
the boundary. Two places need more than a one-to-one mapping:

* **Value compares.** etcd fails a value compare on a missing key; the contract compares
  ``b""``. A value compare that holds for ``b""`` therefore branches on the key's existence
  in a nested transaction first (still one atomic transaction).
* **Catching up.** etcd 3.4 answers a ``WatchProgressRequest`` at once, before the history
  of a watcher that is still catching up, so a progress response cannot prove the history
  was delivered. A watch that starts in the past therefore replays its history with a
  watcher on *all* keys (filtered here): every revision has at least one event, so an event
  at or past the revision that was current when the watch started proves the history up to
  it was delivered. Then a watcher on the prefix alone takes over from the next revision,
  and the progress notification (an empty batch) is sent.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any

import aetcd
import grpc
from aetcd import rpc

from tether.store.base import (
    CompactedError,
    Compare,
    CompareOp,
    CompareTarget,
    Event,
    EventType,
    Get,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    RangeResult,
    StoreError,
    StoreUnavailableError,
    TxnResult,
    TxnTooLargeError,
    WatchBatch,
)

__all__ = ["EtcdStore"]

_MESSAGE_BYTES = 64 * 1024 * 1024
_CHANNEL_OPTIONS = {
    "grpc.max_send_message_length": _MESSAGE_BYTES,
    "grpc.max_receive_message_length": _MESSAGE_BYTES,
}
_CONNECT_TIMEOUT = 5.0
_ALL = b"\0"  # as a key: the smallest key; as a range end: no end

_TARGETS = {
    CompareTarget.MOD: (rpc.Compare.MOD, "mod_revision"),
    CompareTarget.CREATE: (rpc.Compare.CREATE, "create_revision"),
    CompareTarget.VERSION: (rpc.Compare.VERSION, "version"),
    CompareTarget.VALUE: (rpc.Compare.VALUE, "value"),
}
_RESULTS = {
    CompareOp.EQUAL: rpc.Compare.EQUAL,
    CompareOp.NOT_EQUAL: rpc.Compare.NOT_EQUAL,
    CompareOp.LESS: rpc.Compare.LESS,
    CompareOp.GREATER: rpc.Compare.GREATER,
}


# -- conversions ----------------------------------------------------------------------------


def _enc(key: str) -> bytes:
    return key.encode("utf-8", "surrogateescape")


def _span(prefix: str) -> tuple[bytes, bytes]:
    """The etcd range ``[key, range_end)`` of every key starting with ``prefix``."""
    raw = _enc(prefix)
    if not raw:
        return _ALL, _ALL
    end = raw.rstrip(b"\xff")
    if not end:
        return raw, _ALL
    return raw, end[:-1] + bytes((end[-1] + 1,))


def _inside(key: bytes, start: bytes, end: bytes) -> bool:
    return key >= start and (end == _ALL or key < end)


def _kv(kv: Any) -> KeyValue:
    return KeyValue(
        kv.key.decode("utf-8", "surrogateescape"),
        kv.value,
        kv.create_revision,
        kv.mod_revision,
        kv.version,
        kv.lease,
    )


def _batch(events: Sequence[Any], revision: int) -> WatchBatch:
    return WatchBatch(
        revision=revision,
        events=tuple(
            Event(EventType.DELETE if e.type == rpc.Event.DELETE else EventType.PUT, _kv(e.kv))
            for e in events
        ),
    )


def _translate(exc: Any, requested: int = 0) -> StoreError:
    """The :class:`StoreError` for a gRPC error (``requested``: the revision asked for)."""
    code = exc.code()
    details = exc.details() or str(code)
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
        return StoreUnavailableError(f"etcd is unavailable: {details}")
    if (
        "too many operations in txn request" in details
        or "request is too large" in details
        or (code == grpc.StatusCode.RESOURCE_EXHAUSTED and "Received message" not in details)
    ):
        return TxnTooLargeError(
            f"etcd refused a transaction this large ({details}); raise etcd's --max-txn-ops "
            "and --max-request-bytes (tether writes up to ~45,000 keys in one transaction)"
        )
    if "requested lease not found" in details:
        return LeaseNotFoundError(details)
    if "required revision has been compacted" in details:
        # etcd does not say where the compaction point is: ``requested`` is a lower bound
        return CompactedError(requested, requested)
    return StoreError(f"etcd: {details}")


# -- transactions ---------------------------------------------------------------------------


def _compare(c: Compare) -> Any:
    target, field = _TARGETS[c.target]
    if type(c.value) is not (bytes if c.target is CompareTarget.VALUE else int):
        # Compare.holds never holds on a type mismatch; neither does create_revision < 0
        return rpc.Compare(
            key=_enc(c.key), target=rpc.Compare.CREATE, result=rpc.Compare.LESS, create_revision=0
        )
    return rpc.Compare(key=_enc(c.key), target=target, result=_RESULTS[c.op], **{field: c.value})


def _holds_when_missing(c: Compare) -> bool:
    """A value compare that holds for a missing key (b""), where etcd's always fails."""
    return c.target is CompareTarget.VALUE and c.holds(None)


def _fill(field: Any, ops: Sequence[Op]) -> None:
    """Append ``ops`` to a repeated ``RequestOp`` field (set in place: no message copies)."""
    add = field.add
    for op in ops:
        if isinstance(op, Put):
            put = add().request_put
            put.key = op.key.encode("utf-8", "surrogateescape")
            put.value = op.value
            if op.lease:
                put.lease = op.lease
        else:
            request = add().request_range if isinstance(op, Get) else add().request_delete_range
            request.key, end = _span(op.key) if op.prefix else (_enc(op.key), b"")
            if end:
                request.range_end = end


def _txn_request(
    compares: Sequence[Compare],
    lenient: Sequence[Compare],
    success: Sequence[Op],
    failure: Sequence[Op],
) -> Any:
    """The TxnRequest; each ``lenient`` compare adds a level that branches on its key existing."""
    if not lenient:
        request = rpc.TxnRequest(compare=[_compare(c) for c in compares])
        _fill(request.success, success)
        _fill(request.failure, failure)
        return request
    first, rest = lenient[0], lenient[1:]
    exists = rpc.Compare(
        key=_enc(first.key), target=rpc.Compare.VERSION, result=rpc.Compare.GREATER, version=0
    )
    request = rpc.TxnRequest(compare=[exists])
    request.success.add().request_txn.CopyFrom(
        _txn_request([*compares, first], rest, success, failure)
    )
    request.failure.add().request_txn.CopyFrom(_txn_request(compares, rest, success, failure))
    return request


# -- watches --------------------------------------------------------------------------------


def _being_cancelled() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


async def _settle_cancelled_calls() -> None:
    """Wait until gRPC has delivered the final status of the streams cancelled on this loop.

    A cancelled stream leaves a task on the loop that waits for gRPC core to confirm the
    status. Were the loop closed first (as each test's loop is), the confirmation would be
    dispatched from the next loop and fail there with "Event loop is closed". Tasks that do
    not finish promptly belong to streams still open (another store's): those are left be.
    """
    waiting = {
        task
        for task in asyncio.all_tasks()
        if getattr(task.get_coro(), "__qualname__", "").endswith("_handle_status_once_received")
    }
    while waiting:
        done, waiting = await asyncio.wait(waiting, timeout=0.05)
        if not done:
            return


class _WatchStream:
    """One gRPC Watch stream carrying one watcher at a time."""

    def __init__(self, call: Any) -> None:
        self._call = call
        self._watch_id: int | None = None
        self._start = 0

    async def create(self, key: bytes, end: bytes, start: int) -> None:
        create = rpc.WatchCreateRequest(
            key=key, range_end=end, start_revision=start, fragment=False
        )
        await self._write(rpc.WatchRequest(create_request=create))
        response = await self._read()
        while not response.created:  # leftovers of a cancelled watcher
            response = await self._read()
        self._watch_id, self._start = response.watch_id, start
        self._check(response)

    async def cancel(self) -> None:
        if self._watch_id is not None:
            cancel = rpc.WatchCancelRequest(watch_id=self._watch_id)
            self._watch_id = None
            await self._write(rpc.WatchRequest(cancel_request=cancel))

    async def events(self) -> Sequence[Any]:
        """The events of the current watcher's next response that has any."""
        while True:
            response = await self._read()
            if response.watch_id != self._watch_id:
                continue
            self._check(response)
            events: Sequence[Any] = response.events
            if events:
                return events

    def _check(self, response: Any) -> None:
        if response.compact_revision:
            raise CompactedError(self._start, response.compact_revision)
        if response.canceled:
            reason = response.cancel_reason or "no reason given"
            raise StoreError(f"etcd cancelled the watch: {reason}")

    async def _write(self, request: Any) -> None:
        try:
            await self._call.write(request)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc

    async def _read(self) -> Any:
        try:
            response = await self._call.read()
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc
        if response is grpc.aio.EOF:
            raise StoreUnavailableError("etcd ended the watch stream")
        return response

    def close(self) -> None:
        self._call.cancel()


# -- the store ------------------------------------------------------------------------------


class EtcdStore:
    """The etcd backend. Create with :meth:`open`; use from one event loop."""

    name = "etcd"

    def __init__(self, client: Any, *, timeout: float = 30.0) -> None:
        self._client = client
        self._kv = client.kvstub
        self._lease = client.leasestub
        self._watch = rpc.WatchStub(client.channel)
        self._timeout = timeout
        self._streams: set[_WatchStream] = set()
        self._closed = False

    @classmethod
    async def open(
        cls, endpoints: tuple[tuple[str, int], ...], *, timeout: float = 30.0
    ) -> EtcdStore:
        """Connect to the first of ``endpoints`` that answers."""
        failures = []
        for host, port in endpoints:
            client = aetcd.Client(
                f"[{host}]" if ":" in host else host, port, options=_CHANNEL_OPTIONS
            )
            await client.connect()  # builds the channel and the stubs: no I/O without auth
            probe = rpc.RangeRequest(key=_ALL, count_only=True)
            try:
                await client.kvstub.Range(probe, timeout=_CONNECT_TIMEOUT)
            except grpc.aio.AioRpcError as exc:
                failures.append(f"{host}:{port} ({exc.details()})")
                await client.close()
                continue
            return cls(client, timeout=timeout)
        tried = ", ".join(failures) or "no endpoint given"
        raise StoreUnavailableError(f"no etcd endpoint answers: {tried}")

    async def _unary(self, method: Callable[..., Any], request: Any, *, revision: int = 0) -> Any:
        if self._closed:
            raise StoreError("store is closed")
        try:
            return await method(request, timeout=self._timeout)
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc, revision) from exc

    # -- reads ------------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        if not key:
            return None
        response = await self._unary(self._kv.Range, rpc.RangeRequest(key=_enc(key)))
        return _kv(response.kvs[0]) if response.kvs else None

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        key, end = _span(prefix)
        if start_after:
            key = max(key, _enc(start_after) + b"\0")
        request = rpc.RangeRequest(
            key=key, range_end=end, limit=max(limit, 0), revision=max(revision, 0)
        )
        response = await self._unary(self._kv.Range, request, revision=revision)
        return RangeResult(
            kvs=tuple(_kv(kv) for kv in response.kvs),
            revision=response.header.revision,
            more=response.more,
        )

    async def revision(self) -> int:
        response = await self._unary(self._kv.Range, rpc.RangeRequest(key=_ALL, count_only=True))
        return int(response.header.revision)

    # -- writes -----------------------------------------------------------------------------

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        request = rpc.PutRequest(key=_enc(key), value=value, lease=lease)
        response = await self._unary(self._kv.Put, request)
        return int(response.header.revision)

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        if not key and not prefix:
            return 0
        start, end = _span(key) if prefix else (_enc(key), b"")
        request = rpc.DeleteRangeRequest(key=start, range_end=end)
        response = await self._unary(self._kv.DeleteRange, request)
        return int(response.deleted)

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        lenient = [c for c in compares if _holds_when_missing(c)]
        strict = [c for c in compares if not _holds_when_missing(c)]
        request = _txn_request(strict, lenient, success, failure)
        response = await self._unary(self._kv.Txn, request)
        revision = int(response.header.revision)
        for _ in lenient:  # descend to the innermost transaction, which holds the outcome
            response = response.responses[0].response_txn
        ok = bool(response.succeeded)
        ops = success if ok else failure
        reads = tuple(
            tuple(_kv(kv) for kv in response.responses[i].response_range.kvs)
            for i, op in enumerate(ops)
            if isinstance(op, Get)
        )
        return TxnResult(succeeded=ok, revision=revision, reads=reads)

    # -- leases -----------------------------------------------------------------------------

    async def lease_grant(self, ttl: int) -> int:
        if ttl <= 0:
            raise StoreError("lease TTL must be positive")
        response = await self._unary(self._lease.LeaseGrant, rpc.LeaseGrantRequest(TTL=ttl))
        return int(response.ID)

    async def lease_keepalive(self, lease: int) -> int:
        if self._closed:
            raise StoreError("store is closed")
        call = self._lease.LeaseKeepAlive(timeout=self._timeout)
        try:  # one request, then end the stream: etcd ends it too, nothing is left pending
            await call.write(rpc.LeaseKeepAliveRequest(ID=lease))
            await call.done_writing()
            reply = await call.read()
            await call.code()
        except grpc.aio.AioRpcError as exc:
            raise _translate(exc) from exc
        if reply is grpc.aio.EOF:
            raise StoreUnavailableError("etcd ended the lease keep-alive stream")
        if reply.TTL <= 0:
            raise LeaseNotFoundError(f"lease {lease} not found")
        return int(reply.TTL)

    async def lease_revoke(self, lease: int) -> None:
        await self._unary(self._lease.LeaseRevoke, rpc.LeaseRevokeRequest(ID=lease))

    # -- history ----------------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        # already compacted at or past ``revision``: nothing left to do
        with contextlib.suppress(CompactedError):
            await self._unary(self._kv.Compact, rpc.CompactionRequest(revision=revision))

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]:
        if self._closed:
            return
        key, end = _span(prefix)
        current = await self.revision()
        start = start_revision if start_revision > 0 else current + 1
        stream = _WatchStream(self._watch.Watch())
        self._streams.add(stream)
        try:
            if start <= current and current > 1:  # replay history (see the module docstring)
                await stream.create(_ALL, _ALL, start)
                last = 0
                while last < current:
                    events = await stream.events()
                    last = events[-1].kv.mod_revision
                    mine = [e for e in events if _inside(e.kv.key, key, end)]
                    if mine:
                        yield _batch(mine, last)
                await stream.cancel()
                current, start = last, last + 1
            await stream.create(key, end, start)
            yield WatchBatch(revision=current)
            while True:
                events = await stream.events()
                yield _batch(events, events[-1].kv.mod_revision)
        except asyncio.CancelledError:
            if not self._closed or _being_cancelled():
                raise  # the consumer was cancelled, not the store closed
        finally:
            stream.close()
            self._streams.discard(stream)

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for stream in list(self._streams):
            stream.close()
        await self._client.close()
        await _settle_cancelled_calls()
