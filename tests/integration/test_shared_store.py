"""Two controllers on one etcd: the fence orders their writes, so uniqueness holds across them."""

from __future__ import annotations

import asyncio

import pytest

from tests.daemons import EtcdServer
from tether.model import ModelError
from tether.model.resources import NetworkCreate
from tether.service.ids import RandomIds
from tether.service.models import ModelService
from tether.store import open_store

pytestmark = [pytest.mark.anyio, pytest.mark.etcd]


async def test_two_controllers_never_share_a_vni_or_a_name(etcd_server: EtcdServer) -> None:
    stores = [await open_store(etcd_server.url) for _ in range(2)]
    await stores[0].delete("", prefix=True)
    services = [ModelService(store, RandomIds()) for store in stores]
    for service in services:
        await service.start()
    try:

        async def create(service: ModelService, name: str, vni: int | None) -> str:
            try:
                network, _ = await service.write(
                    lambda r: r.create_network(NetworkCreate(name=name, vni=vni))
                )
                return f"ok {network.vni}"
            except ModelError as exc:
                return f"{type(exc).__name__} {exc.field}"

        # the same explicit VNI and name from both controllers at once: exactly one wins
        results = await asyncio.gather(
            create(services[0], "web", 5001), create(services[1], "web", 5001)
        )
        assert sorted(results) == ["ConflictError name", "ok 5001"], results
        # allocated VNIs from both sides, interleaved: all distinct
        results = await asyncio.gather(*(create(services[i % 2], f"n{i}", None) for i in range(20)))
        vnis = [int(r.split()[1]) for r in results]
        assert all(r.startswith("ok") for r in results) and len(set(vnis)) == 20
        # each controller's catalog converges to the same model through the watch
        for _ in range(100):
            if all(s.catalog.count("networks") == 21 for s in services):
                break
            await asyncio.sleep(0.05)
        assert {frozenset(s.catalog.objects["networks"]) for s in services} == {
            frozenset(services[0].catalog.objects["networks"])
        }
        assert services[0].catalog.count("networks") == 21
    finally:
        for service in services:
            await service.stop()
        for store in stores:
            await store.close()
