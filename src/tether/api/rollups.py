"""The status of networks, routers and gateway bindings, rolled up when they are read.

Each is realized through other things (:mod:`tether.model.rollup`): a network through its
bound ports and the gateways binding it, a router through every chassis carrying one of its
networks, a binding through its gateway. What each depends on is read from the catalog under
the model lock; the agents' reports, presence and gateway records are read after it.
"""

from __future__ import annotations

from dataclasses import dataclass

from tether.api.reports import Bound, port_statuses, reports_and_presence, where_bound
from tether.api.runtime import gateway_status, gateway_statuses
from tether.model.resources import Chassis, GatewayBinding, Network, Port, Router, Status
from tether.model.rollup import Part, chassis_part, gateway_part, rollup
from tether.service.models import ModelService
from tether.store import Store

__all__ = [
    "binding_statuses",
    "network_needs",
    "network_statuses",
    "router_needs",
    "router_statuses",
]

NO_NETWORK_PART = "not on any chassis or gateway yet (no bound port, no gateway binding)"
NO_ROUTER_PART = "no chassis has a bound port on its networks yet"


@dataclass(frozen=True, slots=True)
class NetworkNeeds:
    ports: list[Bound]
    """Its ports bound to a chassis."""
    gateways: list[tuple[str, GatewayBinding, int]]
    """(gateway id, binding, the binding's store revision) of each binding of it."""


@dataclass(frozen=True, slots=True)
class RouterNeeds:
    chassis: list[tuple[Chassis, int]]
    """Every chassis with a bound port on one of its networks, with the store revision it
    must have applied: the newest of the router, its networks and that chassis's ports on
    them (a port newly bound there brings the router's part to it)."""


def network_needs(service: ModelService, networks: list[Network]) -> list[NetworkNeeds]:
    """Call under ``service.reading()``."""
    catalog = service.catalog
    revisions = catalog.mod_revisions
    found = []
    for network in networks:
        ports: list[Port] = []
        gateways = []
        for kind, obj_id in catalog.dependents("network", network.id):
            obj = catalog.objects[kind].get(obj_id)
            if isinstance(obj, Port) and obj.chassis:
                ports.append(obj)
            elif isinstance(obj, GatewayBinding):
                holder = catalog.holder("name", "gateways", "", obj.gateway)
                if holder is not None:
                    gateways.append((holder[1], obj, revisions.get(("bindings", obj.id), 0)))
        found.append(NetworkNeeds(where_bound(service, ports), gateways))
    return found


async def network_statuses(store: Store, needs: list[NetworkNeeds]) -> list[Status]:
    bound = [b for need in needs for b in need.ports]
    port_states = iter(await port_statuses(store, bound))
    runtimes = await gateway_statuses(store) if any(n.gateways for n in needs) else {}
    statuses = []
    for need in needs:
        parts = [Part(f"port {b.port.name or b.port.id}", next(port_states)) for b in need.ports]
        parts += [
            Part(
                f"gateway {binding.gateway}",
                gateway_part(runtimes.get(gateway_id), (binding.port, binding.vlan), changed_at),
            )
            for gateway_id, binding, changed_at in need.gateways
        ]
        statuses.append(rollup(parts, NO_NETWORK_PART))
    return statuses


def router_needs(service: ModelService, routers: list[Router]) -> list[RouterNeeds]:
    """Call under ``service.reading()``. Each network's ports are walked once per call,
    however many routers share it."""
    catalog = service.catalog
    revisions = catalog.mod_revisions
    carried: dict[str, dict[str, int]] = {}
    """network id -> {chassis name: newest revision of its ports there}."""

    def carriers(network: str) -> dict[str, int]:
        if network not in carried:
            newest: dict[str, int] = {}
            for kind, obj_id in catalog.dependents("network", network):
                port = catalog.objects[kind].get(obj_id) if kind == "ports" else None
                if isinstance(port, Port) and port.chassis:
                    revision = revisions.get(("ports", port.id), 0)
                    newest[port.chassis] = max(newest.get(port.chassis, 0), revision)
            carried[network] = newest
        return carried[network]

    found = []
    for router in routers:
        networks = sorted({iface.network for iface in router.interfaces})
        base = max(
            [revisions.get(("routers", router.id), 0)]
            + [revisions.get(("networks", n), 0) for n in networks]
        )
        needed: dict[str, int] = {}
        for network in networks:
            for name, revision in carriers(network).items():
                needed[name] = max(needed.get(name, base), revision)
        chassis = []
        for name, revision in sorted(needed.items()):
            holder = catalog.holder("name", "chassis", "", name)
            if holder is not None:
                chassis.append((catalog.get(Chassis, holder[1]), revision))
        found.append(RouterNeeds(chassis))
    return found


async def router_statuses(store: Store, needs: list[RouterNeeds]) -> list[Status]:
    ids = {c.id for need in needs for c, _ in need.chassis}
    reports, alive = await reports_and_presence(store, ids)
    return [
        rollup(
            [
                Part(f"chassis {c.name}", chassis_part(reports.get(c.id), c.id in alive, at))
                for c, at in need.chassis
            ],
            NO_ROUTER_PART,
        )
        for need in needs
    ]


async def binding_statuses(
    store: Store, gateway_id: str, bindings: list[tuple[GatewayBinding, int]]
) -> list[Status]:
    """The status of bindings of one gateway, each with its store revision."""
    runtime = await gateway_status(store, gateway_id) if bindings else None
    return [
        rollup([Part(f"gateway {b.gateway}", gateway_part(runtime, (b.port, b.vlan), at))], "")
        for b, at in bindings
    ]
