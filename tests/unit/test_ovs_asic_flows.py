"""The ovs ASIC's pure cores: its flow compiler, run through a small OpenFlow table
simulator, and its learned-MAC reporting.

:class:`FlowSim` applies the compiled flows (as data, :mod:`tether.lab.ovs_pipeline`) to a
frame the way ``ovs-vswitchd`` would — highest-priority match per table, ``goto_table``,
``resubmit``, ``learn`` into the ``macs`` table, VLAN push/pop, tunnel fields — and reports
where copies of the frame leave. Tests ask behavioural questions (which ports, which VLAN
tags, which locators and VNIs), and a property test checks that for frames from front-panel
ports the pipeline agrees with the memory ASIC's :func:`~tether.lab.forwarding.lookup`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.lab.forwarding import ForwardingTable, RemoteEntry, lookup
from tether.lab.mac_learning import LearnedMac, MacEvent, local_mac_ops, parse_monitor_line
from tether.lab.ovs_pipeline import (
    MACS,
    PIPELINE,
    Flow,
    GotoTable,
    Learn,
    Match,
    Output,
    PopVlan,
    PortMap,
    PushVlan,
    Resubmit,
    SetField,
    compile_flows,
    flow_mods,
    learned_cookie,
)
from tether.ovsdb.replica import Uuid

PORTS = PortMap({"eth1": 1, "eth2": 2, "eth3": 3}, tunnel=9)
NAMES = {number: name for name, number in PORTS.front_panel.items()}
OWN_IP = "192.0.2.21"
A, B, C = "02:00:00:00:00:0a", "02:00:00:00:00:0b", "02:00:00:00:00:0c"
BROADCAST = "ff:ff:ff:ff:ff:ff"


@dataclass(frozen=True)
class Copy:
    """A frame leaving the switch: by a front-panel port (with its VLAN, 0 = untagged) or
    by the tunnel (to ``locator`` with ``vni``)."""

    port: str
    vlan: int | None = None
    locator: str | None = None
    vni: int | None = None


@dataclass
class Packet:
    in_port: int
    vlan: int | None
    src: str
    dst: str
    tun_id: int | None = None
    metadata: int = 0
    regs: dict[str, int] = field(default_factory=lambda: {"reg1": 0, "reg2": 0, "reg3": 0})
    tun_dst: str | None = None
    out_tun_id: int | None = None


class FlowSim:
    """Compiled flows plus the ``macs`` table that ``learn`` fills."""

    def __init__(self, flows: Sequence[Flow]) -> None:
        self.flows = flows
        self.macs: dict[tuple[int, str], tuple[int, int, int]] = {}  # -> port, segment, cookie

    def send(
        self, port: str, *, src: str, dst: str, vlan: int = 0, vni: int | None = None
    ) -> set[Copy]:
        """A frame enters ``port`` (``tunnel`` with ``vni``; VLAN 0 = untagged)."""
        number = PORTS.tunnel if port == "tunnel" else PORTS.front_panel[port]
        packet = Packet(number, vlan or None, src, dst.lower(), tun_id=vni)
        copies: list[Copy] = []
        self._table(0, packet, copies)
        assert len(copies) == len(set(copies)), f"duplicate copies {copies}"
        return set(copies)

    def _matches(self, match: Match, p: Packet) -> bool:
        checks = [
            match.in_port in (None, p.in_port),
            match.vlan is None or (match.vlan == 0 and p.vlan is None) or match.vlan == p.vlan,
            match.tun_id in (None, p.tun_id),
            match.metadata in (None, p.metadata),
            *(getattr(match, reg) in (None, p.regs[reg]) for reg in ("reg1", "reg2", "reg3")),
        ]
        if match.dl_dst == "group":
            checks.append(bool(int(p.dst[:2], 16) & 1))
        elif match.dl_dst is not None:
            checks.append(match.dl_dst == p.dst)
        return all(checks)

    def _table(self, table: int, p: Packet, copies: list[Copy]) -> None:
        if table == MACS.id:
            hit = self.macs.get((p.metadata, p.dst))
            if hit is not None:
                p.regs["reg2"], p.regs["reg3"] = hit[0], hit[1]
            return
        candidates = [f for f in self.flows if f.table.id == table and self._matches(f.match, p)]
        top = max(f.priority for f in candidates)  # every table ends in a priority-0 flow
        [flow] = [f for f in candidates if f.priority == top]  # ties would be a compiler bug
        for action in flow.actions:
            self._act(action, p, copies)

    def _act(self, action: object, p: Packet, copies: list[Copy]) -> None:
        match action:
            case PopVlan():
                p.vlan = None
            case PushVlan():
                p.vlan = 0
            case SetField(field="vlan_vid", value=value):
                p.vlan = int(value) & 0xFFF
            case SetField(field="metadata", value=value):
                p.metadata = int(value)
            case SetField(field="tun_dst", value=value):
                p.tun_dst = str(value)
            case SetField(field="tun_id", value=value):
                p.out_tun_id = int(value)
            case SetField(field=reg, value=value):
                p.regs[reg] = int(value)
            case Learn(cookie=cookie):
                self.macs[(p.metadata, p.src)] = (p.in_port, p.regs["reg1"], cookie)
            case Resubmit(table=table) | GotoTable(table=table):
                self._table(table.id, p, copies)
            case Output(port=port):
                self._output(p.in_port if port == "in_port" else port, p, copies, port)

    def _output(self, number: int, p: Packet, copies: list[Copy], how: object) -> None:
        if number == p.in_port and how != "in_port":
            return  # OpenFlow: never out of the ingress port unless asked for by name
        if number == PORTS.tunnel:
            assert p.vlan is None, "VXLAN carries untagged frames"
            copies.append(Copy("tunnel", locator=p.tun_dst, vni=p.out_tun_id))
        else:
            copies.append(Copy(NAMES[number], vlan=p.vlan or 0))


def web(**changes: object) -> ForwardingTable:
    table = ForwardingTable(
        name="web",
        vni=5001,
        bindings=frozenset({("eth1", 100), ("eth2", 0)}),
        remote_macs={B: RemoteEntry("192.0.2.22")},
        flood_locators=frozenset({"192.0.2.22", "192.0.2.23"}),
    )
    return replace(table, **changes)  # type: ignore[arg-type]


def sim(*tables: ForwardingTable) -> FlowSim:
    return FlowSim(compile_flows({t.name: t for t in tables}, PORTS, own_ip=OWN_IP))


def tunnel(locator: str, vni: int = 5001) -> Copy:
    return Copy("tunnel", locator=locator, vni=vni)


# -- local ingress ------------------------------------------------------------------------


def test_broadcast_from_a_bound_vlan_floods_locators_and_the_other_segments() -> None:
    copies = sim(web()).send("eth1", vlan=100, src=A, dst=BROADCAST)
    assert copies == {tunnel("192.0.2.22"), tunnel("192.0.2.23"), Copy("eth2", 0)}


def test_unknown_unicast_floods_like_broadcast() -> None:
    copies = sim(web()).send("eth2", src=A, dst=C)
    assert copies == {tunnel("192.0.2.22"), tunnel("192.0.2.23"), Copy("eth1", 100)}


def test_a_remote_mac_goes_to_its_locator_only() -> None:
    assert sim(web()).send("eth1", vlan=100, src=A, dst=B) == {tunnel("192.0.2.22")}


def test_unbound_ports_and_vlans_forward_nothing() -> None:
    switch = sim(web())
    assert switch.send("eth1", vlan=200, src=A, dst=BROADCAST) == set()
    assert switch.send("eth1", src=A, dst=B) == set()  # untagged: only VLAN 100 is bound
    assert switch.send("eth3", src=A, dst=BROADCAST) == set()
    assert sim(web(bindings=frozenset())).send("eth1", vlan=100, src=A, dst=B) == set()


def test_the_own_tunnel_ip_is_never_a_destination() -> None:
    table = web(flood_locators=frozenset({OWN_IP}), remote_macs={B: RemoteEntry(OWN_IP)})
    assert sim(table).send("eth1", vlan=100, src=A, dst=B) == {Copy("eth2", 0)}


def test_two_vlans_on_one_port_hairpin_through_in_port() -> None:
    table = web(bindings=frozenset({("eth1", 100), ("eth1", 200)}), flood_locators=frozenset())
    switch = sim(table)
    assert switch.send("eth1", vlan=100, src=A, dst=BROADCAST) == {Copy("eth1", 200)}
    switch.send("eth1", vlan=200, src=C, dst=BROADCAST)  # learn C on eth1/200
    assert switch.send("eth1", vlan=100, src=A, dst=C) == {Copy("eth1", 200)}
    assert switch.send("eth1", vlan=200, src=A, dst=C) == set()  # already on that segment


# -- tunnel ingress and learning ------------------------------------------------------------


def test_tunnelled_frames_flood_locally_but_never_back_into_the_tunnel() -> None:
    switch = sim(web())
    assert switch.send("tunnel", vni=5001, src=B, dst=BROADCAST) == {
        Copy("eth1", 100),
        Copy("eth2", 0),
    }
    assert switch.send("tunnel", vni=5001, src=C, dst=B) == {Copy("eth1", 100), Copy("eth2", 0)}
    assert switch.send("tunnel", vni=7777, src=B, dst=BROADCAST) == set()
    assert switch.send("tunnel", vni=5001, vlan=100, src=B, dst=BROADCAST) == set()


def test_a_learned_mac_receives_its_frames_on_its_own_segment_only() -> None:
    switch = sim(web())
    switch.send("eth1", vlan=100, src=A, dst=BROADCAST)
    assert switch.macs[(5001, A)][2] == learned_cookie(5001, 1, 100)
    assert switch.send("tunnel", vni=5001, src=B, dst=A) == {Copy("eth1", 100)}
    assert switch.send("eth2", src=C, dst=A) == {Copy("eth1", 100)}
    assert switch.send("eth1", vlan=100, src=C, dst=A) == set()  # same segment: no copy


def test_logical_switches_are_isolated() -> None:
    db = ForwardingTable("db", 5002, frozenset({("eth3", 0)}), {}, frozenset({"192.0.2.30"}))
    switch = sim(web(), db)
    assert switch.send("eth3", src=C, dst=BROADCAST) == {tunnel("192.0.2.30", 5002)}
    switch.send("eth3", src=C, dst=B)
    assert Copy("eth3", 0) not in switch.send("eth1", vlan=100, src=A, dst=C)  # C is in 5002
    assert Copy("eth3", 0) not in switch.send("tunnel", vni=5001, src=B, dst=C)


def test_a_duplicate_vni_is_programmed_once_first_name_first() -> None:
    other = ForwardingTable("zzz", 5001, frozenset({("eth3", 0)}), {}, frozenset())
    assert sim(web(), other).send("eth3", src=A, dst=BROADCAST) == set()


# -- agreement with the memory ASIC ---------------------------------------------------------

macs = st.sampled_from([A, B, C, "02:00:00:00:00:0d"])
segments = st.tuples(st.sampled_from(sorted(PORTS.front_panel)), st.sampled_from([0, 100, 200]))
locators = st.sampled_from(["192.0.2.22", "192.0.2.23", "192.0.2.24"])
tables = st.builds(
    ForwardingTable,
    name=st.just("web"),
    vni=st.integers(1, 2**24 - 1),
    bindings=st.frozensets(segments, max_size=4),
    remote_macs=st.dictionaries(macs, st.builds(RemoteEntry, locators), max_size=3),
    flood_locators=st.frozensets(locators, max_size=3),
)


@settings(max_examples=300, deadline=None)
@given(table=tables, ingress=segments, dst=st.one_of(macs, st.just(BROADCAST)))
def test_the_pipeline_forwards_like_the_memory_asic(
    table: ForwardingTable, ingress: tuple[str, int], dst: str
) -> None:
    port, vlan = ingress
    copies = sim(table).send(port, vlan=vlan, src="02:00:00:00:00:ee", dst=dst)
    verdict = lookup({"web": table}, port=port, vlan=vlan, mac=dst)
    expected = {tunnel(ip, table.vni) for ip in verdict.locators}
    expected |= {Copy(p, v) for p, v in verdict.local_ports}
    assert copies == expected, verdict.describe()


# -- flow mods --------------------------------------------------------------------------------


def test_power_on_deletes_everything_then_adds() -> None:
    flows = compile_flows({"web": web()}, PORTS, own_ip=OWN_IP)
    mods = flow_mods(None, flows)
    assert mods[0] == "delete" and len(mods) == len(flows) + 1
    assert all(line.startswith("add table=") for line in mods[1:])


def test_unbinding_deletes_its_flows_and_what_was_learned_there() -> None:
    before = compile_flows({"web": web()}, PORTS, own_ip=OWN_IP)
    after = compile_flows({"web": web(bindings=frozenset({("eth2", 0)}))}, PORTS, own_ip=OWN_IP)
    mods = flow_mods(before, after)
    assert f"delete table=3,cookie={learned_cookie(5001, 1, 100):#x}/-1" in mods
    assert not any(line.startswith("add") and "in_port=1," in line for line in mods)
    deletes = [line for line in mods if line.startswith("delete_strict")]
    assert deletes and all("actions" not in line for line in deletes)
    assert mods.index(deletes[-1]) < min(i for i, m in enumerate(mods) if m.startswith("add"))
    assert flow_mods(after, after) == []


def test_removing_every_logical_switch_leaves_the_base_pipeline() -> None:
    before = compile_flows({"web": web()}, PORTS, own_ip=OWN_IP)
    after = compile_flows({}, PORTS, own_ip=OWN_IP)
    assert {flow.table for flow in after} == set(PIPELINE) - {MACS}
    mods = flow_mods(before, after)
    assert not any(line.startswith("add") for line in mods)
    assert sum(line.startswith("delete table=3,cookie=") for line in mods) == 2


# -- learned MACs: the flow monitor's lines and Ucast_Macs_Local ------------------------------

ADDED = (
    " event=ADDED table=3 idle_timeout=300 cookie=0x7e00013890001064 "
    "metadata=0x1389,dl_dst=02:00:00:00:01:10 actions=load:0x1->NXM_NX_REG2[0..15],"
    "load:0x1064->NXM_NX_REG3[0..12]"
)


def test_monitor_lines_become_learned_mac_events() -> None:
    added = parse_monitor_line(ADDED)
    assert added == MacEvent(LearnedMac(5001, "02:00:00:00:01:10"), present=True)
    gone = parse_monitor_line(ADDED.replace("event=ADDED", "event=DELETED reason=idle"))
    assert gone == MacEvent(LearnedMac(5001, "02:00:00:00:01:10"), present=False, reason="idle")
    assert parse_monitor_line("NXST_FLOW_MONITOR reply (xid=0x0):") is None
    assert parse_monitor_line(" event=ABBREV xid=0x1") is None


def _rows(ls: str = "ls-uuid", locator: str = "loc-uuid", mac: str = A) -> dict[str, Any]:
    return {
        "Logical_Switch": {Uuid(ls): {"name": "web"}},
        "Physical_Locator": {Uuid(locator): {"dst_ip": OWN_IP, "tunnel_key": None}},
        "Ucast_Macs_Local": {
            Uuid("row"): {"MAC": mac, "logical_switch": ls, "locator": locator, "ipaddr": ""}
        },
    }


def test_ucast_macs_local_follows_what_was_learned() -> None:
    programmed = {"web": web()}
    tables = _rows()
    learned = {LearnedMac(5001, A)}
    assert local_mac_ops(learned, programmed=programmed, tables=tables, tunnel_ip=OWN_IP) == []
    ops_ = local_mac_ops(
        learned | {LearnedMac(5001, B)}, programmed=programmed, tables=tables, tunnel_ip=OWN_IP
    )
    assert [(op["op"], op["table"], op.get("row", {}).get("MAC")) for op in ops_] == [
        ("insert", "Ucast_Macs_Local", B)
    ]
    assert ops_[0]["row"]["locator"] == ["uuid", "loc-uuid"]
    removed = local_mac_ops(set(), programmed=programmed, tables=tables, tunnel_ip=OWN_IP)
    assert [(op["op"], op["where"]) for op in removed] == [
        ("delete", [["_uuid", "==", ["uuid", "row"]]])
    ]


def test_macs_of_unprogrammed_logical_switches_are_not_reported() -> None:
    tables = _rows()
    ops_ = local_mac_ops({LearnedMac(5001, A)}, programmed={}, tables=tables, tunnel_ip=OWN_IP)
    assert [op["op"] for op in ops_] == ["delete"]


def test_the_own_locator_is_inserted_with_the_first_mac() -> None:
    tables = {**_rows(), "Physical_Locator": {}, "Ucast_Macs_Local": {}}
    ops_ = local_mac_ops(
        {LearnedMac(5001, A)}, programmed={"web": web()}, tables=tables, tunnel_ip=OWN_IP
    )
    locator, mac = ops_
    assert locator["table"] == "Physical_Locator" and locator["row"]["dst_ip"] == OWN_IP
    assert mac["row"]["locator"] == ["named-uuid", locator["uuid-name"]]
