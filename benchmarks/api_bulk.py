"""Benchmark: 1,000 networks with 10 ports each through the bulk API, on SQLite and on etcd.

For each backend, each run:

* **api**   — ``POST /v1/bulk`` with 1,000 network creates and 10,000 port creates to a real
  ``tether serve`` process on a fresh store; the time from sending the (pre-encoded) request
  to the answer, which comes only after the one store transaction committed.
* **floor** — the very same keys and values (read back from the store after the API run)
  written straight through the backend in one transaction, on a fresh store.

Target on the project machine: api <= 2 s on SQLite, and api within 2x of the floor on both.
Prints medians of ``--runs`` runs. ``--smoke`` runs a small size once (used by ``make test``).

``--breakdown`` runs the same request's steps in this process instead, one after the other
(parse, validate, rules, encode, store on a fresh SQLite file), and says what the steps other
than the rules cost next to the store. ``bulk_bounds.py`` measures the least any design can
spend before the store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson

from tether.model import Catalog, Rules
from tether.model.bulk import BulkRequest, apply_bulk
from tether.service.ids import RandomIds
from tether.service.models import change_ops
from tether.store import Put, open_store

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_http(url: str, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code < 500:
                return
        if process.poll() is not None:
            break
        time.sleep(0.05)
    raise SystemExit(f"{what} did not start")


@contextlib.contextmanager
def etcd_server(workdir: Path) -> Iterator[str]:
    binary = shutil.which("etcd") or "/usr/bin/etcd"
    client, peer = free_port(), free_port()
    process = subprocess.Popen(
        [
            binary,
            "--name",
            "bench",
            "--data-dir",
            str(workdir / "etcd"),
            "--listen-client-urls",
            f"http://127.0.0.1:{client}",
            "--advertise-client-urls",
            f"http://127.0.0.1:{client}",
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"bench=http://127.0.0.1:{peer}",
            "--max-txn-ops",
            "100000",
            "--max-request-bytes",
            "67108864",
            "--quota-backend-bytes",
            "8589934592",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_http(f"http://127.0.0.1:{client}/health", process, "etcd")
        yield f"etcd://127.0.0.1:{client}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=15)


@contextlib.contextmanager
def tether_serve(store_url: str, workdir: Path) -> Iterator[str]:
    port = free_port()
    log = open(workdir / f"serve-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tether.cli.main",
            "serve",
            "--store",
            store_url,
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "warning",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", process, "tether serve")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)
        log.close()


def bulk_body(networks: int, ports: int) -> bytes:
    items: list[dict[str, object]] = []
    for n in range(networks):
        a, b = divmod(n, 256)
        items.append(
            {
                "kind": "network",
                "spec": {
                    "name": f"net{n}",
                    "tenant": f"t{n % 10}",
                    "vni": 10_000 + n,
                    "subnets": [{"cidr": f"10.{a}.{b}.0/24"}],
                },
            }
        )
        for p in range(ports):
            items.append(
                {
                    "kind": "port",
                    "spec": {
                        "network": f"net{n}",
                        "tenant": f"t{n % 10}",
                        "name": f"vm{n}-{p}",
                        "mac": f"02:00:{a:02x}:{b:02x}:00:{p + 1:02x}",
                        "ips": [f"10.{a}.{b}.{p + 10}"],
                    },
                }
            )
    return orjson.dumps({"items": items})


def time_api(url: str, body: bytes, expected: int) -> float:
    with httpx.Client(base_url=url, timeout=600) as http:
        started = time.perf_counter()
        reply = http.post("/v1/bulk", content=body, headers={"content-type": "application/json"})
        elapsed = time.perf_counter() - started
    if reply.status_code != 200 or reply.json()["created"] != expected:
        raise SystemExit(f"bulk failed: {reply.status_code} {reply.text[:300]}")
    return elapsed


async def read_rows(store_url: str) -> list[Put]:
    store = await open_store(store_url)
    try:
        listing = await store.range("/tether/model/")
        return [Put(kv.key, kv.value) for kv in listing.kvs]
    finally:
        await store.close()


async def time_floor(store_url: str, rows: list[Put], prefix: str) -> float:
    store = await open_store(store_url)
    try:
        puts = [Put(prefix + p.key, p.value) for p in rows]
        started = time.perf_counter()
        await store.txn((), puts)
        return time.perf_counter() - started
    finally:
        await store.close()


def run_backend(
    backend: str, workdir: Path, body: bytes, expected: int, runs: int
) -> tuple[list[float], list[float]]:
    workdir.mkdir(parents=True, exist_ok=True)
    api_times, floor_times = [], []
    with contextlib.ExitStack() as stack:
        etcd_url = stack.enter_context(etcd_server(workdir)) if backend == "etcd" else ""
        for run in range(runs):
            store_url = etcd_url or f"sqlite:{workdir / f'api-{run}.db'}"
            if etcd_url:
                asyncio.run(wipe(etcd_url))
            with tether_serve(store_url, workdir) as url:
                api_times.append(time_api(url, body, expected))
            rows = asyncio.run(read_rows(store_url))
            floor_url = etcd_url or f"sqlite:{workdir / f'floor-{run}.db'}"
            floor_times.append(asyncio.run(time_floor(floor_url, rows, f"/floor{run}")))
    return api_times, floor_times


async def wipe(store_url: str) -> None:
    store = await open_store(store_url)
    try:
        await store.delete("/", prefix=True)
    finally:
        await store.close()


STEPS = ("parse", "validate", "rules", "encode", "store")


async def split_once(body: bytes, db: Path) -> dict[str, float]:
    """One pass of the bulk path in this process, timed step by step."""
    times: dict[str, float] = {}
    started = time.perf_counter()

    def lap(step: str) -> None:
        nonlocal started
        now = time.perf_counter()
        times[step], started = now - started, now

    data = json.loads(body)  # as FastAPI parses a request body
    lap("parse")
    request = BulkRequest.model_validate(data)
    lap("validate")
    catalog = Catalog()
    catalog.begin()
    apply_bulk(Rules(catalog, RandomIds()), request.items)
    changes = catalog.changes()
    lap("rules")
    ops = change_ops(changes)
    lap("encode")
    store = await open_store(f"sqlite:{db}")
    try:
        started = time.perf_counter()
        await store.txn((), ops)
        lap("store")
    finally:
        await store.close()
    return times


def breakdown(body: bytes, runs: int, workdir: Path) -> None:
    gc.set_threshold(200_000, 50, 1000)  # as `tether serve` runs
    passes = [asyncio.run(split_once(body, workdir / f"split-{run}.db")) for run in range(runs)]
    median = {step: statistics.median(p[step] for p in passes) for step in STEPS}
    for step in STEPS:
        print(f"{step:9} {median[step]:7.3f} s")
    store = median["store"]
    before = sum(median[step] for step in STEPS[:-1])
    bare = before - median["rules"]
    print(
        f"before the store: {before:.3f} s = {before / store:.2f}x the store; "
        f"without the rules: {(bare + store) / store:.2f}x the store"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--ports", type=int, default=10, help="ports per network")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--backend", choices=["sqlite", "etcd", "both"], default="both")
    parser.add_argument("--smoke", action="store_true", help="50 networks, one run (CI)")
    parser.add_argument(
        "--breakdown", action="store_true", help="time each step of the path in this process"
    )
    args = parser.parse_args()
    if args.smoke:
        args.networks, args.runs = 50, 1
    body = bulk_body(args.networks, args.ports)
    expected = args.networks * (args.ports + 1)
    if args.breakdown:
        workdir = Path(tempfile.mkdtemp(prefix="tether-bench-"))
        try:
            print(f"bulk create, step by step: {expected} objects, median of {args.runs}")
            breakdown(body, args.runs, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        return
    backends = ["sqlite", "etcd"] if args.backend == "both" else [args.backend]
    print(
        f"bulk create: {args.networks} networks x {args.ports} ports = {expected} objects, "
        f"{len(body) / 1e6:.1f} MB request, median of {args.runs}"
    )
    print(f"{'backend':8} {'api (s)':>9} {'floor (s)':>10} {'ratio':>7}   runs (api / floor)")
    workdir = Path(tempfile.mkdtemp(prefix="tether-bench-"))
    try:
        for backend in backends:
            api_times, floor_times = run_backend(
                backend, workdir / backend, body, expected, args.runs
            )
            api, floor = statistics.median(api_times), statistics.median(floor_times)
            detail = " ".join(
                f"{a:.2f}/{f:.2f}" for a, f in zip(api_times, floor_times, strict=True)
            )
            print(
                f"{backend:8} {api:9.3f} {floor:10.3f} {api / floor:6.2f}x   {detail}", flush=True
            )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONWARNINGS", "ignore")
    main()
