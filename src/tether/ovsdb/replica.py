"""A local replica of monitored tables, kept current by applying the server's updates.

Pure: update messages in, :class:`RowChange` lists out. :mod:`.monitor` decides which
update format applies; :mod:`.schema` supplies each column's kind. Formats (RFC 7047
section 4.1.6 and ovsdb-server(7)):

* ``update`` (``monitor``): per row ``{"old": ..., "new": ...}``; ``new`` carries every
  monitored column, no ``new`` means the row was deleted.
* ``update2`` / ``update3`` (``monitor_cond``, ``monitor_cond_since``): per row exactly one
  of ``initial`` / ``insert`` (columns at their default are left out), ``modify`` (changed
  columns only: a set column carries the symmetric difference, a map column the pairs to
  add, change or — when key and value match the old pair — remove; other columns the new
  value) or ``delete``.

Tables and columns the replica was not asked for are ignored, so a server with a newer
schema is harmless. Values: an atom (``str``, ``int``, ``float``, ``bool``; uuids are
:data:`Uuid` strings), ``None`` for an empty optional, ``frozenset`` for sets, ``dict`` for
maps. Rows and values are shared with :class:`RowChange` records: treat them as read-only.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NewType

from tether.ovsdb.errors import OvsdbProtocolError
from tether.ovsdb.schema import Column, ColumnKind

__all__ = ["Atom", "Replica", "Row", "RowChange", "TableColumns", "Uuid", "Value"]

log = logging.getLogger(__name__)

Uuid = NewType("Uuid", str)
Atom = str | int | float | bool
Value = Atom | frozenset[Atom] | dict[Atom, Atom] | None
Row = dict[str, Value]
TableColumns = Mapping[str, Mapping[str, Column]]

_RowApplier = Callable[[str, Mapping[str, Column], dict[Uuid, Row], Uuid, Any], "RowChange | None"]
_ZERO_UUID = Uuid("00000000-0000-0000-0000-000000000000")
_ATOM_DEFAULTS: dict[str, Atom] = {
    "integer": 0,
    "real": 0.0,
    "boolean": False,
    "string": "",
    "uuid": _ZERO_UUID,
}


@dataclass(frozen=True, slots=True)
class RowChange:
    """One row's change: ``old`` None for an insert, ``new`` None for a delete."""

    table: str
    uuid: Uuid
    old: Row | None
    new: Row | None

    @property
    def kind(self) -> str:
        return "insert" if self.old is None else "delete" if self.new is None else "modify"


class Replica:
    """The monitored rows of one database, by table and row uuid."""

    def __init__(self, columns: TableColumns) -> None:
        self.tables: dict[str, dict[Uuid, Row]] = {}
        self._reset(columns)

    def _reset(self, columns: TableColumns) -> None:
        self.columns = columns
        self.tables = {table: {} for table in columns}
        self._defaults = {
            table: {name: default(column) for name, column in table_columns.items()}
            for table, table_columns in columns.items()
        }

    def rows(self, table: str) -> Mapping[Uuid, Row]:
        return self.tables[table]

    def apply_update(self, updates: Any) -> list[RowChange]:
        """Apply an ``update`` notification's (or ``monitor`` reply's) table-updates."""
        return self._apply(updates, self._row_update)

    def apply_update2(self, updates: Any) -> list[RowChange]:
        """Apply ``update2``/``update3`` table-updates (or a ``monitor_cond*`` reply's)."""
        return self._apply(updates, self._row_update2)

    def replace(
        self, updates: Any, *, version: int, columns: TableColumns | None = None
    ) -> list[RowChange]:
        """Replace the whole contents with a fresh initial snapshot; return the difference."""
        before = self.tables
        self._reset(self.columns if columns is None else columns)
        if version == 1:
            self.apply_update(updates)
        else:
            self.apply_update2(updates)
        return diff_tables(before, self.tables)

    def _apply(self, updates: Any, apply_row: _RowApplier) -> list[RowChange]:
        changes: list[RowChange] = []
        try:
            for table, row_updates in updates.items():
                columns = self.columns.get(table)
                if columns is None:
                    continue  # not asked for
                rows = self.tables[table]
                for uuid, row_update in row_updates.items():
                    change = apply_row(table, columns, rows, Uuid(uuid), row_update)
                    if change is not None:
                        changes.append(change)
        except (AttributeError, TypeError, IndexError, ValueError, KeyError) as exc:
            raise OvsdbProtocolError(f"malformed table update: {exc!r}") from exc
        return changes

    def _row_update(
        self,
        table: str,
        columns: Mapping[str, Column],
        rows: dict[Uuid, Row],
        uuid: Uuid,
        update: Any,
    ) -> RowChange | None:
        old = rows.get(uuid)
        data = update.get("new")
        if data is None:
            return _delete(table, rows, uuid)
        new = dict(old) if old is not None else dict(self._defaults[table])
        for name, value in data.items():
            column = columns.get(name)
            if column is not None:
                new[name] = decode_value(column, value)
        return _store(table, rows, uuid, old, new)

    def _row_update2(
        self,
        table: str,
        columns: Mapping[str, Column],
        rows: dict[Uuid, Row],
        uuid: Uuid,
        update: Any,
    ) -> RowChange | None:
        old = rows.get(uuid)
        if "modify" in update:
            if old is None:
                log.warning("ignoring 'modify' of unknown row %s in %s", uuid, table)
                return None
            new = dict(old)
            for name, value in update["modify"].items():
                column = columns.get(name)
                if column is not None:
                    new[name] = apply_modify(column, old.get(name), value)
            return _store(table, rows, uuid, old, new)
        data = update.get("insert") or update.get("initial")
        if data is None:
            if "delete" in update:
                return _delete(table, rows, uuid)
            raise ValueError(f"unknown row update {sorted(update)}")
        new = dict(self._defaults[table])
        for name, value in data.items():
            column = columns.get(name)
            if column is not None:
                new[name] = decode_value(column, value)
        return _store(table, rows, uuid, old, new)


