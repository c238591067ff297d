"""The agent's reports to the controller: what it applied, for port and chassis status.

After each sync the agent hands :class:`Reporter` the store revision of the model its flows
came from, its ports that are realized or in error, and any error; after a failed sync, why
it failed (what was applied before stands); when it loses the switch, that its ports are
down. One task sends the newest report through ``PUT /v1/chassis/{name}/report``.

A report is sent only when a reader would see something different: other ports or states,
another error, or a change to one of the chassis's ports (or their networks) newer than the
last report's revision. A change elsewhere in the fabric sends nothing. A refused report
(400, 413) is not retried until there is a different one; a 404 naming the chassis (it was
deleted) registers the chassis again first; anything else is retried with back-off.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx

from tether.agent.heartbeat import backoff, unknown_chassis
from tether.model.reports import ChassisReport, PortReport

__all__ = ["Reporter"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 0.5
RETRY_MAX_SECONDS = 30.0
MAX_TEXT = 1000


class Reporter:
    def __init__(self, chassis: str, register: Callable[[], Awaitable[None]]) -> None:
        self.chassis = chassis
        self.register = register
        """Registers the chassis with the controller (after it was deleted)."""
        self.due: ChassisReport | None = None
        self.accepted: ChassisReport | None = None
        """The last report the controller accepted."""
        self.sent = 0
        self._refused: ChassisReport | None = None
        self._wake = asyncio.Event()

    def applied(
        self,
        revision: int,
        newest: int,
        realized: list[str],
        errors: dict[str, str],
        error: str = "",
    ) -> None:
        """A sync applied the model at store ``revision``; ``newest`` is the newest revision
        of the chassis's ports and their networks. ``realized`` ports are on the bridge with
        their flows; ``errors`` says why others cannot be; ``error``, what else failed."""
        ports = {port_id: PortReport(state="error", message=text[:MAX_TEXT])
                 for port_id, text in errors.items()}  # fmt: skip
        ports |= {port_id: PortReport(state="realized") for port_id in realized}
        report = ChassisReport(revision=revision, ports=ports, error=error[:MAX_TEXT])
        last = self.accepted
        if (
            last is not None
            and (last.ports, last.error) == (report.ports, report.error)
            and newest <= last.revision
        ):
            report = last  # the same answer for every port that reader could ask about
        self._send(report)

    def failed(self, error: str) -> None:
        """A sync failed: what was applied before stands, with why."""
        last = self.due or ChassisReport(revision=0)
        self._send(last.model_copy(update={"error": error[:MAX_TEXT] or "sync failed"}))

    def lost(self, error: str) -> None:
        """The switch is gone, and with it (maybe) every flow: no port is realized."""
        revision = self.due.revision if self.due is not None else 0
        self._send(ChassisReport(revision=revision, error=error[:MAX_TEXT]))

    def _send(self, report: ChassisReport) -> None:
        self.due = report
        self._wake.set()

    async def run(self, http: httpx.AsyncClient) -> None:
        """Send the newest report whenever there is one the controller has not accepted."""
        failures = 0
        while True:
            await self._wake.wait()
            self._wake.clear()
            report = self.due
            if report is None or report in (self.accepted, self._refused):
                continue
            try:
                reply = await self._put(http, report)
                if unknown_chassis(reply):
                    log.warning("chassis %s is unknown to the controller; registering it again",
                                self.chassis)  # fmt: skip
                    await self.register()
                    reply = await self._put(http, report)
                if reply.status_code in (400, 413, 422):
                    log.error("the controller refused this agent's report: %s", reply.text[:300])
                    self._refused = report
                    continue
                reply.raise_for_status()
                self.accepted, failures = report, 0
                self.sent += 1
            except httpx.HTTPError as exc:
                failures += 1
                if failures == 1 or failures % 10 == 0:
                    log.warning("report to the controller failed (%s); retrying", exc)
                await asyncio.sleep(min(backoff(RETRY_SECONDS, failures), RETRY_MAX_SECONDS))
                self._wake.set()

    async def _put(self, http: httpx.AsyncClient, report: ChassisReport) -> httpx.Response:
        return await http.put(
            f"/v1/chassis/{self.chassis}/report",
            content=report.model_dump_json(),
            headers={"content-type": "application/json"},
        )
