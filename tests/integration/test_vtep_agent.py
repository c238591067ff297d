"""The VTEP agent inside ``tether serve`` against a real ovsdb-server holding a switch's
``hardware_vtep`` database: what the API says reaches the switch's rows, in every mode,
within the row limit, and leaves again."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.daemons import OvsdbServer, OvsdbTls
from tests.faulty_ovsdb import FAULTS, faulty_switch
from tests.servers import running_api
from tether.ovsdb import Client
from tether.vtep.schema import with_state_consistent

VTEP_SCHEMA = Path("/usr/share/openvswitch/vtep.ovsschema")


def make_switch(
    workdir: Path,
    name: str = "tor1",
    ports: tuple[str, ...] = ("eth1", "eth2"),
    *,
    state_consistent: bool = True,
    tls: OvsdbTls | None = None,
    tunnel_ip: str = "192.0.2.21",
) -> OvsdbServer:
    """An ovsdb-server with the hardware_vtep schema (+ state_consistent) and one switch."""
    workdir.mkdir(parents=True, exist_ok=True)
    schema = workdir / "vtep.ovsschema"
    original = json.loads(VTEP_SCHEMA.read_text())
    schema.write_text(json.dumps(with_state_consistent(original) if state_consistent else original))
    server = OvsdbServer(workdir, schema=schema, tls=tls)
    server.start()
    ops: list[dict[str, Any]] = [
        {"op": "insert", "table": "Physical_Port", "row": {"name": p}, "uuid-name": f"p{i}"}
        for i, p in enumerate(ports)
    ]
    ops.append(
        {
            "op": "insert",
            "table": "Physical_Switch",
            "uuid-name": "sw",
            "row": {
                "name": name,
                "tunnel_ips": tunnel_ip,
                "ports": ["set", [["named-uuid", f"p{i}"] for i in range(len(ports))]],
            },
        }
    )
    ops.append({"op": "insert", "table": "Global", "row": {"switches": ["named-uuid", "sw"]}})
    asyncio.run(_transact(server.unix, ops))
    return server


async def _transact(address: str, ops: list[dict[str, Any]]) -> list[Any]:
    async with Client(address) as client:
        return await client.transact("hardware_vtep", ops)


async def _dump(address: str) -> dict[str, list[dict[str, Any]]]:
    tables = [
        "Logical_Switch",
        "Ucast_Macs_Remote",
        "Mcast_Macs_Remote",
        "Physical_Port",
        "Physical_Locator",
    ]
    async with Client(address) as client:
        results = await client.transact(
            "hardware_vtep", [{"op": "select", "table": t, "where": []} for t in tables]
        )
    return {t: r["rows"] for t, r in zip(tables, results, strict=True)}


def switch_rows(server: OvsdbServer) -> dict[str, Any]:
    """Logical switches by name with their MACs (-> locator IP), flood set and bindings."""
    dump = asyncio.run(_dump(server.unix))
    locator = {row["_uuid"][1]: row["dst_ip"] for row in dump["Physical_Locator"]}
    switches: dict[str, Any] = {}
    by_uuid = {}
    for row in dump["Logical_Switch"]:
        entry = {"vni": row["tunnel_key"], "macs": {}, "flood": None, "bindings": set()}
        switches[row["name"]] = entry
        by_uuid[row["_uuid"][1]] = entry
    for row in dump["Ucast_Macs_Remote"]:
        by_uuid[row["logical_switch"][1]]["macs"][row["MAC"]] = locator[row["locator"][1]]
    for row in dump["Mcast_Macs_Remote"]:
        by_uuid[row["logical_switch"][1]]["flood"] = row["MAC"]
    for row in dump["Physical_Port"]:
        for vlan, ls in row["vlan_bindings"][1]:
            by_uuid[ls[1]]["bindings"].add((row["name"], vlan))
    return switches


def wait_realized(http: httpx.Client, gateway: str, timeout: float = 30) -> dict[str, Any]:
    """Wait until the gateway realized everything the model holds now."""
    revision = http.get("/v1/status").json()["model_revision"]
    deadline = time.monotonic() + timeout
    while True:
        runtime = http.get(f"/v1/gateways/{gateway}").json()["runtime"]
        if runtime and runtime["state"] == "realized" and runtime["desired_generation"] >= revision:
            return dict(runtime)
        assert time.monotonic() < deadline, f"gateway never realized revision {revision}: {runtime}"
        time.sleep(0.05)


@pytest.fixture
def fabric(tmp_path: Path) -> Iterator[tuple[httpx.Client, OvsdbServer]]:
    switch = make_switch(tmp_path / "tor1")
    try:
        with (
            running_api(f"sqlite:{tmp_path / 'tether.db'}") as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            yield http, switch
    finally:
        switch.kill()


@pytest.mark.parametrize("mode", ["bind-last", "lock", "state-consistent"])
def test_the_model_reaches_the_switch_and_leaves_it(
    fabric: tuple[httpx.Client, OvsdbServer], mode: str
) -> None:
    http, switch = fabric
    http.post(
        "/v1/networks", json={"name": "web", "vni": 5001, "subnets": [{"cidr": "10.0.1.0/24"}]}
    ).raise_for_status()
    http.post("/v1/chassis", json={"name": "hv1", "tunnel_ip": "192.0.2.11"}).raise_for_status()
    http.post("/v1/chassis", json={"name": "hv2", "tunnel_ip": "192.0.2.12"}).raise_for_status()
    macs = {}
    for i in range(24):
        mac = f"02:00:00:00:01:{i:02x}"
        hv = "hv1" if i % 2 else "hv2"
        http.post(
            "/v1/ports", json={"network": "web", "mac": mac, "chassis": hv}
        ).raise_for_status()
        macs[mac] = "192.0.2.11" if hv == "hv1" else "192.0.2.12"
    http.post(
        "/v1/gateways",
        json={
            "name": "tor1",
            "ovsdb": switch.tcp,
            "tunnel_ip": "192.0.2.21",
            "mode": mode,
            "max_rows_per_txn": 3,
        },
    ).raise_for_status()
    http.post(
        "/v1/gateways/tor1/bindings", json={"port": "eth1", "vlan": 100, "network": "web"}
    ).raise_for_status()
    runtime = wait_realized(http, "tor1")
    network_id = http.get("/v1/networks/web").json()["id"]
    rows = switch_rows(switch)
    assert rows == {
        network_id: {"vni": 5001, "macs": macs, "flood": "unknown-dst", "bindings": {("eth1", 100)}}
    }
    assert runtime["transactions"] >= 10, "3 rows per transaction: at least ten transactions"
    assert runtime["desired_generation"] == runtime["realized_generation"] > 0
    assert runtime["bound_ports"] == ["eth1"] and runtime["rows"]["Ucast_Macs_Remote"] == 24
    (binding,) = http.get("/v1/gateways/tor1/bindings").json()["items"]
    assert binding["status"] == {"state": "realized", "message": ""}
    web = http.get("/v1/networks/web").json()["status"]
    assert web["state"] == "pending", "realized on the switch, not on its ports' chassis"
    assert (
        web["message"].startswith("port ")
        and "has not reported yet (and 23 more)" in web["message"]
    )

    # a move and an unbind reach the switch too
    http.patch("/v1/chassis/hv1", json={"tunnel_ip": "192.0.2.13"}).raise_for_status()
    wait_realized(http, "tor1")
    assert set(switch_rows(switch)[network_id]["macs"].values()) == {"192.0.2.12", "192.0.2.13"}
    http.delete("/v1/gateways/tor1/bindings/eth1/100").raise_for_status()
    wait_realized(http, "tor1")
    assert switch_rows(switch) == {}, "tether removes what it owns and no longer wants"


def test_a_missing_port_and_an_unreachable_switch_are_reported(
    fabric: tuple[httpx.Client, OvsdbServer], tmp_path: Path
) -> None:
    http, switch = fabric
    http.post("/v1/networks", json={"name": "web", "vni": 5001}).raise_for_status()
    http.post(
        "/v1/gateways", json={"name": "tor1", "ovsdb": switch.tcp, "tunnel_ip": "192.0.2.21"}
    ).raise_for_status()
    http.post(
        "/v1/gateways/tor1/bindings", json={"port": "eth9", "vlan": 100, "network": "web"}
    ).raise_for_status()
    http.post(
        "/v1/gateways",
        json={"name": "tor2", "ovsdb": f"unix:{tmp_path}/nothing.sock", "tunnel_ip": "192.0.2.22"},
    ).raise_for_status()
    deadline = time.monotonic() + 20
    while True:
        status = http.get("/v1/status").json()
        errors = {e["name"]: e["message"] for e in status["errors"]}
        if "tor1" in errors and "tor2" in errors:
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.1)
    assert "eth9" in errors["tor1"]
    assert http.get("/v1/gateways/tor2").json()["status"]["state"] == "error"
    web = http.get("/v1/networks/web").json()["status"]
    assert web["state"] == "error" and web["message"].startswith("gateway tor1: ")
    assert "eth9" in web["message"]
    (binding,) = http.get("/v1/gateways/tor1/bindings").json()["items"]
    assert binding["status"]["state"] == "error" and "eth9" in binding["status"]["message"]


def test_state_consistent_needs_the_column_or_an_online_conversion(tmp_path: Path) -> None:
    switch = make_switch(tmp_path / "old", state_consistent=False)
    try:
        with (
            running_api(f"sqlite:{tmp_path / 'tether.db'}") as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            body = {
                "name": "tor1",
                "ovsdb": switch.tcp,
                "tunnel_ip": "192.0.2.21",
                "mode": "state-consistent",
            }
            refused = http.post("/v1/gateways", json=body)
            assert refused.status_code == 400 and refused.json()["error"]["field"] == "mode"
            assert "--convert-schema" in refused.json()["error"]["message"]
            assert http.get("/v1/gateways").json()["items"] == []
            http.post(
                "/v1/gateways", json=body, params={"convert_schema": "true"}
            ).raise_for_status()
            columns = asyncio.run(_columns(switch.unix))
            assert "state_consistent" in columns
            http.post("/v1/networks", json={"name": "web", "vni": 5001}).raise_for_status()
            http.post(
                "/v1/gateways/tor1/bindings", json={"port": "eth1", "vlan": 7, "network": "web"}
            ).raise_for_status()
            wait_realized(http, "tor1")
            assert [s["bindings"] for s in switch_rows(switch).values()] == [{("eth1", 7)}]
            unreachable = dict(
                body, name="tor2", ovsdb=f"unix:{tmp_path}/none.sock", tunnel_ip="192.0.2.22"
            )
            answer = http.post("/v1/gateways", json=unreachable)
            assert answer.status_code == 409 and answer.json()["error"]["field"] == "ovsdb"
    finally:
        switch.kill()


async def _columns(address: str) -> set[str]:
    async with Client(address) as client:
        schema = await client.get_schema("hardware_vtep")
    return set(schema.tables["Logical_Switch"].columns)


@pytest.mark.parametrize("fault", FAULTS)
def test_a_misbehaving_switch_is_in_error_while_the_others_converge(
    tmp_path: Path, fault: str
) -> None:
    good = make_switch(tmp_path / "good", name="good")
    bad = make_switch(tmp_path / "bad", name="bad")
    try:
        with (
            faulty_switch(tmp_path / "bad.sock", bad.socket_path, fault) as bad_address,
            running_api(f"sqlite:{tmp_path / 'tether.db'}") as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            http.post("/v1/networks", json={"name": "web", "vni": 5001}).raise_for_status()
            for name, address, ip in (
                ("good", good.tcp, "192.0.2.21"),
                ("bad", bad_address, "192.0.2.22"),
            ):
                http.post(
                    "/v1/gateways", json={"name": name, "ovsdb": address, "tunnel_ip": ip}
                ).raise_for_status()
                http.post(
                    f"/v1/gateways/{name}/bindings",
                    json={"port": "eth1", "vlan": 9, "network": "web"},
                ).raise_for_status()
            wait_realized(http, "good")
            assert [s["bindings"] for s in switch_rows(good).values()] == [{("eth1", 9)}]
            deadline = time.monotonic() + 20
            while (
                runtime := http.get("/v1/gateways/bad").json()["runtime"]
            ) is None or not runtime["last_error"]:
                assert time.monotonic() < deadline, runtime
                time.sleep(0.05)
            expected = {
                "error": "resources exhausted",
                "refuse": "refuses this row",
                "drop": "",
                "garbage": "",
            }[fault]
            assert expected in runtime["last_error"]
            assert http.get("/v1/gateways/bad").json()["status"]["state"] == "error"
            assert switch_rows(bad) == {}, "nothing reached the misbehaving switch"
            # the healthy gateway keeps converging while the other one fails
            http.post("/v1/networks", json={"name": "db", "vni": 5002}).raise_for_status()
            http.post(
                "/v1/gateways/good/bindings", json={"port": "eth2", "vlan": 10, "network": "db"}
            ).raise_for_status()
            wait_realized(http, "good")
            assert len(switch_rows(good)) == 2
    finally:
        good.kill()
        bad.kill()


def test_an_ssl_gateway_uses_the_configured_certificates(tmp_path: Path) -> None:
    from tests.integration.test_ovsdb_client import _make_pki

    (tmp_path / "pki").mkdir()
    server_tls, client_tls, _ = _make_pki(tmp_path / "pki")
    switch = make_switch(tmp_path / "tor1", tls=server_tls)
    try:
        store = f"sqlite:{tmp_path / 'tether.db'}"
        with (
            running_api(store, ovsdb_tls=client_tls) as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            http.post("/v1/networks", json={"name": "web", "vni": 5001}).raise_for_status()
            body = {
                "name": "tor1",
                "ovsdb": switch.ssl,
                "tunnel_ip": "192.0.2.21",
                "mode": "state-consistent",
            }
            http.post("/v1/gateways", json=body).raise_for_status()  # its schema read over TLS
            http.post(
                "/v1/gateways/tor1/bindings", json={"port": "eth1", "vlan": 5, "network": "web"}
            ).raise_for_status()
            wait_realized(http, "tor1")
            assert [s["bindings"] for s in switch_rows(switch).values()] == [{("eth1", 5)}]
        with (
            running_api(f"sqlite:{tmp_path / 'tether.db'}") as url,
            httpx.Client(base_url=url, timeout=30) as http,
        ):
            deadline = time.monotonic() + 20  # the same gateway without certificates: an error
            while "ssl" not in (
                (runtime := http.get("/v1/gateways/tor1").json()["runtime"]) or {}
            ).get("last_error", ""):
                assert time.monotonic() < deadline, runtime
                time.sleep(0.05)
            assert "ovsdb_private_key" in runtime["last_error"]
    finally:
        switch.kill()


def test_a_switch_that_dies_while_idle_is_reported_disconnected(
    fabric: tuple[httpx.Client, OvsdbServer],
) -> None:
    http, switch = fabric
    http.post(
        "/v1/gateways", json={"name": "tor1", "ovsdb": switch.tcp, "tunnel_ip": "192.0.2.21"}
    ).raise_for_status()
    connected(http, "tor1")
    switch.kill()  # nothing to do, no update coming: the agent must still notice
    deadline = time.monotonic() + 15
    while http.get("/v1/gateways/tor1").json()["runtime"]["connection"] != "disconnected":
        assert time.monotonic() < deadline, "a dead switch is still shown as connected"
        time.sleep(0.1)
    switch.start()  # the same database: back by itself
    connected(http, "tor1")


def connected(http: httpx.Client, gateway: str) -> None:
    deadline = time.monotonic() + 30
    while True:
        runtime = http.get(f"/v1/gateways/{gateway}").json()["runtime"]
        if runtime and runtime["connection"] == "connected" and runtime["state"] == "realized":
            return
        assert time.monotonic() < deadline, runtime
        time.sleep(0.05)


def test_a_deleted_gateway_takes_tethers_rows_off_its_switch(
    fabric: tuple[httpx.Client, OvsdbServer],
) -> None:
    http, switch = fabric
    http.post("/v1/networks", json={"name": "web", "vni": 5001}).raise_for_status()
    http.post(
        "/v1/gateways", json={"name": "tor1", "ovsdb": switch.tcp, "tunnel_ip": "192.0.2.21"}
    ).raise_for_status()
    http.post(
        "/v1/gateways/tor1/bindings", json={"port": "eth1", "vlan": 4, "network": "web"}
    ).raise_for_status()
    wait_realized(http, "tor1")
    assert len(switch_rows(switch)) == 1
    http.delete("/v1/gateways/tor1", params={"force": "true"}).raise_for_status()
    deadline = time.monotonic() + 15
    while switch_rows(switch):
        assert time.monotonic() < deadline, (
            "the switch keeps bridging a VLAN tether no longer manages"
        )
        time.sleep(0.1)
