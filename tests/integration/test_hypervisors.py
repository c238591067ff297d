"""The lab end to end: ``tether serve``, two hypervisors each running the agent, VMs plugged
in by ``iface-id``, and an emulated hardware switch (ovs ASIC) with a bare-metal host behind
it on a VLAN. Real packets: a VM gets its address by DHCP from its hypervisor; VMs ping each
other across hypervisors over VXLAN; a VM pings the bare-metal host through the switch; VMs
in two networks talk through the distributed router; another tenant's VM and a VM that takes
an address that is not its own reach nobody."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.test_lab_ovs_asic import _delete_hosts, _prerequisites
from tests.servers import ServeProcess
from tether.agent import AgentSettings, HypervisorAgent
from tether.lab import EmulatedSwitch, add_host
from tether.lab.hypervisor import LabHypervisor
from tether.lab.netns import ip

pytestmark = [pytest.mark.anyio, pytest.mark.daemon]

UNDERLAY = "tl-ul-pytest"
SRC = Path(__file__).resolve().parents[2] / "src"
HV = {"t-hv1": "192.0.2.11", "t-hv2": "192.0.2.12"}
"""Named apart from `tether demo`'s lab (hv1, vm1, ...), which may be running."""
VMS = {  # port name: (hypervisor, network, MAC, IP)
    "t-vm1": ("t-hv1", "web", "02:00:00:00:07:01", "10.0.1.11"),
    "t-vm2": ("t-hv2", "web", "02:00:00:00:07:02", "10.0.1.12"),
    "t-vm3": ("t-hv2", "db", "02:00:00:00:07:03", "10.0.2.13"),
    "t-vm4": ("t-hv1", "red", "02:00:00:00:07:04", "10.0.1.14"),  # another tenant, same subnet
}
BARE_METAL = ("t-bm1", "02:00:00:00:07:50", "10.0.1.50/24")
SCRIPT = """#!/bin/sh
[ "$1" = bound ] && env > "{out}"
exit 0
"""


