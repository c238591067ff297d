"""One live OVSDB connection: the asyncio shell around :class:`~.protocol.Session`.

It moves bytes between a transport and the pure session, resolves each request's future
from its reply and hands notifications to a callback, all in arrival order and
synchronously — so a monitor's initial contents (a reply, applied through ``on_result``)
always land before the updates that follow it. It answers the server's echo requests (the
session builds the answers) and never reconnects: :class:`~.client.Client` does that.

Errors: a reply's ``error`` becomes :class:`~.errors.OvsdbServerError` (or
:class:`~.errors.UnknownMethodError`); a dropped transport fails every pending request with
:class:`~.errors.ConnectionLostError` raised from the socket error; malformed input aborts
the connection with :class:`~.errors.OvsdbProtocolError`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any

from tether.ovsdb.errors import (
    ClientClosedError,
    ConnectionLostError,
    OvsdbError,
    OvsdbProtocolError,
    OvsdbServerError,
    RequestTimeoutError,
    UnknownMethodError,
)
from tether.ovsdb.framing import DEFAULT_MAX_MESSAGE_BYTES
from tether.ovsdb.ops import check_results
from tether.ovsdb.protocol import Notification, Reply, Session
from tether.ovsdb.schema import DatabaseSchema, parse_schema
from tether.ovsdb.transport import Address, TlsFiles, make_tls_context, open_stream, parse_address

__all__ = ["Connection", "server_error"]

log = logging.getLogger(__name__)

ResultHook = Callable[[Any], None]


def server_error(method: str, error: Any) -> OvsdbServerError:
    """The exception for a reply whose ``error`` is not null."""
    if isinstance(error, dict):
        name, details = str(error.get("error", "error")), error.get("details")
    else:
        name, details = str(error), None
    cls = UnknownMethodError if name == "unknown method" else OvsdbServerError
    return cls(method, name, None if details is None else str(details))


class _Waiter:
    __slots__ = ("future", "on_result")

    def __init__(self, future: asyncio.Future[Any] | None, on_result: ResultHook | None) -> None:
        self.future = future
        self.on_result = on_result


class Connection:
    """One OVSDB session over one stream. Build it with :meth:`open`."""

    def __init__(
        self,
        address: Address,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        on_notification: Callable[[Notification], None] | None = None,
        on_activity: Callable[[], None] | None = None,
        on_lost: Callable[[Connection, OvsdbError], None] | None = None,
    ) -> None:
        self.address = address
        self._session = Session(max_message_bytes=max_message_bytes)
        self._waiters: dict[int, _Waiter] = {}
        self._transport: asyncio.Transport | None = None
        self._on_notification = on_notification
        self._on_activity = on_activity
        self._on_lost = on_lost
        self._closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._close_reason: OvsdbError | None = None
        self._writable: asyncio.Future[None] | None = None  # set while the transport is full

    @classmethod
    async def open(
        cls,
        address: str | Address,
        *,
        tls: TlsFiles | ssl.SSLContext | None = None,
        **options: Any,
    ) -> Connection:
        """Connect to ``address`` (``tcp:``, ``ssl:`` or ``unix:``); see the module docstring.

        ``tls``: the PEM files (or a ready context) for ``ssl:`` addresses.
        """
        where = parse_address(address) if isinstance(address, str) else address
        context = make_tls_context(tls) if isinstance(tls, TlsFiles) else tls
        connection = cls(where, **options)
        await open_stream(where, lambda: _Wire(connection), tls=context)
        return connection

    @property
    def is_open(self) -> bool:
        transport = self._transport
        return transport is not None and not transport.is_closing() and not self._closed.done()

    def send(self, method: str, params: list[Any], *, on_result: ResultHook | None = None) -> None:
        """Send a request whose reply only feeds ``on_result`` (errors are logged)."""
        self._write(method, params, _Waiter(None, on_result))

    async def request(
        self,
        method: str,
        params: list[Any],
        *,
        timeout: float | None = None,
        on_result: ResultHook | None = None,
    ) -> Any:
        """Send ``method(params)`` and return its result; ``on_result`` sees it first, in order."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._write(method, params, _Waiter(future, on_result))
        if self._writable is not None:
            await asyncio.shield(self._writable)
        try:
            async with asyncio.timeout(timeout):
                return await future
        except TimeoutError as exc:
            raise RequestTimeoutError(f"{method}: no reply within {timeout} s") from exc

    async def transact(
        self, db: str, ops: Sequence[dict[str, Any]], *, timeout: float | None = None
    ) -> list[Any]:
        """Run ``ops`` as one transaction; a failed op raises ``TransactionError``."""
        return check_results(ops, await self.request("transact", [db, *ops], timeout=timeout))

    async def get_schema(self, db: str, *, timeout: float | None = None) -> DatabaseSchema:
        return parse_schema(await self.request("get_schema", [db], timeout=timeout))

    async def list_dbs(self, *, timeout: float | None = None) -> list[str]:
        return [str(name) for name in await self.request("list_dbs", [], timeout=timeout)]

    async def echo(self, *params: Any, timeout: float | None = None) -> list[Any]:
        return list(await self.request("echo", list(params), timeout=timeout))

    def close(self, reason: OvsdbError | None = None) -> None:
        """Close the stream; pending requests fail with ``reason`` (default: closed by owner).

        With a ``reason`` (a fault) the stream is aborted at once: a hung peer must not keep
        it open by never reading what is still buffered.
        """
        if self._close_reason is None:
            self._close_reason = reason or ClientClosedError(f"{self.address}: closed")
        if self._transport is not None:
            if reason is None:
                self._transport.close()
            else:
                self._transport.abort()

    async def wait_closed(self) -> None:
        await asyncio.shield(self._closed)

    # -- the transport's side -------------------------------------------------------------

    def _write(self, method: str, params: list[Any], waiter: _Waiter) -> None:
        if not self.is_open:
            raise self._close_reason or ConnectionLostError(f"{self.address}: not connected")
        request_id, data = self._session.request(method, params)
        self._waiters[request_id] = waiter
        self._transport.write(data)  # type: ignore[union-attr]  # is_open checked it

    def _receive(self, data: bytes) -> None:
        try:
            events = self._session.receive_data(data)
        except OvsdbProtocolError as exc:
            log.warning("%s: %s; dropping the connection", self.address, exc)
            self.close(exc)
            return
        answers = self._session.data_to_send()
        if answers and self._transport is not None:
            self._transport.write(answers)
        if self._on_activity is not None:
            self._on_activity()
        try:
            for event in events:
                if isinstance(event, Reply):
                    self._resolve(event)
                elif self._on_notification is not None:
                    self._on_notification(event)
        except OvsdbProtocolError as exc:  # a malformed update met while applying it
            log.warning("%s: %s; dropping the connection", self.address, exc)
            self.close(exc)

    def _resolve(self, reply: Reply) -> None:
        waiter = self._waiters.pop(reply.id, None)
        if waiter is None:
            return
        future = waiter.future
        if reply.error is not None:
            error = server_error(reply.method, reply.error)
            if future is None:
                log.warning("%s: %s", self.address, error)
            elif not future.done():
                future.set_exception(error)
            return
        if waiter.on_result is not None:
            try:
                waiter.on_result(reply.result)
            except OvsdbError as exc:
                if future is not None and not future.done():
                    future.set_exception(exc)
                return
        if future is not None and not future.done():
            future.set_result(reply.result)

    def _connection_lost(self, exc: Exception | None) -> None:
        reason = self._close_reason
        if reason is None:
            reason = ConnectionLostError(f"{self.address}: connection lost: {exc or 'EOF'}")
            reason.__cause__ = exc
            self._close_reason = reason
        self._session.connection_lost()
        waiters, self._waiters = self._waiters, {}
        for waiter in waiters.values():
            if waiter.future is not None and not waiter.future.done():
                waiter.future.set_exception(reason)
        self._set_writable()
        if not self._closed.done():
            self._closed.set_result(None)
        if self._on_lost is not None:
            self._on_lost(self, reason)

    def _set_writable(self) -> None:
        if self._writable is not None and not self._writable.done():
            self._writable.set_result(None)
        self._writable = None


class _Wire(asyncio.Protocol):
    """asyncio's callbacks, forwarded to the connection (kept off its public surface)."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._connection._transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self._connection._receive(data)

    def connection_lost(self, exc: Exception | None) -> None:
        self._connection._connection_lost(exc)

    def pause_writing(self) -> None:
        self._connection._writable = asyncio.get_running_loop().create_future()

    def resume_writing(self) -> None:
        self._connection._set_writable()
