"""The ovs ASIC's ``Ucast_Macs_Local`` writer: learned MACs into the switch's own database.

A hardware VTEP reports the MACs it learns on its front-panel ports. :class:`LocalMacWriter`
is that part of the switch: its own OVSDB session to the switch's ``hardware_vtep`` server
monitors ``Logical_Switch``, ``Ucast_Macs_Local`` and ``Physical_Locator``, and a pass runs
whenever the datapath learns or forgets a MAC (:meth:`OvsAsic.add_listener
<tether.lab.ovs_asic.OvsAsic.add_listener>`), the programmed state changes or the database
does. Each pass asks :func:`~tether.lab.mac_learning.local_mac_ops` for the transaction that
makes the table right and commits it, then waits one ``echo`` round trip so the replica
holds its own change before the next pass. Nothing is polled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping, Set

from tether.lab.forwarding import ForwardingTable
from tether.lab.mac_learning import LearnedMac, local_mac_ops
from tether.ovsdb import Client, ClientOptions, Monitor, OvsdbError

__all__ = ["LocalMacWriter"]

log = logging.getLogger(__name__)

DB = "hardware_vtep"
TABLES = ("Logical_Switch", "Ucast_Macs_Local", "Physical_Locator")


class LocalMacWriter:
    """Keeps ``Ucast_Macs_Local`` equal to what the ASIC learned (see the module)."""

    def __init__(
        self,
        address: str,
        switch: str,
        *,
        tunnel_ip: str,
        programmed: Callable[[], Mapping[str, ForwardingTable]],
        learned: Callable[[], Set[LearnedMac]],
        options: ClientOptions | None = None,
    ) -> None:
        self.switch = switch
        self.tunnel_ip = tunnel_ip
        self._programmed = programmed
        self._learned = learned
        self._client = Client(address, options=options, on_reconnect=self._reconnected)
        self._monitor: Monitor | None = None
        self._wake = asyncio.Event()
        self._pass_done = asyncio.Event()
        self._started = self._done = 0
        self._last_changed = True
        self._task: asyncio.Task[None] | None = None

    def wake(self) -> None:
        """Something changed: run a pass soon."""
        self._wake.set()

    async def _reconnected(self) -> None:
        self._wake.set()

    async def start(self, *, timeout: float = 10.0) -> None:
        await self._client.connect(timeout=timeout)
        self._monitor = await self._client.monitor_cond_since(
            DB, dict.fromkeys(TABLES), on_update=lambda _: self._wake.set()
        )
        self._task = asyncio.get_running_loop().create_task(
            self._run(), name=f"local MACs {self.switch}"
        )
        self._wake.set()

    async def settle(self, *, timeout: float = 10.0) -> None:
        """Wait until a pass started after this call finds nothing to write."""
        async with asyncio.timeout(timeout):
            while True:
                await self._client.echo()
                target = self._started + 1
                self._wake.set()
                while self._done < target:
                    await self._pass_done.wait()
                if not self._last_changed:
                    return

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._client.close()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._started += 1
            try:
                self._last_changed = await self._pass()
            except OvsdbError as exc:  # retried on the next change or reconnect
                log.info("switch %s: writing local MACs failed: %s", self.switch, exc)
                self._last_changed = True
            self._done += 1
            self._pass_done.set()
            self._pass_done = asyncio.Event()

    async def _pass(self) -> bool:
        """One reconcile step; whether it wrote anything."""
        assert self._monitor is not None
        operations = local_mac_ops(
            self._learned(),
            programmed=self._programmed(),
            tables=self._monitor.replica.tables,
            tunnel_ip=self.tunnel_ip,
        )
        if not operations:
            return False
        await self._client.transact(DB, operations)
        await self._client.echo()  # our own change is in the replica before the next pass
        log.debug("switch %s: %d local MAC ops", self.switch, len(operations))
        return True
