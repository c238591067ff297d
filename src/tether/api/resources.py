"""REST routes of the resources: translation between HTTP and the model service only.

Every object is addressable by id or by name (``?tenant=`` disambiguates names shared by
tenants). Lists are sorted by id and paginated with ``limit`` and the ``next`` cursor.
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from tether.api.reports import chassis_statuses, forget_report, port_statuses, where_bound
from tether.api.rollups import (
    binding_statuses,
    network_needs,
    network_statuses,
    router_needs,
    router_statuses,
)
from tether.api.runtime import gateway_status, gateway_statuses
from tether.model import KINDS, InvalidError, Resource, Rules
from tether.model.bulk import BulkRequest, apply_bulk
from tether.model.catalog import KIND_OF
from tether.model.fields import parse_cidr
from tether.model.resources import (
    Chassis,
    ChassisCreate,
    ChassisUpdate,
    Gateway,
    GatewayBinding,
    GatewayBindingCreate,
    GatewayCreate,
    GatewayUpdate,
    Network,
    NetworkCreate,
    NetworkUpdate,
    Port,
    PortCreate,
    PortUpdate,
    Route,
    Router,
    RouterCreate,
    RouterInterfaceCreate,
    RouterUpdate,
    Status,
)
from tether.service.models import ModelService
from tether.store import Store
from tether.vtep.schema_check import ensure_state_consistent

__all__ = ["router"]

router = APIRouter(prefix="/v1")
R = TypeVar("R", bound=Resource)
N = TypeVar("N")
"""What a rolled-up status needs, read from the catalog (:mod:`.rollups`)."""

KIND_CLASS: dict[str, type[Resource]] = KINDS
MAX_PAGE = 1000


class GatewayOut(Gateway):
    runtime: dict[str, Any] | None = None
    """The gateway agent's last report: connection, generations, stage, rows by table."""


class Page(BaseModel):
    items: list[dict[str, Any]]
    total: int
    next: str | None = None
    """Pass as ``after`` to get the next page; absent on the last page."""


class Deleted(BaseModel):
    deleted: dict[str, Any]
    revision: int


class BulkResult(BaseModel):
    revision: int
    created: int
    deleted: int
    ids: list[str]


def _service(request: Request) -> ModelService:
    service: ModelService = request.app.state.models
    return service


def _page(
    objects: list[Resource], *, after: str | None, limit: int, filters: dict[str, str | None]
) -> Page:
    wanted = [
        obj
        for obj in objects
        if all(value is None or getattr(obj, key, None) == value for key, value in filters.items())
    ]
    wanted.sort(key=lambda obj: obj.id)
    start = 0
    if after:
        start = next((i for i, obj in enumerate(wanted) if obj.id > after), len(wanted))
    chunk = wanted[start : start + limit]
    more = start + limit < len(wanted)
    return Page(
        items=[obj.model_dump(mode="json") for obj in chunk],
        total=len(wanted),
        next=chunk[-1].id if more and chunk else None,
    )


Limit = Query(100, ge=1, le=MAX_PAGE, description="page size")
After = Query(None, description="the `next` value of the previous page")
ConvertSchema = Query(
    False,
    description="for the state-consistent mode: add Logical_Switch.state_consistent to the "
    "switch's schema by online conversion when it lacks it",
)
TenantQuery = Query(None, description="tenant of the name (when names repeat across tenants)")


async def _write(request: Request, operation: Any) -> Any:
    result, _ = await _service(request).write(operation)
    return result


# -- networks -------------------------------------------------------------------------------


@router.get("/networks", response_model=Page, tags=["networks"])
async def list_networks(
    request: Request, tenant: str | None = None, limit: int = Limit, after: str | None = After
) -> Page:
    return await _rolled_up_page(
        request, Network, network_needs, network_statuses, tenant=tenant, limit=limit, after=after
    )


async def _rolled_up_page(
    request: Request,
    cls: type[R],
    needs_of: Callable[[ModelService, list[R]], list[N]],
    statuses_of: Callable[[Store, list[N]], Awaitable[list[Status]]],
    *,
    tenant: str | None,
    limit: int,
    after: str | None,
) -> Page:
    """A page of networks or routers, each with its status rolled up (:mod:`.rollups`):
    what each needs is read under the model lock, the agents' records after it."""
    service = _service(request)
    async with service.reading():
        kind = KIND_OF[cls]
        page = _page(service.objects(kind), after=after, limit=limit, filters={"tenant": tenant})
        needs = needs_of(service, [service.catalog.get(cls, item["id"]) for item in page.items])
    _set_statuses(page, await statuses_of(request.app.state.store, needs))
    return page


