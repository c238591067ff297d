"""Chassis reports and agent presence in, port and chassis status out.

``PUT /v1/chassis/{ref}/report`` stores what a hypervisor agent last applied
(:class:`~tether.model.reports.ChassisReport`) beside the model, without the fence: a report
is the agent's word, not a model change. The port and chassis endpoints show the status
derived from it (:func:`~tether.model.reports.port_status`), read when they answer.

A report stands while its agent is alive. ``PUT /v1/chassis/{ref}/presence`` (and every
report) keeps the chassis's presence key alive: the key is attached to a store lease of
``agent_timeout`` seconds, which the call refreshes. The first call writes the key; the
next ones only refresh the lease, so a settled fabric's heartbeats write no revision (after
a change of ``agent_timeout``, the next call moves the key to a lease of the new one). When
the agent stops calling, the lease runs out, the key goes, and the chassis and its ports
turn to ``error``. ``DELETE`` ends the presence at once (an agent stopping).
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.

import asyncio
import contextlib
import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, ValidationError

from tether.model import ConflictError, InvalidError, NotFoundError
from tether.model.reports import ChassisReport, chassis_status, port_status
from tether.model.resources import Chassis, Port, Status
from tether.service.keys import (
    CHASSIS_PRESENCE,
    CHASSIS_REPORTS,
    object_key,
    presence_key,
    report_key,
)
from tether.service.models import ModelService
from tether.store import (
    Compare,
    CompareOp,
    CompareTarget,
    Delete,
    Get,
    LeaseNotFoundError,
    Put,
    Store,
    StoreError,
)

__all__ = [
    "Presence",
    "all_present",
    "all_reports",
    "chassis_statuses",
    "forget_report",
    "port_statuses",
    "report_errors",
    "reports_and_presence",
    "router",
    "where_bound",
]

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1")


DEFAULT_AGENT_TIMEOUT = 30
"""Seconds without a heartbeat after which an agent is taken for gone."""
PRESENCE_ATTEMPTS = 4


class Presence(BaseModel):
    chassis: str
    alive: bool
    ttl: int
    """Seconds the presence lasts without another heartbeat (send one every third of it)."""


def _models(request: Request) -> ModelService:
    service: ModelService = request.app.state.models
    return service


def _agent_timeout(request: Request) -> int:
    timeout: int = request.app.state.agent_timeout
    return timeout


async def _resolve(request: Request, ref: str) -> Chassis:
    service = _models(request)
    async with service.reading():
        return service.catalog.resolve(Chassis, ref, field="chassis")


@router.put("/chassis/{ref}/report", response_model=Chassis, tags=["chassis"])
async def put_report(request: Request, ref: str, body: ChassisReport) -> Any:
    """What the chassis's agent applied last: the store revision of the model its flows
    came from, its ports that are realized or in error, and its last sync error."""
    chassis = await _resolve(request, ref)
    store: Store = request.app.state.store
    if body.revision > await store.revision():
        raise InvalidError(f"revision {body.revision} is ahead of the store", "revision")
    stored = await store.txn(
        [_exists(chassis)], [Put(report_key(chassis.id), body.model_dump_json().encode())]
    )
    if not stored.succeeded:  # deleted since it was resolved
        raise NotFoundError(f"no chassis named or with id {ref!r}", "chassis")
    await _keep_present(store, chassis, ref, _agent_timeout(request))  # a report is a heartbeat
    return chassis.model_copy(update={"status": chassis_status(body)})


@router.put("/chassis/{ref}/presence", response_model=Presence, tags=["chassis"])
async def put_presence(request: Request, ref: str) -> Presence:
    """The chassis's agent is alive: its heartbeat, every third of the answer's ``ttl``."""
    chassis = await _resolve(request, ref)
    ttl = _agent_timeout(request)
    await _keep_present(request.app.state.store, chassis, ref, ttl)
    return Presence(chassis=chassis.name, alive=True, ttl=ttl)


@router.delete("/chassis/{ref}/presence", response_model=Presence, tags=["chassis"])
async def delete_presence(request: Request, ref: str) -> Presence:
    """The chassis's agent is stopping: its report no longer stands."""
    chassis = await _resolve(request, ref)
    store: Store = request.app.state.store
    kv = await store.get(presence_key(chassis.id))
    if kv is not None:
        try:
            await store.lease_revoke(kv.lease)  # and its key with it
        except LeaseNotFoundError:  # ran out meanwhile
            await store.txn([Compare.mod_revision(kv.key, kv.mod_revision)], [Delete(kv.key)])
    return Presence(chassis=chassis.name, alive=False, ttl=0)


def _exists(chassis: Chassis) -> Compare:
    return Compare(object_key("chassis", chassis.id), CompareTarget.CREATE, CompareOp.GREATER, 0)


async def _keep_present(store: Store, chassis: Chassis, ref: str, ttl: int) -> None:
    """Refresh the lease of the chassis's presence key, or write the key on a new lease."""
    key = presence_key(chassis.id)
    for _ in range(PRESENCE_ATTEMPTS):
        kv = await store.get(key)
        if kv is not None and kv.lease:
            try:
                if await store.lease_keepalive(kv.lease) == ttl:
                    return
                # granted under another agent_timeout: move the key to a lease of this one
            except LeaseNotFoundError:
                pass  # ran out just now: the key goes with it
        lease = await store.lease_grant(ttl)
        written = await store.txn(
            [_exists(chassis), Compare.mod_revision(key, kv.mod_revision if kv else 0)],
            [Put(key, b"", lease=lease)],
            [Get(object_key("chassis", chassis.id))],
        )
        if written.succeeded:
            if kv is not None and kv.lease:  # the old lease, if any, holds nothing now
                with contextlib.suppress(LeaseNotFoundError):
                    await store.lease_revoke(kv.lease)
            return
        with contextlib.suppress(LeaseNotFoundError):
            await store.lease_revoke(lease)
        if not written.reads[0]:  # deleted since it was resolved
            raise NotFoundError(f"no chassis named or with id {ref!r}", "chassis")
    raise ConflictError(f"the presence of chassis {chassis.name} kept changing; try again", None)


