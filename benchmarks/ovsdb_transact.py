"""Benchmark: one OVSDB transaction of 10,000 ``Ucast_Macs_Remote`` rows, client vs. raw floor.

The transaction inserts ``--rows`` ``Physical_Locator`` rows (each with a ``uuid-name``) and
as many ``Ucast_Macs_Remote`` rows, each referencing its locator by ``named-uuid`` and one
``Logical_Switch`` created beforehand. Each run measures, on a fresh ``ovsdb-server``
(``hardware_vtep`` schema, unix socket):

* **client** — ``await Client.transact(db, ops)``: encoding, sending, the server's work,
  receiving, splitting, decoding and checking the 2 x rows results;
* **floor**  — the very same request bytes (pre-encoded) written to a bare blocking socket
  and the reply read back and decoded with orjson: the server's own time plus the least a
  client can add.

Target: client within 1.5x of the floor. Prints the medians of ``--runs`` runs (the two
measurements alternate order run by run). ``--smoke`` runs a small size once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson

from tether.ovsdb import Client, ops

DB = "hardware_vtep"
SCHEMA = Path("/usr/share/openvswitch/vtep.ovsschema")


@contextlib.contextmanager
def ovsdb_server(workdir: Path) -> Iterator[str]:
    """A fresh hardware_vtep database served on a unix socket; yields ``unix:PATH``."""
    for binary in ("ovsdb-tool", "ovsdb-server"):
        if shutil.which(binary) is None:
            raise SystemExit(f"{binary} is not installed")
    db, sock = workdir / "vtep.db", workdir / "db.sock"
    subprocess.run(["ovsdb-tool", "create", str(db), str(SCHEMA)], check=True)
    process = subprocess.Popen(
        [
            "ovsdb-server",
            str(db),
            f"--remote=punix:{sock}",
            f"--pidfile={workdir / 'ovsdb.pid'}",
            f"--unixctl={workdir / 'ovsdb.ctl'}",
            f"--log-file={workdir / 'ovsdb.log'}",
            "--no-chdir",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_unix(sock, process)
        yield f"unix:{sock}"
    finally:
        process.kill()
        process.wait(timeout=15)


def wait_unix(path: Path, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(path))
            return
        time.sleep(0.02)
    raise SystemExit("ovsdb-server did not start")


def build_ops(rows: int, switch: str) -> list[dict[str, Any]]:
    locators = [
        ops.insert(
            "Physical_Locator",
            {
                "encapsulation_type": "vxlan_over_ipv4",
                "dst_ip": f"10.{i >> 16}.{(i >> 8) & 255}.{i & 255}",
            },
            uuid_name=f"loc{i}",
        )
        for i in range(rows)
    ]
    macs = [
        ops.insert(
            "Ucast_Macs_Remote",
            {
                "MAC": f"02:00:00:{i >> 16:02x}:{(i >> 8) & 255:02x}:{i & 255:02x}",
                "logical_switch": ops.uuid(switch),
                "locator": ops.named_uuid(f"loc{i}"),
            },
        )
        for i in range(rows)
    ]
    return locators + macs


async def create_switch(client: Client) -> str:
    result = await client.transact(DB, [ops.insert("Logical_Switch", {"name": "ls0"})])
    return str(result[0]["uuid"][1])


async def measure_client(address: str, rows: int) -> float:
    async with Client(address) as client:
        request_ops = build_ops(rows, await create_switch(client))
        start = time.perf_counter()
        results = await client.transact(DB, request_ops)
        elapsed = time.perf_counter() - start
    assert len(results) == 2 * rows and "uuid" in results[-1]
    return elapsed


async def measure_floor(address: str, rows: int) -> float:
    async with Client(address) as client:
        switch = await create_switch(client)
    request = orjson.dumps(
        {"id": 1, "method": "transact", "params": [DB, *build_ops(rows, switch)]}
    )
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(address.removeprefix("unix:"))
        start = time.perf_counter()
        sock.sendall(request)
        reply = read_reply(sock)
        elapsed = time.perf_counter() - start
    results = reply["result"]
    assert reply["error"] is None and len(results) == 2 * rows and "uuid" in results[-1]
    return elapsed


def read_reply(sock: socket.socket) -> Any:
    chunks: list[bytes] = []
    while True:
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise SystemExit("ovsdb-server closed the connection")
        chunks.append(chunk)
        if chunk.rstrip().endswith(b"}"):
            with contextlib.suppress(orjson.JSONDecodeError):
                return orjson.loads(b"".join(chunks))


def run_once(kind: str, rows: int) -> float:
    with tempfile.TemporaryDirectory(prefix="ovsbench") as tmp, ovsdb_server(Path(tmp)) as address:
        measure = measure_client if kind == "client" else measure_floor
        return asyncio.run(measure(address, rows))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="500 rows, one run")
    args = parser.parse_args()
    rows, runs = (500, 1) if args.smoke else (args.rows, args.runs)
    times: dict[str, list[float]] = {"client": [], "floor": []}
    for run in range(runs):
        order = ("floor", "client") if run % 2 == 0 else ("client", "floor")
        for kind in order:
            times[kind].append(run_once(kind, rows))
    client, floor = statistics.median(times["client"]), statistics.median(times["floor"])
    print(f"ovsdb transact of {rows} Ucast_Macs_Remote rows (+{rows} locators), {runs} runs")
    print(f"  client : median {client:.3f} s  {[round(t, 3) for t in times['client']]}")
    print(f"  floor  : median {floor:.3f} s  {[round(t, 3) for t in times['floor']]}")
    print(f"  ratio  : {client / floor:.2f}x (target <= 1.5x)")
    if os.environ.get("OVSDB_BENCH_STRICT") and client / floor > 1.5:
        sys.exit(1)


if __name__ == "__main__":
    main()
