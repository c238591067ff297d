"""What an emulated switch writes about itself into its own database at power-on. Pure.

A real hardware VTEP fills ``Global``, its ``Physical_Switch`` row (name, tunnel IPs) and one
``Physical_Port`` per front-panel port before any controller connects. :func:`bootstrap_ops`
computes that transaction from what the database already holds (the rows of
:data:`SELECTS`), so a restart on an existing database adds nothing twice and keeps the
controller's rows (``vlan_bindings`` included). Ports missing from ``ports`` are left alone:
they may still carry bindings.

``Physical_Switch`` and ``Physical_Port`` are not root tables: a new one is inserted in the
same transaction as its first strong reference (``Global.switches``,
``Physical_Switch.ports``), or the server would collect it at commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from tether.ovsdb import ops

__all__ = ["SELECTS", "bootstrap_ops"]

Rows = Sequence[Mapping[str, Any]]
"""Rows as a ``select`` returns them (OVSDB JSON notation, with ``_uuid``)."""

SELECTS = [
    ops.select("Global", [], ["_uuid", "switches"]),
    ops.select("Physical_Switch", [], ["_uuid", "name", "ports", "tunnel_ips"]),
    ops.select("Physical_Port", [], ["_uuid", "name"]),
]
"""Run these in one transaction; pass the three row lists to :func:`bootstrap_ops`."""


def _uuids(value: Any) -> list[str]:
    """The uuids of a set-of-references value (``["set", [...]]`` or one ``["uuid", u]``)."""
    if isinstance(value, list) and value and value[0] == "set":
        return [str(item[1]) for item in value[1]]
    if isinstance(value, list) and value and value[0] == "uuid":
        return [str(value[1])]
    return []


def _strings(value: Any) -> list[str]:
    if isinstance(value, list) and value and value[0] == "set":
        return [str(item) for item in value[1]]
    return [str(value)]


def bootstrap_ops(
    globals_: Rows,
    switches: Rows,
    ports: Rows,
    *,
    name: str,
    tunnel_ip: str,
    port_names: Sequence[str],
) -> list[dict[str, Any]]:
    """The transaction that makes the database describe this switch; empty if it does."""
    switch = next((row for row in switches if row.get("name") == name), None)
    port_name = {str(row["_uuid"][1]): str(row.get("name", "")) for row in ports}
    have = set() if switch is None else {port_name.get(u) for u in _uuids(switch["ports"])}
    new_ports = [port for port in dict.fromkeys(port_names) if port not in have]
    result = [
        ops.insert("Physical_Port", {"name": port}, uuid_name=f"port{index}")
        for index, port in enumerate(new_ports)
    ]
    refs = [ops.named_uuid(f"port{index}") for index in range(len(new_ports))]
    if switch is None:
        row = {"name": name, "tunnel_ips": ops.oset([tunnel_ip]), "ports": ops.oset(refs)}
        result.append(ops.insert("Physical_Switch", row, uuid_name="switch"))
        switch_ref = ops.named_uuid("switch")
    else:
        switch_ref = switch["_uuid"]
        where = [ops.condition("_uuid", "==", switch_ref)]
        if _strings(switch["tunnel_ips"]) != [tunnel_ip]:
            result.append(
                ops.update("Physical_Switch", where, {"tunnel_ips": ops.oset([tunnel_ip])})
            )
        if refs:
            result.append(
                ops.mutate("Physical_Switch", where, [["ports", "insert", ops.oset(refs)]])
            )
    result.extend(_global_ops(globals_, switch_ref))
    return result


def _global_ops(globals_: Rows, switch_ref: list[str]) -> list[dict[str, Any]]:
    if not globals_:
        return [ops.insert("Global", {"switches": ops.oset([switch_ref])})]
    row = globals_[0]
    if switch_ref[0] == "uuid" and switch_ref[1] in _uuids(row["switches"]):
        return []
    where = [ops.condition("_uuid", "==", row["_uuid"])]
    return [ops.mutate("Global", where, [["switches", "insert", ops.oset([switch_ref])]])]
