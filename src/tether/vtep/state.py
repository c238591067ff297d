"""What a hardware VTEP should hold and what it holds, as values.

``GatewayConfig`` is tether's wish for one switch (computed by :mod:`tether.vtep.desired`);
``SwitchView`` is the switch's ``hardware_vtep`` database as read back (built by
:func:`observe` from raw table rows). :mod:`tether.vtep.plan` compares the two. Pure.

Only what tether owns appears here: ``Logical_Switch`` rows, the ``*_Remote`` tables and
``Physical_Port.vlan_bindings``. The switch's own ``*_Local`` tables are read only to know
which logical switches the switch still uses (they hold strong references to them).

Of ``Logical_Switch.other_config`` (a standard column, string -> string) only the key
:data:`PENDING` is tether's: ``"true"`` while a ``lock``-mode update of that logical switch
spans several transactions (see :mod:`tether.vtep.plan`); other keys belong to the switch.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

__all__ = [
    "DATABASE",
    "PENDING",
    "TABLES",
    "UNKNOWN_DST",
    "GatewayConfig",
    "LogicalSwitchConfig",
    "ObserveCache",
    "ObservedMac",
    "ObservedSwitch",
    "RemoteMac",
    "SwitchView",
    "local_macs",
    "observe",
    "refs_of",
]

T = TypeVar("T")

UNKNOWN_DST = "unknown-dst"
"""The ``Mcast_Macs_Remote`` MAC that says where broadcast and unknown traffic goes."""

PENDING = "tether-pending"
"""The ``Logical_Switch.other_config`` key that says: a multi-transaction update of this
logical switch is under way (value ``"true"``); forward on its last complete state."""

DATABASE = "hardware_vtep"
TABLES = (
    "Physical_Switch",
    "Physical_Port",
    "Logical_Switch",
    "Ucast_Macs_Remote",
    "Mcast_Macs_Remote",
    "Ucast_Macs_Local",
    "Mcast_Macs_Local",
    "Physical_Locator",
    "Physical_Locator_Set",
)
"""Every table :func:`observe` reads: what both sides of the protocol monitor."""

Row = Mapping[str, Any]
Tables = Mapping[str, Mapping[str, Row]]
"""Raw OVSDB rows: table name -> row uuid -> column -> OVSDB JSON value."""


@dataclass(frozen=True, slots=True)
class RemoteMac:
    mac: str
    locator: str
    """Tunnel IP of the VTEP behind which the MAC lives."""
    ip: str = ""


@dataclass(frozen=True, slots=True)
class LogicalSwitchConfig:
    """One network as one switch should carry it."""

    name: str
    """The network's id (``Logical_Switch.name``)."""
    tunnel_key: int
    description: str
    remote_macs: Mapping[str, RemoteMac] = field(default_factory=dict)
    flood_locators: frozenset[str] = frozenset()
    """Tunnel IPs of the other VTEPs carrying the network (the ``unknown-dst`` set)."""
    bindings: frozenset[tuple[str, int]] = frozenset()
    """(physical port, VLAN) pairs bound to this logical switch."""


@dataclass(frozen=True, slots=True)
class GatewayConfig:
    physical_switch: str
    switches: Mapping[str, LogicalSwitchConfig]
    """By logical switch name."""


@dataclass(frozen=True, slots=True)
class ObservedMac:
    uuid: str
    locator: str
    ip: str


@dataclass(frozen=True, slots=True)
class ObservedSwitch:
    uuid: str
    name: str
    tunnel_key: int | None
    description: str
    state_consistent: bool | None
    """None when the column is absent or empty (absent = consistent)."""
    remote_macs: Mapping[str, ObservedMac]
    unknown_dst: tuple[str, frozenset[str]] | None
    """(Mcast_Macs_Remote uuid, its locator IPs) of the ``unknown-dst`` row."""
    extra_remote_rows: tuple[tuple[str, str], ...] = ()
    """(table, uuid) of remote rows tether does not want: duplicates, other multicast MACs."""
    bindings: frozenset[tuple[str, int]] = frozenset()
    in_local_use: bool = False
    """The switch's own ``*_Local`` rows refer to it: it cannot be deleted yet."""
    bound_elsewhere: bool = False
    """Bound on a port of another ``Physical_Switch`` in the same database: not ours alone,
    so tether never tears it down from this gateway."""
    pending: bool = False
    """``other_config`` carries :data:`PENDING` = ``"true"``: a ``lock``-mode update that
    spans several transactions has started and not finished (False when the column or the
    key is absent)."""


