"""The rows one hardware VTEP should hold, computed from the model and the MAC inventory. Pure.

For a gateway G and every network N bound on G (by a ``GatewayBinding``):

* a ``Logical_Switch`` named after N's id, ``tunnel_key`` = N's VNI, ``description`` =
  ``tenant/name``;
* a ``Ucast_Macs_Remote`` row for every MAC of N that the inventory locates on another
  device, with that device's tunnel IP as locator and the MAC's IP when known — never for
  MACs located behind G itself (its HA peers do get them: they learn the owner's location
  like everyone else);
* an ``unknown-dst`` ``Mcast_Macs_Remote`` row whose locators are the other VTEPs carrying N
  (devices MACs of N live behind, gateways with bindings of N);
* the ``vlan_bindings`` of G's bindings for N.

Where MACs live comes in as ``located``: network id -> MAC -> :class:`~tether.logical.Location`
(the reconciler's answer, :class:`tether.service.inventory.MacInventory`). Device names
resolve to tunnel IPs here, so a switch that changes its tunnel IP moves its MACs without
any claim changing; a MAC behind a device whose tunnel IP is not known yet is left out.

:func:`desired_configs` computes every gateway from scratch (after a model change);
:func:`update_networks` recomputes only the given networks on only the gateways that carry
them (after a location change), so that a MAC move costs the size of its network, not of
the fabric.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace

from tether.logical import Location
from tether.model import Catalog
from tether.model.devices import device_tunnel_ips
from tether.model.resources import Gateway, GatewayBinding, Network
from tether.vtep.state import GatewayConfig, LogicalSwitchConfig, RemoteMac

__all__ = [
    "Located",
    "desired_configs",
    "device_tunnel_ips",
    "update_networks",
]

Located = Callable[[str], Mapping[str, Location]]
"""Network id -> where each of its MACs lives."""


def desired_configs(
    catalog: Catalog, located: Located, learned: Mapping[str, str]
) -> dict[str, GatewayConfig]:
    """Gateway id -> its configuration; each network's shared part is computed once."""
    tunnel_ips = device_tunnel_ips(catalog, learned)
    bound = _bound(catalog)
    shared: dict[str, _NetworkPart] = {}
    configs = {}
    for gateway in catalog.objects["gateways"].values():
        assert isinstance(gateway, Gateway)
        switches = {}
        for network_id, bindings in bound.get(gateway.name, {}).items():
            part = shared.get(network_id)
            if part is None:
                part = shared[network_id] = _network_part(
                    catalog, network_id, located(network_id), tunnel_ips
                )
            switches[network_id] = part.for_gateway(gateway.name, bindings)
        configs[gateway.id] = GatewayConfig(gateway.physical_switch, switches)
    return configs


def update_networks(
    catalog: Catalog,
    configs: Mapping[str, GatewayConfig],
    networks: Iterable[str],
    located: Located,
    learned: Mapping[str, str],
) -> dict[str, GatewayConfig]:
    """The new configuration of every gateway whose share of ``networks`` changed, given
    the configurations computed before (:func:`desired_configs`)."""
    tunnel_ips = device_tunnel_ips(catalog, learned)
    updated: dict[str, GatewayConfig] = {}
    for network_id in networks:
        if network_id not in catalog.objects["networks"]:
            continue
        gateways = _gateways_of_network(catalog, network_id)
        if not gateways:
            continue
        part = _network_part(catalog, network_id, located(network_id), tunnel_ips)
        for gateway, bindings in gateways:
            config = updated.get(gateway.id) or configs.get(gateway.id)
            if config is None:
                continue
            switch = part.for_gateway(gateway.name, bindings)
            if config.switches.get(network_id) != switch:
                updated[gateway.id] = replace(
                    config, switches={**config.switches, network_id: switch}
                )
    return updated


class _NetworkPart:
    """What every gateway carrying one network shares: its identity, its MACs' locations
    and its carriers; :meth:`for_gateway` takes out the gateway's own."""

    __slots__ = ("carriers", "description", "network_id", "remote", "vni")

    def __init__(
        self,
        network_id: str,
        vni: int,
        description: str,
        remote: dict[str, tuple[str, RemoteMac]],
        carriers: dict[str, str],
    ) -> None:
        self.network_id = network_id
        self.vni = vni
        self.description = description
        self.remote = remote
        """MAC -> (device, row)."""
        self.carriers = carriers
        """Tunnel IP -> a device behind it."""

    def for_gateway(self, name: str, bindings: frozenset[tuple[str, int]]) -> LogicalSwitchConfig:
        own_ips = {ip for ip, device in self.carriers.items() if device == name}
        return LogicalSwitchConfig(
            name=self.network_id,
            tunnel_key=self.vni,
            description=self.description,
            remote_macs={
                mac: row
                for mac, (device, row) in self.remote.items()
                if device != name and row.locator not in own_ips
            },
            flood_locators=frozenset(ip for ip in self.carriers if ip not in own_ips),
            bindings=bindings,
        )


def _network_part(
    catalog: Catalog,
    network_id: str,
    macs: Mapping[str, Location],
    tunnel_ips: Mapping[str, str],
) -> _NetworkPart:
    network = catalog.get(Network, network_id)
    remote: dict[str, tuple[str, RemoteMac]] = {}
    carriers: dict[str, str] = {}
    for mac, where in macs.items():
        ip = tunnel_ips.get(where.device)
        if ip is None:
            continue  # behind a device whose tunnel IP is not known yet
        remote[mac] = (where.device, RemoteMac(mac, ip, where.ip or ""))
        carriers.setdefault(ip, where.device)
    for gateway, _bindings in _gateways_of_network(catalog, network_id):
        ip = tunnel_ips.get(gateway.name)
        if ip:
            carriers[ip] = gateway.name
    return _NetworkPart(
        network_id, network.vni, f"{network.tenant}/{network.name}", remote, carriers
    )


def _bound(catalog: Catalog) -> dict[str, dict[str, frozenset[tuple[str, int]]]]:
    """Gateway name -> network id -> its (port, VLAN) bindings."""
    bound: dict[str, dict[str, set[tuple[str, int]]]] = {}
    for binding in catalog.objects["bindings"].values():
        assert isinstance(binding, GatewayBinding)
        bound.setdefault(binding.gateway, {}).setdefault(binding.network, set()).add(
            (binding.port, binding.vlan)
        )
    return {
        gateway: {network: frozenset(pairs) for network, pairs in networks.items()}
        for gateway, networks in bound.items()
    }


def _gateways_of_network(
    catalog: Catalog, network_id: str
) -> list[tuple[Gateway, frozenset[tuple[str, int]]]]:
    """The gateways with bindings of a network, with those bindings."""
    pairs: dict[str, set[tuple[str, int]]] = {}
    for kind, obj_id in catalog.dependents("network", network_id):
        if kind == "bindings":
            binding = catalog.objects[kind][obj_id]
            assert isinstance(binding, GatewayBinding)
            pairs.setdefault(binding.gateway, set()).add((binding.port, binding.vlan))
    gateways = []
    for name, bound in sorted(pairs.items()):
        holder = catalog.holder("name", "gateways", "", name)
        if holder is not None:
            gateway = catalog.objects["gateways"][holder[1]]
            assert isinstance(gateway, Gateway)
            gateways.append((gateway, frozenset(bound)))
    return gateways
