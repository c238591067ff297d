"""The OVSDB client: one server, kept connected, with its monitors and locks.

The asyncio shell over the pure parts: :mod:`.reconnect` decides when to connect, probe
and give up; :mod:`.monitor` and :mod:`.replica` keep each monitor's replica; :mod:`.locks`
tracks the locks. A :class:`Client` owns one :class:`~.connection.Connection` at a time
(hundreds of clients share one event loop; nothing is shared between them).

On every (re)connection the client fetches the schemas it needs, subscribes every monitor
again (``monitor_cond_since`` from the replica's last transaction id, falling back to
``monitor_cond`` and ``monitor`` on ``"unknown method"``), asks again for every lock it
wants, then becomes *ready* and — from the second connection on — runs the caller's
``on_reconnect`` hook. Requests made while not ready fail at once with
:class:`~.errors.ConnectionLostError` (temporary: retry later, or from the hook). Lock
changes (``locked``, ``stolen``, and ``lost`` when the connection drops) are queued on
:attr:`Client.lock_events`.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from tether.ovsdb.connection import Connection
from tether.ovsdb.errors import (
    ClientClosedError,
    ConnectionFailedError,
    ConnectionLostError,
    InvalidAddressError,
    OvsdbError,
    RequestTimeoutError,
    UnknownMethodError,
)
from tether.ovsdb.framing import DEFAULT_MAX_MESSAGE_BYTES
from tether.ovsdb.locks import LockEvent, LockMode, LockTable, validate_lock_name
from tether.ovsdb.monitor import MonitorMethod, MonitorState, TableSpec
from tether.ovsdb.protocol import Notification
from tether.ovsdb.reconnect import Action, Reconnect, ReconnectOptions
from tether.ovsdb.replica import Replica, Row, RowChange, Uuid
from tether.ovsdb.schema import DatabaseSchema
from tether.ovsdb.transport import TlsFiles, make_tls_context, parse_address

__all__ = ["Client", "ClientOptions", "Monitor", "TablesArg"]

log = logging.getLogger(__name__)

TablesArg = Mapping[str, Sequence[str] | TableSpec | None]
UpdateHook = Callable[[list[RowChange]], None]


@dataclass(frozen=True, slots=True)
class ClientOptions:
    reconnect: ReconnectOptions = field(default_factory=ReconnectOptions)
    request_timeout: float = 30.0  # the client's own requests while resuming a session
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


class Monitor:
    """Monitored tables of one database and their live replica (see :mod:`.monitor`)."""

    def __init__(self, state: MonitorState, first: MonitorMethod, on_update: UpdateHook | None):
        self.state = state
        self.first_method = first
        self.method: MonitorMethod | None = None  # in use on the current connection
        self.established = False  # subscribed once: resubscribed after every reconnect
        self._on_update = on_update
        self._changed = asyncio.Event()

    @property
    def replica(self) -> Replica:
        return self.state.replica

    def rows(self, table: str) -> Mapping[Uuid, Row]:
        return self.state.replica.rows(table)

    async def wait_for(self, predicate: Callable[[Replica], bool], *, timeout: float) -> None:
        """Wait until ``predicate(replica)`` holds; ``RequestTimeoutError`` after ``timeout``."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate(self.state.replica):
                    await self._changed.wait()
        except TimeoutError as exc:
            raise RequestTimeoutError(f"replica condition not met within {timeout} s") from exc

    def _apply_reply(self, method: MonitorMethod, result: Any) -> None:
        self._publish(self.state.apply_reply(method, result))

    def _apply_notification(self, method: str, params: list[Any]) -> None:
        self._publish(self.state.apply_notification(method, params))

    def _publish(self, changes: list[RowChange]) -> None:
        if changes and self._on_update is not None:
            try:
                self._on_update(changes)
            except Exception:  # a caller's bug must not take the connection down
                log.exception("monitor %s: on_update failed", self.state.monitor_id)
        self._changed.set()
        self._changed = asyncio.Event()