@dataclass(frozen=True, slots=True)
class SwitchView:
    switches: Mapping[str, ObservedSwitch]
    """By name."""
    ports: Mapping[str, str]
    """Physical port name -> uuid, for the ports of our ``Physical_Switch``."""
    bindings: Mapping[tuple[str, int], str]
    """(port, VLAN) -> logical switch uuid, on our ports."""
    locators: Mapping[str, str]
    """Tunnel IP -> ``Physical_Locator`` uuid (vxlan_over_ipv4, no tunnel key)."""
    physical_switch_found: bool = True
    tunnel_ips: tuple[str, ...] = ()
    can_mark_pending: bool = True
    """The switch's schema has ``Logical_Switch.other_config`` (``hardware_vtep`` 1.7.0 as
    Open vSwitch installs it does), where ``lock`` mode keeps its :data:`PENDING` mark.
    Without it a ``lock``-mode update cut short by a controller crash is applied half done
    (see :mod:`.plan`)."""


def _atom(value: Any) -> Any:
    """The single atom of a column value, in either form rows come in: OVSDB JSON
    (``["uuid", u]``, ``["set", [x]]``, as sent on the wire) or decoded (as tether's OVSDB
    replica keeps them: plain strings, ``frozenset``, ``dict``, None for an empty optional)."""
    if isinstance(value, list) and len(value) == 2:
        kind, inner = value
        if kind in ("uuid", "named-uuid"):
            return inner
        if kind == "set":
            return _atom(inner[0]) if len(inner) == 1 else None
    if isinstance(value, frozenset | set):
        return next(iter(value)) if len(value) == 1 else None
    return value


def _set(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list) and len(value) == 2 and value[0] == "set":
        return [_atom(v) for v in value[1]]
    if isinstance(value, frozenset | set):
        return list(value)
    return [_atom(value)]


def _map(value: Any) -> dict[Any, Any]:
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, list) and len(value) == 2 and value[0] == "map":
        return {k: _atom(v) for k, v in value[1]}
    return {}


def _locator_ips(tables: Tables) -> tuple[dict[str, str], dict[str, str]]:
    """uuid -> IP of every locator, and IP -> uuid of the plain VXLAN ones tether uses."""
    by_uuid: dict[str, str] = {}
    plain: dict[str, str] = {}
    for uuid, row in tables.get("Physical_Locator", {}).items():
        ip = str(row.get("dst_ip", ""))
        by_uuid[uuid] = ip
        if _atom(row.get("tunnel_key")) is None:
            plain.setdefault(ip, uuid)
    return by_uuid, plain


def _locators(tables: Tables, cache: ObserveCache | None) -> tuple[dict[str, str], dict[str, str]]:
    if cache is None:
        return _locator_ips(tables)
    rows = tables.get("Physical_Locator", {})
    return cache.derived("Physical_Locator", rows, lambda: _locator_ips(tables))


def _our_ports(
    tables: Tables, physical_switch: str
) -> tuple[bool, dict[str, str], tuple[str, ...]]:
    for row in tables.get("Physical_Switch", {}).values():
        if row.get("name") == physical_switch:
            port_uuids = set(_set(row.get("ports")))
            ports = {
                str(port["name"]): uuid
                for uuid, port in tables.get("Physical_Port", {}).items()
                if uuid in port_uuids
            }
            tunnel_ips = tuple(str(ip) for ip in _set(row.get("tunnel_ips")) if ip)
            return True, ports, tunnel_ips
    return False, {}, ()


def refs_of(
    tables: Tables, physical_switch: str, cache: ObserveCache | None = None
) -> tuple[dict[str, str], dict[str, str], dict[str, str]]:
    """(logical switch name -> uuid, tunnel IP -> locator uuid, port name -> uuid): what the
    encoder needs, without reading the MAC tables (cheap between two transactions)."""
    _, locators = _locators(tables, cache)
    _, ports, _ = _our_ports(tables, physical_switch)
    switches = {
        str(row.get("name", "")): uuid for uuid, row in tables.get("Logical_Switch", {}).items()
    }
    return switches, locators, ports


