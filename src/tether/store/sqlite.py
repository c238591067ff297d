"""The embedded store: one SQLite file, WAL journal, zero set-up.

Implements :class:`tether.store.base.Store` with etcd's semantics (see that module). Layout:

* ``kv``     — the current value of every key with its revisions and lease;
* ``log``    — every change, by revision, for watches that resume from a revision;
  compacted to the newest ``history`` revisions;
* ``lease``  — TTL and deadline of every live lease;
* ``meta``   — the current and the compacted revision, the next lease id.

Every write transaction commits with ``synchronous=FULL``: once a call returns, the write
survives ``kill -9`` of the process (and a power cut). All SQLite work runs on one private
thread, so the event loop never blocks on the disk; watchers are woken from the loop after
each commit and read the log themselves (level-triggered: a slow watcher only reads more).
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import logging
import os
import sqlite3
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import IO, TypeVar

from tether.store.base import (
    CompactedError,
    Compare,
    Delete,
    Event,
    EventType,
    Get,
    KeyValue,
    LeaseNotFoundError,
    Op,
    Put,
    RangeResult,
    StoreError,
    TxnResult,
    WatchBatch,
    prefix_end,
)

__all__ = ["SqliteStore"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS kv (
    key TEXT PRIMARY KEY, value BLOB NOT NULL, create_rev INTEGER NOT NULL,
    mod_rev INTEGER NOT NULL, version INTEGER NOT NULL, lease INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS kv_lease ON kv(lease) WHERE lease != 0;
CREATE TABLE IF NOT EXISTS log (
    rev INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL, deleted INTEGER NOT NULL,
    value BLOB NOT NULL, create_rev INTEGER NOT NULL, version INTEGER NOT NULL,
    lease INTEGER NOT NULL, PRIMARY KEY (rev, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS lease (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL,
    deadline REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('revision', 1), ('compacted', 0), ('next_lease', 1);
"""
# Revision starts at 1 for an empty store, as in etcd.

_CHUNK = 500  # keys per "IN (...)" lookup, below SQLite's variable limit
_WATCH_REVISIONS_PER_READ = 512