class Client:
    """A self-reconnecting OVSDB client for one server (``tcp:``, ``ssl:`` or ``unix:``).

    Build it inside the running event loop; ``clock`` defaults to the loop's clock.
    """

    def __init__(
        self,
        address: str,
        *,
        tls_files: TlsFiles | None = None,
        options: ClientOptions | None = None,
        on_reconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.address = parse_address(address)
        self.options = options or ClientOptions()
        self.lock_events: asyncio.Queue[LockEvent] = asyncio.Queue()
        if self.address.kind == "ssl" and tls_files is None:
            raise InvalidAddressError(f"{address}: ssl: needs tls_files")
        # Bad TLS files are a caller mistake: refuse them now, not on every reconnect.
        self._tls = make_tls_context(tls_files) if tls_files is not None else None
        self._on_reconnect = on_reconnect
        self._clock = clock or asyncio.get_running_loop().time
        self._fsm = Reconnect(self.options.reconnect)
        self._locks = LockTable()
        self._monitors: dict[int, Monitor] = {}
        self._next_monitor_id = 1
        self._conn: Connection | None = None
        self._ready = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._hooks: set[asyncio.Task[None]] = set()
        self._closed = False
        self._last_error: OvsdbError | None = None

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    @property
    def is_ready(self) -> bool:
        return self._ready.is_set()

    @property
    def connections(self) -> int:
        """Successful connections so far (2 and more: it has reconnected)."""
        return self._fsm.connections

    def start(self) -> None:
        """Start connecting in the background (and keep reconnecting until closed)."""
        if self._closed:
            raise ClientClosedError(f"{self.address}: client closed")
        if self._task is None:
            self._fsm.start(self._clock())
            self._task = asyncio.get_running_loop().create_task(self._run())
            self._task.add_done_callback(self._run_done)

    async def connect(self, *, timeout: float | None = None) -> None:
        """Start, and wait until ready; on failure the client is closed and the error raised."""
        self.start()
        try:
            await self.wait_ready(timeout=timeout or self.options.reconnect.connect_timeout)
        except OvsdbError:
            await self.close()
            raise

    async def wait_ready(self, *, timeout: float | None = None) -> None:
        """Wait until connected, resubscribed and locks requested again."""
        if self._closed:
            raise ClientClosedError(f"{self.address}: client closed")
        try:
            async with asyncio.timeout(timeout):
                await self._ready.wait()
        except TimeoutError as exc:
            cause = self._last_error or exc
            raise ConnectionFailedError(f"{self.address}: not ready after {timeout} s") from cause

    async def close(self) -> None:
        self._closed = True
        self._ready.clear()
        self._fsm.stop(self._clock())
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
            await conn.wait_closed()
        for hook in list(self._hooks):
            hook.cancel()

    # -- requests -------------------------------------------------------------------------

    async def transact(
        self, db: str, ops: Sequence[dict[str, Any]], *, timeout: float | None = None
    ) -> list[Any]:
        """Run ``ops`` in one transaction; the first failed op raises ``TransactionError``."""
        return await self._current().transact(db, ops, timeout=timeout)

    async def get_schema(self, db: str) -> DatabaseSchema:
        return await self._current().get_schema(db, timeout=self.options.request_timeout)

    async def list_dbs(self) -> list[str]:
        return await self._current().list_dbs(timeout=self.options.request_timeout)

    async def echo(self, *params: Any) -> list[Any]:
        return await self._current().echo(*params, timeout=self.options.request_timeout)

    def _current(self) -> Connection:
        if self._closed:
            raise ClientClosedError(f"{self.address}: client closed")
        if self._conn is None or not self._ready.is_set():
            raise ConnectionLostError(f"{self.address}: not connected") from self._last_error
        return self._conn

    # -- monitors -------------------------------------------------------------------------

    async def monitor_cond_since(
        self, db: str, tables: TablesArg, *, on_update: UpdateHook | None = None
    ) -> Monitor:
        """Monitor ``tables`` (name → columns, ``TableSpec`` or None for all columns)."""
        return await self._monitor(db, tables, MonitorMethod.MONITOR_COND_SINCE, on_update)

    async def monitor_cond(
        self, db: str, tables: TablesArg, *, on_update: UpdateHook | None = None
    ) -> Monitor:
        return await self._monitor(db, tables, MonitorMethod.MONITOR_COND, on_update)

    async def monitor(
        self, db: str, tables: TablesArg, *, on_update: UpdateHook | None = None
    ) -> Monitor:
        return await self._monitor(db, tables, MonitorMethod.MONITOR, on_update)

    async def cancel_monitor(self, monitor: Monitor) -> None:
        """Stop a monitor; its replica keeps its last contents."""
        self._monitors.pop(monitor.state.monitor_id, None)
        if self._conn is not None and self._ready.is_set():
            await self._conn.request(
                "monitor_cancel", [monitor.state.monitor_id], timeout=self.options.request_timeout
            )

    async def _monitor(
        self, db: str, tables: TablesArg, first: MonitorMethod, on_update: UpdateHook | None
    ) -> Monitor:
        conn = self._current()
        specs = {name: _table_spec(spec) for name, spec in tables.items()}
        monitor = Monitor(MonitorState(db, self._next_monitor_id, specs), first, on_update)
        self._next_monitor_id += 1
        self._monitors[monitor.state.monitor_id] = monitor  # updates may follow the reply
        try:
            schema = await conn.get_schema(db, timeout=self.options.request_timeout)
            await self._subscribe(conn, monitor, schema)
        except BaseException:
            self._monitors.pop(monitor.state.monitor_id, None)
            raise
        monitor.established = True
        return monitor

    async def _subscribe(self, conn: Connection, monitor: Monitor, schema: DatabaseSchema) -> None:
        method: MonitorMethod | None = monitor.first_method
        while method is not None:
            params = monitor.state.request(method, schema)
            tried = method
            try:
                await conn.request(
                    method,
                    params,
                    timeout=self.options.request_timeout,
                    on_result=functools.partial(monitor._apply_reply, tried),
                )
            except UnknownMethodError:
                method = method.fallback
                if method is None or (
                    method is MonitorMethod.MONITOR and monitor.state.has_conditions
                ):
                    raise  # `monitor` cannot filter rows: do not fall back to it
                log.info("%s: server lacks %s; trying %s", self.address, tried, method)
                continue
            monitor.method = method
            return

    # -- locks ----------------------------------------------------------------------------

    def holds_lock(self, name: str) -> bool:
        return self._locks.holds(name)

    async def lock(self, name: str) -> bool:
        """Ask for lock ``name``; True if held now, else a LOCKED event follows when it is."""
        validate_lock_name(name)
        conn = self._current()
        if self._locks.holds(name):
            return True
        mode = self._locks.mode(name)
        if mode is LockMode.LOCK and self._locks.is_queued(name):
            return False  # already waiting in the server's queue
        if mode is not None:  # a stolen `steal`: leave the old request first
            await conn.request("unlock", [name], timeout=self.options.request_timeout)
        return await self._send_lock(conn, name, LockMode.LOCK)

    async def steal(self, name: str) -> bool:
        """Take lock ``name`` from its owner (whose session gets ``stolen``); True."""
        validate_lock_name(name)
        conn = self._current()
        mode = self._locks.mode(name)
        if mode is LockMode.STEAL and self._locks.holds(name):
            return True
        if mode is not None:  # the server refuses `steal` over a pending `lock`
            self._locks.forget(name)
            await conn.request("unlock", [name], timeout=self.options.request_timeout)
        return await self._send_lock(conn, name, LockMode.STEAL)

    async def unlock(self, name: str) -> bool:
        """Give lock ``name`` up (or stop waiting for it); returns False (not held)."""
        validate_lock_name(name)
        if self._locks.mode(name) is None:
            return False
        self._locks.forget(name)
        if self._conn is not None and self._ready.is_set():
            await self._conn.request("unlock", [name], timeout=self.options.request_timeout)
        return False

    async def _send_lock(self, conn: Connection, name: str, mode: LockMode) -> bool:
        self._locks.want(name, mode)
        await conn.request(
            mode.value,
            [name],
            timeout=self.options.request_timeout,
            on_result=lambda result: self._lock_reply(name, result),
        )
        return self._locks.holds(name)

    def _lock_reply(self, name: str, result: Any) -> None:
        locked = isinstance(result, dict) and result.get("locked") is True
        for event in self._locks.reply(name, locked):
            self.lock_events.put_nowait(event)

    # -- the connection loop --------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            action = self._fsm.run(self._clock())
            if action is Action.CONNECT:
                await self._connect_once()
            elif action is Action.PROBE:
                self._probe()
            elif action is Action.DISCONNECT:
                timeout = self.options.reconnect.probe_timeout
                self._drop(ConnectionLostError(f"{self.address}: no reply to echo in {timeout} s"))
            else:
                await self._sleep_until(self._fsm.deadline())

    async def _sleep_until(self, deadline: float | None) -> None:
        self._wake.clear()
        delay = None if deadline is None else max(0.0, deadline - self._clock())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(delay):
                await self._wake.wait()

    async def _connect_once(self) -> None:
        try:
            async with asyncio.timeout(self.options.reconnect.connect_timeout):
                conn = await Connection.open(
                    self.address,
                    tls=self._tls,
                    max_message_bytes=self.options.max_message_bytes,
                    on_notification=self._on_notification,
                    on_activity=self._on_activity,
                    on_lost=self._on_lost,
                )
        except (OvsdbError, TimeoutError) as exc:
            self._last_error = _as_ovsdb_error(exc, f"{self.address}: connect timed out")
            self._fsm.connect_failed(self._clock())
            log.info("%s: %s (retry in %.2f s)", self.address, exc, self._fsm.backoff)
            return
        self._conn = conn
        self._fsm.connected(self._clock())
        try:
            await self._resume(conn)
        except OvsdbError as exc:
            log.warning("%s: resuming the session failed: %s", self.address, exc)
            self._drop(exc)
            return
        self._ready.set()
        log.info("%s: ready (connection %d)", self.address, self._fsm.connections)
        if self._fsm.connections > 1 and self._on_reconnect is not None:
            hook = asyncio.get_running_loop().create_task(self._on_reconnect())
            self._hooks.add(hook)
            hook.add_done_callback(self._hook_done)

    async def _resume(self, conn: Connection) -> None:
        """Subscribe every established monitor again and ask again for every wanted lock."""
        # A round trip first: a hung server's kernel still accepts connections.
        await conn.echo(timeout=self.options.reconnect.connect_timeout)
        schemas: dict[str, DatabaseSchema] = {}
        for monitor in list(self._monitors.values()):
            if not monitor.established:
                continue
            db = monitor.state.db
            if db not in schemas:
                schemas[db] = await conn.get_schema(db, timeout=self.options.request_timeout)
            await self._subscribe(conn, monitor, schemas[db])
        for name in self._locks.wanted():
            await self._send_lock(conn, name, LockMode.LOCK)

    def _probe(self) -> None:
        if self._conn is not None and self._conn.is_open:
            self._conn.send("echo", [])

    def _drop(self, reason: OvsdbError) -> None:
        """Give the current connection up now (its late ``connection_lost`` is ignored)."""
        conn = self._conn
        if conn is not None:
            self._detach(reason)
            conn.close(reason)

    def _detach(self, reason: OvsdbError) -> None:
        self._conn = None
        self._last_error = reason
        self._ready.clear()
        self._fsm.disconnected(self._clock())
        for event in self._locks.connection_lost():
            self.lock_events.put_nowait(event)
        self._wake.set()

    def _on_lost(self, conn: Connection, reason: OvsdbError) -> None:
        if conn is self._conn and not self._closed:
            log.info("%s: %s", self.address, reason)
            self._detach(reason)

    def _on_activity(self) -> None:
        self._fsm.activity(self._clock())

    def _on_notification(self, notification: Notification) -> None:
        method, params = notification.method, notification.params
        if method in ("update", "update2", "update3") and params:
            monitor = self._monitors.get(params[0])
            if monitor is not None:
                monitor._apply_notification(method, params)
        elif method in ("locked", "stolen") and params:
            for event in self._locks.notify(method, str(params[0])):
                self.lock_events.put_nowait(event)
        elif method == "monitor_canceled":
            # The database was converted: resubscribe from scratch with the new schema.
            self._drop(ConnectionLostError(f"{self.address}: monitor canceled by the server"))

    def _run_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: connection loop died", self.address, exc_info=task.exception())

    def _hook_done(self, task: asyncio.Task[None]) -> None:
        self._hooks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: on_reconnect failed", self.address, exc_info=task.exception())


def _table_spec(spec: Sequence[str] | TableSpec | None) -> TableSpec:
    if spec is None or isinstance(spec, TableSpec):
        return spec or TableSpec()
    if isinstance(spec, str):
        raise TypeError(f"columns must be a sequence of names, not the string {spec!r}")
    return TableSpec(columns=tuple(spec))


def _as_ovsdb_error(exc: BaseException, timeout_text: str) -> OvsdbError:
    if isinstance(exc, OvsdbError):
        return exc
    error = ConnectionFailedError(timeout_text)
    error.__cause__ = exc
    return error
