"""The resource commands of the CLI against a real API server on a fresh SQLite store.

Each test starts the REST API in a thread on a free loopback port and drives the commands
with typer's ``CliRunner``. Refused commands must exit 1 with exactly one ``error:`` line on
stderr and leave the stored data as it was.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
import uvicorn
from typer.testing import CliRunner, Result

from tether.api.app import create_app
from tether.cli import client, resources

Run = Callable[..., Result]

WEB = ["network", "create", "web", "--vni", "5001", "--subnet", "10.0.1.0/24"]
VM1 = ["port", "create", "web", "--mac", "02:00:00:00:01:01", "--ip", "10.0.1.11", "--name", "vm1"]
HV1 = ["chassis", "add", "hv1", "--tunnel-ip", "192.0.2.11"]
TOR1 = ["gateway", "add", "tor1", "--ovsdb", "tcp:127.0.0.1:6640", "--tunnel-ip", "192.0.2.21"]


@pytest.fixture
def api_url(tmp_path: Path) -> Iterator[str]:
    """A running API server on a fresh SQLite file; stopped at teardown."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        create_app(f"sqlite:{tmp_path / 'tether.db'}"), log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the API server did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture
def app() -> typer.Typer:
    root = typer.Typer()
    resources.register(root)
    return root


@pytest.fixture
def run(app: typer.Typer, api_url: str) -> Run:
    """``run("network", "list")``: the command against the test server (via TETHER_URL)."""
    runner = CliRunner()

    def invoke(*args: str) -> Result:
        return runner.invoke(app, list(args), env={"TETHER_URL": api_url})

    return invoke


@pytest.fixture
def http(api_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=api_url, timeout=30) as http_client:
        yield http_client


def ok(result: Result) -> str:
    assert result.exit_code == 0, result.output
    assert result.stderr == ""
    return result.stdout


def data(result: Result) -> Any:
    """The parsed ``--json`` output of a successful command."""
    return json.loads(ok(result))


def snapshot(http: httpx.Client) -> dict[str, Any]:
    """Everything stored, straight from the API; the live views (a gateway's agent record,
    every status, derived when read) left out."""
    kinds = ["networks", "ports", "routers", "chassis", "gateways"]
    state = {
        kind: http.get(f"/v1/{kind}", params={"limit": 1000}).json()["items"] for kind in kinds
    }
    for gateway in state["gateways"]:
        gateway.pop("runtime", None)
    state["bindings"] = [
        http.get(f"/v1/gateways/{g['id']}/bindings").json()["items"] for g in state["gateways"]
    ]
    for items in [*(state[kind] for kind in kinds), *state["bindings"]]:
        for item in items:
            item.pop("status", None)
    return state


def error_line(result: Result) -> str:
    """The single ``error:`` line of a command that failed with exit code 1."""
    assert result.exit_code == 1, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert result.stdout == ""
    return lines[0]


@pytest.fixture
def refused(run: Run, http: httpx.Client) -> Callable[..., str]:
    """Run a command that must fail with one error line and change nothing stored."""

    def check(*args: str) -> str:
        before = snapshot(http)
        line = error_line(run(*args))
        assert snapshot(http) == before, "a refused command changed stored data"
        return line

    return check


@pytest.fixture
def fabric(run: Run) -> None:
    """Network web with port vm1 bound to chassis hv1, and gateway tor1."""
    for args in (WEB, VM1, HV1, ["port", "bind", "vm1", "--chassis", "hv1"], TOR1):
        ok(run(*args))


# -- the documented examples -----------------------------------------------------------------


def test_the_documented_examples_work(run: Run) -> None:
    ok(run(*WEB))
    ok(run(*VM1))
    ok(run(*HV1))
    ok(run("port", "bind", "vm1", "--chassis", "hv1"))
    gateway = "gateway add tor1 --ovsdb tcp:127.0.0.1:6640 --mode lock --max-rows-per-txn 500"
    ok(run(*gateway.split(), "--tunnel-ip", "192.0.2.21"))
    ok(run("gateway", "bind", "tor1", "eth1", "--vlan", "100", "--network", "web"))
    port = data(run("port", "show", "vm1", "--json"))
    assert (port["mac"], port["ips"], port["chassis"]) == (
        "02:00:00:00:01:01",
        ["10.0.1.11"],
        "hv1",
    )


