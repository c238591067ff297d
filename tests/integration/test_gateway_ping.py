"""tether programs two emulated switches with the ovs ASIC from its API: a host behind tor1
eth1 VLAN 100 pings a host behind tor2 eth1 VLAN 200 in the same network (real ICMP, VXLAN
between the switches), and stops reaching it when tor2's binding is removed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.integration.test_lab_ovs_asic import _delete_hosts, _prerequisites, ping
from tests.servers import ServeProcess
from tether.lab import EmulatedSwitch, add_host

pytestmark = [pytest.mark.anyio, pytest.mark.daemon]

UNDERLAY = "tl-ul-pytest"


@pytest.fixture
async def switches(tmp_path: Path) -> AsyncIterator[tuple[EmulatedSwitch, EmulatedSwitch]]:
    _prerequisites()
    dirs = tmp_path / "tor1", tmp_path / "tor2"
    try:
        async with (
            EmulatedSwitch(
                "tor1",
                dirs[0],
                tunnel_ip="192.0.2.21",
                ports=["eth1"],
                asic="ovs",
                underlay=UNDERLAY,
            ) as tor1,
            EmulatedSwitch(
                "tor2",
                dirs[1],
                tunnel_ip="192.0.2.22",
                ports=["eth1"],
                asic="ovs",
                underlay=UNDERLAY,
            ) as tor2,
        ):
            try:
                yield tor1, tor2
            finally:
                await _delete_hosts(dirs)
    finally:
        await _delete_hosts(dirs)


async def realized(http: httpx.AsyncClient, gateway: str, timeout: float = 30) -> None:
    revision = (await http.get("/v1/status")).json()["model_revision"]
    deadline = time.monotonic() + timeout
    while True:
        runtime = (await http.get(f"/v1/gateways/{gateway}")).json()["runtime"]
        if runtime and runtime["state"] == "realized" and runtime["desired_generation"] >= revision:
            return
        assert time.monotonic() < deadline, runtime
        await asyncio.sleep(0.05)


@pytest.mark.parametrize("mode", ["bind-last", "lock", "state-consistent"])
async def test_tether_connects_hosts_behind_two_switches(
    switches: tuple[EmulatedSwitch, EmulatedSwitch], tmp_path: Path, mode: str
) -> None:
    tor1, tor2 = switches
    server = ServeProcess(f"sqlite:{tmp_path / 'tether.db'}", tmp_path)
    server.start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            (
                await http.post(
                    "/v1/networks",
                    json={"name": "web", "vni": 5001, "subnets": [{"cidr": "10.0.1.0/24"}]},
                )
            ).raise_for_status()
            for switch, vlan in ((tor1, 100), (tor2, 200)):
                gateway = {
                    "name": switch.name,
                    "ovsdb": switch.address,
                    "tunnel_ip": switch.tunnel_ip,
                    "mode": mode,
                    "max_rows_per_txn": 2,
                }
                (await http.post("/v1/gateways", json=gateway)).raise_for_status()
                binding = {"port": "eth1", "vlan": vlan, "network": "web"}
                (
                    await http.post(f"/v1/gateways/{switch.name}/bindings", json=binding)
                ).raise_for_status()
            await add_host(
                "host1",
                tor1.directory,
                switch="tor1",
                port="eth1",
                address="10.0.1.10/24",
                vlan=100,
                mac="02:00:00:00:01:10",
            )
            await add_host(
                "host2",
                tor2.directory,
                switch="tor2",
                port="eth1",
                address="10.0.1.20/24",
                vlan=200,
                mac="02:00:00:00:01:20",
            )
            await realized(http, "tor1")
            await realized(http, "tor2")
            await tor1.settle()
            await tor2.settle()
            assert await ping("host1", "10.0.1.20"), (
                "the hosts reach each other through tether's rows"
            )
            (await http.delete("/v1/gateways/tor2/bindings/eth1/200")).raise_for_status()
            await realized(http, "tor2")
            await tor2.settle()
            assert tor2.programmed == {}
            assert not await ping("host1", "10.0.1.20", count=2), "no binding, no traffic"
    finally:
        server.kill()
