"""``tether demo``: bring up a whole lab fabric, build a tenant's networks through the API and
show real packets crossing it; ``tether lab down`` (or ``tether demo --stop``) stops it all.

The lab (every piece a process of its own, files under ``/var/lib/tether/demo``):

* ``tether serve`` on the embedded store;
* an emulated hardware switch ``leaf1`` with the ovs ASIC, and a bare-metal host ``bm1``
  behind its ``eth1`` on VLAN 100;
* two hypervisors, ``hv1`` and ``hv2`` (Open vSwitch in namespaces of their own), each with
  ``tether agent``;
* VMs plugged in by ``iface-id``: ``vm1`` on hv1 and ``db1`` on hv2 with static addresses,
  ``vm2`` on hv2 by DHCP from its agent.

It then pings VM to VM across hypervisors, VM to the bare-metal host through the switch and
VM to VM through the distributed router, and shows the model, the MAC inventory and the
status. Needs root (network namespaces). Safe to run twice: what runs is reused.
"""

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

__all__ = ["demo", "stop_demo"]

DEMO_DIR = Path("/var/lib/tether/demo")
SWITCH_DIR = DEMO_DIR / "leaf1"
LISTEN = "127.0.0.1:7500"
URL = f"http://{LISTEN}"
HYPERVISORS = {"hv1": "192.0.2.11", "hv2": "192.0.2.12"}
VMS = {  # VM: (hypervisor, MAC, static address or None for DHCP, gateway)
    "vm1": ("hv1", "02:00:00:00:01:01", "10.0.1.11/24", "10.0.1.1"),
    "vm2": ("hv2", "02:00:00:00:01:02", None, None),
    "db1": ("hv2", "02:00:00:00:02:01", "10.0.2.11/24", "10.0.2.1"),
}
BARE_METAL = ("bm1", "02:00:00:00:01:50", "10.0.1.50/24")
PROCESSES = ("agent-hv1", "agent-hv2", "hv1", "hv2", "switch", "serve")
"""In the order ``down`` stops them."""

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
    (
        "POST",
        "/v1/ports",
        {"network": "web", "name": "vm1", "mac": VMS["vm1"][1], "ips": ["10.0.1.11"]},
    ),
    (
        "POST",
        "/v1/ports",
        {"network": "web", "name": "vm2", "mac": VMS["vm2"][1], "ips": ["10.0.1.12"]},
    ),
    (
        "POST",
        "/v1/ports",
        {"network": "db", "name": "db1", "mac": VMS["db1"][1], "ips": ["10.0.2.11"]},
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
            "name": "leaf1",
            "ovsdb": f"unix:{SWITCH_DIR / 'db.sock'}",
            "tunnel_ip": "192.0.2.21",
            "mode": "lock",
        },
    ),
    ("POST", "/v1/gateways/leaf1/bindings", {"port": "eth1", "vlan": 100, "network": "web"}),
]


def _tether(*argv: str) -> list[str]:
    return [sys.executable, "-m", "tether.cli.main", *argv]


