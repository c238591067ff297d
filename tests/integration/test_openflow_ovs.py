"""The compiled pipeline on a real ``ovs-vswitchd`` (userspace datapath, its own namespace):
the flows load as one bundle, and ``ofproto/trace`` answers every question of the unit tests'
simulator the same way — same output ports, same tunnel copies (VNI and VTEP), same packets
to the agent."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.daemons import require_ovs_lab
from tests.unit.test_openflow_pipeline import FLOWS, QUESTIONS, TUNNEL
from tether.lab.netns import add_namespace, delete_namespace, ip
from tether.lab.ovs_daemons import OvsInstance
from tether.openflow import simulate, to_ofctl
from tether.openflow.diff import diff_flows
from tether.openflow.flows import Flow, Output, match

pytestmark = pytest.mark.anyio

Summary = tuple[frozenset[int], frozenset[tuple[int, str]], bool]
"""Output ports, tunnel copies (VNI, VTEP), whether the agent gets the packet."""


def _prerequisites() -> None:
    require_ovs_lab()


async def _bridge(ovs: OvsInstance) -> None:
    await ovs.vsctl(
        "add-br", "br-int", "--", "set", "bridge", "br-int", "datapath_type=netdev",
        "fail_mode=secure", "protocols=OpenFlow13",
    )  # fmt: skip
    for ofport in range(1, 5):
        await ovs.vsctl(
            "add-port", "br-int", f"vm{ofport}", "--", "set", "interface", f"vm{ofport}",
            "type=internal", f"ofport_request={ofport}",
        )  # fmt: skip
    await ovs.vsctl(
        "add-port", "br-int", "vxlan0", "--", "set", "interface", "vxlan0", "type=vxlan",
        "options:remote_ip=flow", "options:key=flow", f"ofport_request={TUNNEL}",
    )  # fmt: skip


@pytest.fixture
async def ovs(tmp_path: Path) -> AsyncIterator[OvsInstance]:
    _prerequisites()
    namespace = f"tof{os.getpid() % 100_000}"
    await add_namespace(namespace)
    instance = OvsInstance(tmp_path / "hv", namespace)
    try:
        await instance.start()
        await _bridge(instance)
        yield instance
    finally:
        await instance.stop()
        await delete_namespace(namespace)


async def _load(ovs: OvsInstance, flows: frozenset[Flow], directory: Path) -> None:
    path = directory / "flows.txt"
    path.write_text("".join(to_ofctl(flow) + "\n" for flow in sorted(flows, key=_order)))
    await ovs.ofctl("-O", "OpenFlow13", "--bundle", "add-flows", _target(ovs), str(path))


def _order(flow: Flow) -> tuple[int, int, Any]:
    return (flow.table, flow.priority, flow.match)


def _target(ovs: OvsInstance) -> str:
    return ovs.bridge_target("br-int")


def _trace_flow(packet: dict[str, Any]) -> str:
    parts = []
    fields = dict(packet)
    if fields.get("nw_proto") == 17:  # the trace parser wants udp_* fields after "udp"
        parts.append("udp")
        del fields["dl_type"], fields["nw_proto"]
        renamed = {"tp_src": "udp_src", "tp_dst": "udp_dst"}
        fields = {renamed.get(name, name): value for name, value in fields.items()}
    for name, value in fields.items():
        shown = hex(value) if name in ("dl_type", "tun_id") and isinstance(value, int) else value
        parts.append(f"{name}={shown}")
    return ",".join(parts)


def _summary_of_trace(text: str, in_port: int) -> Summary:
    ports: set[int] = set()
    copies: set[tuple[int, str]] = set()
    controller = False
    fields: dict[str, str] = {}
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("Final flow:"):
            break
        if found := re.fullmatch(r"set_field:(\S+)->(\w+)", line):
            fields[found[2]] = found[1]
        elif found := re.fullmatch(r"output:(\d+)", line):
            port = int(found[1])
            ports.add(port)
            if port == TUNNEL:
                copies.add((int(fields["tun_id"], 16), fields["tun_dst"]))
        elif line in ("IN_PORT", "in_port"):
            ports.add(in_port)
        elif line.lower().startswith("controller"):
            controller = True
        elif line.startswith(">> skipping output to input port"):
            ports.discard(in_port)
    return frozenset(ports), frozenset(copies), controller


def _summary_of_simulation(packet: dict[str, Any]) -> Summary:
    outcome = simulate(FLOWS, packet)
    copies = {
        (int(d.packet["tun_id"]), str(d.packet["tun_dst"]))
        for d in outcome.deliveries
        if d.port == TUNNEL
    }
    return frozenset(outcome.ports()), frozenset(copies), outcome.to_controller


async def test_the_switch_answers_every_question_as_the_simulator_does(
    ovs: OvsInstance, tmp_path: Path
) -> None:
    await _load(ovs, FLOWS, tmp_path)
    dumped = await ovs.ofctl("-O", "OpenFlow13", "dump-flows", _target(ovs))
    assert dumped.count("cookie=0x7e7e") == len(FLOWS), "every flow installed, in one bundle"
    answers = {}
    for name, packet in QUESTIONS.items():
        trace = await ovs.appctl("ofproto/trace", "br-int", _trace_flow(packet))
        answers[name] = _summary_of_trace(trace, int(packet["in_port"]))
    expected = {name: _summary_of_simulation(p) for name, p in QUESTIONS.items()}
    assert answers == expected
    # and they are the answers the pipeline promises
    assert answers["vm to remote mac"][1] == {(5001, "192.0.2.21")}
    assert answers["broadcast"][0] == {2, TUNNEL} and len(answers["broadcast"][1]) == 2
    assert answers["dhcp discover"][2] and answers["spoofed ip"] == (
        frozenset(),
        frozenset(),
        False,
    )
    assert answers["arp for remote host"][0] == {1}, "answered to the asker itself"
    assert answers["routed"][0] == {3}


async def test_a_diff_applied_as_a_bundle_leaves_foreign_flows_alone(
    ovs: OvsInstance, tmp_path: Path
) -> None:
    await _load(ovs, FLOWS, tmp_path)
    foreign = Flow(0, 200, match(in_port=4, dl_src="02:00:00:00:00:77"), (Output(3),), cookie=0)
    await ovs.ofctl("-O", "OpenFlow13", "add-flow", _target(ovs), to_ofctl(foreign))
    wanted = frozenset(f for f in FLOWS if dict(f.match).get("dl_dst") != "02:00:00:00:00:21")
    changes = diff_flows(wanted, FLOWS | {foreign})
    lines = [f"delete_strict {to_ofctl(flow, with_cookie=False)}" for _, flow in changes.ordered()]
    path = tmp_path / "changes.txt"
    path.write_text("".join(line.split(",actions=")[0] + "\n" for line in lines))
    await ovs.ofctl("-O", "OpenFlow13", "--bundle", "add-flows", _target(ovs), str(path))
    dumped = await ovs.ofctl("-O", "OpenFlow13", "dump-flows", _target(ovs))
    assert "02:00:00:00:00:77" in dumped, "a flow without tether's cookie is never removed"
    assert "dl_dst=02:00:00:00:00:21" not in dumped
    assert dumped.count("cookie=0x7e7e") == len(wanted)
    await asyncio.sleep(0)


async def test_a_dhcp_request_reaches_the_agents_channel_and_its_answer_goes_out(
    ovs: OvsInstance, tmp_path: Path
) -> None:
    """The OpenFlow channel on a real switch: the pipeline punts a VM's DISCOVER, the
    agent's codec reads the PACKET_IN, answers with the DHCP module, and the switch sends
    the PACKET_OUT out of the VM's port without complaint."""
    from tests.unit.test_dhcp import LEASE, client_frame
    from tests.unit.test_openflow_pipeline import VM1
    from tether.openflow import codec, dhcp

    await ip("link", "set", "vm1", "up", netns=ovs.namespace)  # so its tap transmits
    channel = ovs.rundir / "br-int.tether"  # OVS takes punix: paths of this form only
    await ovs.vsctl("set-controller", "br-int", f"punix:{channel}")
    await _load(ovs, FLOWS, tmp_path)
    for _ in range(100):
        if channel.exists():
            break
        await asyncio.sleep(0.05)
    reader, writer = await asyncio.open_unix_connection(str(channel))
    splitter = codec.MessageSplitter()

    async def next_of(kind: int) -> codec.Message:
        while True:
            for message in splitter.feed(await asyncio.wait_for(reader.read(65536), 10)):
                if message.type == codec.ECHO_REQUEST:
                    writer.write(codec.echo_reply(message))
                elif message.type == codec.ERROR:
                    raise AssertionError(f"the switch refused a message: {message.body!r}")
                elif message.type == kind:
                    return message

    try:
        writer.write(codec.hello(1) + codec.features_request(2) + codec.set_config(3))
        await next_of(codec.FEATURES_REPLY)
        frame = client_frame(dhcp.DISCOVER, client=VM1)
        lease = dataclasses.replace(LEASE, mac=VM1)
        before = await ovs.ofctl("-O", "OpenFlow13", "dump-ports", _target(ovs), "1")
        await ovs.ofctl(
            "-O", "OpenFlow13", "packet-out", _target(ovs),
            f"in_port=1 packet={frame.hex()} actions=table",
        )  # fmt: skip
        packet_in = codec.decode_packet_in(await next_of(codec.PACKET_IN))
        assert packet_in.in_port == 1 and packet_in.data == frame
        request = dhcp.parse_request(packet_in.data)
        assert request is not None and request.message == dhcp.DISCOVER
        reply = dhcp.answer(request, lease)
        assert reply is not None
        writer.write(codec.packet_out(4, 1, reply))
        writer.write(codec.hello(5))  # anything after it: an ERROR for the PACKET_OUT first
        await writer.drain()
        for _ in range(50):
            after = await ovs.ofctl("-O", "OpenFlow13", "dump-ports", _target(ovs), "1")
            if _tx_packets(after) > _tx_packets(before):
                break
            await asyncio.sleep(0.05)
        assert _tx_packets(after) == _tx_packets(before) + 1, "the OFFER left through port 1"
    finally:
        writer.close()


def _tx_packets(dump: str) -> int:
    found = re.search(r"tx pkts=(\d+)", dump)
    assert found, dump
    return int(found[1])
