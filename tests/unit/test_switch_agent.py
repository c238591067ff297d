"""The switch agent's decision core, driven step by step without a server.

A small in-memory ``hardware_vtep`` database (rows in the replica's decoded form, turned into
OVSDB notation by ``raw_tables`` as the agent does) and a simulated agent that applies each
decision to its "ASIC" and keeps its lock requests, while the test plays the lock server
(which locks are held). The questions are behavioural: what does the ASIC forward on?
"""

from __future__ import annotations

import itertools
from collections.abc import Set

from tether.lab.bootstrap import bootstrap_ops
from tether.lab.forwarding import ForwardingTable, RemoteEntry, lookup
from tether.lab.switch_agent import Decision, decide, raw_tables
from tether.ovsdb.replica import Row, Uuid
from tether.vtep.state import observe

LOCK = "ls_5001"


class Db:
    """tor1 with ports eth1 and eth2; helpers write rows as a controller would."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self.tables: dict[str, dict[Uuid, Row]] = {
            t: {}
            for t in (
                "Physical_Switch",
                "Physical_Port",
                "Logical_Switch",
                "Ucast_Macs_Remote",
                "Mcast_Macs_Remote",
                "Ucast_Macs_Local",
                "Mcast_Macs_Local",
                "Physical_Locator",
                "Physical_Locator_Set",
            )
        }
        self.ports = {
            name: self._row("Physical_Port", name=name, vlan_bindings={})
            for name in ("eth1", "eth2")
        }
        self._row(
            "Physical_Switch",
            name="tor1",
            ports=frozenset(self.ports.values()),
            tunnel_ips=frozenset({"192.0.2.21"}),
        )

    def _row(self, table: str, **columns: object) -> Uuid:
        uuid = Uuid(f"00000000-0000-0000-0000-{next(self._ids):012d}")
        self.tables[table][uuid] = dict(columns)  # type: ignore[arg-type]
        return uuid

    def _locator(self, ip: str) -> Uuid:
        for uuid, row in self.tables["Physical_Locator"].items():
            if row["dst_ip"] == ip:
                return uuid
        return self._row(
            "Physical_Locator", encapsulation_type="vxlan_over_ipv4", dst_ip=ip, tunnel_key=None
        )

    def add_switch(self, name: str, vni: int, *, consistent: bool | None = None) -> Uuid:
        return self._row(
            "Logical_Switch", name=name, tunnel_key=vni, description="", state_consistent=consistent
        )

    def set_consistent(self, ls: Uuid, value: bool | None) -> None:
        self.tables["Logical_Switch"][ls]["state_consistent"] = value

    def set_pending(self, ls: Uuid, value: bool) -> None:
        """Lock mode's mark, beside a key of the switch's own in ``other_config``."""
        mark = {"tether-pending": "true"} if value else {}
        self.tables["Logical_Switch"][ls]["other_config"] = {"vendor:asic": "x", **mark}

    def add_mac(self, ls: Uuid, mac: str, locator: str, ip: str = "") -> Uuid:
        return self._row(
            "Ucast_Macs_Remote",
            MAC=mac,
            logical_switch=ls,
            locator=self._locator(locator),
            ipaddr=ip,
        )

    def set_flood(self, ls: Uuid, *ips: str) -> None:
        for uuid, row in list(self.tables["Mcast_Macs_Remote"].items()):
            if row["logical_switch"] == ls:
                del self.tables["Mcast_Macs_Remote"][uuid]
        locators = frozenset(self._locator(ip) for ip in ips)
        the_set = self._row("Physical_Locator_Set", locators=locators)
        self._row(
            "Mcast_Macs_Remote",
            MAC="unknown-dst",
            logical_switch=ls,
            locator_set=the_set,
            ipaddr="",
        )

    def bind(self, port: str, vlan: int, ls: Uuid) -> None:
        bindings = dict(self.tables["Physical_Port"][self.ports[port]]["vlan_bindings"])  # type: ignore[arg-type]
        bindings[vlan] = ls
        self.tables["Physical_Port"][self.ports[port]]["vlan_bindings"] = bindings

    def unbind(self, port: str, vlan: int) -> None:
        bindings = dict(self.tables["Physical_Port"][self.ports[port]]["vlan_bindings"])  # type: ignore[arg-type]
        del bindings[vlan]
        self.tables["Physical_Port"][self.ports[port]]["vlan_bindings"] = bindings

    def delete(self, table: str, uuid: Uuid) -> None:
        del self.tables[table][uuid]


class Agent:
    """The shell's bookkeeping around ``decide``: an ASIC dict and the requested locks."""

    def __init__(self) -> None:
        self.asic: dict[str, ForwardingTable] = {}
        self.requested: set[str] = set()
        self.applied: list[tuple[str, ForwardingTable | None]] = []

    def step(self, db: Db, *, held: Set[str]) -> Decision:
        view = observe(raw_tables(db.tables), "tor1")
        decision = decide(view, programmed=self.asic, held=held, requested=self.requested)
        for name, table in decision.program.items():
            self.applied.append((name, table))
            if table is None:
                del self.asic[name]
            else:
                self.asic[name] = table
        self.requested |= set(decision.lock)
        self.requested -= set(decision.unlock)
        return decision