def _healthy() -> bool:
    try:
        return httpx.get(f"{URL}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def _running(name: str) -> bool:
    pidfile = DEMO_DIR / f"{name}.pid"
    if not pidfile.exists():
        return False
    try:
        command = Path(f"/proc/{int(pidfile.read_text())}/cmdline").read_bytes()
    except (OSError, ValueError):
        return False
    return b"tether.cli.main" in command


def _start(name: str, argv: list[str], ready: Callable[[], bool]) -> int:
    """Start a background process (once: a live one is reused); its pid."""
    DEMO_DIR.mkdir(parents=True, exist_ok=True)
    pidfile = DEMO_DIR / f"{name}.pid"
    if _running(name) and ready():
        return int(pidfile.read_text())
    with open(DEMO_DIR / f"{name}.log", "ab") as log:
        process = subprocess.Popen(
            argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    pidfile.write_text(str(process.pid))
    deadline = time.monotonic() + 60
    while not ready():
        if process.poll() is not None or time.monotonic() > deadline:
            typer.echo(f"error: {name} did not start; see {DEMO_DIR / f'{name}.log'}", err=True)
            raise typer.Exit(1)
        time.sleep(0.1)
    return process.pid


def _exists(path: Path) -> Callable[[], bool]:
    return path.exists


def _log_says(name: str, text: str) -> Callable[[], bool]:
    def ready() -> bool:
        log = DEMO_DIR / f"{name}.log"
        return log.exists() and text in log.read_text(errors="replace")

    return ready


def _start_everything() -> None:
    _start(
        "serve",
        _tether("serve", "--store", f"sqlite:{DEMO_DIR / 'lab.db'}", "--listen", LISTEN),
        _healthy,
    )
    _start(
        "switch",
        _tether("lab", "vtep", "leaf1", "--ovsdb-dir", str(SWITCH_DIR), "--tunnel-ip",
                "192.0.2.21", "--ports", "eth1", "--asic", "ovs"),
        _exists(SWITCH_DIR / "asic-state.json"),
    )  # fmt: skip
    for name, tunnel_ip in HYPERVISORS.items():
        directory = DEMO_DIR / name
        _start(
            name,
            _tether("lab", "hypervisor", name, "--dir", str(directory), "--tunnel-ip", tunnel_ip),
            _log_says(name, f"hypervisor {name} up"),
        )
        _start(
            f"agent-{name}",
            _tether("agent", "--chassis", name, "--tunnel-ip", tunnel_ip, "--server", URL,
                    "--ovsdb", f"unix:{directory / 'ovs' / 'db.sock'}", "--datapath", "netdev"),
            _exists(directory / "ovs" / "br-int.mgmt"),
        )  # fmt: skip


def _create_sample() -> None:
    for method, path, body in SAMPLE:
        reply = httpx.request(method, f"{URL}{path}", json=body, timeout=10)
        if reply.status_code == 409:
            continue  # already there from an earlier run
        if reply.status_code >= 400:
            typer.echo(f"error: {method} {path}: {reply.text}", err=True)
            raise typer.Exit(1)
        typer.echo(f"created {path.removeprefix('/v1/')} {body.get('name') or body.get('port')}")


def _plug_everything() -> None:
    for vm, (hypervisor, mac, address, gateway) in VMS.items():
        if Path(f"/run/netns/{vm}").exists():
            continue
        argv = ["lab", "vm", vm, "--hypervisor", hypervisor, "--dir", str(DEMO_DIR / hypervisor),
                "--iface-id", vm, "--mac", mac]  # fmt: skip
        argv += ["--address", address, "--gateway", str(gateway)] if address else ["--dhcp"]
        _run(*argv)
    name, mac, address = BARE_METAL
    if not Path(f"/run/netns/{name}").exists():
        _run("lab", "host", name, "--ovsdb-dir", str(SWITCH_DIR), "--switch", "leaf1",
             "--port", "eth1", "--ip", address, "--vlan", "100", "--mac", mac)  # fmt: skip


def _run(*argv: str) -> None:
    done = subprocess.run(_tether(*argv), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        typer.echo(f"error: tether {' '.join(argv)}: {done.stderr.strip()}", err=True)
        raise typer.Exit(1)
    typer.echo(done.stdout.strip())


def _ping(source: str, destination: str, what: str) -> bool:
    deadline = time.monotonic() + 30
    while True:
        done = subprocess.run(
            ["ip", "netns", "exec", source, sys.executable, "-m", "tether.lab.ping", "-c", "2",
             "-i", "0.2", "-W", "1", destination],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        if done.returncode == 0 or time.monotonic() > deadline:
            break
    ok = done.returncode == 0
    typer.echo(f"  {'ok  ' if ok else 'FAIL'} {source} -> {destination}  ({what})")
    return ok


def _show(*args: str) -> None:
    typer.echo(f"\n$ tether {' '.join(args)}")
    subprocess.run(_tether(*args), check=False)


def stop_demo() -> None:
    """Stop every demo process (by the PIDs it recorded), hosts and VMs with them."""
    with contextlib.suppress(Exception):
        subprocess.run(
            _tether("lab", "host-del", BARE_METAL[0], "--ovsdb-dir", str(SWITCH_DIR)),
            capture_output=True, check=False, timeout=30,
        )  # fmt: skip
    for name in PROCESSES:
        pidfile = DEMO_DIR / f"{name}.pid"
        if not pidfile.exists():
            continue
        if _running(name):
            pid = int(pidfile.read_text())
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
                time.sleep(0.1)
            typer.echo(f"stopped {name} (pid {pid})")
        pidfile.unlink()


def demo(
    stop: bool = typer.Option(False, "--stop", help="stop the demo lab (as tether lab down)"),
) -> None:
    """Bring up a lab fabric (controller, switch, two hypervisors with agents, VMs, a
    bare-metal host), build a tenant's networks and show packets crossing it."""
    if stop:
        stop_demo()
        return
    if os.geteuid() != 0:
        typer.echo("error: the demo lab needs root (it creates network namespaces)", err=True)
        raise typer.Exit(1)
    _start_everything()
    typer.echo(f"controller at {URL}, switch leaf1, hypervisors hv1 and hv2 with their agents")
    _create_sample()
    _plug_everything()
    typer.echo("\npings (real ICMP through the lab):")
    results = [
        _ping("vm1", "10.0.1.12", "hv1 -> hv2 over VXLAN; vm2 got its address by DHCP"),
        _ping("vm1", "10.0.1.50", "VM -> bare-metal host behind leaf1 on VLAN 100"),
        _ping("vm1", "10.0.2.11", "web -> db through the distributed router"),
    ]
    _show("port", "list")
    _show("mac", "list")
    _show("status")
    typer.echo(f"\nThe lab keeps running (logs in {DEMO_DIR}); API docs: {URL}/docs")
    typer.echo(f"Try: ip netns exec vm1 {sys.executable} -m tether.lab.ping 10.0.2.11")
    typer.echo("Stop it with:  .venv/bin/tether lab down")
    if not all(results):
        raise typer.Exit(1)
