"""The OVSDB client's pure engines, driven with no server: framing, the JSON-RPC session,
replica updates (with messages as ovsdb-server 3.1 sends them), monitors, locks, the
reconnect state machine (a scripted transcript) and transaction results."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tether.ovsdb import (
    InvalidAddressError,
    InvalidLockNameError,
    OvsdbProtocolError,
    TransactionError,
    ops,
    parse_address,
)
from tether.ovsdb.framing import JsonSplitter
from tether.ovsdb.locks import LockEvent, LockEventKind, LockMode, LockTable, validate_lock_name
from tether.ovsdb.monitor import ZERO_TXN_ID, MonitorMethod, MonitorState, TableSpec
from tether.ovsdb.protocol import Notification, Reply, Session
from tether.ovsdb.reconnect import Action, Reconnect, ReconnectOptions, State
from tether.ovsdb.replica import Replica, RowChange, Uuid
from tether.ovsdb.schema import ColumnKind, parse_schema

# -- framing ------------------------------------------------------------------------------

# Strings full of what a naive splitter trips on: braces, quotes, backslashes, non-ASCII.
tricky_text = st.text(
    alphabet=st.sampled_from(list('{}[]"\\:,ab \n\té€😀')) | st.characters(codec="utf-8"),
    max_size=30,
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | tricky_text,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(tricky_text, children, max_size=5)
    ),
    max_leaves=25,
)
json_objects = st.dictionaries(tricky_text, json_values, max_size=6)
separators = st.sampled_from([b"", b"", b" ", b"\n", b" \r\n\t "])


def _split_at(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(data) + 1) for cut in cuts})
    return [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]


@settings(max_examples=150, deadline=None)
@given(
    st.lists(json_objects, max_size=8),
    separators,
    st.lists(st.integers(min_value=0, max_value=10**6), max_size=12),
)
def test_splitter_returns_every_object_whatever_the_cuts(
    objects: list[dict[str, Any]], sep: bytes, cuts: list[int]
) -> None:
    data = sep.join(orjson.dumps(obj) for obj in objects)
    splitter = JsonSplitter()
    received = [message for chunk in _split_at(data, cuts) for message in splitter.feed(chunk)]
    assert received == objects
    assert splitter.buffered == 0


@settings(max_examples=40, deadline=None)
@given(st.lists(json_objects, min_size=1, max_size=4))
def test_splitter_byte_by_byte(objects: list[dict[str, Any]]) -> None:
    data = b"".join(orjson.dumps(obj) for obj in objects)
    splitter = JsonSplitter()
    received = [m for i in range(len(data)) for m in splitter.feed(data[i : i + 1])]
    assert received == objects


def test_splitter_big_messages_in_big_chunks() -> None:
    """Chunks past the skim size, strings with braces and escapes astride chunk edges."""
    objects = [
        {"id": i, "s": "x" * 3000 + '{"}\\' * i, "rows": [{"k": "}{", "v": i}] * 400}
        for i in range(6)
    ]
    data = b"\n".join(orjson.dumps(obj) for obj in objects)
    for size in (4096, 5000, 8191, 65536, len(data)):
        splitter = JsonSplitter()
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        assert [m for chunk in chunks for m in splitter.feed(chunk)] == objects


def test_splitter_several_messages_in_one_chunk_and_a_partial_one() -> None:
    splitter = JsonSplitter()
    assert splitter.feed(b'{"a":1}{"b":"}"} {"c":[{') == [{"a": 1}, {"b": "}"}]
    assert splitter.feed(b'}]}{"d"') == [{"c": [{}]}]
    assert splitter.feed(b":null}") == [{"d": None}]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"[1, 2]", "expected a JSON object"),
        (b'{"a":1} x {"b":2}', "expected a JSON object"),
        (b'{"a": nope}', "malformed JSON"),
        (b'{"a": "\xff"}', "malformed JSON"),
        (b"{} }", "expected a JSON object"),
    ],
)
def test_splitter_refuses_malformed_input(data: bytes, message: str) -> None:
    splitter = JsonSplitter()
    with pytest.raises(OvsdbProtocolError, match=message):
        for i in range(len(data)):  # byte by byte: the exact scanner sees it
            splitter.feed(data[i : i + 1])
    with pytest.raises(OvsdbProtocolError, match=message):
        JsonSplitter().feed(data)  # at once: the whole-buffer path sees it


def test_splitter_refuses_oversize_messages() -> None:
    big = orjson.dumps({"s": "x" * 200})
    with pytest.raises(OvsdbProtocolError, match="limit of 100 bytes"):
        JsonSplitter(max_message_bytes=100).feed(big)
    splitter = JsonSplitter(max_message_bytes=100)
    with pytest.raises(OvsdbProtocolError, match="limit of 100 bytes"):
        splitter.feed(big[:150])  # unfinished, already too long
    assert JsonSplitter(max_message_bytes=100).feed(b'{"s":"ok"}') == [{"s": "ok"}]


# -- JSON-RPC session ---------------------------------------------------------------------


def test_requests_get_distinct_ids_and_replies_match_them_in_any_order() -> None:
    session = Session()
    id_a, data_a = session.request("transact", ["db", {"op": "comment", "comment": "a"}])
    id_b, _ = session.request("get_schema", ["db"])
    assert id_a != id_b and session.pending == 2
    assert orjson.loads(data_a) == {
        "id": id_a,
        "method": "transact",
        "params": ["db", {"op": "comment", "comment": "a"}],
    }
    wire = orjson.dumps({"id": id_b, "result": {"name": "db"}, "error": None}) + orjson.dumps(
        {"id": id_a, "error": "unknown method"}  # as ovsdb-server sends it: no "result"
    )
    events = session.receive_data(wire)
    assert events == [
        Reply(id_b, "get_schema", {"name": "db"}, None),
        Reply(id_a, "transact", None, "unknown method"),
    ]
    assert session.pending == 0


def test_a_reply_to_an_unknown_id_is_dropped() -> None:
    session = Session()
    request_id, _ = session.request("echo", [])
    assert session.receive_data(b'{"id":999,"result":[],"error":null}') == []
    assert session.pending == 1
    assert session.connection_lost() == [request_id]
    assert session.pending == 0


def test_server_echo_is_answered_with_the_same_params_and_id() -> None:
    session = Session()
    events = session.receive_data(b'{"id":"echo","method":"echo","params":["x",{"n":1}]}')
    assert events == []
    assert orjson.loads(session.data_to_send()) == {
        "id": "echo",
        "result": ["x", {"n": 1}],
        "error": None,
    }
    assert session.data_to_send() == b""


def test_other_server_requests_are_refused_and_notifications_passed_up() -> None:
    session = Session()
    events = session.receive_data(
        b'{"id":7,"method":"frobnicate","params":[]}'
        b'{"id":null,"method":"locked","params":["vtep"]}'
        b'{"id":null,"method":"update3","params":[1,"t",{}]}'
    )
    assert events == [
        Notification("locked", ["vtep"]),
        Notification("update3", [1, "t", {}]),
    ]
    assert orjson.loads(session.data_to_send()) == {
        "id": 7,
        "result": None,
        "error": "unknown method",
    }


@pytest.mark.parametrize(
    "message", [b'{"id":1}', b'{"method":"update","params":{}}', b'{"method":3,"params":[]}']
)
def test_session_refuses_messages_that_are_not_json_rpc(message: bytes) -> None:
    with pytest.raises(OvsdbProtocolError):
        Session().receive_data(message)


# -- schema and replica -------------------------------------------------------------------

SCHEMA = parse_schema(
    {
        "name": "hardware_vtep",
        "version": "1.7.0",
        "tables": {
            "Logical_Router": {
                "isRoot": True,
                "columns": {
                    "name": {"type": "string"},
                    "description": {"type": "string"},
                    "static_routes": {
                        "type": {"key": "string", "value": "string", "min": 0, "max": "unlimited"}
                    },
                    "LR_fault_status": {"type": {"key": "string", "min": 0, "max": "unlimited"}},
                    "tunnel_key": {"type": {"key": "integer", "min": 0, "max": 1}},
                    "one_pair": {"type": {"key": "string", "value": "string", "min": 0, "max": 1}},
                    "switch": {"type": {"key": {"type": "uuid", "refTable": "Logical_Switch"}}},
                },
            },
        },
    }
)
ROW = Uuid("3116628f-9e56-4668-aa45-93594979c0f7")


def _replica() -> Replica:
    columns = SCHEMA.tables["Logical_Router"].columns
    return Replica({"Logical_Router": {k: v for k, v in columns.items() if k != "_version"}})


def test_schema_kinds() -> None:
    columns = SCHEMA.tables["Logical_Router"].columns
    assert columns["name"].kind is ColumnKind.SCALAR
    assert columns["tunnel_key"].kind is ColumnKind.OPTIONAL
    assert columns["LR_fault_status"].kind is ColumnKind.SET and columns["LR_fault_status"].diffed
    assert columns["static_routes"].kind is ColumnKind.MAP and columns["static_routes"].diffed
    assert columns["one_pair"].kind is ColumnKind.MAP and not columns["one_pair"].diffed
    assert columns["switch"].ref_table == "Logical_Switch"


def test_update2_insert_fills_defaults_and_ignores_unknown_tables_and_columns() -> None:
    replica = _replica()
    changes = replica.apply_update2(
        {
            "Logical_Router": {
                ROW: {
                    "insert": {
                        "name": "lr1",
                        "LR_fault_status": ["set", ["1.1.1.1", "2.2.2.2"]],
                        "static_routes": ["map", [["10.0.0.0/8", "1.2.3.4"]]],
                        "switch": ["uuid", "68cfdc34-37b4-4f54-b0d3-8faa9ce30665"],
                        "column_from_a_newer_schema": 42,
                    }
                }
            },
            "Table_We_Did_Not_Ask_For": {ROW: {"insert": {"x": 1}}},
        }
    )
    assert [c.kind for c in changes] == ["insert"]
    assert replica.rows("Logical_Router")[ROW] == {
        "name": "lr1",
        "description": "",
        "static_routes": {"10.0.0.0/8": "1.2.3.4"},
        "LR_fault_status": frozenset({"1.1.1.1", "2.2.2.2"}),
        "tunnel_key": None,
        "one_pair": {},
        "switch": "68cfdc34-37b4-4f54-b0d3-8faa9ce30665",
    }


def _update2(replica: Replica, kind: str, **columns: Any) -> list[RowChange]:
    """Apply one row update of ``kind`` to ROW of Logical_Router."""
    return replica.apply_update2({"Logical_Router": {ROW: {kind: columns or None}}})


def test_update2_modify_applies_set_and_map_diffs_as_ovsdb_server_sends_them() -> None:
    """The "modify" messages ovsdb-server 3.1 sent for successive updates of one row."""
    replica = _replica()
    _update2(replica, "insert", name="lr1", LR_fault_status=["set", ["a", "b"]])
    row = replica.rows("Logical_Router").get
    # set {a,b} -> {a,c}; description "" -> "d"; map {} -> {a:1, b:2}
    _update2(
        replica,
        "modify",
        LR_fault_status=["set", ["b", "c"]],
        description="d",
        static_routes=["map", [["a", "1"], ["b", "2"]]],
    )
    assert row(ROW) == {**row(ROW, {}), "LR_fault_status": frozenset("ac"), "description": "d"}
    assert row(ROW, {})["static_routes"] == {"a": "1", "b": "2"}
    # set {a,c} -> {a} (a one-element diff comes as a bare atom); map: b changed, c added
    changes = _update2(
        replica, "modify", LR_fault_status="c", static_routes=["map", [["b", "3"], ["c", "4"]]]
    )
    assert row(ROW, {})["LR_fault_status"] == frozenset("a")
    assert row(ROW, {})["static_routes"] == {"a": "1", "b": "3", "c": "4"}
    assert changes[0].old is not None and changes[0].old["static_routes"] == {"a": "1", "b": "2"}
    # map: pairs equal to the old ones are removed; optional and non-composite map replaced
    _update2(
        replica,
        "modify",
        static_routes=["map", [["a", "1"], ["b", "3"]]],
        tunnel_key=7,
        one_pair=["map", [["k", "v"]]],
    )
    new = row(ROW, {})
    assert (new["static_routes"], new["tunnel_key"], new["one_pair"]) == ({"c": "4"}, 7, {"k": "v"})
    _update2(replica, "modify", tunnel_key=["set", []])
    assert row(ROW, {})["tunnel_key"] is None
    changes = _update2(replica, "delete")
    assert [c.kind for c in changes] == ["delete"] and row(ROW) is None


def test_update_v1_insert_modify_delete() -> None:
    replica = _replica()
    new = {"name": "lr1", "description": "", "static_routes": ["map", []], "LR_fault_status": "x"}
    replica.apply_update({"Logical_Router": {ROW: {"new": new}}})
    assert replica.rows("Logical_Router")[ROW]["LR_fault_status"] == frozenset({"x"})
    replica.apply_update(
        {"Logical_Router": {ROW: {"new": {**new, "description": "d"}, "old": {"description": ""}}}}
    )
    assert replica.rows("Logical_Router")[ROW]["description"] == "d"
    changes = replica.apply_update({"Logical_Router": {ROW: {"old": new}}})
    assert [c.kind for c in changes] == ["delete"] and not replica.rows("Logical_Router")


def test_replace_reports_the_difference_from_the_old_contents() -> None:
    replica = _replica()
    other = Uuid("68cfdc34-37b4-4f54-b0d3-8faa9ce30665")
    replica.apply_update2(
        {"Logical_Router": {ROW: {"insert": {"name": "a"}}, other: {"insert": {"name": "b"}}}}
    )
    third = Uuid("2813f21b-0d89-4d76-805f-c22139ce676e")
    changes = replica.replace(
        {"Logical_Router": {other: {"initial": {"name": "b2"}}, third: {"initial": {"name": "c"}}}},
        version=2,
    )
    kinds = {(c.uuid, c.kind) for c in changes}
    assert kinds == {(ROW, "delete"), (other, "modify"), (third, "insert")}


def test_malformed_updates_are_protocol_errors() -> None:
    with pytest.raises(OvsdbProtocolError):
        _replica().apply_update2({"Logical_Router": {ROW: {"frobnicate": {}}}})
    with pytest.raises(OvsdbProtocolError):
        _replica().apply_update2({"Logical_Router": {ROW: {"insert": {"static_routes": 5}}}})


# -- monitors -----------------------------------------------------------------------------


def test_monitor_requests_per_method_and_the_fallback_chain() -> None:
    state = MonitorState("hardware_vtep", 3, {"Logical_Router": TableSpec(("name", "nope"))})
    assert state.request(MonitorMethod.MONITOR_COND_SINCE, SCHEMA) == [
        "hardware_vtep",
        3,
        {"Logical_Router": [{"columns": ["name"]}]},  # the server's schema lacks "nope"
        ZERO_TXN_ID,
    ]
    assert state.request(MonitorMethod.MONITOR, SCHEMA)[2] == {
        "Logical_Router": {"columns": ["name"]}
    }
    assert MonitorMethod.MONITOR_COND_SINCE.fallback is MonitorMethod.MONITOR_COND
    assert MonitorMethod.MONITOR_COND.fallback is MonitorMethod.MONITOR
    assert MonitorMethod.MONITOR.fallback is None


def test_monitor_cond_since_keeps_the_replica_when_the_server_found_the_txn() -> None:
    state = MonitorState("db", 1, {"Logical_Router": TableSpec(("name",))})
    state.request(MonitorMethod.MONITOR_COND_SINCE, SCHEMA)
    first = [False, "t1", {"Logical_Router": {ROW: {"initial": {"name": "a"}}}}]
    assert [c.kind for c in state.apply_reply(MonitorMethod.MONITOR_COND_SINCE, first)] == [
        "insert"
    ]
    state.apply_notification(
        "update3", [1, "t2", {"Logical_Router": {ROW: {"modify": {"name": "b"}}}}]
    )
    assert state.last_txn_id == "t2"
    # reconnect: the server found t2 and sends only what changed since
    assert state.request(MonitorMethod.MONITOR_COND_SINCE, SCHEMA)[3] == "t2"
    assert state.apply_reply(MonitorMethod.MONITOR_COND_SINCE, [True, "t2", {}]) == []
    assert state.replica.rows("Logical_Router")[ROW]["name"] == "b"
    # not found: the reply is the whole contents again; the replica is replaced
    changes = state.apply_reply(MonitorMethod.MONITOR_COND_SINCE, [False, "t9", {}])
    assert [c.kind for c in changes] == ["delete"]


# -- locks --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["", "1abc", "vtep-owner", "a b", "ä"])
def test_invalid_lock_names_are_refused(name: str) -> None:
    with pytest.raises(InvalidLockNameError):
        validate_lock_name(name)


def test_lock_table_follows_locked_and_stolen() -> None:
    table = LockTable()
    table.want("vtep", LockMode.LOCK)
    assert table.reply("vtep", False) == [] and not table.holds("vtep")
    assert table.notify("locked", "vtep") == [LockEvent("vtep", LockEventKind.LOCKED)]
    assert table.notify("locked", "vtep") == []  # repeated: idempotent
    assert table.notify("stolen", "vtep") == [LockEvent("vtep", LockEventKind.STOLEN)]
    assert table.is_queued("vtep")  # taken with `lock`: still queued
    assert table.notify("locked", "vtep") == [LockEvent("vtep", LockEventKind.LOCKED)]
    assert table.connection_lost() == [LockEvent("vtep", LockEventKind.LOST)]
    assert table.wanted() == ["vtep"] and not table.holds("vtep")
    table.want("other", LockMode.STEAL)
    assert table.reply("other", True) == [LockEvent("other", LockEventKind.LOCKED)]
    table.notify("stolen", "other")
    assert not table.is_queued("other")  # taken with `steal`: out of the queue
    table.forget("other")
    assert table.notify("locked", "other") == []


# -- reconnect ----------------------------------------------------------------------------

# now, call, expected state, expected action of `run` (if the call is `run`), backoff after
TRANSCRIPT: list[tuple[float, str, State, Action | None, float]] = [
    (0.0, "start", State.BACKOFF, None, 0.0),
    (0.0, "run", State.CONNECTING, Action.CONNECT, 0.0),  # first attempt: at once
    (0.5, "connect_failed", State.BACKOFF, None, 1.0),
    (1.0, "run", State.BACKOFF, None, 1.0),  # due at 1.5
    (1.5, "run", State.CONNECTING, Action.CONNECT, 1.0),
    (3.5, "run", State.BACKOFF, Action.DISCONNECT, 2.0),  # connect_timeout 2 s
    (5.5, "run", State.CONNECTING, Action.CONNECT, 2.0),
    (5.6, "connect_failed", State.BACKOFF, None, 4.0),
    (9.6, "run", State.CONNECTING, Action.CONNECT, 4.0),
    (9.7, "connect_failed", State.BACKOFF, None, 4.0),  # max_backoff
    (13.7, "run", State.CONNECTING, Action.CONNECT, 4.0),
    (13.8, "connected", State.ACTIVE, None, 4.0),
    (15.0, "activity", State.ACTIVE, None, 4.0),
    (19.9, "run", State.ACTIVE, None, 4.0),  # idle 4.9 s < probe_interval 5 s
    (20.0, "run", State.IDLE, Action.PROBE, 4.0),
    (21.0, "activity", State.ACTIVE, None, 4.0),  # the echo reply
    (26.0, "run", State.IDLE, Action.PROBE, 4.0),
    (28.9, "run", State.IDLE, None, 4.0),
    (29.0, "run", State.BACKOFF, Action.DISCONNECT, 1.0),  # up 15 s >= 4 s: reset to min
    (29.5, "disconnected", State.BACKOFF, None, 1.0),  # the shell's late report: no effect
    (30.0, "run", State.CONNECTING, Action.CONNECT, 1.0),
    (30.1, "connected", State.ACTIVE, None, 1.0),
    (30.6, "disconnected", State.BACKOFF, None, 2.0),  # up 0.5 s: flapping, keep doubling
    (32.5, "run", State.BACKOFF, None, 2.0),
    (32.6, "run", State.CONNECTING, Action.CONNECT, 2.0),
    (33.0, "stop", State.STOPPED, None, 2.0),
    (99.0, "run", State.STOPPED, None, 2.0),
]


def test_reconnect_transcript() -> None:
    fsm = Reconnect(
        ReconnectOptions(
            min_backoff=1.0,
            max_backoff=4.0,
            connect_timeout=2.0,
            probe_interval=5.0,
            probe_timeout=3.0,
        )
    )
    for step, (now, call, state, action, backoff) in enumerate(TRANSCRIPT):
        result = getattr(fsm, call)(now)
        got = (fsm.state, result if call == "run" else None, fsm.backoff)
        assert got == (state, action, backoff), f"step {step}: {now} {call}"
    assert fsm.connections == 2
    assert fsm.deadline() is None


def test_reconnect_without_probes_never_probes() -> None:
    fsm = Reconnect(ReconnectOptions(probe_interval=0))
    fsm.start(0)
    assert fsm.run(0) is Action.CONNECT
    fsm.connected(0)
    assert fsm.deadline() is None and fsm.run(10_000) is None and fsm.is_connected


# -- transaction results, addresses --------------------------------------------------------


def test_check_results_names_the_failing_op_or_the_commit() -> None:
    request = [ops.comment("c"), ops.insert("Logical_Switch", {"name": "a"})]
    assert ops.check_results(request, [{}, {"uuid": ["uuid", "u"]}]) == [
        {},
        {"uuid": ["uuid", "u"]},
    ]
    with pytest.raises(TransactionError, match=r"op 1 \(insert on Logical_Switch\)") as info:
        ops.check_results(request, [{}, {"error": "constraint violation", "details": "dup"}])
    assert (info.value.index, info.value.error, info.value.details) == (
        1,
        "constraint violation",
        "dup",
    )
    with pytest.raises(TransactionError, match="commit") as info:
        ops.check_results(
            request, [{}, {"uuid": ["uuid", "u"]}, {"error": "referential integrity violation"}]
        )
    assert info.value.index == 2 and info.value.op is None


@pytest.mark.parametrize(
    ("text", "kind", "host", "port", "path"),
    [
        ("tcp:127.0.0.1:6640", "tcp", "127.0.0.1", 6640, ""),
        ("ssl:[::1]:6641", "ssl", "::1", 6641, ""),
        ("unix:/run/openvswitch/db.sock", "unix", "", 0, "/run/openvswitch/db.sock"),
    ],
)
def test_parse_address(text: str, kind: str, host: str, port: int, path: str) -> None:
    address = parse_address(text)
    assert (address.kind, address.host, address.port, address.path) == (kind, host, port, path)
    assert str(address) == text


@pytest.mark.parametrize(
    "text", ["", "tcp:", "tcp:host", "tcp:host:0", "http://x", "unix:", "ssl:h:99999"]
)
def test_parse_address_refuses(text: str) -> None:
    with pytest.raises(InvalidAddressError):
        parse_address(text)


def test_a_stray_closing_bracket_is_refused_at_once_not_waited_on() -> None:
    # a switch that sends garbage must not leave the client waiting for the rest forever
    with pytest.raises(OvsdbProtocolError, match="unbalanced"):
        JsonSplitter().feed(b'{"id": ]]] this is not json')
    with pytest.raises(OvsdbProtocolError, match="not closed"):
        JsonSplitter().feed(b'{"id": [1, 2}')
    assert JsonSplitter().feed(b'{"a": "]", "b": [[1], {"c": "["}]}') == [
        {"a": "]", "b": [[1], {"c": "["}]}
    ]
