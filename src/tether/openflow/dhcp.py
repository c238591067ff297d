"""The agent's DHCP server, as a function: a client's frame in, the answer frame out. Pure.

The pipeline sends a VM's DHCP requests (UDP to port 67) to the agent; the agent answers on
the hypervisor with the port's own address — there is no pool: tether already assigned it —
and the subnet's router, DNS servers, lease time, MTU and domain (``DhcpOptions``).

* DISCOVER -> OFFER, REQUEST -> ACK for the port's address, or NAK when the client asks for
  another one (it moved, or its lease is from elsewhere); RELEASE, DECLINE, INFORM and
  anything unparsable get no answer.
* The reply is a whole Ethernet frame from the subnet's router MAC and address (the server
  identifier) to the client's MAC; to the offered address, or to 255.255.255.255 when the
  client set the broadcast flag.
* :class:`RateLimit` lets a port have ``burst`` answers, refilled at ``rate`` a second, so a
  VM in a DHCP loop cannot keep the agent busy.

Frames are parsed with ``struct`` only (RFC 2131 / 2132 for BOOTP and its options).
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

__all__ = ["DhcpLease", "RateLimit", "answer", "parse_request"]

DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE, INFORM = range(1, 9)
MAGIC = b"\x63\x82\x53\x63"
_ETH = struct.Struct("!6s6sH")
_IP = struct.Struct("!BBHHHBBH4s4s")
_UDP = struct.Struct("!HHHH")
_BOOTP = struct.Struct("!BBBBIHH4s4s4s4s16s64s128s")
ETH_IP, UDP = 0x0800, 17
BROADCAST_FLAG = 0x8000


@dataclass(frozen=True, slots=True)
class Request:
    client_mac: bytes
    xid: int
    flags: int
    message: int
    requested: str | None
    """Option 50, or ``ciaddr`` when renewing."""


@dataclass(frozen=True, slots=True)
class DhcpLease:
    """What the agent tells one port."""

    mac: str
    ip: str
    cidr: str
    router_ip: str
    router_mac: str
    dns_servers: tuple[str, ...] = ()
    lease_time: int = 86_400
    mtu: int = 1450
    domain_name: str = ""


def parse_request(frame: bytes) -> Request | None:
    """A client's DHCP request from an Ethernet frame; None if it is not one."""
    try:
        _dst, src, eth_type = _ETH.unpack_from(frame, 0)
        if eth_type != ETH_IP:
            return None
        ihl = (frame[14] & 0x0F) * 4
        (_, _, _, _, _, _, proto, _, _, _) = _IP.unpack_from(frame, 14)
        if proto != UDP:
            return None
        udp = 14 + ihl
        _sport, dport, _length, _ = _UDP.unpack_from(frame, udp)
        if dport != 67:
            return None
        bootp = udp + _UDP.size
        fields = _BOOTP.unpack_from(frame, bootp)
        op, _htype, _hlen, _hops, xid, _secs, flags, ciaddr, _y, _s, _g, chaddr = fields[:12]
        if op != 1 or frame[bootp + _BOOTP.size : bootp + _BOOTP.size + 4] != MAGIC:
            return None
        options = _options(frame[bootp + _BOOTP.size + 4 :])
    except (struct.error, IndexError):
        return None
    message = options.get(53, b"\x00")[0]
    requested = None
    if len(options.get(50, b"")) == 4:
        requested = str(ipaddress.IPv4Address(options[50]))
    elif ciaddr != b"\x00\x00\x00\x00":
        requested = str(ipaddress.IPv4Address(ciaddr))
    if src != chaddr[:6]:
        return None  # port security lets only the port's MAC through; a relay is not ours
    return Request(bytes(chaddr[:6]), xid, flags, message, requested)


def answer(request: Request, lease: DhcpLease) -> bytes | None:
    """The reply frame for ``request`` from the port ``lease`` describes, or None."""
    if request.client_mac != _mac_bytes(lease.mac):
        return None
    if request.message == DISCOVER:
        kind = OFFER
    elif request.message == REQUEST:
        kind = ACK if request.requested in (None, lease.ip) else NAK
    else:
        return None
    return _frame(request, lease, kind)


def _frame(request: Request, lease: DhcpLease, kind: int) -> bytes:
    network = ipaddress.IPv4Network(lease.cidr, strict=False)
    yiaddr = ipaddress.IPv4Address(lease.ip).packed if kind != NAK else bytes(4)
    server = ipaddress.IPv4Address(lease.router_ip).packed
    options = bytearray(MAGIC)
    options += _option(53, bytes([kind]))
    options += _option(54, server)
    if kind != NAK:
        options += _option(51, struct.pack("!I", lease.lease_time))
        options += _option(1, network.netmask.packed)
        options += _option(3, server)
        if lease.dns_servers:
            options += _option(
                6, b"".join(ipaddress.IPv4Address(d).packed for d in lease.dns_servers)
            )
        options += _option(26, struct.pack("!H", lease.mtu))
        if lease.domain_name:
            options += _option(15, lease.domain_name.encode())
    options += b"\xff"
    bootp = _BOOTP.pack(
        2, 1, 6, 0, request.xid, 0, request.flags, bytes(4), yiaddr, server, bytes(4),
        request.client_mac + bytes(10), bytes(64), bytes(128),
    ) + bytes(options)  # fmt: skip
    broadcast = kind == NAK or bool(request.flags & BROADCAST_FLAG)
    dst_ip = b"\xff\xff\xff\xff" if broadcast else yiaddr
    udp_length = _UDP.size + len(bootp)
    udp = _UDP.pack(67, 68, udp_length, 0) + bootp
    header = _IP.pack(0x45, 0, 20 + len(udp), 0, 0, 64, UDP, 0, server, dst_ip)
    ip = header[:10] + struct.pack("!H", _checksum(header)) + header[12:] + udp
    dst_mac = b"\xff" * 6 if broadcast else request.client_mac
    return _ETH.pack(dst_mac, _mac_bytes(lease.router_mac), ETH_IP) + ip


def _options(data: bytes) -> dict[int, bytes]:
    found: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        code = data[i]
        if code == 0:
            i += 1
            continue
        if code == 255:
            break
        length = data[i + 1]
        found[code] = bytes(data[i + 2 : i + 2 + length])
        i += 2 + length
    return found


def _option(code: int, value: bytes) -> bytes:
    return bytes([code, len(value)]) + value


def _checksum(header: bytes) -> int:
    total: int = sum(struct.unpack(f"!{len(header) // 2}H", header))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def _mac_bytes(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", ""))


@dataclass
class RateLimit:
    """A token bucket per port: ``burst`` answers at once, ``rate`` more a second."""

    rate: float = 5.0
    burst: int = 10
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)

    def allow(self, port: str, now: float) -> bool:
        tokens, since = self._buckets.get(port, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - since) * self.rate)
        if tokens < 1:
            self._buckets[port] = (tokens, now)
            return False
        self._buckets[port] = (tokens - 1, now)
        return True
