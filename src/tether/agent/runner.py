"""``tether agent``: the local controller of one hypervisor.

On start it registers its chassis (name and tunnel IP) with the controller, mirrors the
controller's store through the watch API (:class:`~tether.agent.mirror.WatchedStore`) and
runs the same model service and MAC inventory on it, ensures the integration bridge, watches
the bridge's interfaces in the Open_vSwitch database (a VIF is an interface whose
``external_ids:iface-id`` names a tether port by id or name) and opens its OpenFlow channel.

Then, whenever the model, the MAC locations or the VIFs change, it binds the ports it found
to its chassis (through the REST API: their MACs become the chassis's claims), builds its
view (:func:`tether.openflow.view.agent_view`), compiles it and applies the difference as one
bundle; DHCP requests the pipeline punts are answered from the ports' leases.
After each sync it reports what it applied (:mod:`~tether.agent.reporter`), and it keeps
its chassis's presence alive with a heartbeat (:mod:`~tether.agent.heartbeat`): a report
stands only while its agent is alive.

Open vSwitch restarts are noticed three ways: the OpenFlow session drops (``ovs-vswitchd``
went away), the bridge disappears from the database (a wiped or recreated database, or
someone deleted it), or the audit finds the tables emptied. When the session comes back, or
the bridge row goes missing, the agent recovers at once: it ensures the bridge and its tunnel
port again and audits the flows, reinstalling the whole set atomically if the switch lost
them. A recovery that had to reinstall counts as an Open vSwitch restart; the gap (from
losing the switch to tether's flows being back) and the recovery time (from the switch being
back) are logged and exported as metrics (:mod:`~tether.agent.metrics`).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import orjson

from tether.agent.bridge import OvsCommands, ensure_bridge
from tether.agent.channel import OpenFlowChannel
from tether.agent.dhcp_server import DhcpServer
from tether.agent.flows import AuditResult, FlowApplier
from tether.agent.heartbeat import Heartbeat
from tether.agent.metrics import MetricsServer
from tether.agent.mirror import ReadOnlyStore, WatchedStore
from tether.agent.reporter import Reporter
from tether.model import Catalog
from tether.model.devices import device_tunnel_ips
from tether.model.resources import Port, Router
from tether.openflow import Flow, compile_flows
from tether.openflow.dhcp import DhcpLease
from tether.openflow.pipeline import cookie_of
from tether.openflow.view import Vif, agent_view, dhcp_lease
from tether.ovsdb import Client, Monitor, OvsdbError
from tether.service.ids import RandomIds
from tether.service.inventory import MacInventory
from tether.service.models import ModelService
from tether.store import Store, open_store

__all__ = ["AgentSettings", "HypervisorAgent"]

log = logging.getLogger(__name__)

TUNNEL_PORT = "vxlan0"
TUNNEL_OFPORT = 100
STATUS_PREFIX = "/tether/status/gateways/"
UNKNOWN_RETRY_SECONDS = 5.0
RECOVERY_BACKOFF_MAX = 2.0
"""Seconds between recovery attempts, at most (they start at 0.1 s and double)."""
BULK_LOOKUP = 20
UNKNOWN_CHASSIS = 1 << 62
"""Newer than any revision: the report must go (see :func:`_newest_revision`)."""
"""More VIFs than this to look up: list the ports once instead."""


@dataclass(frozen=True, slots=True)
class AgentSettings:
    chassis: str
    tunnel_ip: str
    server: str
    """The controller's REST API, e.g. ``http://127.0.0.1:7500``."""
    ovsdb: str = "unix:/var/run/openvswitch/db.sock"
    bridge: str = "br-int"
    datapath: str = "system"
    store: str | None = None
    """``etcd://...``: read the model and claims from etcd directly; otherwise through the
    controller's watch API (the embedded store)."""
    audit_seconds: float = 30.0
    """How often the bridge's flows are compared with the desired ones and repaired."""
    metrics_listen: str | None = None
    """``HOST:PORT`` to serve Prometheus metrics on (``/metrics``); None: not served."""

    @property
    def rundir(self) -> Path:
        """Where OVS keeps its sockets: the directory of the database's unix socket."""
        if not self.ovsdb.startswith("unix:"):
            raise ValueError(f"ovsdb: {self.ovsdb!r} must be unix:PATH (the local Open vSwitch)")
        return Path(self.ovsdb.removeprefix("unix:")).parent


