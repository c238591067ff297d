"""An emulated switch's forwarding state as values, and where a frame goes. Pure.

A :class:`ForwardingTable` is one logical switch as the ASIC holds it (the patent's forwarding
tables 450, FIG. 4): its VNI, the (port, VLAN) pairs bound to it, the remote MACs with the
tunnel IP (locator) behind each, and the flood locators (the ``unknown-dst`` set) for
broadcast and unknown unicast. :func:`lookup` answers "a frame enters port P on VLAN N for MAC
M: where does it go?" from those tables only.

:mod:`.switch_agent` decides which tables to program, :mod:`.asic` holds them and
:mod:`.records` stores them as JSON (the ``to_json`` methods give that form). A
:class:`HistoryEntry` is one applied change.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["ForwardingTable", "HistoryEntry", "RemoteEntry", "Verdict", "lookup"]

Action = Literal["forward", "flood", "drop"]


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """A remote MAC's tunnel destination (``Physical_Locator.dst_ip``) and IP address."""

    locator: str
    ip: str = ""


@dataclass(frozen=True, slots=True)
class ForwardingTable:
    """One logical switch as programmed into the ASIC."""

    name: str
    vni: int
    bindings: frozenset[tuple[str, int]] = frozenset()
    """(physical port, VLAN) pairs whose frames belong to this logical switch."""
    remote_macs: Mapping[str, RemoteEntry] = field(default_factory=dict)
    """Lower-case MAC -> where it lives."""
    flood_locators: frozenset[str] = frozenset()
    """Tunnel IPs that receive broadcast and unknown-unicast frames."""

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "vni": self.vni,
            "bindings": [[port, vlan] for port, vlan in sorted(self.bindings)],
            "remote_macs": {
                mac: {"locator": entry.locator, "ip": entry.ip}
                for mac, entry in sorted(self.remote_macs.items())
            },
            "flood_locators": sorted(self.flood_locators),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForwardingTable:
        return cls(
            name=str(data["name"]),
            vni=int(data["vni"]),
            bindings=frozenset((str(port), int(vlan)) for port, vlan in data["bindings"]),
            remote_macs={
                str(mac): RemoteEntry(str(entry["locator"]), str(entry.get("ip", "")))
                for mac, entry in data["remote_macs"].items()
            },
            flood_locators=frozenset(str(ip) for ip in data["flood_locators"]),
        )


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One change applied to the ASIC: a logical switch's whole new table, or its removal."""

    time: float
    """Unix time (seconds) at which it was applied."""
    switch: str
    """The logical switch's name."""
    vni: int
    state: ForwardingTable | None
    """The complete programmed table, None when the logical switch was removed."""

    def to_json(self) -> dict[str, Any]:
        state = None if self.state is None else self.state.to_json()
        return {"time": self.time, "switch": self.switch, "vni": self.vni, "state": state}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> HistoryEntry:
        state = data.get("state")
        return cls(
            time=float(data["time"]),
            switch=str(data["switch"]),
            vni=int(data["vni"]),
            state=None if state is None else ForwardingTable.from_json(state),
        )


@dataclass(frozen=True, slots=True)
class Verdict:
    """What the ASIC does with one frame."""

    action: Action
    logical_switch: str | None = None
    vni: int | None = None
    locators: tuple[str, ...] = ()
    """Tunnel IPs the frame is sent to (one for ``forward``, the flood set for ``flood``)."""
    local_ports: tuple[tuple[str, int], ...] = ()
    """Other bound (port, VLAN) pairs of the logical switch a flooded frame also leaves by."""
    reason: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "logical_switch": self.logical_switch,
            "vni": self.vni,
            "locators": list(self.locators),
            "local_ports": [list(pair) for pair in self.local_ports],
            "reason": self.reason,
        }

    def describe(self) -> str:
        """One line for people: ``forward 192.0.2.11 (ls vni 5001): ...``."""
        where = f" ({self.logical_switch} vni {self.vni})" if self.logical_switch else ""
        targets = ",".join(self.locators)
        head = f"{self.action} {targets}" if targets else self.action
        return f"{head}{where}: {self.reason}"


def _is_group(mac: str) -> bool:
    """Broadcast and multicast MACs have the least significant bit of the first octet set."""
    try:
        return bool(int(mac.split(":", maxsplit=1)[0], 16) & 1)
    except ValueError:
        return False


def lookup(tables: Mapping[str, ForwardingTable], *, port: str, vlan: int, mac: str) -> Verdict:
    """Where a frame entering ``port`` tagged ``vlan`` for destination ``mac`` goes."""
    table = next((t for t in tables.values() if (port, vlan) in t.bindings), None)
    if table is None:
        return Verdict("drop", reason=f"no logical switch is bound to {port} vlan {vlan}")
    mac = mac.lower()
    entry = None if _is_group(mac) else table.remote_macs.get(mac)
    if entry is not None:
        return Verdict(
            "forward", table.name, table.vni, (entry.locator,), reason=f"remote MAC {mac}"
        )
    others = tuple(sorted(pair for pair in table.bindings if pair != (port, vlan)))
    why = "broadcast/multicast" if _is_group(mac) else f"unknown MAC {mac}"
    if not table.flood_locators and not others:
        return Verdict("drop", table.name, table.vni, reason=f"{why} and nowhere to flood")
    return Verdict(
        "flood", table.name, table.vni, tuple(sorted(table.flood_locators)), others, reason=why
    )
