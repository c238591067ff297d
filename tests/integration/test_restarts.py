"""Restarts without loss (issue 6), on the lab: ``tether serve`` and two ``tether agent``
processes, two hypervisors, an emulated hardware switch (ovs ASIC) with a bare-metal host
behind it. Two pingers send every 100 ms — VM to VM across the hypervisors, VM to the
bare-metal host — through each fault:

* ``kill -9`` of an agent and its restart: 0 lost, the new generation replaces the old;
* a restart of ``tether serve``: 0 lost, the switch's database never loses a row;
* ``kill -9`` of ``tether serve`` in the middle of a ``lock``-mode update of the switch:
  0 lost, the switch's ASIC never holds the partial logical switch, and the update
  completes once ``tether serve`` is back;
* ``kill -9`` of ``ovs-vswitchd`` and its restart: connectivity comes back by itself within
  1 s of the daemon being back; the agent reports the gap;
* a flow with a dead generation's cookie is removed, a foreign flow stays, a deleted flow is
  back within one audit interval.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemons import free_port
from tests.integration.test_agent_hypervisor import _eventually
from tests.integration.test_hypervisors import (
    BARE_METAL,
    SRC,
    VMS,
    _eventually_ping,
    _model,
    lab,  # noqa: F401 - the fixture
)
from tests.servers import ServeProcess
from tether.lab import EmulatedSwitch, add_host
from tether.lab.hypervisor import INTEGRATION_BRIDGE, LabHypervisor
from tether.lab.netns import ip
from tether.openflow.pipeline import cookie_of
from tether.ovsdb import Client
from tether.vtep.ops import lock_name

pytestmark = [pytest.mark.anyio, pytest.mark.daemon]

AUDIT_SECONDS = 1.0
UPDATE_MACS = 400
"""Ports added at once in the lock-mode update (MACs the switch must learn)."""
ROWS_PER_TXN = 4
"""The switch's max_rows_per_txn during that update: it takes ~100 transactions, a window
the kill cannot miss."""
STOP_SECONDS = 3.0
"""A stopping ``tether serve`` must be gone within this, watch streams open or not."""
PENDING = "tether-pending"


@dataclass
class Pings:
    sent: int
    lost: list[int]
    replies: list[tuple[int, float, float]]
    """(sequence, sent at, received at), ``time.monotonic()``."""

    def first_reply_after(self, moment: float) -> float | None:
        later = [received for _seq, sent, received in self.replies if sent >= moment]
        return min(later) if later else None


class Pinger:
    """``tether.lab.ping --stream`` every 100 ms from one lab host to an address."""

    def __init__(self, host: str, destination: str) -> None:
        self.name = f"{host} -> {destination}"
        argv = [
            "ip", "netns", "exec", host, sys.executable, "-m", "tether.lab.ping",
            "--stream", "-c", "0", "-i", "0.1", "-W", "2", destination,
        ]  # fmt: skip
        self.process = subprocess.Popen(
            argv,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONPATH": str(SRC)},
        )

    def stop(self) -> Pings:
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=15)
        sent = re.search(r"(\d+) packets transmitted", out)
        lost = re.search(r"^lost: ([\d,]*)$", out, re.MULTILINE)
        assert sent and lost, f"{self.name}: {out[-500:]}"
        replies = [
            (int(m[1]), float(m[2]), float(m[3]))
            for m in re.finditer(r"reply seq=(\d+) sent=([\d.]+) received=([\d.]+)", out)
        ]
        return Pings(int(sent[1]), [int(s) for s in lost[1].split(",") if s], replies)


class PingAll:
    def __init__(self) -> None:
        self.pingers = [Pinger("t-vm1", "10.0.1.12"), Pinger("t-vm1", "10.0.1.50")]

    def stop(self) -> dict[str, Pings]:
        return {p.name: p.stop() for p in self.pingers}


def _no_loss(results: dict[str, Pings], fault: str) -> None:
    for name, pings in results.items():
        assert pings.sent >= 10, f"{fault}: {name} sent only {pings.sent}"
        assert not pings.lost, f"{fault}: {name} lost {len(pings.lost)}/{pings.sent}"


class AgentProcess:
    """``tether agent`` for one lab hypervisor, as a process to ``kill -9``."""

    def __init__(self, hypervisor: LabHypervisor, url: str, workdir: Path) -> None:
        self.hypervisor = hypervisor
        self.url = url
        self.log = workdir / f"agent-{hypervisor.name}.log"
        self.metrics_port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        hv = self.hypervisor
        argv = [
            sys.executable, "-m", "tether.cli.main", "agent", "--chassis", hv.name,
            "--tunnel-ip", hv.tunnel_ip, "--server", self.url, "--ovsdb", hv.ovsdb,
            "--datapath", "netdev", "--audit-interval", str(AUDIT_SECONDS),
            "--metrics-listen", f"127.0.0.1:{self.metrics_port}",
        ]  # fmt: skip
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                argv,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONPATH": str(SRC)},
            )

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.kill()

    def metrics(self) -> dict[str, float]:
        try:
            text = httpx.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=2).text
        except httpx.HTTPError:
            return {}
        found = re.findall(r"^(tether_agent_\w+) ([\d.e+-]+)$", text, re.MULTILINE)
        return {name: float(value) for name, value in found}

    async def ready(self, *, after_generation: int = 0, timeout: float = 30) -> int:
        """Until this agent's first apply is in and recorded; its generation."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None and self.process.poll() is None, self.log.read_text()
            found = await asyncio.to_thread(self.metrics)
            generation = int(found.get("tether_agent_generation", 0))
            if (
                found.get("tether_agent_syncs_total", 0) >= 1
                and generation > after_generation
                and await _live_generation(self.hypervisor) == generation
            ):
                return generation
            await asyncio.sleep(0.1)
        raise AssertionError(f"agent {self.hypervisor.name} not ready: {self.log}")


