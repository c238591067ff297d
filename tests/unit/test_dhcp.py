"""The agent's DHCP answers, read back field by field (RFC 2131/2132)."""

from __future__ import annotations

import ipaddress
import struct

from tether.openflow.dhcp import (
    ACK,
    DISCOVER,
    NAK,
    OFFER,
    RELEASE,
    REQUEST,
    DhcpLease,
    RateLimit,
    answer,
    parse_request,
)

CLIENT = "02:00:00:00:01:01"
LEASE = DhcpLease(
    mac=CLIENT,
    ip="10.0.1.11",
    cidr="10.0.1.0/24",
    router_ip="10.0.1.1",
    router_mac="02:aa:00:00:00:01",
    dns_servers=("192.0.2.53", "192.0.2.54"),
    lease_time=3600,
    mtu=1450,
    domain_name="example.test",
)


def client_frame(
    message: int, *, requested: str | None = None, flags: int = 0, client: str = CLIENT
) -> bytes:
    mac = bytes.fromhex(client.replace(":", ""))
    options = b"\x63\x82\x53\x63" + bytes([53, 1, message])
    if requested:
        options += bytes([50, 4]) + ipaddress.IPv4Address(requested).packed
    options += bytes([55, 4, 1, 3, 6, 26]) + b"\xff"
    bootp = struct.pack(
        "!BBBBIHH4s4s4s4s16s64s128s",
        1, 1, 6, 0, 0x1234ABCD, 0, flags, bytes(4), bytes(4), bytes(4), bytes(4),
        mac + bytes(10), bytes(64), bytes(128),
    ) + options  # fmt: skip
    udp = struct.pack("!HHHH", 68, 67, 8 + len(bootp), 0) + bootp
    ip = (
        struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), 0, 0, 64, 17, 0, bytes(4), b"\xff" * 4)
        + udp
    )
    return b"\xff" * 6 + mac + b"\x08\x00" + ip


def read_reply(frame: bytes) -> dict[str, object]:
    dst, src = frame[0:6].hex(":"), frame[6:12].hex(":")
    header = frame[14:34]
    total = sum(struct.unpack("!10H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    sport, dport = struct.unpack_from("!HH", frame, 34)
    bootp = frame[42:]
    op, xid, yiaddr = bootp[0], struct.unpack_from("!I", bootp, 4)[0], bootp[16:20]
    options: dict[int, bytes] = {}
    data, i = bootp[240:], 0
    while data[i] != 255:
        options[data[i]] = data[i + 2 : i + 2 + data[i + 1]]
        i += 2 + data[i + 1]
    return {
        "eth": (dst, src),
        "ip": (
            str(ipaddress.IPv4Address(header[12:16])),
            str(ipaddress.IPv4Address(header[16:20])),
        ),
        "checksum_ok": total == 0xFFFF,
        "udp": (sport, dport),
        "op": op,
        "xid": xid,
        "yiaddr": str(ipaddress.IPv4Address(yiaddr)),
        "magic": bootp[236:240],
        "options": options,
    }


def test_discover_gets_an_offer_of_the_ports_own_address_with_every_option() -> None:
    request = parse_request(client_frame(DISCOVER))
    assert request is not None and request.message == DISCOVER
    reply = answer(request, LEASE)
    assert reply is not None
    got = read_reply(reply)
    assert got["eth"] == (CLIENT, "02:aa:00:00:00:01")
    assert got["ip"] == ("10.0.1.1", "10.0.1.11") and got["checksum_ok"]
    assert got["udp"] == (67, 68) and got["op"] == 2 and got["xid"] == 0x1234ABCD
    assert got["yiaddr"] == "10.0.1.11" and got["magic"] == b"\x63\x82\x53\x63"
    options = got["options"]
    assert isinstance(options, dict)
    assert options[53] == bytes([OFFER]) and options[54] == bytes([10, 0, 1, 1])
    assert options[1] == bytes([255, 255, 255, 0]) and options[3] == bytes([10, 0, 1, 1])
    assert options[6] == bytes([192, 0, 2, 53, 192, 0, 2, 54])
    assert struct.unpack("!I", options[51]) == (3600,)
    assert struct.unpack("!H", options[26]) == (1450,)
    assert options[15] == b"example.test"


def test_request_for_its_address_is_acked_and_for_another_is_refused() -> None:
    ack = answer(parse_request(client_frame(REQUEST, requested="10.0.1.11")), LEASE)  # type: ignore[arg-type]
    assert ack is not None and read_reply(ack)["options"][53] == bytes([ACK])  # type: ignore[index]
    nak = answer(parse_request(client_frame(REQUEST, requested="10.0.1.99")), LEASE)  # type: ignore[arg-type]
    assert nak is not None
    got = read_reply(nak)
    assert got["options"][53] == bytes([NAK]) and got["yiaddr"] == "0.0.0.0"  # type: ignore[index]
    assert got["eth"][0] == "ff:ff:ff:ff:ff:ff" and got["ip"][1] == "255.255.255.255"  # type: ignore[index]


def test_the_broadcast_flag_is_honoured() -> None:
    reply = answer(parse_request(client_frame(DISCOVER, flags=0x8000)), LEASE)  # type: ignore[arg-type]
    assert reply is not None
    got = read_reply(reply)
    assert got["eth"][0] == "ff:ff:ff:ff:ff:ff" and got["ip"][1] == "255.255.255.255"  # type: ignore[index]


def test_what_is_not_a_request_of_this_port_gets_no_answer() -> None:
    assert answer(parse_request(client_frame(RELEASE)), LEASE) is None  # type: ignore[arg-type]
    stranger = DhcpLease(
        "02:00:00:00:09:09", "10.0.1.12", "10.0.1.0/24", "10.0.1.1", "02:aa:00:00:00:01"
    )
    assert answer(parse_request(client_frame(DISCOVER)), stranger) is None  # type: ignore[arg-type]
    assert parse_request(b"\x00" * 20) is None
    assert parse_request(client_frame(DISCOVER)[:60]) is None


def test_a_port_in_a_dhcp_loop_is_rate_limited() -> None:
    limit = RateLimit(rate=2.0, burst=3)
    assert [limit.allow("p1", 0.0) for _ in range(4)] == [True, True, True, False]
    assert limit.allow("p2", 0.0), "per port"
    assert not limit.allow("p1", 0.2) and limit.allow("p1", 0.6)
