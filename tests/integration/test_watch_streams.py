"""The watch endpoint's streams end cleanly: a client that goes away leaves no task or store
watch behind, and a server that begins to shut down ends every stream at once (its clients
resume against the next server)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import uvicorn

from tests.daemons import free_port
from tether.api.app import create_app

pytestmark = pytest.mark.anyio


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[tuple[str, asyncio.Event]]:
    """``tether serve``'s application on this test's event loop; (URL, its closing event)."""
    app = create_app(f"sqlite:{tmp_path / 'tether.db'}")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    task = asyncio.get_running_loop().create_task(server.serve())
    while not server.started:
        assert not task.done(), "the server did not start"
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app.state.closing
    finally:
        server.should_exit = True
        await task


def _stream_tasks() -> list[asyncio.Task[object]]:
    return [
        task
        for task in asyncio.all_tasks()
        if not task.done() and "async_generator_asend" in repr(task.get_coro())
    ]


async def test_a_client_that_goes_away_leaves_nothing_behind(
    served: tuple[str, asyncio.Event],
) -> None:
    url, _closing = served
    for _ in range(3):
        async with (
            httpx.AsyncClient(base_url=url) as http,
            http.stream("GET", "/v1/watch", params={"chassis": "hv1"}) as reply,
        ):
            lines = reply.aiter_lines()
            assert '"snapshot":true' in await anext(lines)
            assert '"synced":true' in await anext(lines)
        await asyncio.sleep(0.3)
    gc.collect()
    assert not _stream_tasks(), _stream_tasks()


async def test_streams_end_when_the_server_begins_to_shut_down(
    served: tuple[str, asyncio.Event],
) -> None:
    url, closing = served
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        http.stream("GET", "/v1/watch", params={"chassis": "hv1"}) as reply,
    ):
        lines = reply.aiter_lines()
        await anext(lines)
        await anext(lines)
        closing.set()
        async with asyncio.timeout(5):  # the stream ends by itself
            rest = [line async for line in lines]
    assert all('"events"' not in line for line in rest), rest
