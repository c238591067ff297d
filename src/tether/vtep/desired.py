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

from collections.abc import Iterable
from dataclasses import dataclass

from tether.model import Catalog
from tether.model.resources import Chassis, Gateway, GatewayBinding, Network, Port
from tether.vtep.state import GatewayConfig, LogicalSwitchConfig, RemoteMac

__all__ = ["MacLocation", "desired_config", "port_locations"]


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


def _carriers(catalog: Catalog, locations: Iterable[MacLocation]) -> dict[str, set[str]]:
    """Network id -> tunnel IPs of every VTEP carrying it."""
    carriers: dict[str, set[str]] = {}
    for where in locations:
        carriers.setdefault(where.network, set()).add(where.tunnel_ip)
    gateway_ip = {
        g.name: g.tunnel_ip
        for g in catalog.objects["gateways"].values()
        if isinstance(g, Gateway) and g.tunnel_ip
    }
    for binding in catalog.objects["bindings"].values():
        assert isinstance(binding, GatewayBinding)
        tunnel_ip = gateway_ip.get(binding.gateway)
        if tunnel_ip:
            carriers.setdefault(binding.network, set()).add(tunnel_ip)
    return carriers


def desired_config(
    catalog: Catalog, gateway: Gateway, locations: Iterable[MacLocation]
) -> GatewayConfig:
    located = list(locations)
    mine = [
        b
        for b in catalog.objects["bindings"].values()
        if isinstance(b, GatewayBinding) and b.gateway == gateway.name
    ]
    bound: dict[str, set[tuple[str, int]]] = {}
    for binding in mine:
        bound.setdefault(binding.network, set()).add((binding.port, binding.vlan))
    carriers = _carriers(catalog, located)
    own_ip = gateway.tunnel_ip
    macs: dict[str, dict[str, RemoteMac]] = {network: {} for network in bound}
    for where in located:
        if where.network in macs and where.tunnel_ip != own_ip and where.device != gateway.name:
            macs[where.network][where.mac] = RemoteMac(where.mac, where.tunnel_ip, where.ip)
    switches = {}
    for network_id, bindings in bound.items():
        network = catalog.get(Network, network_id)
        switches[network_id] = LogicalSwitchConfig(
            name=network_id,
            tunnel_key=network.vni,
            description=f"{network.tenant}/{network.name}",
            remote_macs=macs[network_id],
            flood_locators=frozenset(carriers.get(network_id, set()) - {own_ip or ""}),
            bindings=frozenset(bindings),
        )
    return GatewayConfig(physical_switch=gateway.physical_switch, switches=switches)
