"""Lab hosts: a network namespace plugged into an emulated switch's front-panel port.

``tether lab host`` and tests call :func:`add_host`: it creates namespace ``HOST`` (named as
given, so ``ip netns exec HOST ...`` works; it must not exist), moves the root-namespace end
of the switch port's veth (``SWITCH-PORT``, :func:`~tether.lab.names.front_panel_link`) in
as ``eth0``, sets the MAC, adds the VLAN and the address and brings it all up.

With ``vlan`` the host tags its frames: through a ``eth0.VLAN`` sub-interface when the kernel
has 802.1Q, otherwise with eBPF on ``eth0`` itself (:mod:`.host_nic`, which also turns
transmit checksum offload off so TCP and UDP survive the userspace datapath).

Each host is recorded in ``DIR/hosts/HOST.json`` (``DIR``: the switch's directory) once its
namespace exists; :func:`delete_host` reads that record, gives the port's veth end back to
the root namespace under its old name (so the next host can use it) and deletes the
namespace — only a namespace recorded there, never another.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from tether.lab.errors import LabError, NetworkSetupError
from tether.lab.names import check_interface_name, front_panel_link
from tether.lab.netns import add_namespace, delete_namespace, in_namespace, ip, link_exists, run

__all__ = ["HOST_DEVICE", "HostRecord", "add_host", "delete_host", "host_record", "read_host"]

HOST_DEVICE = "eth0"
_MAC = re.compile(r"^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$")
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,39}$")
Tagging = Literal["none", "8021q", "ebpf"]


@dataclass(frozen=True, slots=True)
class HostRecord:
    name: str
    """The host's name, which is also its namespace's."""
    switch: str
    port: str
    address: str
    """IP address with prefix length (``10.0.1.10/24``)."""
    link: str
    """The veth end's name in the root namespace."""
    vlan: int | None = None
    mac: str | None = None
    device: str = HOST_DEVICE
    """The interface holding the address (``eth0`` or ``eth0.VLAN``)."""
    tagging: Tagging = "none"


def host_record(directory: Path, name: str) -> Path:
    return directory / "hosts" / f"{name}.json"


def read_host(directory: Path, name: str) -> HostRecord:
    path = host_record(directory, name)
    try:
        return HostRecord(**json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise LabError(f"no lab host {name} is recorded in {path.parent}") from None
    except (OSError, ValueError, TypeError) as exc:
        raise LabError(f"{path} is unreadable: {exc}") from exc


def _write(directory: Path, record: HostRecord) -> None:
    path = host_record(directory, record.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(asdict(record), indent=1, sort_keys=True), encoding="utf-8")


def _check(name: str, address: str, vlan: int | None, mac: str | None, port: str) -> None:
    if not _NAME.match(name) or name.startswith("tl-"):
        raise LabError(f"{name!r} is no host name (letters, digits, _.-; not tl-...)")
    if check_interface_name(port) is not None:
        raise LabError(f"{port!r} is no port name")
    try:
        ipaddress.ip_interface(address)
    except ValueError:
        raise LabError(f"{address!r} is not an address with prefix (10.0.1.10/24)") from None
    if "/" not in address:
        raise LabError(f"{address!r} needs a prefix length (10.0.1.10/24)")
    if vlan is not None and not 0 <= vlan <= 4094:
        raise LabError(f"VLAN {vlan} is not between 0 and 4094")
    if mac is not None and not _MAC.match(mac):
        raise LabError(f"{mac!r} is not a MAC address")


async def add_host(
    name: str,
    directory: Path,
    *,
    switch: str,
    port: str,
    address: str,
    vlan: int | None = None,
    mac: str | None = None,
) -> HostRecord:
    """Create host ``name`` behind ``switch``'s ``port`` (see the module); its record."""
    _check(name, address, vlan, mac, port)
    link = front_panel_link(switch, port)
    if host_record(directory, name).exists():
        raise NetworkSetupError(f"host {name} exists already (tether lab host-del {name})")
    if not await link_exists(link):
        raise NetworkSetupError(
            f"no link {link} here: is switch {switch} running with port {port} and the ovs "
            "ASIC, and is no other host plugged into it?"
        )
    await add_namespace(name)
    record = HostRecord(name, switch, port, address, link, vlan or None, mac)
    _write(directory, record)
    try:
        await ip("link", "set", link, "netns", name)
        await ip("link", "set", link, "name", HOST_DEVICE, netns=name)
        if mac is not None:
            await ip("link", "set", HOST_DEVICE, "address", mac, netns=name)
        await ip("link", "set", HOST_DEVICE, "up", netns=name)
        record = await _add_vlan(record)
        _write(directory, record)
        await _set_up_nic(record)
        await ip("addr", "add", address, "dev", record.device, netns=name)
        await ip("link", "set", record.device, "up", netns=name)
    except BaseException:
        await delete_host(name, directory)
        raise
    return record


async def _add_vlan(record: HostRecord) -> HostRecord:
    """A kernel VLAN sub-interface if the kernel has 802.1Q, else eBPF tagging on eth0."""
    if record.vlan is None:
        return record
    device = f"{HOST_DEVICE}.{record.vlan}"
    try:
        await ip(
            "link", "add", "link", HOST_DEVICE, "name", device, "type", "vlan",
            "id", str(record.vlan), netns=record.name,
        )  # fmt: skip
    except NetworkSetupError as exc:
        if "unknown device type" not in str(exc).lower():
            raise
        return HostRecord(**{**asdict(record), "tagging": "ebpf"})
    return HostRecord(**{**asdict(record), "device": device, "tagging": "8021q"})


async def _set_up_nic(record: HostRecord) -> None:
    """Run :mod:`.host_nic` inside the host: checksums off, eBPF tagging if chosen."""
    argv = [sys.executable, "-m", "tether.lab.host_nic", HOST_DEVICE]
    if record.tagging == "ebpf":
        argv += ["--vlan", str(record.vlan)]
    await run(in_namespace(record.name, argv))


async def delete_host(name: str, directory: Path) -> None:
    """Undo :func:`add_host` (also a half-done one): port back to the root namespace under
    its old name, namespace deleted, record removed."""
    record = read_host(directory, name)
    if await link_exists(HOST_DEVICE, netns=name):
        if record.tagging == "8021q" and await link_exists(record.device, netns=name):
            await ip("link", "del", record.device, netns=name)
        await ip("link", "set", HOST_DEVICE, "down", netns=name)
        await ip("link", "set", HOST_DEVICE, "name", record.link, netns=name)
        await ip("link", "set", record.link, "netns", str(os.getpid()), netns=name)
    elif await link_exists(record.link, netns=name):  # moved in, not renamed yet
        await ip("link", "set", record.link, "netns", str(os.getpid()), netns=name)
    await delete_namespace(name)
    host_record(directory, name).unlink(missing_ok=True)
