"""Benchmark: pure MAC reconciliation — 1,000,000 claims, 1,000 devices, 10,000 networks.

Issue 4's first benchmark. The claims are generated before any timing, from a seeded random:

* every network is carried by a handful of devices; each MAC of a network is claimed by one
  of them — or, for a share of MACs, by two or three (HA pairs where both report the router
  MAC, VM migrations where old and new rack both claim it, MACs with slave claims only);
* revisions follow arrival order, except for a share of neighbouring claims that arrive
  swapped (out of order), and a share of claims is withdrawn at the end.

Timed, per run, on a fresh reconciler:

* **reconcile** — ``Reconciler.apply_rows`` over every claim as one batch: merge, elect,
  return the location changes (one per MAC: they all appear);
* **floor** — one pass over the same claims building a plain dict ``d[(net, mac)] = claim``.

Also reported: re-applying the same claims to the loaded reconciler (idempotent: no change)
and the ``Claim`` value API (``Reconciler.apply``, the objects built beforehand).

Target on the project machine: reconcile <= 2 s. Median of ``--runs`` runs (default 5);
``--smoke`` runs 20,000 claims once, for CI.
"""

from __future__ import annotations

import argparse
import gc
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tether.logical import Claim, ClaimKind, Reconciler, Role
from tether.logical.claims import (
    MASTER,
    SLAVE,
    WITHDRAWN,
    ClaimRow,
    DeviceName,
    Mac,
    NetworkId,
    Revision,
)

TARGET_S = 2.0
PROPAGATION_TARGET_S = 0.2
T = TypeVar("T")
SEED = 4


@dataclass(frozen=True)
class Shape:
    claims: int
    devices: int
    networks: int
    devices_per_network: int = 8
    two_claimants: float = 0.15  # share of MACs claimed by two devices
    three_claimants: float = 0.05  # ... by three
    slaves_only: float = 0.03  # share of contested MACs where nobody says master
    swapped: float = 0.05  # share of claims arriving before their predecessor
    withdrawn: float = 0.01  # share of claims that are withdraws


FULL = Shape(claims=1_000_000, devices=1_000, networks=10_000)
SMOKE = Shape(claims=20_000, devices=100, networks=200)


def generate(shape: Shape, seed: int = SEED) -> tuple[list[ClaimRow], dict[DeviceName, int]]:
    """The claims in arrival order, and the devices' HA priorities."""
    rng = random.Random(seed)
    devices = [DeviceName(f"tor{i:04d}") for i in range(shape.devices)]
    priorities = {d: rng.choice((100, 150, 200)) for d in devices if rng.random() < 0.5}
    carriers = [rng.sample(devices, shape.devices_per_network) for _ in range(shape.networks)]
    puts = _puts(shape, rng, carriers)
    rng.shuffle(puts)
    withdraws = [(net, mac, dev, WITHDRAWN, None) for net, mac, dev, _s, _ip in puts]
    withdraws = rng.sample(withdraws, shape.claims - len(puts))
    ordered = puts + withdraws
    rows: list[ClaimRow] = [
        (net, mac, dev, Revision(rev), state, ip)
        for rev, (net, mac, dev, state, ip) in enumerate(ordered, start=1)
    ]
    for i in range(0, len(rows) - 1, 2):  # arrival order != revision order, here and there
        if rng.random() < shape.swapped * 2:
            rows[i], rows[i + 1] = rows[i + 1], rows[i]
    return rows, priorities


Put = tuple[NetworkId, Mac, DeviceName, int, str | None]


def _puts(shape: Shape, rng: random.Random, carriers: list[list[DeviceName]]) -> list[Put]:
    wanted = round(shape.claims * (1 - shape.withdrawn))
    puts: list[Put] = []
    serial = 0
    while len(puts) < wanted:
        serial += 1
        n = rng.randrange(shape.networks)
        net = NetworkId(f"net{n:05d}")
        mac = Mac("02:%02x:%02x:%02x:%02x:%02x" % tuple(serial.to_bytes(5, "big")))  # noqa: UP031
        ip = f"10.{serial >> 16 & 255}.{serial >> 8 & 255}.{serial & 255}"
        draw = rng.random()
        count = 1
        if draw < shape.two_claimants + shape.three_claimants:
            count = 3 if draw < shape.three_claimants else 2
        claimants = rng.sample(carriers[n], count)
        nobody_master = count > 1 and rng.random() < shape.slaves_only
        for i, device in enumerate(claimants):
            master = not nobody_master and (i == 0 or rng.random() < 0.5)
            puts.append((net, mac, device, MASTER if master else SLAVE, ip))
    return puts[:wanted]


