"""Benchmark: the least the bulk API's path can cost, next to the store transaction it ends in.

Issue 2 asks for the bulk create of 1,000 networks with 10 ports each within 2x of the same
rows written straight through the backend. That leaves everything before the store (reading
the JSON, validating it, the cross-object rules, encoding the rows) the time of one store
transaction. This measures, in one process and on the same request as ``api_bulk.py``:

* **store**      — the rows tether writes for that request, in one SQLite transaction on a
  fresh file (the floor of ``api_bulk.py``);
* **validation** — ``BulkRequest.model_validate_json`` on the request, as built;
* **pydantic**   — the same shape validated by pydantic models with *no* Python validator
  at all (names, MACs and IPs checked by pydantic-core's own patterns; no CIDR, no range
  check): the least any pydantic-validated path pays;
* **bare**       — the request parsed with orjson and turned into stored rows with plain
  dicts: ids, the name / MAC / IP indexes, one JSON value per object; nothing checked but
  a duplicate. No validating path can cost less.

Each line gives the step's time and ``(step + store) / store``: the ratio the API would have
if the step were everything it did before the store. Prints medians of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from api_bulk import bulk_body
from tether.model import Catalog, Rules
from tether.model.bulk import BulkRequest, apply_bulk
from tether.service.ids import RandomIds
from tether.service.models import change_ops
from tether.store import Op, open_store

# -- the least pydantic: the request's shape, constraints in pydantic-core only -------------

_Name = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")]
_Mac = Annotated[
    str, StringConstraints(to_lower=True, pattern=r"^[0-9a-f]{2}([:-][0-9a-f]{2}){5}$")
]
_Octet = r"(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IP = Annotated[str, StringConstraints(pattern=rf"^{_Octet}(\.{_Octet}){{3}}$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Subnet(_Strict):
    cidr: str


class _Network(_Strict):
    name: _Name
    tenant: _Name = "default"
    vni: int | None = None
    subnets: list[_Subnet] = []


class _Port(_Strict):
    network: str
    name: _Name | None = None
    tenant: _Name | None = None
    mac: _Mac | None = None
    ips: list[_IP] | None = None
    chassis: str | None = None


class _NetworkItem(_Strict):
    kind: Literal["network"]
    op: Literal["create", "delete"] = "create"
    spec: _Network | None = None


class _PortItem(_Strict):
    kind: Literal["port"]
    op: Literal["create", "delete"] = "create"
    spec: _Port | None = None


class _Request(_Strict):
    items: list[Annotated[_NetworkItem | _PortItem, Field(discriminator="kind")]]


# -- the bare path ---------------------------------------------------------------------------


def bare_rows(body: bytes) -> list[tuple[str, bytes]]:
    """The request as stored rows with nothing but dicts and a duplicate check."""
    items = orjson.loads(body)["items"]
    random = os.urandom(16 * len(items)).hex()
    taken: dict[tuple[str, ...], str] = {}
    rows: list[tuple[str, bytes]] = []
    for index, item in enumerate(items):
        spec = item["spec"]
        obj_id = random[32 * index : 32 * index + 32]
        tenant = spec["tenant"]
        obj: dict[str, Any]
        if item["kind"] == "port":
            network = taken[("name", "networks", tenant, spec["network"])]
            mac = spec["mac"].lower()
            keys = [("mac", network, mac), ("name", "ports", tenant, spec["name"])]
            keys += [("ip", network, ip) for ip in spec["ips"]]
            obj = {
                "id": obj_id,
                "tenant": tenant,
                "name": spec["name"],
                "network": network,
                "mac": mac,
                "ips": spec["ips"],
                "chassis": None,
                "status": {"state": "pending", "message": ""},
            }
        else:
            keys = [("name", "networks", tenant, spec["name"]), ("vni", str(spec["vni"]))]
            obj = {"id": obj_id, "status": {"state": "pending", "message": ""}, **spec}
        for key in keys:
            if key in taken:
                raise ValueError(f"items[{index}]: {key} is taken")
            taken[key] = obj_id
        rows.append((f"/tether/model/{item['kind']}s/{obj_id}", orjson.dumps(obj)))
    return rows


# -- timing ----------------------------------------------------------------------------------


def tether_ops(body: bytes) -> list[Op]:
    """The rows tether itself writes for the request (the real path, untimed)."""
    catalog = Catalog()
    catalog.begin()
    apply_bulk(Rules(catalog, RandomIds()), BulkRequest.model_validate_json(body).items)
    return change_ops(catalog.changes())


async def time_store(ops: list[Op], db: Path) -> float:
    store = await open_store(f"sqlite:{db}")
    try:
        started = time.perf_counter()
        await store.txn((), ops)
        return time.perf_counter() - started
    finally:
        await store.close()


def median_time(step: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--networks", type=int, default=1000)
    parser.add_argument("--ports", type=int, default=10, help="ports per network")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--smoke", action="store_true", help="50 networks, one run (CI)")
    args = parser.parse_args()
    if args.smoke:
        args.networks, args.runs = 50, 1
    gc.set_threshold(200_000, 50, 1000)  # as `tether serve` runs
    body = bulk_body(args.networks, args.ports)
    ops = tether_ops(body)
    workdir = Path(tempfile.mkdtemp(prefix="tether-bounds-"))
    try:
        store = statistics.median(
            asyncio.run(time_store(ops, workdir / f"floor-{run}.db")) for run in range(args.runs)
        )
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    rows = bare_rows(body)
    if len(rows) != len(ops) - 1:  # tether also writes its fence key
        raise SystemExit(f"the bare path made {len(rows)} rows, tether {len(ops) - 1}")
    steps = {
        "validation": lambda: BulkRequest.model_validate_json(body),
        "pydantic": lambda: _Request.model_validate_json(body),
        "bare": lambda: bare_rows(body),
    }
    print(
        f"bulk create: {len(rows)} objects, {len(body) / 1e6:.1f} MB request, median of {args.runs}"
    )
    print(f"{'step':11} {'time (s)':>9} {'(step + store) / store':>24}")
    print(f"{'store':11} {store:9.3f}")
    for name, step in steps.items():
        spent = median_time(step, args.runs)
        print(f"{name:11} {spent:9.3f} {(spent + store) / store:23.2f}x")


if __name__ == "__main__":
    main()
