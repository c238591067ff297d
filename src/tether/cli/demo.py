"""``tether demo``: start a controller on the embedded store and an emulated hardware switch
(``tether lab vtep``, memory ASIC), build a sample tenant network through the API, show it
with the CLI — including what the switch now forwards on — and say how to stop it. Safe to
run twice."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import typer

__all__ = ["demo"]

DEMO_DIR = Path("/var/lib/tether/demo")
SWITCH_DIR = DEMO_DIR / "tor1"
LISTEN = "127.0.0.1:7500"
URL = f"http://{LISTEN}"

SAMPLE: list[tuple[str, str, dict[str, object]]] = [
    (
        "POST",
        "/v1/networks",
        {
            "name": "web",
            "vni": 5001,
            "tenant": "acme",
            "subnets": [{"cidr": "10.0.1.0/24", "dhcp": {"dns_servers": ["10.0.1.2"]}}],
        },
    ),
    (
        "POST",
        "/v1/networks",
        {"name": "db", "vni": 5002, "tenant": "acme", "subnets": [{"cidr": "10.0.2.0/24"}]},
    ),
    ("POST", "/v1/chassis", {"name": "hv1", "tunnel_ip": "192.0.2.11"}),
    ("POST", "/v1/chassis", {"name": "hv2", "tunnel_ip": "192.0.2.12"}),
    (
        "POST",
        "/v1/ports",
        {
            "network": "web",
            "name": "vm1",
            "mac": "02:00:00:00:01:01",
            "ips": ["10.0.1.11"],
            "chassis": "hv1",
        },
    ),
    (
        "POST",
        "/v1/ports",
        {
            "network": "web",
            "name": "vm2",
            "mac": "02:00:00:00:01:02",
            "ips": ["10.0.1.12"],
            "chassis": "hv2",
        },
    ),
    (
        "POST",
        "/v1/ports",
        {
            "network": "db",
            "name": "db1",
            "mac": "02:00:00:00:02:01",
            "ips": ["10.0.2.11"],
            "chassis": "hv2",
        },
    ),
    (
        "POST",
        "/v1/routers",
        {"name": "edge", "tenant": "acme", "interfaces": [{"network": "web"}, {"network": "db"}]},
    ),
    (
        "POST",
        "/v1/gateways",
        {
            "name": "tor1",
            "ovsdb": f"unix:{SWITCH_DIR / 'db.sock'}",
            "tunnel_ip": "192.0.2.21",
            "mode": "lock",
            "max_rows_per_txn": 500,
        },
    ),
    ("POST", "/v1/gateways/tor1/bindings", {"port": "eth1", "vlan": 100, "network": "web"}),
]


def _healthy() -> bool:
    try:
        return httpx.get(f"{URL}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _start(name: str, argv: list[str], ready: Callable[[], bool]) -> int:
    """Start a background process (once: a live one is reused); its pid."""
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    pidfile = DEMO_DIR / f"{name}.pid"
    if ready():
        return int(pidfile.read_text()) if pidfile.exists() else 0
    with open(DEMO_DIR / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "tether.cli.main", *argv],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    pidfile.write_text(str(process.pid))
    deadline = time.monotonic() + 30
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            typer.echo(f"error: {name} did not start; see {DEMO_DIR / f'{name}.log'}", err=True)
            raise typer.Exit(1)
        time.sleep(0.1)
    return process.pid


def _switch_ready() -> bool:
    return (SWITCH_DIR / "asic-state.json").exists() and (SWITCH_DIR / "db.sock").exists()


def _start_everything() -> tuple[int, int]:
    switch = _start(
        "switch",
        ["lab", "vtep", "tor1", "--ovsdb-dir", str(SWITCH_DIR), "--tunnel-ip", "192.0.2.21",
         "--ports", "eth1,eth2"],
        _switch_ready,
    )  # fmt: skip
    serve = _start(
        "serve",
        ["serve", "--store", f"sqlite:{DEMO_DIR / 'tether.db'}", "--listen", LISTEN],
        _healthy,
    )
    return serve, switch


def _wait_realized(gateway: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        runtime = httpx.get(f"{URL}/v1/gateways/{gateway}", timeout=5).json().get("runtime")
        if runtime and runtime.get("state") == "realized" and runtime.get("bound_ports"):
            return
        time.sleep(0.1)
    typer.echo(f"warning: gateway {gateway} is not realized yet (see tether gateway show)")


def _create_sample() -> None:
    for method, path, body in SAMPLE:
        reply = httpx.request(method, f"{URL}{path}", json=body, timeout=10)
        if reply.status_code == 409:
            continue  # already there from an earlier run
        if reply.status_code >= 400:
            typer.echo(f"error: {method} {path}: {reply.text}", err=True)
            raise typer.Exit(1)
        typer.echo(f"created {path.removeprefix('/v1/')} {body.get('name') or body.get('port')}")


def _show(*args: str) -> None:
    typer.echo(f"\n$ tether {' '.join(args)}")
    subprocess.run([sys.executable, "-m", "tether.cli.main", *args], check=False)


def _stop() -> None:
    for name, marker in (("serve", b"serve"), ("switch", b"vtep")):
        pidfile = DEMO_DIR / f"{name}.pid"
        if not pidfile.exists():
            continue
        pid = int(pidfile.read_text())
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            command = []
        if b"tether.cli.main" in command and marker in command:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
                typer.echo(f"stopped the demo {name} (pid {pid})")
        pidfile.unlink()


def demo(
    stop: bool = typer.Option(
        False, "--stop", help="stop the demo controller and switch, and exit"
    ),
) -> None:
    """Start a controller and an emulated switch, and build a sample tenant network."""
    if stop:
        _stop()
        return
    serve, switch = _start_everything()
    typer.echo(f"controller running at {URL} (pid {serve}, store {DEMO_DIR / 'tether.db'})")
    typer.echo(f"emulated switch tor1 running (pid {switch}, {SWITCH_DIR})")
    _create_sample()
    _wait_realized("tor1")
    _show("network", "list")
    _show("port", "list")
    _show("router", "show", "edge")
    _show("gateway", "show", "tor1")
    _show("lab", "vtep-state", "tor1", "--ovsdb-dir", str(SWITCH_DIR))
    _show("status")
    typer.echo(f"\nThe controller and the switch keep running. API docs: {URL}/docs")
    typer.echo("Stop them with:  .venv/bin/tether demo --stop")
