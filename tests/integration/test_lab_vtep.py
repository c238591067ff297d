"""The emulated hardware VTEP against real ovsdb-server processes.

Each test starts an emulated switch in its own directory — through the Python
:class:`~tether.lab.EmulatedSwitch`, or as the real ``tether lab vtep`` command stopped with
SIGTERM — and plays the controller with tether's OVSDB client, writing ``hardware_vtep`` rows
directly. What the switch forwarded on is read from its ASIC, its history and its files.
Under ``CI=true`` a missing ovsdb-server or ovsdb-tool fails the test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from tests.daemons import free_port, require_binary
from tether.lab import EmulatedSwitch, ForwardingTable, RemoteEntry, read_history, read_state
from tether.ovsdb import Client, ClientOptions, ReconnectOptions, ops

pytestmark = [pytest.mark.anyio, pytest.mark.daemon]

DB = "hardware_vtep"
LOCK = "ls_5001"
MAC1, MAC2, MAC3 = "02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"
FAST = ClientOptions(
    reconnect=ReconnectOptions(min_backoff=0.05, max_backoff=0.4, connect_timeout=5.0),
    request_timeout=10.0,
)


def _binaries() -> None:
    require_binary("ovsdb-server")
    require_binary("ovsdb-tool")


def switch_in(directory: Path, name: str = "tor1") -> EmulatedSwitch:
    return EmulatedSwitch(name, directory, tunnel_ip="192.0.2.21", ports=["eth1", "eth2"])


@pytest.fixture
async def tor(tmp_path: Path) -> AsyncIterator[EmulatedSwitch]:
    _binaries()
    async with switch_in(tmp_path / "tor1") as switch:
        yield switch


class Controller:
    """Writes ``hardware_vtep`` rows the way a controller's VTEP agent does."""

    def __init__(self, client: Client) -> None:
        self.client = client

    async def transact(self, *operations: dict[str, Any]) -> list[Any]:
        return await self.client.transact(DB, list(operations))

    async def _locator(self, ip: str, name: str) -> tuple[list[dict[str, Any]], list[str]]:
        """Ops inserting the locator for ``ip`` (none if it exists) and its reference."""
        where = [ops.condition("dst_ip", "==", ip)]
        [found] = await self.transact(ops.select("Physical_Locator", where, ["_uuid"]))
        if found["rows"]:
            return [], found["rows"][0]["_uuid"]
        row = {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": ip}
        return [ops.insert("Physical_Locator", row, uuid_name=name)], ops.named_uuid(name)

    async def create_switch(self, name: str, vni: int, *, consistent: bool | None = None) -> str:
        row: dict[str, Any] = {"name": name, "tunnel_key": vni}
        if consistent is not None:
            row["state_consistent"] = consistent
        [result] = await self.transact(ops.insert("Logical_Switch", row))
        return str(result["uuid"][1])

    async def add_mac(self, ls: str, mac: str, locator: str, ip: str = "") -> None:
        first, ref = await self._locator(locator, "loc")
        row = {"MAC": mac, "logical_switch": ops.uuid(ls), "locator": ref, "ipaddr": ip}
        await self.transact(*first, ops.insert("Ucast_Macs_Remote", row))

    async def remove_mac(self, mac: str) -> None:
        await self.transact(ops.delete("Ucast_Macs_Remote", [ops.condition("MAC", "==", mac)]))

    async def set_flood(self, ls: str, *ips: str) -> None:
        """The ``unknown-dst`` Mcast_Macs_Remote row with a new Physical_Locator_Set."""
        inserts, refs = [], []
        for index, ip in enumerate(ips):
            first, ref = await self._locator(ip, f"loc{index}")
            inserts += first
            refs.append(ref)
        where = [ops.condition("logical_switch", "==", ops.uuid(ls))]
        row = {
            "MAC": "unknown-dst",
            "logical_switch": ops.uuid(ls),
            "locator_set": ops.named_uuid("set"),
        }
        await self.transact(
            *inserts,
            ops.insert("Physical_Locator_Set", {"locators": ops.oset(refs)}, uuid_name="set"),
            ops.delete("Mcast_Macs_Remote", where),
            ops.insert("Mcast_Macs_Remote", row),
        )

    async def bind(self, port: str, vlan: int, ls: str) -> None:
        mutation = ["vlan_bindings", "insert", ops.omap({vlan: ops.uuid(ls)})]
        await self.transact(
            ops.mutate("Physical_Port", [ops.condition("name", "==", port)], [mutation])
        )

    async def unbind(self, port: str, vlan: int) -> None:
        mutation = ["vlan_bindings", "delete", ops.oset([vlan])]
        await self.transact(
            ops.mutate("Physical_Port", [ops.condition("name", "==", port)], [mutation])
        )

    async def set_consistent(self, ls: str, value: bool) -> None:
        where = [ops.condition("_uuid", "==", ops.uuid(ls))]
        await self.transact(ops.update("Logical_Switch", where, {"state_consistent": value}))

    async def count(self, table: str) -> int:
        [result] = await self.transact(ops.select(table, [], ["_uuid"]))
        return len(result["rows"])


async def controller_for(address: str) -> Controller:
    client = Client(address, options=FAST)
    await client.connect(timeout=10)
    return Controller(client)


async def web_switch(ctl: Controller) -> str:
    """Logical switch ``web``, VNI 5001: one remote MAC and a flood set; not bound yet."""
    ls = await ctl.create_switch("web", 5001)
    await ctl.add_mac(ls, MAC1, "192.0.2.11", "10.0.0.1")
    await ctl.set_flood(ls, "192.0.2.11", "192.0.2.12")
    return ls


WEB = ForwardingTable(
    name="web",
    vni=5001,
    bindings=frozenset({("eth1", 100)}),
    remote_macs={MAC1: RemoteEntry("192.0.2.11", "10.0.0.1")},
    flood_locators=frozenset({"192.0.2.11", "192.0.2.12"}),
)


async def eventually(predicate: Callable[[], bool], *, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


# -- the switch's side of the protocol ----------------------------------------------------


async def test_bind_last_programs_only_while_bound(tor: EmulatedSwitch) -> None:
    ctl = await controller_for(tor.address)
    try:
        ls = await web_switch(ctl)
        await tor.settle()
        assert tor.programmed == {} and tor.history == []  # complete rows, but no binding
        await ctl.bind("eth1", 100, ls)
        await tor.settle()
        assert tor.programmed == {"web": WEB}
        assert tor.lookup(port="eth1", vlan=100, mac=MAC1).locators == ("192.0.2.11",)
        flood = tor.lookup(port="eth1", vlan=100, mac=MAC3)
        assert (flood.action, set(flood.locators)) == ("flood", {"192.0.2.11", "192.0.2.12"})
        assert tor.agent.client.holds_lock(LOCK)
        await ctl.unbind("eth1", 100)  # the bind-last update path's gap is real
        await tor.settle()
        assert tor.programmed == {} and tor.history[-1].state is None
        assert tor.lookup(port="eth1", vlan=100, mac=MAC1).action == "drop"
        assert not tor.agent.client.holds_lock(LOCK)  # released with the logical switch
        files = read_history(tor.directory)
        assert [entry.state for entry in files] == [WEB, None]
        assert read_state(tor.directory).tables == {}
    finally:
        await ctl.client.close()


async def test_state_consistent_false_holds_every_update_until_true(tor: EmulatedSwitch) -> None:
    ctl = await controller_for(tor.address)
    try:
        ls = await web_switch(ctl)
        await ctl.bind("eth1", 100, ls)
        await tor.settle()
        assert tor.programmed == {"web": WEB}
        applied = len(tor.history)
        await ctl.set_consistent(ls, False)
        await ctl.add_mac(ls, MAC2, "192.0.2.13")
        await ctl.set_flood(ls, "192.0.2.13")
        await ctl.bind("eth2", 200, ls)
        await tor.settle()
        assert tor.programmed == {"web": WEB} and len(tor.history) == applied
        assert tor.lookup(port="eth2", vlan=200, mac=MAC2).action == "drop"
        await ctl.set_consistent(ls, True)
        await tor.settle()
        assert len(tor.history) == applied + 1
        final = tor.programmed["web"]
        assert final.bindings == {("eth1", 100), ("eth2", 200)}
        assert set(final.remote_macs) == {MAC1, MAC2}
        assert final.flood_locators == {"192.0.2.13"}
        assert tor.lookup(port="eth2", vlan=200, mac=MAC2).locators == ("192.0.2.13",)
    finally:
        await ctl.client.close()


async def test_a_stolen_lock_yields_exactly_one_complete_apply(tor: EmulatedSwitch) -> None:
    ctl = await controller_for(tor.address)
    try:
        ls = await web_switch(ctl)
        await ctl.bind("eth1", 100, ls)
        await tor.settle()
        assert tor.agent.client.holds_lock(LOCK)
        applied = len(read_history(tor.directory))
        assert await ctl.client.steal(LOCK)
        await ctl.add_mac(ls, MAC2, "192.0.2.13")
        await ctl.add_mac(ls, MAC3, "192.0.2.13", "10.0.0.3")
        await ctl.set_flood(ls, "192.0.2.13", "192.0.2.14")
        await ctl.remove_mac(MAC1)
        await ctl.bind("eth2", 200, ls)
        await tor.settle()
        assert tor.programmed == {"web": WEB}, "the ASIC must keep the last state while stolen"
        assert not tor.agent.client.holds_lock(LOCK)
        await ctl.client.unlock(LOCK)
        await eventually(lambda: len(tor.history) > applied)
        await tor.settle()
        expected = ForwardingTable(
            name="web",
            vni=5001,
            bindings=frozenset({("eth1", 100), ("eth2", 200)}),
            remote_macs={
                MAC2: RemoteEntry("192.0.2.13", ""),
                MAC3: RemoteEntry("192.0.2.13", "10.0.0.3"),
            },
            flood_locators=frozenset({"192.0.2.13", "192.0.2.14"}),
        )
        new = read_history(tor.directory)[applied:]
        assert [entry.state for entry in new] == [expected]  # no intermediate state
        assert tor.agent.client.holds_lock(LOCK)  # queued with `lock`: back after the thief
        assert read_state(tor.directory).tables == {"web": expected}
    finally:
        await ctl.client.close()


async def test_restart_on_the_same_directory_keeps_rows_and_programs_again(
    tmp_path: Path,
) -> None:
    _binaries()
    directory = tmp_path / "tor1"
    async with switch_in(directory) as first:
        ctl = await controller_for(first.address)
        try:
            await ctl.bind("eth1", 100, await web_switch(ctl))
        finally:
            await ctl.client.close()
        await first.settle()
        assert first.programmed == {"web": WEB}
        pid = first.pid
    assert pid is not None and not _alive(pid)
    async with switch_in(directory) as second:
        await second.settle()
        assert second.programmed == {"web": WEB}
        assert second.history[-1].state == WEB
        ctl = await controller_for(second.address)
        try:
            counts = [await ctl.count(t) for t in ("Global", "Physical_Switch", "Physical_Port")]
            assert counts == [1, 1, 2]  # the switch's own rows were not written twice
        finally:
            await ctl.client.close()
    assert [entry.state for entry in read_history(directory)] == [WEB, WEB]


# -- the command ------------------------------------------------------------------------------


def lab_cli() -> list[str]:
    """``tether lab`` once wired into the main command, ``python -m tether.cli.lab`` before."""
    from tether.cli.main import app

    names = {str(group.name) for group in app.registered_groups}
    names |= {str(g.typer_instance.info.name) for g in app.registered_groups if g.typer_instance}
    tether = Path(sys.executable).with_name("tether")
    if "lab" in names and tether.exists():
        return [str(tether), "lab"]
    return [sys.executable, "-m", "tether.cli.lab"]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _ready_pid(output: Path, process: subprocess.Popen[bytes], timeout: float = 20.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        text = output.read_text() if output.exists() else ""
        if " ready on " in text:
            return int(text.split("(ovsdb-server pid ")[1].split(")")[0])
        assert process.poll() is None, f"tether lab vtep exited: {text}"
        time.sleep(0.02)
    raise TimeoutError(f"tether lab vtep not ready after {timeout} s")


def vtep_state(directory: Path, *args: str) -> str:
    done = subprocess.run(
        [*lab_cli(), "vtep-state", "tor2", "--ovsdb-dir", str(directory), *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


async def test_the_command_runs_until_sigterm_and_reports_its_state(tmp_path: Path) -> None:
    _binaries()
    directory, port, output = tmp_path / "tor2", free_port(), tmp_path / "vtep.out"
    args = ["vtep", "tor2", "--ovsdb-dir", str(directory), "--tunnel-ip", "192.0.2.22"]
    args += ["--ports", "eth1,eth2", "--tcp-port", str(port)]
    with output.open("wb") as sink:
        process = subprocess.Popen([*lab_cli(), *args], stdout=sink, stderr=subprocess.STDOUT)
    try:
        pid = await asyncio.to_thread(_ready_pid, output, process)
        assert int((directory / "ovsdb-server.pid").read_text()) == pid
        ctl = await controller_for(f"tcp:127.0.0.1:{port}")
        try:
            await ctl.bind("eth1", 100, await web_switch(ctl))
        finally:
            await ctl.client.close()
        await eventually(lambda: bool(read_state(directory).tables), timeout=20)
        state = json.loads(await asyncio.to_thread(vtep_state, directory, "--json"))
        assert state["switch"] == "tor2"
        assert ForwardingTable.from_json(state["logical_switches"]["web"]) == WEB
        answer = await asyncio.to_thread(
            vtep_state, directory, "--lookup", MAC1, "--vlan", "100", "--port", "eth1"
        )
        assert answer.startswith("forward 192.0.2.11 (web vni 5001)")
        broadcast = ["--json", "--lookup", "ff:ff:ff:ff:ff:ff", "--vlan", "100", "--port", "eth1"]
        verdict = json.loads(await asyncio.to_thread(vtep_state, directory, *broadcast))
        assert verdict["action"] == "flood"
        assert set(verdict["locators"]) == {"192.0.2.11", "192.0.2.12"}
        history = json.loads(await asyncio.to_thread(vtep_state, directory, "--history", "--json"))
        assert [entry["switch"] for entry in history] == ["web"]
        table = await asyncio.to_thread(vtep_state, directory)
        assert "web" in table and "5001" in table and "eth1/100" in table
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 20) == 0
        assert not _alive(pid), "the ovsdb-server must be stopped with the switch"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