async def _live_generation(hypervisor: LabHypervisor) -> int:
    text = await hypervisor.ovs.vsctl(
        "--if-exists", "get", "Bridge", INTEGRATION_BRIDGE, "external_ids:tether-generation"
    )
    value = text.strip().strip('"')
    return int(value) if value.isdigit() else 0


async def _cookies(hypervisor: LabHypervisor) -> dict[str, int]:
    """Cookie -> how many flows of ``br-int`` carry it."""
    target = hypervisor.ovs.bridge_target(INTEGRATION_BRIDGE)
    dump = await hypervisor.ovs.ofctl("-O", "OpenFlow13", "dump-flows", target)
    counts: dict[str, int] = {}
    for cookie in re.findall(r"cookie=(0x[0-9a-f]+)", dump):
        counts[cookie] = counts.get(cookie, 0) + 1
    return counts


async def _flows_but_cookies(hypervisor: LabHypervisor) -> set[str]:
    target = hypervisor.ovs.bridge_target(INTEGRATION_BRIDGE)
    dump = await hypervisor.ovs.ofctl("-O", "OpenFlow13", "--no-stats", "dump-flows", target)
    return {re.sub(r"cookie=0x[0-9a-f]+,? ?", "", line.strip()) for line in dump.splitlines()}


class SwitchWatch:
    """A monitor on the switch's ``hardware_vtep`` database: rows deleted, pending marks."""

    def __init__(self, address: str) -> None:
        self.client = Client(address)
        self.deleted: list[tuple[str, str]] = []
        self.written: list[tuple[str, str]] = []
        """Every change: (table, kind)."""
        self.on_pending: Any = None
        self.monitor: Any = None

    async def start(self) -> None:
        await self.client.connect(timeout=10)
        tables = {t: None for t in ("Logical_Switch", "Ucast_Macs_Remote", "Physical_Locator")}
        self.monitor = await self.client.monitor_cond_since(
            "hardware_vtep", tables, on_update=self._changed
        )

    def _changed(self, changes: list[Any]) -> None:
        for change in changes:
            self.written.append((change.table, change.kind))
            if change.new is None:
                self.deleted.append((change.table, str(change.uuid)))
            elif change.table == "Logical_Switch" and self.pending() and self.on_pending:
                self.on_pending()

    def pending(self) -> bool:
        if self.monitor is None:
            return False
        for row in self.monitor.rows("Logical_Switch").values():
            other = row.get("other_config")
            if isinstance(other, dict) and PENDING in other:
                return True
        return False

    def remote_macs(self) -> int:
        assert self.monitor is not None
        return len(self.monitor.rows("Ucast_Macs_Remote"))

    async def close(self) -> None:
        await self.client.close()


async def _converged_without_writing(http: httpx.AsyncClient) -> bool:
    """The new serve's VTEP agent is connected and holds the switch as realized, without a
    transaction (a fresh agent's count starts at 0; the old one had written the switch)."""
    try:
        gateway = (await http.get("/v1/gateways/tor1")).raise_for_status().json()
    except httpx.HTTPError:
        return False
    runtime = gateway.get("runtime") or {}
    return bool(
        runtime.get("connection") == "connected"
        and runtime.get("desired_generation")
        and runtime.get("realized_generation") == runtime.get("desired_generation")
        and runtime.get("transactions") == 0
    )


async def _streams(fabric: Fabric) -> dict[str, float]:
    """Each agent's count of model streams that caught up."""
    counts = {}
    for name, agent in fabric.agents.items():
        found = await asyncio.to_thread(agent.metrics)
        counts[name] = found.get("tether_agent_model_streams_total", 0.0)
    return counts