def test_the_documented_gateway_example_without_tunnel_ip(run: Run) -> None:
    args = "gateway add tor1 --ovsdb tcp:127.0.0.1:6640 --mode lock --max-rows-per-txn 500"
    gateway = data(run(*args.split(), "--json"))
    assert (gateway["mode"], gateway["max_rows_per_txn"]) == ("lock", 500)


# -- networks --------------------------------------------------------------------------------


def test_network_create_list_show_delete(run: Run) -> None:
    web = data(run(*WEB, "--json"))
    assert (web["name"], web["vni"], web["subnets"][0]["cidr"]) == ("web", 5001, "10.0.1.0/24")
    db = data(
        run(
            *["network", "create", "db", "--subnet", "10.0.2.0/24", "--subnet", "fd00::/64"],
            *["--gateway-ip", "10.0.2.254", "--dns", "10.0.2.2", "--dns", "10.0.2.3"],
            *["--tenant", "acme", "--json"],
        )
    )
    first = db["subnets"][0]
    assert (db["tenant"], first["gateway_ip"]) == ("acme", "10.0.2.254")
    assert first["dhcp"]["dns_servers"] == ["10.0.2.2", "10.0.2.3"]
    assert db["subnets"][1]["cidr"] == "fd00::/64"

    table = ok(run("network", "list"))
    assert table.index("db") < table.index("web") and "5001" in table and "acme" in table
    assert [n["name"] for n in data(run("network", "list", "--tenant", "acme", "--json"))] == ["db"]
    assert "10.0.2.254" in ok(run("network", "show", "db"))
    assert data(run("network", "show", web["id"], "--json"))["name"] == "web"

    assert "deleted network db" in ok(run("network", "delete", "db", "--tenant", "acme"))
    assert "no network" in error_line(run("network", "show", "db"))


def test_network_delete_force_removes_its_ports(run: Run, fabric: None) -> None:
    answer = data(run("network", "delete", "web", "--force", "--json"))
    assert answer["deleted"]["name"] == "web"
    assert data(run("port", "list", "--json")) == []


# -- ports -----------------------------------------------------------------------------------


def test_port_create_allocates_or_takes_ips(run: Run) -> None:
    ok(run(*WEB))
    vm1 = data(run(*VM1, "--json"))
    assert (vm1["name"], vm1["mac"], vm1["ips"]) == ("vm1", "02:00:00:00:01:01", ["10.0.1.11"])
    allocated = data(run("port", "create", "web", "--json"))
    assert len(allocated["ips"]) == 1 and allocated["ips"][0].startswith("10.0.1.")
    assert data(run("port", "create", "web", "--no-ip", "--name", "bare", "--json"))["ips"] == []
    human = ok(run("port", "create", "web", "--name", "vm2", "--ip", "10.0.1.12"))
    assert "vm2" in human and "web" in human


def test_port_list_show_bind_unbind_delete(run: Run, fabric: None) -> None:
    ok(run("port", "create", "web", "--name", "vm2"))
    table = ok(run("port", "list"))
    assert table.index("vm1") < table.index("vm2")
    assert "web" in table and "hv1" in table  # names, not only ids
    assert [p["name"] for p in data(run("port", "list", "--chassis", "hv1", "--json"))] == ["vm1"]
    assert len(data(run("port", "list", "--network", "web", "--json"))) == 2

    assert "hv1" in ok(run("port", "show", "vm1"))
    assert data(run("port", "unbind", "vm1", "--json"))["chassis"] is None
    assert data(run("port", "show", "vm1", "--json"))["chassis"] is None
    ok(run("port", "bind", "vm2", "--chassis", "hv1"))
    assert data(run("port", "show", "vm2", "--json"))["chassis"] == "hv1"

    assert "deleted port vm2" in ok(run("port", "delete", "vm2"))
    assert [p["name"] for p in data(run("port", "list", "--json"))] == ["vm1"]


