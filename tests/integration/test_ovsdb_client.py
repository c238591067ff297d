"""tether's OVSDB client against a real ovsdb-server (hardware_vtep schema, fresh database).

Each test gets its own server (unix socket and loopback TCP port under ``tmp_path``),
stopped by PID. Under ``CI=true`` a missing ovsdb-server, ovsdb-tool or openssl fails the
test instead of skipping it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.daemons import VTEP_SCHEMA, OvsdbServer, OvsdbTls, require_binary, running_ovsdb
from tether.ovsdb import (
    Client,
    ClientOptions,
    ConnectionFailedError,
    ConnectionLostError,
    InvalidLockNameError,
    LockEvent,
    LockEventKind,
    MonitorMethod,
    OvsdbServerError,
    ReconnectOptions,
    RowChange,
    TableSpec,
    TlsFiles,
    TransactionError,
    UnknownMethodError,
    ops,
)
from tether.ovsdb.framing import JsonSplitter

pytestmark = [pytest.mark.anyio, pytest.mark.daemon]

DB = "hardware_vtep"
FAST = ClientOptions(
    reconnect=ReconnectOptions(
        min_backoff=0.05, max_backoff=0.4, connect_timeout=5.0, probe_interval=0
    ),
    request_timeout=10.0,
)


@pytest.fixture
def ovsdb(tmp_path: Path) -> Iterator[OvsdbServer]:
    with running_ovsdb(tmp_path) as server:
        yield server


@contextlib.asynccontextmanager
async def connected(address: str, **kwargs: Any) -> AsyncIterator[Client]:
    kwargs.setdefault("options", FAST)
    client = Client(address, **kwargs)
    await client.connect(timeout=10)
    try:
        yield client
    finally:
        await client.close()


async def eventually(predicate: Callable[[], bool], *, timeout: float = 5.0) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def next_event(client: Client) -> LockEvent:
    async with asyncio.timeout(5):
        return await client.lock_events.get()


def switch_names(rows: Any) -> set[str]:
    return {str(row["name"]) for row in rows.values()}


# -- transactions -------------------------------------------------------------------------


async def test_transact_insert_select_update_delete_with_named_uuids(ovsdb: OvsdbServer) -> None:
    async with connected(ovsdb.unix) as client:
        locator = {"encapsulation_type": "vxlan_over_ipv4", "dst_ip": "192.0.2.1"}
        results = await client.transact(
            DB,
            [
                ops.insert("Logical_Switch", {"name": "ls0", "tunnel_key": 5000}, uuid_name="ls"),
                ops.insert("Physical_Locator", locator, uuid_name="loc"),
                ops.insert(
                    "Ucast_Macs_Remote",
                    {
                        "MAC": "02:00:00:00:00:01",
                        "logical_switch": ops.named_uuid("ls"),
                        "locator": ops.named_uuid("loc"),
                    },
                ),
            ],
        )
        ls, loc, mac = (result["uuid"][1] for result in results)
        by_uuid = [ops.condition("_uuid", "==", ops.uuid(mac))]
        [selected] = await client.transact(DB, [ops.select("Ucast_Macs_Remote", by_uuid)])
        [row] = selected["rows"]
        assert row["logical_switch"] == ["uuid", ls] and row["locator"] == ["uuid", loc]
        assert await client.transact(
            DB, [ops.update("Ucast_Macs_Remote", by_uuid, {"ipaddr": "192.0.2.10"})]
        ) == [{"count": 1}]
        [selected] = await client.transact(
            DB, [ops.select("Ucast_Macs_Remote", by_uuid, ["ipaddr"])]
        )
        assert selected["rows"] == [{"ipaddr": "192.0.2.10"}]
        assert await client.transact(DB, [ops.delete("Ucast_Macs_Remote", by_uuid)]) == [
            {"count": 1}
        ]
        # Physical_Locator is not a root table: unreferenced now, it was collected at commit
        [locators] = await client.transact(DB, [ops.select("Physical_Locator", [])])
        assert locators["rows"] == []


async def test_a_failed_op_is_named_and_nothing_is_applied(ovsdb: OvsdbServer) -> None:
    async with connected(ovsdb.tcp) as client:
        first = ops.insert("Logical_Switch", {"name": "a"})
        with pytest.raises(TransactionError, match=r"op 1 \(select on No_Such_Table\)") as info:
            await client.transact(DB, [first, ops.select("No_Such_Table", [])])
        assert info.value.index == 1 and info.value.error == "syntax error"
        assert "No_Such_Table" in str(info.value.details)
        with pytest.raises(TransactionError, match="not owner") as info:
            await client.transact(DB, [first, ops.assert_lock("nobody_holds_this")])
        assert info.value.index == 1
        duplicate = ops.insert("Logical_Switch", {"name": "a"})
        with pytest.raises(TransactionError, match="commit") as info:
            await client.transact(DB, [first, duplicate])
        assert (info.value.index, info.value.error) == (2, "constraint violation")
        [selected] = await client.transact(DB, [ops.select("Logical_Switch", [])])
        assert selected["rows"] == []  # every failed transaction was rolled back
        with pytest.raises(OvsdbServerError, match="unknown database") as server_info:
            await client.transact("no_such_db", [first])
        assert not isinstance(server_info.value, TransactionError)


# -- monitors -----------------------------------------------------------------------------


async def test_monitor_cond_since_replica_follows_a_second_client(ovsdb: OvsdbServer) -> None:
    async with connected(ovsdb.unix) as watcher, connected(ovsdb.tcp) as writer:
        changes: list[RowChange] = []
        monitor = await watcher.monitor_cond_since(
            DB, {"Logical_Router": None}, on_update=changes.extend
        )
        assert monitor.method is MonitorMethod.MONITOR_COND_SINCE
        routes = ops.omap({"10.0.0.0/8": "192.0.2.1", "172.16.0.0/12": "192.0.2.2"})
        row = {"name": "lr1", "static_routes": routes, "LR_fault_status": ops.oset("ab")}
        [result] = await writer.transact(DB, [ops.insert("Logical_Router", row)])
        lr = result["uuid"][1]
        routers = monitor.rows("Logical_Router")
        await monitor.wait_for(lambda _: lr in routers, timeout=5)
        assert routers[lr]["LR_fault_status"] == frozenset("ab")
        where = [ops.condition("_uuid", "==", ops.uuid(lr))]
        mutations = [
            ["static_routes", "delete", ops.oset(["10.0.0.0/8"])],
            ["static_routes", "insert", ops.omap({"192.168.0.0/16": "192.0.2.3"})],
            ["LR_fault_status", "delete", ops.oset(["a"])],
            ["LR_fault_status", "insert", ops.oset(["c"])],
        ]
        await writer.transact(
            DB,
            [
                ops.mutate("Logical_Router", where, mutations),
                ops.update("Logical_Router", where, {"description": "edge"}),
            ],
        )
        await monitor.wait_for(lambda _: routers[lr]["description"] == "edge", timeout=5)
        assert routers[lr]["static_routes"] == {
            "172.16.0.0/12": "192.0.2.2",
            "192.168.0.0/16": "192.0.2.3",
        }
        assert routers[lr]["LR_fault_status"] == frozenset("bc")
        await writer.transact(DB, [ops.delete("Logical_Router", where)])
        await monitor.wait_for(lambda _: lr not in routers, timeout=5)
        kinds = [change.kind for change in changes]
        assert kinds == ["insert", "modify", "delete"]


async def test_monitor_where_clause_keeps_only_matching_rows(ovsdb: OvsdbServer) -> None:
    async with connected(ovsdb.unix) as watcher, connected(ovsdb.tcp) as writer:
        blue_only = TableSpec(columns=("name",), where=(["name", "==", "blue"],))
        monitor = await watcher.monitor_cond_since(DB, {"Logical_Switch": blue_only})
        names = ("red", "blue", "green")
        await writer.transact(DB, [ops.insert("Logical_Switch", {"name": n}) for n in names])
        await monitor.wait_for(lambda _: len(monitor.rows("Logical_Switch")) > 0, timeout=5)
        await watcher.echo()  # a round trip: nothing more is on its way
        assert switch_names(monitor.rows("Logical_Switch")) == {"blue"}
        await watcher.cancel_monitor(monitor)
        await writer.transact(DB, [ops.delete("Logical_Switch", [])])
        await watcher.echo()
        assert switch_names(monitor.rows("Logical_Switch")) == {"blue"}  # no longer followed


@contextlib.asynccontextmanager
async def old_server(path: Path, upstream: Path, refuse: set[str]) -> AsyncIterator[str]:
    """A proxy to the real server that answers ``refuse``d methods as an old ovsdb-server."""
    handlers: set[asyncio.Task[Any]] = set()

    async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            writer.write(data)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        handlers.add(task)
        up_reader, up_writer = await asyncio.open_unix_connection(str(upstream))
        downstream = asyncio.create_task(pump(up_reader, writer))
        splitter = JsonSplitter()
        try:
            while data := await reader.read(65536):
                for message in splitter.feed(data):
                    if message.get("method") in refuse:
                        writer.write(orjson.dumps({"id": message["id"], "error": "unknown method"}))
                    else:
                        up_writer.write(orjson.dumps(message))
        finally:
            downstream.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await downstream
            for stream in (up_writer, writer):
                stream.close()
                with contextlib.suppress(ConnectionError):
                    await stream.wait_closed()

    server = await asyncio.start_unix_server(handle, str(path))
    try:
        yield f"unix:{path}"
    finally:
        server.close()
        await server.wait_closed()
        async with asyncio.timeout(5):  # each ends once its client has gone
            await asyncio.gather(*handlers)


@pytest.mark.parametrize(
    ("refused", "expected"),
    [
        ({"monitor_cond_since"}, MonitorMethod.MONITOR_COND),
        ({"monitor_cond_since", "monitor_cond"}, MonitorMethod.MONITOR),
    ],
)
async def test_monitor_falls_back_when_the_server_does_not_know_the_method(
    ovsdb: OvsdbServer, tmp_path: Path, refused: set[str], expected: MonitorMethod
) -> None:
    async with (
        old_server(tmp_path / "old.sock", ovsdb.socket_path, refused) as old_address,
        connected(old_address) as old,
        connected(ovsdb.tcp) as writer,
    ):
        monitor = await old.monitor_cond_since(DB, {"Logical_Router": ["name", "LR_fault_status"]})
        assert monitor.method is expected
        await writer.transact(
            DB, [ops.insert("Logical_Router", {"name": "r", "LR_fault_status": ops.oset("xy")})]
        )
        routers = monitor.rows("Logical_Router")
        await monitor.wait_for(lambda _: len(routers) == 1, timeout=5)
        name_r = [ops.condition("name", "==", "r")]
        await writer.transact(
            DB, [ops.mutate("Logical_Router", name_r, [["LR_fault_status", "delete", "x"]])]
        )
        await monitor.wait_for(
            lambda _: [row["LR_fault_status"] for row in routers.values()] == [frozenset("y")],
            timeout=5,
        )
        if expected is MonitorMethod.MONITOR:  # plain `monitor` cannot filter rows
            with pytest.raises(UnknownMethodError):
                await old.monitor_cond(DB, {"Logical_Switch": TableSpec(where=(True,))})


async def test_extra_columns_after_a_live_schema_conversion(
    ovsdb: OvsdbServer, tmp_path: Path
) -> None:
    """The server disconnects clients when converting; they resubscribe under the new schema."""
    schema = json.loads(VTEP_SCHEMA.read_text())
    extra = {"type": {"key": "string", "min": 0, "max": 1}}
    schema["tables"]["Logical_Switch"]["columns"]["tether_extra"] = extra
    schema["tables"]["Tether_Extra"] = {"columns": {"x": {"type": "integer"}}, "isRoot": True}
    (tmp_path / "new.ovsschema").write_text(json.dumps(schema))
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    async with connected(ovsdb.unix, on_reconnect=on_reconnect) as client:
        everything = await client.monitor_cond_since(DB, {"Logical_Switch": None})
        named = await client.monitor_cond_since(DB, {"Logical_Switch": ["name"]})
        await client.transact(DB, [ops.insert("Logical_Switch", {"name": "ls0"})])
        await named.wait_for(lambda _: len(named.rows("Logical_Switch")) == 1, timeout=5)
        convert = [
            require_binary("ovsdb-client"),
            "convert",
            ovsdb.unix,
            str(tmp_path / "new.ovsschema"),
        ]
        await asyncio.to_thread(subprocess.run, convert, check=True, capture_output=True)
        async with asyncio.timeout(10):
            await reconnected.wait()
        name_ls0 = [ops.condition("name", "==", "ls0")]
        await client.transact(DB, [ops.update("Logical_Switch", name_ls0, {"tether_extra": "hi"})])
        rows = everything.rows("Logical_Switch")
        await everything.wait_for(
            lambda _: [row.get("tether_extra") for row in rows.values()] == ["hi"], timeout=5
        )
        assert [sorted(row) for row in named.rows("Logical_Switch").values()] == [["name"]]


# -- locks --------------------------------------------------------------------------------


async def test_lock_steal_unlock_between_two_clients(ovsdb: OvsdbServer) -> None:
    async with connected(ovsdb.unix) as a, connected(ovsdb.unix) as b:
        assert await a.lock("vtep_owner") is True
        assert await next_event(a) == LockEvent("vtep_owner", LockEventKind.LOCKED)
        assert await b.lock("vtep_owner") is False
        guarded = [ops.assert_lock("vtep_owner"), ops.insert("Logical_Switch", {"name": "x"})]
        with pytest.raises(TransactionError, match="not owner") as info:
            await b.transact(DB, guarded)
        assert (info.value.index, info.value.error) == (0, "not owner")
        await a.transact(DB, guarded)
        assert await b.steal("vtep_owner") is True
        # `a` also saw a repeated `locked` when b left the queue to steal: no event for it
        assert await next_event(a) == LockEvent("vtep_owner", LockEventKind.STOLEN)
        assert not a.holds_lock("vtep_owner") and b.holds_lock("vtep_owner")
        with pytest.raises(TransactionError, match="not owner"):
            await a.transact(DB, [ops.assert_lock("vtep_owner")])
        assert await b.unlock("vtep_owner") is False
        # `a` took the lock with `lock`, so it stayed queued and gets it back
        assert await next_event(a) == LockEvent("vtep_owner", LockEventKind.LOCKED)
        assert a.holds_lock("vtep_owner")
        await a.transact(DB, [ops.assert_lock("vtep_owner")])
        with pytest.raises(InvalidLockNameError):
            await a.lock("vtep-owner")


# -- reconnecting -------------------------------------------------------------------------


async def test_kill_9_and_restart_resubscribes_and_relocks(ovsdb: OvsdbServer) -> None:
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    async with connected(ovsdb.unix, on_reconnect=on_reconnect) as client:
        monitor = await client.monitor_cond_since(DB, {"Logical_Switch": ["name"]})
        await client.transact(DB, [ops.insert("Logical_Switch", {"name": "before"})])
        switches = monitor.rows
        await monitor.wait_for(lambda _: len(switches("Logical_Switch")) == 1, timeout=5)
        assert await client.lock("vtep_owner") is True
        assert await next_event(client) == LockEvent("vtep_owner", LockEventKind.LOCKED)

        ovsdb.kill()
        await eventually(lambda: not client.is_ready)
        assert await next_event(client) == LockEvent("vtep_owner", LockEventKind.LOST)
        with pytest.raises(ConnectionLostError):
            await client.transact(DB, [ops.comment("while down")])
        # change the database while no server runs: only a resubscription can show this
        ovsdb.transact_offline(
            orjson.dumps(
                [
                    DB,
                    ops.insert("Logical_Switch", {"name": "offline"}),
                    ops.delete("Logical_Switch", [ops.condition("name", "==", "before")]),
                ]
            ).decode()
        )
        ovsdb.start()
        async with asyncio.timeout(10):
            await reconnected.wait()
        assert client.is_ready and client.connections == 2
        assert switch_names(switches("Logical_Switch")) == {"offline"}
        assert await next_event(client) == LockEvent("vtep_owner", LockEventKind.LOCKED)
        assert client.holds_lock("vtep_owner")
        async with connected(ovsdb.tcp) as other:
            assert await other.lock("vtep_owner") is False
        await client.transact(DB, [ops.insert("Logical_Switch", {"name": "after"})])
        await monitor.wait_for(
            lambda _: "after" in switch_names(switches("Logical_Switch")), timeout=5
        )


async def test_echo_keepalive_drops_a_hung_server_and_reconnects(ovsdb: OvsdbServer) -> None:
    options = ClientOptions(
        reconnect=ReconnectOptions(
            min_backoff=0.05,
            max_backoff=0.2,
            connect_timeout=1.0,
            probe_interval=0.2,
            probe_timeout=0.3,
        )
    )
    async with connected(ovsdb.unix, options=options) as client:
        await asyncio.sleep(0.7)  # idle: several probes sent and answered
        assert client.is_ready and client.connections == 1
        ovsdb.pause()
        try:
            await eventually(lambda: not client.is_ready, timeout=3)
            with pytest.raises(ConnectionLostError):
                await client.list_dbs()
            await asyncio.sleep(0.5)
            assert not client.is_ready  # connections to a hung server never become ready
        finally:
            ovsdb.resume()
        await client.wait_ready(timeout=5)
        assert client.connections >= 2
        assert DB in await client.list_dbs()


# -- transports ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["unix", "tcp"])
async def test_unix_and_tcp(ovsdb: OvsdbServer, kind: str) -> None:
    async with connected(ovsdb.unix if kind == "unix" else ovsdb.tcp) as client:
        assert DB in await client.list_dbs()
        schema = await client.get_schema(DB)
        assert schema.version == "1.7.0" and "Ucast_Macs_Remote" in schema.tables
        assert await client.echo("ping", 1) == ["ping", 1]


def _make_pki(directory: Path) -> tuple[OvsdbTls, TlsFiles, TlsFiles]:
    """A CA with server and client certificates, and a client that trusts another CA."""
    openssl = require_binary("openssl")

    def run(*args: str) -> None:
        subprocess.run([openssl, *args], check=True, capture_output=True, cwd=directory)

    def new_key(name: str, *request: str) -> None:
        ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        run("req", *request, *ec, "-keyout", f"{name}.key", "-subj", f"/CN={name}")

    for ca in ("ca", "other_ca"):
        new_key(ca, "-x509", "-days", "2", "-out", f"{ca}.pem")
    for name in ("server", "client"):
        new_key(name, "-out", f"{name}.csr")
        signed_by_ca = ["-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2"]
        run("x509", "-req", "-in", f"{name}.csr", *signed_by_ca, "-out", f"{name}.pem")
    d = directory
    return (
        OvsdbTls(d / "server.key", d / "server.pem", d / "ca.pem"),
        TlsFiles(d / "client.key", d / "client.pem", d / "ca.pem"),
        TlsFiles(d / "client.key", d / "client.pem", d / "other_ca.pem"),
    )


async def test_ssl_with_mutual_certificates(tmp_path: Path) -> None:
    server_tls, client_tls, wrong_ca = _make_pki(tmp_path)
    with running_ovsdb(tmp_path, tls=server_tls) as server:
        async with connected(server.ssl, tls_files=client_tls) as client:
            assert DB in await client.list_dbs()
            await client.transact(DB, [ops.insert("Logical_Switch", {"name": "over_tls"})])
        doubting = Client(server.ssl, tls_files=wrong_ca, options=FAST)
        with pytest.raises(ConnectionFailedError) as info:
            await doubting.connect(timeout=1)
        assert "certificate verify failed" in str(info.value.__cause__)
