"""The OVSDB client's one error tree; every socket, TLS and JSON error is mapped to it here.

Callers catch by branch, and the branch says what to do::

    OvsdbError
     ├── OvsdbUsageError            caller mistake: fix the call, never retry
     │    ├── InvalidAddressError   not tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH; bad TLS files
     │    ├── InvalidLockNameError  lock name outside [A-Za-z_][A-Za-z0-9_]*
     │    └── ClientClosedError     the client or connection was closed by its owner
     ├── OvsdbTemporaryError        temporary fault: retry with delay (the client reconnects)
     │    ├── ConnectionFailedError could not connect (refused, unreachable, TLS handshake)
     │    ├── ConnectionLostError   the connection went down before the reply came
     │    └── RequestTimeoutError   no reply within the caller's timeout
     └── OvsdbPermanentError        the same request fails again: do not retry as is
          ├── OvsdbServerError      the server refused the request (``error``, ``details``)
          │    ├── UnknownMethodError  the server does not implement the method
          │    └── TransactionError    an operation or the commit failed (``index``, ``op``)
          └── OvsdbProtocolError    the peer sent malformed or oversize JSON (connection dropped)

Third-party exceptions (``OSError``, ``ssl.SSLError``, ``orjson.JSONDecodeError``) are
raised ``from`` the original at the boundary that met them (:mod:`.framing`,
:mod:`.transport`, :mod:`.connection`).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ClientClosedError",
    "ConnectionFailedError",
    "ConnectionLostError",
    "InvalidAddressError",
    "InvalidLockNameError",
    "OvsdbError",
    "OvsdbPermanentError",
    "OvsdbProtocolError",
    "OvsdbServerError",
    "OvsdbTemporaryError",
    "OvsdbUsageError",
    "RequestTimeoutError",
    "TransactionError",
    "UnknownMethodError",
]


class OvsdbError(Exception):
    """Base of every OVSDB client error."""


class OvsdbUsageError(OvsdbError):
    """The caller asked for something invalid; retrying the same call cannot help."""


class InvalidAddressError(OvsdbUsageError):
    """The address or the TLS files cannot be used."""


class InvalidLockNameError(OvsdbUsageError):
    """OVSDB lock names must match ``[A-Za-z_][A-Za-z0-9_]*``."""


class ClientClosedError(OvsdbUsageError):
    """The client (or connection) was closed by its owner."""


class OvsdbTemporaryError(OvsdbError):
    """A temporary fault: retry after a delay."""


class ConnectionFailedError(OvsdbTemporaryError):
    """No connection could be made."""


class ConnectionLostError(OvsdbTemporaryError):
    """The connection is down; a request in flight may or may not have been applied."""


class RequestTimeoutError(OvsdbTemporaryError):
    """No reply came within the caller's timeout (the request may still be applied)."""


class OvsdbPermanentError(OvsdbError):
    """A failure that repeating the same request will not fix."""


class OvsdbProtocolError(OvsdbPermanentError):
    """The peer broke the JSON-RPC framing or sent something that is not OVSDB."""


class OvsdbServerError(OvsdbPermanentError):
    """The server answered a request with an error."""

    def __init__(self, method: str, error: str, details: str | None = None) -> None:
        text = f"{method}: {error}"
        super().__init__(f"{text}: {details}" if details else text)
        self.method = method
        self.error = error
        self.details = details


class UnknownMethodError(OvsdbServerError):
    """The server does not implement ``method`` (an older ovsdb-server)."""


class TransactionError(OvsdbServerError):
    """Operation ``index`` of a transaction failed (``index == len(ops)``: the commit)."""

    def __init__(
        self, index: int, op: dict[str, Any] | None, error: str, details: str | None
    ) -> None:
        where = f"op {index} ({_describe(op)})" if op is not None else f"commit (op {index})"
        super().__init__("transact", f"{where} failed: {error}", details)
        self.error = error
        self.index = index
        self.op = op


def _describe(op: dict[str, Any]) -> str:
    table = op.get("table")
    return f"{op.get('op')} on {table}" if table else str(op.get("op"))
