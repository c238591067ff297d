"""The model service and the embedded store under failure: no dirty reads, no lost wake-ups,
no lease revived after expiry, one process per store file."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from tether.model.resources import NetworkCreate
from tether.service.ids import RandomIds
from tether.service.models import ModelService
from tether.store import (
    Compare,
    LeaseNotFoundError,
    Op,
    StoreError,
    StoreUnavailableError,
    TxnResult,
)
from tether.store.sqlite import SqliteStore

pytestmark = pytest.mark.anyio


class StallingStore(SqliteStore):
    """A store whose next transaction waits for a signal and then fails."""

    stall: asyncio.Event | None = None
    entered: asyncio.Event | None = None

    async def txn(
        self, compares: Sequence[Compare], success: Sequence[Op], failure: Sequence[Op] = ()
    ) -> TxnResult:
        if self.stall is not None and self.entered is not None:
            self.entered.set()
            await self.stall.wait()
            raise StoreUnavailableError("disk unplugged")
        return await super().txn(compares, success, failure)


async def test_readers_never_see_a_write_that_is_not_stored(tmp_path: Path) -> None:
    store = await StallingStore.open(str(tmp_path / "db"))
    service = ModelService(store, RandomIds())
    await service.start()
    try:
        store.stall, store.entered = asyncio.Event(), asyncio.Event()
        writer = asyncio.create_task(
            service.write(lambda r: r.create_network(NetworkCreate(name="ghost")))
        )
        await store.entered.wait()  # the rules ran; the transaction hangs

        async def read_names() -> set[str]:
            async with service.reading():
                return {n.name for n in service.objects("networks")}

        reader = asyncio.create_task(read_names())
        await asyncio.sleep(0.05)
        assert not reader.done(), "a reader got in while a write was in flight"
        store.stall.set()
        with pytest.raises(StoreUnavailableError):
            await writer
        assert await reader == set()
    finally:
        await service.stop()
        await store.close()


class SlowCommitStore(SqliteStore):
    """Every write spends 0.2 s in the store thread before it commits."""

    def _write(self, body: Any) -> Any:
        time.sleep(0.2)
        return super()._write(body)


async def test_a_cancelled_writer_still_wakes_watchers(tmp_path: Path) -> None:
    store = await SlowCommitStore.open(str(tmp_path / "db"))
    try:
        watch = store.watch("/k/", start_revision=await store.revision() + 1)
        first = asyncio.ensure_future(anext(watch))
        write = asyncio.create_task(store.put("/k/a", b"1"))
        await asyncio.sleep(0.05)  # the store thread is inside the write now
        write.cancel()  # the commit goes on in the store thread
        batch = await asyncio.wait_for(first, 5)
        while not batch.events:
            batch = await asyncio.wait_for(anext(watch), 5)
        assert batch.events[0].kv.key == "/k/a"
        await watch.aclose()  # type: ignore[attr-defined]
    finally:
        await store.close()


async def test_an_expired_lease_cannot_be_revived(tmp_path: Path) -> None:
    now = [1000.0]
    store = await SqliteStore.open(str(tmp_path / "db"), clock=lambda: now[0], expiry_interval=3600)
    try:
        lease = await store.lease_grant(10)
        await store.put("/l/a", b"", lease=lease)
        now[0] += 9
        assert await store.lease_keepalive(lease) == 10
        now[0] += 9  # kept alive: not expired at 1018
        assert await store.expire_leases() == 0
        now[0] += 11
        with pytest.raises(LeaseNotFoundError):
            await store.lease_keepalive(lease)  # past its deadline: etcd refuses too
        assert await store.expire_leases() == 1
        assert await store.get("/l/a") is None
    finally:
        await store.close()


async def test_one_process_per_store_file(tmp_path: Path) -> None:
    first = await SqliteStore.open(str(tmp_path / "db"))
    try:
        with pytest.raises(StoreError, match="in use"):
            await SqliteStore.open(str(tmp_path / "db"))
    finally:
        await first.close()
    again = await SqliteStore.open(str(tmp_path / "db"))
    await again.close()
