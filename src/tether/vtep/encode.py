"""Planned operations -> ``hardware_vtep`` OVSDB operations (RFC 7047 ``transact``). Pure.

References are resolved at encoding time against :class:`Refs`, the uuids the switch holds
right now: a logical switch or locator that already exists is referred to by uuid; one
created in the same transaction by its ``named-uuid``. A ``Physical_Locator`` is not a root
table — one that nothing references is garbage-collected at commit — so a locator is always
inserted in the transaction that first uses it.

``lock`` mode's pending mark is one key of ``Logical_Switch.other_config``, a map the switch
may use too: it is set and cleared with ``mutate`` (never an ``update`` of the whole map), so
the switch's own keys stay.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from tether.vtep.ops import (
    Bind,
    EnsureLogicalSwitch,
    EnsureRemoteMac,
    EnsureUnknownDst,
    MarkConsistent,
    MarkPending,
    Op,
    RemoveLogicalSwitch,
    RemoveRow,
    Transaction,
    Unbind,
)
from tether.vtep.state import PENDING, UNKNOWN_DST

__all__ = ["ENCAPSULATION", "EncodeError", "Refs", "encode"]

ENCAPSULATION = "vxlan_over_ipv4"

Json = dict[str, Any]


class EncodeError(ValueError):
    """An op refers to something the switch does not have (a port, a logical switch)."""


@dataclass(frozen=True, slots=True)
class Refs:
    switches: Mapping[str, str]
    """Logical switch name -> uuid."""
    locators: Mapping[str, str]
    """Tunnel IP -> Physical_Locator uuid."""
    ports: Mapping[str, str]
    """Physical port name -> uuid."""


@dataclass
class _Names:
    """Rows created in the transaction being encoded."""

    switches: dict[str, str] = field(default_factory=dict)
    locators: dict[str, str] = field(default_factory=dict)
    count: int = 0

    def fresh(self, prefix: str) -> str:
        self.count += 1
        return f"{prefix}{self.count}"


def _where(uuid: str) -> list[list[Any]]:
    return [["_uuid", "==", ["uuid", uuid]]]


def _mark_pending(switch: str, value: bool) -> Json:
    """Set or clear ``other_config:tether-pending`` of logical switch ``switch`` (a
    ``delete`` first: ``insert`` never replaces the value of a key already there)."""
    mutations: list[list[Any]] = [["other_config", "delete", ["set", [PENDING]]]]
    if value:
        mutations.append(["other_config", "insert", ["map", [[PENDING, "true"]]]])
    return {
        "op": "mutate",
        "table": "Logical_Switch",
        "where": [["name", "==", switch]],
        "mutations": mutations,
    }


class _Encoder:
    def __init__(self, refs: Refs) -> None:
        self.refs = refs
        self.names = _Names()
        self.ops: list[Json] = []

    def switch_ref(self, name: str) -> list[str]:
        if name in self.names.switches:
            return ["named-uuid", self.names.switches[name]]
        if name in self.refs.switches:
            return ["uuid", self.refs.switches[name]]
        raise EncodeError(f"logical switch {name} does not exist on the switch")

    def locator_ref(self, ip: str) -> list[str]:
        if ip in self.names.locators:
            return ["named-uuid", self.names.locators[ip]]
        if ip in self.refs.locators:
            return ["uuid", self.refs.locators[ip]]
        name = self.names.fresh("loc")
        self.names.locators[ip] = name
        row = {"encapsulation_type": ENCAPSULATION, "dst_ip": ip}
        insert = {"op": "insert", "table": "Physical_Locator", "row": row, "uuid-name": name}
        self.ops.append(insert)
        return ["named-uuid", name]

    def port_uuid(self, port: str) -> str:
        if port not in self.refs.ports:
            raise EncodeError(f"physical port {port} does not exist on the switch")
        return self.refs.ports[port]

    def add(self, op: Op) -> None:
        if isinstance(op, EnsureLogicalSwitch):
            self.logical_switch(op)
        elif isinstance(op, MarkConsistent):
            self.ops.append(
                {
                    "op": "update",
                    "table": "Logical_Switch",
                    "where": [["name", "==", op.switch]],
                    "row": {"state_consistent": op.value},
                }
            )
        elif isinstance(op, MarkPending):
            self.ops.append(_mark_pending(op.switch, op.value))
        elif isinstance(op, EnsureRemoteMac):
            self.remote_mac(op)
        elif isinstance(op, EnsureUnknownDst):
            self.unknown_dst(op)
        elif isinstance(op, RemoveRow | RemoveLogicalSwitch):
            table = op.table if isinstance(op, RemoveRow) else "Logical_Switch"
            self.ops.append({"op": "delete", "table": table, "where": _where(op.uuid)})
        elif isinstance(op, Bind):
            self.bind(op)
        else:
            self.unbind(op)

    def logical_switch(self, op: EnsureLogicalSwitch) -> None:
        row: Json = {"tunnel_key": op.tunnel_key, "description": op.description}
        if op.state_consistent is not None:
            row["state_consistent"] = op.state_consistent
        if op.exists:
            where = [["name", "==", op.name]]
            self.ops.append({"op": "update", "table": "Logical_Switch", "where": where, "row": row})
            if op.pending:
                self.ops.append(_mark_pending(op.name, True))
            return
        name = self.names.fresh("ls")
        self.names.switches[op.name] = name
        row["name"] = op.name
        if op.pending:
            row["other_config"] = ["map", [[PENDING, "true"]]]
        self.ops.append({"op": "insert", "table": "Logical_Switch", "row": row, "uuid-name": name})

    def remote_mac(self, op: EnsureRemoteMac) -> None:
        row = {
            "MAC": op.mac,
            "logical_switch": self.switch_ref(op.switch),
            "locator": self.locator_ref(op.locator),
            "ipaddr": op.ip,
        }
        if op.uuid is None:
            self.ops.append({"op": "insert", "table": "Ucast_Macs_Remote", "row": row})
        else:
            self.ops.append(
                {"op": "update", "table": "Ucast_Macs_Remote", "where": _where(op.uuid), "row": row}
            )

    def unknown_dst(self, op: EnsureUnknownDst) -> None:
        locators = [self.locator_ref(ip) for ip in sorted(op.locator_ips)]
        set_name = self.names.fresh("set")
        self.ops.append(
            {
                "op": "insert",
                "table": "Physical_Locator_Set",
                "uuid-name": set_name,
                "row": {"locators": ["set", locators]},
            }
        )
        row = {
            "MAC": UNKNOWN_DST,
            "logical_switch": self.switch_ref(op.switch),
            "locator_set": ["named-uuid", set_name],
            "ipaddr": "",
        }
        if op.uuid is None:
            self.ops.append({"op": "insert", "table": "Mcast_Macs_Remote", "row": row})
        else:
            self.ops.append(
                {"op": "update", "table": "Mcast_Macs_Remote", "where": _where(op.uuid), "row": row}
            )

    def bind(self, op: Bind) -> None:
        mutations = [
            ["vlan_bindings", "delete", ["set", [op.vlan]]],
            ["vlan_bindings", "insert", ["map", [[op.vlan, self.switch_ref(op.switch)]]]],
        ]
        self.ops.append(
            {
                "op": "mutate",
                "table": "Physical_Port",
                "where": _where(self.port_uuid(op.port)),
                "mutations": mutations,
            }
        )

    def unbind(self, op: Unbind) -> None:
        self.ops.append(
            {
                "op": "mutate",
                "table": "Physical_Port",
                "where": _where(self.port_uuid(op.port)),
                "mutations": [["vlan_bindings", "delete", ["set", [op.vlan]]]],
            }
        )


def encode(transaction: Transaction, refs: Refs) -> list[Json]:
    """The ``transact`` operations (without the database name) for one planned transaction."""
    encoder = _Encoder(refs)
    for lock in sorted(transaction.locks):
        encoder.ops.append({"op": "assert", "lock": lock})
    for op in transaction.ops:
        encoder.add(op)
    return encoder.ops
