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


async def test_two_controllers_and_a_late_one_locate_every_mac_alike(
    etcd_server: EtcdServer,
) -> None:
    """Claims ordered by store revision: controllers that saw them arrive in different
    batches — and one that only reads them afterwards — reach the same locations."""
    from tether.model.resources import ChassisCreate, GatewayCreate
    from tether.service.inventory import InventorySettings, MacInventory

    stores = [await open_store(etcd_server.url) for _ in range(3)]
    await stores[0].delete("", prefix=True)
    services = [ModelService(store, RandomIds()) for store in stores]
    await services[0].start()
    await services[1].start()
    network, _ = await services[0].write(lambda r: r.create_network(NetworkCreate(name="web")))
    for i in range(3):
        spec = ChassisCreate(name=f"hv{i}", tunnel_ip=f"192.0.2.{10 + i}")
        await services[0].write(lambda r, s=spec: r.create_chassis(s))
    for i in range(2):
        gateway = GatewayCreate(
            name=f"tor{i}", ovsdb="tcp:127.0.0.1:1", ha_group="pair", priority=100 + i
        )
        await services[1].write(lambda r, g=gateway: r.create_gateway(g))
    inventories = [MacInventory(services[i], stores[i], InventorySettings()) for i in range(2)]
    for inventory in inventories:
        await inventory.start()
    devices = ["hv0", "hv1", "hv2", "tor0", "tor1"]
    try:
        writes = []
        for m in range(40):
            mac = f"02:00:00:00:00:{m:02x}"
            for k in range(1 + m % 3):
                device = devices[(m + k * 2) % len(devices)]
                role = "slave" if (m + k) % 4 == 0 else "master"
                writer = inventories[(m + k) % 2]
                writes.append(writer.put_claim(device, network.id, mac, role, None))
        await asyncio.gather(*writes)
        for m in range(0, 40, 5):  # some claims withdrawn again
            await inventories[m % 2].delete_claim(
                devices[m % len(devices)], network.id, f"02:00:00:00:00:{m:02x}"
            )
        revision = await stores[0].revision()
        for inventory in inventories:
            await inventory.wait_revision(revision)
        await asyncio.sleep(0.2)
        located = [inventory.entries() for inventory in inventories]
        assert located[0] == located[1]
        # a MAC loses its location only if the withdrawn claim was its only one
        assert len(located[0]) == 40 - sum(1 for m in range(0, 40, 5) if m % 3 == 0)
        # a controller started now reads the same claims from a listing
        await services[2].start()
        late = MacInventory(services[2], stores[2], InventorySettings())
        await late.start()
        await asyncio.sleep(0.2)
        assert late.entries() == located[0]
        await late.stop()
    finally:
        for inventory in inventories:
            await inventory.stop()
        for service in services:
            await service.stop()
        for store in stores:
            await store.close()


async def test_claims_that_arrive_before_their_device_wait_for_it(
    etcd_server: EtcdServer,
) -> None:
    """Another controller created a gateway and collected its MACs; this controller's model
    has not seen the gateway yet: the claims wait instead of being lost."""
    from tether.model.resources import GatewayCreate
    from tether.service.inventory import InventorySettings, MacInventory, claim_key

    store = await open_store(etcd_server.url)
    await store.delete("", prefix=True)
    service = ModelService(store, RandomIds())
    await service.start()
    network, _ = await service.write(lambda r: r.create_network(NetworkCreate(name="web")))
    inventory = MacInventory(service, store, InventorySettings())
    await inventory.start()
    try:
        mac = "02:00:00:00:00:99"
        value = b'{"role": "master", "ip": null, "source": "switch"}'
        revision = await store.put(claim_key("tor9", network.id, mac), value)
        await inventory.wait_revision(revision)
        assert inventory.entries() == [], "no such device yet"
        spec = GatewayCreate(name="tor9", ovsdb="tcp:127.0.0.1:1")
        await service.write(lambda r: r.create_gateway(spec))
        for _ in range(100):
            if inventory.entries():
                break
            await asyncio.sleep(0.02)
        assert [(m, where.device) for _, m, where in inventory.entries()] == [(mac, "tor9")]
    finally:
        await inventory.stop()
        await service.stop()
        await store.close()
