"""What the client needs to know about a database schema: tables, columns, column kinds.

Pure. Parsed from ``get_schema``'s answer (RFC 7047 section 3.2). The client fetches the
schema on every connection, so columns and tables the server has beyond the ones a caller
asks for are harmless, and a caller's columns the server lacks are left out (older server).

A column's *kind* decides how its values are represented in a replica
(:mod:`.replica`) and how an ``update2`` "modify" applies to it:

=========  ===================  =========================  ===========================
kind       OVSDB type           replica value              "modify" carries
=========  ===================  =========================  ===========================
SCALAR     min 1, max 1         the atom                   the new value
OPTIONAL   min 0, max 1         the atom or ``None``       the new value
SET        max > 1              ``frozenset`` of atoms     the symmetric difference
MAP        has a value type     ``dict`` of atoms          keys added, changed, removed
=========  ===================  =========================  ===========================

A map with ``max`` 1 is not *composite* (ovsdb-server's ``ovsdb_type_is_composite``):
"modify" carries its new value, not a diff; :attr:`Column.diffed` says which.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from tether.ovsdb.errors import OvsdbProtocolError

__all__ = ["Column", "ColumnKind", "DatabaseSchema", "TableSchema", "parse_schema"]


class ColumnKind(enum.Enum):
    SCALAR = "scalar"
    OPTIONAL = "optional"
    SET = "set"
    MAP = "map"


@dataclass(frozen=True, slots=True)
class Column:
    kind: ColumnKind
    diffed: bool  # "modify" in update2 carries a diff (composite type), not the new value
    key_type: str = "string"  # atomic type of the key: integer, real, boolean, string, uuid
    ref_table: str | None = None  # the table a uuid key refers to, if any


@dataclass(frozen=True, slots=True)
class TableSchema:
    name: str
    columns: Mapping[str, Column]
    is_root: bool


@dataclass(frozen=True, slots=True)
class DatabaseSchema:
    name: str
    version: str
    tables: Mapping[str, TableSchema]
    raw: Mapping[str, Any]  # the server's JSON, for callers that need more


def parse_schema(raw: Any) -> DatabaseSchema:
    """Parse a ``get_schema`` result; malformed input raises ``OvsdbProtocolError``."""
    try:
        tables = {name: _parse_table(name, table) for name, table in dict(raw["tables"]).items()}
        return DatabaseSchema(str(raw["name"]), str(raw.get("version", "")), tables, raw)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise OvsdbProtocolError(f"malformed schema: {exc!r}") from exc


def _parse_table(name: str, table: Mapping[str, Any]) -> TableSchema:
    columns = {col: _parse_column(spec["type"]) for col, spec in table["columns"].items()}
    columns.setdefault("_version", Column(ColumnKind.SCALAR, diffed=False, key_type="uuid"))
    return TableSchema(name, columns, bool(table.get("isRoot", False)))


def _parse_column(spec: Any) -> Column:
    if isinstance(spec, str):
        return Column(ColumnKind.SCALAR, diffed=False, key_type=spec)
    key = spec["key"]
    key_type = str(key["type"] if isinstance(key, dict) else key)
    ref_table = key.get("refTable") if isinstance(key, dict) else None
    low = int(spec.get("min", 1))
    high = spec.get("max", 1)
    composite = high == "unlimited" or int(high) > 1
    if "value" in spec:
        kind = ColumnKind.MAP
    elif composite:
        kind = ColumnKind.SET
    else:
        kind = ColumnKind.OPTIONAL if low == 0 else ColumnKind.SCALAR
    return Column(kind, diffed=composite, key_type=key_type, ref_table=ref_table)