def to_claims(rows: list[ClaimRow]) -> list[Claim]:
    return [
        Claim(
            net,
            mac,
            dev,
            rev,
            role=Role.MASTER if state == MASTER else Role.SLAVE,
            ip=ip,
            kind=ClaimKind.PUT if state else ClaimKind.WITHDRAW,
        )
        for net, mac, dev, rev, state, ip in rows
    ]


def timed(fn: Callable[[], T]) -> tuple[float, T]:
    gc.collect()
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


def floor(rows: list[ClaimRow]) -> dict[tuple[str, str], ClaimRow]:
    d: dict[tuple[str, str], ClaimRow] = {}
    for row in rows:
        d[(row[0], row[1])] = row
    return d


def one_run(rows: list[ClaimRow], priorities: dict[DeviceName, int]) -> tuple[float, float, float]:
    """Times of: the floor, reconciling every claim, re-applying them all."""
    floor_s, _ = timed(lambda: floor(rows))
    reconciler = Reconciler(priorities=priorities)
    reconcile_s, changes = timed(lambda: reconciler.apply_rows(rows, 0.0))
    macs = sum(1 for _ in reconciler.locations())
    assert len(changes) == macs, f"every MAC appears once: {len(changes)} != {macs}"
    again_s, again = timed(lambda: reconciler.apply_rows(rows, 1.0))
    assert not again, "re-applying the same claims must change nothing"
    return floor_s, reconcile_s, again_s


def run(shape: Shape, runs: int) -> bool:
    rows, priorities = generate(shape)
    macs = len({(r[0], r[1]) for r in rows})
    print(
        f"{len(rows):,} claims, {shape.devices:,} devices, {shape.networks:,} networks, "
        f"{macs:,} MACs; median of {runs} run(s)"
    )
    floor_s: list[float] = []
    reconcile_s: list[float] = []
    again_s: list[float] = []
    for _ in range(runs):
        times = one_run(rows, priorities)
        for series, took in zip((floor_s, reconcile_s, again_s), times, strict=True):
            series.append(took)
    claims = to_claims(rows)
    value_s = [
        timed(lambda: Reconciler(priorities=priorities).apply(claims, 0.0))[0]
        for _ in range(min(runs, 3))
    ]
    median, base = statistics.median(reconcile_s), statistics.median(floor_s)
    print(f"  reconcile  {median:6.3f} s   apply_rows, one batch (runs: {_list(reconcile_s)})")
    print(f"  floor      {base:6.3f} s   plain dict, one pass (runs: {_list(floor_s)})")
    print(f"  ratio      {median / base:6.2f} x  reconcile / floor")
    print(f"  re-apply   {statistics.median(again_s):6.3f} s   same claims again: no change")
    print(f"  value API  {statistics.median(value_s):6.3f} s   apply() on Claim objects")
    ok = median <= TARGET_S
    print(f"  target     {TARGET_S:6.3f} s   {'met' if ok else 'MISSED'}")
    return ok


def _list(times: list[float]) -> str:
    return " ".join(f"{t:.3f}" for t in times)


def propagation(switches: int, moves: int) -> bool:
    import asyncio
    import shutil
    import tempfile
    from pathlib import Path

    from mac_propagation import percentile, report
    from mac_propagation import run as run_moves
    from vtep_push import tether_serve

    print(f"propagation: {switches} emulated switches (memory ASIC), {moves} moves")
    workdir = Path(tempfile.mkdtemp(prefix="tether-macs-"))
    try:
        taken, floor_taken = asyncio.run(run_moves(workdir, switches, moves, 3, tether_serve))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    report("tether", taken)
    report("floor", floor_taken)
    ok = percentile(taken, 99) <= PROPAGATION_TARGET_S
    print(f"  target   p99 <= {PROPAGATION_TARGET_S * 1000:.0f} ms   {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="20,000 claims, 5 switches, 5 moves")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--only", choices=("reconcile", "propagation"), default=None)
    parser.add_argument("--switches", type=int, default=100)
    parser.add_argument("--moves", type=int, default=100)
    args = parser.parse_args()
    ok = True
    if args.only in (None, "reconcile"):
        ok = run(SMOKE, 1) if args.smoke else run(FULL, args.runs)
    if args.only in (None, "propagation"):
        switches, moves = (5, 5) if args.smoke else (args.switches, args.moves)
        ok = propagation(switches, moves) and ok
    return 0 if ok or args.smoke else 1


if __name__ == "__main__":
    sys.exit(main())
