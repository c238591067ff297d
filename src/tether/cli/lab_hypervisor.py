"""``tether lab hypervisor``, ``lab vm``, ``lab vm-del``: hypervisors for the emulated fabric.

``hypervisor`` runs a :class:`~tether.lab.hypervisor.LabHypervisor` (Open vSwitch in its own
namespace on the lab's underlay) until SIGTERM; ``tether agent --ovsdb unix:DIR/ovs/db.sock
--datapath netdev`` then manages it. ``vm`` plugs a VM namespace into a running hypervisor's
``br-int`` by ``iface-id``, with a static address or by DHCP from the agent (busybox
``udhcpc``); ``vm-del`` unplugs it. Stopping the hypervisor removes its VMs.
"""

# No `from __future__ import annotations`: typer reads these annotations at runtime.

import asyncio
import logging
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from tether.cli.output import fail, print_line
from tether.lab import DEFAULT_UNDERLAY, LabError
from tether.lab.hypervisor import LabHypervisor
from tether.lab.netns import ip

__all__ = ["register"]

DirOpt = Annotated[Path, typer.Option("--dir", help="The hypervisor's directory.")]
DHCP_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    [ -n "$router" ] && ip route replace default via "${router%% *}" dev "$interface"
    ;;
esac
exit 0
"""


def hypervisor(
    name: Annotated[str, typer.Argument(help="The hypervisor's name (its chassis).")],
    directory: DirOpt,
    tunnel_ip: Annotated[str, typer.Option("--tunnel-ip", help="Its VXLAN tunnel IP.")],
    underlay: Annotated[
        str, typer.Option(help="Namespace of the shared VXLAN segment.")
    ] = DEFAULT_UNDERLAY,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "warning",
) -> None:
    """Run a lab hypervisor (Open vSwitch in a namespace) until SIGTERM or SIGINT."""
    logging.basicConfig(level=log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    lab = LabHypervisor(name, directory.resolve(), tunnel_ip=tunnel_ip, underlay=underlay)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await lab.start()
        print_line(
            f"hypervisor {name} up: run the agent with --ovsdb {lab.ovsdb} --datapath netdev"
        )
        try:
            await stop.wait()
        finally:
            await lab.stop()

    try:
        asyncio.run(run())
    except (LabError, OSError) as exc:
        fail(str(exc))


def vm(
    name: Annotated[str, typer.Argument(help="The VM's name (its network namespace).")],
    hypervisor_name: Annotated[str, typer.Option("--hypervisor", help="Its hypervisor.")],
    directory: DirOpt,
    iface_id: Annotated[str, typer.Option("--iface-id", help="The tether port it plugs.")],
    mac: Annotated[str, typer.Option(help="Its MAC (the port's).")],
    address: Annotated[
        str | None, typer.Option(help="A static address, CIDR (else --dhcp).")
    ] = None,
    gateway: Annotated[str | None, typer.Option(help="Default route via.")] = None,
    dhcp: Annotated[bool, typer.Option("--dhcp", help="Ask the agent by DHCP.")] = False,
) -> None:
    """Plug a VM into a running lab hypervisor."""
    lab = LabHypervisor(hypervisor_name, directory.resolve(), tunnel_ip="0.0.0.0")

    async def run() -> None:
        await lab.plug(name, iface_id=iface_id, mac=mac)
        if address:
            await ip("addr", "add", address, "dev", "eth0", netns=name)
            if gateway:
                await ip("route", "add", "default", "via", gateway, netns=name)

    try:
        asyncio.run(run())
    except (LabError, OSError) as exc:
        fail(str(exc))
    if dhcp:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as script:
            script.write(DHCP_SCRIPT)
        Path(script.name).chmod(0o755)
        done = subprocess.run(
            ["ip", "netns", "exec", name, "udhcpc", "-i", "eth0", "-f", "-q", "-n", "-t", "10",
             "-T", "1", "-s", script.name],
            capture_output=True, text=True, check=False,
        )  # fmt: skip
        Path(script.name).unlink(missing_ok=True)
        if done.returncode != 0:
            fail(f"{name}: no DHCP answer (is the agent of {hypervisor_name} running?)")
    print_line(f"VM {name} plugged into {hypervisor_name} as {iface_id}")


def vm_del(
    name: Annotated[str, typer.Argument(help="The VM.")],
    hypervisor_name: Annotated[str, typer.Option("--hypervisor", help="Its hypervisor.")],
    directory: DirOpt,
) -> None:
    """Unplug a VM and delete its namespace."""
    lab = LabHypervisor(hypervisor_name, directory.resolve(), tunnel_ip="0.0.0.0")
    try:
        asyncio.run(lab.unplug(name))
    except (LabError, OSError) as exc:
        fail(str(exc))
    print_line(f"VM {name} removed")


def register(app: typer.Typer) -> None:
    app.command("hypervisor")(hypervisor)
    app.command("vm")(vm)
    app.command("vm-del")(vm_del)
