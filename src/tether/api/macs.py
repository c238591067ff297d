"""REST routes of the MAC inventory: where every MAC lives, why, and claims by API.

* ``GET /v1/macs?network=&device=`` — located MACs: network, MAC, IP, location (device and
  tunnel IP), slaves, age, flags; sorted by network then MAC, paginated like every list.
* ``GET /v1/macs/{mac}?network=`` — every claim on the MAC, oldest first, with role,
  revision and standing, and the reason for the decision; one entry per network.
* ``POST /v1/macs/claims`` — record a claim for a device tether does not collect from.
* ``DELETE /v1/macs/claims/{device}/{network}/{mac}`` — withdraw a device's claim.

Translation only: the decisions are the inventory's (:mod:`tether.service.inventory`).
"""

# No `from __future__ import annotations`: FastAPI reads these annotations at runtime.

from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel

from tether.logical import Explanation, Location
from tether.model import InvalidError, NotFoundError
from tether.model.devices import device_tunnel_ips
from tether.model.fields import parse_mac
from tether.model.resources import MacClaimCreate, Network
from tether.service.inventory import MacInventory
from tether.service.models import ModelService

__all__ = ["router"]

router = APIRouter(prefix="/v1", tags=["macs"])
MAX_PAGE = 1000


class MacPage(BaseModel):
    items: list[dict[str, Any]]
    total: int
    next: str | None = None
    """Pass as ``after`` to get the next page; absent on the last page."""


class ClaimRecorded(BaseModel):
    device: str
    network: str
    mac: str
    role: str
    ip: str | None
    revision: int


def _parts(request: Request) -> tuple[ModelService, MacInventory, dict[str, str]]:
    models: ModelService = request.app.state.models
    inventory: MacInventory = request.app.state.macs
    tunnel_ips = device_tunnel_ips(models.catalog, request.app.state.physical.learned_ips())
    return models, inventory, tunnel_ips


def _network_id(models: ModelService, ref: str | None, tenant: str | None) -> str | None:
    if ref is None:
        return None
    return models.catalog.resolve(Network, ref, tenant=tenant, field="network").id


def _mac(text: str, field: str) -> str:
    try:
        return parse_mac(text)
    except ValueError as exc:
        raise InvalidError(str(exc), field) from None


def _where(where: Location | None, tunnel_ips: dict[str, str]) -> dict[str, Any] | None:
    if where is None:
        return None
    return {"device": where.device, "tunnel_ip": tunnel_ips.get(where.device), "ip": where.ip}


@router.get("/macs", response_model=MacPage)
async def list_macs(
    request: Request,
    network: str | None = Query(None, description="network id or name"),
    tenant: str | None = Query(None, description="tenant of the network's name"),
    device: str | None = Query(None, description="only MACs located behind this device"),
    limit: int = Query(100, ge=1, le=MAX_PAGE, description="page size"),
    after: str | None = Query(None, description="the `next` value of the previous page"),
) -> MacPage:
    models, inventory, tunnel_ips = _parts(request)
    async with models.reading():
        network_id = _network_id(models, network, tenant)
        names = {nid: n.name for nid, n in models.catalog.objects["networks"].items()}
    found = inventory.entries(network_id, device)
    start = 0
    if after:
        start = next((i for i, e in enumerate(found) if f"{e[0]}/{e[1]}" > after), len(found))
    chunk = found[start : start + limit]
    items = []
    for net, mac, where in chunk:
        explanation = inventory.explain(net, mac)
        age = inventory.age(net, mac)
        items.append(
            {
                "network": net,
                "network_name": names.get(net, ""),
                "mac": mac,
                "ip": where.ip,
                "location": _where(where, tunnel_ips),
                "slaves": list(explanation.slaves) if explanation else [],
                "age_seconds": None if age is None else round(age, 3),
                "flags": ["damped"] if explanation and explanation.damped else [],
            }
        )
    more = start + limit < len(found)
    return MacPage(
        items=items,
        total=len(found),
        next=f"{chunk[-1][0]}/{chunk[-1][1]}" if more and chunk else None,
    )


@router.get("/macs/{mac}")
async def show_mac(
    request: Request,
    mac: str,
    network: str | None = Query(None, description="network id or name"),
    tenant: str | None = Query(None, description="tenant of the network's name"),
) -> list[dict[str, Any]]:
    models, inventory, tunnel_ips = _parts(request)
    wanted = _mac(mac, "mac")
    async with models.reading():
        network_id = _network_id(models, network, tenant)
        names = {nid: n.name for nid, n in models.catalog.objects["networks"].items()}
    networks = [network_id] if network_id else inventory.networks_of_mac(wanted)
    shown = []
    for net in networks:
        explanation = inventory.explain(net, wanted)
        if explanation is not None:
            shown.append(_explained(explanation, names, inventory, tunnel_ips))
    if not shown:
        where = f" in network {network}" if network else ""
        raise NotFoundError(f"no device claims MAC {wanted}{where}", "mac")
    return shown


def _explained(
    explanation: Explanation,
    names: dict[str, str],
    inventory: MacInventory,
    tunnel_ips: dict[str, str],
) -> dict[str, Any]:
    net, mac = explanation.network, explanation.mac
    age = inventory.age(net, mac)
    return {
        "network": net,
        "network_name": names.get(net, ""),
        "mac": mac,
        "location": _where(explanation.owner, tunnel_ips),
        "rule": explanation.rule.value,
        "reason": explanation.reason,
        "damped": explanation.damped,
        "age_seconds": None if age is None else round(age, 3),
        "claims": [
            {
                "device": claim.device,
                "role": claim.role.value,
                "revision": claim.revision,
                "ip": claim.ip,
                "standing": claim.standing.value,
                "derived": inventory.is_derived(net, mac, claim.device),
            }
            for claim in explanation.claims
        ],
    }


@router.post("/macs/claims", response_model=ClaimRecorded, status_code=201)
async def put_claim(request: Request, body: MacClaimCreate) -> ClaimRecorded:
    models, inventory, _ = _parts(request)
    async with models.reading():
        network = models.rules.check_mac_claim(body)
    revision = await inventory.put_claim(body.device, network.id, body.mac, body.role, body.ip)
    await inventory.wait_revision(revision)
    return ClaimRecorded(
        device=body.device,
        network=network.id,
        mac=body.mac,
        role=body.role,
        ip=body.ip,
        revision=revision,
    )


@router.delete("/macs/claims/{device}/{network}/{mac}")
async def delete_claim(
    request: Request, device: str, network: str, mac: str, tenant: str | None = None
) -> dict[str, Any]:
    models, inventory, _ = _parts(request)
    wanted = _mac(mac, "mac")
    async with models.reading():
        network_id = _network_id(models, network, tenant)
        assert network_id is not None
    if not await inventory.delete_claim(device, network_id, wanted):
        raise NotFoundError(f"{device} has no claim on {wanted} in network {network}", "mac")
    await inventory.wait_revision(await inventory.store.revision())
    return {"deleted": {"device": device, "network": network_id, "mac": wanted}}
