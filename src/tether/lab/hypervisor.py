"""A lab hypervisor: Open vSwitch in a namespace of its own, on the lab's underlay, with VMs.

What :class:`LabHypervisor` builds for hypervisor ``NAME`` (directory ``DIR``):

* network namespace ``tl-NAME`` with its own ``ovsdb-server`` and ``ovs-vswitchd`` (userspace
  datapath, :mod:`.ovs_daemons`); the hypervisor agent (``tether agent --ovsdb
  unix:DIR/ovs/db.sock --datapath netdev``) creates and programs ``br-int`` there;
* bridge ``br-phy`` (normal switching): the underlay, as for the emulated switches
  (:mod:`.ovs_asic`) — its internal port holds the tunnel IP, its ``phy0`` veth leads to the
  shared segment (:mod:`.underlay`), and OVS's tunnel route sends VXLAN there;
* VMs (:meth:`LabHypervisor.plug`): a namespace each, ``eth0`` one end of a veth whose other
  end (``v-VM``) is a ``br-int`` port with ``external_ids:iface-id`` = the tether port's name
  or id — the convention the agent discovers VIFs by. Transmit checksum offload is turned off
  in the VM (:mod:`.host_nic`), so TCP and UDP survive the userspace datapath. Each VM is
  recorded in ``DIR/vms/VM.json``, so another process (``tether lab vm``) can plug one into
  a running hypervisor and stopping the hypervisor removes them all.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tether.lab.errors import NetworkSetupError
from tether.lab.names import switch_namespace
from tether.lab.netns import add_namespace, add_veth, delete_namespace, in_namespace, ip, run
from tether.lab.ovs_daemons import OvsInstance
from tether.lab.underlay import DEFAULT_UNDERLAY, MEMBER_LINK, Underlay, route_tunnels

__all__ = ["INTEGRATION_BRIDGE", "LabHypervisor", "Vm", "vm_link"]

INTEGRATION_BRIDGE = "br-int"
UNDERLAY_BRIDGE = "br-phy"


def vm_link(vm: str) -> str:
    """The hypervisor-side end of a VM's veth: ``v-VM`` (at most 15 characters)."""
    return f"v-{vm}"[:15]


@dataclass(frozen=True, slots=True)
class Vm:
    name: str
    """Its network namespace."""
    iface_id: str
    mac: str
    link: str
    """The hypervisor-side end of its veth (a ``br-int`` port)."""


class LabHypervisor:
    def __init__(
        self,
        name: str,
        directory: Path,
        *,
        tunnel_ip: str,
        underlay: str = DEFAULT_UNDERLAY,
        underlay_prefix: int = 24,
    ) -> None:
        self.name = name
        self.namespace = switch_namespace(name)
        self.tunnel_ip = tunnel_ip
        self.interface = ipaddress.ip_interface(f"{tunnel_ip}/{underlay_prefix}")
        self.ovs = OvsInstance(directory, self.namespace)
        self.underlay = Underlay(underlay)
        self.vms: dict[str, Vm] = {}
        self.vms_dir = directory / "vms"
        self._made: list[str] = []

    @property
    def ovsdb(self) -> str:
        """The agent's ``--ovsdb``."""
        return f"unix:{self.ovs.db_socket}"

    async def start(self) -> None:
        await add_namespace(self.namespace)
        self._made.append("namespace")
        try:
            await self.ovs.start()
            await self.ovs.vsctl(
                "add-br", UNDERLAY_BRIDGE, "--", "set", "Bridge", UNDERLAY_BRIDGE,
                "datapath_type=netdev", "other_config:disable-in-band=true",
            )  # fmt: skip
            await self.underlay.attach(self.namespace, self.namespace)
            self._made.append("underlay")
            await self.ovs.vsctl("add-port", UNDERLAY_BRIDGE, MEMBER_LINK)
            await route_tunnels(self.ovs, self.interface, UNDERLAY_BRIDGE)
        except BaseException:
            await self.stop()
            raise

    async def restart_vswitchd(self, *, crash: bool = True) -> float:
        """Restart this hypervisor's ``ovs-vswitchd`` (SIGKILL when ``crash``): it comes back
        with empty flow tables. The underlay's tunnel IP and route, which live on a
        ``br-phy`` tap device the daemon recreates, are put back as the host's network
        configuration would (the agent has no part in that). Returns when the daemon was
        back (``time.monotonic()``, before that network repair)."""
        await self.ovs.restart_vswitchd(crash=crash)
        back = time.monotonic()
        await self.ovs.vsctl("--timeout=10", "wait-until", "Interface", UNDERLAY_BRIDGE, "ofport>0")
        await route_tunnels(self.ovs, self.interface, UNDERLAY_BRIDGE)
        return back

    async def plug(self, vm: str, *, iface_id: str, mac: str) -> Vm:
        """A VM: namespace ``vm`` whose ``eth0`` (MAC ``mac``) is a ``br-int`` port named by
        ``iface_id``. The agent must have created ``br-int`` (it waits for it)."""
        link = vm_link(vm)
        await add_namespace(vm)
        self._record(vm)
        try:
            await add_veth(link, "eth0", peer_netns=vm, netns=self.namespace)
            await ip("link", "set", link, "up", netns=self.namespace)
            await self.ovs.vsctl(
                "--timeout=30", "wait-until", "Bridge", INTEGRATION_BRIDGE,
            )  # fmt: skip
            await self.ovs.vsctl(
                "add-port", INTEGRATION_BRIDGE, link, "--", "set", "Interface", link,
                f"external_ids:iface-id={iface_id}", f"external_ids:attached-mac={mac}",
            )  # fmt: skip
            await ip("link", "set", "eth0", "address", mac, netns=vm)
            await ip("link", "set", "eth0", "up", netns=vm)
            await ip("link", "set", "lo", "up", netns=vm)
            await run(in_namespace(vm, [sys.executable, "-m", "tether.lab.host_nic", "eth0"]))
        except BaseException:
            await self.unplug(vm)
            raise
        plugged = Vm(vm, iface_id, mac, link)
        self.vms[vm] = plugged
        return plugged

    async def unplug(self, vm: str) -> None:
        """Remove a VM this hypervisor recorded (its port, its namespace, its record)."""
        record = self.vms_dir / f"{vm}.json"
        if not record.exists():
            raise NetworkSetupError(f"{vm} is not a VM of hypervisor {self.name}")
        with contextlib.suppress(Exception):
            await self.ovs.vsctl("--if-exists", "del-port", INTEGRATION_BRIDGE, vm_link(vm))
        with contextlib.suppress(Exception):
            await delete_namespace(vm)
        record.unlink(missing_ok=True)
        self.vms.pop(vm, None)

    def recorded_vms(self) -> list[str]:
        return sorted(path.stem for path in self.vms_dir.glob("*.json"))

    def _record(self, vm: str) -> None:
        self.vms_dir.mkdir(parents=True, exist_ok=True)
        (self.vms_dir / f"{vm}.json").write_text(json.dumps({"vm": vm, "link": vm_link(vm)}))

    async def stop(self) -> None:
        for vm in self.recorded_vms():
            await self.unplug(vm)
        await self.ovs.stop()
        if "underlay" in self._made:
            with contextlib.suppress(Exception):
                await self.underlay.detach(self.namespace)
        if "namespace" in self._made:
            await delete_namespace(self.namespace)
        self._made.clear()
