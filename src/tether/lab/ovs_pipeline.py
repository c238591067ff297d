"""The ovs ASIC's OpenFlow pipeline: forwarding tables in, flows as data out. Pure.

:func:`compile_flows` turns what the switch agent programmed (one
:class:`~tether.lab.forwarding.ForwardingTable` per logical switch) into the flows of the
emulated switch's ``br-asic`` bridge; :func:`flow_mods` turns the step from one flow set to
the next into the lines of one ``ovs-ofctl --bundle add-flows`` (atomic) transaction.
:mod:`.ovs_asic` is the shell that installs them; ``tests/unit/test_ovs_asic_flows.py``
runs them through a small flow-table simulator.

The frame's logical switch travels in ``metadata`` (= its VNI); ``reg1`` holds the ingress
*segment* and ``reg3`` the learned destination's segment, a segment being ``0x1000 | VLAN``
(VLAN 0 stands for untagged frames); ``reg2`` holds the learned destination's port.

Tables (:data:`PIPELINE`):

* ``ingress`` (0): a frame from a bound (port, VLAN) gets its logical switch and segment, loses
  its tag and teaches ``macs`` where its source MAC lives (``learn``, idle timeout
  ``mac_age``), then goes to ``remote_l2``. A frame from the tunnel whose VNI belongs to a
  programmed logical switch gets that logical switch and goes to ``local_l2`` (a tunnelled
  frame never goes back into the tunnel). Everything else is dropped: an unbound logical
  switch forwards nothing.
* ``remote_l2`` (1): a destination MAC the controller put in ``Ucast_Macs_Remote`` goes to
  its locator through the VXLAN port (``tun_dst`` = locator, ``tun_id`` = VNI).
  Otherwise: ``local_l2``.
* ``local_l2`` (2): looks the destination up in ``macs`` (which loads ``reg2``/``reg3`` on
  a hit), then ``deliver``.
* ``macs`` (3): filled by ``learn`` only — ``metadata, dl_dst`` → port and segment. An
  OpenFlow flow monitor on this table is how the switch reports ``Ucast_Macs_Local``
  (:mod:`.mac_learning`). Each learned flow carries the cookie of the (VNI, port, VLAN) it
  was learned on (:func:`learned_cookie`), so unbinding deletes exactly those.
* ``deliver`` (4): a learned destination on a bound segment is sent there (tag pushed back);
  not to the segment the frame came from, and out of the ingress port only for another VLAN.
  Otherwise: ``flood``.
* ``flood`` (5): broadcast, multicast and unknown unicast go to the other bound segments of
  the logical switch and, from a local port only, to every flood locator (``unknown-dst``).

A frame from the tunnel that carries a VLAN tag is dropped. The switch's own tunnel IP is
never a destination: remote MACs and flood locators pointing at it are left out. Should two
logical switches share a VNI, the first by name is programmed and the other left out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from tether.lab.forwarding import ForwardingTable

__all__ = [
    "COMPILED_COOKIE",
    "DELIVER",
    "FLOOD",
    "INGRESS",
    "LOCAL_L2",
    "MACS",
    "PIPELINE",
    "REMOTE_L2",
    "Action",
    "Flow",
    "GotoTable",
    "Learn",
    "Match",
    "Output",
    "PopVlan",
    "PortMap",
    "PushVlan",
    "Resubmit",
    "SetField",
    "Table",
    "compile_flows",
    "flow_mods",
    "learned_cookie",
    "segment",
]


@dataclass(frozen=True, slots=True)
class Table:
    id: int
    name: str


INGRESS, REMOTE_L2, LOCAL_L2 = Table(0, "ingress"), Table(1, "remote_l2"), Table(2, "local_l2")
MACS, DELIVER, FLOOD = Table(3, "macs"), Table(4, "deliver"), Table(5, "flood")
PIPELINE = (INGRESS, REMOTE_L2, LOCAL_L2, MACS, DELIVER, FLOOD)

COMPILED_COOKIE = 0x7C00_0000_0000_0000
"""Cookie of every compiled flow (learned flows carry :func:`learned_cookie`)."""
_LEARNED_TAG = 0x7E
_PRESENT = 0x1000
_GROUP_BIT = "01:00:00:00:00:00/01:00:00:00:00:00"


def segment(vlan: int) -> int:
    """The register value of a (port's) VLAN: ``0x1000 | VLAN`` (0: untagged)."""
    return _PRESENT | vlan


def learned_cookie(vni: int, ofport: int, vlan: int) -> int:
    """The cookie of MACs learned on ``ofport``/``vlan`` in logical switch ``vni``."""
    return (_LEARNED_TAG << 56) | (vni << 28) | (ofport << 12) | vlan


@dataclass(frozen=True, slots=True)
class PortMap:
    """OpenFlow port numbers of the front-panel ports (by name) and of the VXLAN port."""

    front_panel: Mapping[str, int]
    tunnel: int


@dataclass(frozen=True, slots=True)
class Match:
    """The fields a flow matches; None matches anything."""

    in_port: int | None = None
    vlan: int | None = None
    """802.1Q VID; 0 matches untagged frames only."""
    tun_id: int | None = None
    metadata: int | None = None
    dl_dst: str | None = None
    """A MAC, or ``group`` for every broadcast/multicast MAC."""
    reg1: int | None = None
    reg2: int | None = None
    reg3: int | None = None

    def to_ofctl(self) -> str:
        fields = [] if self.in_port is None else [f"in_port={self.in_port}"]
        for name in ("tun_id", "metadata", "reg1", "reg2", "reg3"):
            value = getattr(self, name)
            if value is not None:
                fields.append(f"{name}={value:#x}")
        if self.vlan == 0:
            fields.append("vlan_tci=0x0000/0x1fff")
        elif self.vlan is not None:
            fields.append(f"dl_vlan={self.vlan}")
        if self.dl_dst is not None:
            fields.append(f"dl_dst={_GROUP_BIT if self.dl_dst == 'group' else self.dl_dst}")
        return ",".join(fields)


@dataclass(frozen=True, slots=True)
class Output:
    port: int | Literal["in_port"]


@dataclass(frozen=True, slots=True)
class PushVlan:
    pass


@dataclass(frozen=True, slots=True)
class PopVlan:
    pass


@dataclass(frozen=True, slots=True)
class SetField:
    field: Literal["metadata", "reg1", "tun_dst", "tun_id", "vlan_vid"]
    value: int | str


@dataclass(frozen=True, slots=True)
class Learn:
    """Teach ``macs``: this frame's source MAC lives on its in_port and segment (reg1)."""

    cookie: int
    idle_timeout: int


@dataclass(frozen=True, slots=True)
class Resubmit:
    table: Table


@dataclass(frozen=True, slots=True)
class GotoTable:
    table: Table


Action = Output | PushVlan | PopVlan | SetField | Learn | Resubmit | GotoTable


def _action_text(action: Action) -> str:
    match action:
        case Output(port="in_port"):
            return "in_port"
        case Output(port=port):
            return f"output:{port}"
        case PushVlan():
            return "push_vlan:0x8100"
        case PopVlan():
            return "pop_vlan"
        case SetField(field=field, value=value):
            return f"set_field:{value}->{field}"
        case Resubmit(table=table):
            return f"resubmit(,{table.id})"
        case GotoTable(table=table):
            return f"goto_table:{table.id}"
        case Learn(cookie=cookie, idle_timeout=idle):
            return (
                f"learn(table={MACS.id},idle_timeout={idle},priority=100,cookie={cookie:#x},"
                "OXM_OF_METADATA[],NXM_OF_ETH_DST[]=NXM_OF_ETH_SRC[],"
                "load:NXM_OF_IN_PORT[]->NXM_NX_REG2[0..15],"
                "load:NXM_NX_REG1[0..12]->NXM_NX_REG3[0..12])"
            )
    raise AssertionError(action)  # pragma: no cover - the union is exhausted above


@dataclass(frozen=True, slots=True)
class Flow:
    table: Table
    priority: int
    match: Match
    actions: tuple[Action, ...] = ()
    """Empty: drop."""

    @property
    def key(self) -> tuple[int, int, Match]:
        """What identifies the flow in its table (an OpenFlow strict match)."""
        return (self.table.id, self.priority, self.match)

    def match_text(self) -> str:
        match = self.match.to_ofctl()
        return f"table={self.table.id},priority={self.priority}" + (f",{match}" if match else "")

    def to_ofctl(self) -> str:
        actions = ",".join(_action_text(a) for a in self.actions) or "drop"
        return f"{self.match_text()},cookie={COMPILED_COOKIE:#x} actions={actions}"


Segment = tuple[int, int]
"""(OpenFlow port, VLAN) of a bound front-panel segment."""


def _outputs(
    targets: Iterable[Segment],
    *,
    ingress_port: int | None,
    locators: Sequence[str],
    vni: int,
    tunnel: int,
) -> tuple[Action, ...]:
    """Send an untagged frame to ``locators`` (VXLAN), then to each target segment."""
    actions: list[Action] = []
    for ip in locators:
        actions += [SetField("tun_dst", ip), SetField("tun_id", vni), Output(tunnel)]

    def out(port: int) -> Output:
        return Output("in_port" if port == ingress_port else port)

    ordered = sorted(targets, key=lambda target: (target[1] != 0, target))
    actions += [out(port) for port, vlan in ordered if vlan == 0]
    tagged = [(port, vlan) for port, vlan in ordered if vlan != 0]
    if tagged:
        actions.append(PushVlan())
    for port, vlan in tagged:
        actions += [SetField("vlan_vid", segment(vlan)), out(port)]
    return tuple(actions)


def _segments(table: ForwardingTable, ports: PortMap) -> list[Segment]:
    return sorted(
        (ports.front_panel[port], vlan)
        for port, vlan in table.bindings
        if port in ports.front_panel and 0 <= vlan <= 4095
    )


def _is_unicast(mac: str) -> bool:
    """A unicast MAC (a group MAC, or anything that is no MAC, is never a remote entry)."""
    try:
        return not int(mac.split(":", maxsplit=1)[0], 16) & 1
    except ValueError:
        return False


def _logical_switch_flows(
    table: ForwardingTable, ports: PortMap, *, own_ip: str, mac_age: int
) -> list[Flow]:
    segments = _segments(table, ports)
    if not segments:
        return []
    vni, tunnel = table.vni, ports.tunnel
    locators = sorted(ip for ip in table.flood_locators if ip and ip != own_ip)
    flows = [
        Flow(
            INGRESS,
            100,
            Match(in_port=tunnel, vlan=0, tun_id=vni),
            (SetField("metadata", vni), GotoTable(LOCAL_L2)),
        ),
        Flow(
            FLOOD,
            100,
            Match(in_port=tunnel, metadata=vni),
            _outputs(segments, ingress_port=None, locators=(), vni=vni, tunnel=tunnel),
        ),
    ]
    for mac, entry in sorted(table.remote_macs.items()):
        if _is_unicast(mac) and entry.locator and entry.locator != own_ip:
            actions = (SetField("tun_dst", entry.locator), SetField("tun_id", vni), Output(tunnel))
            flows.append(Flow(REMOTE_L2, 100, Match(metadata=vni, dl_dst=mac.lower()), actions))
    for port, vlan in segments:
        flows += _segment_flows(table, segments, (port, vlan), ports, locators, mac_age)
    return flows


def _segment_flows(
    table: ForwardingTable,
    segments: Sequence[Segment],
    this: Segment,
    ports: PortMap,
    locators: Sequence[str],
    mac_age: int,
) -> list[Flow]:
    """Ingress, delivery and flooding of one bound segment."""
    (port, vlan), vni, seg = this, table.vni, segment(this[1])
    ingress: tuple[Action, ...] = (
        *((PopVlan(),) if vlan else ()),
        SetField("metadata", vni),
        SetField("reg1", seg),
        Learn(learned_cookie(vni, port, vlan), mac_age),
        GotoTable(REMOTE_L2),
    )
    known = Match(metadata=vni, reg2=port, reg3=seg)
    to_this = _outputs([this], ingress_port=None, locators=(), vni=vni, tunnel=ports.tunnel)
    others = [other for other in segments if other != this]
    flood = _outputs(others, ingress_port=port, locators=locators, vni=vni, tunnel=ports.tunnel)
    return [
        Flow(INGRESS, 100, Match(in_port=port, vlan=vlan), ingress),
        Flow(DELIVER, 100, known, to_this),
        Flow(
            DELIVER,
            110,
            Match(in_port=port, metadata=vni, reg2=port, reg3=seg),
            _outputs([this], ingress_port=port, locators=(), vni=vni, tunnel=ports.tunnel),
        ),
        Flow(DELIVER, 120, Match(in_port=port, metadata=vni, reg1=seg, reg2=port, reg3=seg)),
        Flow(FLOOD, 100, Match(in_port=port, metadata=vni, reg1=seg), flood),
    ]


_BASE = (
    Flow(INGRESS, 0, Match()),
    Flow(REMOTE_L2, 0, Match(), (GotoTable(LOCAL_L2),)),
    Flow(LOCAL_L2, 0, Match(), (Resubmit(MACS), GotoTable(DELIVER))),
    Flow(DELIVER, 0, Match(), (GotoTable(FLOOD),)),
    Flow(FLOOD, 0, Match()),
)


def compile_flows(
    tables: Mapping[str, ForwardingTable], ports: PortMap, *, own_ip: str, mac_age: int = 300
) -> tuple[Flow, ...]:
    """Every compiled flow of ``br-asic`` for the programmed ``tables`` (see the module)."""
    flows = list(_BASE)
    vnis: set[int] = set()
    for _, table in sorted(tables.items()):
        if table.vni in vnis:
            continue
        vnis.add(table.vni)
        flows += _logical_switch_flows(table, ports, own_ip=own_ip, mac_age=mac_age)
    return tuple(flows)


def _learned_cookies(flows: Iterable[Flow]) -> set[int]:
    return {a.cookie for f in flows for a in f.actions if isinstance(a, Learn)}


def flow_mods(old: Sequence[Flow] | None, new: Sequence[Flow]) -> list[str]:
    """``ovs-ofctl add-flows`` lines taking ``br-asic`` from ``old`` to ``new``.

    ``old`` None (power-on) deletes every flow first. Otherwise flows that left are deleted
    strictly, MACs learned on segments that are no longer bound are deleted by cookie, and
    new or changed flows are added (an add replaces a flow with the same match and
    priority). Deletes come first; the whole list is one atomic bundle, and empty when
    nothing changed.
    """
    if old is None:
        return ["delete", *(f"add {flow.to_ofctl()}" for flow in new)]
    before = set(old)
    adds = [f"add {flow.to_ofctl()}" for flow in new if flow not in before]
    new_keys = {flow.key for flow in new}
    deletes = [f"delete_strict {flow.match_text()}" for flow in old if flow.key not in new_keys]
    forgotten = sorted(_learned_cookies(old) - _learned_cookies(new))
    deletes += [f"delete table={MACS.id},cookie={cookie:#x}/-1" for cookie in forgotten]
    return deletes + adds
