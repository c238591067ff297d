"""Transaction operations and values in OVSDB's JSON notation, and checking their results.

Pure. Operations are plain dicts (RFC 7047 section 5.2), so a caller may also write them by
hand; these helpers only spell them. Values: ``uuid(u)``, ``named_uuid(name)`` (a row
inserted earlier in the same transaction with ``uuid_name``), ``oset(...)``, ``omap(...)``.

:func:`check_results` turns the first failed op — or the commit, reported as one result
past the last op — into :class:`~tether.ovsdb.errors.TransactionError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from tether.ovsdb.errors import OvsdbProtocolError, TransactionError

__all__ = [
    "assert_lock",
    "check_results",
    "comment",
    "condition",
    "delete",
    "insert",
    "mutate",
    "named_uuid",
    "omap",
    "oset",
    "select",
    "update",
    "uuid",
    "wait",
]

Op = dict[str, Any]


def uuid(value: str) -> list[str]:
    return ["uuid", value]


def named_uuid(name: str) -> list[str]:
    return ["named-uuid", name]


def oset(values: Iterable[Any]) -> list[Any]:
    return ["set", list(values)]


def omap(pairs: Mapping[Any, Any]) -> list[Any]:
    return ["map", [[key, value] for key, value in pairs.items()]]


def condition(column: str, function: str, value: Any) -> list[Any]:
    """``[column, function, value]``, e.g. ``condition("name", "==", "ls0")``."""
    return [column, function, value]


def insert(table: str, row: Mapping[str, Any], *, uuid_name: str | None = None) -> Op:
    op: Op = {"op": "insert", "table": table, "row": dict(row)}
    if uuid_name is not None:
        op["uuid-name"] = uuid_name
    return op


def select(table: str, where: Sequence[Any] = (), columns: Sequence[str] | None = None) -> Op:
    op: Op = {"op": "select", "table": table, "where": list(where)}
    if columns is not None:
        op["columns"] = list(columns)
    return op


def update(table: str, where: Sequence[Any], row: Mapping[str, Any]) -> Op:
    return {"op": "update", "table": table, "where": list(where), "row": dict(row)}


def mutate(table: str, where: Sequence[Any], mutations: Sequence[Any]) -> Op:
    return {"op": "mutate", "table": table, "where": list(where), "mutations": list(mutations)}


def delete(table: str, where: Sequence[Any]) -> Op:
    return {"op": "delete", "table": table, "where": list(where)}


def wait(
    table: str,
    where: Sequence[Any],
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    until: str = "==",
    timeout_ms: int = 0,
) -> Op:
    return {
        "op": "wait",
        "table": table,
        "where": list(where),
        "columns": list(columns),
        "until": until,
        "rows": [dict(row) for row in rows],
        "timeout": timeout_ms,
    }


def comment(text: str) -> Op:
    return {"op": "comment", "comment": text}


def assert_lock(name: str) -> Op:
    """Fails the transaction with ``not owner`` unless this session holds lock ``name``."""
    return {"op": "assert", "lock": name}


def check_results(ops: Sequence[Mapping[str, Any]], results: Any) -> list[Any]:
    """The per-op results of a successful transaction; a failure raises TransactionError."""
    if not isinstance(results, list):
        raise OvsdbProtocolError(f"transact result is not an array: {results!r:.120}")
    for index, result in enumerate(results):
        if result is not None and "error" in result:
            op = dict(ops[index]) if index < len(ops) else None
            raise TransactionError(index, op, str(result["error"]), result.get("details"))
    return results[: len(ops)]
