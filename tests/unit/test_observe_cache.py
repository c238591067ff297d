"""The observe cache reads a switch exactly as a fresh observe does, whatever happened to
the rows in between (inserts, changes, deletes, duplicates, locators that change)."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from tether.vtep.state import ObserveCache, observe

LOCATORS = ["l1", "l2", "l3"]
SWITCHES = ["ls1", "ls2"]
MACS = ["02:00:00:00:00:01", "02:00:00:00:00:02", "02:00:00:00:00:03"]

step = st.one_of(
    st.tuples(
        st.just("put"),
        st.integers(0, 7),  # row uuid
        st.sampled_from(SWITCHES),
        st.sampled_from(MACS),
        st.sampled_from(LOCATORS),
        st.sampled_from(["", "10.0.0.1"]),
    ),
    st.tuples(st.just("delete"), st.integers(0, 7)),
    st.tuples(st.just("move-locator"), st.sampled_from(LOCATORS), st.sampled_from(["a", "b"])),
    st.tuples(st.just("mark"), st.sampled_from(SWITCHES), st.booleans()),  # lock mode's mark
)


FLOOD_SET = {"locators": frozenset(LOCATORS)}
FLOOD_ROW = {"MAC": "unknown-dst", "logical_switch": "ls1", "locator_set": "s1"}


def _tables(remote: dict[str, Any], locators: dict[str, Any], marked: set[str]) -> dict[str, Any]:
    return {
        "Logical_Switch": {
            ls: {
                "name": f"net-{ls}",
                "tunnel_key": 5000 + i,
                "other_config": {
                    "vendor": "x",
                    **({"tether-pending": "true"} if ls in marked else {}),
                },
            }
            for i, ls in enumerate(SWITCHES)
        },
        "Ucast_Macs_Remote": dict(remote),
        "Physical_Locator": dict(locators),
        "Physical_Locator_Set": {"s1": FLOOD_SET},
        "Mcast_Macs_Remote": {"m1": FLOOD_ROW},
    }


@settings(max_examples=300, deadline=None)
@given(st.lists(step, max_size=40))
def test_a_cached_observe_reads_what_a_fresh_one_reads(steps: list[Any]) -> None:
    cache = ObserveCache()
    remote: dict[str, Any] = {}
    locators = {name: {"dst_ip": f"192.0.2.{i + 1}"} for i, name in enumerate(LOCATORS)}
    marked: set[str] = set()
    for action in steps:
        if action[0] == "put":  # a new row object, as the replica makes on every change
            _, n, ls, mac, locator, ip = action
            remote[f"u{n}"] = {"logical_switch": ls, "MAC": mac, "locator": locator, "ipaddr": ip}
        elif action[0] == "delete":
            remote.pop(f"u{action[1]}", None)
        elif action[0] == "mark":
            _, ls, on = action
            marked = marked | {ls} if on else marked - {ls}
        else:
            _, name, suffix = action
            locators[name] = {"dst_ip": f"198.51.100.{ord(suffix)}"}
        tables = _tables(remote, locators, marked)
        cached = observe(tables, "tor1", cache)
        fresh = observe(tables, "tor1")
        for ls in SWITCHES:  # the oracle: of rows for one MAC, the lowest uuid counts
            want = {}
            for uuid in sorted(remote, reverse=True):
                row = remote[uuid]
                if row["logical_switch"] == ls:
                    want[row["MAC"]] = (uuid, locators[row["locator"]]["dst_ip"], row["ipaddr"])
            have = cached.switches[f"net-{ls}"].remote_macs
            assert {m: (o.uuid, o.locator, o.ip) for m, o in have.items()} == want
        flood = {locators[name]["dst_ip"] for name in LOCATORS}
        assert cached.switches["net-ls1"].unknown_dst == ("m1", frozenset(flood))
        assert cached.locators == fresh.locators
        for name in fresh.switches:
            assert cached.switches[name].pending == fresh.switches[name].pending
            assert cached.switches[name].pending == (name.removeprefix("net-") in marked)
            assert dict(cached.switches[name].remote_macs) == dict(fresh.switches[name].remote_macs)
            assert sorted(cached.switches[name].extra_remote_rows) == sorted(
                fresh.switches[name].extra_remote_rows
            )
