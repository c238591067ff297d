"""The rows one hardware VTEP should hold, computed from the model. Pure.

For a gateway G and every network N bound on G (by a ``GatewayBinding``):

* a ``Logical_Switch`` named after N's id, ``tunnel_key`` = N's VNI, ``description`` =
  ``tenant/name``;
* a ``Ucast_Macs_Remote`` row for every MAC of N that lives on another VTEP, with that VTEP's
  tunnel IP as locator and the MAC's IP when known — never for MACs behind G itself;
* an ``unknown-dst`` ``Mcast_Macs_Remote`` row whose locators are the other VTEPs carrying N
  (chassis with ports of N, other gateways with bindings of N);
* the ``vlan_bindings`` of G's bindings for N.

Where MACs live comes in as :class:`MacLocation` values: today the ports bound to a chassis
(:func:`port_locations`); the MAC inventory adds the MACs switches learn.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from tether.model import Catalog
from tether.model.resources import Chassis, Gateway, GatewayBinding, Network, Port
from tether.vtep.state import GatewayConfig, LogicalSwitchConfig, RemoteMac

__all__ = [
    "MacLocation",
    "desired_config",
    "desired_configs",
    "gateway_tunnel_ips",
    "port_locations",
]


@dataclass(frozen=True, slots=True)
class MacLocation:
    network: str
    mac: str
    ip: str
    device: str
    """Name of the chassis or gateway the MAC lives behind."""
    tunnel_ip: str


def port_locations(catalog: Catalog) -> list[MacLocation]:
    """Every port bound to a chassis lives behind that chassis's tunnel IP."""
    chassis_ip = {
        c.name: c.tunnel_ip for c in catalog.objects["chassis"].values() if isinstance(c, Chassis)
    }
    located = []
    for port in catalog.objects["ports"].values():
        if isinstance(port, Port) and port.chassis and port.chassis in chassis_ip:
            ip = port.ips[0] if port.ips else ""
            located.append(
                MacLocation(port.network, port.mac, ip, port.chassis, chassis_ip[port.chassis])
            )
    return located


def _carriers(
    catalog: Catalog, locations: Iterable[MacLocation], tunnel_ips: Mapping[str, str]
) -> dict[str, set[str]]:
    """Network id -> tunnel IPs of every VTEP carrying it."""
    carriers: dict[str, set[str]] = {}
    for where in locations:
        carriers.setdefault(where.network, set()).add(where.tunnel_ip)
    for binding in catalog.objects["bindings"].values():
        assert isinstance(binding, GatewayBinding)
        tunnel_ip = tunnel_ips.get(binding.gateway)
        if tunnel_ip:
            carriers.setdefault(binding.network, set()).add(tunnel_ip)
    return carriers


def gateway_tunnel_ips(catalog: Catalog, learned: Mapping[str, str]) -> dict[str, str]:
    """Gateway name -> tunnel IP: as configured, else as the switch reports it
    (``Physical_Switch.tunnel_ips``, passed in ``learned`` by the agents)."""
    ips = {}
    for gateway in catalog.objects["gateways"].values():
        assert isinstance(gateway, Gateway)
        ip = gateway.tunnel_ip or learned.get(gateway.name)
        if ip:
            ips[gateway.name] = ip
    return ips


def desired_configs(
    catalog: Catalog, locations: Iterable[MacLocation], learned: Mapping[str, str]
) -> dict[str, GatewayConfig]:
    """Gateway id -> its configuration; the shared parts are computed once for all."""
    located = list(locations)
    tunnel_ips = gateway_tunnel_ips(catalog, learned)
    carriers = _carriers(catalog, located, tunnel_ips)
    by_network: dict[str, list[MacLocation]] = {}
    for where in located:
        by_network.setdefault(where.network, []).append(where)
    configs = {}
    for gateway in catalog.objects["gateways"].values():
        assert isinstance(gateway, Gateway)
        configs[gateway.id] = _gateway_config(
            catalog, gateway, tunnel_ips.get(gateway.name), carriers, by_network
        )
    return configs


def desired_config(
    catalog: Catalog, gateway: Gateway, locations: Iterable[MacLocation]
) -> GatewayConfig:
    """One gateway's configuration (see :func:`desired_configs` for many)."""
    return desired_configs(catalog, locations, {})[gateway.id]


def _gateway_config(
    catalog: Catalog,
    gateway: Gateway,
    own_ip: str | None,
    carriers: Mapping[str, set[str]],
    by_network: Mapping[str, list[MacLocation]],
) -> GatewayConfig:
    bound: dict[str, set[tuple[str, int]]] = {}
    for binding in catalog.dependents("gateway", gateway.name):
        found = catalog.objects[binding[0]][binding[1]]
        assert isinstance(found, GatewayBinding)
        bound.setdefault(found.network, set()).add((found.port, found.vlan))
    switches = {}
    for network_id, bindings in bound.items():
        network = catalog.get(Network, network_id)
        remote = {
            where.mac: RemoteMac(where.mac, where.tunnel_ip, where.ip)
            for where in by_network.get(network_id, ())
            if where.tunnel_ip != own_ip  # never a MAC that lives behind this switch
        }
        switches[network_id] = LogicalSwitchConfig(
            name=network_id,
            tunnel_key=network.vni,
            description=f"{network.tenant}/{network.name}",
            remote_macs=remote,
            flood_locators=frozenset(carriers.get(network_id, set()) - {own_ip or ""}),
            bindings=frozenset(bindings),
        )
    return GatewayConfig(physical_switch=gateway.physical_switch, switches=switches)
