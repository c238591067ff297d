"""Benchmark: one MAC move on a fabric of emulated switches reaches every other switch.

The fabric: ``tether serve`` (its own process, SQLite store) and N emulated switches (real
``ovsdb-server`` each, the switch's own agent, memory ASIC), all carrying one network, each
with a few MACs of its own learned beforehand (so every switch already holds the other
switches' MACs in ``Ucast_Macs_Remote``).

A **move**: the MAC's new switch learns it (a ``Ucast_Macs_Local`` row, as its agent would
write it), then the old switch ages it out (deletes its row). Timed from the first write
until every other switch's ASIC forwards the MAC to the new switch's tunnel IP — the
switches' *applied* state, not their databases. Collection, the store, reconciliation,
distribution, the OVSDB pushes and the switch agents are all inside the measure.

**floor**: the same move's distribution done directly — one transaction per switch, sent
to all of them at once over connections already open, rewriting the MAC's
``Ucast_Macs_Remote`` locator — until every ASIC applied it. It is what any controller must
at least pay to reach N switches.

Target on the project machine (issue 4): 100 switches, 99th percentile of 100 moves
<= 200 ms. ``--smoke`` runs 5 switches and 5 moves, for CI.
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from pathlib import Path
from typing import Any

import httpx

from tether.lab import EmulatedSwitch
from tether.ovsdb import Client

DB = "hardware_vtep"
MOVING = "02:aa:00:00:00:01"
STATE_INTERVAL = 0.05
"""The emulated switches rewrite their asic-state.json at most every 50 ms (their history
still gets every change at once): a hundred of them on two cores otherwise spend most of a
move rewriting files."""


def tunnel_ip(i: int) -> str:
    return f"10.99.{i // 250}.{i % 250 + 1}"


class Fabric:
    def __init__(self, switches: list[EmulatedSwitch], clients: list[Client], network: str):
        self.switches = switches
        self.clients = clients
        self.network = network
        self.local: dict[tuple[int, str], str] = {}

    async def learn(self, i: int, macs: list[str]) -> None:
        client = self.clients[i]
        selected = await client.transact(
            DB,
            [
                {
                    "op": "select",
                    "table": "Logical_Switch",
                    "where": [["name", "==", self.network]],
                },
                {
                    "op": "select",
                    "table": "Physical_Locator",
                    "where": [["dst_ip", "==", tunnel_ip(i)]],
                },
            ],
        )
        ls = selected[0]["rows"][0]["_uuid"]
        found = selected[1]["rows"]
        ops: list[dict[str, Any]] = []
        locator: list[str] = found[0]["_uuid"] if found else ["named-uuid", "self"]
        if not found:
            ops.append(
                {
                    "op": "insert",
                    "table": "Physical_Locator",
                    "uuid-name": "self",
                    "row": {"dst_ip": tunnel_ip(i), "encapsulation_type": "vxlan_over_ipv4"},
                }
            )
        for mac in macs:
            ops.append(
                {
                    "op": "insert",
                    "table": "Ucast_Macs_Local",
                    "row": {"MAC": mac, "logical_switch": ls, "locator": locator},
                }
            )
        results = await client.transact(DB, ops)
        for mac, result in zip(macs, results[len(ops) - len(macs) :], strict=True):
            self.local[(i, mac)] = result["uuid"][1]

    async def forget(self, i: int, mac: str) -> None:
        uuid = self.local.pop((i, mac))
        where = [["_uuid", "==", ["uuid", uuid]]]
        await self.clients[i].transact(
            DB, [{"op": "delete", "table": "Ucast_Macs_Local", "where": where}]
        )

    def located(self, mac: str, at: int) -> bool:
        """Every switch but ``at`` forwards ``mac`` to ``at``'s tunnel IP."""
        want = tunnel_ip(at)
        for j, switch in enumerate(self.switches):
            if j == at:
                continue
            table = switch.programmed.get(self.network)
            entry = table.remote_macs.get(mac) if table else None
            if entry is None or entry.locator != want:
                return False
        return True

    async def until(self, check: Any, timeout: float = 60.0) -> float:
        deadline = time.perf_counter() + timeout
        while not check():
            if time.perf_counter() > deadline:
                raise SystemExit("the fabric did not converge in time")
            await asyncio.sleep(0.001)
        return time.perf_counter()


async def build(
    url: str, workdir: Path, count: int, own_macs: int
) -> tuple[Fabric, list[EmulatedSwitch]]:
    """Start the switches and the fabric; on any failure, stop what was started."""
    started: list[EmulatedSwitch] = []
    clients: list[Client] = []
    try:
        return await _build(url, workdir, count, own_macs, started, clients)
    except BaseException:
        await shutdown(Fabric(started, clients, ""), started)
        raise


