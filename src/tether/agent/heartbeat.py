"""The agent's heartbeat: keeps its chassis's presence alive at the controller.

``PUT /v1/chassis/{name}/presence`` refreshes a store lease of the controller's
``agent_timeout`` (the answer's ``ttl``); the agent calls it every third of that, so two
lost heartbeats in a row still leave it alive. Heartbeats write no store revision once the
presence exists. A failed call is retried within a second or two, never later than the
next heartbeat would be; a 404 naming the chassis (it was deleted) registers the chassis
again. On a clean stop the agent ends its presence (``DELETE``) so its chassis shows it at
once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

__all__ = ["Heartbeat", "backoff", "unknown_chassis"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5
FIRST_TTL = 30.0
"""What the agent assumes until the controller said its timeout."""
LEAVE_TIMEOUT = 2.0


def backoff(first: float, failures: int) -> float:
    """``first`` doubled for each failure after the first (the exponent capped: it only
    feeds a ``min`` with the longest wait, and a float overflows at 2**1024)."""
    return first * float(2 ** min(failures - 1, 16))


def unknown_chassis(reply: httpx.Response) -> bool:
    """The controller does not know this chassis (it was deleted): a 404 naming the chassis,
    not one for a path an older controller lacks."""
    if reply.status_code != 404:
        return False
    try:
        return bool(reply.json()["error"]["field"] == "chassis")
    except (ValueError, KeyError, TypeError):
        return False


class Heartbeat:
    def __init__(self, chassis: str, register: Callable[[], Awaitable[None]]) -> None:
        self.chassis = chassis
        self.register = register
        """Registers the chassis with the controller (after it was deleted)."""
        self.ttl = FIRST_TTL
        self.beats = 0
        """Heartbeats the controller accepted."""
        self._in_flight: asyncio.Future[httpx.Response] | None = None

    @property
    def _path(self) -> str:
        return f"/v1/chassis/{self.chassis}/presence"

    async def run(self, http: httpx.AsyncClient) -> None:
        """Beat forever: every third of the ttl, sooner after a failure."""
        failures = 0
        while True:
            try:
                reply = await self._beat(http)
                if unknown_chassis(reply):
                    log.warning("chassis %s is unknown to the controller; registering it again",
                                self.chassis)  # fmt: skip
                    await self.register()
                    reply = await self._beat(http)
                reply.raise_for_status()
                self.ttl = float(reply.json()["ttl"])
                self.beats += 1
                if failures:
                    log.info("heartbeat to the controller works again")
                failures = 0
                await asyncio.sleep(self.ttl / 3)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("heartbeat to the controller failed (%s); retrying", exc)
                await asyncio.sleep(min(backoff(RETRY_SECONDS, failures), self.ttl / 6))

    async def _beat(self, http: httpx.AsyncClient) -> httpx.Response:
        """One heartbeat, which a stopping agent lets finish (see :meth:`leave`)."""
        self._in_flight = asyncio.ensure_future(http.put(self._path))
        return await asyncio.shield(self._in_flight)

    async def leave(self, http: httpx.AsyncClient) -> None:
        """End the presence now (the agent is stopping; :meth:`run` was cancelled); best
        effort. A heartbeat still in flight is let finish first, or it could bring the
        presence back after its end."""
        if self._in_flight is not None and not self._in_flight.done():
            await asyncio.wait([self._in_flight], timeout=LEAVE_TIMEOUT)
        try:
            reply = await http.delete(self._path, timeout=LEAVE_TIMEOUT)
            if reply.status_code not in (200, 404):
                log.warning("the controller kept this agent's presence: %s", reply.status_code)
        except httpx.HTTPError as exc:
            log.warning("could not end this agent's presence (%s); it ends within %.0f s",
                        exc, self.ttl)  # fmt: skip
