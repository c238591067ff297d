"""Where MACs live: the reconciler's answer and its changes, the input of distribution.

:class:`Location` names the device only; the caller resolves the device's tunnel IP (it may
change without any claim changing). :class:`LocationChange` is what travels: distribution
(:mod:`tether.vtep`) turns each into ``Ucast_Macs_Remote`` rows on the devices that carry the
network, never on the device the MAC lives behind.

The reconciler returns a call's changes as :class:`Changes`: a read-only sequence of
:class:`LocationChange` values kept as flat plain tuples (:data:`ChangeRow`) and turned into
values as they are read. The reason is CPython's garbage collector: it stops tracking a plain
tuple of strings, but never a NamedTuple or dataclass instance, and a million long-lived
tracked objects made every full collection crawl over them — that alone tripled the time of
a million-claim batch.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import NamedTuple, overload

from tether.logical.claims import DeviceName, Mac, NetworkId

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


class Changes(Sequence[LocationChange]):
    """The location changes of one reconciler call, in order (see the module docstring)."""

    __slots__ = ("_rows",)

    def __init__(self, rows: list[ChangeRow]) -> None:
        self._rows = rows

    def __len__(self) -> int:
        return len(self._rows)

    @overload
    def __getitem__(self, index: int) -> LocationChange: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[LocationChange]: ...
    def __getitem__(self, index: int | slice) -> LocationChange | Sequence[LocationChange]:
        if isinstance(index, slice):
            return Changes(self._rows[index])
        return _change(self._rows[index])

    def __iter__(self) -> Iterator[LocationChange]:
        return map(_change, self._rows)

    def __repr__(self) -> str:
        return f"Changes({list(self)!r})"

    def rows(self) -> list[ChangeRow]:
        """The changes as flat tuples, for consumers on a hot path (do not modify)."""
        return self._rows