def local_macs(tables: Tables) -> dict[tuple[str, str], str | None]:
    """What the switch learned: (logical switch name, MAC) -> IP (None when unknown), from
    ``Ucast_Macs_Local``. MACs are lower-case; rows of unnamed logical switches are skipped.

    ``Mcast_Macs_Local`` is not read here: its ``unknown-dst`` row only says the switch wants
    a network's flooded traffic, which its bindings already say, and a multicast group has
    many members, never the one location a claim names."""
    names = {uuid: row.get("name") for uuid, row in tables.get("Logical_Switch", {}).items()}
    learned: dict[tuple[str, str], str | None] = {}
    for row in tables.get("Ucast_Macs_Local", {}).values():
        name = names.get(_atom(row.get("logical_switch")))
        mac = row.get("MAC")
        if not name or not isinstance(mac, str):
            continue
        ip = row.get("ipaddr")
        learned[(str(name), mac.lower())] = ip if isinstance(ip, str) and ip else None
    return learned


def observe(
    tables: Tables,
    physical_switch: str,
    cache: ObserveCache | None = None,
    *,
    can_mark_pending: bool = True,
) -> SwitchView:
    """Read tether's part of a ``hardware_vtep`` database; with a ``cache`` of the previous
    call on the same replica, rereading only the remote MAC rows that changed.
    ``can_mark_pending`` says whether the schema has ``Logical_Switch.other_config``: the
    caller knows its schema; rows cannot tell (there may be none)."""
    locator_ip, plain_locators = _locators(tables, cache)
    found, ports, tunnel_ips = _our_ports(tables, physical_switch)
    port_names = {uuid: name for name, uuid in ports.items()}
    bindings: dict[tuple[str, int], str] = {}
    bound: dict[str, set[tuple[str, int]]] = {}
    elsewhere: set[str] = set()
    for uuid, row in tables.get("Physical_Port", {}).items():
        for vlan, ls in _map(row.get("vlan_bindings")).items():
            if uuid not in port_names:
                elsewhere.add(ls)
                continue
            bindings[(port_names[uuid], int(vlan))] = ls
            bound.setdefault(ls, set()).add((port_names[uuid], int(vlan)))
    in_use = {
        _atom(row.get("logical_switch"))
        for table in ("Ucast_Macs_Local", "Mcast_Macs_Local")
        for row in tables.get(table, {}).values()
    }
    macs, unknown, extra = _remote_rows(tables, locator_ip, cache)
    switches = {}
    for uuid, row in tables.get("Logical_Switch", {}).items():
        name = str(row.get("name", ""))
        switches[name] = ObservedSwitch(
            uuid=uuid,
            name=name,
            tunnel_key=_atom(row.get("tunnel_key")),
            description=str(row.get("description", "")),
            state_consistent=_atom(row.get("state_consistent")),
            remote_macs=macs.get(uuid, {}),
            unknown_dst=unknown.get(uuid),
            extra_remote_rows=tuple(extra.get(uuid, ())),
            bindings=frozenset(bound.get(uuid, ())),
            in_local_use=uuid in in_use,
            bound_elsewhere=uuid in elsewhere,
            pending=_map(row.get("other_config")).get(PENDING) == "true",
        )
    return SwitchView(
        switches, ports, bindings, plain_locators, found, tunnel_ips, can_mark_pending
    )


