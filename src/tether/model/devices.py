"""The devices of the fabric — chassis and gateways — and where their tunnels end. Pure."""

from __future__ import annotations

from collections.abc import Mapping

from tether.model.catalog import Catalog
from tether.model.resources import Chassis, Gateway

__all__ = ["device_tunnel_ips"]


def device_tunnel_ips(catalog: Catalog, learned: Mapping[str, str]) -> dict[str, str]:
    """Device name -> tunnel IP: chassis as registered; gateways as configured, else as
    their switch reports it (``Physical_Switch.tunnel_ips``, passed in ``learned``)."""
    ips: dict[str, str] = {}
    for gateway in catalog.objects["gateways"].values():
        assert isinstance(gateway, Gateway)
        ip = gateway.tunnel_ip or learned.get(gateway.name)
        if ip:
            ips[gateway.name] = ip
    for chassis in catalog.objects["chassis"].values():
        assert isinstance(chassis, Chassis)
        ips[chassis.name] = chassis.tunnel_ip
    return ips
