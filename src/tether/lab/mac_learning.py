"""What the ovs ASIC learned, and the ``Ucast_Macs_Local`` rows that report it. Pure.

The ovs ASIC learns source MACs with OpenFlow ``learn()`` into its ``macs`` table
(:mod:`.ovs_pipeline`); ``ovs-ofctl monitor BR watch:table=N`` prints every learned flow as
it is added, replaced or deleted (aged out, or removed because its segment was unbound).
:func:`parse_monitor_line` turns one printed line into a :class:`MacEvent`. Why a flow monitor
and not packet-ins to a controller: learning stays in the datapath at line rate, ageing is
OVS's own idle timeout, and the monitor reports exactly the table's changes — initial
contents included — with nothing polled.

:func:`local_mac_ops` is the reconciler: from the learned MACs, what the ASIC programs and
the ``hardware_vtep`` rows as replicated, the transaction that makes ``Ucast_Macs_Local``
say exactly that (MAC, logical switch, this switch's own tunnel-IP ``Physical_Locator``,
empty ``ipaddr``). MACs of a logical switch that is not programmed are not reported.
:mod:`.local_macs` is the OVSDB shell that runs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Set
from dataclasses import dataclass
from typing import Any

from tether.lab.forwarding import ForwardingTable
from tether.ovsdb import ops
from tether.ovsdb.replica import Row, Uuid

__all__ = ["LearnedMac", "MacEvent", "local_mac_ops", "parse_monitor_line"]

_EVENT = re.compile(r"\bevent=(ADDED|MODIFIED|DELETED)\b")
_REASON = re.compile(r"\breason=(\S+)")
_METADATA = re.compile(r"\bmetadata=(0x[0-9a-fA-F]+|\d+)\b")
_DL_DST = re.compile(r"\bdl_dst=([0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5})\b")
_LOCAL_LOCATOR = "local_locator"


@dataclass(frozen=True, slots=True, order=True)
class LearnedMac:
    vni: int
    mac: str
    """Lower case."""


@dataclass(frozen=True, slots=True)
class MacEvent:
    learned: LearnedMac
    present: bool
    """True: learned (or re-learned); False: gone."""
    reason: str = ""
    """Why it went (``idle``, ``delete``, ...), as OVS says."""


def parse_monitor_line(line: str) -> MacEvent | None:
    """The learned-MAC event in one line of ``ovs-ofctl monitor`` output, if it holds one.

    E.g. `` event=DELETED reason=idle table=3 ... metadata=0x1389,dl_dst=02:00:00:00:00:01
    actions=...``; header and abbreviated lines give None.
    """
    event = _EVENT.search(line)
    dl_dst = _DL_DST.search(line)
    if event is None or dl_dst is None:
        return None
    metadata = _METADATA.search(line)
    vni = int(metadata.group(1), 0) if metadata else 0
    reason = _REASON.search(line)
    return MacEvent(
        LearnedMac(vni, dl_dst.group(1).lower()),
        present=event.group(1) != "DELETED",
        reason=reason.group(1) if reason else "",
    )


def _logical_switches_by_vni(
    programmed: Mapping[str, ForwardingTable], switches: Mapping[Uuid, Row]
) -> dict[int, Uuid]:
    """VNI -> ``Logical_Switch`` uuid of each programmed logical switch (first name wins)."""
    uuid_by_name = {str(row.get("name", "")): uuid for uuid, row in switches.items()}
    result: dict[int, Uuid] = {}
    for name, table in sorted(programmed.items()):
        if name in uuid_by_name:
            result.setdefault(table.vni, uuid_by_name[name])
    return result


def _own_locator(locators: Mapping[Uuid, Row], tunnel_ip: str) -> Uuid | None:
    for uuid, row in sorted(locators.items()):
        plain = row.get("tunnel_key") is None
        if row.get("dst_ip") == tunnel_ip and plain:
            return uuid
    return None


def local_mac_ops(
    learned: Set[LearnedMac],
    *,
    programmed: Mapping[str, ForwardingTable],
    tables: Mapping[str, Mapping[Uuid, Row]],
    tunnel_ip: str,
) -> list[dict[str, Any]]:
    """The transaction that makes ``Ucast_Macs_Local`` report ``learned``; empty if it does.

    ``tables`` holds the replicated ``Logical_Switch``, ``Ucast_Macs_Local`` and
    ``Physical_Locator`` rows. Rows for MACs no longer learned (or duplicates, or rows with
    another locator) are deleted; missing ones are inserted, with the switch's own locator
    inserted in the same transaction when it does not exist yet (it is not a root table).
    """
    by_vni = _logical_switches_by_vni(programmed, tables.get("Logical_Switch", {}))
    wanted = {(by_vni[m.vni], m.mac) for m in learned if m.vni in by_vni}
    locator = _own_locator(tables.get("Physical_Locator", {}), tunnel_ip)
    kept: set[tuple[Uuid, str]] = set()
    result: list[dict[str, Any]] = []
    for uuid, row in sorted(tables.get("Ucast_Macs_Local", {}).items()):
        key = (Uuid(str(row.get("logical_switch"))), str(row.get("MAC", "")).lower())
        if key in wanted and key not in kept and locator and row.get("locator") == locator:
            kept.add(key)
        else:
            result.append(
                ops.delete("Ucast_Macs_Local", [ops.condition("_uuid", "==", ops.uuid(uuid))])
            )
    missing = sorted(wanted - kept)
    if missing and locator is None:
        new_locator = {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": tunnel_ip}
        result.append(ops.insert("Physical_Locator", new_locator, uuid_name=_LOCAL_LOCATOR))
    reference = ops.uuid(locator) if locator else ops.named_uuid(_LOCAL_LOCATOR)
    for switch, mac in missing:
        new_mac = {"MAC": mac, "logical_switch": ops.uuid(switch), "locator": reference}
        result.append(ops.insert("Ucast_Macs_Local", {**new_mac, "ipaddr": ""}))
    return result
