"""Prometheus metrics: API requests and latencies, store revision, objects per kind, and
the MAC inventory (claims, locations, moves, conflicts, damped MACs, claims waiting)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tether.service.inventory import MacInventory
from tether.service.models import ModelService

__all__ = ["Metrics"]


class _ModelCollector(Collector):
    def __init__(self, service: ModelService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        objects = GaugeMetricFamily("tether_objects", "Objects in the model", labels=["kind"])
        for kind in self.service.catalog.objects:
            objects.add_metric([kind], self.service.catalog.count(kind))
        yield objects
        yield GaugeMetricFamily(
            "tether_model_revision",
            "Store revision of the newest model change the controller has applied",
            value=self.service.catalog.fence_revision,
        )


class _InventoryCollector(Collector):
    def __init__(self, inventory: MacInventory) -> None:
        self.inventory = inventory

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        counters = self.inventory.counters()
        yield GaugeMetricFamily(
            "tether_mac_claims", "Live MAC claims in the inventory", value=counters.claims
        )
        yield GaugeMetricFamily(
            "tether_mac_locations",
            "MACs with a reconciled location",
            value=sum(len(self.inventory.located(n)) for n in list(self.inventory.networks())),
        )
        yield CounterMetricFamily(
            "tether_mac_moves", "MAC location changes from one device to another", counters.moves
        )
        yield CounterMetricFamily(
            "tether_mac_conflicts",
            "Reconciliations among disagreeing claims (several masters, or none)",
            counters.conflicts,
        )
        yield GaugeMetricFamily(
            "tether_mac_damped", "MACs held by mobility damping", value=counters.damped
        )
        yield GaugeMetricFamily(
            "tether_mac_pending_claims",
            "Collected claims waiting in a batch",
            value=self.inventory.pending(),
        )


class Metrics:
    """One registry per app (several apps can live in one test process)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "tether_api_requests",
            "API requests",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "tether_api_request_seconds",
            "API request latency",
            ["method", "route"],
            registry=self.registry,
        )

    def watch_model(self, service: ModelService) -> None:
        self.registry.register(_ModelCollector(service))

    def watch_inventory(self, inventory: MacInventory) -> None:
        self.registry.register(_InventoryCollector(inventory))

    def middleware(self, app: ASGIApp) -> ASGIApp:
        metrics = self

        async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] != "http":
                await app(scope, receive, send)
                return
            started = time.perf_counter()
            status = {"code": 500}

            async def capture(message: Message) -> None:
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, capture)
            finally:
                route: Any = scope.get("route")
                path = getattr(route, "path", "unmatched")
                metrics.requests.labels(scope["method"], path, str(status["code"])).inc()
                metrics.latency.labels(scope["method"], path).observe(time.perf_counter() - started)

        return wrapped