@router.get("/chassis/{ref}/report", response_model=ChassisReport, tags=["chassis"])
async def get_report(request: Request, ref: str) -> Any:
    chassis = await _resolve(request, ref)
    found = await _reports(request.app.state.store, [chassis.id])
    if chassis.id not in found:
        raise NotFoundError(f"chassis {chassis.name} has not reported yet", "chassis")
    return found[chassis.id]


async def forget_report(store: Store, chassis_id: str) -> None:
    """Drop a deleted chassis's report and presence (a failure only leaves keys nobody
    reads; the presence's lease runs out by itself)."""
    try:
        await store.txn((), [Delete(report_key(chassis_id)), Delete(presence_key(chassis_id))])
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
    ids = {b.chassis.id for b in bound if b.chassis is not None}
    reports, alive = await reports_and_presence(store, ids)
    return [
        port_status(
            b.port,
            b.chassis,
            reports.get(b.chassis.id) if b.chassis else None,
            b.changed_at,
            alive=b.chassis is not None and b.chassis.id in alive,
        )
        for b in bound
    ]


async def reports_and_presence(
    store: Store, chassis_ids: Iterable[str]
) -> tuple[dict[str, ChassisReport], set[str]]:
    """The reports of these chassis, and which of their agents are alive."""
    ids = set(chassis_ids)
    reports, alive = await asyncio.gather(_reports(store, ids), _present(store, ids))
    return reports, alive


async def chassis_statuses(store: Store, chassis: list[Chassis]) -> list[Status]:
    """The status each chassis's agent's report gives it."""
    reports, alive = await reports_and_presence(store, [c.id for c in chassis])
    return [chassis_status(reports.get(c.id), alive=c.id in alive) for c in chassis]


async def all_reports(store: Store) -> dict[str, ChassisReport]:
    """Every chassis's report, by chassis id."""
    listing = await store.range(CHASSIS_REPORTS)
    reports = {}
    for kv in listing.kvs:
        chassis_id = kv.key.removeprefix(CHASSIS_REPORTS)
        if (report := _parse(chassis_id, kv.value, kv.mod_revision)) is not None:
            reports[chassis_id] = report
    return reports


async def all_present(store: Store) -> set[str]:
    """The ids of the chassis whose agents are alive."""
    listing = await store.range(CHASSIS_PRESENCE)
    return {kv.key.removeprefix(CHASSIS_PRESENCE) for kv in listing.kvs}


def report_errors(
    service: ModelService, reports: dict[str, ChassisReport], alive: set[str]
) -> list[dict[str, str]]:
    """The chassis and ports in error by their agents' reports and presence (for
    ``/v1/status``); call under ``service.reading()``."""
    catalog = service.catalog
    errors = []
    on_chassis: dict[str, list[Port]] | None = None
    for chassis_id, report in sorted(reports.items()):
        chassis = catalog.objects["chassis"].get(chassis_id)
        if chassis is None:
            continue
        status = chassis_status(report, alive=chassis_id in alive)
        if status.state == "error":
            errors.append(_error("chassis", chassis.id, chassis.name, status.message))
        ports: list[Port]
        if chassis_id not in alive:  # all its ports, for the same reason
            if on_chassis is None:
                on_chassis = defaultdict(list)
                for port in catalog.objects["ports"].values():
                    if isinstance(port, Port) and port.chassis:
                        on_chassis[port.chassis].append(port)
            ports = on_chassis.get(chassis.name, [])
        else:
            in_error = (catalog.objects["ports"].get(i) for i, p in report.ports.items()
                        if p.state == "error")  # fmt: skip
            ports = [p for p in in_error if isinstance(p, Port)]
        for b in where_bound(service, ports):
            status = port_status(b.port, b.chassis, report, b.changed_at, alive=chassis_id in alive)
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
        report = _parse(chassis_id, kv.value, kv.mod_revision) if kv is not None else None
        if report is not None:
            reports[chassis_id] = report
    return reports


async def _present(store: Store, chassis_ids: Iterable[str]) -> set[str]:
    ids = sorted(set(chassis_ids))
    found = await asyncio.gather(*(store.get(presence_key(i)) for i in ids))
    return {chassis_id for chassis_id, kv in zip(ids, found, strict=True) if kv is not None}


MAX_PARSED = 4096
_parsed: dict[tuple[str, int, int], ChassisReport] = {}
"""Reports already parsed, by (chassis id, store revision, hash of the value): each status
read parses only what changed since (a full report is 10,000 ports, about 17 ms to parse)."""


def _parse(chassis_id: str, value: bytes, revision: int = 0) -> ChassisReport | None:
    key = (chassis_id, revision, hash(value))
    found = _parsed.get(key)
    if found is not None:
        return found
    try:
        found = ChassisReport.model_validate_json(value)
    except ValidationError:
        log.error("the report of chassis %s cannot be read; ignored", chassis_id)
        return None
    if len(_parsed) >= MAX_PARSED:
        del _parsed[next(iter(_parsed))]  # the oldest
    _parsed[key] = found
    return found
