"""tether's OVSDB client (RFC 7047): connections, transactions, monitors, locks.

Layers, bottom up — the pure engines hold every decision, the asyncio shells only move
bytes and keep time:

* pure: :mod:`.framing` (byte stream → JSON messages), :mod:`.protocol` (JSON-RPC session),
  :mod:`.schema`, :mod:`.replica` (update / update2 application), :mod:`.monitor`,
  :mod:`.locks`, :mod:`.reconnect` (back-off and keep-alive state machine), :mod:`.ops`;
* shells: :mod:`.transport` (addresses, TLS, sockets), :mod:`.connection` (one session),
  :mod:`.client` (reconnecting client with monitors and locks).

Typical use::

    async with Client("unix:/run/openvswitch/db.sock") as client:
        mon = await client.monitor_cond_since("hardware_vtep", {"Ucast_Macs_Remote": None})
        await client.transact("hardware_vtep", [ops.insert("Logical_Switch", {"name": "ls0"})])

Errors form one tree rooted at :class:`OvsdbError` (see :mod:`.errors`).
"""

from __future__ import annotations

from tether.ovsdb import ops
from tether.ovsdb.client import Client, ClientOptions, Monitor, TablesArg
from tether.ovsdb.connection import Connection
from tether.ovsdb.errors import (
    ClientClosedError,
    ConnectionFailedError,
    ConnectionLostError,
    InvalidAddressError,
    InvalidLockNameError,
    OvsdbError,
    OvsdbPermanentError,
    OvsdbProtocolError,
    OvsdbServerError,
    OvsdbTemporaryError,
    OvsdbUsageError,
    RequestTimeoutError,
    TransactionError,
    UnknownMethodError,
)
from tether.ovsdb.locks import LockEvent, LockEventKind
from tether.ovsdb.monitor import MonitorMethod, TableSpec
from tether.ovsdb.reconnect import ReconnectOptions
from tether.ovsdb.replica import Replica, Row, RowChange, Uuid, Value
from tether.ovsdb.schema import Column, ColumnKind, DatabaseSchema, TableSchema
from tether.ovsdb.transport import Address, TlsFiles, parse_address

__all__ = [
    "Address",
    "Client",
    "ClientClosedError",
    "ClientOptions",
    "Column",
    "ColumnKind",
    "Connection",
    "ConnectionFailedError",
    "ConnectionLostError",
    "DatabaseSchema",
    "InvalidAddressError",
    "InvalidLockNameError",
    "LockEvent",
    "LockEventKind",
    "Monitor",
    "MonitorMethod",
    "OvsdbError",
    "OvsdbPermanentError",
    "OvsdbProtocolError",
    "OvsdbServerError",
    "OvsdbTemporaryError",
    "OvsdbUsageError",
    "ReconnectOptions",
    "Replica",
    "RequestTimeoutError",
    "Row",
    "RowChange",
    "TableSchema",
    "TableSpec",
    "TablesArg",
    "TlsFiles",
    "TransactionError",
    "UnknownMethodError",
    "Uuid",
    "Value",
    "ops",
    "parse_address",
]
