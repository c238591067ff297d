"""The ovs ASIC forwards real frames: hosts ping each other through two emulated switches.

Two emulated hardware VTEPs, tor1 (tunnel IP 192.0.2.21) and tor2 (192.0.2.22), run the ovs
ASIC: each an ``ovs-vswitchd`` in its own namespace, joined by a private underlay namespace.
The test plays the controller, writing ``hardware_vtep`` rows with tether's OVSDB client into
each switch's database, plugs host namespaces into front-panel ports (with the Python API
and with ``tether lab host``) and pings with real ICMP (iputils' ``ping`` when installed,
``python -m tether.lab.ping`` otherwise). Every namespace and process is removed at
teardown, by the names and PIDs the test created; the underlay is asserted gone.
Under ``CI=true`` a missing daemon, ``ip`` or root fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.daemons import require_binary
from tests.integration.test_lab_vtep import Controller, controller_for, lab_cli
from tether.lab import (
    EmulatedSwitch,
    LearnedMac,
    add_host,
    delete_host,
    front_panel_link,
    read_history,
    switch_namespace,
)
from tether.lab.netns import NETNS_DIR
from tether.ovsdb import ops

pytestmark = [pytest.mark.anyio, pytest.mark.daemon]

UNDERLAY = "tl-ul-pytest"
TOR1_IP, TOR2_IP = "192.0.2.21", "192.0.2.22"
MAC1, MAC2, MAC3 = "02:00:00:00:01:10", "02:00:00:00:01:20", "02:00:00:00:01:30"


def _prerequisites() -> None:
    for name in ("ovsdb-server", "ovsdb-tool", "ovs-vswitchd", "ovs-vsctl", "ovs-ofctl"):
        require_binary(name)
    require_binary("ovs-appctl")
    require_binary("ip")
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the ovs ASIC tests need root under CI")
        pytest.skip("the ovs ASIC needs root")
    mine = ["tl-tor1", "tl-tor2", UNDERLAY, "host1", "host2", "host3"]
    if left := [name for name in mine if (NETNS_DIR / name).exists()]:
        pytest.fail(f"namespaces left over from an earlier run: {left} (ip netns del ...)")


@dataclass
class Fabric:
    tor1: EmulatedSwitch
    tor2: EmulatedSwitch
    ctl1: Controller
    ctl2: Controller
    web1: str
    web2: str
    """The ``web`` logical switch's uuid in each switch's database."""


def switch(name: str, directory: Path, tunnel_ip: str, *, mac_age: int = 300) -> EmulatedSwitch:
    return EmulatedSwitch(
        name, directory, tunnel_ip=tunnel_ip, ports=["eth1", "eth2"], asic="ovs",
        underlay=UNDERLAY, mac_age=mac_age,
    )  # fmt: skip


async def logical_switch(ctl: Controller, name: str, vni: int, peer_ip: str) -> str:
    """``name`` with tunnel key ``vni`` flooding to ``peer_ip``, not bound yet."""
    ls = await ctl.create_switch(name, vni)
    await ctl.set_flood(ls, peer_ip)
    return ls


@pytest.fixture
async def fabric(tmp_path: Path) -> AsyncIterator[Fabric]:
    _prerequisites()
    hosts = tmp_path / "tor1", tmp_path / "tor2"
    try:
        async with (
            switch("tor1", hosts[0], TOR1_IP) as tor1,
            switch("tor2", hosts[1], TOR2_IP) as tor2,
        ):
            ctl1, ctl2 = await controller_for(tor1.address), await controller_for(tor2.address)
            try:
                web1 = await logical_switch(ctl1, "web", 5001, TOR2_IP)
                web2 = await logical_switch(ctl2, "web", 5001, TOR1_IP)
                await ctl1.bind("eth1", 100, web1)
                await ctl2.bind("eth1", 200, web2)
                yield Fabric(tor1, tor2, ctl1, ctl2, web1, web2)
            finally:
                await _delete_hosts(hosts)
                await ctl1.client.close()
                await ctl2.client.close()
    finally:
        await _delete_hosts(hosts)
    assert not (NETNS_DIR / UNDERLAY).exists(), "the last switch out deletes the underlay"
    assert not (NETNS_DIR / "tl-tor1").exists() and not (NETNS_DIR / "tl-tor2").exists()


async def _delete_hosts(directories: tuple[Path, ...]) -> None:
    for directory in directories:
        for record in sorted((directory / "hosts").glob("*.json")):
            await delete_host(record.stem, directory)


def ping_argv(host: str, destination: str, count: int) -> list[str]:
    tool = ["ping"] if shutil.which("ping") else [sys.executable, "-m", "tether.lab.ping"]
    options = ["-c", str(count), "-W", "1", "-i", "0.2"]
    return ["ip", "netns", "exec", host, *tool, *options, destination]


async def ping(host: str, destination: str, *, count: int = 3) -> bool:
    """Whether ``host`` got an answer from ``destination`` (off the event loop: the switch
    agents run on it)."""
    done = await asyncio.to_thread(
        subprocess.run, ping_argv(host, destination, count), capture_output=True, timeout=30
    )
    return done.returncode == 0


async def local_macs(ctl: Controller) -> set[tuple[str, str, str]]:
    """(MAC, logical switch uuid, locator IP) of every ``Ucast_Macs_Local`` row."""
    macs, locators = await ctl.transact(
        ops.select("Ucast_Macs_Local", [], ["MAC", "logical_switch", "locator"]),
        ops.select("Physical_Locator", [], ["_uuid", "dst_ip"]),
    )
    ip_of = {row["_uuid"][1]: row["dst_ip"] for row in locators["rows"]}
    return {
        (row["MAC"], row["logical_switch"][1], ip_of[row["locator"][1]]) for row in macs["rows"]
    }


async def eventually_macs(
    ctl: Controller, wanted: set[tuple[str, str, str]], *, timeout: float = 10.0
) -> None:
    deadline = time.monotonic() + timeout
    while (got := await local_macs(ctl)) != wanted:
        assert time.monotonic() < deadline, f"Ucast_Macs_Local holds {got}, not {wanted}"
        await asyncio.sleep(0.05)


async def test_hosts_on_two_vlans_ping_over_vxlan_until_unbound(fabric: Fabric) -> None:
    tor1, tor2 = fabric.tor1, fabric.tor2
    await add_host("host1", tor1.directory, switch="tor1", port="eth1", address="10.0.1.10/24",
                   vlan=100, mac=MAC1)  # fmt: skip
    await _cli_host("host2", tor2.directory, "tor2", "eth1", "10.0.1.20/24", "200", MAC2)
    await tor1.settle()
    await tor2.settle()
    assert await ping("host1", "10.0.1.20"), "real ICMP through two OVS instances and VXLAN"
    await eventually_macs(fabric.ctl1, {(MAC1, fabric.web1, TOR1_IP)})
    await eventually_macs(fabric.ctl2, {(MAC2, fabric.web2, TOR2_IP)})
    assert LearnedMac(5001, MAC1) in tor1.learned and LearnedMac(5001, MAC2) in tor2.learned
    assert [entry.state is not None for entry in read_history(tor1.directory)] == [True]

    await fabric.ctl2.unbind("eth1", 200)
    await tor2.settle()
    assert tor2.programmed == {}
    assert not await ping("host1", "10.0.1.20", count=2), "unbinding must stop the traffic"
    await eventually_macs(fabric.ctl2, set())  # its learned MACs went with the binding
    assert LearnedMac(5001, MAC2) not in tor2.learned

    await _cli("host-del", "host2", "--ovsdb-dir", str(tor2.directory))
    assert not (NETNS_DIR / "host2").exists()
    link = front_panel_link("tor2", "eth1")
    shown = subprocess.run(["ip", "link", "show", link], check=False, capture_output=True)
    assert shown.returncode == 0, "the port's veth end is back for the next host"


async def test_a_host_in_another_vni_reaches_nobody(fabric: Fabric) -> None:
    tor1, tor2 = fabric.tor1, fabric.tor2
    await add_host("host1", tor1.directory, switch="tor1", port="eth1", address="10.0.1.10/24",
                   vlan=100, mac=MAC1)  # fmt: skip
    await add_host("host2", tor2.directory, switch="tor2", port="eth1", address="10.0.1.20/24",
                   vlan=200, mac=MAC2)  # fmt: skip
    await add_host("host3", tor2.directory, switch="tor2", port="eth2", address="10.0.1.30/24",
                   vlan=300, mac=MAC3)  # fmt: skip
    db = await logical_switch(fabric.ctl2, "db", 5002, TOR1_IP)
    await fabric.ctl2.bind("eth2", 300, db)
    await tor2.settle()
    assert await ping("host1", "10.0.1.20")
    assert not await ping("host3", "10.0.1.10", count=1), "VNI 5002 is not bound on tor1"
    assert not await ping("host3", "10.0.1.20", count=1), "same switch, other logical switch"
    await eventually_macs(fabric.ctl2, {(MAC2, fabric.web2, TOR2_IP), (MAC3, db, TOR2_IP)})


async def test_a_remote_mac_is_tunnelled_without_flooding(fabric: Fabric) -> None:
    tor1, tor2 = fabric.tor1, fabric.tor2
    await add_host("host1", tor1.directory, switch="tor1", port="eth1", address="10.0.1.10/24",
                   vlan=100, mac=MAC1)  # fmt: skip
    await add_host("host2", tor2.directory, switch="tor2", port="eth1", address="10.0.1.20/24",
                   vlan=200, mac=MAC2)  # fmt: skip
    where = [ops.condition("logical_switch", "==", ops.uuid(fabric.web1))]
    await fabric.ctl1.transact(ops.delete("Mcast_Macs_Remote", where))  # tor1 floods nowhere
    await tor1.settle()
    assert tor1.programmed["web"].flood_locators == frozenset()
    assert not await ping("host1", "10.0.1.20", count=1), "host1's ARP cannot leave tor1"
    await fabric.ctl1.add_mac(fabric.web1, MAC2, TOR2_IP)
    await tor1.settle()
    neighbour = ["ip", "-n", "host1", "neigh", "replace", "10.0.1.20", "lladdr", MAC2]
    await asyncio.to_thread(subprocess.run, [*neighbour, "dev", "eth0"], check=True)
    assert await ping("host1", "10.0.1.20"), "unicast to a remote MAC goes to its locator"
    assert tor1.lookup(port="eth1", vlan=100, mac=MAC2).locators == (TOR2_IP,)


async def test_an_aged_out_mac_leaves_ucast_macs_local(tmp_path: Path) -> None:
    _prerequisites()
    directory = tmp_path / "tor1"
    async with switch("tor1", directory, TOR1_IP, mac_age=1) as tor1:
        ctl = await controller_for(tor1.address)
        try:
            web = await logical_switch(ctl, "web", 5001, TOR2_IP)
            await ctl.bind("eth1", 100, web)
            await add_host("host1", directory, switch="tor1", port="eth1",
                           address="10.0.1.10/24", vlan=100, mac=MAC1)  # fmt: skip
            quiet = "echo 1 > /proc/sys/net/ipv6/conf/all/disable_ipv6"  # no more IPv6 chatter
            await asyncio.to_thread(
                subprocess.run, ["ip", "netns", "exec", "host1", "sh", "-c", quiet], check=True
            )
            await tor1.settle()
            # ARP requests keep coming while we look (a loaded machine may take longer than
            # the one-second ageing to notice a single burst)
            chatter = asyncio.ensure_future(ping("host1", "10.0.1.99", count=8))
            await eventually_macs(ctl, {(MAC1, web, TOR1_IP)})
            assert not await chatter
            await eventually_macs(ctl, set(), timeout=15)  # host1 fell silent: aged out
            assert tor1.learned == frozenset()
        finally:
            await _delete_hosts((directory,))
            await ctl.client.close()


async def _cli(*args: str) -> str:
    done = await asyncio.to_thread(
        subprocess.run, [*lab_cli(), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def _cli_host(
    name: str, directory: Path, switch_name: str, port: str, address: str, vlan: str, mac: str
) -> None:
    out = await _cli(
        "host", name, "--switch", switch_name, "--ovsdb-dir", str(directory), "--port", port,
        "--vlan", vlan, "--ip", address, "--mac", mac,
    )  # fmt: skip
    assert out.startswith(f"host {name}: ")


async def _start_vtep(directory: Path, output: Path) -> subprocess.Popen[bytes]:
    """``tether lab vtep tor1 --asic ovs``, once it says it is ready."""
    args = ["vtep", "tor1", "--ovsdb-dir", str(directory), "--tunnel-ip", TOR1_IP]
    args += ["--ports", "eth1", "--asic", "ovs", "--underlay", UNDERLAY]
    with output.open("wb") as sink:
        process = subprocess.Popen([*lab_cli(), *args], stdout=sink, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while "ovs ASIC in namespace" not in output.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            pytest.fail(f"tether lab vtep --asic ovs not ready: {output.read_text()}")
        await asyncio.sleep(0.05)
    return process


def _daemon_pids(directory: Path) -> list[int]:
    pidfiles = ("ovs/ovsdb-server.pid", "ovs/ovs-vswitchd.pid", "ovsdb-server.pid")
    return [int((directory / pidfile).read_text()) for pidfile in pidfiles]


def _running(pid: int) -> bool:
    """Alive and not a zombie (the killed lab's children are nobody's to reap here)."""
    try:
        return bool(Path(f"/proc/{pid}/cmdline").read_bytes())
    except OSError:
        return False


async def test_the_command_runs_the_ovs_asic_until_sigterm(tmp_path: Path) -> None:
    _prerequisites()
    directory, output = tmp_path / "tor1", tmp_path / "vtep.out"
    process = await _start_vtep(directory, output)
    try:
        assert "tl-tor1" in output.read_text() and "tor1-eth1" in output.read_text()
        assert (NETNS_DIR / switch_namespace("tor1")).exists()
        pids = _daemon_pids(directory)
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 30) == 0
        assert not (NETNS_DIR / "tl-tor1").exists() and not (NETNS_DIR / UNDERLAY).exists()
        assert not any(_running(pid) for pid in pids)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


async def test_a_lab_killed_with_sigkill_leaves_nothing_behind(tmp_path: Path) -> None:
    _prerequisites()
    directory = tmp_path / "tor1"
    process = await _start_vtep(directory, tmp_path / "vtep.out")
    pids = _daemon_pids(directory)
    process.kill()
    process.wait()
    deadline = time.monotonic() + 15

    def link_left() -> bool:
        shown = subprocess.run(
            ["ip", "link", "show", "tor1-eth1"], check=False, capture_output=True
        )
        return shown.returncode == 0

    # the kernel tears a deleted namespace's devices down asynchronously: the veth peer in
    # the root namespace goes a moment after the namespace itself
    while (NETNS_DIR / "tl-tor1").exists() or (NETNS_DIR / UNDERLAY).exists() or link_left():
        assert time.monotonic() < deadline, "the reaper did not clean up after SIGKILL"
        await asyncio.sleep(0.05)
    assert not any(_running(pid) for pid in pids)
