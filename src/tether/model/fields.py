"""Parsing and normalisation of the scalar fields users write: MAC, IP, CIDR, VNI, VLAN,
names, OVSDB addresses. Pure functions; each raises ``ValueError`` with a message that
reads well after the field name ("mac: ...").
"""

from __future__ import annotations

import ipaddress
import re

__all__ = [
    "MAX_VLAN",
    "MAX_VNI",
    "parse_cidr",
    "parse_ip",
    "parse_mac",
    "parse_name",
    "parse_ovsdb_address",
    "parse_tunnel_ip",
    "parse_vlan",
    "parse_vni",
]

MAX_VNI = 16_777_215
MAX_VLAN = 4095

_MAC = re.compile(r"^[0-9a-f]{2}([:-])[0-9a-f]{2}(\1[0-9a-f]{2}){4}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
_OVSDB = re.compile(r"^(tcp|ssl):(?P<host>\[[0-9A-Fa-f:.]+\]|[^:\[\]]+):(?P<port>\d{1,5})$")


def parse_mac(text: str) -> str:
    """A unicast MAC in lower case with colons: ``02:00:00:00:01:01``."""
    mac = text.strip().lower()
    if not _MAC.match(mac):
        raise ValueError(
            f"{text!r} is not a MAC address (expected six hex pairs, e.g. 02:00:00:00:01:01)"
        )
    mac = mac.replace("-", ":")
    if int(mac[:2], 16) & 1:
        raise ValueError(f"{text!r} is a multicast or broadcast MAC; a port needs a unicast MAC")
    if mac == "00:00:00:00:00:00":
        raise ValueError("00:00:00:00:00:00 is not a usable MAC address")
    return mac


_IPV4 = re.compile(r"^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$")


def parse_ip(text: str) -> str:
    """An IPv4 or IPv6 address in canonical form."""
    if _IPV4.match(text):  # the common case, already canonical; ipaddress is 10x slower
        return text
    if "%" in text:
        raise ValueError(f"{text!r} has a scope (%...); give the address alone")
    try:
        return str(ipaddress.ip_address(text.strip()))
    except ValueError:
        raise ValueError(f"{text!r} is not an IP address") from None


def parse_tunnel_ip(text: str) -> str:
    """A VTEP's VXLAN source address: a unicast address a tunnel can be sent to."""
    ip = parse_ip(text)
    addr = ipaddress.ip_address(ip)
    if addr.is_unspecified or addr.is_multicast or ip == "255.255.255.255":
        raise ValueError(f"{ip} cannot be a tunnel endpoint (unspecified, multicast or broadcast)")
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        raise ValueError(f"{ip} is an IPv4-mapped address; write {addr.ipv4_mapped}")
    return ip


def parse_cidr(text: str) -> str:
    """A network prefix in canonical form; host bits must be zero (``10.0.1.0/24``)."""
    raw = text.strip()
    if "/" not in raw:
        raise ValueError(f"{text!r} needs a prefix length, e.g. 10.0.1.0/24")
    try:
        return str(ipaddress.ip_network(raw, strict=True))
    except ValueError as exc:
        if "host bits set" in str(exc):
            network = ipaddress.ip_network(raw, strict=False)
            raise ValueError(f"{text!r} has host bits set; did you mean {network}?") from None
        raise ValueError(f"{text!r} is not a network prefix (CIDR)") from None


def parse_vni(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer VNI")
    if not 1 <= value <= MAX_VNI:
        raise ValueError(f"{value} is outside the VNI range 1-{MAX_VNI}")
    return value


def parse_vlan(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{value!r} is not an integer VLAN")
    if not 0 <= value <= MAX_VLAN:
        raise ValueError(f"{value} is outside the VLAN range 0-{MAX_VLAN}")
    return value


def parse_name(text: str) -> str:
    """1-63 characters of letters, digits, ``_ . -``, starting with a letter or digit, and
    not shaped like a UUID (objects are addressed by id or by name)."""
    if not _NAME.match(text):
        raise ValueError(
            f"{text!r} is not a valid name (1-63 letters, digits, '_', '.', '-', "
            "starting with a letter or digit)"
        )
    if _looks_like_uuid(text):
        raise ValueError(f"{text!r} looks like an id; names must not be UUIDs")
    return text


_UUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _looks_like_uuid(text: str) -> bool:
    return len(text) == 36 and bool(_UUID.match(text))


def parse_ovsdb_address(text: str) -> str:
    """``tcp:HOST:PORT``, ``ssl:HOST:PORT`` or ``unix:PATH`` (as ``ovsdb-client`` takes)."""
    raw = text.strip()
    if raw.startswith("unix:"):
        if not raw.removeprefix("unix:").startswith("/"):
            raise ValueError(f"{text!r}: unix: needs an absolute socket path")
        return raw
    match = _OVSDB.match(raw)
    if not match:
        raise ValueError(
            f"{text!r} is not an OVSDB address (tcp:HOST:PORT, ssl:HOST:PORT or unix:PATH)"
        )
    if not 0 < int(match["port"]) < 65536:
        raise ValueError(f"{text!r}: port must be 1-65535")
    return raw
