"""The catalog: every stored object in memory, with the indexes validation needs.

The catalog answers "is this name / VNI / MAC / IP / tunnel IP / (gateway, port, VLAN)
taken, and by whom?" and "what depends on this network / chassis / gateway?" in O(1). It is
filled from the store (a listing, then the watch) by the service and changed by the rules
in :mod:`tether.model.rules` inside a *draft*: a journal of changes that is either committed
(returned as the list of objects to write) or rolled back, leaving the catalog as it was.

Pure: no I/O. Ids come from the caller.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TypeVar

from tether.model.errors import ConflictError, NotFoundError
from tether.model.resources import (
    KINDS,
    Chassis,
    Gateway,
    GatewayBinding,
    Network,
    Port,
    Resource,
    Router,
)

__all__ = ["Catalog", "Change"]

R = TypeVar("R", bound=Resource)

TENANT_SCOPED = frozenset({"networks", "ports", "routers"})
"""Kinds whose names are unique per tenant; the others have global names."""

NOUN = {
    "networks": "network",
    "ports": "port",
    "routers": "router",
    "chassis": "chassis",
    "gateways": "gateway",
    "bindings": "binding",
}
"""The singular, for messages."""

KIND_OF: dict[type[Resource], str] = {cls: kind for kind, cls in KINDS.items()}


@dataclass(frozen=True, slots=True)
class Change:
    """One object written (``after``) or deleted (``after`` is None)."""

    kind: str
    id: str
    after: Resource | None


IndexKey = tuple[object, ...]


def _name_keys(kind: str, obj: Resource) -> list[IndexKey]:
    if not obj.name:
        return []
    return [("name", kind, obj.tenant if kind in TENANT_SCOPED else "", obj.name)]


def _network_keys(kind: str, obj: Network) -> list[IndexKey]:
    return [*_name_keys(kind, obj), ("vni", obj.vni)]


def _port_keys(kind: str, obj: Port) -> list[IndexKey]:
    network = obj.network
    keys: list[IndexKey] = [("mac", network, obj.mac)]
    keys += [("ip", network, ip) for ip in obj.ips]
    if obj.name:
        keys.append(("name", kind, obj.tenant, obj.name))
    return keys


def _router_keys(kind: str, obj: Router) -> list[IndexKey]:
    keys = _name_keys(kind, obj)
    for iface in obj.interfaces:
        keys.append(("ip", iface.network, iface.ip))
        keys.append(("mac", iface.network, iface.mac))
    return keys


def _device_keys(kind: str, obj: Chassis | Gateway) -> list[IndexKey]:
    keys = _name_keys(kind, obj)
    if obj.tunnel_ip:
        keys.append(("tunnel", obj.tunnel_ip))
    return keys


def _binding_keys(kind: str, obj: GatewayBinding) -> list[IndexKey]:
    return [*_name_keys(kind, obj), ("binding", obj.gateway, obj.port, obj.vlan)]


def _unique_keys(kind: str, obj: Resource) -> list[IndexKey]:
    """The unique index entries an object occupies."""
    if isinstance(obj, Port):  # the common case first: a bulk request is mostly ports
        return _port_keys(kind, obj)
    if isinstance(obj, Network):
        return _network_keys(kind, obj)
    if isinstance(obj, Router):
        return _router_keys(kind, obj)
    if isinstance(obj, Chassis | Gateway):
        return _device_keys(kind, obj)
    if isinstance(obj, GatewayBinding):
        return _binding_keys(kind, obj)
    return _name_keys(kind, obj)


def _references(obj: Resource) -> list[IndexKey]:
    """What an object depends on (so deleting that can find it)."""
    if isinstance(obj, Port):
        if obj.chassis:
            return [("network", obj.network), ("chassis", obj.chassis)]
        return [("network", obj.network)]
    if isinstance(obj, Router):
        return [("network", iface.network) for iface in obj.interfaces]
    if isinstance(obj, GatewayBinding):
        return [("network", obj.network), ("gateway", obj.gateway)]
    return []


class Catalog:
    """All objects by kind and id, their unique keys and reverse references."""

    def __init__(self) -> None:
        self.objects: dict[str, dict[str, Resource]] = {kind: {} for kind in KINDS}
        self.fence_revision = 0
        """Store revision of the newest model write reflected here."""
        self.mod_revisions: dict[tuple[str, str], int] = {}
        """(kind, id) -> store revision of the object's last write (kept by the service
        that loads and stores the catalog: it skips events no newer than this; the MAC
        inventory orders port claims by it)."""
        self._unique: dict[IndexKey, tuple[str, str]] = {}
        self._dependents: defaultdict[IndexKey, set[tuple[str, str]]] = defaultdict(set)
        self._named: defaultdict[tuple[str, str], set[str]] = defaultdict(set)
        self._journal: list[tuple[str, str, Resource | None]] | None = None
        self._touched: dict[tuple[str, str], None] = {}
        self._vni_hint = 1

    # -- raw changes (used by the store loader and by drafts) ------------------------------

    def put(self, kind: str, obj: Resource) -> None:
        previous = self.objects[kind].get(obj.id)
        if previous is not None:
            self._unindex(kind, previous)
        self._record(kind, obj.id, previous)
        self.objects[kind][obj.id] = obj
        self._index(kind, obj)

    def remove(self, kind: str, obj_id: str) -> Resource | None:
        previous = self.objects[kind].pop(obj_id, None)
        if previous is not None:
            self._unindex(kind, previous)
            self._record(kind, obj_id, previous)
        return previous

    def _index(self, kind: str, obj: Resource) -> None:
        holder = (kind, obj.id)
        self._unique.update(dict.fromkeys(_unique_keys(kind, obj), holder))
        dependents = self._dependents
        for ref in _references(obj):
            dependents[ref].add(holder)
        if obj.name:
            self._named[(kind, obj.name)].add(obj.id)

    def _unindex(self, kind: str, obj: Resource) -> None:
        for key in _unique_keys(kind, obj):
            if self._unique.get(key) == (kind, obj.id):
                del self._unique[key]
        for ref in _references(obj):
            holders = self._dependents.get(ref)
            if holders is not None:
                holders.discard((kind, obj.id))
                if not holders:
                    del self._dependents[ref]
        if obj.name:
            named = self._named.get((kind, obj.name))
            if named is not None:
                named.discard(obj.id)
                if not named:
                    del self._named[(kind, obj.name)]

    # -- drafts -----------------------------------------------------------------------------

    def begin(self) -> None:
        """Start recording changes so they can be committed or rolled back as one."""
        if self._journal is not None:
            raise RuntimeError("a draft is already open")
        self._journal = []
        self._touched = {}

    def _record(self, kind: str, obj_id: str, previous: Resource | None) -> None:
        if self._journal is not None:
            self._journal.append((kind, obj_id, previous))
            self._touched[(kind, obj_id)] = None

    def changes(self) -> list[Change]:
        """The net change of every object the open draft touched, in first-touch order."""
        if self._journal is None:
            raise RuntimeError("no draft is open")
        return [
            Change(kind, obj_id, self.objects[kind].get(obj_id)) for kind, obj_id in self._touched
        ]

    def commit(self) -> None:
        """Keep the draft's changes."""
        if self._journal is None:
            raise RuntimeError("no draft is open")
        self._journal = None
        self._touched = {}

    def rollback(self) -> None:
        """Undo every change of the draft."""
        journal, self._journal = self._journal, None
        self._touched = {}
        for kind, obj_id, previous in reversed(journal or []):
            current = self.objects[kind].pop(obj_id, None)
            if current is not None:
                self._unindex(kind, current)
            if previous is not None:
                self.objects[kind][obj_id] = previous
                self._index(kind, previous)

    # -- lookups ----------------------------------------------------------------------------

    def holder(self, *key: object) -> tuple[str, str] | None:
        """(kind, id) of the object holding a unique key, e.g. ``holder("vni", 5001)``."""
        return self._unique.get(key)

    def holder_of(self, key: IndexKey) -> tuple[str, str] | None:
        """:meth:`holder` for a key already in a tuple."""
        return self._unique.get(key)

    def dependents(self, *ref: object) -> list[tuple[str, str]]:
        """(kind, id) of every object referring to ``ref``, e.g. ``("network", id)``."""
        return sorted(self._dependents.get(ref, ()))

    def get(self, cls: type[R], obj_id: str) -> R:
        obj = self.objects[KIND_OF[cls]][obj_id]
        assert isinstance(obj, cls)
        return obj

    def resolve(self, cls: type[R], ref: str, *, tenant: str | None = None, field: str) -> R:
        """An object by id, or by name (within ``tenant`` when given). Errors name ``field``."""
        kind = KIND_OF[cls]
        found = self.objects[kind].get(ref)
        if found is not None:
            assert isinstance(found, cls)
            return found
        noun = NOUN[kind]
        if kind not in TENANT_SCOPED:
            holder = self._unique.get(("name", kind, "", ref))
            if holder is None:
                raise NotFoundError(f"no {noun} named or with id {ref!r}", field)
            return self.get(cls, holder[1])
        if tenant is not None:
            holder = self._unique.get(("name", kind, tenant, ref))
            if holder is None:
                raise NotFoundError(f"no {noun} {ref!r} in tenant {tenant!r}", field)
            return self.get(cls, holder[1])
        matches = [self.objects[kind][i] for i in sorted(self._named.get((kind, ref), ()))]
        if not matches:
            raise NotFoundError(f"no {noun} named or with id {ref!r}", field)
        if len(matches) > 1:
            tenants = ", ".join(sorted(o.tenant for o in matches))
            raise ConflictError(
                f"{noun} name {ref!r} exists in several tenants ({tenants}); "
                "give the tenant or the id",
                field,
            )
        found = matches[0]
        assert isinstance(found, cls)
        return found

    def next_free_vni(self) -> int:
        from tether.model.fields import MAX_VNI

        vni = self._vni_hint
        for _ in range(MAX_VNI):
            if ("vni", vni) not in self._unique:
                self._vni_hint = vni % MAX_VNI + 1
                return vni
            vni = vni % MAX_VNI + 1
        raise ConflictError("every VNI is in use", "vni")

    def count(self, kind: str) -> int:
        return len(self.objects[kind])
