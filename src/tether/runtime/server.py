"""Running ``tether serve``: logging, the API application and uvicorn."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from types import FrameType

import uvicorn

from tether.api.app import create_app
from tether.runtime.settings import Settings, tls_files
from tether.store import open_store

__all__ = ["serve"]

GRACE_SECONDS = 5
"""How long a stopping server waits for requests still running."""


async def _probe_store(url: str) -> None:
    """Open and close the store once: raises StoreError when it cannot be used."""
    store = await open_store(url)
    await store.close()


def serve(settings: Settings) -> None:
    """Serve the REST API until SIGINT/SIGTERM."""
    # The controller keeps the whole model in memory: with the default thresholds the
    # cyclic GC rescans it every few thousand allocations (a third of a 10,000-object bulk
    # request). Collect far less often; the model itself holds no reference cycles.
    gc.set_threshold(200_000, 50, 1000)
    asyncio.run(_probe_store(settings.store))  # fail with one line, not a server traceback
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    app = create_app(
        settings.store,
        ovsdb_tls=tls_files(settings),
        inventory=settings.inventory(),
        agent_timeout=int(settings.agent_timeout),
    )
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
        timeout_graceful_shutdown=GRACE_SECONDS,
    )
    _Server(config, app.state.closing).run()


class _Server(uvicorn.Server):
    """uvicorn, telling the application when it starts to shut down: the watch streams
    (agents, other controllers) end at once, their clients resume against the next server,
    and the shutdown does not wait for connections that never finish by themselves."""

    def __init__(self, config: uvicorn.Config, closing: asyncio.Event) -> None:
        super().__init__(config)
        self.closing = closing

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        with contextlib.suppress(RuntimeError):  # no loop running: nothing streams yet
            asyncio.get_running_loop().call_soon_threadsafe(self.closing.set)
        super().handle_exit(sig, frame)