async def _build(
    url: str,
    workdir: Path,
    count: int,
    own_macs: int,
    started: list[EmulatedSwitch],
    clients: list[Client],
) -> tuple[Fabric, list[EmulatedSwitch]]:
    switches = [
        EmulatedSwitch(
            f"tor{i}",
            workdir / f"tor{i}",
            tunnel_ip=tunnel_ip(i),
            ports=["eth1"],
            state_interval=STATE_INTERVAL,
        )
        for i in range(count)
    ]
    for start in range(0, count, 20):
        group = switches[start : start + 20]
        started += group  # stopping one that did not start is harmless
        await asyncio.gather(*(s.start() for s in group))
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        (await http.post("/v1/networks", json={"name": "fabric", "vni": 7000})).raise_for_status()
        network = (await http.get("/v1/networks/fabric")).json()["id"]
        for i, switch in enumerate(switches):
            body = {"name": switch.name, "ovsdb": switch.address, "tunnel_ip": tunnel_ip(i)}
            (await http.post("/v1/gateways", json=body)).raise_for_status()
            binding = {"port": "eth1", "vlan": 10, "network": "fabric"}
            reply = await http.post(f"/v1/gateways/{switch.name}/bindings", json=binding)
            reply.raise_for_status()
    clients += [Client(s.address) for s in switches]
    for client in clients:
        await client.connect(timeout=30)
    fabric = Fabric(switches, clients, network)
    await fabric.until(lambda: all(network in s.programmed for s in switches))
    for i in range(count):
        await fabric.learn(
            i, [f"02:bb:{i // 256:02x}:{i % 256:02x}:00:{m:02x}" for m in range(own_macs)]
        )
    expected = (count - 1) * own_macs
    await fabric.until(
        lambda: all(len(s.programmed[network].remote_macs) == expected for s in switches)
    )
    return fabric, switches


async def moves(fabric: Fabric, count: int, runs: int) -> list[float]:
    """Move the MAC ``runs`` times around the fabric; the time of each move, in seconds."""
    await fabric.learn(0, [MOVING])
    await fabric.until(lambda: fabric.located(MOVING, 0))
    await asyncio.sleep(0.2)
    at, taken = 0, []
    for n in range(runs):
        target = (at + 1 + n * 7) % count
        if target == at:
            target = (target + 1) % count
        started = time.perf_counter()
        await fabric.learn(target, [MOVING])
        await fabric.forget(at, MOVING)
        finished = await fabric.until(lambda t=target: fabric.located(MOVING, t))
        taken.append(finished - started)
        at = target
        await asyncio.sleep(0.05)  # let the old switch's own update settle
    return taken


async def floor_moves(fabric: Fabric, count: int, runs: int, at: int) -> list[float]:
    """The same moves pushed straight to every switch's Ucast_Macs_Remote (see the module),
    with tether stopped (its agents would put the rows back)."""
    network = fabric.network
    rows: list[tuple[str, dict[str, str]]] = []
    for client in fabric.clients:
        selected = await client.transact(
            DB,
            [
                {"op": "select", "table": "Ucast_Macs_Remote", "where": [["MAC", "==", MOVING]]},
                {"op": "select", "table": "Physical_Locator", "where": []},
            ],
        )
        uuid = selected[0]["rows"][0]["_uuid"][1] if selected[0]["rows"] else ""
        locators = {row["dst_ip"]: row["_uuid"][1] for row in selected[1]["rows"]}
        rows.append((uuid, locators))
    taken = []
    for n in range(runs):
        target = (at + 1 + n * 7) % count
        if target == at:
            target = (target + 1) % count
        want = tunnel_ip(target)
        moved = [i for i in range(count) if i != target and rows[i][0] and want in rows[i][1]]
        started = time.perf_counter()
        await asyncio.gather(
            *(
                fabric.clients[i].transact(
                    DB,
                    [
                        {
                            "op": "update",
                            "table": "Ucast_Macs_Remote",
                            "where": [["_uuid", "==", ["uuid", rows[i][0]]]],
                            "row": {"locator": ["uuid", rows[i][1][want]]},
                        }
                    ],
                )
                for i in moved
            )
        )

        def applied(targets: list[int] = moved, ip: str = want) -> bool:
            for j in targets:
                entry = fabric.switches[j].programmed[network].remote_macs.get(MOVING)
                if entry is None or entry.locator != ip:
                    return False
            return True

        finished = await fabric.until(applied)
        taken.append(finished - started)
        at = target
    return taken


async def run(
    workdir: Path, count: int, runs: int, own_macs: int, serve: Any
) -> tuple[list[float], list[float]]:
    """Build the fabric under ``serve`` (an async context manager starting ``tether serve``
    and yielding its URL); time tether's moves, stop tether, time the floor's."""
    # A hundred replicas are long-lived objects: collect as rarely as `tether serve` does, and
    # leave what the set-up built out of the collector's scans.
    gc.set_threshold(200_000, 50, 1000)
    async with serve(workdir) as url:
        fabric, switches = await build(url, workdir, count, own_macs)
        gc.collect()
        gc.freeze()
        try:
            taken = await moves(fabric, count, runs)
            at = next(i for i in range(count) if (i, MOVING) in fabric.local)
        except BaseException:
            await shutdown(fabric, switches)
            raise
    try:
        floor = await floor_moves(fabric, count, runs, at)
    finally:
        await shutdown(fabric, switches)
    return taken, floor


async def shutdown(fabric: Fabric, switches: list[EmulatedSwitch]) -> None:
    for client in fabric.clients:
        await client.close()
    for start in range(0, len(switches), 20):
        await asyncio.gather(*(s.stop() for s in switches[start : start + 20]))


def percentile(values: list[float], q: int) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def report(name: str, taken: list[float]) -> None:
    ms = [t * 1000 for t in taken]
    print(
        f"  {name:8} p50 {percentile(ms, 50):7.1f} ms   p99 {percentile(ms, 99):7.1f} ms   "
        f"max {max(ms):7.1f} ms   ({len(ms)} moves)"
    )
