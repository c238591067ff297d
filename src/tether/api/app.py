"""The REST application: ``create_app(store_url)`` wires store, model service and routes.

Routes: ``/v1/{networks,ports,routers,chassis,gateways}``, ``/v1/gateways/{ref}/bindings``,
``/v1/bulk``, ``/v1/macs`` (the MAC inventory), ``/v1/status``, ``/v1/watch``, ``/metrics``,
``/healthz``; OpenAPI at ``/openapi.json`` and ``/docs``.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

import tether
from tether.api import macs, reports, resources, watch
from tether.api.errors import install_error_handlers
from tether.api.metrics import Metrics
from tether.api.reports import DEFAULT_AGENT_TIMEOUT, all_present, all_reports, report_errors
from tether.api.runtime import gateway_statuses
from tether.model.reports import ChassisReport
from tether.ovsdb import TlsFiles
from tether.service.ids import RandomIds
from tether.service.inventory import InventorySettings, MacInventory
from tether.service.models import ModelService
from tether.store import open_store
from tether.vtep.controller import PhysicalController

__all__ = ["create_app"]


def create_app(
    store_url: str,
    *,
    ovsdb_tls: TlsFiles | None = None,
    inventory: InventorySettings | None = None,
    agent_timeout: int = DEFAULT_AGENT_TIMEOUT,
) -> FastAPI:
    metrics = Metrics()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = await open_store(store_url)
        models = ModelService(store, RandomIds())
        await models.start()
        macs = MacInventory(models, store, inventory)
        await macs.start()
        physical = PhysicalController(models, store, macs, tls=ovsdb_tls)
        await physical.start()
        metrics.watch_model(models)
        metrics.watch_inventory(macs)
        app.state.store = store
        app.state.models = models
        app.state.macs = macs
        app.state.physical = physical
        app.state.ovsdb_tls = ovsdb_tls
        try:
            yield
        finally:
            await physical.stop()
            await macs.stop()
            await models.stop()
            await store.close()

    app = FastAPI(
        title="tether",
        version=tether.__version__,
        description="Network virtualization controller for hardware VTEPs and Open vSwitch.",
        lifespan=lifespan,
    )
    app.state.closing = asyncio.Event()  # set as the server shuts down: watch streams end
    app.state.agent_timeout = agent_timeout
    install_error_handlers(app)
    app.include_router(resources.router)
    app.include_router(reports.router)
    app.include_router(macs.router)
    app.include_router(watch.router)
    app.add_middleware(_MetricsMiddleware, metrics=metrics)

    @app.get("/healthz", tags=["operations"])
    async def healthz(request: Request) -> dict[str, Any]:
        store = request.app.state.store
        return {"ok": True, "revision": await store.revision()}

    @app.get("/metrics", tags=["operations"], response_class=Response)
    async def prometheus(request: Request) -> Response:
        async with request.app.state.models.reading():
            text = generate_latest(metrics.registry)
        return Response(text, media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/status", tags=["operations"])
    async def status(request: Request) -> dict[str, Any]:
        models: ModelService = request.app.state.models
        store = request.app.state.store
        # before the model lock: writes go on
        reports, alive = await asyncio.gather(all_reports(store), all_present(store))
        async with models.reading():
            answer = await _status(models, store, reports, alive)
        answer["macs"] = _inventory_status(request.app.state.macs)
        return answer

    return app


async def _status(
    models: ModelService, store: Any, reports: dict[str, ChassisReport], alive: set[str]
) -> dict[str, Any]:
    errors = [
        {"kind": kind, "id": obj.id, "name": obj.name, "message": obj.status.message}
        for kind, objects in models.catalog.objects.items()
        for obj in objects.values()
        if obj.status.state == "error"
    ]
    errors += report_errors(models, reports, alive)
    gateways = await gateway_statuses(store)
    errors += [
        {
            "kind": "gateways",
            "id": gid,
            "name": runtime.get("gateway", ""),
            "message": runtime.get("last_error", ""),
        }
        for gid, runtime in gateways.items()
        if runtime.get("state") == "error"
    ]
    return {
        "version": tether.__version__,
        "store": {"backend": store.name, "revision": await store.revision()},
        "model_revision": models.catalog.fence_revision,
        "objects": {kind: models.catalog.count(kind) for kind in models.catalog.objects},
        "gateways": sorted(gateways.values(), key=lambda g: str(g.get("gateway", ""))),
        "errors": errors,
    }


def _inventory_status(macs: MacInventory) -> dict[str, Any]:
    counters = macs.counters()
    return {
        "revision": macs.revision,
        "pending": macs.pending(),
        "claims": counters.claims,
        "located": sum(len(macs.located(n)) for n in list(macs.networks())),
        "moves": counters.moves,
        "conflicts": counters.conflicts,
        "damped": counters.damped,
    }


class _MetricsMiddleware:
    def __init__(self, app: Any, metrics: Metrics) -> None:
        self.handler = metrics.middleware(app)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.handler(scope, receive, send)
