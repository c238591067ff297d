"""Chassis reports in, port and chassis status out.

``PUT /v1/chassis/{ref}/report`` stores what a hypervisor agent last applied
(:class:`~tether.model.reports.ChassisReport`) beside the model, without the fence: a report
is the agent's word, not a model change. The port and chassis endpoints show the status
derived from it (:func:`~tether.model.reports.port_status`), read when they answer.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.

import asyncio
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import ValidationError

from tether.model import InvalidError, NotFoundError
from tether.model.reports import ChassisReport, chassis_status, port_status
from tether.model.resources import Chassis, Port, Status
from tether.service.keys import CHASSIS_REPORTS, object_key, report_key
from tether.service.models import ModelService
from tether.store import Compare, CompareOp, CompareTarget, Delete, Put, Store, StoreError

__all__ = [
    "all_reports",
    "chassis_statuses",
    "forget_report",
    "port_statuses",
    "report_errors",
    "router",
    "where_bound",
]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")


def _models(request: Request) -> ModelService:
    service: ModelService = request.app.state.models
    return service


@router.put("/chassis/{ref}/report", response_model=Chassis, tags=["chassis"])
async def put_report(request: Request, ref: str, body: ChassisReport) -> Any:
    """What the chassis's agent applied last: the store revision of the model its flows
    came from, its ports that are realized or in error, and its last sync error."""
    service = _models(request)
    async with service.reading():
        chassis = service.catalog.resolve(Chassis, ref, field="chassis")
    store: Store = request.app.state.store
    if body.revision > await store.revision():
        raise InvalidError(f"revision {body.revision} is ahead of the store", "revision")
    exists = Compare(object_key("chassis", chassis.id), CompareTarget.CREATE, CompareOp.GREATER, 0)
    stored = await store.txn(
        [exists], [Put(report_key(chassis.id), body.model_dump_json().encode())]
    )
    if not stored.succeeded:  # deleted since it was resolved
        raise NotFoundError(f"no chassis named or with id {ref!r}", "chassis")
    return chassis.model_copy(update={"status": chassis_status(body)})


@router.get("/chassis/{ref}/report", response_model=ChassisReport, tags=["chassis"])
async def get_report(request: Request, ref: str) -> Any:
    service = _models(request)
    async with service.reading():
        chassis = service.catalog.resolve(Chassis, ref, field="chassis")
    found = await _reports(request.app.state.store, [chassis.id])
    if chassis.id not in found:
        raise NotFoundError(f"chassis {chassis.name} has not reported yet", "chassis")
    return found[chassis.id]


async def forget_report(store: Store, chassis_id: str) -> None:
    """Drop a deleted chassis's report (a failure only leaves a key nobody reads)."""
    try:
        await store.txn((), [Delete(report_key(chassis_id))])
    except StoreError as exc:
        log.warning("the report of deleted chassis %s stays in the store: %s", chassis_id, exc)


@dataclass(frozen=True, slots=True)
class Bound:
    """What a port's status depends on, read from the catalog."""

    port: Port
    chassis: Chassis | None
    changed_at: int
    """The newest store revision of the port and of its network."""


def where_bound(service: ModelService, ports: Iterable[Port]) -> list[Bound]:
    """Call under ``service.reading()``."""
    catalog = service.catalog
    found = []
    for port in ports:
        chassis = None
        if port.chassis:
            holder = catalog.holder("name", "chassis", "", port.chassis)
            if holder is not None:
                chassis = catalog.get(Chassis, holder[1])
        changed_at = max(
            catalog.mod_revisions.get(("ports", port.id), 0),
            catalog.mod_revisions.get(("networks", port.network), 0),
        )
        found.append(Bound(port, chassis, changed_at))
    return found


async def port_statuses(store: Store, bound: list[Bound]) -> list[Status]:
    """The status each port's chassis's report gives it."""
    reports = await _reports(store, {b.chassis.id for b in bound if b.chassis is not None})
    return [
        port_status(
            b.port, b.chassis, reports.get(b.chassis.id) if b.chassis else None, b.changed_at
        )
        for b in bound
    ]


async def chassis_statuses(store: Store, chassis: list[Chassis]) -> list[Status]:
    """The status each chassis's agent's report gives it."""
    reports = await _reports(store, [c.id for c in chassis])
    return [chassis_status(reports.get(c.id)) for c in chassis]


async def all_reports(store: Store) -> dict[str, ChassisReport]:
    """Every chassis's report, by chassis id."""
    listing = await store.range(CHASSIS_REPORTS)
    reports = {}
    for kv in listing.kvs:
        chassis_id = kv.key.removeprefix(CHASSIS_REPORTS)
        if (report := _parse(chassis_id, kv.value)) is not None:
            reports[chassis_id] = report
    return reports


def report_errors(service: ModelService, reports: dict[str, ChassisReport]) -> list[dict[str, str]]:
    """The chassis and ports in error by their agents' reports (for ``/v1/status``); call
    under ``service.reading()``."""
    catalog = service.catalog
    errors = []
    for chassis_id, report in sorted(reports.items()):
        chassis = catalog.objects["chassis"].get(chassis_id)
        if chassis is None:
            continue
        if report.error:
            errors.append(_error("chassis", chassis.id, chassis.name, report.error))
        ports = [
            catalog.objects["ports"].get(i) for i, p in report.ports.items() if p.state == "error"
        ]
        for b in where_bound(service, [p for p in ports if isinstance(p, Port)]):
            status = port_status(b.port, b.chassis, report, b.changed_at)
            if status.state == "error" and b.chassis is not None and b.chassis.id == chassis_id:
                errors.append(_error("ports", b.port.id, b.port.name, status.message))
    return errors


def _error(kind: str, obj_id: str, name: str, message: str) -> dict[str, str]:
    return {"kind": kind, "id": obj_id, "name": name, "message": message}


async def _reports(store: Store, chassis_ids: Iterable[str]) -> dict[str, ChassisReport]:
    ids = sorted(set(chassis_ids))
    found = await asyncio.gather(*(store.get(report_key(i)) for i in ids))
    reports = {}
    for chassis_id, kv in zip(ids, found, strict=True):
        if kv is not None and (report := _parse(chassis_id, kv.value)) is not None:
            reports[chassis_id] = report
    return reports


def _parse(chassis_id: str, value: bytes) -> ChassisReport | None:
    try:
        return ChassisReport.model_validate_json(value)
    except ValidationError:
        log.error("the report of chassis %s cannot be read; ignored", chassis_id)
        return None
