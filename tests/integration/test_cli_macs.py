# ruff: noqa: F811 - the CLI fixtures come from test_cli and are named as parameters
"""``tether mac`` and ``/v1/macs`` against a real API server: claims through the API and
chassis-bound ports, listed and explained; bad input refused with one line, nothing lost."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from tests.integration.test_cli import (  # noqa: F401 - fixtures
    HV1,
    WEB,
    Run,
    api_url,
    app,
    data,
    error_line,
    http,
    ok,
    run,
)

HV2 = ["chassis", "add", "hv2", "--tunnel-ip", "192.0.2.12"]


def _until(check: Callable[[], bool], what: str, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_mac_commands_list_show_claim_and_unclaim(run: Run, http: httpx.Client) -> None:
    for command in (WEB, HV1, HV2):
        ok(run(*command))
    ok(run("port", "create", "web", "--mac", "02:00:00:00:01:01", "--chassis", "hv1"))
    _until(lambda: http.get("/v1/macs").json()["total"] == 1, "the port's MAC is located")

    # hv2 claims the same MAC later, as master: the newest master wins
    claimed = data(run("mac", "claim", "hv2", "02:00:00:00:01:01", "--network", "web", "--json"))
    assert claimed["role"] == "master" and claimed["revision"] > 0
    _until(
        lambda: http.get("/v1/macs").json()["items"][0]["location"]["device"] == "hv2",
        "moved to hv2",
    )
    listed = data(run("mac", "list", "--network", "web", "--json"))
    assert [(m["mac"], m["location"]["device"], m["location"]["tunnel_ip"]) for m in listed] == [
        ("02:00:00:00:01:01", "hv2", "192.0.2.12")
    ]
    assert listed[0]["slaves"] == ["hv1"]
    table = ok(run("mac", "list", "--device", "hv2"))
    assert "02:00:00:00:01:01" in table and "192.0.2.12" in table
    assert "02:00:00:00:01:01" not in ok(run("mac", "list", "--device", "hv1"))

    shown = data(run("mac", "show", "02:00:00:00:01:01", "--json"))
    assert [(c["device"], c["standing"]) for c in shown[0]["claims"]] == [
        ("hv1", "slave"),
        ("hv2", "owner"),
    ], "oldest first"
    assert shown[0]["rule"] == "newest-master"
    text = ok(run("mac", "show", "02:00:00:00:01:01"))
    assert "newest-master" in text and "hv2" in text

    ok(run("mac", "unclaim", "hv2", "02:00:00:00:01:01", "--network", "web"))
    _until(
        lambda: http.get("/v1/macs").json()["items"][0]["location"]["device"] == "hv1",
        "back to the port's chassis",
    )
    assert "MAC inventory: 1 located" in ok(run("status"))
    assert "tether_mac_moves" in http.get("/metrics").text


def test_bad_mac_requests_are_refused_with_the_field_named(run: Run, http: httpx.Client) -> None:
    for command in (WEB, HV1):
        ok(run(*command))
    before = http.get("/v1/macs").json()
    line = error_line(run("mac", "claim", "hv1", "nonsense", "--network", "web"))
    assert "mac" in line
    line = error_line(run("mac", "claim", "tor9", "02:00:00:00:01:01", "--network", "web"))
    assert "tor9" in line
    line = error_line(run("mac", "claim", "hv1", "02:00:00:00:01:01", "--network", "nope"))
    assert "nope" in line
    line = error_line(run("mac", "show", "02:00:00:00:09:09"))
    assert "02:00:00:00:09:09" in line
    line = error_line(run("mac", "unclaim", "hv1", "02:00:00:00:01:01", "--network", "web"))
    assert "no claim" in line
    reply = http.post(
        "/v1/macs/claims",
        json={"device": "hv1", "network": "web", "mac": "02:00:00:00:01:01", "role": "boss"},
    )
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "role"
    reply = http.post(
        "/v1/macs/claims",
        json={"device": "hv1", "network": "web", "mac": "02:00:00:00:01:01", "ip": "10.9.9.9"},
    )
    assert reply.status_code == 400 and reply.json()["error"]["field"] == "ip"
    assert http.get("/v1/macs", params={"network": "nope"}).status_code == 404
    assert http.get("/v1/macs/zz").status_code == 400
    assert http.get("/v1/macs").json() == before, "nothing was stored by refused requests"
    # a chassis and a gateway cannot share a name: claims name devices
    reply = http.post("/v1/gateways", json={"name": "hv1", "ovsdb": "tcp:127.0.0.1:6640"})
    assert reply.status_code == 409 and reply.json()["error"]["field"] == "name"
