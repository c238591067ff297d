"""Where MACs live: the reconciler's answer and its changes, the input of distribution.

:class:`Location` names the device only; the caller resolves the device's tunnel IP (it may
change without any claim changing). :class:`LocationChange` is what travels: distribution
(:mod:`tether.vtep`) turns each into ``Ucast_Macs_Remote`` rows on the devices that carry the
network, never on the device the MAC lives behind.

The reconciler returns a call's changes as :class:`Changes`: a read-only sequence of
:class:`LocationChange` values kept as plain tuples and turned into values as they are read.
The reasons are measured (``benchmarks/mac_inventory.py``): CPython's garbage collector stops
tracking a plain tuple of strings, but never a NamedTuple or dataclass instance, and a
million long-lived tracked objects made every full collection crawl over them (13 s instead
of 2.5 s for a million claims); and even plain tuples cost a fifth of the budget, so MACs
that appear are described by the claim that placed them, allocated already.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

from tether.logical.claims import ClaimRow, DeviceName, Mac, NetworkId

__all__ = ["ChangeRow", "Changes", "Location", "LocationChange"]


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


ChangeRow = tuple[NetworkId, Mac, DeviceName | None, str | None, DeviceName | None, str | None]
"""``(network, mac, old device, old ip, new device, new ip)``: a LocationChange, flat."""


def _change(row: ChangeRow) -> LocationChange:
    network, mac, old_device, old_ip, new_device, new_ip = row
    return LocationChange(
        network,
        mac,
        None if old_device is None else Location(old_device, old_ip),
        None if new_device is None else Location(new_device, new_ip),
    )


def _appearance(claim: ClaimRow) -> LocationChange:
    return LocationChange(claim[0], claim[1], None, Location(claim[2], claim[5]))


class Changes(Sequence[LocationChange]):
    """The location changes of one reconciler call, one per MAC (see the module docstring).

    Kept as two lists: ``changed`` MACs that had a location or a record before, as flat
    ChangeRows; and MACs that ``appeared`` in the call, as the very claim that placed each —
    so a first load of a million MACs allocates nothing to describe them.
    """

    __slots__ = ("_appeared", "_changed")

    def __init__(self, changed: list[ChangeRow], appeared: list[ClaimRow] | None = None) -> None:
        self._changed = changed
        self._appeared = appeared or []

    def __len__(self) -> int:
        return len(self._changed) + len(self._appeared)

    @overload
    def __getitem__(self, index: int) -> LocationChange: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[LocationChange]: ...
    def __getitem__(self, index: int | slice) -> LocationChange | Sequence[LocationChange]:
        if isinstance(index, slice):
            return list(self)[index]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        if index < len(self._changed):
            return _change(self._changed[index])
        return _appearance(self._appeared[index - len(self._changed)])

    def __iter__(self) -> Iterator[LocationChange]:
        yield from map(_change, self._changed)
        yield from map(_appearance, self._appeared)

    def __repr__(self) -> str:
        return f"Changes({list(self)!r})"

    def flat(self) -> Iterator[ChangeRow]:
        """The changes as flat tuples, for consumers on a hot path."""
        yield from self._changed
        for network, mac, device, _revision, _state, ip in self._appeared:
            yield (network, mac, None, None, device, ip)