def web(db: Db, *, consistent: bool | None = None) -> Uuid:
    """Logical switch ``web`` (VNI 5001) with one remote MAC and a flood set, unbound."""
    ls = db.add_switch("web", 5001, consistent=consistent)
    db.add_mac(ls, "02:00:00:00:00:01", "192.0.2.11", "10.0.0.1")
    db.set_flood(ls, "192.0.2.11", "192.0.2.12")
    return ls


def programmed_web(agent: Agent, db: Db) -> Uuid:
    ls = web(db)
    db.bind("eth1", 100, ls)
    agent.step(db, held=set())
    agent.step(db, held={LOCK})
    assert "web" in agent.asic
    return ls


WEB = ForwardingTable(
    name="web",
    vni=5001,
    bindings=frozenset({("eth1", 100)}),
    remote_macs={"02:00:00:00:00:01": RemoteEntry("192.0.2.11", "10.0.0.1")},
    flood_locators=frozenset({"192.0.2.11", "192.0.2.12"}),
)


def test_an_unbound_logical_switch_is_not_programmed_nor_locked() -> None:
    db, agent = Db(), Agent()
    web(db)
    decision = agent.step(db, held={LOCK})
    assert decision.is_empty and agent.asic == {}
    verdict = lookup(agent.asic, port="eth1", vlan=100, mac="02:00:00:00:00:01")
    assert verdict.action == "drop"


def test_binding_asks_for_the_lock_then_programs_the_whole_switch() -> None:
    db, agent = Db(), Agent()
    db.bind("eth1", 100, web(db))
    first = agent.step(db, held=set())
    assert first.lock == (LOCK,) and agent.asic == {}
    assert first.held_back == {"web": f"lock {LOCK} is not held"}
    agent.step(db, held={LOCK})
    assert agent.asic == {"web": WEB}
    forward = lookup(agent.asic, port="eth1", vlan=100, mac="02:00:00:00:00:01")
    assert (forward.action, forward.locators) == ("forward", ("192.0.2.11",))
    flood = lookup(agent.asic, port="eth1", vlan=100, mac="02:00:00:00:00:99")
    assert (flood.action, flood.locators) == ("flood", ("192.0.2.11", "192.0.2.12"))
    assert lookup(agent.asic, port="eth2", vlan=100, mac="02:00:00:00:00:01").action == "drop"


def test_state_consistent_false_keeps_the_last_state_until_true() -> None:
    db, agent = Db(), Agent()
    ls = programmed_web(agent, db)
    db.set_consistent(ls, False)
    db.add_mac(ls, "02:00:00:00:00:02", "192.0.2.13")
    db.set_flood(ls, "192.0.2.13")
    decision = agent.step(db, held={LOCK})
    assert decision.program == {} and agent.asic == {"web": WEB}
    assert decision.held_back == {"web": "state_consistent is false"}
    assert decision.unlock == ()  # still carried: the lock stays wanted
    db.set_consistent(ls, True)
    agent.step(db, held={LOCK})
    new = agent.asic["web"]
    assert set(new.remote_macs) == {"02:00:00:00:00:01", "02:00:00:00:00:02"}
    assert new.flood_locators == {"192.0.2.13"}


def test_a_new_switch_created_inconsistent_is_programmed_only_once_consistent() -> None:
    db, agent = Db(), Agent()
    ls = web(db, consistent=False)
    db.bind("eth1", 100, ls)
    assert agent.step(db, held={LOCK}).lock == (LOCK,)  # asked for while it waits
    assert agent.asic == {}
    db.set_consistent(ls, None)  # absent/empty means consistent
    agent.step(db, held={LOCK})
    assert agent.asic == {"web": WEB}