class ObserveCache:
    """What :func:`observe` read of ``Ucast_Macs_Remote`` last time, to reread only what
    changed.

    The replica replaces a row object whenever the row changes (tether's OVSDB replica does;
    so must any caller passing a cache), so a row seen before *as the same object* reads the
    same. A pass then costs one identity check per row plus the work on the changed rows —
    on a switch holding thousands of remote MACs, a MAC move no longer rereads them all.
    The ``remote_macs`` mappings of a view built with a cache are updated in place by the
    next :func:`observe` with the same cache: use a view before observing again.
    """

    __slots__ = ("_derived", "_dups", "_groups", "_keys", "_locators", "_macs", "_rows")

    def __init__(self) -> None:
        self._derived: dict[str, tuple[Mapping[str, Row], Any]] = {}
        self._reset({})

    def derived(self, table: str, rows: Mapping[str, Row], compute: Callable[[], T]) -> T:
        """``compute()``, reused while ``rows`` holds the same row objects as last time (for
        small tables read whole on every pass: locators, locator sets)."""
        last = self._derived.get(table)
        if (
            last is not None
            and len(last[0]) == len(rows)
            and all(last[0].get(uuid) is row for uuid, row in rows.items())
        ):
            return cast(T, last[1])
        value = compute()
        self._derived[table] = (dict(rows), value)
        return value

    def _reset(self, locator_ip: Mapping[str, str]) -> None:
        self._rows: dict[str, Row] = {}
        self._keys: dict[str, tuple[str, str]] = {}
        """uuid -> (logical switch uuid, MAC)."""
        self._groups: dict[tuple[str, str], dict[str, ObservedMac]] = {}
        """(logical switch, MAC) -> every row for it (more than one: duplicates)."""
        self._dups: set[tuple[str, str]] = set()
        self._macs: dict[str, dict[str, ObservedMac]] = {}
        self._locators: Mapping[str, str] = dict(locator_ip)

    def read(
        self, rows: Mapping[str, Row], locator_ip: Mapping[str, str]
    ) -> tuple[dict[str, dict[str, ObservedMac]], dict[str, list[tuple[str, str]]]]:
        if locator_ip != self._locators:  # a locator changed: every row may read otherwise
            self._reset(locator_ip)
        seen = self._rows
        changed = [(uuid, row) for uuid, row in rows.items() if seen.get(uuid) is not row]
        fresh = sum(1 for uuid, _ in changed if uuid not in seen)
        if len(seen) + fresh > len(rows):  # rows were deleted
            for uuid in [uuid for uuid in seen if uuid not in rows]:
                self._forget(uuid)
        for uuid, row in changed:
            if uuid in seen:
                self._forget(uuid)
            self._learn(uuid, row)
        extra: dict[str, list[tuple[str, str]]] = {}
        for key in self._dups:
            group = self._groups[key]
            keeper = min(group)
            extra.setdefault(key[0], []).extend(
                ("Ucast_Macs_Remote", uuid) for uuid in sorted(group) if uuid != keeper
            )
        return self._macs, extra

    def _learn(self, uuid: str, row: Row) -> None:
        ls, mac, observed = _read_remote(uuid, row, self._locators)
        self._rows[uuid] = row
        key = (ls, mac)
        self._keys[uuid] = key
        group = self._groups.setdefault(key, {})
        group[uuid] = observed
        if len(group) > 1:
            self._dups.add(key)
        self._keep(key, group)

    def _forget(self, uuid: str) -> None:
        del self._rows[uuid]
        key = self._keys.pop(uuid)
        group = self._groups[key]
        del group[uuid]
        if len(group) < 2:
            self._dups.discard(key)
        if group:
            self._keep(key, group)
        else:
            del self._groups[key]
            macs = self._macs[key[0]]
            del macs[key[1]]
            if not macs:
                del self._macs[key[0]]

    def _keep(self, key: tuple[str, str], group: dict[str, ObservedMac]) -> None:
        """Of duplicate rows for one MAC the lowest uuid is kept (any order reads alike)."""
        self._macs.setdefault(key[0], {})[key[1]] = group[min(group)]


def _read_remote(
    uuid: str, row: Row, locator_ip: Mapping[str, str]
) -> tuple[str, str, ObservedMac]:
    ls = row.get("logical_switch")
    if type(ls) is not str:
        ls = _atom(ls)
    mac = row.get("MAC", "")
    mac = mac.lower() if type(mac) is str else ""
    locator = row.get("locator")
    if type(locator) is not str:
        locator = _atom(locator)
    ip = row.get("ipaddr", "")
    observed = ObservedMac(uuid, locator_ip.get(locator, ""), ip if type(ip) is str else "")
    return str(ls), mac, observed


def _remote_rows(
    tables: Tables, locator_ip: Mapping[str, str], cache: ObserveCache | None = None
) -> tuple[
    dict[str, dict[str, ObservedMac]],
    dict[str, tuple[str, frozenset[str]]],
    dict[str, list[tuple[str, str]]],
]:
    macs, extra = (cache or ObserveCache()).read(tables.get("Ucast_Macs_Remote", {}), locator_ip)
    set_rows = tables.get("Physical_Locator_Set", {})

    def read_sets() -> dict[str, frozenset[str]]:
        return {
            uuid: frozenset(locator_ip.get(u, "") for u in _set(row.get("locators")))
            for uuid, row in set_rows.items()
        }

    # the sets read through the locators: reused only while those are the same too
    sets = (
        read_sets()
        if cache is None
        else cache.derived("Physical_Locator_Set", {**set_rows, "": locator_ip}, read_sets)
    )
    unknown: dict[str, tuple[str, frozenset[str]]] = {}
    for uuid, row in sorted(tables.get("Mcast_Macs_Remote", {}).items()):
        ls = _atom(row.get("logical_switch"))
        if row.get("MAC") == UNKNOWN_DST and ls not in unknown:
            unknown[ls] = (uuid, sets.get(_atom(row.get("locator_set")), frozenset()))
        else:
            extra.setdefault(ls, []).append(("Mcast_Macs_Remote", uuid))
    return macs, unknown, extra
