"""One hypervisor with real packets: an Open vSwitch in its own namespace, two VMs (network
namespaces on veths, plugged in by ``iface-id``), the compiled pipeline applied as a bundle
and the agent's OpenFlow channel serving DHCP. A VM gets its address from a real DHCP client,
the two VMs ping each other with ARP answered by the pipeline, and a spoofed source address
gets nowhere. (Issue 5: the agent's shell before its model sync.)"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemons import EtcdServer, free_port, require_ovs_lab
from tests.integration.test_hypervisors import _dhcp
from tests.servers import running_api
from tether.agent import (
    AgentSettings,
    DhcpServer,
    FlowApplier,
    HypervisorAgent,
    OpenFlowChannel,
    ensure_bridge,
)
from tether.lab.netns import add_namespace, add_veth, delete_namespace, ip
from tether.lab.ovs_daemons import OvsInstance
from tether.openflow import AgentView, LocalPort, NetworkView, RouterInterface, compile_flows
from tether.openflow.dhcp import DhcpLease
from tether.openflow.pipeline import cookie_of
from tether.store import open_store

pytestmark = pytest.mark.anyio

MACS = {1: "02:00:00:00:02:01", 2: "02:00:00:00:02:02"}
IPS = {1: "10.0.1.11", 2: "10.0.1.12"}
ROUTER_MAC = "02:aa:00:00:02:01"
SRC = Path(__file__).resolve().parents[2] / "src"


def _prerequisites() -> None:
    require_ovs_lab("udhcpc")


class Hypervisor:
    def __init__(self, ovs: OvsInstance, vms: dict[int, str]) -> None:
        self.ovs = ovs
        self.vms = vms


@pytest.fixture
async def hypervisor(tmp_path: Path) -> AsyncIterator[Hypervisor]:
    _prerequisites()
    tag = os.getpid() % 100_000
    namespace = f"tah{tag}"
    vms = {1: f"tav1x{tag}", 2: f"tav2x{tag}"}
    made: list[str] = []
    ovs = OvsInstance(tmp_path / "hv", namespace)
    try:
        for name in (namespace, *vms.values()):
            await add_namespace(name)
            made.append(name)
        await ovs.start()
        await ensure_bridge(
            ovs,
            "br-int",
            datapath="netdev",
            tunnel_port="vxlan0",
            tunnel_ofport=100,
            controller=f"punix:{ovs.rundir / 'br-int.tether'}",
        )
        for ofport, vm in vms.items():
            await add_veth(f"p{ofport}", "eth0", peer_netns=vm, netns=namespace)
            await ip("link", "set", f"p{ofport}", "up", netns=namespace)
            await ovs.vsctl(
                "add-port", "br-int", f"p{ofport}", "--", "set", "Interface", f"p{ofport}",
                f"ofport_request={ofport}", f"external_ids:iface-id=vm{ofport}",
            )  # fmt: skip
            await ip("link", "set", "eth0", "address", MACS[ofport], netns=vm)
            await ip("link", "set", "eth0", "up", netns=vm)
            await ip("link", "set", "lo", "up", netns=vm)
        yield Hypervisor(ovs, vms)
    finally:
        await ovs.stop()
        for name in made:
            await delete_namespace(name)


def _view() -> AgentView:
    web = NetworkView("web", 5001, 1, hosts={IPS[1]: MACS[1], IPS[2]: MACS[2]})
    return AgentView(
        tunnel_ofport=100,
        networks={"web": web},
        ports=tuple(LocalPort(f"vm{n}", "web", MACS[n], (IPS[n],), n, n) for n in (1, 2)),
        routers=(RouterInterface("r1", "web", "10.0.1.1", ROUTER_MAC, "10.0.1.0/24"),),
    )


def _lease(ofport: int) -> DhcpLease | None:
    if ofport not in MACS:
        return None
    return DhcpLease(
        MACS[ofport], IPS[ofport], "10.0.1.0/24", "10.0.1.1", ROUTER_MAC, ("192.0.2.53",), 600
    )


def _in(namespace: str, *argv: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )


def _ping(namespace: str, destination: str) -> subprocess.CompletedProcess[str]:
    """The lab's ICMP echo (``iputils`` is often missing): 0 when a reply came back."""
    argv = ("-m", "tether.lab.ping", "-c", "3", "-i", "0.2", "-W", "1", destination)
    return _in(namespace, sys.executable, *argv)


