"""Field parsing: MAC, IP, CIDR, VNI, VLAN, names, OVSDB addresses (property-based)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tether.model.fields import (
    MAX_VLAN,
    MAX_VNI,
    parse_cidr,
    parse_ip,
    parse_mac,
    parse_name,
    parse_ovsdb_address,
    parse_vlan,
    parse_vni,
)

octets = st.lists(st.integers(0, 255), min_size=6, max_size=6)


@given(octets, st.sampled_from([":", "-"]), st.booleans())
def test_any_unicast_mac_is_normalised_to_lower_case_colons(
    raw: list[int], sep: str, upper: bool
) -> None:
    raw[0] &= 0xFE
    if raw == [0] * 6:
        raw[5] = 1
    text = sep.join(f"{b:02x}" for b in raw)
    mac = parse_mac(text.upper() if upper else text)
    assert mac == ":".join(f"{b:02x}" for b in raw)


@given(octets)
def test_multicast_macs_are_refused(raw: list[int]) -> None:
    raw[0] |= 0x01
    with pytest.raises(ValueError, match="multicast or broadcast"):
        parse_mac(":".join(f"{b:02x}" for b in raw))


@pytest.mark.parametrize(
    "text",
    [
        "",
        "02:00:00:00:01",
        "02:00:00:00:01:01:01",
        "0g:00:00:00:01:01",
        "02:00-00:00:01:01",
        "0200.0000.0101",
        "00:00:00:00:00:00",
        "ff:ff:ff:ff:ff:ff",
    ],
)
def test_malformed_macs_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_mac(text)


@given(st.ip_addresses())
def test_ips_round_trip_in_canonical_form(
    addr: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    assert parse_ip(addr.exploded) == str(addr)


@pytest.mark.parametrize("text", ["10.0.1", "10.0.1.256", "10.0.1.1/24", "host", "::g"])
def test_bad_ips_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not an IP address"):
        parse_ip(text)


def test_cidr_with_host_bits_suggests_the_network() -> None:
    with pytest.raises(ValueError, match=r"did you mean 10\.0\.1\.0/24"):
        parse_cidr("10.0.1.5/24")
    with pytest.raises(ValueError, match="prefix length"):
        parse_cidr("10.0.1.0")
    assert parse_cidr(" 2001:db8::/64 ") == "2001:db8::/64"


@given(st.integers())
def test_vni_range(value: int) -> None:
    if 1 <= value <= MAX_VNI:
        assert parse_vni(value) == value
    else:
        with pytest.raises(ValueError, match="VNI range"):
            parse_vni(value)


@given(st.integers())
def test_vlan_range(value: int) -> None:
    if 0 <= value <= MAX_VLAN:
        assert parse_vlan(value) == value
    else:
        with pytest.raises(ValueError, match="VLAN range"):
            parse_vlan(value)


def test_booleans_are_not_numbers() -> None:
    with pytest.raises(ValueError):
        parse_vni(True)
    with pytest.raises(ValueError):
        parse_vlan(False)


@pytest.mark.parametrize(
    "text", ["", "-web", "a" * 64, "web net", "web/1", "6f1c2e0a-1b2c-4d5e-8f90-0123456789ab"]
)
def test_bad_names(text: str) -> None:
    with pytest.raises(ValueError):
        parse_name(text)


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        ("tcp:127.0.0.1:6640", True),
        ("ssl:10.0.0.1:6640", True),
        ("unix:/run/db.sock", True),
        ("tcp:[::1]:6640", True),
        ("tcp:127.0.0.1", False),
        ("tcp:127.0.0.1:70000", False),
        ("unix:relative.sock", False),
        ("http://x:1", False),
        ("ptcp:6640", False),
    ],
)
def test_ovsdb_addresses(text: str, ok: bool) -> None:
    if ok:
        assert parse_ovsdb_address(text) == text
    else:
        with pytest.raises(ValueError):
            parse_ovsdb_address(text)
