"""``tether lab``: the emulated fabric. ``vtep`` runs an emulated hardware VTEP,
``vtep-state`` shows what its ASIC forwards on, ``host`` / ``host-del`` plug a host
namespace into a front-panel port of a switch running the ovs ASIC and unplug it;
``hypervisor``, ``vm`` and ``vm-del`` do the same for hypervisors (:mod:`.lab_hypervisor`);
``down`` stops the demo lab.

Thin: :class:`tether.lab.EmulatedSwitch` does the work and :mod:`tether.lab.records` reads
the state files; this module parses flags, waits for SIGTERM/SIGINT and prints. Exported as
:data:`lab_app` (wired into ``tether`` by :mod:`tether.cli.main`); ``python -m
tether.cli.lab`` runs it alone.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import signal
from datetime import UTC, datetime
from pathlib import Path

import typer

from tether.cli import lab_hypervisor
from tether.cli.output import fail, print_json, print_line, print_table
from tether.lab import (
    DEFAULT_UNDERLAY,
    AsicState,
    EmulatedSwitch,
    ForwardingTable,
    HistoryEntry,
    HostRecord,
    LabError,
    add_host,
    delete_host,
    lookup,
    read_history,
    read_state,
)

__all__ = ["lab_app"]

lab_app = typer.Typer(
    name="lab",
    help="Emulated fabric for demos and CI: hardware VTEPs built from a real ovsdb-server.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class Asic(enum.StrEnum):
    memory = "memory"
    ovs = "ovs"


@lab_app.command("vtep")
def vtep(
    name: str = typer.Argument(..., help="The switch's name (Physical_Switch.name)."),
    ovsdb_dir: Path = typer.Option(
        ..., "--ovsdb-dir", help="Directory of its database, sockets, logs and ASIC records."
    ),
    tunnel_ip: str = typer.Option(..., "--tunnel-ip", help="Its VXLAN tunnel IP."),
    ports: str = typer.Option(..., "--ports", help="Its physical ports, comma-separated."),
    asic: Asic = typer.Option(Asic.memory, "--asic", help="What it programs."),
    tcp_port: int | None = typer.Option(
        None, "--tcp-port", help="Also serve OVSDB on 127.0.0.1:PORT."
    ),
    underlay: str = typer.Option(
        DEFAULT_UNDERLAY, "--underlay", help="ovs ASIC: namespace of the shared VXLAN segment."
    ),
    underlay_prefix: int = typer.Option(
        24, "--underlay-prefix", help="ovs ASIC: prefix length of the underlay subnet."
    ),
    log_level: str = typer.Option("warning", "--log-level", help="debug, info, warning, error."),
) -> None:
    """Run an emulated hardware VTEP until SIGTERM or SIGINT.

    Its OVSDB server listens on unix:OVSDB_DIR/db.sock; a restart on the same directory
    keeps the database. With --asic ovs (root) it forwards real frames: its ports are veths
    whose other ends, NAME-PORT, wait in this namespace for `tether lab host`.
    """
    port_names = [port.strip() for port in ports.split(",") if port.strip()]
    if log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
        raise typer.BadParameter(f"{log_level!r} is not one of debug, info, warning, error")
    try:
        switch = EmulatedSwitch(
            name,
            ovsdb_dir.resolve(),
            tunnel_ip=tunnel_ip,
            ports=port_names,
            asic=asic.value,
            tcp_port=tcp_port,
            underlay=underlay,
            underlay_prefix=underlay_prefix,
        )
    except LabError as exc:
        fail(str(exc))
    logging.basicConfig(
        level=log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        code = asyncio.run(_serve(switch))
    except LabError as exc:
        fail(str(exc))
    if code is not None:
        fail(f"ovsdb-server of {name} exited on its own with status {code}")


async def _serve(switch: EmulatedSwitch) -> int | None:
    """Run ``switch`` until a signal (None) or until its server dies (its exit status)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await switch.start()
    try:
        where = switch.address + (f" and {switch.tcp_address}" if switch.tcp_address else "")
        print_line(f"vtep {switch.name} ready on {where} (ovsdb-server pid {switch.pid})")
        if switch.datapath is not None:
            links = ", ".join(switch.datapath.links.values())
            print_line(f"ovs ASIC in namespace {switch.datapath.namespace}; ports {links}")
        stopped = loop.create_task(stop.wait())
        died = loop.create_task(switch.server.wait_exited())
        done, pending = await asyncio.wait({stopped, died}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        return died.result() if died in done and not stop.is_set() else None
    finally:
        await switch.stop()


@lab_app.command("vtep-state")
def vtep_state(
    name: str = typer.Argument(..., help="The switch's name."),
    ovsdb_dir: Path = typer.Option(..., "--ovsdb-dir", help="The directory it runs in."),
    as_json: bool = typer.Option(False, "--json", help="JSON instead of tables."),
    history: bool = typer.Option(False, "--history", help="Every change applied, oldest first."),
    lookup_mac: str | None = typer.Option(
        None, "--lookup", metavar="MAC", help="Where a frame to MAC goes (with --vlan, --port)."
    ),
    vlan: int | None = typer.Option(None, "--vlan", help="The frame's VLAN (with --lookup)."),
    port: str | None = typer.Option(None, "--port", help="Its ingress port (with --lookup)."),
) -> None:
    """Show what an emulated VTEP's ASIC forwards on, its history, or one frame's way."""
    if lookup_mac is not None and (vlan is None or port is None):
        raise typer.BadParameter("--lookup needs --vlan and --port", param_hint="--lookup")
    try:
        state = read_state(ovsdb_dir)
        if state.switch != name:
            fail(f"{ovsdb_dir} holds switch {state.switch!r}, not {name!r}")
        if history:
            _show_history(read_history(ovsdb_dir), as_json=as_json)
        elif lookup_mac is not None:
            assert vlan is not None and port is not None
            verdict = lookup(state.tables, port=port, vlan=vlan, mac=lookup_mac)
            if as_json:
                print_json(verdict.to_json())
            else:
                print_line(verdict.describe())
        else:
            _show_state(state, as_json=as_json)
    except LabError as exc:
        fail(str(exc))


def _when(unix_time: float) -> str:
    return datetime.fromtimestamp(unix_time, tz=UTC).isoformat(timespec="milliseconds")


def _show_state(state: AsicState, *, as_json: bool) -> None:
    tables = sorted(state.tables.values(), key=lambda table: table.name)
    if as_json:
        print_json(
            {
                "switch": state.switch,
                "updated": state.updated,
                "logical_switches": {table.name: table.to_json() for table in tables},
            }
        )
        return
    print_table(
        ["LOGICAL SWITCH", "VNI", "BINDINGS", "REMOTE MACS", "FLOOD LOCATORS"],
        [(t.name, str(t.vni), _bindings(t), str(len(t.remote_macs)), _flood(t)) for t in tables],
        title=f"vtep {state.switch}: programmed (updated {_when(state.updated)})",
    )
    macs = [
        (table.name, mac, entry.locator, entry.ip or "-")
        for table in tables
        for mac, entry in sorted(table.remote_macs.items())
    ]
    if macs:
        print_table(["LOGICAL SWITCH", "MAC", "LOCATOR", "IP"], macs, title="remote MACs")


def _show_history(entries: list[HistoryEntry], *, as_json: bool) -> None:
    if as_json:
        print_json([entry.to_json() for entry in entries])
        return
    rows = [
        (_when(e.time), e.switch, str(e.vni), "removed" if e.state is None else _summary(e.state))
        for e in entries
    ]
    print_table(["TIME (UTC)", "LOGICAL SWITCH", "VNI", "APPLIED"], rows, title="ASIC history")


def _bindings(table: ForwardingTable) -> str:
    return ", ".join(f"{port}/{vlan}" for port, vlan in sorted(table.bindings)) or "-"


def _flood(table: ForwardingTable) -> str:
    return ", ".join(sorted(table.flood_locators)) or "-"


def _summary(table: ForwardingTable) -> str:
    return (
        f"bindings {_bindings(table)}; {len(table.remote_macs)} remote MACs; flood {_flood(table)}"
    )


@lab_app.command("host")
def host(
    name: str = typer.Argument(..., help="The host's name, also its network namespace's."),
    switch: str = typer.Option(..., "--switch", help="The switch it plugs into."),
    ovsdb_dir: Path = typer.Option(..., "--ovsdb-dir", help="That switch's directory."),
    port: str = typer.Option(..., "--port", help="The switch's front-panel port."),
    address: str = typer.Option(..., "--ip", help="Its address with prefix: 10.0.1.50/24."),
    vlan: int | None = typer.Option(None, "--vlan", help="Tag its frames with this VLAN."),
    mac: str | None = typer.Option(None, "--mac", help="Its MAC address."),
) -> None:
    """Create a host namespace behind a front-panel port of a switch running --asic ovs.

    Then e.g. `ip netns exec NAME ping ...`; `tether lab host-del NAME` undoes it.
    """
    try:
        directory = ovsdb_dir.resolve()
        _check_switch(directory, switch)
        record = asyncio.run(
            add_host(name, directory, switch=switch, port=port, address=address, vlan=vlan, mac=mac)
        )
    except LabError as exc:
        fail(str(exc))
    print_line(_describe_host(record))


@lab_app.command("host-del")
def host_del(
    name: str = typer.Argument(..., help="The host's name."),
    ovsdb_dir: Path = typer.Option(..., "--ovsdb-dir", help="The switch's directory."),
) -> None:
    """Delete a host made by `tether lab host`; its port is free for the next one."""
    try:
        asyncio.run(delete_host(name, ovsdb_dir.resolve()))
    except LabError as exc:
        fail(str(exc))
    print_line(f"host {name} deleted")


def _check_switch(directory: Path, switch: str) -> None:
    try:
        state = read_state(directory)
    except LabError:
        return  # never ran here: the missing link says more
    if state.switch != switch:
        fail(f"{directory} holds switch {state.switch!r}, not {switch!r}")


def _describe_host(record: HostRecord) -> str:
    vlan = "" if record.vlan is None else f" vlan {record.vlan} ({record.tagging})"
    return (
        f"host {record.name}: {record.device} {record.address}{vlan} behind "
        f"{record.switch} {record.port} (ip netns exec {record.name} ...)"
    )


lab_hypervisor.register(lab_app)


@lab_app.command("down")
def down() -> None:
    """Stop the demo lab (`tether demo`): agents, hypervisors and their VMs, the switch and
    its host, the controller."""
    from tether.cli.demo import stop_demo

    stop_demo()


if __name__ == "__main__":
    lab_app(prog_name="tether lab")
