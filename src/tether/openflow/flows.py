"""OpenFlow flows as values: matches, actions, the flow itself, and its ``ovs-ofctl`` text.

A :class:`Flow` is immutable and hashable, so a desired flow set is a ``frozenset`` and the
difference between desired and installed is set arithmetic (:mod:`tether.openflow.diff`).
Fields use ``ovs-ofctl`` names (``in_port``, ``dl_src``, ``arp_tpa``, ``tun_id``, ...) so
that :func:`to_ofctl` is a plain rendering and ``ovs-ofctl dump-flows`` reads back the same.
A match value is either exact (``"02:00:00:00:00:01"``, ``5``) or a ``value/mask`` string
(``"01:00:00:00:00:00/01:00:00:00:00:00"``, ``"10.0.1.0/24"``). Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = [
    "IN_PORT",
    "Action",
    "Controller",
    "DecTtl",
    "Flow",
    "Goto",
    "Load",
    "Move",
    "Output",
    "SetField",
    "match",
    "to_ofctl",
]

Match = tuple[tuple[str, str | int], ...]
"""Field -> value pairs, sorted by field: hashable and printed in a stable order."""


def match(**fields: str | int | None) -> Match:
    """A match from keyword fields; None values are left out."""
    return tuple(sorted((k, v) for k, v in fields.items() if v is not None))


IN_PORT = 0xFFFF_FFF8
"""OpenFlow's ``OFPP_IN_PORT``: back out of the port the packet came in on."""


@dataclass(frozen=True, slots=True)
class Output:
    """Send the packet out of an OpenFlow port. Output to the packet's own input port is
    dropped by OpenFlow unless it is :data:`IN_PORT` — flooding relies on it: a VM never
    gets its own broadcast back."""

    port: int

    def ofctl(self) -> str:
        return "in_port" if self.port == IN_PORT else f"output:{self.port}"


@dataclass(frozen=True, slots=True)
class SetField:
    field: str
    value: str | int

    def ofctl(self) -> str:
        return f"set_field:{self.value}->{self.field}"


@dataclass(frozen=True, slots=True)
class Load:
    """Write a register (``reg0``..``reg15``) or ``metadata``."""

    field: str
    value: int

    def ofctl(self) -> str:
        return f"load:{self.value:#x}->{_nxm(self.field)}[]"


@dataclass(frozen=True, slots=True)
class Move:
    """Copy one field into another (the ARP responder swaps addresses with it)."""

    src: str
    dst: str

    def ofctl(self) -> str:
        return f"move:{_nxm(self.src)}[]->{_nxm(self.dst)}[]"


@dataclass(frozen=True, slots=True)
class DecTtl:
    def ofctl(self) -> str:
        return "dec_ttl"


@dataclass(frozen=True, slots=True)
class Controller:
    """Send the packet to the agent (DHCP only: nothing else is ever punted)."""

    reason: str = "action"

    def ofctl(self) -> str:
        return "controller"


@dataclass(frozen=True, slots=True)
class Goto:
    """Continue in a later table (by number: :mod:`tether.openflow.pipeline` names them)."""

    table: int

    def ofctl(self) -> str:
        return f"goto_table:{self.table}"


Action = Output | SetField | Load | Move | DecTtl | Controller | Goto


@dataclass(frozen=True, slots=True)
class Flow:
    """One flow entry. No actions means drop."""

    table: int
    priority: int
    match: Match
    actions: tuple[Action, ...] = ()
    cookie: int = 0
    comment: str = field(default="", compare=False, hash=False)
    """Why the flow exists (for humans; not installed)."""

    @property
    def key(self) -> tuple[int, int, Match]:
        """What OpenFlow identifies a flow by: table, priority and match."""
        return (self.table, self.priority, self.match)

    def fields(self) -> Mapping[str, str | int]:
        return dict(self.match)


def to_ofctl(flow: Flow, *, with_cookie: bool = True) -> str:
    """The flow in ``ovs-ofctl add-flow`` syntax."""
    parts = []
    if with_cookie:
        parts.append(f"cookie={flow.cookie:#x}")
    parts.append(f"table={flow.table}")
    parts.append(f"priority={flow.priority}")
    parts += [_match_text(name, value) for name, value in flow.match]
    actions = ",".join(action.ofctl() for action in flow.actions) or "drop"
    return ",".join(parts) + f",actions={actions}"


def _match_text(name: str, value: str | int) -> str:
    if name == "dl_type" and isinstance(value, int):
        return f"dl_type={value:#06x}"
    return f"{name}={value}"


_NXM = {
    "dl_src": "NXM_OF_ETH_SRC",
    "dl_dst": "NXM_OF_ETH_DST",
    "arp_sha": "NXM_NX_ARP_SHA",
    "arp_tha": "NXM_NX_ARP_THA",
    "arp_spa": "NXM_OF_ARP_SPA",
    "arp_tpa": "NXM_OF_ARP_TPA",
    "arp_op": "NXM_OF_ARP_OP",
    "metadata": "OXM_OF_METADATA",
    "tun_id": "NXM_NX_TUN_ID",
}


def _nxm(name: str) -> str:
    if name.startswith("reg"):
        return f"NXM_NX_{name.upper()}"
    return _NXM[name]