def _store(
    table: str, rows: dict[Uuid, Row], uuid: Uuid, old: Row | None, new: Row
) -> RowChange | None:
    if new == old:
        return None  # only columns the replica ignores changed
    rows[uuid] = new
    return RowChange(table, uuid, old, new)


def _delete(table: str, rows: dict[Uuid, Row], uuid: Uuid) -> RowChange | None:
    old = rows.pop(uuid, None)
    return None if old is None else RowChange(table, uuid, old, None)


def default(column: Column) -> Value:
    """The value OVSDB gives a column nobody set (left out of ``update2`` inserts)."""
    if column.kind is ColumnKind.SCALAR:
        return _ATOM_DEFAULTS.get(column.key_type, "")
    if column.kind is ColumnKind.OPTIONAL:
        return None
    return frozenset() if column.kind is ColumnKind.SET else {}


def decode_atom(value: Any) -> Atom:
    if isinstance(value, list):  # ["uuid", "..."]: the only array an atom can be
        return Uuid(value[1])
    return value  # type: ignore[no-any-return]


def decode_value(column: Column, value: Any) -> Value:
    """OVSDB JSON notation to the replica's representation of ``column``'s kind."""
    kind = column.kind
    if kind is ColumnKind.SCALAR:
        return decode_atom(value)
    if kind is ColumnKind.MAP:
        return decode_map(value)
    if kind is ColumnKind.SET:
        return decode_set(value)
    elements = _elements(value)
    return decode_atom(elements[0]) if elements else None


def decode_set(value: Any) -> frozenset[Atom]:
    return frozenset(decode_atom(atom) for atom in _elements(value))


def decode_map(value: Any) -> dict[Atom, Atom]:
    if not isinstance(value, list) or value[0] != "map":
        raise ValueError(f"not a map: {value!r:.80}")
    return {decode_atom(key): decode_atom(item) for key, item in value[1]}


def _elements(value: Any) -> list[Any]:
    """A set's atoms: ``["set", [...]]``, or a lone atom standing for a one-element set."""
    if isinstance(value, list) and value[0] == "set":
        return list(value[1])
    return [value]


def apply_modify(column: Column, old: Value, value: Any) -> Value:
    """Apply one column of an ``update2`` "modify" to its old value."""
    if not column.diffed:
        return decode_value(column, value)
    if column.kind is ColumnKind.SET:
        return (old if isinstance(old, frozenset) else frozenset()) ^ decode_set(value)
    merged = dict(old) if isinstance(old, dict) else {}
    for key, item in decode_map(value).items():
        if key in merged and merged[key] == item:
            del merged[key]
        else:
            merged[key] = item
    return merged


def diff_tables(
    before: Mapping[str, Mapping[Uuid, Row]], after: Mapping[str, Mapping[Uuid, Row]]
) -> list[RowChange]:
    """The changes that turn ``before`` into ``after`` (for a replica reloaded from scratch)."""
    changes: list[RowChange] = []
    for table in before.keys() | after.keys():
        old_rows, new_rows = before.get(table, {}), after.get(table, {})
        for uuid, old in old_rows.items():
            new = new_rows.get(uuid)
            if new != old:
                changes.append(RowChange(table, uuid, old, new))
        changes.extend(
            RowChange(table, uuid, None, new)
            for uuid, new in new_rows.items()
            if uuid not in old_rows
        )
    return changes