def _set_statuses(page: Page, statuses: list[Status]) -> None:
    """Each item's status, derived when read (not the stored one)."""
    for item, status in zip(page.items, statuses, strict=True):
        item["status"] = status.model_dump()


@router.post("/networks", response_model=Network, status_code=201, tags=["networks"])
async def create_network(request: Request, body: NetworkCreate) -> Any:
    return await _write(request, lambda rules: rules.create_network(body))


@router.get("/networks/{ref}", response_model=Network, tags=["networks"])
async def get_network(request: Request, ref: str, tenant: str | None = TenantQuery) -> Any:
    service = _service(request)
    async with service.reading():
        network = service.catalog.resolve(Network, ref, tenant=tenant, field="network")
        needs = network_needs(service, [network])
    (status,) = await network_statuses(request.app.state.store, needs)
    return network.model_copy(update={"status": status})


@router.patch("/networks/{ref}", response_model=Network, tags=["networks"])
async def update_network(
    request: Request, ref: str, body: NetworkUpdate, tenant: str | None = TenantQuery
) -> Any:
    return await _write(request, lambda rules: rules.update_network(ref, body, tenant))


@router.delete("/networks/{ref}", response_model=Deleted, tags=["networks"])
async def delete_network(
    request: Request, ref: str, force: bool = False, tenant: str | None = TenantQuery
) -> Deleted:
    return await _delete(
        request, lambda rules: rules.delete_network(ref, force=force, tenant=tenant)
    )


async def _delete(request: Request, operation: Any) -> Deleted:
    obj, result = await _service(request).write(operation)
    return Deleted(deleted=obj.model_dump(mode="json"), revision=result.revision)


# -- ports ----------------------------------------------------------------------------------


@router.get("/ports", response_model=Page, tags=["ports"])
async def list_ports(
    request: Request,
    tenant: str | None = None,
    network: str | None = Query(None, description="network id or name"),
    chassis: str | None = None,
    limit: int = Limit,
    after: str | None = After,
) -> Page:
    service = _service(request)
    async with service.reading():
        catalog = service.catalog
        network_id = (
            catalog.resolve(Network, network, tenant=tenant, field="network").id
            if network
            else None
        )
        chassis_name = catalog.resolve(Chassis, chassis, field="chassis").name if chassis else None
        filters = {"tenant": tenant, "network": network_id, "chassis": chassis_name}
        page = _page(service.objects("ports"), after=after, limit=limit, filters=filters)
        bound = where_bound(service, [catalog.get(Port, item["id"]) for item in page.items])
    _set_statuses(page, await port_statuses(request.app.state.store, bound))
    return page


@router.post("/ports", response_model=Port, status_code=201, tags=["ports"])
async def create_port(request: Request, body: PortCreate) -> Any:
    return await _write(request, lambda rules: rules.create_port(body))


@router.get("/ports/{ref}", response_model=Port, tags=["ports"])
async def get_port(request: Request, ref: str, tenant: str | None = TenantQuery) -> Any:
    service = _service(request)
    async with service.reading():
        port = service.catalog.resolve(Port, ref, tenant=tenant, field="port")
        bound = where_bound(service, [port])
    (status,) = await port_statuses(request.app.state.store, bound)
    return port.model_copy(update={"status": status})


@router.patch("/ports/{ref}", response_model=Port, tags=["ports"])
async def update_port(
    request: Request, ref: str, body: PortUpdate, tenant: str | None = TenantQuery
) -> Any:
    return await _write(request, lambda rules: rules.update_port(ref, body, tenant))


@router.delete("/ports/{ref}", response_model=Deleted, tags=["ports"])
async def delete_port(request: Request, ref: str, tenant: str | None = TenantQuery) -> Deleted:
    return await _delete(request, lambda rules: rules.delete_port(ref, tenant))


# -- routers --------------------------------------------------------------------------------


@router.get("/routers", response_model=Page, tags=["routers"])
async def list_routers(
    request: Request, tenant: str | None = None, limit: int = Limit, after: str | None = After
) -> Page:
    return await _rolled_up_page(
        request, Router, router_needs, router_statuses, tenant=tenant, limit=limit, after=after
    )


@router.post("/routers", response_model=Router, status_code=201, tags=["routers"])
async def create_router(request: Request, body: RouterCreate) -> Any:
    return await _write(request, lambda rules: rules.create_router(body))


