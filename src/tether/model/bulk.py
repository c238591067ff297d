"""Bulk changes: many creates and deletes applied in order as one all-or-nothing change.

A bulk request is a list of items, each naming its ``kind`` and ``op`` (``create`` with a
``spec``, or ``delete`` with a ``ref``). :func:`apply_bulk` runs them through the rules in
order, so later items may refer to objects created by earlier ones (a port on a network
created two items before). The first error stops everything; its field is prefixed with the
item's position (``items[17].spec.mac``). Pure.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from tether.model.errors import InvalidError, ModelError
from tether.model.resources import (
    ChassisCreate,
    GatewayBindingCreate,
    GatewayCreate,
    NetworkCreate,
    PortCreate,
    Resource,
    RouterCreate,
)
from tether.model.rules import Rules

__all__ = ["BulkItem", "BulkRequest", "apply_bulk"]

MAX_BULK_ITEMS = 100_000


class _Item(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    op: Literal["create", "delete"] = "create"
    ref: str | None = Field(None, min_length=1, max_length=64)
    """For ``delete``: the object's id or name."""
    force: bool = False


class NetworkItem(_Item):
    kind: Literal["network"]
    spec: NetworkCreate | None = None


class PortItem(_Item):
    kind: Literal["port"]
    spec: PortCreate | None = None


class RouterItem(_Item):
    kind: Literal["router"]
    spec: RouterCreate | None = None


class ChassisItem(_Item):
    kind: Literal["chassis"]
    spec: ChassisCreate | None = None


class GatewayItem(_Item):
    kind: Literal["gateway"]
    spec: GatewayCreate | None = None


class BindingItem(_Item):
    kind: Literal["binding"]
    gateway: str = Field(min_length=1, max_length=64)
    spec: GatewayBindingCreate | None = None
    port: str | None = None
    """For ``delete``: the physical port; with ``vlan``."""
    vlan: StrictInt | None = None


BulkItem = Annotated[
    NetworkItem | PortItem | RouterItem | ChassisItem | GatewayItem | BindingItem,
    Field(discriminator="kind"),
]


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    items: list[BulkItem] = Field(min_length=1, max_length=MAX_BULK_ITEMS)


def apply_bulk(rules: Rules, items: list[BulkItem]) -> list[tuple[str, Resource]]:
    """Apply every item in order; returns (op, object) per item."""
    done: list[tuple[str, Resource]] = []
    for index, item in enumerate(items):
        try:
            done.append((item.op, _apply_one(rules, item)))
        except ModelError as exc:
            raise exc.prefixed(f"items[{index}].") from None
    return done


def _apply_one(rules: Rules, item: BulkItem) -> Resource:
    if item.op == "create":
        if item.spec is None:
            raise InvalidError("a create needs a spec", "spec")
        return _create(rules, item)
    if isinstance(item, BindingItem):
        if item.port is None or item.vlan is None:
            raise InvalidError("deleting a binding needs port and vlan", "port")
        return rules.unbind_gateway(item.gateway, item.port, item.vlan)
    if item.ref is None:
        raise InvalidError("a delete needs a ref (id or name)", "ref")
    return _delete(rules, item, item.ref)


def _create(rules: Rules, item: BulkItem) -> Resource:
    spec = item.spec
    try:
        if isinstance(item, NetworkItem) and isinstance(spec, NetworkCreate):
            return rules.create_network(spec)
        if isinstance(item, PortItem) and isinstance(spec, PortCreate):
            return rules.create_port(spec)
        if isinstance(item, RouterItem) and isinstance(spec, RouterCreate):
            return rules.create_router(spec)
        if isinstance(item, ChassisItem) and isinstance(spec, ChassisCreate):
            return rules.create_chassis(spec)
        if isinstance(item, GatewayItem) and isinstance(spec, GatewayCreate):
            return rules.create_gateway(spec)
        if isinstance(item, BindingItem) and isinstance(spec, GatewayBindingCreate):
            return rules.bind_gateway(item.gateway, spec)
    except ModelError as exc:
        raise exc.prefixed("spec.") from None
    raise InvalidError(f"unknown kind {item.kind!r}", "kind")


def _delete(rules: Rules, item: BulkItem, ref: str) -> Resource:
    if isinstance(item, NetworkItem):
        return rules.delete_network(ref, force=item.force)
    if isinstance(item, PortItem):
        return rules.delete_port(ref)
    if isinstance(item, RouterItem):
        return rules.delete_router(ref)
    if isinstance(item, ChassisItem):
        return rules.delete_chassis(ref, force=item.force)
    if isinstance(item, GatewayItem):
        return rules.delete_gateway(ref, force=item.force)
    raise InvalidError(f"unknown kind {item.kind!r}", "kind")
