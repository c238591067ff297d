"""The model service: validated, totally ordered writes of the model to the store.

It keeps a :class:`~tether.model.Catalog` of the whole model, loaded from the store and kept
current by a watch. A change runs the pure rules on the catalog inside a draft, then writes
the changed objects in **one** store transaction guarded by the fence key::

    compare  mod_revision(/tether/model/_fence) == catalog.fence_revision
    success  put/delete every changed object; put the fence
    failure  (nothing: another writer got in first)

When the compare fails, the draft is rolled back, the service waits until its watch has
applied the other writer's change and runs the rules again — so two controllers sharing one
etcd never both take the same VNI, name or IP. The rules and the catalog are pure; this
module owns the store, the lock and the retries.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pydantic import ValidationError

from tether.model import KINDS, Catalog, Change, ConflictError, IdSource, Resource, Rules
from tether.service.keys import FENCE, MODEL_PREFIX, kind_and_id, object_key
from tether.store import (
    CompactedError,
    Compare,
    Delete,
    Event,
    EventType,
    Get,
    Op,
    Put,
    Store,
    StoreError,
    StoreUnavailableError,
)

__all__ = ["ModelService", "WriteResult", "change_ops"]

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = 8
CATCH_UP_SECONDS = 30


@dataclass(frozen=True, slots=True)
class WriteResult:
    revision: int
    changes: list[Change]


class ModelService:
    """Owns the catalog; every model write goes through :meth:`write`."""

    def __init__(self, store: Store, ids: IdSource) -> None:
        self.store = store
        self.catalog = Catalog()
        self.rules = Rules(self.catalog, ids)
        self._lock = asyncio.Lock()
        self._applied = asyncio.Condition()
        self._watch_task: asyncio.Task[None] | None = None
        self.watch_revision = 0
        """Store revision up to which the watch has applied changes."""
        self._tombstones: dict[tuple[str, str], int] = {}
        """Objects this service deleted, with the deletion's revision, until the watch gets
        there."""
        self.version = 0
        """Counts changes to the catalog (own writes, the watch, reloads)."""
        self._version_changed = asyncio.Event()

    async def start(self) -> None:
        await self._load()
        self._watch_task = asyncio.get_running_loop().create_task(self._follow())

    async def stop(self) -> None:
        if self._watch_task is not None:
            self._watch_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch_task

    # -- keeping the catalog current ----------------------------------------------------------

    async def _load(self) -> None:
        listing = await self.store.range(MODEL_PREFIX)
        catalog = Catalog()
        for kv in listing.kvs:
            if kv.key == FENCE:
                catalog.fence_revision = kv.mod_revision
                continue
            self._decode_into(catalog, kv.key, kv.value)
            where = kind_and_id(kv.key)
            if where is not None:
                catalog.mod_revisions[where] = kv.mod_revision
        self.catalog = catalog
        self.rules.catalog = catalog
        self.watch_revision = listing.revision

    @staticmethod
    def _decode_into(catalog: Catalog, key: str, value: bytes) -> None:
        where = kind_and_id(key)
        if where is None or where[0] not in KINDS:
            return
        try:
            catalog.put(where[0], KINDS[where[0]].model_validate_json(value))
        except ValidationError:
            log.error("store key %s holds an object this version cannot read; ignored", key)

    async def _follow(self) -> None:
        """Apply every model change to the catalog, forever; reload when history is gone."""
        reload = False
        while True:
            try:
                if reload:
                    async with self._lock:
                        await self._load()
                    reload = False
                    await self._notify_applied()
                watch = self.store.watch(MODEL_PREFIX, start_revision=self.watch_revision + 1)
                async for batch in watch:
                    async with self._lock:
                        self._apply_events(batch.events)
                        self.watch_revision = max(self.watch_revision, batch.revision)
                        self._forget_tombstones()
                    await self._notify_applied()
            except CompactedError:
                log.warning("model watch fell behind compaction; reloading the catalog")
                reload = True
            except StoreError as exc:
                log.warning("model watch interrupted (%s); resuming", exc)
                await asyncio.sleep(0.5)

    def _forget_tombstones(self) -> None:
        """Once the watch has delivered up to a deletion's revision, nothing older about
        that object can still arrive."""
        if self._tombstones:
            self._tombstones = {
                where: rev for where, rev in self._tombstones.items() if rev > self.watch_revision
            }

    async def _notify_applied(self) -> None:
        self._bump()
        async with self._applied:
            self._applied.notify_all()

    def _bump(self) -> None:
        self.version += 1
        changed, self._version_changed = self._version_changed, asyncio.Event()
        changed.set()

    async def wait_change(self, seen: int) -> int:
        """Wait until the catalog changed after version ``seen``; returns the new version."""
        while self.version == seen:
            await self._version_changed.wait()
        return self.version

    def reading(self) -> asyncio.Lock:
        """Hold while reading the catalog: it is never seen with an unstored draft in it."""
        return self._lock

    def _apply_events(self, events: tuple[Event, ...]) -> None:
        for event in events:
            revision = event.kv.mod_revision
            if event.kv.key == FENCE:
                continue
            where = kind_and_id(event.kv.key)
            if where is None or where[0] not in KINDS:
                continue
            known = self.catalog.mod_revisions.get(where, self._tombstones.get(where))
            if known is not None and revision <= known:
                continue  # this version (or a newer one) is applied: e.g. written here
            if event.type is EventType.DELETE and where[1] not in self.catalog.objects[where[0]]:
                continue
            if event.type is EventType.DELETE:
                self.catalog.remove(*where)
                self.catalog.mod_revisions.pop(where, None)
            else:
                self._decode_into(self.catalog, event.kv.key, event.kv.value)
                self.catalog.mod_revisions[where] = revision
        fences = [e.kv.mod_revision for e in events if e.kv.key == FENCE]
        if fences:
            self.catalog.fence_revision = max(self.catalog.fence_revision, *fences)

    async def _catch_up(self, fence_revision: int) -> None:
        """Wait until the watch has applied the model write at ``fence_revision``."""
        try:
            async with self._applied:
                await asyncio.wait_for(
                    self._applied.wait_for(lambda: self.catalog.fence_revision >= fence_revision),
                    timeout=CATCH_UP_SECONDS,
                )
        except TimeoutError:
            raise StoreUnavailableError(
                f"the controller's view of the model has not reached revision {fence_revision} "
                f"after {CATCH_UP_SECONDS}s; the store watch may be down"
            ) from None

    # -- writing ------------------------------------------------------------------------------

    async def write(self, operation: Callable[[Rules], T]) -> tuple[T, WriteResult]:
        """Run ``operation`` on the catalog and store its changes in one transaction.

        ``operation`` may raise :class:`~tether.model.ModelError`; nothing is stored then
        and the catalog is as before.
        """
        for _ in range(MAX_ATTEMPTS):
            async with self._lock:
                self.catalog.begin()
                try:
                    result = operation(self.rules)
                    changes = self.catalog.changes()
                    if not changes:
                        self.catalog.commit()
                        return result, WriteResult(self.catalog.fence_revision, [])
                    outcome = await self.store.txn(
                        [Compare.mod_revision(FENCE, self.catalog.fence_revision)],
                        change_ops(changes),
                        [Get(FENCE)],
                    )
                except BaseException:
                    self.catalog.rollback()
                    raise
                if outcome.succeeded:
                    self.catalog.commit()
                    self.catalog.fence_revision = outcome.revision
                    for change in changes:
                        if change.after is None:
                            where = (change.kind, change.id)
                            self.catalog.mod_revisions.pop(where, None)
                            # an older put of it may still be on its way through the watch:
                            # it must not bring the object back
                            self._tombstones[where] = outcome.revision
                        else:
                            self.catalog.mod_revisions[(change.kind, change.id)] = outcome.revision
                    self._bump()
                    return result, WriteResult(outcome.revision, changes)
                self.catalog.rollback()
                fence = outcome.reads[0][0].mod_revision if outcome.reads[0] else 0
            await self._catch_up(fence)
        raise ConflictError("the model kept changing under this request; try again", None)

    # -- reading ------------------------------------------------------------------------------

    def objects(self, kind: str) -> list[Resource]:
        return list(self.catalog.objects[kind].values())


def change_ops(changes: list[Change]) -> list[Op]:
    """The store operations that write ``changes``: each object as JSON, then the fence."""
    ops: list[Op] = []
    for change in changes:
        key = object_key(change.kind, change.id)
        if change.after is None:
            ops.append(Delete(key))
        else:
            ops.append(Put(key, change.after.__pydantic_serializer__.to_json(change.after)))
    ops.append(Put(FENCE, b""))
    return ops