@router.get("/routers/{ref}", response_model=Router, tags=["routers"])
async def get_router(request: Request, ref: str, tenant: str | None = TenantQuery) -> Any:
    service = _service(request)
    async with service.reading():
        found = service.catalog.resolve(Router, ref, tenant=tenant, field="router")
        needs = router_needs(service, [found])
    (status,) = await router_statuses(request.app.state.store, needs)
    return found.model_copy(update={"status": status})


@router.patch("/routers/{ref}", response_model=Router, tags=["routers"])
async def update_router(
    request: Request, ref: str, body: RouterUpdate, tenant: str | None = TenantQuery
) -> Any:
    return await _write(request, lambda rules: rules.update_router(ref, body, tenant))


@router.post("/routers/{ref}/interfaces", response_model=Router, tags=["routers"])
async def add_router_interface(
    request: Request, ref: str, body: RouterInterfaceCreate, tenant: str | None = TenantQuery
) -> Any:
    """Join a network (atomic: concurrent edits of one router never lose each other)."""
    return await _write(request, lambda rules: rules.add_router_interface(ref, body, tenant))


@router.delete("/routers/{ref}/interfaces/{network}", response_model=Router, tags=["routers"])
async def remove_router_interface(
    request: Request, ref: str, network: str, tenant: str | None = TenantQuery
) -> Any:
    return await _write(request, lambda rules: rules.remove_router_interface(ref, network, tenant))


@router.post("/routers/{ref}/routes", response_model=Router, tags=["routers"])
async def add_route(
    request: Request, ref: str, body: Route, tenant: str | None = TenantQuery
) -> Any:
    return await _write(request, lambda rules: rules.add_route(ref, body, tenant))


@router.delete("/routers/{ref}/routes/{destination:path}", response_model=Router, tags=["routers"])
async def remove_route(
    request: Request, ref: str, destination: str, tenant: str | None = TenantQuery
) -> Any:
    """Remove the route to ``destination`` (a prefix such as ``0.0.0.0/0``)."""
    try:
        prefix = parse_cidr(destination)
    except ValueError as exc:
        raise InvalidError(str(exc), "destination") from None
    return await _write(request, lambda rules: rules.remove_route(ref, prefix, tenant))


@router.delete("/routers/{ref}", response_model=Deleted, tags=["routers"])
async def delete_router(request: Request, ref: str, tenant: str | None = TenantQuery) -> Deleted:
    return await _delete(request, lambda rules: rules.delete_router(ref, tenant))


# -- chassis --------------------------------------------------------------------------------


@router.get("/chassis", response_model=Page, tags=["chassis"])
async def list_chassis(request: Request, limit: int = Limit, after: str | None = After) -> Page:
    service = _service(request)
    async with service.reading():
        page = _page(service.objects("chassis"), after=after, limit=limit, filters={})
        chassis = [service.catalog.get(Chassis, item["id"]) for item in page.items]
    _set_statuses(page, await chassis_statuses(request.app.state.store, chassis))
    return page


@router.post("/chassis", response_model=Chassis, status_code=201, tags=["chassis"])
async def create_chassis(request: Request, body: ChassisCreate) -> Any:
    return await _write(request, lambda rules: rules.create_chassis(body))


@router.get("/chassis/{ref}", response_model=Chassis, tags=["chassis"])
async def get_chassis(request: Request, ref: str) -> Any:
    async with _service(request).reading():
        chassis = _service(request).catalog.resolve(Chassis, ref, field="chassis")
    (status,) = await chassis_statuses(request.app.state.store, [chassis])
    return chassis.model_copy(update={"status": status})


@router.patch("/chassis/{ref}", response_model=Chassis, tags=["chassis"])
async def update_chassis(request: Request, ref: str, body: ChassisUpdate) -> Any:
    chassis = await _write(request, lambda rules: rules.update_chassis(ref, body))
    (status,) = await chassis_statuses(request.app.state.store, [chassis])
    return chassis.model_copy(update={"status": status})


@router.delete("/chassis/{ref}", response_model=Deleted, tags=["chassis"])
async def delete_chassis(request: Request, ref: str, force: bool = False) -> Deleted:
    deleted = await _delete(request, lambda rules: rules.delete_chassis(ref, force=force))
    await forget_report(request.app.state.store, str(deleted.deleted["id"]))
    return deleted


# -- gateways and their bindings ------------------------------------------------------------