# -- chassis ---------------------------------------------------------------------------------


def test_chassis_add_set_list_show_delete(run: Run, fabric: None) -> None:
    ok(run("chassis", "add", "hv2", "--tunnel-ip", "192.0.2.12"))
    table = ok(run("chassis", "list"))
    assert table.index("hv1") < table.index("hv2") and "192.0.2.12" in table
    assert (
        data(run("chassis", "set", "hv2", "--tunnel-ip", "192.0.2.99", "--json"))["tunnel_ip"]
        == "192.0.2.99"
    )
    assert "192.0.2.99" in ok(run("chassis", "show", "hv2"))
    assert "deleted chassis hv2" in ok(run("chassis", "delete", "hv2"))

    assert "bound to chassis hv1" in error_line(run("chassis", "delete", "hv1"))
    assert data(run("chassis", "delete", "hv1", "--force", "--json"))["deleted"]["name"] == "hv1"
    assert data(run("port", "show", "vm1", "--json"))["chassis"] is None
    assert data(run("chassis", "list", "--json")) == []


# -- gateways --------------------------------------------------------------------------------


def test_gateway_add_list_show_bind_unbind_delete(run: Run, fabric: None) -> None:
    tor2 = data(
        run(
            *["gateway", "add", "tor2", "--ovsdb", "unix:/run/tor2.sock"],
            *["--tunnel-ip", "192.0.2.22", "--physical-switch", "sw2"],
            *["--mode", "bind-last", "--max-rows-per-txn", "500", "--json"],
        )
    )
    assert (tor2["physical_switch"], tor2["mode"], tor2["max_rows_per_txn"]) == (
        "sw2",
        "bind-last",
        500,
    )
    # the state-consistent mode needs the switch's schema checked: an unreachable switch
    # cannot be, and the refusal is one line naming the OVSDB address
    refused = run("gateway", "add", "tor3", "--ovsdb", "unix:/run/tor3.sock",
                  "--mode", "state-consistent")  # fmt: skip
    assert refused.exit_code == 1 and "unix:/run/tor3.sock" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1
    table = ok(run("gateway", "list"))
    assert table.index("tor1") < table.index("tor2") and "unix:/run/tor2.sock" in table

    bound = ok(run("gateway", "bind", "tor1", "eth1", "--vlan", "100", "--network", "web"))
    assert "eth1" in bound and "web" in bound
    binding = data(
        run("gateway", "bind", "tor1", "eth2", "--vlan", "0", "--network", "web", "--json")
    )
    assert (binding["port"], binding["vlan"]) == ("eth2", 0)
    shown = ok(run("gateway", "show", "tor1"))
    assert "eth1" in shown and "100" in shown and "web" in shown
    gateway = data(run("gateway", "show", "tor1", "--json"))
    assert sorted((b["port"], b["vlan"]) for b in gateway["bindings"]) == [
        ("eth1", 100),
        ("eth2", 0),
    ]

    assert "unbound tor1 eth2 VLAN 0" in ok(run("gateway", "unbind", "tor1", "eth2", "--vlan", "0"))
    assert "not bound" in error_line(run("gateway", "unbind", "tor1", "eth2", "--vlan", "0"))
    assert "binding" in error_line(run("gateway", "delete", "tor1"))
    assert "deleted gateway tor1" in ok(run("gateway", "delete", "tor1", "--force"))
    assert data(run("gateway", "delete", "tor2", "--json"))["deleted"]["name"] == "tor2"
    assert data(run("gateway", "list", "--json")) == []


def test_gateway_unbind_of_a_port_name_with_a_slash(run: Run, fabric: None) -> None:
    ok(run("gateway", "bind", "tor1", "Ethernet1/1", "--vlan", "7", "--network", "web"))
    ok(run("gateway", "unbind", "tor1", "Ethernet1/1", "--vlan", "7"))
    assert data(run("gateway", "show", "tor1", "--json"))["bindings"] == []


