"""The agent's reports to the controller: what it applied, for port and chassis status.

After each sync the agent hands :class:`Reporter` the store revision its flows came from and
its ports that are realized or in error; after a failed sync, why it failed (the last applied
state stands). One task sends the newest report through ``PUT /v1/chassis/{name}/report``
when it differs from the last one the controller accepted, and retries until it does.
"""

from __future__ import annotations

import asyncio
import logging

import httpx

from tether.model.reports import ChassisReport, PortReport

__all__ = ["Reporter"]

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
MAX_TEXT = 1000


class Reporter:
    def __init__(self, chassis: str) -> None:
        self.chassis = chassis
        self.due: ChassisReport | None = None
        self.accepted: ChassisReport | None = None
        """The last report the controller accepted."""
        self._wake = asyncio.Event()

    def applied(self, revision: int, realized: list[str], errors: dict[str, str]) -> None:
        """A sync applied the model at store ``revision``: ``realized`` ports are on the
        bridge with their flows; ``errors`` says why the others cannot be."""
        ports = {port_id: PortReport(state="error", message=text[:MAX_TEXT])
                 for port_id, text in errors.items()}  # fmt: skip
        ports |= {port_id: PortReport(state="realized") for port_id in realized}
        self._send(ChassisReport(revision=revision, ports=ports))

    def failed(self, error: str) -> None:
        """A sync failed: what was applied before stands, with why."""
        last = self.due or ChassisReport(revision=0)
        self._send(last.model_copy(update={"error": error[:MAX_TEXT] or "sync failed"}))

    def _send(self, report: ChassisReport) -> None:
        self.due = report
        self._wake.set()

    async def run(self, http: httpx.AsyncClient) -> None:
        """Send the newest report whenever there is one the controller has not accepted."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            report = self.due
            if report is None or report == self.accepted:
                continue
            try:
                reply = await http.put(
                    f"/v1/chassis/{self.chassis}/report",
                    content=report.model_dump_json(),
                    headers={"content-type": "application/json"},
                )
                reply.raise_for_status()
                self.accepted = report
            except httpx.HTTPError as exc:
                log.warning("report to the controller failed (%s); retrying", exc)
                await asyncio.sleep(RETRY_SECONDS)
                self._wake.set()
