"""Mapping every failure to ``{"error": {"code", "message", "field"}}`` with its status.

Caller mistakes are 4xx (400 invalid, 404 not found, 409 conflict, 413 too large, 410 gone);
a store that cannot be reached is 503; nothing a caller sends yields a 500.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from tether.model import ModelError
from tether.store import StoreError, StoreUnavailableError, TxnTooLargeError

__all__ = ["error_response", "field_path", "install_error_handlers"]

log = logging.getLogger(__name__)


def error_response(status: int, code: str, message: str, field: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "field": field}}, status_code=status
    )


UNION_TAGS = frozenset({"network", "port", "router", "chassis", "gateway", "binding"})
"""The ``kind`` tags of bulk items (see :mod:`tether.model.bulk`)."""


def field_path(loc: tuple[Any, ...]) -> str:
    """``("body", "subnets", 0, "cidr")`` -> ``subnets[0].cidr``."""
    parts = list(loc)
    if parts and parts[0] in ("body", "query", "path"):
        parts = parts[1:]
    text = ""
    for i, part in enumerate(parts):
        if isinstance(part, int):
            text += f"[{part}]"
            continue
        if i >= 2 and parts[i - 2] == "items" and part in UNION_TAGS:
            continue  # the tag pydantic puts in the path of a bulk item (a tagged union)
        if isinstance(part, str) and part.startswith("function-after"):
            continue
        text += f".{part}" if text else str(part)
    return text if text and not text.startswith("[") else "body"


def _validation_message(error: dict[str, Any]) -> str:
    message = str(error.get("msg", "invalid value"))
    return message.removeprefix("Value error, ")


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ModelError)
    async def model_error(_: Request, exc: ModelError) -> JSONResponse:
        return error_response(exc.status, exc.code, exc.message, exc.field)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = field_path(tuple(first.get("loc", ())))
        message = _validation_message(first)
        if first.get("type") == "json_invalid":
            message = "request body is not valid JSON"
        return error_response(400, "invalid", f"{field}: {message}", field)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    @app.exception_handler(TxnTooLargeError)
    async def too_large(_: Request, exc: TxnTooLargeError) -> JSONResponse:
        return error_response(413, "too_large", str(exc))

    @app.exception_handler(StoreUnavailableError)
    async def unavailable(_: Request, exc: StoreUnavailableError) -> JSONResponse:
        return error_response(503, "store_unavailable", str(exc))

    @app.exception_handler(StoreError)
    async def store_error(_: Request, exc: StoreError) -> JSONResponse:
        log.error("store error: %s", exc)
        return error_response(503, "store_error", str(exc))
