"""Does a switch's database carry ``Logical_Switch.state_consistent``? Add it if asked.

Used when a gateway is added (or switched) to the ``state-consistent`` mode: a switch whose
schema lacks the column cannot use that mode, so the request is refused with a clear message
unless the caller asked for online schema conversion (OVSDB's ``convert`` method: the
database keeps its rows, clients are told the schema changed).
"""

from __future__ import annotations

import asyncio
from typing import Any

from tether.model import ConflictError, InvalidError
from tether.ovsdb import Connection, OvsdbError, TlsFiles, parse_address
from tether.vtep.schema import has_state_consistent, with_state_consistent

__all__ = ["ensure_state_consistent"]

DATABASE = "hardware_vtep"
TIMEOUT = 5.0


async def ensure_state_consistent(
    address: str, *, convert: bool, tls: TlsFiles | None = None
) -> bool:
    """Check the switch at ``address``; returns True when it converted the schema."""
    try:
        async with asyncio.timeout(TIMEOUT):
            conn = await Connection.open(parse_address(address), tls=tls)
            try:
                schema: dict[str, Any] = await conn.request("get_schema", [DATABASE])
                if has_state_consistent(schema):
                    return False
                if not convert:
                    raise InvalidError(
                        f"the switch at {address} has no Logical_Switch.state_consistent column, "
                        "so it cannot use the state-consistent mode; add it by online schema "
                        "conversion with --convert-schema (API: ?convert_schema=true), "
                        "or choose bind-last or lock",
                        "mode",
                    )
                await conn.request("convert", [DATABASE, with_state_consistent(schema)])
                return True
            finally:
                conn.close()
                await conn.wait_closed()
    except (OvsdbError, TimeoutError, OSError) as exc:
        raise ConflictError(
            f"cannot check the schema of the switch at {address} for the state-consistent "
            f"mode: {exc or 'no answer'}",
            "ovsdb",
        ) from None
