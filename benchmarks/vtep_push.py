"""Benchmark: 1,000 networks x 10 remote MACs bound on one emulated switch, in each mode.

Per mode and run, on a fresh store and a fresh emulated switch (real ovsdb-server, the
switch's own agent, memory ASIC):

* **tether** — from the ``POST /v1/bulk`` that creates the networks, their ports (bound to
  ten chassis, so every MAC is remote for the switch) and the switch's VLAN bindings, until
  the switch agent has applied every logical switch completely;
* **floor** — the very rows tether wrote (read back from the switch), sent to another fresh
  emulated switch as raw OVSDB JSON-RPC over a bare socket: one transaction with every row
  but the bindings, one with the bindings (the fewest transactions bind-last allows), until
  that switch's agent has applied them all.

Targets on the project machine: bind-last <= 4 s; every mode within 5x of the floor.
(OVN's ovn-controller-vtep needed about 16 s for the equivalent workload here.)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson

from tether.lab import EmulatedSwitch
from tether.ovsdb import Client
from tether.ovsdb.framing import JsonSplitter

MODES = ("bind-last", "lock", "state-consistent")
CHASSIS = {f"hv{i}": f"192.0.2.{10 + i}" for i in range(10)}
TABLES = (
    "Logical_Switch",
    "Physical_Locator",
    "Physical_Locator_Set",
    "Ucast_Macs_Remote",
    "Mcast_Macs_Remote",
    "Physical_Port",
)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.asynccontextmanager
async def tether_serve(workdir: Path) -> AsyncIterator[str]:
    port = free_port()
    log = open(workdir / "serve.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "serve",
            "--store",
            f"sqlite:{workdir / 'db'}",
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=url, timeout=600) as http:
            for _ in range(300):
                with contextlib.suppress(httpx.HTTPError):
                    if (await http.get("/healthz")).status_code == 200:
                        break
                await asyncio.sleep(0.05)
        yield url
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def bulk_items(networks: int, macs: int) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    for n in range(networks):
        a, b = divmod(n, 256)
        items.append(
            {
                "kind": "network",
                "spec": {
                    "name": f"net{n}",
                    "vni": 10_000 + n,
                    "subnets": [{"cidr": f"10.{a}.{b}.0/24"}],
                },
            }
        )
        for m in range(macs):
            items.append(
                {
                    "kind": "port",
                    "spec": {
                        "network": f"net{n}",
                        "mac": f"02:00:{a:02x}:{b:02x}:00:{m + 1:02x}",
                        "ips": [f"10.{a}.{b}.{m + 10}"],
                        "chassis": f"hv{(n + m) % len(CHASSIS)}",
                    },
                }
            )
        items.append(
            {
                "kind": "binding",
                "gateway": "tor1",
                "spec": {"port": f"eth{n // 4000 + 1}", "vlan": n % 4000 + 1, "network": f"net{n}"},
            }
        )
    return items


def complete(switch: EmulatedSwitch, networks: int, macs: int) -> bool:
    tables = switch.programmed
    return len(tables) == networks and all(len(t.remote_macs) == macs for t in tables.values())


async def until_complete(switch: EmulatedSwitch, networks: int, macs: int) -> float:
    while not complete(switch, networks, macs):
        await asyncio.sleep(0.005)
    return time.perf_counter()


async def run_tether(
    workdir: Path, mode: str, body: bytes, networks: int, macs: int
) -> tuple[float, dict[str, Any]]:
    async with (
        tether_serve(workdir) as url,
        EmulatedSwitch("tor1", workdir / "tor1", tunnel_ip="192.0.2.200", ports=["eth1"]) as switch,
        httpx.AsyncClient(base_url=url, timeout=600) as http,
    ):
        for name, ip in CHASSIS.items():
            (
                await http.post("/v1/chassis", json={"name": name, "tunnel_ip": ip})
            ).raise_for_status()
        gateway = {
            "name": "tor1",
            "ovsdb": switch.address,
            "tunnel_ip": "192.0.2.200",
            "mode": mode,
        }
        (await http.post("/v1/gateways", json=gateway)).raise_for_status()
        await asyncio.sleep(0.5)  # the agent is connected and idle
        started = time.perf_counter()
        reply = await http.post(
            "/v1/bulk", content=body, headers={"content-type": "application/json"}
        )
        reply.raise_for_status()
        finished = await until_complete(switch, networks, macs)
        rows = await dump(switch.address)
        return finished - started, rows


async def dump(address: str) -> dict[str, Any]:
    async with Client(address) as client:
        results = await client.transact(
            "hardware_vtep", [{"op": "select", "table": t, "where": []} for t in TABLES]
        )
    return {t: r["rows"] for t, r in zip(TABLES, results, strict=True)}


def raw_transactions(rows: dict[str, Any], ports: dict[str, str]) -> list[list[dict[str, Any]]]:
    """The dumped rows as two transactions: all content (named uuids), then the bindings."""

    def ref(uuid: str) -> list[str]:
        return ["named-uuid", "r" + uuid.replace("-", "")]

    content: list[dict[str, Any]] = []
    for table, skip in (
        ("Physical_Locator", ()),
        ("Logical_Switch", ()),
        ("Physical_Locator_Set", ()),
        ("Ucast_Macs_Remote", ()),
        ("Mcast_Macs_Remote", ()),
    ):
        for row in rows[table]:
            fields = {k: _named(v) for k, v in row.items() if k not in ("_uuid", "_version", *skip)}
            content.append(
                {
                    "op": "insert",
                    "table": table,
                    "row": fields,
                    "uuid-name": ref(row["_uuid"][1])[1],
                }
            )
    binds = []
    for row in rows["Physical_Port"]:
        bindings = [[vlan, _named(ls)] for vlan, ls in row["vlan_bindings"][1]]
        if bindings:
            binds.append(
                {
                    "op": "mutate",
                    "table": "Physical_Port",
                    "where": [["_uuid", "==", ["uuid", ports[row["name"]]]]],
                    "mutations": [["vlan_bindings", "insert", ["map", bindings]]],
                }
            )
    return [content, binds]


def _named(value: Any) -> Any:
    if isinstance(value, list) and len(value) == 2 and value[0] == "uuid":
        return ["named-uuid", "r" + value[1].replace("-", "")]
    if isinstance(value, list):
        return [_named(v) for v in value]
    return value


async def raw_transact(path: str, transactions: list[list[dict[str, Any]]]) -> None:
    """Send pre-encoded transact requests over a bare unix socket, one after the other; a
    later transaction refers to rows of an earlier one by the uuids its reply gave."""
    reader, writer = await asyncio.open_unix_connection(path)
    splitter = JsonSplitter()
    created: dict[str, str] = {}
    try:
        for i, planned in enumerate(transactions):
            ops = _substitute(planned, created)
            writer.write(
                orjson.dumps({"id": i, "method": "transact", "params": ["hardware_vtep", *ops]})
            )
            replies: list[Any] = []
            while not replies:
                replies = splitter.feed(await reader.read(1 << 20))
            results = replies[0]["result"] or []
            errors = [r for r in results if isinstance(r, dict) and "error" in r]
            if replies[0].get("error") or errors:
                raise SystemExit(
                    f"floor transaction failed: {replies[0].get('error') or errors[0]}"
                )
            for op, result in zip(ops, results, strict=False):
                if "uuid-name" in op:
                    created[op["uuid-name"]] = result["uuid"][1]
    finally:
        writer.close()


def _substitute(value: Any, created: dict[str, str]) -> Any:
    """Named uuids of earlier transactions -> the uuids the server gave them."""
    if isinstance(value, list):
        if len(value) == 2 and value[0] == "named-uuid" and value[1] in created:
            return ["uuid", created[value[1]]]
        return [_substitute(v, created) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, created) for k, v in value.items()}
    return value


async def run_floor(workdir: Path, rows: dict[str, Any], networks: int, macs: int) -> float:
    async with EmulatedSwitch(
        "tor1", workdir / "floor", tunnel_ip="192.0.2.200", ports=["eth1"]
    ) as switch:
        ports = {
            row["name"]: row["_uuid"][1] for row in (await dump(switch.address))["Physical_Port"]
        }
        transactions = raw_transactions(rows, ports)
        await asyncio.sleep(0.2)
        started = time.perf_counter()
        await raw_transact(switch.address.removeprefix("unix:"), transactions)
        finished = await until_complete(switch, networks, macs)
        return finished - started


async def main_async(args: argparse.Namespace) -> None:
    body = orjson.dumps({"items": bulk_items(args.networks, args.macs)})
    print(
        f"vtep push: {args.networks} networks x {args.macs} remote MACs on one emulated switch "
        f"(memory ASIC), default 1000 rows per transaction; median of {args.runs}"
    )
    print(f"{'mode':17} {'tether (s)':>10} {'floor (s)':>10} {'ratio':>7}   runs (tether / floor)")
    for mode in args.modes:
        tether_times, floor_times = [], []
        for run in range(args.runs):
            workdir = Path(tempfile.mkdtemp(prefix=f"tether-vtep-{mode}-{run}-"))
            try:
                elapsed, rows = await run_tether(workdir, mode, body, args.networks, args.macs)
                tether_times.append(elapsed)
                floor_times.append(await run_floor(workdir, rows, args.networks, args.macs))
            finally:
                shutil.rmtree(workdir, ignore_errors=True)
        t, f = statistics.median(tether_times), statistics.median(floor_times)
        detail = " ".join(
            f"{a:.2f}/{b:.2f}" for a, b in zip(tether_times, floor_times, strict=True)
        )
        print(f"{mode:17} {t:10.2f} {f:10.2f} {t / f:6.2f}x   {detail}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--macs", type=int, default=10)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=MODES)
    parser.add_argument("--smoke", action="store_true", help="50 networks, one run (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.networks, args.runs = 50, 1
    asyncio.run(main_async(args))


if __name__ == "__main__":
    main()
