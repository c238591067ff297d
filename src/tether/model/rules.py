"""The rules that span objects: creating, updating and deleting resources in a catalog.

Each operation checks everything before it changes anything it cannot undo, applies its
result to the :class:`~tether.model.catalog.Catalog` (inside the caller's draft) and returns
the stored object. Errors are :mod:`tether.model.errors` naming the field. Uniqueness:

* network names and router / port names per tenant; chassis and gateway names globally,
  and across the two (both are devices of the MAC inventory);
* VNIs globally; tunnel IPs across chassis and gateways;
* a MAC once per network; an IP once per network (ports and router interfaces);
* one network per (gateway, physical port, VLAN).

Pure: ids and MACs come from the caller's :class:`IdSource`.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from tether.model.catalog import NOUN, Catalog
from tether.model.errors import ConflictError, InvalidError, ModelError, NotFoundError
from tether.model.resources import (
    Chassis,
    ChassisCreate,
    ChassisUpdate,
    Gateway,
    GatewayBinding,
    GatewayBindingCreate,
    GatewayCreate,
    GatewayUpdate,
    MacClaimCreate,
    Network,
    NetworkCreate,
    NetworkUpdate,
    Port,
    PortCreate,
    PortUpdate,
    Route,
    Router,
    RouterCreate,
    RouterInterface,
    RouterInterfaceCreate,
    RouterUpdate,
    Status,
    Subnet,
)

__all__ = ["IdSource", "Rules"]

IPNet = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_ALLOCATION_SCAN = 1 << 20
"""Addresses looked at before a network is declared full (bounds the work of a /8)."""


R = TypeVar("R", bound=BaseModel)

PENDING = Status()
"""The status of every new object (frozen, so one instance serves them all)."""


def _build(cls: type[R], **values: Any) -> R:
    """An instance from values that were all validated already (pydantic's
    ``model_construct`` without its per-field bookkeeping: 5x faster in bulk requests)."""
    obj = cls.__new__(cls)
    object.__setattr__(obj, "__dict__", values)
    object.__setattr__(obj, "__pydantic_fields_set__", set(values))
    object.__setattr__(obj, "__pydantic_extra__", None)
    object.__setattr__(obj, "__pydantic_private__", None)
    return obj


class IdSource(Protocol):
    def new_id(self) -> str: ...

    def new_mac(self) -> str: ...


@functools.lru_cache(maxsize=65_536)
def _network(cidr: str) -> IPNet:
    return ipaddress.ip_network(cidr)


def _address_value(ip: str) -> tuple[int, int]:
    """(version, integer value) of a canonical address; IPv4 without the ipaddress module."""
    if ":" not in ip:
        a, b, c, d = ip.split(".")
        return 4, (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    return 6, int(ipaddress.IPv6Address(ip))


@functools.lru_cache(maxsize=65_536)
def _span(cidr: str) -> tuple[int, int, int, bool]:
    """(version, first, last, ends reserved) of a subnet: what :func:`_usable` compares."""
    net = _network(cidr)
    reserved = net.version == 4 and net.prefixlen < 31
    return net.version, int(net.network_address), int(net.broadcast_address), reserved


def _usable(net: IPNet, ip: str) -> bool:
    """Inside ``net`` and, for IPv4 prefixes shorter than /31, not network or broadcast."""
    return _usable_in(_span(str(net)), ip)


def _usable_in(span: tuple[int, int, int, bool], ip: str) -> bool:
    version, value = _address_value(ip)
    net_version, first, last, reserved = span
    if version != net_version or not first <= value <= last:
        return False
    return not (reserved and value in (first, last))


def _fill_subnets(subnets: list[Subnet]) -> list[Subnet]:
    """Default gateway IPs; check gateways fit and subnets do not overlap."""
    filled: list[Subnet] = []
    nets: list[IPNet] = []
    for i, subnet in enumerate(subnets):
        net = _network(subnet.cidr)
        for j, other in enumerate(nets):
            if net.version == other.version and net.overlaps(other):
                raise InvalidError(
                    f"{subnet.cidr} overlaps subnet {j} ({other})", f"subnets[{i}].cidr"
                )
        if subnet.gateway_ip is None:
            if net.num_addresses < 2:
                raise InvalidError(f"{subnet.cidr} has no room for a gateway", f"subnets[{i}].cidr")
            gateway = str(next(iter(net.hosts())) if net.num_addresses > 2 else net[0])
            complete = subnet.model_copy(update={"gateway_ip": gateway})
        elif not _usable(net, subnet.gateway_ip):
            raise InvalidError(
                f"{subnet.gateway_ip} is not a usable address of {subnet.cidr}",
                f"subnets[{i}].gateway_ip",
            )
        else:
            complete = subnet
        for k, dns in enumerate(subnet.dhcp.dns_servers):
            if ipaddress.ip_address(dns).version != net.version:
                raise InvalidError(
                    f"{dns} is not an IPv{net.version} address",
                    f"subnets[{i}].dhcp.dns_servers[{k}]",
                )
        nets.append(net)
        filled.append(complete)
    return filled


def _as_create(interfaces: list[RouterInterface]) -> list[RouterInterfaceCreate]:
    """Existing interfaces as they would be written, keeping their addresses."""
    return [RouterInterfaceCreate(network=i.network, ip=i.ip, mac=i.mac) for i in interfaces]


class Rules:
    """Operations on a catalog. Call them between ``catalog.begin()`` and commit/rollback."""

    def __init__(self, catalog: Catalog, ids: IdSource) -> None:
        self.catalog = catalog
        self.ids = ids
        self._ip_cursor: dict[tuple[str, str], int] = {}
        """Where the next address allocation starts, per (network, subnet): only a hint."""

    # -- helpers -----------------------------------------------------------------------------

    def _claim(self, key: tuple[object, ...], what: str, field: str, owner: str = "") -> None:
        holder = self.catalog.holder(*key)
        if holder is not None and holder[1] != owner:
            kind, obj_id = holder
            other = self.catalog.objects[kind][obj_id]
            label = other.name or obj_id
            raise ConflictError(f"{what} is already used by {NOUN[kind]} {label}", field)

    def _free(self, key: tuple[object, ...], owner: str) -> bool:
        """True when ``key`` is free or held by ``owner`` (the fast path of ``_claim``)."""
        holder = self.catalog.holder_of(key)
        return holder is None or holder[1] == owner

    def _check_name(self, kind: str, tenant: str, name: str | None, owner: str = "") -> None:
        if name:
            scope = tenant if kind in ("networks", "ports", "routers") else ""
            if self._free(("name", kind, scope, name), owner):
                return
            where = f" in tenant {tenant!r}" if scope else ""
            self._claim(("name", kind, scope, name), f"name {name!r}{where}", "name", owner)

    def _check_device_name(self, other_kind: str, name: str) -> None:
        """Chassis and gateways are both devices of the MAC inventory, which names them: a
        chassis and a gateway never share a name."""
        holder = self.catalog.holder("name", other_kind, "", name)
        if holder is not None:
            raise ConflictError(
                f"name {name!r} is already used by {NOUN[other_kind]} {name}", "name"
            )

    def _check_ip(self, network: Network, ip: str, field: str, owner: str) -> None:
        if not any(_usable_in(_span(s.cidr), ip) for s in network.subnets):
            cidrs = ", ".join(s.cidr for s in network.subnets) or "no subnets"
            raise InvalidError(
                f"{ip} is not a usable address in network {network.name} ({cidrs})", field
            )
        if not self._free(("ip", network.id, ip), owner):
            self._claim(("ip", network.id, ip), f"IP {ip} in network {network.name}", field, owner)

    def _allocate_ip(self, network: Network) -> list[str]:
        """The next free address of the network's first subnet with room, scanning on from
        where the last allocation stopped (constant time per port in a bulk request)."""
        for subnet in network.subnets:
            found = self._next_free(network, subnet)
            if found is not None:
                return [found]
        if network.subnets:
            raise ConflictError(f"no free address left in network {network.name}", "ips")
        return []

    def _next_free(self, network: Network, subnet: Subnet) -> str | None:
        net = _network(subnet.cidr)
        first, size = int(net.network_address), net.num_addresses
        reserved_ends = net.version == 4 and net.prefixlen < 31
        cursor_key = (network.id, subnet.cidr)
        start = self._ip_cursor.get(cursor_key, 0)
        for step in range(min(size, MAX_ALLOCATION_SCAN)):
            offset = (start + step) % size
            if reserved_ends and offset in (0, size - 1):
                continue
            ip = str(ipaddress.ip_address(first + offset))
            if ip != subnet.gateway_ip and self.catalog.holder("ip", network.id, ip) is None:
                self._ip_cursor[cursor_key] = offset + 1
                return ip
        return None

    def _reserved_gateway(self, network: Network, ip: str, field: str) -> None:
        if any(s.gateway_ip == ip for s in network.subnets):
            raise ConflictError(
                f"{ip} is the gateway address of network {network.name}; it belongs to the router",
                field,
            )

    # -- networks ----------------------------------------------------------------------------

    def create_network(self, spec: NetworkCreate) -> Network:
        return self._save_network(self.ids.new_id(), spec.tenant, spec.name, spec.vni, spec.subnets)

    def update_network(self, ref: str, patch: NetworkUpdate, tenant: str | None = None) -> Network:
        old = self.catalog.resolve(Network, ref, tenant=tenant, field="network")
        subnets = old.subnets if patch.subnets is None else patch.subnets
        network = self._save_network(
            old.id, old.tenant, patch.name or old.name, patch.vni or old.vni, subnets, old=old
        )
        self._check_users_fit(network)
        return network

    def _save_network(
        self,
        network_id: str,
        tenant: str,
        name: str,
        vni: int | None,
        subnets: list[Subnet],
        old: Network | None = None,
    ) -> Network:
        self._check_name("networks", tenant, name, network_id)
        if vni is not None:
            self._claim(("vni", vni), f"VNI {vni}", "vni", network_id)
        else:
            vni = self.catalog.next_free_vni()
        network = _build(
            Network,
            id=network_id,
            tenant=tenant,
            name=name,
            vni=vni,
            subnets=_fill_subnets(subnets),
            status=old.status if old else PENDING,
        )
        self.catalog.put("networks", network)
        return network

    def _check_users_fit(self, network: Network) -> None:
        """After a subnet change, every address in use must still fit and avoid gateways."""
        for kind, obj_id in self.catalog.dependents("network", network.id):
            obj = self.catalog.objects[kind][obj_id]
            if isinstance(obj, Port):
                for ip in obj.ips:
                    self._fits_after_change(network, ip, f"port {obj.name or obj.id}")
                    self._reserved_gateway(network, ip, "subnets")
            elif isinstance(obj, Router):
                for iface in obj.interfaces:
                    if iface.network == network.id:
                        self._fits_after_change(network, iface.ip, f"router {obj.name}")
                try:
                    self._check_routes(obj.routes, obj.interfaces)
                except ModelError as exc:
                    raise ConflictError(f"router {obj.name}: {exc.message}", "subnets") from None

    @staticmethod
    def _fits_after_change(network: Network, ip: str, user: str) -> None:
        if not any(_usable_in(_span(s.cidr), ip) for s in network.subnets):
            raise ConflictError(
                f"{user} uses {ip}, which the new subnets do not contain", "subnets"
            )

    def delete_network(
        self, ref: str, *, force: bool = False, tenant: str | None = None
    ) -> Network:
        network = self.catalog.resolve(Network, ref, tenant=tenant, field="network")
        users = self.catalog.dependents("network", network.id)
        if users and not force:
            counts: dict[str, int] = {}
            for kind, _ in users:
                counts[kind] = counts.get(kind, 0) + 1
            listing = ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))
            raise ConflictError(
                f"network {network.name} is still used ({listing}); remove them first or force",
                "force",
            )
        for kind, obj_id in users:
            obj = self.catalog.objects[kind][obj_id]
            if isinstance(obj, Router):
                self._detach_router(obj, network.id)
            else:
                self.catalog.remove(kind, obj_id)
        self.catalog.remove("networks", network.id)
        return network

    def _detach_router(self, router: Router, network_id: str) -> None:
        interfaces = [i for i in router.interfaces if i.network != network_id]
        nets = [self._iface_net(i) for i in interfaces]
        routes = [
            r for r in router.routes if any(ipaddress.ip_address(r.nexthop) in n for n in nets)
        ]
        self.catalog.put(
            "routers", router.model_copy(update={"interfaces": interfaces, "routes": routes})
        )

    def _iface_net(self, iface: RouterInterface) -> IPNet:
        network = self.catalog.get(Network, iface.network)
        for subnet in network.subnets:
            net = _network(subnet.cidr)
            if ipaddress.ip_address(iface.ip) in net:
                return net
        raise InvalidError(f"{iface.ip} is outside network {network.name}", "interfaces")

    # -- ports -------------------------------------------------------------------------------

    def create_port(self, spec: PortCreate) -> Port:
        network = self.catalog.resolve(Network, spec.network, tenant=spec.tenant, field="network")
        if spec.tenant is not None and spec.tenant != network.tenant:
            raise InvalidError(
                f"a port belongs to its network's tenant ({network.tenant})", "tenant"
            )
        port_id = self.ids.new_id()
        mac = spec.mac or self.ids.new_mac()
        ips = self._allocate_ip(network) if spec.ips is None else spec.ips
        return self._save_port(port_id, network, spec.name or "", mac, ips, spec.chassis)

    def update_port(self, ref: str, patch: PortUpdate, tenant: str | None = None) -> Port:
        old = self.catalog.resolve(Port, ref, tenant=tenant, field="port")
        if patch.unbind and patch.chassis:
            raise InvalidError("give either a chassis or unbind, not both", "unbind")
        chassis = None if patch.unbind else (patch.chassis or old.chassis)
        network = self.catalog.get(Network, old.network)
        name = old.name if patch.name is None else patch.name
        mac = patch.mac or old.mac
        ips = old.ips if patch.ips is None else patch.ips
        return self._save_port(old.id, network, name, mac, ips, chassis, old=old)

    def _save_port(
        self,
        port_id: str,
        network: Network,
        name: str,
        mac: str,
        ips: list[str],
        chassis: str | None,
        old: Port | None = None,
    ) -> Port:
        self._check_name("ports", network.tenant, name, port_id)
        if not self._free(("mac", network.id, mac), port_id):
            self._claim(
                ("mac", network.id, mac), f"MAC {mac} in network {network.name}", "mac", port_id
            )
        if len(ips) > 1 and len(set(ips)) != len(ips):
            raise InvalidError("the same IP is listed twice", "ips")
        for i, ip in enumerate(ips):
            self._check_ip(network, ip, f"ips[{i}]", port_id)
            self._reserved_gateway(network, ip, f"ips[{i}]")
        chassis_name = None
        if chassis:
            chassis_name = self.catalog.resolve(Chassis, chassis, field="chassis").name
        port = _build(
            Port,
            id=port_id,
            tenant=network.tenant,
            name=name,
            network=network.id,
            mac=mac,
            ips=ips,
            chassis=chassis_name,
            status=old.status if old else PENDING,
        )
        self.catalog.put("ports", port)
        return port

    def delete_port(self, ref: str, tenant: str | None = None) -> Port:
        port = self.catalog.resolve(Port, ref, tenant=tenant, field="port")
        self.catalog.remove("ports", port.id)
        return port

    # -- routers -----------------------------------------------------------------------------

    def create_router(self, spec: RouterCreate) -> Router:
        return self._save_router(self.ids.new_id(), spec.tenant, spec.name, spec, None)

    def update_router(self, ref: str, patch: RouterUpdate, tenant: str | None = None) -> Router:
        old = self.catalog.resolve(Router, ref, tenant=tenant, field="router")
        spec = RouterCreate(
            name=patch.name or old.name,
            tenant=old.tenant,
            interfaces=patch.interfaces
            if patch.interfaces is not None
            else [
                RouterInterfaceCreate(network=i.network, ip=i.ip, mac=i.mac) for i in old.interfaces
            ],
            routes=old.routes if patch.routes is None else patch.routes,
        )
        return self._save_router(old.id, old.tenant, spec.name, spec, old)

    def _save_router(
        self, router_id: str, tenant: str, name: str, spec: RouterCreate, old: Router | None
    ) -> Router:
        self._check_name("routers", tenant, name, router_id)
        if old is not None:  # its own addresses are free to keep
            self.catalog.remove("routers", router_id)
        interfaces: list[RouterInterface] = []
        seen: set[str] = set()
        for i, wanted in enumerate(spec.interfaces):
            field = f"interfaces[{i}]"
            network = self.catalog.resolve(
                Network, wanted.network, tenant=tenant, field=f"{field}.network"
            )
            if network.tenant != tenant:
                raise InvalidError(
                    "a router joins networks of its own tenant only", f"{field}.network"
                )
            if network.id in seen:
                raise InvalidError(
                    f"already has an interface on {network.name}", f"{field}.network"
                )
            seen.add(network.id)
            ip = wanted.ip or (network.subnets[0].gateway_ip if network.subnets else None)
            if ip is None:
                raise InvalidError(f"network {network.name} has no subnet to join", f"{field}.ip")
            self._check_ip(network, ip, f"{field}.ip", router_id)
            mac = wanted.mac or self._old_mac(old, network.id) or self.ids.new_mac()
            if not self._free(("mac", network.id, mac), router_id):
                what = f"MAC {mac} in network {network.name}"
                self._claim(("mac", network.id, mac), what, f"{field}.mac", router_id)
            interfaces.append(RouterInterface(network=network.id, ip=ip, mac=mac))
        router = _build(
            Router,
            id=router_id,
            tenant=tenant,
            name=name,
            interfaces=interfaces,
            routes=self._check_routes(spec.routes, interfaces),
            status=old.status if old else PENDING,
        )
        self.catalog.put("routers", router)
        return router

    @staticmethod
    def _old_mac(old: Router | None, network_id: str) -> str | None:
        for iface in old.interfaces if old else []:
            if iface.network == network_id:
                return iface.mac
        return None

    def _check_routes(self, routes: list[Route], interfaces: list[RouterInterface]) -> list[Route]:
        nets = [self._iface_net(i) for i in interfaces]
        seen: set[str] = set()
        for i, route in enumerate(routes):
            if route.destination in seen:
                raise InvalidError(
                    f"a route to {route.destination} is listed twice", f"routes[{i}].destination"
                )
            seen.add(route.destination)
            if _network(route.destination).version != _address_value(route.nexthop)[0]:
                raise InvalidError(
                    f"next hop {route.nexthop} is not of the address family of {route.destination}",
                    f"routes[{i}].nexthop",
                )
            if not any(ipaddress.ip_address(route.nexthop) in net for net in nets):
                raise InvalidError(
                    f"next hop {route.nexthop} is not on any of the router's networks",
                    f"routes[{i}].nexthop",
                )
        return routes

    def add_router_interface(
        self, ref: str, wanted: RouterInterfaceCreate, tenant: str | None = None
    ) -> Router:
        router = self.catalog.resolve(Router, ref, tenant=tenant, field="router")
        interfaces = [*_as_create(router.interfaces), wanted]
        return self._edit_router(router, interfaces=interfaces)

    def remove_router_interface(
        self, ref: str, network_ref: str, tenant: str | None = None
    ) -> Router:
        router = self.catalog.resolve(Router, ref, tenant=tenant, field="router")
        network = self.catalog.resolve(Network, network_ref, tenant=router.tenant, field="network")
        kept = [i for i in router.interfaces if i.network != network.id]
        if len(kept) == len(router.interfaces):
            raise NotFoundError(
                f"router {router.name} has no interface on network {network.name}", "network"
            )
        return self._edit_router(router, interfaces=_as_create(kept))

    def add_route(self, ref: str, route: Route, tenant: str | None = None) -> Router:
        router = self.catalog.resolve(Router, ref, tenant=tenant, field="router")
        return self._edit_router(router, routes=[*router.routes, route])

    def remove_route(self, ref: str, destination: str, tenant: str | None = None) -> Router:
        router = self.catalog.resolve(Router, ref, tenant=tenant, field="router")
        kept = [r for r in router.routes if r.destination != destination]
        if len(kept) == len(router.routes):
            raise NotFoundError(
                f"router {router.name} has no route to {destination}", "destination"
            )
        return self._edit_router(router, routes=kept)

    def _edit_router(
        self,
        router: Router,
        *,
        interfaces: list[RouterInterfaceCreate] | None = None,
        routes: list[Route] | None = None,
    ) -> Router:
        patch = RouterUpdate(interfaces=interfaces, routes=routes)
        return self.update_router(router.id, patch)

    def delete_router(self, ref: str, tenant: str | None = None) -> Router:
        router = self.catalog.resolve(Router, ref, tenant=tenant, field="router")
        self.catalog.remove("routers", router.id)
        return router

    # -- chassis -----------------------------------------------------------------------------

    def create_chassis(self, spec: ChassisCreate) -> Chassis:
        chassis_id = self.ids.new_id()
        return self._save_chassis(
            Chassis(id=chassis_id, tenant=spec.tenant, name=spec.name, tunnel_ip=spec.tunnel_ip)
        )

    def update_chassis(self, ref: str, patch: ChassisUpdate) -> Chassis:
        old = self.catalog.resolve(Chassis, ref, field="chassis")
        return self._save_chassis(old.model_copy(update=patch.model_dump(exclude_none=True)))

    def _save_chassis(self, chassis: Chassis) -> Chassis:
        self._check_name("chassis", chassis.tenant, chassis.name, chassis.id)
        self._check_device_name("gateways", chassis.name)
        self._claim(
            ("tunnel", chassis.tunnel_ip), f"tunnel IP {chassis.tunnel_ip}", "tunnel_ip", chassis.id
        )
        self.catalog.put("chassis", chassis)
        return chassis

    def delete_chassis(self, ref: str, *, force: bool = False) -> Chassis:
        chassis = self.catalog.resolve(Chassis, ref, field="chassis")
        bound = self.catalog.dependents("chassis", chassis.name)
        if bound and not force:
            raise ConflictError(
                f"{len(bound)} port(s) are bound to chassis {chassis.name}; unbind them or force",
                "force",
            )
        for _, port_id in bound:
            port = self.catalog.get(Port, port_id)
            self.catalog.put("ports", port.model_copy(update={"chassis": None}))
        self.catalog.remove("chassis", chassis.id)
        return chassis

    # -- MAC claims ----------------------------------------------------------------------------

    def check_mac_claim(self, spec: MacClaimCreate) -> Network:
        """A claim reported through the API names a device that exists and a network, and
        its IP (if any) belongs to that network. Returns the network; stores nothing."""
        network = self.catalog.resolve(Network, spec.network, tenant=spec.tenant, field="network")
        if not any(
            self.catalog.holder("name", kind, "", spec.device) for kind in ("gateways", "chassis")
        ):
            raise NotFoundError(f"no gateway or chassis is named {spec.device!r}", "device")
        subnets = network.subnets
        if (
            spec.ip is not None
            and subnets
            and not any(_usable(_network(s.cidr), spec.ip) for s in subnets)
        ):
            cidrs = ", ".join(s.cidr for s in subnets)
            raise InvalidError(
                f"{spec.ip} is not a usable address in network {network.name} ({cidrs})", "ip"
            )
        return network

    # -- gateways ----------------------------------------------------------------------------

    def create_gateway(self, spec: GatewayCreate) -> Gateway:
        values = spec.model_dump()
        values["physical_switch"] = spec.physical_switch or spec.name
        return self._save_gateway(Gateway(id=self.ids.new_id(), **values))

    def update_gateway(self, ref: str, patch: GatewayUpdate) -> Gateway:
        old = self.catalog.resolve(Gateway, ref, field="gateway")
        if patch.leave_ha_group and patch.ha_group:
            raise InvalidError("give either an HA group or leave_ha_group, not both", "ha_group")
        changes = patch.model_dump(exclude_none=True, exclude={"leave_ha_group"})
        if patch.leave_ha_group:
            changes["ha_group"] = None
        return self._save_gateway(old.model_copy(update=changes))

    def _save_gateway(self, gateway: Gateway) -> Gateway:
        self._check_name("gateways", gateway.tenant, gateway.name, gateway.id)
        self._check_device_name("chassis", gateway.name)
        self._claim(
            ("tunnel", gateway.tunnel_ip), f"tunnel IP {gateway.tunnel_ip}", "tunnel_ip", gateway.id
        )
        self.catalog.put("gateways", gateway)
        return gateway

    def delete_gateway(self, ref: str, *, force: bool = False) -> Gateway:
        gateway = self.catalog.resolve(Gateway, ref, field="gateway")
        bindings = self.catalog.dependents("gateway", gateway.name)
        if bindings and not force:
            raise ConflictError(
                f"gateway {gateway.name} still has {len(bindings)} binding(s); unbind or force",
                "force",
            )
        for kind, obj_id in bindings:
            self.catalog.remove(kind, obj_id)
        self.catalog.remove("gateways", gateway.id)
        return gateway

    def bind_gateway(self, gateway_ref: str, spec: GatewayBindingCreate) -> GatewayBinding:
        gateway = self.catalog.resolve(Gateway, gateway_ref, field="gateway")
        network = self.catalog.resolve(Network, spec.network, field="network")
        holder = self.catalog.holder("binding", gateway.name, spec.port, spec.vlan)
        if holder is not None:
            taken = self.catalog.get(GatewayBinding, holder[1])
            other = self.catalog.get(Network, taken.network)
            raise ConflictError(
                f"{gateway.name} {spec.port} VLAN {spec.vlan} is already bound "
                f"to network {other.name}",
                "vlan",
            )
        binding = GatewayBinding(
            id=self.ids.new_id(),
            tenant=network.tenant,
            gateway=gateway.name,
            port=spec.port,
            vlan=spec.vlan,
            network=network.id,
        )
        self.catalog.put("bindings", binding)
        return binding

    def unbind_gateway(self, gateway_ref: str, port: str, vlan: int) -> GatewayBinding:
        gateway = self.catalog.resolve(Gateway, gateway_ref, field="gateway")
        holder = self.catalog.holder("binding", gateway.name, port, vlan)
        if holder is None:
            raise NotFoundError(f"{gateway.name} {port} VLAN {vlan} is not bound", "vlan")
        binding = self.catalog.get(GatewayBinding, holder[1])
        self.catalog.remove("bindings", binding.id)
        return binding