@dataclass
class AgentState:
    vifs: dict[str, Vif] = field(default_factory=dict)
    broken_vifs: dict[str, str] = field(default_factory=dict)
    """iface-id -> why Open vSwitch could not attach it (``Interface.error``)."""
    leases: dict[int, DhcpLease] = field(default_factory=dict)
    syncs: int = 0
    last_error: str = ""
    repairs: int = 0
    """Flows the audit found missing, changed or unwanted, and repaired."""
    ovs_restarts: int = 0
    """Open vSwitch restarts that took tether's flows with them, recovered from."""
    ovs_gap_seconds: float = 0.0
    """The last one: from losing the switch to tether's flows being back."""
    ovs_recovery_seconds: float = 0.0
    """The last one: from the switch being back to tether's flows being back."""


class HypervisorAgent:
    def __init__(self, settings: AgentSettings, ovs: OvsCommands) -> None:
        self.settings = settings
        self.ovs = ovs
        self.state = AgentState()
        self.mirror = WatchedStore(settings.server, chassis=settings.chassis)
        self._direct: ReadOnlyStore | None = None
        self.models: ModelService | None = None
        self.inventory: MacInventory | None = None
        rundir = settings.rundir
        self.applier = FlowApplier(ovs, f"unix:{rundir / settings.bridge}.mgmt")
        self.dhcp: DhcpServer | None = None
        self.channel = OpenFlowChannel(
            rundir / f"{settings.bridge}.tether",
            lambda packet: self.dhcp.packet_in(packet) if self.dhcp else None,
            on_connected=self._switch_back,
            on_lost=self._switch_lost,
        )
        self.dhcp = DhcpServer(self.channel, self.state.leases.get)
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._ovsdb: Client | None = None
        self._vif_monitor: Monitor | None = None
        self._http: httpx.AsyncClient | None = None
        self._applying = asyncio.Lock()
        self.generation = 0
        """This agent's generation, in the cookie of every flow it installs."""
        self._desired: frozenset[Flow] | None = None
        self._unknown: dict[str, float] = {}
        """VIF iface-ids no port has (yet), and when that was last asked."""
        self._retry: asyncio.Task[None] | None = None
        self.synced = asyncio.Event()
        """Set after each sync that left the bridge equal to the model."""
        self._lost_at: float | None = None
        """When the OpenFlow session with the switch dropped (until the switch is back)."""
        self._lost_why = ""
        self._back_at: float | None = None
        """When the switch came back (its OpenFlow session did)."""
        self._recovery: asyncio.Task[None] | None = None
        self._stopping = False
        self._recorded = 0
        """The generation last recorded on the bridge (0: none yet)."""
        self.recovered = asyncio.Event()
        """Set after each recovery from a lost switch (tests wait on it)."""
        self.reporter = Reporter(settings.chassis, self._register)
        self.heartbeat = Heartbeat(settings.chassis, self._register)
        self.metrics = (
            MetricsServer(self, settings.metrics_listen) if settings.metrics_listen else None
        )

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping

    @property
    def unknown_vifs(self) -> int:
        """VIFs whose iface-id no port has (as last asked)."""
        return len(self._unknown)

    async def start(self) -> None:
        s = self.settings
        if self.metrics is not None:
            self.metrics.start()
        self._http = httpx.AsyncClient(base_url=s.server, timeout=30)
        await self._register()
        store: Store
        if s.store is not None:
            self._direct = ReadOnlyStore(await open_store(s.store))
            store = self._direct
        else:
            await self.mirror.start()
            store = self.mirror
        self.models = ModelService(store, RandomIds())
        self.inventory = MacInventory(self.models, store)
        await self.models.start()
        await self.inventory.start()
        self.inventory.on_change = lambda _networks: self._wake.set()
        await self._ensure_bridge()
        self.generation = await self._next_generation()
        self._ovsdb = Client(s.ovsdb)
        await self._ovsdb.connect(timeout=10)
        self._vif_monitor = await self._ovsdb.monitor_cond_since(
            "Open_vSwitch",
            {"Interface": None, "Bridge": ["name"]},
            on_update=lambda _: self._ovs_changed(),
        )
        self._ovs_changed()
        self.channel.start()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._follow()),
            loop.create_task(self._audit()),
            loop.create_task(self.reporter.run(self._http)),
            loop.create_task(self.heartbeat.run(self._http)),
        ]

    async def stop(self) -> None:
        self._stopping = True
        if self._retry is not None:
            self._retry.cancel()
        for task in self._tasks:
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass
            except Exception:  # already logged where it happened; stopping goes on
                log.exception("agent task ended with an error")
        if self._tasks and self._http is not None:
            await self.heartbeat.leave(self._http)
        await self.channel.stop()
        if self._ovsdb is not None:
            await self._ovsdb.close()
        if self._recovery is not None:
            self._recovery.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._recovery
        if self.inventory is not None:
            await self.inventory.stop()
        if self.models is not None:
            await self.models.stop()
        await self.mirror.close()
        if self._direct is not None:
            await self._direct.close()
        if self._http is not None:
            await self._http.aclose()
        if self.metrics is not None:
            await asyncio.to_thread(self.metrics.stop)

    # -- the loop -----------------------------------------------------------------------

    async def _follow(self) -> None:
        assert self.models is not None
        seen = -1
        while True:
            self._wake.clear()
            if self.models.version != seen:
                seen = self.models.version
            try:
                self.state.last_error = await self._sync()
                self.synced.set()
            except (httpx.HTTPError, OvsdbError, OSError, ValueError) as exc:
                self.state.last_error = str(exc)
                log.warning("agent sync failed: %s", exc)
                self.reporter.failed(str(exc))
                await asyncio.sleep(0.5)
                self._wake.set()
            except Exception as exc:  # a bug: say so loudly, keep the last flows, retry
                self.state.last_error = f"{type(exc).__name__}: {exc}"
                log.exception("agent sync failed")
                self.reporter.failed(self.state.last_error)
                await asyncio.sleep(0.5)
                self._wake.set()
            model = asyncio.ensure_future(self.models.wait_change(seen))
            other = asyncio.ensure_future(self._wake.wait())
            await asyncio.wait({model, other}, return_when=asyncio.FIRST_COMPLETED)
            model.cancel()
            other.cancel()
            self.synced.clear()

    async def _ensure_bridge(self) -> None:
        s = self.settings
        await ensure_bridge(
            self.ovs,
            s.bridge,
            datapath=s.datapath,
            tunnel_port=TUNNEL_PORT,
            tunnel_ofport=TUNNEL_OFPORT,
            controller=f"punix:{s.rundir / s.bridge}.tether",
        )

    # -- Open vSwitch restarts ----------------------------------------------------------

    def _switch_lost(self) -> None:
        self._lost_at = self._lost_at or asyncio.get_running_loop().time()
        self._lost_why = f"lost the OpenFlow session with {self.settings.bridge}"
        self.reporter.lost(self._lost_why)
        log.warning("lost the OpenFlow session with %s; recovering when it is back",
                    self.settings.bridge)  # fmt: skip

    def _switch_back(self) -> None:
        if self._lost_at is None and self.channel.sessions == 1:
            return  # the first session: the start-up sync programs the bridge
        self._back_at = asyncio.get_running_loop().time()
        self._recover_soon()

    def _recover_soon(self) -> None:
        if self._stopping:
            return
        if self._recovery is None or self._recovery.done():
            self._recovery = asyncio.get_running_loop().create_task(self._recover())

    async def _recover(self) -> None:
        """Make the bridge and tether's flows whole again after the switch was away; retried
        with back-off until it works."""
        loop = asyncio.get_running_loop()
        for attempt in itertools.count():
            try:
                async with self._applying:
                    await self._ensure_bridge()
                    desired = self._desired
                    found = None if desired is None else await self.applier.audit(desired)
                    if found is not None:
                        await self._record_generation(self.generation)  # a rebuilt bridge
                break
            except Exception as exc:  # the switch went away again, or is not ready yet
                if attempt % 10 == 0:
                    log.warning("recovery of %s failed: %s; retrying", self.settings.bridge, exc)
                await asyncio.sleep(min(0.1 * 2**attempt, RECOVERY_BACKOFF_MAX))
        done = loop.time()
        lost_at = self._lost_at if self._lost_at is not None else done
        back_at = self._back_at if self._back_at is not None else lost_at
        self._lost_at = self._back_at = None
        if found is not None and found.missing:
            self._count_restart(done - lost_at, done - back_at, found)
        else:
            log.info("switch %s back; its flows were intact", self.settings.bridge)
        self._wake.set()  # a sync reports the ports realized again
        self.recovered.set()

    def _count_restart(self, gap: float, recovery: float, found: AuditResult) -> None:
        state = self.state
        state.ovs_restarts += 1
        state.ovs_gap_seconds = gap
        state.ovs_recovery_seconds = recovery
        log.warning(
            "Open vSwitch lost tether's flows on %s: %d reinstalled; gap %.3f s, "
            "%.3f s after the switch was back",
            self.settings.bridge, found.missing, gap, recovery,
        )  # fmt: skip

    async def _next_generation(self) -> int:
        """One more than the live generation the bridge records (1..65535, wrapping)."""
        return (await self.live_generation()) % 0xFFFF + 1

    async def live_generation(self) -> int:
        """The generation whose flows are on the bridge (``external_ids:tether-generation``),
        0 when none is recorded."""
        try:
            text = await self.ovs.vsctl(
                "--if-exists", "get", "Bridge", self.settings.bridge,
                "external_ids:tether-generation",
            )  # fmt: skip
        except Exception:  # no bridge, no record: nothing is live
            return 0
        value = text.strip().strip('"')
        return int(value) if value.isdigit() else 0

    async def _record_generation(self, generation: int) -> None:
        await self.ovs.vsctl(
            "set", "Bridge", self.settings.bridge, f"external_ids:tether-generation={generation}"
        )
        self._recorded = generation

    async def cleanup(self) -> int:
        """Remove tether's flows of every generation but the live one (``tether agent
        --cleanup``); foreign flows stay. A starting agent needs no cleanup: its first apply
        deletes every older generation's flows in the bundle that installs its own."""
        return await self.applier.cleanup(await self.live_generation())

    async def _audit(self) -> None:
        """Now and then, make sure the switch still holds what was applied. Tables found
        emptied count as an Open vSwitch restart (the gap is at most the time since the
        last check that found them whole)."""
        loop = asyncio.get_running_loop()
        checked = loop.time()
        while True:
            await asyncio.sleep(self.settings.audit_seconds)
            if self._desired is None or self._lost_at is not None:
                continue  # nothing applied yet, or the switch is away: recovery repairs
            try:
                async with self._applying:
                    desired = self._desired
                    found = await self.applier.audit(desired)
            except Exception as exc:  # the next audit tries again
                log.warning("flow audit failed: %s", exc)
                continue
            now = loop.time()
            if desired and found.missing == len(desired) and not found.unwanted:
                self._count_restart(now - checked, 0.0, found)
            elif found.repaired:
                self.state.repairs += found.repaired
                log.warning(
                    "flow audit: %d flows differed from the model; repaired", found.repaired
                )
            checked = now

    async def _sync(self) -> str:
        """Apply the model to the bridge; returns what went wrong after the flows were in
        (empty when nothing did)."""
        s = self.settings
        assert self.models is not None and self.inventory is not None
        async with self.models.reading():
            revision = self.models.watch_revision
            catalog = self.models.catalog
            # a VIF whose port this agent does not see bound to it: the port is elsewhere in
            # the fabric (the agent's stream holds only its own networks): ask the API
            ports = catalog.objects["ports"]
            names = {p.name: p for p in ports.values() if isinstance(p, Port) and p.name}
            unbound = [
                iface_id
                for iface_id in [*self.state.vifs, *self.state.broken_vifs]
                if (port := _port_of(ports, names, iface_id)) is None or port.chassis != s.chassis
            ]
            view = agent_view(
                catalog,
                s.chassis,
                self.state.vifs,
                self.inventory.located,
                device_tunnel_ips(catalog, self._learned_ips()),
                tunnel_ofport=TUNNEL_OFPORT,
            )
            broken = {
                port.id: f"Open vSwitch cannot attach its interface: {text}"
                for iface_id, text in self.state.broken_vifs.items()
                if (port := _port_of(ports, names, iface_id)) is not None
                and port.chassis == s.chassis
            }
            newest = _newest_revision(catalog, s.chassis)
            leases = {}
            for local in view.ports:
                lease = dhcp_lease(catalog, local.port_id)
                if lease is not None:
                    leases[local.ofport] = lease
        self.state.leases.clear()
        self.state.leases.update(leases)
        cookie = cookie_of(self.generation)
        desired = frozenset(replace(flow, cookie=cookie) for flow in compile_flows(view))
        async with self._applying:
            await self.applier.apply(desired)
            self._desired = desired
            if self._recorded != self.generation:  # its flows are in: it is the live one now
                await self._record_generation(self.generation)
        if self._lost_at is not None:  # nothing applied may be on the switch: recovery reports
            self.reporter.lost(self._lost_why)
            self.state.syncs += 1
            return ""
        realized = [local.port_id for local in view.ports]
        try:
            await self._bind(unbound)  # the next sync, after the model change, programs them
        except httpx.HTTPError as exc:  # the flows are in: report, and try binding again
            error = f"binding the ports of its interfaces failed: {_brief(exc)}"
            log.warning("agent sync: %s", error)
            self._retry_bind()
        else:
            error = ""
        self.reporter.applied(revision, newest, realized, broken, error)
        self.state.syncs += 1
        return error

    async def _bind(self, iface_ids: list[str]) -> None:
        """Bind the ports these VIFs name to this chassis. A name no port has yet is asked
        about again only after :data:`UNKNOWN_RETRY_SECONDS`."""
        now = asyncio.get_running_loop().time()
        wanted = [i for i in iface_ids if now - self._unknown.get(i, -1e9) >= UNKNOWN_RETRY_SECONDS]
        limit = asyncio.Semaphore(16)

        async def bind(iface_id: str) -> None:
            assert self._http is not None
            async with limit:
                found = await self._http.get(f"/v1/ports/{iface_id}")
                if found.status_code == 404:
                    self._unknown[iface_id] = now
                    return
                found.raise_for_status()
                port = found.json()
                if port.get("chassis") != self.settings.chassis:
                    reply = await self._http.patch(
                        f"/v1/ports/{port['id']}", json={"chassis": self.settings.chassis}
                    )
                    reply.raise_for_status()
                self._unknown.pop(iface_id, None)

        if len(wanted) > BULK_LOOKUP:  # one listing costs less than many lookups
            await self._bind_listed(wanted, now)
        else:
            await asyncio.gather(*(bind(i) for i in wanted))
        if len(wanted) < len(iface_ids) or self._unknown:
            self._retry_unknown()

    async def _bind_listed(self, wanted: list[str], now: float) -> None:
        assert self._http is not None
        by_ref: dict[str, dict[str, Any]] = {}
        after: str | None = None
        while True:
            params: dict[str, Any] = {"limit": 1000}
            if after:
                params["after"] = after
            page = (await self._http.get("/v1/ports", params=params)).raise_for_status().json()
            for port in page["items"]:
                by_ref[port["id"]] = port
                if port.get("name"):
                    by_ref.setdefault(port["name"], port)
            after = page.get("next")
            if not after:
                break
        for iface_id in wanted:
            port = by_ref.get(iface_id)
            if port is None:
                self._unknown[iface_id] = now
                continue
            self._unknown.pop(iface_id, None)
            if port.get("chassis") != self.settings.chassis:
                reply = await self._http.patch(
                    f"/v1/ports/{port['id']}", json={"chassis": self.settings.chassis}
                )
                reply.raise_for_status()

    def _retry_bind(self) -> None:
        if self._retry is None or self._retry.done():
            self._retry = asyncio.get_running_loop().create_task(self._wake_later(0.5))

    def _retry_unknown(self) -> None:
        if self._retry is None or self._retry.done():
            loop = asyncio.get_running_loop()
            self._retry = loop.create_task(self._wake_later(UNKNOWN_RETRY_SECONDS))

    async def _wake_later(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        self._wake.set()

    def _ovs_changed(self) -> None:
        monitor = self._vif_monitor
        if monitor is None:
            return
        bridges = {row.get("name") for row in monitor.rows("Bridge").values()}
        if self.settings.bridge not in bridges:
            self._lost_at = self._lost_at or asyncio.get_running_loop().time()
            self._lost_why = f"bridge {self.settings.bridge} is gone; rebuilding it"
            self.reporter.lost(self._lost_why)
            self._recover_soon()  # deleted, or a wiped database: build it again
        self._vifs_changed()

    def _vifs_changed(self) -> None:
        monitor = self._vif_monitor
        if monitor is None:
            return
        vifs = {}
        broken: dict[str, str] = {}
        for row in monitor.rows("Interface").values():
            external = row.get("external_ids")
            if not isinstance(external, dict):
                continue
            iface_id = external.get("iface-id")
            ofport = row.get("ofport")
            if iface_id and isinstance(ofport, int) and ofport > 0:
                mac = str(external.get("attached-mac", ""))
                vifs[str(iface_id)] = Vif(str(iface_id), ofport, mac)
            elif iface_id and ofport == -1:  # Open vSwitch tried, and failed
                error = row.get("error")
                broken[str(iface_id)] = str(error or "it has no OpenFlow port")
        if vifs != self.state.vifs or broken != self.state.broken_vifs:
            self.state.vifs = vifs
            self.state.broken_vifs = broken
            self._wake.set()

    def _learned_ips(self) -> dict[str, str]:
        learned: dict[str, str] = {}
        if self._direct is not None:
            return learned  # etcd directly: gateways without a configured tunnel IP wait
        for _key, kv in self.mirror.items(STATUS_PREFIX):
            with contextlib.suppress(orjson.JSONDecodeError, KeyError, IndexError, TypeError):
                status: Any = orjson.loads(kv.value)
                learned[str(status["gateway"])] = str(status["switch_tunnel_ips"][0])
        return learned

    async def _register(self) -> None:
        """Create this chassis, or set its tunnel IP when it exists."""
        assert self._http is not None
        s = self.settings
        reply = await self._http.post(
            "/v1/chassis", json={"name": s.chassis, "tunnel_ip": s.tunnel_ip}
        )
        if reply.status_code == 409:
            reply = await self._http.patch(
                f"/v1/chassis/{s.chassis}", json={"tunnel_ip": s.tunnel_ip}
            )
        reply.raise_for_status()


def _brief(exc: httpx.HTTPError) -> str:
    """The same text for the same failure, whichever port it was about."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"the controller answered {exc.response.status_code}"
    return type(exc).__name__


def _newest_revision(catalog: Catalog, chassis: str) -> int:
    """The newest store revision of ``chassis`` itself, of the ports bound to it, of their
    networks and of the routers on those networks (with the routers' other networks): what
    its ports' and its routers' status is read against. :data:`UNKNOWN_CHASSIS` when the
    chassis is not in the model (deleted: a report finds out, and registers it again)."""
    revisions = catalog.mod_revisions
    holder = catalog.holder("name", "chassis", "", chassis)
    if holder is None:
        return UNKNOWN_CHASSIS
    newest = revisions.get(("chassis", holder[1]), 0)
    networks: set[str] = set()
    for port in catalog.objects["ports"].values():
        if isinstance(port, Port) and port.chassis == chassis:
            networks.add(port.network)
            newest = max(newest, revisions.get(("ports", port.id), 0))
    reached = set(networks)
    for network in networks:
        for kind, obj_id in catalog.dependents("network", network):
            router = catalog.objects[kind].get(obj_id) if kind == "routers" else None
            if isinstance(router, Router):
                newest = max(newest, revisions.get(("routers", router.id), 0))
                reached.update(iface.network for iface in router.interfaces)
    return max([newest] + [revisions.get(("networks", n), 0) for n in reached])


def _port_of(ports: Mapping[str, Any], names: Mapping[str, Port], iface_id: str) -> Port | None:
    """The port a VIF names: by id, else by name."""
    found = ports.get(iface_id)
    if isinstance(found, Port):
        return found
    return names.get(iface_id)
