"""The physical controller: one :class:`~tether.vtep.agent.VtepAgent` per gateway.

Distribution: it follows the model service's catalog and the MAC inventory. After a model
change it computes every gateway's desired configuration
(:func:`tether.vtep.desired.desired_configs`); after a location change only the networks
that changed, on only the gateways carrying them (:func:`~tether.vtep.desired.update_networks`).
Each agent pushes only what differs from its switch, in the gateway's transaction mode.

Collection: each agent hands over what its switch learned (``Ucast_Macs_Local``), and the
inventory records it as that gateway's claims (:meth:`MacInventory.report`).

Agents come and go with the gateways. Each agent's status is written to the store under
``/tether/status/gateways/<id>`` so any API instance can show it; the desired generation is
the store revision (model or claims) that last changed what the gateway should hold.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging

import orjson

from tether.model.resources import Gateway
from tether.ovsdb import TlsFiles
from tether.service.inventory import MacInventory
from tether.service.models import ModelService
from tether.store import Store, StoreError
from tether.vtep.agent import GatewayStatus, LocalMacs, VtepAgent
from tether.vtep.desired import desired_configs, update_networks
from tether.vtep.state import GatewayConfig

__all__ = ["STATUS_PREFIX", "PhysicalController", "status_key"]

log = logging.getLogger(__name__)

STATUS_PREFIX = "/tether/status/gateways/"
RETIRE_SECONDS = 10.0
"""How long a deleted gateway's agent may take to remove tether's rows from its switch."""


def status_key(gateway_id: str) -> str:
    return f"{STATUS_PREFIX}{gateway_id}"


class PhysicalController:
    def __init__(
        self,
        models: ModelService,
        store: Store,
        inventory: MacInventory,
        *,
        tls: TlsFiles | None = None,
    ) -> None:
        self.models = models
        self.store = store
        self.inventory = inventory
        self.tls = tls
        self._configs: dict[str, GatewayConfig] = {}
        self._moved: set[str] = set()
        self._located_changed = asyncio.Event()
        inventory.on_change = self._locations_changed
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

    def _locations_changed(self, networks: set[str]) -> None:
        self._moved |= networks
        self._located_changed.set()

    async def _follow(self) -> None:
        """Everything after a model change or a switch reporting its tunnel IP; only the
        networks whose locations changed after an inventory change."""
        seen = self.models.version
        full = True
        while True:
            try:
                if full:
                    self._moved.clear()
                    await self._reconcile()
                else:
                    moved, self._moved = self._moved, set()
                    await self._distribute(moved)
            except Exception:
                log.exception("physical controller: reconcile failed")
            model = asyncio.ensure_future(self.models.wait_change(seen))
            learned = asyncio.ensure_future(self._learned_changed.wait())
            located = asyncio.ensure_future(self._located_changed.wait())
            await asyncio.wait({model, learned, located}, return_when=asyncio.FIRST_COMPLETED)
            for waiter in (model, learned, located):
                waiter.cancel()
            full = self.models.version != seen or self._learned_changed.is_set()
            self._learned_changed.clear()
            self._located_changed.clear()
            seen = self.models.version

    def _generation(self) -> int:
        return max(self.models.catalog.fence_revision, self.inventory.revision)

    async def _distribute(self, networks: set[str]) -> None:
        """Only the changed networks, to only the gateways carrying them."""
        async with self.models.reading():
            updated = update_networks(
                self.models.catalog,
                self._configs,
                networks,
                self.inventory.located,
                self.learned_ips(),
            )
            generation = self._generation()
        for gid, config in updated.items():
            self._configs[gid] = config
            agent = self.agents.get(gid)
            if agent is not None:
                agent.set_desired(config, generation)

    async def _reconcile(self) -> None:
        async with self.models.reading():
            catalog = self.models.catalog
            gateways = {
                g.id: g for g in catalog.objects["gateways"].values() if isinstance(g, Gateway)
            }
            wanted = desired_configs(catalog, self.inventory.located, self.learned_ips())
            generation = self._generation()
        self._configs = wanted
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
                    gateway,
                    on_status=functools.partial(self._status, gid),
                    tls=self.tls,
                    on_local_macs=functools.partial(self._collected, gateway.name),
                )
                self.agents[gid] = agent
                agent.start()
            agent.set_desired(wanted[gid], generation)

    def _collected(self, gateway: str, macs: LocalMacs) -> None:
        self.inventory.report(gateway, macs)

    def learned_ips(self) -> dict[str, str]:
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