class _Txn:
    """One write transaction on the store thread: compares, branch, effects, log."""

    def __init__(self, db: sqlite3.Connection, revision: int) -> None:
        self.db = db
        self.next_revision = revision + 1
        self.log_rows: list[tuple[int, int, str, int, bytes, int, int, int]] = []

    def read(self, key: str) -> KeyValue | None:
        row = self.db.execute(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?", (key,)
        ).fetchone()
        return KeyValue(*row) if row else None

    def read_prefix(self, prefix: str) -> list[KeyValue]:
        sql, args = _prefix_clause(prefix)
        rows = self.db.execute(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE "
            + sql
            + " ORDER BY key",
            args,
        ).fetchall()
        return [KeyValue(*row) for row in rows]

    def put_many(self, puts: Sequence[Put]) -> None:
        existing: dict[str, tuple[int, int]] = {}
        keys = [p.key for p in puts]
        for start in range(0, len(keys), _CHUNK):
            chunk = keys[start : start + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for key, create_rev, version in self.db.execute(
                f"SELECT key, create_rev, version FROM kv WHERE key IN ({marks})", chunk
            ):
                existing[key] = (create_rev, version)
        rev = self.next_revision
        rows = []
        for put in puts:
            create_rev, version = existing.get(put.key, (rev, 0))
            rows.append((put.key, put.value, create_rev, rev, version + 1, put.lease))
        self.db.executemany("INSERT OR REPLACE INTO kv VALUES (?, ?, ?, ?, ?, ?)", rows)
        base = len(self.log_rows)
        self.log_rows.extend(
            (rev, base + i, key, 0, value, create_rev, version, lease)
            for i, (key, value, create_rev, _, version, lease) in enumerate(rows)
        )

    def delete(self, op: Delete) -> int:
        doomed = self.read_prefix(op.key) if op.prefix else [kv for kv in [self.read(op.key)] if kv]
        return self.delete_kvs(doomed)

    def delete_kvs(self, doomed: Iterable[KeyValue]) -> int:
        rev = self.next_revision
        keys = [(kv.key,) for kv in doomed]
        self.db.executemany("DELETE FROM kv WHERE key = ?", keys)
        base = len(self.log_rows)
        self.log_rows.extend((rev, base + i, key, 1, b"", 0, 0, 0) for i, (key,) in enumerate(keys))
        return len(keys)

    def commit_revision(self) -> int:
        """Write the log and bump the revision if anything changed; returns the revision."""
        if not self.log_rows:
            return self.next_revision - 1
        self.db.executemany("INSERT INTO log VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.log_rows)
        self.db.execute("UPDATE meta SET value = ? WHERE name = 'revision'", (self.next_revision,))
        return self.next_revision


def _prefix_clause(prefix: str) -> tuple[str, tuple[str, ...]]:
    end = prefix_end(prefix)
    if not prefix:
        return "1", ()
    if not end:
        return "key >= ?", (prefix,)
    return "key >= ? AND key < ?", (prefix, end)


class SqliteStore:
    """The embedded backend. Create with :meth:`open`; use from one event loop."""

    name = "sqlite"

    def __init__(
        self,
        path: str,
        *,
        history: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
        expiry_interval: float = 0.25,
    ) -> None:
        self.path = path
        self._history = history
        self._clock = clock
        self._expiry_interval = expiry_interval
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tether-sqlite")
        self._db: sqlite3.Connection | None = None
        self._revision = 0
        self._compacted = 0
        self._tick = asyncio.Event()
        self._closed = False
        self._expiry_task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._lock_file: IO[str] | None = None

    @classmethod
    async def open(cls, path: str, **options: object) -> SqliteStore:
        store = cls(path, **options)  # type: ignore[arg-type]
        store._loop = asyncio.get_running_loop()
        try:
            await store._run(store._open_db)
        except BaseException:
            store._thread.shutdown(wait=False)
            raise
        store._expiry_task = asyncio.get_running_loop().create_task(store._expire_forever())
        return store

    # -- plumbing -------------------------------------------------------------------------

    async def _run(self, fn: Callable[..., T], *args: object) -> T:
        if self._closed:
            raise StoreError("store is closed")
        try:
            return await asyncio.get_running_loop().run_in_executor(self._thread, fn, *args)
        except sqlite3.Error as exc:
            raise StoreError(f"sqlite store {self.path}: {exc}") from exc

    def _open_db(self) -> None:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            self._take_file_lock()
        except OSError as exc:
            raise StoreError(f"cannot use {self.path}: {exc.strerror}") from exc
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("PRAGMA busy_timeout=5000")
        db.executescript(_SCHEMA)
        # Leases restart their full TTL when the store opens, as etcd does on a new leader:
        # a controller that was down must not find its agents' leases expired on arrival.
        db.execute("UPDATE lease SET deadline = ? + ttl", (self._clock(),))
        self._db = db
        self._revision, self._compacted = self._read_meta()

    def _take_file_lock(self) -> None:
        """One process per store file: the revision lives in this process's memory."""
        self._lock_file = open(f"{self.path}.lock", "a")  # noqa: SIM115
        try:
            fcntl.flock(self._lock_file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._lock_file.close()
            raise StoreError(f"sqlite store {self.path} is in use by another process") from None

    def _read_meta(self) -> tuple[int, int]:
        assert self._db is not None
        meta = dict(self._db.execute("SELECT name, value FROM meta").fetchall())
        return int(meta["revision"]), int(meta["compacted"])

    def _write(self, body: Callable[[_Txn], T]) -> tuple[T, int]:
        """Run ``body`` in one immediate transaction on the store thread."""
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            txn = _Txn(db, self._revision)
            result = body(txn)
            revision = txn.commit_revision()
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        if revision != self._revision:
            self._revision = revision
            # wake watchers from here: the awaiting coroutine may have been cancelled
            if self._loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop is closing
                    self._loop.call_soon_threadsafe(self._notify)
        return result, revision

    def _notify(self) -> None:
        tick, self._tick = self._tick, asyncio.Event()
        tick.set()

    # -- reads ----------------------------------------------------------------------------

    async def get(self, key: str) -> KeyValue | None:
        return await self._run(self._get, key)

    def _get(self, key: str) -> KeyValue | None:
        assert self._db is not None
        row = self._db.execute(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE key = ?", (key,)
        ).fetchone()
        return KeyValue(*row) if row else None

    async def range(
        self, prefix: str, *, start_after: str = "", limit: int = 0, revision: int = 0
    ) -> RangeResult:
        if revision and revision != self._revision:
            raise StoreError("the sqlite store reads only the newest revision")
        return await self._run(self._range, prefix, start_after, limit)

    def _range(self, prefix: str, start_after: str, limit: int) -> RangeResult:
        assert self._db is not None
        sql, args = _prefix_clause(prefix)
        if start_after:
            sql, args = sql + " AND key > ?", (*args, start_after)
        query = "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE "
        query += sql + " ORDER BY key"
        if limit > 0:
            query += f" LIMIT {int(limit) + 1}"
        rows = self._db.execute(query, args).fetchall()
        more = limit > 0 and len(rows) > limit
        kvs = tuple(KeyValue(*row) for row in rows[: limit if limit > 0 else None])
        return RangeResult(kvs=kvs, revision=self._revision, more=more)

    async def revision(self) -> int:
        return self._revision

    # -- writes ---------------------------------------------------------------------------

    async def put(self, key: str, value: bytes, *, lease: int = 0) -> int:
        result = await self.txn((), (Put(key, value, lease),))
        return result.revision

    async def delete(self, key: str, *, prefix: bool = False) -> int:
        def body(txn: _Txn) -> int:
            return txn.delete(Delete(key, prefix))

        count, _ = await self._run(self._write, body)
        return int(count)

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        _check_ops(success)
        _check_ops(failure)

        def body(txn: _Txn) -> tuple[bool, tuple[tuple[KeyValue, ...], ...]]:
            ok = all(c.holds(txn.read(c.key)) for c in compares)
            return ok, self._apply(txn, success if ok else failure)

        (ok, reads), revision = await self._run(self._write, body)
        return TxnResult(succeeded=ok, revision=revision, reads=reads)

    def _apply(self, txn: _Txn, ops: Sequence[Op]) -> tuple[tuple[KeyValue, ...], ...]:
        self._check_leases(txn, ops)
        reads: list[tuple[KeyValue, ...]] = []
        puts: list[Put] = []
        for op in ops:
            if isinstance(op, Put):
                puts.append(op)
                continue
            if puts:  # keep the order of effects: flush puts before a delete or a read
                txn.put_many(puts)
                puts = []
            if isinstance(op, Delete):
                txn.delete(op)
            else:
                found = txn.read_prefix(op.key) if op.prefix else [txn.read(op.key)]
                reads.append(tuple(kv for kv in found if kv is not None))
        if puts:
            txn.put_many(puts)
        return tuple(reads)

    def _check_leases(self, txn: _Txn, ops: Sequence[Op]) -> None:
        wanted = {op.lease for op in ops if isinstance(op, Put) and op.lease}
        for lease in wanted:
            if not txn.db.execute("SELECT 1 FROM lease WHERE id = ?", (lease,)).fetchone():
                raise LeaseNotFoundError(f"lease {lease} not found")

    # -- leases ---------------------------------------------------------------------------

    async def lease_grant(self, ttl: int) -> int:
        if ttl <= 0:
            raise StoreError("lease TTL must be positive")

        def body(txn: _Txn) -> int:
            (lease,) = txn.db.execute("SELECT value FROM meta WHERE name='next_lease'").fetchone()
            txn.db.execute("UPDATE meta SET value = value + 1 WHERE name = 'next_lease'")
            txn.db.execute("INSERT INTO lease VALUES (?, ?, ?)", (lease, ttl, self._clock() + ttl))
            return int(lease)

        lease, _ = await self._run(self._write, body)
        return int(lease)

    async def lease_keepalive(self, lease: int) -> int:
        def body(txn: _Txn) -> int:
            row = txn.db.execute(
                "SELECT ttl FROM lease WHERE id = ? AND deadline > ?", (lease, self._clock())
            ).fetchone()
            if row is None:
                raise LeaseNotFoundError(f"lease {lease} not found or expired")
            txn.db.execute(
                "UPDATE lease SET deadline = ? WHERE id = ?", (self._clock() + row[0], lease)
            )
            return int(row[0])

        ttl, _ = await self._run(self._write, body)
        return int(ttl)

    async def lease_revoke(self, lease: int) -> None:
        def body(txn: _Txn) -> None:
            if not txn.db.execute("DELETE FROM lease WHERE id = ?", (lease,)).rowcount:
                raise LeaseNotFoundError(f"lease {lease} not found")
            self._drop_lease_keys(txn, lease)

        await self._run(self._write, body)

    @staticmethod
    def _drop_lease_keys(txn: _Txn, lease: int) -> None:
        rows = txn.db.execute(
            "SELECT key, value, create_rev, mod_rev, version, lease FROM kv WHERE lease = ?",
            (lease,),
        ).fetchall()
        txn.delete_kvs(KeyValue(*row) for row in rows)

    async def expire_leases(self) -> int:
        """Revoke every lease past its deadline, in one transaction (a keep-alive cannot slip
        in between the check and the revocation); returns how many. Runs periodically."""

        def body(txn: _Txn) -> int:
            now = self._clock()
            expired = [
                int(lease)
                for (lease,) in txn.db.execute("SELECT id FROM lease WHERE deadline <= ?", (now,))
            ]
            for lease in expired:
                txn.db.execute("DELETE FROM lease WHERE id = ?", (lease,))
                self._drop_lease_keys(txn, lease)
            return len(expired)

        count, _ = await self._run(self._write, body)
        return int(count)

    async def _expire_forever(self) -> None:
        while not self._closed:
            await asyncio.sleep(self._expiry_interval)
            try:
                await self.expire_leases()
                await self._compact_history()
            except StoreError:
                return
            except Exception:
                log.exception("lease expiry failed")

    # -- history --------------------------------------------------------------------------

    async def compact(self, revision: int) -> None:
        if revision > self._revision:
            raise StoreError(f"cannot compact revision {revision}: newest is {self._revision}")
        self._compacted = await self._run(self._compact, revision)

    def _compact(self, revision: int) -> int:
        assert self._db is not None
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute(
                "UPDATE meta SET value = max(value, ?) WHERE name = 'compacted'", (revision,)
            )
            self._db.execute("DELETE FROM log WHERE rev <= ?", (revision,))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return max(self._compacted, revision)

    async def _compact_history(self) -> None:
        target = self._revision - self._history
        if target > self._compacted + max(1, self._history // 10):
            await self.compact(target)

    async def watch(self, prefix: str, *, start_revision: int) -> AsyncIterator[WatchBatch]:
        start = start_revision if start_revision > 0 else self._revision + 1
        if start <= self._compacted:
            raise CompactedError(start, self._compacted)
        last = start - 1
        caught_up = False
        while not self._closed:
            tick = self._tick
            upto = min(self._revision, last + _WATCH_REVISIONS_PER_READ)
            if upto > last:
                events, compacted = await self._run(self._read_log, prefix, last, upto)
                if compacted >= last + 1:
                    raise CompactedError(last + 1, compacted)
                last = upto
                if events:
                    yield WatchBatch(revision=upto, events=events)
                    continue
            if not caught_up and last >= self._revision:
                caught_up = True
                yield WatchBatch(revision=min(last, self._revision))
            if last >= self._revision:
                await tick.wait()

    def _read_log(self, prefix: str, after: int, upto: int) -> tuple[tuple[Event, ...], int]:
        assert self._db is not None
        sql, args = _prefix_clause(prefix)
        rows = self._db.execute(
            "SELECT rev, key, deleted, value, create_rev, version, lease FROM log "
            "WHERE rev > ? AND rev <= ? AND " + sql + " ORDER BY rev, seq",
            (after, upto, *args),
        ).fetchall()
        (compacted,) = self._db.execute("SELECT value FROM meta WHERE name='compacted'").fetchone()
        events = tuple(
            Event(
                type=EventType.DELETE if deleted else EventType.PUT,
                kv=KeyValue(key, value, create_rev, rev, version, lease),
            )
            for rev, key, deleted, value, create_rev, version, lease in rows
        )
        return events, int(compacted)

    async def close(self) -> None:
        if self._closed:
            return
        if self._expiry_task is not None:
            self._expiry_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry_task
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close_db)
        self._closed = True
        self._notify()
        self._thread.shutdown(wait=True)

    def _close_db(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None
        if self._lock_file is not None:
            self._lock_file.close()
            self._lock_file = None


def _check_ops(ops: Sequence[Op]) -> None:
    """etcd's rule: no key is written (put or deleted) twice in one transaction."""
    seen: set[str] = set()
    for op in ops:
        if isinstance(op, Get) or (isinstance(op, Delete) and op.prefix):
            continue
        if not op.key:
            raise StoreError("empty key")
        if op.key in seen:
            raise StoreError(f"duplicate key {op.key!r} in one transaction")
        seen.add(op.key)