# -- routers ---------------------------------------------------------------------------------


def test_router_create_list_show_and_edit(run: Run) -> None:
    ok(run(*WEB))
    ok(run("network", "create", "db", "--subnet", "10.0.2.0/24"))
    ok(run("network", "create", "app", "--subnet", "10.0.3.0/24"))
    edge = data(
        run(
            *["router", "create", "edge", "--interface", "web"],
            *["--interface", "db=10.0.2.254", "--route", "0.0.0.0/0=10.0.1.254", "--json"],
        )
    )
    assert sorted(i["ip"] for i in edge["interfaces"]) == ["10.0.1.1", "10.0.2.254"]
    assert edge["routes"] == [{"destination": "0.0.0.0/0", "nexthop": "10.0.1.254"}]
    ok(run("router", "create", "aux"))
    table = ok(run("router", "list"))
    assert table.index("aux") < table.index("edge") and "db, web" in table
    shown = ok(run("router", "show", "edge"))
    assert "web" in shown and "10.0.2.254" in shown and "0.0.0.0/0" in shown

    added = data(run("router", "add-interface", "edge", "app", "--ip", "10.0.3.9", "--json"))
    assert len(added["interfaces"]) == 3
    macs = {i["network"]: i["mac"] for i in edge["interfaces"]}
    assert {i["network"]: i["mac"] for i in added["interfaces"] if i["network"] in macs} == macs
    assert len(data(run("router", "remove-interface", "edge", "db", "--json"))["interfaces"]) == 2
    routes = data(run("router", "add-route", "edge", "192.168.0.0/16", "10.0.3.1", "--json"))
    assert len(routes["routes"]) == 2
    left = data(run("router", "remove-route", "edge", "0.0.0.0/0", "--json"))["routes"]
    assert left == [{"destination": "192.168.0.0/16", "nexthop": "10.0.3.1"}]
    assert data(run("router", "show", "edge", "--json"))["routes"] == left

    assert "deleted router aux" in ok(run("router", "delete", "aux"))
    assert [r["name"] for r in data(run("router", "list", "--json"))] == ["edge"]


def test_router_edits_that_find_nothing_are_refused(run: Run, refused: Callable[..., str]) -> None:
    ok(run(*WEB))
    ok(run("network", "create", "db", "--subnet", "10.0.2.0/24"))
    ok(run("router", "create", "edge", "--interface", "web"))
    assert "no interface on network db" in refused("router", "remove-interface", "edge", "db")
    assert "no route to 10.9.0.0/16" in refused("router", "remove-route", "edge", "10.9.0.0/16")
    assert "next hop" in refused("router", "add-route", "edge", "10.9.0.0/16", "10.0.2.5")


# -- status ----------------------------------------------------------------------------------


def test_status_shows_store_and_counts(run: Run, fabric: None) -> None:
    status = data(run("status", "--json"))
    assert status["store"]["backend"] == "sqlite"
    assert status["objects"]["ports"] == 1 and status["errors"] == []
    human = ok(run("status"))
    assert "sqlite" in human and "networks" in human and "objects in error: none" in human


# -- refusals --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["port", "create", "web", "--mac", "02:zz:00:00:00:01"], ["not a MAC", "field: mac"]),
        (["port", "create", "web", "--ip", "10.9.9.9"], ["10.9.9.9", "field: ips[0]"]),
        (["network", "create", "web2", "--vni", "5001"], ["VNI 5001", "field: vni"]),
        (
            ["gateway", "bind", "tor1", "eth1", "--vlan", "5000", "--network", "web"],
            ["5000", "VLAN range", "field: vlan"],
        ),
        (["port", "create", "nowhere"], ["no network", "nowhere", "field: network"]),
        (["network", "delete", "web"], ["still used", "field: force"]),
        (["port", "bind", "vm1", "--chassis", "hv9"], ["no chassis", "hv9"]),
        (["network", "show", "nope"], ["no network", "nope"]),
        (["network", "delete", ".."], ["no network", "'..'"]),
    ],
)
def test_bad_input_is_one_error_line_and_changes_nothing(
    refused: Callable[..., str], fabric: None, args: list[str], words: list[str]
) -> None:
    line = refused(*args)
    for word in words:
        assert word in line