def test_without_the_lock_nothing_changes_and_locked_applies_everything_at_once() -> None:
    db, agent = Db(), Agent()
    ls = programmed_web(agent, db)
    applied_before = len(agent.applied)
    # the controller stole the lock and writes in several steps
    mac2 = db.add_mac(ls, "02:00:00:00:00:02", "192.0.2.13")
    assert agent.step(db, held=set()).program == {}
    db.add_mac(ls, "02:00:00:00:00:03", "192.0.2.13")
    db.set_flood(ls, "192.0.2.13")
    db.delete("Ucast_Macs_Remote", mac2)
    db.bind("eth2", 200, ls)
    assert agent.step(db, held=set()).program == {}
    assert agent.asic == {"web": WEB}
    # unlocked: `locked` arrives, the whole state is read and applied in one step
    agent.step(db, held={LOCK})
    assert len(agent.applied) == applied_before + 1
    final = agent.asic["web"]
    assert final.bindings == {("eth1", 100), ("eth2", 200)}
    assert set(final.remote_macs) == {"02:00:00:00:00:01", "02:00:00:00:00:03"}
    assert final.flood_locators == {"192.0.2.13"}


def test_a_pending_mark_keeps_the_last_state_even_with_the_lock_held() -> None:
    """The controller died half way through a lock-mode update: the server handed the lock
    back with its session, but the mark says the rows are partial."""
    db, agent = Db(), Agent()
    ls = programmed_web(agent, db)
    db.set_pending(ls, True)  # the controller's first transaction of the stage
    db.add_mac(ls, "02:00:00:00:00:02", "192.0.2.13")  # ... and some of its rows
    db.set_flood(ls, "192.0.2.13")
    assert agent.step(db, held=set()).program == {}  # the lock is stolen meanwhile
    decision = agent.step(db, held={LOCK})  # `locked`: the controller's session closed
    assert decision.program == {} and agent.asic == {"web": WEB}
    assert decision.held_back == {"web": "tether-pending is set: its writer died mid-update"}
    assert decision.unlock == ()  # the lock stays wanted: the switch is still carried
    verdict = lookup(agent.asic, port="eth1", vlan=100, mac="02:00:00:00:00:02")
    assert verdict.action == "flood" and verdict.locators == ("192.0.2.11", "192.0.2.12")
    # the restarted controller steals the lock, finishes, clears the mark, unlocks
    db.add_mac(ls, "02:00:00:00:00:03", "192.0.2.13")
    db.set_pending(ls, False)
    assert agent.step(db, held=set()).program == {}
    agent.step(db, held={LOCK})
    assert set(agent.asic["web"].remote_macs) == {
        "02:00:00:00:00:01",
        "02:00:00:00:00:02",
        "02:00:00:00:00:03",
    }
    assert agent.asic["web"].flood_locators == {"192.0.2.13"}


def test_a_new_switch_inserted_pending_is_not_programmed_while_marked() -> None:
    db, agent = Db(), Agent()
    ls = web(db)
    db.set_pending(ls, True)
    db.bind("eth1", 100, ls)
    assert agent.step(db, held={LOCK}).lock == (LOCK,)  # asked for while it waits
    assert agent.step(db, held={LOCK}).program == {} and agent.asic == {}
    db.set_pending(ls, False)
    agent.step(db, held={LOCK})
    assert agent.asic == {"web": WEB}


def test_a_repeated_locked_changes_nothing() -> None:
    db, agent = Db(), Agent()
    programmed_web(agent, db)
    applied = list(agent.applied)
    for _ in range(3):
        assert agent.step(db, held={LOCK}).is_empty
    assert agent.applied == applied


def test_removal_of_the_logical_switch_removes_it_and_releases_the_lock() -> None:
    db, agent = Db(), Agent()
    ls = programmed_web(agent, db)
    db.unbind("eth1", 100)
    for table in ("Ucast_Macs_Remote", "Mcast_Macs_Remote"):
        db.tables[table].clear()
    db.delete("Logical_Switch", ls)
    decision = agent.step(db, held={LOCK})
    assert decision.program == {"web": None} and agent.asic == {}
    assert decision.unlock == (LOCK,) and agent.requested == set()
    assert agent.step(db, held=set()).is_empty


def test_unbinding_removes_it_from_the_asic_at_once() -> None:
    db, agent = Db(), Agent()
    programmed_web(agent, db)
    db.unbind("eth1", 100)  # bind-last's update path: the gap shows
    decision = agent.step(db, held={LOCK})
    assert decision.program == {"web": None} and decision.unlock == (LOCK,)
    assert lookup(agent.asic, port="eth1", vlan=100, mac="02:00:00:00:00:01").action == "drop"


