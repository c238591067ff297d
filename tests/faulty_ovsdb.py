"""A misbehaving switch for tests: a proxy to a real ovsdb-server that mangles ``transact``.

Everything else passes through untouched, so the client connects, reads the schema and
monitors normally; then each transaction meets the fault: an error reply, an op refused by
the switch, a dropped connection, or bytes that are not JSON. Runs its own event loop in a
thread so it can sit beside a server running in another.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tether.ovsdb.framing import JsonSplitter

FAULTS = ("error", "refuse", "drop", "garbage")


def _fault_reply(fault: str, message: dict[str, Any]) -> bytes | None:
    if fault == "error":
        error = {"error": "resources exhausted", "details": "the switch's table is full"}
        return orjson.dumps({"id": message["id"], "result": None, "error": error})
    if fault == "refuse" or fault.startswith("refuse-once-"):
        count = len(message["params"]) - 1
        refused = {"error": "constraint violation", "details": "the switch refuses this row"}
        return orjson.dumps(
            {"id": message["id"], "result": [refused] + [{}] * (count - 1), "error": None}
        )
    if fault == "garbage":
        return b'{"id": ]]] this is not json'
    return None  # drop


def _passes(fault: str, counter: list[int]) -> bool:
    """``refuse-once-N``: only the N-th transaction (over all sessions) meets the fault."""
    if not fault.startswith("refuse-once-"):
        return False
    counter[0] += 1
    return counter[0] != int(fault.rsplit("-", 1)[1])


async def _serve(path: Path, upstream: Path, fault: str, stop: asyncio.Event) -> None:
    counter = [0]

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(65536):
                writer.write(data)

    handlers: set[asyncio.Task[None]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        task.add_done_callback(handlers.discard)
        up_reader, up_writer = await asyncio.open_unix_connection(str(upstream))
        downstream = asyncio.create_task(pump(up_reader, writer))
        splitter = JsonSplitter()
        try:
            while data := await reader.read(65536):
                for message in splitter.feed(data):
                    if message.get("method") != "transact" or _passes(fault, counter):
                        up_writer.write(orjson.dumps(message))
                        continue
                    reply = _fault_reply(fault, message)
                    if reply is None:
                        return
                    writer.write(reply)
        except ConnectionError:
            pass
        except asyncio.CancelledError:
            pass
        finally:
            downstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await downstream
            for stream in (up_writer, writer):
                stream.close()
                with contextlib.suppress(ConnectionError):
                    await stream.wait_closed()

    server = await asyncio.start_unix_server(handle, str(path))
    await stop.wait()
    server.close()
    for task in list(handlers):  # sessions still open: end them before the loop closes
        task.cancel()
    await asyncio.gather(*handlers, return_exceptions=True)
    await server.wait_closed()


@contextlib.contextmanager
def faulty_switch(path: Path, upstream: Path, fault: str) -> Iterator[str]:
    """Serve the proxy at ``unix:path`` while the block runs."""
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        task = loop.create_task(_serve(path, upstream, fault, stop))
        loop.call_soon(started.set)
        loop.run_until_complete(task)
        loop.run_until_complete(loop.shutdown_asyncgens())
        for pending in asyncio.all_tasks(loop):
            pending.cancel()
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    started.wait(5)
    try:
        yield f"unix:{path}"
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
