"""The inventory shell orders claims from two watches that do not run in step (the model's
and the claims'): whichever arrives first, the locations come out the same. Driven without a
store: the model is a stand-in catalog, claims are fed as the claims watch would."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import orjson

from tether.model.resources import Gateway
from tether.service.inventory import MacInventory, claim_key
from tether.store import KeyValue

NET = "n1"
MAC = "02:00:00:00:00:01"
Step = Callable[[MacInventory, Any], None]


def gateway(name: str, group: str | None = None) -> Gateway:
    return Gateway(
        id=f"id-{name}", name=name, ovsdb="tcp:127.0.0.1:6640", physical_switch=name, ha_group=group
    )


class Models:
    def __init__(self) -> None:
        objects = {"gateways": {}, "chassis": {}, "ports": {}, "networks": {NET: object()}}
        self.catalog = SimpleNamespace(objects=objects, fence_revision=0, mod_revisions={})
        self.version = 0

    def reading(self) -> contextlib.AbstractContextManager[None]:
        return contextlib.nullcontext()


def model(gateways: list[Gateway], fence: int) -> Step:
    def step(inventory: MacInventory, models: Models) -> None:
        models.catalog.objects["gateways"] = {g.id: g for g in gateways}
        models.catalog.fence_revision = fence
        inventory._follow_devices()

    return step


def put(device: str, revision: int, role: str = "master") -> KeyValue:
    value = orjson.dumps({"role": role, "ip": None, "source": "switch"})
    return KeyValue(claim_key(device, NET, MAC), value, revision, revision, 1)


def delete(device: str, revision: int) -> KeyValue:
    return KeyValue(claim_key(device, NET, MAC), b"", 0, revision, 0)


def claims(
    revision: int, puts: tuple[KeyValue, ...] = (), deletes: tuple[KeyValue, ...] = ()
) -> Step:
    def step(inventory: MacInventory, _models: Models) -> None:
        inventory._take(list(puts), list(deletes), revision)

    return step


def owner(*steps: Step) -> str | None:
    models = Models()
    inventory = MacInventory(models, None, clock=lambda: 0.0)  # type: ignore[arg-type]
    for step in steps:
        step(inventory, models)
    where = inventory.located(NET).get(MAC)
    return where.device if where else None


def test_a_deleted_gateway_loses_a_claim_the_claims_watch_delivered_first() -> None:
    assert (
        owner(
            model([gateway("A"), gateway("B")], 10),
            claims(100, puts=(put("B", 100),)),
            claims(130, puts=(put("A", 130),)),
            model([gateway("B")], 120),  # A deleted at 120: the model watch lags
            claims(140, deletes=(delete("A", 140),)),  # the prefix delete that follows
        )
        == "B"
    )


def test_leaving_an_ha_group_drops_the_derived_slave_claim() -> None:
    assert (
        owner(
            model([gateway("A", "g"), gateway("B", "g")], 10),
            claims(150, puts=(put("A", 150),)),
            model([gateway("A", "g"), gateway("B")], 120),
            claims(200, deletes=(delete("A", 200),)),
        )
        is None
    ), "B was only A's standby: when A lets go, the MAC has no location"


def test_a_late_own_master_claim_beats_an_older_master() -> None:
    assert (
        owner(
            model([gateway("A", "g"), gateway("B")], 10),
            claims(100, puts=(put("A", 100),)),
            model([gateway("A", "g"), gateway("B", "g")], 200),  # B joins: a slave of A
            claims(190, puts=(put("B", 190),)),  # B's own master claim, newer than A's
        )
        == "B"
    )


def test_claims_of_a_device_not_yet_known_keep_their_order() -> None:
    assert (
        owner(
            model([gateway("A")], 10),
            claims(101, puts=(put("X", 101),), deletes=(delete("X", 100),)),
            model([gateway("A"), gateway("X")], 150),
        )
        == "X"
    )


def test_a_deleted_network_takes_its_claims_along() -> None:
    def drop_network(inventory: MacInventory, models: Models) -> None:
        models.catalog.objects["networks"] = {}
        models.catalog.fence_revision = 300
        inventory._follow_devices()

    assert (
        owner(model([gateway("A")], 10), claims(100, puts=(put("A", 100),)), drop_network) is None
    )