def test_refusals_also_apply_with_json(refused: Callable[..., str], fabric: None) -> None:
    assert "already used" in refused("chassis", "add", "hv2", "--tunnel-ip", "192.0.2.11", "--json")


@pytest.mark.parametrize(
    "args",
    [
        ["port", "create", "web", "--ip", "10.0.1.20", "--no-ip"],
        ["router", "create", "edge", "--route", "0.0.0.0/0"],
        ["router", "create", "edge", "--interface", "web="],
        ["network", "create", "web", "--gateway-ip", "10.0.1.1"],
        ["gateway", "add", "tor9", "--ovsdb", "tcp:h:1", "--mode", "fast"],
        ["network", "create"],
    ],
)
def test_usage_errors_exit_2_and_send_nothing(
    run: Run, http: httpx.Client, args: list[str]
) -> None:
    before = snapshot(http)
    result = run(*args)
    assert result.exit_code == 2, result.output
    assert snapshot(http) == before


def test_unreachable_controller_is_one_line(app: typer.Typer) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    result = CliRunner().invoke(app, ["network", "list", "--url", url])
    line = error_line(result)
    assert "not reachable" in line and url in line and "tether serve" in line


def test_a_malformed_url_is_one_line(app: typer.Typer) -> None:
    line = error_line(CliRunner().invoke(app, ["status", "--url", "nonsense"]))
    assert "'nonsense' is not a usable controller URL" in line


# -- pagination, help ------------------------------------------------------------------------


def test_lists_follow_pagination(run: Run, monkeypatch: pytest.MonkeyPatch, fabric: None) -> None:
    monkeypatch.setattr(client, "PAGE_SIZE", 2)
    for i in range(5):
        ok(run("chassis", "add", f"hv-{i}", "--tunnel-ip", f"192.0.2.{100 + i}"))
        ok(run("port", "create", "web", "--name", f"p{i}"))
        ok(run("gateway", "bind", "tor1", f"eth{i}", "--vlan", "7", "--network", "web"))
    assert len(data(run("chassis", "list", "--json"))) == 6
    assert len(data(run("port", "list", "--json"))) == 6
    assert len(data(run("gateway", "show", "tor1", "--json"))["bindings"]) == 5
    table = ok(run("chassis", "list"))
    assert all(f"hv-{i}" in table for i in range(5))


def _commands(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[str, Any]]:
    """(``"network create"``, command) for every leaf command under ``command``."""
    subcommands = getattr(command, "commands", None)
    if not subcommands:
        yield " ".join(path), command
        return
    for name, sub in subcommands.items():
        yield from _commands(sub, (*path, name))


def test_every_command_and_option_has_help(app: typer.Typer) -> None:
    commands = dict(_commands(typer.main.get_command(app)))
    expected = {
        "network create", "network list", "network show", "network delete",
        "port create", "port list", "port show", "port bind", "port unbind", "port delete",
        "chassis add", "chassis set", "chassis list", "chassis show", "chassis delete",
        "gateway add", "gateway set", "gateway list", "gateway show", "gateway delete",
        "gateway bind", "gateway unbind",
        "mac list", "mac show", "mac claim", "mac unclaim",
        "router create", "router list", "router show", "router add-interface",
        "router remove-interface", "router add-route", "router remove-route", "router delete",
        "status",
    }  # fmt: skip
    assert set(commands) == expected
    for name, command in commands.items():
        assert command.help, name
        options = {p.name for p in command.params}
        assert {"url", "as_json"} <= options, name
        for param in command.params:
            assert getattr(param, "help", None), f"{name}: {param.name}"
        assert CliRunner().invoke(app, [*name.split(), "--help"]).exit_code == 0
