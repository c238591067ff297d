"""The physical controller: one :class:`~tether.vtep.agent.VtepAgent` per gateway.

It follows the model service's catalog; after every change it computes each gateway's
desired configuration (:func:`tether.vtep.desired.desired_config`) and hands it to that
gateway's agent, which pushes only what differs. Agents come and go with the gateways.
Each agent's status is written to the store under ``/tether/status/gateways/<id>`` so any
API instance can show it; the desired generation is the model revision that last changed
what the gateway should hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import orjson

from tether.model.resources import Gateway
from tether.ovsdb import TlsFiles
from tether.service.models import ModelService
from tether.store import Store, StoreError
from tether.vtep.agent import GatewayStatus, VtepAgent
from tether.vtep.desired import desired_configs, port_locations
from tether.vtep.state import GatewayConfig

__all__ = ["STATUS_PREFIX", "PhysicalController", "status_key"]

log = logging.getLogger(__name__)

STATUS_PREFIX = "/tether/status/gateways/"
RETIRE_SECONDS = 10.0
"""How long a deleted gateway's agent may take to remove tether's rows from its switch."""


def status_key(gateway_id: str) -> str:
    return f"{STATUS_PREFIX}{gateway_id}"


class PhysicalController:
    def __init__(self, models: ModelService, store: Store, *, tls: TlsFiles | None = None) -> None:
        self.models = models
        self.store = store
        self.tls = tls
        self.agents: dict[str, VtepAgent] = {}
        self._task: asyncio.Task[None] | None = None
        self._dirty: dict[str, GatewayStatus] = {}
        self._flushed = asyncio.Event()
        self._writer: asyncio.Task[None] | None = None
        self._learned_changed = asyncio.Event()
        self._known_ips: dict[str, str] = {}
        self._retiring: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._task = loop.create_task(self._follow())
        self._writer = loop.create_task(self._write_statuses())

    async def stop(self) -> None:
        for task in (self._task, self._writer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        for task in list(self._retiring):
            task.cancel()
        for agent in self.agents.values():
            await agent.stop()
        self.agents.clear()

    async def _follow(self) -> None:
        """Reconcile after every model change and whenever a switch reports its tunnel IP."""
        seen = self.models.version
        while True:
            try:
                await self._reconcile()
            except Exception:
                log.exception("physical controller: reconcile failed")
            model = asyncio.ensure_future(self.models.wait_change(seen))
            learned = asyncio.ensure_future(self._learned_changed.wait())
            await asyncio.wait({model, learned}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (model, learned):
                waiter.cancel()
            self._learned_changed.clear()
            seen = self.models.version

    async def _reconcile(self) -> None:
        async with self.models.reading():
            catalog = self.models.catalog
            gateways = {
                g.id: g for g in catalog.objects["gateways"].values() if isinstance(g, Gateway)
            }
            wanted = desired_configs(catalog, port_locations(catalog), self._learned_ips())
            generation = catalog.fence_revision
        for gid in [gid for gid in self.agents if gid not in gateways]:
            retired = self.agents.pop(gid)
            task = asyncio.get_running_loop().create_task(self._retire(gid, retired, generation))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)
        for gid, gateway in gateways.items():
            agent = self.agents.get(gid)
            if agent is not None and agent.set_gateway(gateway):
                await agent.stop()
                agent = None
            if agent is None:
                agent = VtepAgent(
                    gateway, on_status=functools.partial(self._status, gid), tls=self.tls
                )
                self.agents[gid] = agent
                agent.start()
            agent.set_desired(wanted[gid], generation)

    def _learned_ips(self) -> dict[str, str]:
        return {
            agent.gateway.name: agent.status.switch_tunnel_ips[0]
            for agent in self.agents.values()
            if agent.status.switch_tunnel_ips
        }

    async def _retire(self, gateway_id: str, agent: VtepAgent, generation: int) -> None:
        """A deleted gateway: take tether's rows off the switch (bounded), then stop."""
        agent.set_desired(GatewayConfig(agent.gateway.physical_switch, {}), generation)
        deadline = asyncio.get_running_loop().time() + RETIRE_SECONDS
        while not agent.realized and asyncio.get_running_loop().time() < deadline:
            await asyncio.sleep(0.05)
        await agent.stop()
        await self._forget(gateway_id)

    def _status(self, gateway_id: str, status: GatewayStatus) -> None:
        agent = self.agents.get(gateway_id)
        if agent is not None and not agent.gateway.tunnel_ip:
            learned = self._known_ips.get(gateway_id)
            if status.switch_tunnel_ips and status.switch_tunnel_ips[0] != learned:
                self._known_ips[gateway_id] = status.switch_tunnel_ips[0]
                self._learned_changed.set()
        self._dirty[gateway_id] = status
        self._flushed.set()

    async def _write_statuses(self) -> None:
        """Write statuses to the store, coalescing bursts (at most ~20 writes a second)."""
        while True:
            await self._flushed.wait()
            self._flushed.clear()
            dirty, self._dirty = self._dirty, {}
            for gid, status in dirty.items():
                if gid not in self.agents:
                    continue
                try:
                    await self.store.put(status_key(gid), orjson.dumps(status.as_json()))
                except StoreError as exc:
                    log.warning("gateway status not stored: %s", exc)
            await asyncio.sleep(0.05)

    async def _forget(self, gateway_id: str) -> None:
        self._dirty.pop(gateway_id, None)
        with contextlib.suppress(StoreError):
            await self.store.delete(status_key(gateway_id))
