"""One monitor's protocol: which request to send, and how replies and updates move the replica.

Pure; :mod:`.client` sends what :meth:`MonitorState.request` builds and feeds back what
arrives. Three methods, newest first; a server that answers ``"unknown method"`` gets the
next one (:attr:`MonitorMethod.fallback`):

* ``monitor_cond_since [db, id, requests, last-txn-id]`` → ``[found, last-txn-id,
  table-updates2]``, then ``update3 [id, last-txn-id, table-updates2]``. ``found`` true: the
  reply holds only what changed since ``last-txn-id``, so a replica survives a reconnect.
  (A standalone database, as ovsdb-server 3.1 runs it here, never finds the id: it always
  sends the whole contents again.)
* ``monitor_cond [db, id, requests]`` → table-updates2, then ``update2 [id, updates]``.
* ``monitor [db, id, requests]`` → table-updates, then ``update [id, updates]``; it cannot
  filter rows, so a monitor with ``where`` conditions does not fall back to it.

The columns asked for are the caller's, less those the server's schema lacks (an older
server); ``None`` asks for every column the server has.
"""

from __future__ import annotations

import enum
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from tether.ovsdb.errors import OvsdbProtocolError
from tether.ovsdb.replica import Replica, RowChange, TableColumns
from tether.ovsdb.schema import Column, DatabaseSchema

__all__ = ["ZERO_TXN_ID", "MonitorMethod", "MonitorState", "TableSpec", "select_columns"]

log = logging.getLogger(__name__)

ZERO_TXN_ID = "00000000-0000-0000-0000-000000000000"


class MonitorMethod(enum.StrEnum):
    MONITOR_COND_SINCE = "monitor_cond_since"
    MONITOR_COND = "monitor_cond"
    MONITOR = "monitor"

    @property
    def fallback(self) -> MonitorMethod | None:
        """The method to try when the server does not know this one."""
        order = list(MonitorMethod)
        index = order.index(self)
        return order[index + 1] if index + 1 < len(order) else None


@dataclass(frozen=True, slots=True)
class TableSpec:
    """What to monitor in one table: ``columns`` (None: all) and ``where`` (None: all rows)."""

    columns: tuple[str, ...] | None = None
    where: tuple[Any, ...] | None = None


def select_columns(tables: Mapping[str, TableSpec], schema: DatabaseSchema) -> TableColumns:
    """The tables and columns to ask for: the caller's, less what the server does not have."""
    selected: dict[str, dict[str, Column]] = {}
    for table, spec in tables.items():
        table_schema = schema.tables.get(table)
        if table_schema is None:
            log.warning("database %s has no table %s: not monitored", schema.name, table)
            continue
        names = spec.columns or [c for c in table_schema.columns if not c.startswith("_")]
        missing = [name for name in names if name not in table_schema.columns]
        if missing:
            log.warning("table %s has no columns %s: not monitored", table, missing)
        selected[table] = {
            name: table_schema.columns[name] for name in names if name in table_schema.columns
        }
    return selected


class MonitorState:
    """One monitor: its spec, its replica and how far the replica has followed the server."""

    def __init__(self, db: str, monitor_id: int, tables: Mapping[str, TableSpec]) -> None:
        self.db = db
        self.monitor_id = monitor_id
        self.tables = dict(tables)
        self.replica = Replica({})
        self.last_txn_id = ZERO_TXN_ID
        self._pending_columns: TableColumns = {}

    @property
    def has_conditions(self) -> bool:
        return any(spec.where is not None for spec in self.tables.values())

    def request(self, method: MonitorMethod, schema: DatabaseSchema) -> list[Any]:
        """The params of a ``method`` request for this monitor against ``schema``."""
        self._pending_columns = select_columns(self.tables, schema)
        requests: dict[str, Any] = {}
        for table, columns in self._pending_columns.items():
            one: dict[str, Any] = {"columns": list(columns)}
            where = self.tables[table].where
            if where is not None and method is not MonitorMethod.MONITOR:
                one["where"] = list(where)
            requests[table] = one if method is MonitorMethod.MONITOR else [one]
        params: list[Any] = [self.db, self.monitor_id, requests]
        if method is MonitorMethod.MONITOR_COND_SINCE:
            params.append(self.last_txn_id)
        return params

    def apply_reply(self, method: MonitorMethod, result: Any) -> list[RowChange]:
        """Apply the server's answer to :meth:`request`; return what changed in the replica."""
        columns = self._pending_columns
        if method is MonitorMethod.MONITOR:
            return self.replica.replace(result, version=1, columns=columns)
        if method is MonitorMethod.MONITOR_COND:
            return self.replica.replace(result, version=2, columns=columns)
        found, last_txn_id, updates = _unpack(result, 3)
        self.last_txn_id = str(last_txn_id)
        if found and columns == self.replica.columns:
            return self.replica.apply_update2(updates)
        return self.replica.replace(updates, version=2, columns=columns)

    def apply_notification(self, method: str, params: Sequence[Any]) -> list[RowChange]:
        """Apply an ``update``, ``update2`` or ``update3`` notification addressed to us."""
        if method == "update":
            return self.replica.apply_update(_unpack(params, 2)[1])
        if method == "update2":
            return self.replica.apply_update2(_unpack(params, 2)[1])
        _, last_txn_id, updates = _unpack(params, 3)
        self.last_txn_id = str(last_txn_id)
        return self.replica.apply_update2(updates)


def _unpack(value: Any, size: int) -> Sequence[Any]:
    if not isinstance(value, list) or len(value) != size:
        raise OvsdbProtocolError(f"expected a {size}-element array, got {value!r:.120}")
    return value
