"""The store contract: every backend (SQLite, a real etcd) must pass every test here."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from tether.store import (
    CompactedError,
    Compare,
    CompareOp,
    CompareTarget,
    Delete,
    EventType,
    Get,
    LeaseNotFoundError,
    Put,
    Store,
    StoreError,
    WatchBatch,
)

pytestmark = pytest.mark.anyio


async def next_batch(it: AsyncIterator[WatchBatch], timeout: float = 5.0) -> WatchBatch:
    return await asyncio.wait_for(anext(it), timeout)


async def events_until(
    it: AsyncIterator[WatchBatch], count: int, timeout: float = 5.0
) -> list[tuple[str, str, int]]:
    """Collect (type, key, mod_revision) of the next ``count`` events, skipping progress."""
    seen: list[tuple[str, str, int]] = []
    while len(seen) < count:
        batch = await next_batch(it, timeout)
        for event in batch.events:
            assert event.kv.mod_revision <= batch.revision
            seen.append((event.type.value, event.kv.key, event.kv.mod_revision))
    return seen


async def test_put_get_tracks_revisions_and_versions(store: Store) -> None:
    r1 = await store.put("/t/a", b"1")
    r2 = await store.put("/t/a", b"2")
    assert r2 == r1 + 1
    kv = await store.get("/t/a")
    assert kv is not None
    assert (kv.value, kv.create_revision, kv.mod_revision, kv.version) == (b"2", r1, r2, 2)
    assert await store.get("/t/missing") is None
    assert await store.revision() == r2


async def test_one_transaction_is_one_revision(store: Store) -> None:
    before = await store.revision()
    result = await store.txn((), [Put("/t/x", b"x"), Put("/t/y", b"y"), Put("/t/z", b"z")])
    assert result.succeeded
    assert result.revision == before + 1
    revisions = {(await store.get(k)).mod_revision for k in ("/t/x", "/t/y", "/t/z")}  # type: ignore[union-attr]
    assert revisions == {result.revision}


async def test_range_is_ordered_prefix_bounded_and_paginates(store: Store) -> None:
    await store.txn((), [Put(f"/t/k{i:02d}", str(i).encode()) for i in range(25)])
    await store.put("/t/l", b"outside")
    await store.put("/tz", b"outside too")
    everything = await store.range("/t/k")
    assert [kv.key for kv in everything.kvs] == [f"/t/k{i:02d}" for i in range(25)]
    assert not everything.more
    pages, after = [], ""
    while True:
        page = await store.range("/t/k", start_after=after, limit=10)
        pages.append([kv.key for kv in page.kvs])
        if not page.more:
            break
        after = page.kvs[-1].key
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [key for page in pages for key in page] == [kv.key for kv in everything.kvs]


async def test_delete_key_and_prefix(store: Store) -> None:
    await store.txn((), [Put("/t/d/1", b""), Put("/t/d/2", b""), Put("/t/e", b"")])
    revision = await store.revision()
    assert await store.delete("/t/missing") == 0
    assert await store.revision() == revision, "deleting nothing must not create a revision"
    assert await store.delete("/t/d/", prefix=True) == 2
    assert await store.revision() == revision + 1
    assert [kv.key for kv in (await store.range("/t/")).kvs] == ["/t/e"]
    kv = await store.put("/t/d/1", b"again")
    again = await store.get("/t/d/1")
    assert again is not None and again.version == 1 and again.create_revision == kv


async def test_compare_and_swap_on_mod_revision(store: Store) -> None:
    rev = await store.put("/t/cas", b"v1")
    ok = await store.txn([Compare.mod_revision("/t/cas", rev)], [Put("/t/cas", b"v2")])
    assert ok.succeeded
    stale = await store.txn(
        [Compare.mod_revision("/t/cas", rev)], [Put("/t/cas", b"v3")], [Get("/t/cas")]
    )
    assert not stale.succeeded
    assert stale.reads[0][0].value == b"v2", "the failure branch reads the current value"
    kv = await store.get("/t/cas")
    assert kv is not None and kv.value == b"v2"


async def test_create_only_if_absent(store: Store) -> None:
    first = await store.txn([Compare.absent("/t/name")], [Put("/t/name", b"a")])
    second = await store.txn([Compare.absent("/t/name")], [Put("/t/name", b"b")])
    assert first.succeeded and not second.succeeded
    kv = await store.get("/t/name")
    assert kv is not None and kv.value == b"a"


async def test_compare_on_value_and_version(store: Store) -> None:
    await store.put("/t/v", b"hello")
    hit = Compare("/t/v", CompareTarget.VALUE, CompareOp.EQUAL, b"hello")
    miss = Compare("/t/v", CompareTarget.VERSION, CompareOp.GREATER, 1)
    assert (await store.txn([hit], [])).succeeded
    assert not (await store.txn([miss], [])).succeeded
    assert (
        await store.txn([Compare("/t/v", CompareTarget.VERSION, CompareOp.LESS, 2)], [])
    ).succeeded


async def test_failed_transaction_changes_nothing(store: Store) -> None:
    await store.put("/t/keep", b"old")
    revision = await store.revision()
    result = await store.txn(
        [Compare.absent("/t/keep")], [Put("/t/keep", b"new"), Put("/t/other", b"x")]
    )
    assert not result.succeeded
    assert await store.revision() == revision
    assert await store.get("/t/other") is None


async def test_transaction_mixes_puts_deletes_and_reads(store: Store) -> None:
    await store.put("/t/old", b"1")
    result = await store.txn((), [Delete("/t/old"), Put("/t/new", b"2"), Get("/t/", prefix=True)])
    assert [kv.key for kv in result.reads[0]] == ["/t/new"]


async def test_duplicate_key_in_one_transaction_is_refused(store: Store) -> None:
    with pytest.raises(StoreError):
        await store.txn((), [Put("/t/dup", b"1"), Put("/t/dup", b"2")])
    assert await store.get("/t/dup") is None


async def test_concurrent_compare_and_swap_never_loses_an_update(store: Store) -> None:
    await store.put("/t/counter", b"0")

    async def increment() -> None:
        while True:
            kv = await store.get("/t/counter")
            assert kv is not None
            new = str(int(kv.value) + 1).encode()
            if (
                await store.txn([Compare.mod_revision(kv.key, kv.mod_revision)], [Put(kv.key, new)])
            ).succeeded:
                return

    await asyncio.gather(*(increment() for _ in range(20)))
    kv = await store.get("/t/counter")
    assert kv is not None and kv.value == b"20"


async def test_watch_streams_puts_and_deletes_in_revision_order(store: Store) -> None:
    start = await store.revision() + 1
    watch = store.watch("/t/w/", start_revision=start)
    try:
        r1 = await store.put("/t/w/a", b"1")
        await store.put("/t/elsewhere", b"ignored")
        r2 = (await store.txn((), [Put("/t/w/b", b"2"), Put("/t/w/c", b"3")])).revision
        await store.delete("/t/w/a")
        seen = await events_until(watch, 4)
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
    assert seen[0] == ("put", "/t/w/a", r1)
    assert sorted(seen[1:3]) == [("put", "/t/w/b", r2), ("put", "/t/w/c", r2)]
    assert seen[3][:2] == ("delete", "/t/w/a") and seen[3][2] > r2


async def test_a_watch_resumed_from_a_revision_misses_nothing(store: Store) -> None:
    first = await store.put("/t/r/0", b"")
    for i in range(1, 30):
        await store.put(f"/t/r/{i}", b"")
    watch = store.watch("/t/r/", start_revision=first + 10)
    try:
        seen = await events_until(watch, 20)
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
    assert [key for _, key, _ in seen] == [f"/t/r/{i}" for i in range(10, 30)]


async def test_a_watch_says_when_it_has_caught_up(store: Store) -> None:
    first = await store.put("/t/p/a", b"")
    current = await store.put("/t/p/b", b"")
    watch = store.watch("/t/p/", start_revision=first)
    try:
        progress = None
        for _ in range(5):
            batch = await next_batch(watch)
            if not batch.events:
                progress = batch
                break
        assert progress is not None, "no progress notification after history"
        assert progress.revision >= current
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_watch_from_a_compacted_revision_fails(store: Store) -> None:
    first = await store.put("/t/c", b"1")
    await store.put("/t/c", b"2")
    latest = await store.put("/t/c", b"3")
    await store.compact(latest - 1)
    with pytest.raises(CompactedError):
        watch = store.watch("/t/", start_revision=first)
        try:
            await next_batch(watch)
        finally:
            with contextlib.suppress(Exception):
                await watch.aclose()  # type: ignore[attr-defined]
    watch = store.watch("/t/", start_revision=latest)
    try:
        assert (await events_until(watch, 1))[0][2] == latest
    finally:
        await watch.aclose()  # type: ignore[attr-defined]


async def test_lease_keys_vanish_when_the_lease_is_revoked(store: Store) -> None:
    lease = await store.lease_grant(30)
    await store.put("/t/lease/a", b"", lease=lease)
    await store.put("/t/lease/b", b"", lease=lease)
    await store.put("/t/lease/keep", b"")
    assert (await store.get("/t/lease/a")).lease == lease  # type: ignore[union-attr]
    await store.lease_revoke(lease)
    assert [kv.key for kv in (await store.range("/t/lease/")).kvs] == ["/t/lease/keep"]
    with pytest.raises(LeaseNotFoundError):
        await store.lease_keepalive(lease)


async def test_an_expired_lease_deletes_its_keys_and_keepalive_prevents_it(store: Store) -> None:
    kept = await store.lease_grant(2)
    dropped = await store.lease_grant(2)
    await store.put("/t/exp/kept", b"", lease=kept)
    await store.put("/t/exp/dropped", b"", lease=dropped)
    watch = store.watch("/t/exp/", start_revision=await store.revision() + 1)
    try:
        deadline = asyncio.get_running_loop().time() + 10
        while await store.get("/t/exp/dropped") is not None:
            assert asyncio.get_running_loop().time() < deadline, "lease never expired"
            await store.lease_keepalive(kept)
            await asyncio.sleep(0.3)
        assert await store.get("/t/exp/kept") is not None
        assert ("delete", "/t/exp/dropped") in [(t, k) for t, k, _ in await events_until(watch, 1)]
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
    with pytest.raises(LeaseNotFoundError):
        await store.lease_keepalive(dropped)


async def test_put_with_an_unknown_lease_is_refused(store: Store) -> None:
    with pytest.raises(LeaseNotFoundError):
        await store.put("/t/orphan", b"", lease=987654321)
    assert await store.get("/t/orphan") is None


async def test_event_types_carry_values(store: Store) -> None:
    start = await store.put("/t/ev", b"payload")
    await store.delete("/t/ev")
    watch = store.watch("/t/ev", start_revision=start)
    try:
        batch = await next_batch(watch)
        while not batch.events:
            batch = await next_batch(watch)
        assert batch.events[0].type is EventType.PUT and batch.events[0].kv.value == b"payload"
    finally:
        await watch.aclose()  # type: ignore[attr-defined]