async def test_a_vm_gets_its_address_by_dhcp_and_pings_its_neighbour(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    ovs, vms = hypervisor.ovs, hypervisor.vms
    applier = FlowApplier(ovs, ovs.bridge_target("br-int"), tmp_path)
    flows = compile_flows(_view())
    assert await applier.apply(flows) == len(flows)
    assert await applier.apply(flows) == 0, "nothing changed, nothing sent"

    server: DhcpServer | None = None
    channel = OpenFlowChannel(
        ovs.rundir / "br-int.tether", lambda p: server and server.packet_in(p)
    )
    server = DhcpServer(channel, _lease)
    channel.start()
    try:
        await asyncio.wait_for(channel.connected.wait(), 10)
        told = await _dhcp(vms[2], tmp_path)
        assert (told["ip"], told["router"].strip(), told["lease"]) == (IPS[2], "10.0.1.1", "600")
        assert server.answered >= 2 and not channel.errors, "an OFFER and an ACK"

        await ip("addr", "add", f"{told['ip']}/24", "dev", "eth0", netns=vms[2])
        await ip("addr", "add", f"{IPS[1]}/24", "dev", "eth0", netns=vms[1])
        ping = await asyncio.to_thread(_ping, vms[1], IPS[2])
        assert ping.returncode == 0, ping.stdout + ping.stderr
        flows_text = await ovs.ofctl("-O", "OpenFlow13", "dump-flows", ovs.bridge_target("br-int"))
        responder = next(line for line in flows_text.splitlines() if f"arp_tpa={IPS[2]}" in line)
        assert "n_packets=0," not in responder, "vm1's ARP was answered on the hypervisor"

        # a VM that takes an address that is not its own gets nowhere
        await ip("addr", "flush", "dev", "eth0", netns=vms[1])
        await ip("neigh", "flush", "all", netns=vms[1])
        await ip("addr", "add", "10.0.1.99/24", "dev", "eth0", netns=vms[1])
        spoofed = await asyncio.to_thread(_ping, vms[1], IPS[2])
        assert spoofed.returncode != 0, "port security dropped it"
    finally:
        await channel.stop()


@pytest.mark.parametrize("backend", ["watch-api", "etcd"])
async def test_the_agent_binds_its_vifs_and_follows_the_model(
    hypervisor: Hypervisor, tmp_path: Path, backend: str, request: pytest.FixtureRequest
) -> None:
    """``tether agent`` against a real controller: it registers its chassis, binds the ports
    its VIFs name, serves DHCP from the model and drops a port's flows when it is deleted —
    following the model through the controller's watch API (embedded store) or etcd."""
    ovs, vms = hypervisor.ovs, hypervisor.vms
    store_url, agent_store = f"sqlite:{tmp_path / 'tether.db'}", None
    if backend == "etcd":
        etcd: EtcdServer = request.getfixturevalue("etcd_server")
        store_url = agent_store = etcd.url
        wiped = await open_store(etcd.url)
        await wiped.delete("", prefix=True)
        await wiped.close()
    with running_api(store_url) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await _web(http, 1, 2)
            router = {"name": "r1", "interfaces": [{"network": "web"}]}
            (await http.post("/v1/routers", json=router)).raise_for_status()
            settings = _settings(ovs, url, store=agent_store)
            agent = HypervisorAgent(settings, ovs)
            await agent.start()
            try:

                async def bound() -> bool:
                    ports = (await http.get("/v1/ports")).json()["items"]
                    return all(p["chassis"] == "hv1" for p in ports)

                await _eventually(bound, "the agent bound both ports to its chassis")
                assert (await http.get("/v1/chassis/hv1")).json()["tunnel_ip"] == "192.0.2.11"
                await _eventually(
                    lambda: _has_flows_for(agent, MACS[2]), "flows for both ports", sync=True
                )
                told = await _dhcp(vms[2], tmp_path)
                assert (told["ip"], told["router"].strip()) == (IPS[2], "10.0.1.1")
                await ip("addr", "add", f"{told['ip']}/24", "dev", "eth0", netns=vms[2])
                await ip("addr", "add", f"{IPS[1]}/24", "dev", "eth0", netns=vms[1])
                assert (await asyncio.to_thread(_ping, vms[1], IPS[2])).returncode == 0

                (await http.delete("/v1/ports/vm2")).raise_for_status()
                await _eventually(
                    lambda: not _has_flows_for(agent, MACS[2]), "vm2's flows gone", sync=True
                )
                await ip("neigh", "flush", "all", netns=vms[1])
                assert (await asyncio.to_thread(_ping, vms[1], IPS[2])).returncode != 0
            finally:
                await agent.stop()


async def test_port_status_follows_what_the_agent_applied(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    """A port says ``realized`` once its flows are on the bridge, and ``pending`` while a
    change to it waits for the agent; the chassis says ``realized``; once settled, nothing
    is written, synced or reported again."""
    async with _agent_on_api(hypervisor, tmp_path) as (http, agent):
        await _eventually(lambda: _both_realized(http), "both ports realized")
        assert _has_flows_for(agent, MACS[1]) and _has_flows_for(agent, MACS[2])
        chassis = (await http.get("/v1/chassis/hv1")).json()
        assert chassis["status"] == {"state": "realized", "message": ""}

        # nothing changes, so nothing is written, synced or reported
        async def settled() -> bool:
            before = (await http.get("/healthz")).json()["revision"]
            await asyncio.sleep(0.5)
            return bool((await http.get("/healthz")).json()["revision"] == before)

        await _eventually(settled, "the store settles")
        counts = (agent.state.syncs, agent.reporter.sent)
        await asyncio.sleep(1.0)
        assert (agent.state.syncs, agent.reporter.sent) == counts

        # changed, and not yet applied: pending until the agent's flows are in
        gate = asyncio.Event()
        apply = agent.applier.apply

        async def held(desired: frozenset[Any]) -> None:
            await gate.wait()
            await apply(desired)

        agent.applier.apply = held  # type: ignore[method-assign]
        patch = {"ips": ["10.0.1.21"]}
        (await http.patch("/v1/ports/vm1", json=patch)).raise_for_status()
        await asyncio.sleep(0.5)
        assert (await _port_status(http, "vm1")) == {
            "state": "pending",
            "message": "waiting for chassis hv1 to apply it",
        }
        agent.applier.apply = apply  # type: ignore[method-assign]
        gate.set()
        await _eventually(lambda: _both_realized(http), "vm1 realized once applied")


async def test_port_status_says_why_a_port_is_not_realized(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    """Unplugged: ``pending``, no interface; an interface Open vSwitch cannot attach:
    ``error`` with its reason, also in the status summary."""
    ovs = hypervisor.ovs
    async with _agent_on_api(hypervisor, tmp_path) as (http, agent):
        await _eventually(lambda: _both_realized(http), "both ports realized")

        await ovs.vsctl("del-port", "br-int", "p2")

        async def unplugged() -> bool:
            return (await _port_status(http, "vm2")) == {
                "state": "pending",
                "message": "no interface for it on chassis hv1",
            }

        await _eventually(unplugged, "vm2 pending once unplugged")
        assert not _has_flows_for(agent, MACS[2])

        port = {"network": "web", "name": "vm3", "mac": "02:00:00:00:02:03",
                "ips": ["10.0.1.13"], "chassis": "hv1"}  # fmt: skip
        (await http.post("/v1/ports", json=port)).raise_for_status()
        await ovs.vsctl(
            "add-port", "br-int", "tapgone", "--",
            "set", "Interface", "tapgone", "external_ids:iface-id=vm3",
        )  # fmt: skip

        async def broken() -> bool:
            found = await _port_status(http, "vm3")
            return found["state"] == "error" and "tapgone" in found["message"]

        await _eventually(broken, "vm3 in error with the reason")
        summary = (await http.get("/v1/status")).json()
        assert [e["name"] for e in summary["errors"]] == ["vm3"]
        assert (await _port_status(http, "vm1"))["state"] == "realized"

        # the switch is gone: so are the ports, even through syncs that change nothing
        await ovs.kill_vswitchd()

        async def down() -> bool:
            found = await _port_status(http, "vm1")
            return found["state"] == "error" and "lost the OpenFlow" in found["message"]

        await _eventually(down, "vm1 down with its switch")
        syncs = agent.state.syncs
        other = {"name": "other", "vni": 5999}
        (await http.post("/v1/networks", json=other)).raise_for_status()
        await _eventually(lambda: agent.state.syncs > syncs, "a sync during the outage")
        await asyncio.sleep(0.3)
        assert await down(), "a sync while the switch is gone must not say realized"
        await ovs.restart_vswitchd()

        async def back() -> bool:
            return (await _port_status(http, "vm1")) == {"state": "realized", "message": ""}

        await _eventually(back, "vm1 realized once its flows are back")


async def test_a_silent_or_stopped_agent_turns_its_ports_to_error(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    """The agent's heartbeat keeps its report standing and writes nothing; when it falls
    silent (cut off) its chassis and ports turn to ``error`` within the timeout, and at
    once when it stops; the bridge keeps forwarding on its flows all the while."""
    ovs = hypervisor.ovs
    async with _agent_on_api(hypervisor, tmp_path, agent_timeout=3) as (http, agent):
        await _eventually(lambda: _both_realized(http), "both ports realized")
        target = ovs.bridge_target("br-int")
        flows = await _tether_flows(ovs, target)
        assert flows

        async def settled() -> bool:
            before = (await http.get("/healthz")).json()["revision"]
            beats = agent.heartbeat.beats
            await asyncio.sleep(1.5)  # at least one heartbeat (every 1 s)
            after = (await http.get("/healthz")).json()["revision"]
            return bool(after == before and agent.heartbeat.beats > beats)

        await _eventually(settled, "heartbeats that write nothing")
        assert (await _port_status(http, "vm1"))["state"] == "realized"

        # cut off: the heartbeat stops, the agent and the switch go on
        beating = agent._tasks[-1]
        beating.cancel()

        async def silent() -> bool:
            chassis = (await http.get("/v1/chassis/hv1")).json()["status"]
            return bool(chassis["state"] == "error")

        await _eventually(silent, "hv1 in error after 3 s of silence", timeout=10)
        status = await _port_status(http, "vm1")
        assert status["state"] == "error" and "not heard from" in status["message"]
        assert await _tether_flows(ovs, target) == flows, "the switch keeps its flows"

        agent._tasks[-1] = asyncio.ensure_future(agent.heartbeat.run(agent._http))
        await _eventually(lambda: _both_realized(http), "realized again")

        await agent.stop()
        assert (await _port_status(http, "vm1"))["state"] == "error", "at once"
        assert await _tether_flows(ovs, target) == flows


@contextlib.asynccontextmanager
async def _agent_on_api(
    hypervisor: Hypervisor, tmp_path: Path, **api_options: Any
) -> AsyncIterator[tuple[httpx.AsyncClient, HypervisorAgent]]:
    """The API on a fresh store with network ``web`` (vm1, vm2) and agent hv1 started on
    this hypervisor; the agent is stopped after, unless the test stopped it."""
    ovs = hypervisor.ovs
    with running_api(f"sqlite:{tmp_path / 'tether.db'}", **api_options) as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await _web(http, 1, 2)
            agent = HypervisorAgent(_settings(ovs, url), ovs)
            await agent.start()
            try:
                yield http, agent
            finally:
                if not agent.stopped:
                    await agent.stop()


async def _port_status(http: httpx.AsyncClient, port: str) -> dict[str, str]:
    return dict((await http.get(f"/v1/ports/{port}")).json()["status"])


async def _both_realized(http: httpx.AsyncClient) -> bool:
    states = [(await _port_status(http, f"vm{n}"))["state"] for n in (1, 2)]
    return states == ["realized", "realized"]


async def _web(http: httpx.AsyncClient, *vms: int) -> None:
    """Network ``web`` and ports ``vmN`` (MACS[N], IPS[N]) for the given VMs."""
    network = {"name": "web", "vni": 5001, "subnets": [{"cidr": "10.0.1.0/24"}]}
    (await http.post("/v1/networks", json=network)).raise_for_status()
    for n in vms:
        port = {"network": "web", "name": f"vm{n}", "mac": MACS[n], "ips": [IPS[n]]}
        (await http.post("/v1/ports", json=port)).raise_for_status()


def _settings(ovs: OvsInstance, url: str, **options: Any) -> AgentSettings:
    """Agent ``hv1`` on this hypervisor's Open vSwitch."""
    return AgentSettings(
        chassis="hv1",
        tunnel_ip="192.0.2.11",
        server=url,
        ovsdb=f"unix:{ovs.db_socket}",
        datapath="netdev",
        **options,
    )


def _has_flows_for(agent: HypervisorAgent, mac: str) -> bool:
    installed = agent.applier.installed or frozenset()
    return any(dict(flow.match).get("dl_dst") == mac for flow in installed)


async def _eventually(check: Any, what: str, *, timeout: float = 20, sync: bool = False) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert asyncio.get_running_loop().time() < deadline, f"not within {timeout} s: {what}"
        await asyncio.sleep(0.1)


async def test_the_audit_repairs_flows_changed_behind_the_agents_back(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    """A tether flow deleted, a stale tether flow injected: both repaired within one audit
    interval; a foreign flow is left alone."""
    ovs = hypervisor.ovs
    target = ovs.bridge_target("br-int")
    with running_api(f"sqlite:{tmp_path / 'tether.db'}") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await _web(http, 1, 2)
            settings = _settings(ovs, url, audit_seconds=0.5)
            agent = HypervisorAgent(settings, ovs)
            await agent.start()
            try:
                await _eventually(lambda: _has_flows_for(agent, MACS[2]), "flows", sync=True)
                lookup = f"table=50,priority=100,metadata={5001:#x},dl_dst={MACS[2]}"
                await ovs.ofctl("-O", "OpenFlow13", "del-flows", "--strict", target, lookup)
                stale = "cookie=0x7e7e000000000000,table=0,priority=250,in_port=3,actions=drop"
                foreign = "cookie=0x1234,table=0,priority=260,in_port=4,actions=drop"
                for flow in (stale, foreign):
                    await ovs.ofctl("-O", "OpenFlow13", "add-flow", target, flow)

                async def repaired() -> bool:
                    dump = await ovs.ofctl("-O", "OpenFlow13", "dump-flows", target)
                    return (
                        f"dl_dst={MACS[2]}" in dump
                        and "priority=250" not in dump
                        and "priority=260" in dump
                    )

                await _eventually(repaired, "the audit repaired the bridge", timeout=10)
                # the switch is whole a moment before the audit has counted what it did
                await _eventually(
                    lambda: agent.state.repairs >= 2, "both repairs counted", timeout=2
                )
            finally:
                await agent.stop()


async def test_a_restarted_agent_installs_a_new_generation_and_cleans_up_dead_ones(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    ovs = hypervisor.ovs
    target = ovs.bridge_target("br-int")
    with running_api(f"sqlite:{tmp_path / 'tether.db'}") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await _web(http, 1)
            settings = _settings(ovs, url)
            generations = []
            for _ in range(2):  # the agent, then the agent restarted
                agent = HypervisorAgent(settings, ovs)
                await agent.start()
                try:
                    await _eventually(lambda a=agent: _has_flows_for(a, MACS[1]), "flows")
                    await _eventually(
                        lambda a=agent: _live(a, ovs), "generation recorded", sync=True
                    )
                    generations.append(agent.generation)
                    dump = await ovs.ofctl("-O", "OpenFlow13", "dump-flows", target)
                    cookies = set(re.findall(r"cookie=(0x[0-9a-f]+)", dump))
                    assert cookies == {hex(cookie_of(agent.generation))}, cookies
                finally:
                    await agent.stop()
            assert generations == [1, 2]

            dead = f"cookie={cookie_of(7):#x},table=0,priority=250,in_port=3,actions=drop"
            foreign = "cookie=0x1234,table=0,priority=260,in_port=4,actions=drop"
            for flow in (dead, foreign):
                await ovs.ofctl("-O", "OpenFlow13", "add-flow", target, flow)
            assert await HypervisorAgent(settings, ovs).cleanup() == 1
            dump = await ovs.ofctl("-O", "OpenFlow13", "dump-flows", target)
            assert "priority=250" not in dump and "priority=260" in dump
            assert f"dl_dst={MACS[1]}" in dump, "the live generation's flows stay"


async def _live(agent: HypervisorAgent, ovs: OvsInstance) -> bool:
    return await agent.live_generation() == agent.generation


async def test_the_agent_recovers_from_an_ovs_restart_and_reports_the_gap(
    hypervisor: Hypervisor, tmp_path: Path
) -> None:
    """ovs-vswitchd killed and started again comes back with empty tables: the agent sees
    its OpenFlow session drop and return, reinstalls its flows at once (not at the next
    audit), the VMs ping again, and the restart and its gap are in the agent's metrics. A
    deleted integration bridge is built again as well."""
    ovs = hypervisor.ovs
    target = ovs.bridge_target("br-int")
    metrics_port = free_port()
    with running_api(f"sqlite:{tmp_path / 'tether.db'}") as url:
        async with httpx.AsyncClient(base_url=url, timeout=30) as http:
            await _web(http, 1, 2)
            settings = _settings(
                ovs,
                url,
                audit_seconds=3600,  # recovery must not wait for an audit
                metrics_listen=f"127.0.0.1:{metrics_port}",
            )
            for n in (1, 2):
                await ip("addr", "add", f"{IPS[n]}/24", "dev", "eth0", netns=hypervisor.vms[n])
            agent = HypervisorAgent(settings, ovs)
            await agent.start()
            try:
                await _eventually(lambda: _has_flows_for(agent, MACS[2]), "flows", sync=True)
                done = await asyncio.to_thread(_ping, hypervisor.vms[1], IPS[2])
                assert done.returncode == 0, done.stdout
                flows_before = await _tether_flows(ovs, target)

                agent.recovered.clear()
                await ovs.restart_vswitchd(crash=True)
                await asyncio.wait_for(agent.recovered.wait(), 10)
                assert await _tether_flows(ovs, target) == flows_before
                state = agent.state
                assert state.ovs_restarts == 1
                assert 0 < state.ovs_recovery_seconds <= state.ovs_gap_seconds
                assert state.ovs_recovery_seconds < 1.0, "flows back within 1 s of the switch"
                done = await asyncio.to_thread(_ping, hypervisor.vms[1], IPS[2])
                assert done.returncode == 0, done.stdout

                scraped = httpx.get(f"http://127.0.0.1:{metrics_port}/metrics").text
                assert "tether_agent_ovs_restarts_total 1.0" in scraped, scraped
                assert f"tether_agent_flows {float(len(flows_before))}" in scraped
                assert re.search(r"^tether_agent_reports_total [1-9]", scraped, re.M), scraped

                agent.recovered.clear()
                await ovs.vsctl("del-br", "br-int")
                await asyncio.wait_for(agent.recovered.wait(), 10)
                await _eventually(
                    lambda: _tether_flows_equal(ovs, target, flows_before), "bridge rebuilt"
                )
                assert await agent.live_generation() == agent.generation, "recorded again"
            finally:
                await agent.stop()


async def _tether_flows(ovs: OvsInstance, target: str) -> set[str]:
    """The bridge's tether flows, without counters."""
    dump = await ovs.ofctl("-O", "OpenFlow13", "--no-stats", "dump-flows", target)
    return {line.strip() for line in dump.splitlines() if "cookie=0x7e7e" in line}


async def _tether_flows_equal(ovs: OvsInstance, target: str, flows: set[str]) -> bool:
    try:
        return await _tether_flows(ovs, target) == flows
    except Exception:
        return False