def test_removal_while_the_lock_is_stolen_waits_for_the_lock() -> None:
    db, agent = Db(), Agent()
    ls = programmed_web(agent, db)
    db.unbind("eth1", 100)
    db.tables["Ucast_Macs_Remote"].clear()
    db.tables["Mcast_Macs_Remote"].clear()
    db.delete("Logical_Switch", ls)
    decision = agent.step(db, held=set())
    assert agent.asic == {"web": WEB} and decision.unlock == ()
    assert agent.step(db, held={LOCK}).program == {"web": None}


def test_a_new_vni_moves_the_lock() -> None:
    db, agent = Db(), Agent()
    ls = programmed_web(agent, db)
    db.tables["Logical_Switch"][ls]["tunnel_key"] = 5002
    decision = agent.step(db, held={LOCK})
    assert decision.lock == ("ls_5002",) and decision.program == {}
    agent.step(db, held={LOCK, "ls_5002"})
    assert agent.asic["web"].vni == 5002
    assert agent.requested == {"ls_5002"}


def test_broadcast_floods_to_locators_and_other_bound_ports() -> None:
    table = ForwardingTable(
        "web", 5001, frozenset({("eth1", 100), ("eth2", 7)}), {}, frozenset({"192.0.2.12"})
    )
    verdict = lookup({"web": table}, port="eth1", vlan=100, mac="FF:FF:FF:FF:FF:FF")
    assert verdict.action == "flood" and verdict.local_ports == (("eth2", 7),)
    lonely = ForwardingTable("web", 5001, frozenset({("eth1", 100)}))
    assert lookup({"web": lonely}, port="eth1", vlan=100, mac="02:00:00:00:00:05").action == "drop"
    assert ForwardingTable.from_json(table.to_json()) == table


def _apply_to_selected(
    db_rows: dict[str, list[dict[str, object]]], result_ops: list[dict[str, object]]
) -> None:
    """Apply bootstrap ops to select-form rows (enough of OVSDB for these three tables)."""
    names: dict[str, list[str]] = {}
    for index, op in enumerate(result_ops):
        uuid = ["uuid", f"u{len(names)}-{index}"]
        if op["op"] == "insert":
            row = dict(op["row"])  # type: ignore[call-overload]
            names[str(op.get("uuid-name", index))] = uuid
            for column, value in row.items():
                if isinstance(value, list) and value[0] == "set":
                    row[column] = [
                        "set",
                        [names.get(v[1], v) if v[0] == "named-uuid" else v for v in value[1]],
                    ]
            db_rows[str(op["table"])].append({"_uuid": uuid, **row})
        elif op["op"] == "mutate":
            [[column, _, value]] = op["mutations"]  # type: ignore[misc]
            target = next(r for r in db_rows[str(op["table"])] if r["_uuid"] == op["where"][0][2])  # type: ignore[index]
            added = [names[v[1]] if v[0] == "named-uuid" else v for v in value[1]]
            target[column] = ["set", [*target[column][1], *added]]  # type: ignore[index]


def test_bootstrap_writes_the_switch_once_and_adds_only_missing_ports() -> None:
    rows: dict[str, list[dict[str, object]]] = {
        "Global": [],
        "Physical_Switch": [],
        "Physical_Port": [],
    }
    first = bootstrap_ops(
        [], [], [], name="tor1", tunnel_ip="192.0.2.21", port_names=["eth1", "eth2"]
    )
    assert [(op["op"], op["table"]) for op in first] == [
        ("insert", "Physical_Port"),
        ("insert", "Physical_Port"),
        ("insert", "Physical_Switch"),
        ("insert", "Global"),
    ]
    _apply_to_selected(rows, first)
    args = (rows["Global"], rows["Physical_Switch"], rows["Physical_Port"])
    assert (
        bootstrap_ops(*args, name="tor1", tunnel_ip="192.0.2.21", port_names=["eth1", "eth2"]) == []
    )
    more = bootstrap_ops(*args, name="tor1", tunnel_ip="192.0.2.22", port_names=["eth2", "eth3"])
    assert [(op["op"], op["table"]) for op in more] == [
        ("insert", "Physical_Port"),
        ("update", "Physical_Switch"),
        ("mutate", "Physical_Switch"),
    ]
    assert more[0]["row"] == {"name": "eth3"}
