"""Where MACs live: the reconciler's answer and its changes, the input of distribution.

:class:`Location` names the device only; the caller resolves the device's tunnel IP (it may
change without any claim changing). :class:`LocationChange` is what travels: distribution
(:mod:`tether.vtep`) turns each into ``Ucast_Macs_Remote`` rows on the devices that carry the
network, never on the device the MAC lives behind.

Both are NamedTuples rather than dataclasses: immutable values all the same, but the
reconciler makes one of each per changed MAC on its hot path, at a third of the cost.
"""

from __future__ import annotations

from typing import NamedTuple

from tether.logical.claims import DeviceName, Mac, NetworkId

__all__ = ["Location", "LocationChange"]


class Location(NamedTuple):
    """Behind ``device``, with the IP its owner reported (None when unknown)."""

    device: DeviceName
    ip: str | None


class LocationChange(NamedTuple):
    """A MAC appeared (``old`` None), moved or changed IP, or disappeared (``new`` None)."""

    network: NetworkId
    mac: Mac
    old: Location | None
    new: Location | None

    @property
    def ip(self) -> str | None:
        """The MAC's IP: the new location's, or the last known one when it disappeared."""
        where = self.new or self.old
        return where.ip if where else None
