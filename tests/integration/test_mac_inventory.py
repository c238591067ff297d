"""The MAC inventory end to end: three switches on real ovsdb-servers and chassis-bound
ports. Switches "learn" MACs the way their own agent would — by inserting
``Ucast_Macs_Local`` rows — and every test asserts what the *other* switches hold in
``Ucast_Macs_Remote`` afterwards: one reconciled location per MAC, everywhere."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemons import OvsdbServer
from tests.integration.test_vtep_agent import make_switch, switch_rows
from tests.servers import running_api
from tether.logical import BatchPolicy, Damping
from tether.ovsdb import Client
from tether.service.inventory import InventorySettings

TORS = {"tor1": "192.0.2.1", "tor2": "192.0.2.2", "tor3": "192.0.2.3"}
HV = {"hv1": "192.0.2.101", "hv2": "192.0.2.102"}
VM = "02:00:00:00:00:01"
WAIT = 20.0


@dataclass
class Fabric:
    http: httpx.Client
    switches: dict[str, OvsdbServer]
    network: str = ""
    local: dict[tuple[str, str], str] = field(default_factory=dict)
    """(switch, MAC) -> Ucast_Macs_Local uuid."""

    def learn(self, tor: str, mac: str, ip: str = "") -> None:
        """The switch's agent learned ``mac`` on a bound port: a Ucast_Macs_Local row."""
        ls = self._logical_switch(tor)
        found = _transact(
            self.switches[tor],
            [{"op": "select", "table": "Physical_Locator", "where": [["dst_ip", "==", TORS[tor]]]}],
        )[0]["rows"]
        locator = ["uuid", found[0]["_uuid"][1]] if found else ["named-uuid", "self"]
        row: dict[str, Any] = {"MAC": mac, "logical_switch": ["uuid", ls], "locator": locator}
        if ip:
            row["ipaddr"] = ip
        ops: list[dict[str, Any]] = []
        if not found:
            ops.append(
                {
                    "op": "insert",
                    "table": "Physical_Locator",
                    "uuid-name": "self",
                    "row": {"dst_ip": TORS[tor], "encapsulation_type": "vxlan_over_ipv4"},
                }
            )
        ops.append({"op": "insert", "table": "Ucast_Macs_Local", "row": row})
        result = _transact(self.switches[tor], ops)
        self.local[(tor, mac)] = result[-1]["uuid"][1]

    def forget(self, tor: str, mac: str) -> None:
        """The switch aged the MAC out."""
        uuid = self.local.pop((tor, mac))
        _transact(
            self.switches[tor],
            [
                {
                    "op": "delete",
                    "table": "Ucast_Macs_Local",
                    "where": [["_uuid", "==", ["uuid", uuid]]],
                }
            ],
        )

    def remote(self, tor: str) -> dict[str, str]:
        """MAC -> locator IP in the switch's Ucast_Macs_Remote for the network."""
        rows = switch_rows(self.switches[tor]).get(self.network)
        return dict(rows["macs"]) if rows else {}

    def wait(self, what: str, check: Callable[[], bool], timeout: float = WAIT) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            assert time.monotonic() < deadline, f"not within {timeout} s: {what}"
            time.sleep(0.05)

    def points_at(self, mac: str, ip: str, tors: tuple[str, ...]) -> bool:
        return all(self.remote(tor).get(mac) == ip for tor in tors)

    def absent_on(self, mac: str, tors: tuple[str, ...]) -> bool:
        return all(mac not in self.remote(tor) for tor in tors)

    def show(self, mac: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/macs/{mac}", params={"network": "web"})
        answer.raise_for_status()
        entries = answer.json()
        assert len(entries) == 1
        return dict(entries[0])

    def _logical_switch(self, tor: str) -> str:
        rows = _transact(
            self.switches[tor],
            [{"op": "select", "table": "Logical_Switch", "where": [["name", "==", self.network]]}],
        )
        assert rows[0]["rows"], f"{tor} has no logical switch for the network yet"
        return str(rows[0]["rows"][0]["_uuid"][1])


def _transact(server: OvsdbServer, ops: list[dict[str, Any]]) -> list[Any]:
    async def run() -> list[Any]:
        async with Client(server.unix) as client:
            return await client.transact("hardware_vtep", ops)

    results = asyncio.run(run())
    for result in results:
        assert "error" not in result, result
    return results


def _build(http: httpx.Client, switches: dict[str, OvsdbServer]) -> Fabric:
    http.post("/v1/networks", json={"name": "web", "vni": 5001}).raise_for_status()
    for name, ip in HV.items():
        http.post("/v1/chassis", json={"name": name, "tunnel_ip": ip}).raise_for_status()
    for name, ip in TORS.items():
        body: dict[str, Any] = {"name": name, "ovsdb": switches[name].unix, "tunnel_ip": ip}
        if name in ("tor1", "tor2"):
            body["ha_group"] = "pair"  # a VRRP / MLAG pair
        http.post("/v1/gateways", json=body).raise_for_status()
        http.post(
            f"/v1/gateways/{name}/bindings", json={"port": "eth1", "vlan": 10, "network": "web"}
        ).raise_for_status()
    fabric = Fabric(http, switches, network=http.get("/v1/networks/web").json()["id"])
    fabric.wait(
        "every switch carries the network",
        lambda: all(fabric.network in switch_rows(s) for s in switches.values()),
    )
    return fabric


@pytest.fixture
def switches(tmp_path: Path) -> Iterator[dict[str, OvsdbServer]]:
    started: dict[str, OvsdbServer] = {}
    try:
        for name, ip in TORS.items():
            started[name] = make_switch(tmp_path / name, name, ("eth1",), tunnel_ip=ip)
        yield started
    finally:
        for server in started.values():
            server.kill()


@pytest.fixture
def fabric(tmp_path: Path, switches: dict[str, OvsdbServer]) -> Iterator[Fabric]:
    settings = InventorySettings(damping=Damping(max_moves=3, window=1.5))
    with (
        running_api(f"sqlite:{tmp_path / 'tether.db'}", inventory=settings) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        yield _build(http, switches)


def test_a_learned_mac_reaches_the_other_switches_and_not_its_own(fabric: Fabric) -> None:
    fabric.learn("tor3", "02:00:00:00:10:01", "10.0.0.5")
    fabric.wait(
        "tor1 and tor2 point at tor3",
        lambda: fabric.points_at("02:00:00:00:10:01", TORS["tor3"], ("tor1", "tor2")),
    )
    assert "02:00:00:00:10:01" not in fabric.remote("tor3"), "never on its own remote table"
    listed = fabric.http.get("/v1/macs", params={"device": "tor3"}).json()["items"]
    assert [(m["mac"], m["ip"], m["location"]["tunnel_ip"]) for m in listed] == [
        ("02:00:00:00:10:01", "10.0.0.5", TORS["tor3"])
    ]
    # a chassis-bound port is a claim of its chassis, on every switch
    fabric.http.post(
        "/v1/ports", json={"network": "web", "mac": VM, "chassis": "hv1"}
    ).raise_for_status()
    fabric.wait("every switch points at hv1", lambda: fabric.points_at(VM, HV["hv1"], tuple(TORS)))
    # the switch ages the MAC out: it disappears everywhere
    fabric.forget("tor3", "02:00:00:00:10:01")
    fabric.wait("gone", lambda: fabric.absent_on("02:00:00:00:10:01", tuple(TORS)))


def test_vrrp_failover_follows_the_last_reporter_and_ignores_a_late_delete(fabric: Fabric) -> None:
    vmac = "00:00:5e:00:01:01"  # the VRRP virtual router MAC
    fabric.learn("tor1", vmac)
    fabric.wait("tor3 points at tor1", lambda: fabric.points_at(vmac, TORS["tor1"], ("tor3",)))
    # the standby learns the master's location like everyone else
    fabric.wait("tor2 points at tor1", lambda: fabric.points_at(vmac, TORS["tor1"], ("tor2",)))
    shown = fabric.show(vmac)
    assert shown["location"]["device"] == "tor1"
    assert {(c["device"], c["role"], c["derived"]) for c in shown["claims"]} == {
        ("tor1", "master", False),
        ("tor2", "slave", True),
    }

    fabric.learn("tor2", vmac)  # failover: tor2 reports it last
    fabric.wait(
        "every other VTEP points at tor2",
        lambda: fabric.points_at(vmac, TORS["tor2"], ("tor1", "tor3")),
    )
    assert vmac not in fabric.remote("tor2")
    assert fabric.show(vmac)["rule"] == "newest-master"

    fabric.forget("tor1", vmac)  # tor1's late delete
    revision = fabric.http.get("/healthz").json()["revision"]
    fabric.wait("the delete was read", lambda: _claims_read(fabric, revision))
    shown = fabric.show(vmac)
    assert shown["location"]["device"] == "tor2", "a delete from a non-owner changes nothing"
    assert fabric.points_at(vmac, TORS["tor2"], ("tor1", "tor3"))


def test_vm_migration_between_racks_and_between_hypervisors(fabric: Fabric) -> None:
    mac = "02:00:00:00:20:01"
    fabric.learn("tor1", mac)
    fabric.wait("at tor1", lambda: fabric.points_at(mac, TORS["tor1"], ("tor2", "tor3")))
    fabric.forget("tor1", mac)  # the VM leaves rack 1 ...
    fabric.learn("tor3", mac)  # ... and shows up behind tor3
    fabric.wait("at tor3", lambda: fabric.points_at(mac, TORS["tor3"], ("tor1", "tor2")))
    assert mac not in fabric.remote("tor3")

    port = fabric.http.post("/v1/ports", json={"network": "web", "mac": VM, "chassis": "hv1"})
    port.raise_for_status()
    fabric.wait("at hv1", lambda: fabric.points_at(VM, HV["hv1"], tuple(TORS)))
    fabric.http.patch(f"/v1/ports/{port.json()['id']}", json={"chassis": "hv2"}).raise_for_status()
    fabric.wait("at hv2", lambda: fabric.points_at(VM, HV["hv2"], tuple(TORS)))


def test_three_masters_the_newest_wins(fabric: Fabric) -> None:
    mac = "02:00:00:00:30:01"
    for tor in ("tor2", "tor1", "tor3"):
        fabric.learn(tor, mac)
    fabric.wait("at tor3", lambda: fabric.points_at(mac, TORS["tor3"], ("tor1", "tor2")))
    assert mac not in fabric.remote("tor3")
    shown = fabric.show(mac)
    assert shown["rule"] == "newest-master" and shown["location"]["device"] == "tor3"
    assert [c["device"] for c in shown["claims"]] == ["tor2", "tor1", "tor3"], "oldest first"
    assert "tether_mac_conflicts" in fabric.http.get("/metrics").text


def test_no_master_is_designated_by_priority_then_name(fabric: Fabric) -> None:
    mac = "02:00:00:00:40:01"
    for device in ("hv2", "hv1"):
        fabric.http.post(
            "/v1/macs/claims",
            json={"device": device, "network": "web", "mac": mac, "role": "slave"},
        ).raise_for_status()
    fabric.wait("hv1 by name", lambda: fabric.points_at(mac, HV["hv1"], tuple(TORS)))
    assert fabric.show(mac)["rule"] == "name"

    other = "02:00:00:00:40:02"
    for device in ("tor1", "tor3"):
        fabric.http.post(
            "/v1/macs/claims",
            json={"device": device, "network": "web", "mac": other, "role": "slave"},
        ).raise_for_status()
    fabric.wait("tor1 by name", lambda: fabric.points_at(other, TORS["tor1"], ("tor2", "tor3")))
    fabric.http.patch("/v1/gateways/tor3", json={"priority": 200}).raise_for_status()
    fabric.wait("tor3 by priority", lambda: fabric.points_at(other, TORS["tor3"], ("tor1", "tor2")))
    assert fabric.show(other)["rule"] == "ha-priority"


def test_a_flapping_mac_is_held_then_released(fabric: Fabric) -> None:
    mac = "02:00:00:00:50:01"
    fabric.learn("tor1", mac)
    fabric.wait("at tor1", lambda: fabric.points_at(mac, TORS["tor1"], ("tor3",)))
    where = "tor1"
    for move in range(4):  # four moves within the 1.5 s window; damping allows three
        # a loop: each switch keeps seeing the MAC and learns it afresh, in turn
        there = "tor3" if where == "tor1" else "tor1"
        if (there, mac) in fabric.local:
            fabric.forget(there, mac)
        fabric.learn(there, mac)
        if move < 3:
            fabric.wait(f"move {move + 1}", lambda t=there: _owner(fabric, mac) == t, timeout=1)
        where = there
    fabric.wait("damped", lambda: fabric.show(mac)["damped"], timeout=1.0)
    shown = fabric.show(mac)
    assert shown["rule"] == "damped", shown
    assert (shown["location"]["device"], where) == ("tor3", "tor1"), "held where it was"
    assert fabric.points_at(mac, TORS["tor3"], ("tor2",)), "the switches keep the held location"
    listed = fabric.http.get("/v1/macs", params={"network": "web"}).json()["items"]
    assert [m["flags"] for m in listed if m["mac"] == mac] == [["damped"]]
    # still for the window: released to the newest master
    fabric.wait("released", lambda: fabric.show(mac)["location"]["device"] == where, timeout=10)
    assert not fabric.show(mac)["damped"]
    others = tuple(t for t in ("tor1", "tor2", "tor3") if t != where)
    fabric.wait("the switches follow", lambda: fabric.points_at(mac, TORS[where], others))


def test_a_gateway_deleted_mid_flight_withdraws_its_claims(fabric: Fabric) -> None:
    macs = [f"02:00:00:00:60:{i:02x}" for i in range(20)]
    for mac in macs:
        fabric.learn("tor3", mac)
    fabric.wait(
        "all on tor1", lambda: all(fabric.remote("tor1").get(m) == TORS["tor3"] for m in macs)
    )
    fabric.learn("tor3", "02:00:00:00:60:ff")  # mid-flight: still being collected
    fabric.http.delete("/v1/gateways/tor3", params={"force": True}).raise_for_status()
    fabric.wait(
        "no VTEP points at tor3",
        lambda: all(TORS["tor3"] not in fabric.remote(t).values() for t in ("tor1", "tor2")),
    )
    assert fabric.http.get("/v1/macs", params={"device": "tor3"}).json()["total"] == 0
    time.sleep(0.5)  # nothing comes back from the deleted gateway's last reports
    assert all(TORS["tor3"] not in fabric.remote(t).values() for t in ("tor1", "tor2"))


def _owner(fabric: Fabric, mac: str) -> str | None:
    answer = fabric.http.get(f"/v1/macs/{mac}", params={"network": "web"})
    if answer.status_code == 404:
        return None
    location = answer.json()[0]["location"]
    return str(location["device"]) if location else None


def _claims_read(fabric: Fabric, revision: int) -> bool:
    return int(fabric.http.get("/v1/status").json()["macs"]["revision"]) >= revision


def _final_state(tmp_path: Path, switches: dict[str, OvsdbServer], policy: BatchPolicy) -> Any:
    settings = InventorySettings(batch=policy, damping=None)
    tmp_path.mkdir()
    with (
        running_api(f"sqlite:{tmp_path / 'tether.db'}", inventory=settings) as url,
        httpx.Client(base_url=url, timeout=30) as http,
    ):
        fabric = _build(http, switches)
        for i in range(30):
            fabric.learn(("tor1", "tor2", "tor3")[i % 3], f"02:00:00:00:70:{i:02x}")
        for i in range(0, 30, 3):  # ten of them move to the next switch
            fabric.forget(("tor1", "tor2", "tor3")[i % 3], f"02:00:00:00:70:{i:02x}")
            fabric.learn(("tor1", "tor2", "tor3")[(i + 1) % 3], f"02:00:00:00:70:{i:02x}")
        fabric.learn("tor1", "00:00:5e:00:01:07")
        fabric.learn("tor2", "00:00:5e:00:01:07")
        expected = 31
        fabric.wait(
            "every MAC located",
            lambda: (
                http.get("/v1/macs").json()["total"] == expected
                and http.get("/v1/status").json()["macs"]["pending"] == 0
            ),
        )
        time.sleep(1.0)  # let the switches settle
        fabric.wait("the switches agree", lambda: _settled(fabric))
        macs = {m["mac"]: m["location"]["device"] for m in http.get("/v1/macs").json()["items"]}
        return macs, {tor: fabric.remote(tor) for tor in TORS}


def _settled(fabric: Fabric) -> bool:
    macs = fabric.http.get("/v1/macs").json()["items"]
    for tor in TORS:
        want = {
            m["mac"]: m["location"]["tunnel_ip"] for m in macs if m["location"]["device"] != tor
        }
        if fabric.remote(tor) != want:
            return False
    return True


def test_batch_and_real_time_collection_agree(tmp_path: Path) -> None:
    results = []
    for i, policy in enumerate((BatchPolicy.real_time(), BatchPolicy(max_claims=8, max_wait=0.3))):
        switches = {
            name: make_switch(tmp_path / f"{name}-{i}", name, ("eth1",), tunnel_ip=ip)
            for name, ip in TORS.items()
        }
        try:
            results.append(_final_state(tmp_path / f"run{i}", switches, policy))
        finally:
            for server in switches.values():
                server.kill()
    (real_macs, real_remote), (batch_macs, batch_remote) = results
    assert real_macs == batch_macs and len(real_macs) == 31
    assert real_remote == batch_remote
    assert real_macs["00:00:5e:00:01:07"] == "tor2"