@dataclass
class Fabric:
    http: httpx.AsyncClient
    server: ServeProcess
    agents: dict[str, AgentProcess]
    watch: SwitchWatch
    tor1: EmulatedSwitch
    hv1: LabHypervisor
    web: str
    """The network's id: its logical switch's name on the switch."""


async def test_restarts_lose_no_packets(lab: dict[str, Any], tmp_path: Path) -> None:  # noqa: F811
    tor1: EmulatedSwitch = lab["tor1"]
    hypervisors: dict[str, LabHypervisor] = lab["hypervisors"]
    server = ServeProcess(f"sqlite:{tmp_path / 'tether.db'}", tmp_path)
    server.start()
    agents = {name: AgentProcess(hv, server.url, tmp_path) for name, hv in hypervisors.items()}
    watch = SwitchWatch(tor1.address)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await _model(http, tor1)
            web = (await http.get("/v1/networks/web")).raise_for_status().json()["id"]
            for agent in agents.values():
                agent.start()
            for agent in agents.values():
                await agent.ready()
            for name in ("t-vm1", "t-vm2"):
                hv, _network, mac, address = VMS[name]
                await hypervisors[hv].plug(name, iface_id=name, mac=mac)
                await ip("addr", "add", f"{address}/24", "dev", "eth0", netns=name)
            await add_host(
                BARE_METAL[0], lab["switch_dir"], switch="tor1", port="eth1",
                address=BARE_METAL[2], vlan=100, mac=BARE_METAL[1],
            )  # fmt: skip
            assert await _eventually_ping("t-vm1", "10.0.1.12"), "VM to VM"
            assert await _eventually_ping("t-vm1", "10.0.1.50"), "VM to the bare-metal host"
            await watch.start()
            fabric = Fabric(http, server, agents, watch, tor1, hypervisors["t-hv1"], web)
            await _agent_killed(fabric)
            await _serve_restarted(fabric)
            await _serve_killed_mid_lock_update(fabric)
            await _ovs_restarted(fabric)
            await _flows_changed_behind_the_agents_back(fabric)
    finally:
        try:
            await watch.close()
        finally:
            for agent in agents.values():
                agent.stop()
            server.kill()


async def _agent_killed(fabric: Fabric) -> None:
    hv1, agent = fabric.hv1, fabric.agents["t-hv1"]
    pings = PingAll()
    await asyncio.sleep(0.5)
    old = await _live_generation(hv1)
    before = await _flows_but_cookies(hv1)
    agent.kill()
    await asyncio.sleep(0.5)
    agent.start()
    new = await agent.ready(after_generation=old)
    await asyncio.sleep(1.0)
    _no_loss(pings.stop(), "agent kill -9")
    assert new == old + 1
    assert set(await _cookies(hv1)) == {hex(cookie_of(new))}, "the old generation is gone"
    assert await _flows_but_cookies(hv1) == before, "the same flows, under the new cookie"


async def _serve_restarted(fabric: Fabric) -> None:
    pings = PingAll()
    await asyncio.sleep(0.5)
    written = len(fabric.watch.written)
    streams = await _streams(fabric)
    stopping = time.monotonic()
    fabric.server.kill(signal.SIGTERM)
    stopped = time.monotonic() - stopping
    assert stopped < STOP_SECONDS, f"tether serve took {stopped:.1f} s to stop"
    fabric.server.start()
    await _eventually(
        lambda: _converged_without_writing(fabric.http), "the new serve's VTEP agent converged"
    )

    async def resumed() -> bool:
        now = await _streams(fabric)
        return all(now[name] > streams[name] for name in streams)

    await _eventually(resumed, "the agents resumed their model streams")
    await asyncio.sleep(1.0)
    _no_loss(pings.stop(), "serve restart")
    deleted = fabric.watch.deleted
    assert not deleted, f"serve's restart deleted rows the switch needs: {deleted}"
    rewritten = fabric.watch.written[written:]
    assert not rewritten, f"the restarted serve rewrote rows it had written: {rewritten}"


