"""A flow-table simulator: where does this packet go? Pure.

It runs a packet (a dict of ``ovs-ofctl`` field names) through a flow set as OpenFlow 1.3
does for the subset tether's pipeline uses: in each table the highest-priority matching flow
wins (a tie between overlapping flows is an error: the switch's pick would be arbitrary);
actions apply in order; ``goto_table`` continues; no matching flow drops; output to the
packet's own input port is dropped unless it is ``IN_PORT``. Registers and ``metadata``
start at 0. Tests ask it behavioural questions ("this packet from this port reaches that
tunnel with that VNI") instead of comparing flow lists; the integration tests ask the same
of ``ovs-appctl ofproto/trace``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.openflow.flows import (
    IN_PORT,
    Controller,
    DecTtl,
    Flow,
    Goto,
    Load,
    Move,
    Output,
    SetField,
)

__all__ = ["Delivery", "Outcome", "SimulationError", "simulate"]

Packet = Mapping[str, Any]


class SimulationError(ValueError):
    """The flows are ambiguous or loop."""


@dataclass(frozen=True, slots=True)
class Delivery:
    port: int
    packet: Mapping[str, Any]
    """The packet as it left (rewritten fields, ``tun_id``/``tun_dst`` for the tunnel)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    deliveries: tuple[Delivery, ...] = ()
    to_controller: bool = False
    trace: tuple[str, ...] = field(default=(), compare=False)

    @property
    def dropped(self) -> bool:
        return not self.deliveries and not self.to_controller

    def ports(self) -> set[int]:
        return {d.port for d in self.deliveries}


def simulate(flows: Iterable[Flow], packet: Packet) -> Outcome:
    """Run ``packet`` (with ``in_port``) through ``flows`` from table 0."""
    tables: dict[int, list[Flow]] = {}
    for entry in flows:
        tables.setdefault(entry.table, []).append(entry)
    for entries in tables.values():
        entries.sort(key=lambda f: -f.priority)
    state: dict[str, Any] = {"metadata": 0, **{f"reg{i}": 0 for i in range(16)}, **packet}
    deliveries: list[Delivery] = []
    to_controller = False
    trace: list[str] = []
    table = 0
    for _ in range(64):
        flow = _lookup(tables.get(table, []), state)
        if flow is None:
            trace.append(f"table {table}: no match, dropped")
            break
        trace.append(f"table {table}: priority {flow.priority} {flow.comment}".rstrip())
        goto = None
        for action in flow.actions:
            if isinstance(action, Output):
                if action.port == IN_PORT:
                    deliveries.append(Delivery(int(state["in_port"]), dict(state)))
                elif action.port != state["in_port"]:
                    deliveries.append(Delivery(action.port, dict(state)))
            elif isinstance(action, SetField | Load):
                state[action.field] = action.value
            elif isinstance(action, Move):
                state[action.dst] = state.get(action.src)
            elif isinstance(action, DecTtl):
                ttl = int(state.get("nw_ttl", 64))
                if ttl <= 1:
                    trace.append("TTL expired")
                    return Outcome(tuple(deliveries), to_controller, tuple(trace))
                state["nw_ttl"] = ttl - 1
            elif isinstance(action, Controller):
                to_controller = True
            elif isinstance(action, Goto):
                goto = action.table
        if goto is None:
            break
        if goto <= table:
            raise SimulationError(f"goto_table {goto} from table {table} goes backwards")
        table = goto
    else:
        raise SimulationError("too many tables")
    return Outcome(tuple(deliveries), to_controller, tuple(trace))


def _lookup(entries: list[Flow], state: Mapping[str, Any]) -> Flow | None:
    best: Flow | None = None
    for flow in entries:
        if best is not None and flow.priority < best.priority:
            break
        if all(_matches(state, name, value) for name, value in flow.match):
            if best is not None:
                raise SimulationError(
                    f"two flows match at priority {flow.priority}: {best}, {flow}"
                )
            best = flow
    return best


def _matches(state: Mapping[str, Any], name: str, value: str | int) -> bool:
    have = state.get(name)
    if have is None:
        return False
    if isinstance(value, int):
        return bool(have == value)
    if "/" not in value:
        return str(have).lower() == value.lower()
    base, mask = value.split("/", 1)
    if ":" in base:  # a MAC with a mask
        return _mac_int(str(have)) & _mac_int(mask) == _mac_int(base) & _mac_int(mask)
    return ipaddress.ip_address(str(have)) in ipaddress.ip_network(value, strict=False)


def _mac_int(mac: str) -> int:
    return int(mac.replace(":", ""), 16)