@router.get("/gateways", response_model=Page, tags=["gateways"])
async def list_gateways(request: Request, limit: int = Limit, after: str | None = After) -> Page:
    async with _service(request).reading():
        page = _page(_service(request).objects("gateways"), after=after, limit=limit, filters={})
    runtime = await gateway_statuses(request.app.state.store)
    page.items = [_with_runtime(item, runtime.get(item["id"])) for item in page.items]
    return page


@router.post("/gateways", response_model=Gateway, status_code=201, tags=["gateways"])
async def create_gateway(
    request: Request, body: GatewayCreate, convert_schema: bool = ConvertSchema
) -> Any:
    if body.mode == "state-consistent":
        await ensure_state_consistent(
            body.ovsdb, convert=convert_schema, tls=request.app.state.ovsdb_tls
        )
    return await _write(request, lambda rules: rules.create_gateway(body))


@router.get("/gateways/{ref}", response_model=GatewayOut, tags=["gateways"])
async def get_gateway(request: Request, ref: str) -> Any:
    async with _service(request).reading():
        gateway = _service(request).catalog.resolve(Gateway, ref, field="gateway")
    runtime = await gateway_status(request.app.state.store, gateway.id)
    return _with_runtime(gateway.model_dump(mode="json"), runtime)


def _with_runtime(gateway: dict[str, Any], runtime: dict[str, Any] | None) -> dict[str, Any]:
    """The gateway as stored, with its agent's view: state, generations, rows, last error."""
    if runtime is not None:
        gateway["status"] = {"state": runtime["state"], "message": runtime.get("last_error", "")}
    gateway["runtime"] = runtime
    return gateway


@router.patch("/gateways/{ref}", response_model=Gateway, tags=["gateways"])
async def update_gateway(
    request: Request, ref: str, body: GatewayUpdate, convert_schema: bool = ConvertSchema
) -> Any:
    async with _service(request).reading():
        old = _service(request).catalog.resolve(Gateway, ref, field="gateway")
    mode, address = body.mode or old.mode, body.ovsdb or old.ovsdb
    if mode == "state-consistent" and (mode != old.mode or address != old.ovsdb):
        await ensure_state_consistent(
            address, convert=convert_schema, tls=request.app.state.ovsdb_tls
        )
    return await _write(request, lambda rules: rules.update_gateway(ref, body))


@router.delete("/gateways/{ref}", response_model=Deleted, tags=["gateways"])
async def delete_gateway(request: Request, ref: str, force: bool = False) -> Deleted:
    return await _delete(request, lambda rules: rules.delete_gateway(ref, force=force))


@router.get("/gateways/{ref}/bindings", response_model=Page, tags=["gateways"])
async def list_bindings(
    request: Request, ref: str, limit: int = Limit, after: str | None = After
) -> Page:
    service = _service(request)
    async with service.reading():
        gateway = service.catalog.resolve(Gateway, ref, field="gateway")
        page = _page(
            service.objects("bindings"), after=after, limit=limit, filters={"gateway": gateway.name}
        )
        bindings = [
            (
                service.catalog.get(GatewayBinding, item["id"]),
                service.catalog.mod_revisions.get(("bindings", item["id"]), 0),
            )
            for item in page.items
        ]
    _set_statuses(page, await binding_statuses(request.app.state.store, gateway.id, bindings))
    return page


@router.post(
    "/gateways/{ref}/bindings", response_model=GatewayBinding, status_code=201, tags=["gateways"]
)
async def bind_gateway(request: Request, ref: str, body: GatewayBindingCreate) -> Any:
    return await _write(request, lambda rules: rules.bind_gateway(ref, body))


@router.delete(
    "/gateways/{ref}/bindings/{port:path}/{vlan}", response_model=Deleted, tags=["gateways"]
)
async def unbind_gateway(request: Request, ref: str, port: str, vlan: int) -> Deleted:
    return await _delete(request, lambda rules: rules.unbind_gateway(ref, port, vlan))


# -- bulk -----------------------------------------------------------------------------------


@router.post("/bulk", response_model=BulkResult, tags=["bulk"])
async def bulk(request: Request, body: BulkRequest) -> BulkResult:
    """Apply many creates and deletes in order, in one store transaction: all or nothing."""

    def operation(rules: Rules) -> list[tuple[str, Resource]]:
        return apply_bulk(rules, body.items)

    done, result = await _service(request).write(operation)
    for op, obj in done:
        if op == "delete" and isinstance(obj, Chassis):
            await forget_report(request.app.state.store, obj.id)
    created = sum(1 for op, _ in done if op == "create")
    return BulkResult(
        revision=result.revision,
        created=created,
        deleted=len(done) - created,
        ids=[obj.id for _, obj in done],
    )