def _in(namespace: str, *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", "netns", "exec", namespace, *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )


async def _ping(namespace: str, destination: str, count: int = 3) -> bool:
    argv = ("-m", "tether.lab.ping", "-c", str(count), "-i", "0.2", "-W", "1", destination)
    done = await asyncio.to_thread(_in, namespace, sys.executable, *argv)
    return done.returncode == 0


async def _eventually_ping(namespace: str, destination: str, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if await _ping(namespace, destination, count=2):
            return True
    return False


@pytest.fixture
async def lab(tmp_path: Path) -> AsyncIterator[dict[str, Any]]:
    _prerequisites()
    for name in ("tl-t-hv1", "tl-t-hv2", *VMS, BARE_METAL[0]):
        if Path(f"/run/netns/{name}").exists():
            pytest.fail(f"namespace {name} left over from an earlier run (ip netns del {name})")
    hypervisors = {
        name: LabHypervisor(name, tmp_path / name, tunnel_ip=ip_, underlay=UNDERLAY)
        for name, ip_ in HV.items()
    }
    started: list[LabHypervisor] = []
    switch_dir = tmp_path / "tor1"
    try:
        async with EmulatedSwitch(
            "tor1", switch_dir, tunnel_ip="192.0.2.21", ports=["eth1"], asic="ovs",
            underlay=UNDERLAY,
        ) as tor1:  # fmt: skip
            for hypervisor in hypervisors.values():
                await hypervisor.start()
                started.append(hypervisor)
            yield {"tor1": tor1, "hypervisors": hypervisors, "switch_dir": switch_dir}
    finally:
        for hypervisor in started:
            await hypervisor.stop()
        await _delete_hosts((switch_dir,))


async def _model(http: httpx.AsyncClient, tor1: EmulatedSwitch) -> None:
    for name, cidr, vni, tenant in (
        ("web", "10.0.1.0/24", 5001, "default"),
        ("db", "10.0.2.0/24", 5002, "default"),
        ("red", "10.0.1.0/24", 6001, "other"),
    ):
        network = {"name": name, "vni": vni, "subnets": [{"cidr": cidr}], "tenant": tenant}
        (await http.post("/v1/networks", json=network)).raise_for_status()
    for name, (_hv, network, mac, address) in VMS.items():
        port = {"network": network, "name": name, "mac": mac, "ips": [address]}
        if network == "red":
            port["tenant"] = "other"
        (await http.post("/v1/ports", json=port)).raise_for_status()
    router = {"name": "r1", "interfaces": [{"network": "web"}, {"network": "db"}]}
    (await http.post("/v1/routers", json=router)).raise_for_status()
    gateway = {"name": "tor1", "ovsdb": tor1.address, "tunnel_ip": tor1.tunnel_ip}
    (await http.post("/v1/gateways", json=gateway)).raise_for_status()
    binding = {"port": "eth1", "vlan": 100, "network": "web"}
    (await http.post("/v1/gateways/tor1/bindings", json=binding)).raise_for_status()


async def _start_agents(hypervisors: dict[str, LabHypervisor], url: str) -> list[HypervisorAgent]:
    agents = []
    for name, hypervisor in hypervisors.items():
        settings = AgentSettings(
            chassis=name,
            tunnel_ip=hypervisor.tunnel_ip,
            server=url,
            ovsdb=hypervisor.ovsdb,
            datapath="netdev",
        )
        agent = HypervisorAgent(settings, hypervisor.ovs)
        await agent.start()
        agents.append(agent)
    return agents


async def _dhcp(vm: str, tmp_path: Path) -> dict[str, str]:
    """Run udhcpc in the VM until its agent answers; what it was told."""
    out = tmp_path / f"{vm}.env"
    script = tmp_path / "script.sh"
    script.write_text(SCRIPT.format(out=out))
    script.chmod(0o755)
    deadline = time.monotonic() + 30
    while True:  # until the agent bound the port and installed its flows
        done = await asyncio.to_thread(
            _in, vm, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "3", "-T", "1",
            "-s", str(script),
        )  # fmt: skip
        if done.returncode == 0 or time.monotonic() > deadline:
            break
    assert done.returncode == 0, done.stderr
    return dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)


async def test_vms_reach_each_other_the_bare_metal_host_and_other_networks(
    lab: dict[str, Any], tmp_path: Path
) -> None:
    tor1: EmulatedSwitch = lab["tor1"]
    hypervisors: dict[str, LabHypervisor] = lab["hypervisors"]
    server = ServeProcess(f"sqlite:{tmp_path / 'tether.db'}", tmp_path)
    server.start()
    agents: list[HypervisorAgent] = []
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            await _model(http, tor1)
            agents += await _start_agents(hypervisors, server.url)
            for name, (hv, _network, mac, _address) in VMS.items():
                await hypervisors[hv].plug(name, iface_id=name, mac=mac)
            await add_host(
                BARE_METAL[0], lab["switch_dir"], switch="tor1", port="eth1",
                address=BARE_METAL[2], vlan=100, mac=BARE_METAL[1],
            )  # fmt: skip

            # vm2 asks its hypervisor for its address; the others are configured by hand
            told = await _dhcp("t-vm2", tmp_path)
            assert (told["ip"], told["router"].strip()) == ("10.0.1.12", "10.0.1.1")
            await ip("addr", "add", "10.0.1.12/24", "dev", "eth0", netns="t-vm2")
            await ip("route", "add", "default", "via", "10.0.1.1", netns="t-vm2")
            await ip("addr", "add", "10.0.1.11/24", "dev", "eth0", netns="t-vm1")
            await ip("route", "add", "default", "via", "10.0.1.1", netns="t-vm1")
            await ip("addr", "add", "10.0.1.14/24", "dev", "eth0", netns="t-vm4")
            await ip("addr", "add", "10.0.2.13/24", "dev", "eth0", netns="t-vm3")
            await ip("route", "add", "default", "via", "10.0.2.1", netns="t-vm3")

            assert await _eventually_ping("t-vm1", "10.0.1.12"), "VM to VM across hypervisors"
            assert await _eventually_ping("t-vm1", "10.0.1.50"), "VM to the bare-metal host"
            assert await _eventually_ping(BARE_METAL[0], "10.0.1.12"), "bare metal to a VM"
            assert await _eventually_ping("t-vm1", "10.0.2.13"), "routed to another network"
            assert not await _ping("t-vm1", "10.0.1.99", count=1), "nobody has that address"
            assert not await _ping("t-vm4", "10.0.1.11", count=2), "another tenant's network"
            assert not await _ping("t-vm4", "10.0.1.12", count=2), "... on either hypervisor"
            # vm1 takes an address that is not its own: dropped where it enters
            await ip("addr", "flush", "dev", "eth0", netns="t-vm1")
            await ip("neigh", "flush", "all", netns="t-vm1")
            await ip("addr", "add", "10.0.1.77/24", "dev", "eth0", netns="t-vm1")
            assert not await _ping("t-vm1", "10.0.1.12", count=2), "a spoofed source IP"
    finally:
        try:
            for agent in agents:
                await agent.stop()
        finally:
            server.kill()