async def _serve_killed_mid_lock_update(fabric: Fabric) -> None:
    """The kill comes as soon as the switch's database shows the update's mark: the first
    of its ~50 transactions is in, the others are not."""
    http, watch, tor1, web = fabric.http, fabric.watch, fabric.tor1, fabric.web
    update = {"mode": "lock", "max_rows_per_txn": ROWS_PER_TXN}
    (await http.patch("/v1/gateways/tor1", json=update)).raise_for_status()
    await tor1.settle()
    before = watch.remote_macs()
    complete = tor1.programmed[web]
    pings = PingAll()
    await asyncio.sleep(0.5)
    killed = asyncio.Event()

    def kill_serve() -> None:
        if not killed.is_set():
            fabric.server.kill()
            killed.set()

    watch.on_pending = kill_serve
    items = [
        {
            "kind": "port",
            "spec": {
                "network": "web",
                "name": f"t-bulk{n}",
                "mac": f"02:00:00:10:{n // 256:02x}:{n % 256:02x}",
                "ips": [],
                "chassis": "t-hv2",
            },
        }
        for n in range(UPDATE_MACS)
    ]
    try:
        (await http.post("/v1/bulk", json={"items": items})).raise_for_status()
    except httpx.TransportError:
        assert killed.is_set()  # killed before it answered: the write was already durable
    await asyncio.wait_for(killed.wait(), 30)
    watch.on_pending = None
    await asyncio.sleep(1.5)  # the switch has its locks back: it must not apply the part
    partial = watch.remote_macs()
    assert before < partial < before + UPDATE_MACS, (before, partial)
    assert watch.pending(), "the partial update is marked in the switch's database"
    assert tor1.programmed[web] == complete, "the ASIC kept its last complete state"
    assert tor1.agent.client.holds_lock(lock_name(5001)), "the switch has its lock back"
    decision = tor1.agent.last_decision
    assert decision is not None and "tether-pending" in decision.held_back.get(web, ""), (
        "the mark, not a missing lock, holds the logical switch"
    )

    fabric.server.start()
    await _eventually(lambda: watch.remote_macs() == before + UPDATE_MACS, "the update completes")
    await _eventually(lambda: not watch.pending(), "the mark is cleared")
    whole = len(complete.remote_macs) + UPDATE_MACS
    await _eventually(
        lambda: len(tor1.programmed[web].remote_macs) == whole, "the ASIC has the whole update"
    )
    await asyncio.sleep(0.5)
    _no_loss(pings.stop(), "serve kill -9 mid lock update")
    sizes = {len(h.state.remote_macs) for h in tor1.history if h.switch == web and h.state}
    partial_sizes = {n for n in sizes if len(complete.remote_macs) < n < whole}
    assert not partial_sizes, f"the ASIC saw a partial logical switch: {sorted(sizes)}"


async def _ovs_restarted(fabric: Fabric) -> None:
    pings = PingAll()
    await asyncio.sleep(0.5)
    back = await fabric.hv1.restart_vswitchd(crash=True)
    await asyncio.sleep(3.0)
    for name, result in pings.stop().items():
        first = result.first_reply_after(back)
        assert first is not None, f"ovs-vswitchd restart: {name} never came back"
        print(f"ovs-vswitchd restart: {name} answered {first - back:.3f} s after the daemon")
        assert first - back <= 1.0, f"{name}: {first - back:.2f} s after ovs-vswitchd was back"
    found = await asyncio.to_thread(fabric.agents["t-hv1"].metrics)
    assert found["tether_agent_ovs_restarts_total"] == 1, found
    assert 0 < found["tether_agent_ovs_gap_seconds"] < 10, found
    assert found["tether_agent_ovs_recovery_seconds"] <= 1.0, found
    print(f"agent's report: gap {found['tether_agent_ovs_gap_seconds']:.3f} s")


async def _flows_changed_behind_the_agents_back(fabric: Fabric) -> None:
    hv1 = fabric.hv1
    target = hv1.ovs.bridge_target(INTEGRATION_BRIDGE)
    live = await _live_generation(hv1)
    dead = f"cookie={cookie_of(live + 7):#x},table=0,priority=250,in_port=999,actions=drop"
    foreign = "cookie=0x1234,table=0,priority=260,in_port=998,actions=drop"
    lookup = f"table=50,dl_dst={VMS['t-vm2'][2]}"
    for flow in (dead, foreign):
        await hv1.ovs.ofctl("-O", "OpenFlow13", "add-flow", target, flow)
    assert "actions=" in await hv1.ovs.ofctl("-O", "OpenFlow13", "dump-flows", target, lookup)
    await hv1.ovs.ofctl("-O", "OpenFlow13", "del-flows", target, lookup)
    deleted_at = time.monotonic()

    async def repaired() -> bool:
        dump = await hv1.ovs.ofctl("-O", "OpenFlow13", "dump-flows", target)
        back = await hv1.ovs.ofctl("-O", "OpenFlow13", "dump-flows", target, lookup)
        return "priority=250" not in dump and "actions=" in back

    await _eventually(repaired, "stale flow removed, deleted flow restored", timeout=10)
    took = time.monotonic() - deleted_at
    assert took <= AUDIT_SECONDS + 1.0, f"repaired {took:.2f} s after the deletion"
    dump = await hv1.ovs.ofctl("-O", "OpenFlow13", "dump-flows", target)
    assert "priority=260" in dump, "the foreign flow stays"
    assert await _eventually_ping("t-vm1", "10.0.1.12", timeout=5)
