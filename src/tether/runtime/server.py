"""Running ``tether serve``: logging, the API application and uvicorn."""

from __future__ import annotations

import gc
import logging

import uvicorn

from tether.api.app import create_app
from tether.runtime.settings import Settings

__all__ = ["serve"]


def serve(settings: Settings) -> None:
    """Serve the REST API until SIGINT/SIGTERM."""
    # The controller keeps the whole model in memory: with the default thresholds the
    # cyclic GC rescans it every few thousand allocations (a third of a 10,000-object bulk
    # request). Collect far less often; the model itself holds no reference cycles.
    gc.set_threshold(200_000, 50, 1000)
    logging.basicConfig(
        level=settings.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    config = uvicorn.Config(
        create_app(settings.store),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=settings.log_level == "debug",
    )
    uvicorn.Server(config).run()
