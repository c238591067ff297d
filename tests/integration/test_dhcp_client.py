"""A real DHCP client (busybox ``udhcpc``) gets its address from tether's DHCP answers.

Two network namespaces joined by a veth pair: in one, a raw-socket responder that answers
with :func:`tether.openflow.dhcp.answer` (what the agent will do with the packets its
pipeline punts); in the other, ``udhcpc`` configures the port it runs on. The client's
script records what it was told: address, mask, router, DNS, MTU, domain, lease.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemons import require_binary

CLIENT_MAC = "02:00:00:00:01:01"
ROUTER_MAC = "02:aa:00:00:00:01"
SRC = Path(__file__).resolve().parents[2] / "src"

RESPONDER = textwrap.dedent(
    """
    import socket, sys, time
    from tether.openflow.dhcp import DhcpLease, answer, parse_request
    lease = DhcpLease(
        mac="02:00:00:00:01:01", ip="10.0.1.11", cidr="10.0.1.0/24", router_ip="10.0.1.1",
        router_mac="02:aa:00:00:00:01", dns_servers=("192.0.2.53", "192.0.2.54"),
        lease_time=3600, mtu=1400, domain_name="example.test",
    )
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0800))
    sock.bind((sys.argv[1], 0))
    sock.settimeout(0.5)
    print("ready", flush=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            frame = sock.recv(2048)
        except TimeoutError:
            continue
        request = parse_request(frame)
        reply = answer(request, lease) if request else None
        if reply:
            sock.send(reply)
    """
)

SCRIPT = """#!/bin/sh
[ "$1" = bound ] && env > "{out}"
exit 0
"""


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture
def wire() -> Iterator[tuple[str, str]]:
    """Two namespaces joined by a veth pair, removed at teardown."""
    for name in ("ip", "udhcpc"):
        require_binary(name)
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("the DHCP client test needs root under CI (network namespaces)")
        pytest.skip("needs root")
    tag = os.getpid() % 100_000
    server, client = f"tds{tag}", f"tdc{tag}"
    _ip("netns", "add", server)
    _ip("netns", "add", client)
    try:
        _ip("link", "add", "ds0", "netns", server, "type", "veth", "peer", "name", "dc0",
            "netns", client)  # fmt: skip
        _ip("-n", server, "link", "set", "ds0", "address", ROUTER_MAC, "up")
        _ip("-n", client, "link", "set", "dc0", "address", CLIENT_MAC, "up")
        yield server, client
    finally:
        _ip("netns", "del", server)
        _ip("netns", "del", client)


def test_a_real_client_configures_itself_from_tethers_answers(
    wire: tuple[str, str], tmp_path: Path
) -> None:
    server, client = wire
    out = tmp_path / "bound.env"
    script = tmp_path / "script.sh"
    script.write_text(SCRIPT.format(out=out))
    script.chmod(0o755)
    responder = subprocess.Popen(
        ["ip", "netns", "exec", server, sys.executable, "-c", RESPONDER, "ds0"],
        env={**os.environ, "PYTHONPATH": str(SRC)},
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert responder.stdout is not None and responder.stdout.readline().strip() == "ready"
        done = subprocess.run(
            ["ip", "netns", "exec", client, "udhcpc", "-i", "dc0", "-f", "-q", "-n",
             "-t", "5", "-T", "1", "-s", str(script)],
            capture_output=True, text=True, timeout=30, check=False,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    finally:
        responder.kill()
        responder.wait()
        if responder.stdout is not None:
            responder.stdout.close()
    told = dict(line.split("=", 1) for line in out.read_text().splitlines() if "=" in line)
    assert told["ip"] == "10.0.1.11" and told["subnet"] == "255.255.255.0"
    assert told["router"].split() == ["10.0.1.1"]
    assert told["dns"].split() == ["192.0.2.53", "192.0.2.54"]
    assert (told["mtu"], told["domain"], told["lease"]) == ("1400", "example.test", "3600")
    assert told["serverid"] == "10.0.1.1"
