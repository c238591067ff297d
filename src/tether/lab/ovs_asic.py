"""The ovs ASIC: an emulated switch whose forwarding is done by a real Open vSwitch.

What :class:`OvsAsic` builds for switch ``NAME`` (directory ``DIR``):

* network namespace ``tl-NAME`` (:func:`~tether.lab.names.switch_namespace`), created at
  start and deleted at stop, with its own ``ovsdb-server`` (``Open_vSwitch`` schema) and
  ``ovs-vswitchd --disable-system`` (:mod:`.ovs_daemons`, files in ``DIR/ovs``);
* bridge ``br-asic`` (``netdev``, ``fail_mode=secure``): one port per front-panel port, each
  one end of a veth whose other end stays in the root namespace as ``NAME-PORT``
  (:func:`~tether.lab.names.front_panel_link`) for a host (:mod:`.hosts`), plus
  ``vxlan0`` (``remote_ip=flow``, ``key=flow``): one port for every locator and VNI;
* bridge ``br-phy`` (``netdev``, normal switching): the underlay. Its internal port holds the
  tunnel IP and its ``phy0`` veth leads to the shared segment (:mod:`.underlay`); OVS's own
  tunnel routing (``ovs/route/add SUBNET br-phy``) and ARP resolution send VXLAN there.

Programming: the memory ASIC (:mod:`.asic`) stays the record of what is programmed (history,
state file, lookups) and calls :meth:`OvsAsic.program` with every new state. An installer
task compiles it (:mod:`.ovs_pipeline`) and applies the difference to ``br-asic`` as one
atomic ``ovs-ofctl -O OpenFlow13 --bundle add-flows`` of deletes and adds. Not
``replace-flows``: that replaces *every* flow of the bridge, the MACs the datapath learned
included; compiled flows are replaced and learned ones are only deleted when their segment
is unbound.

Learning: ``ovs-ofctl monitor br-asic watch:table=<macs>`` streams learned flows as they are
added and deleted (:mod:`.mac_learning` says why a flow monitor); :attr:`OvsAsic.learned` is
the result and listeners (:mod:`.local_macs`) hear about every change.

Should the lab process die without :meth:`OvsAsic.stop` (SIGKILL), the daemons get SIGTERM
(``setpriv --pdeathsig``) and a reaper process (:mod:`.reaper`) deletes the namespace and
leaves the underlay.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import os
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path

from tether.lab.errors import AsicNotAvailableError, DaemonError, LabError
from tether.lab.forwarding import ForwardingTable
from tether.lab.mac_learning import LearnedMac, parse_monitor_line
from tether.lab.names import check_interface_name, front_panel_link, switch_namespace
from tether.lab.netns import add_namespace, add_veth, delete_namespace, find_binary, ip
from tether.lab.ovs_daemons import OvsInstance, dies_with_us
from tether.lab.ovs_pipeline import MACS, Flow, PortMap, compile_flows, flow_mods
from tether.lab.underlay import DEFAULT_UNDERLAY, MEMBER_LINK, Underlay, route_tunnels

__all__ = ["ASIC_BRIDGE", "REAPER_RELEASE", "TUNNEL_OFPORT", "UNDERLAY_BRIDGE", "OvsAsic"]

log = logging.getLogger(__name__)

ASIC_BRIDGE = "br-asic"
UNDERLAY_BRIDGE = "br-phy"
TUNNEL_PORT = "vxlan0"
TUNNEL_OFPORT = 65000
REAPER_RELEASE = b"release\n"
"""What :meth:`OvsAsic.stop` tells its reaper (:mod:`.reaper`): nothing to clean up."""
_RESERVED = {ASIC_BRIDGE, UNDERLAY_BRIDGE, TUNNEL_PORT, MEMBER_LINK, "lo", "ovs-netdev"}


class OvsAsic:
    """The Open vSwitch datapath of one emulated switch (see the module)."""

    kind = "ovs"

    def __init__(
        self,
        switch: str,
        directory: Path,
        *,
        tunnel_ip: str,
        ports: Sequence[str],
        underlay: str = DEFAULT_UNDERLAY,
        underlay_prefix: int = 24,
        mac_age: int = 300,
    ) -> None:
        for port in ports:
            reason = check_interface_name(port)
            if reason is not None or port in _RESERVED:
                raise LabError(reason or f"{port!r} is reserved by the ovs ASIC")
        self.switch = switch
        self.tunnel_ip = tunnel_ip
        self.interface = _underlay_interface(tunnel_ip, underlay_prefix)
        self.mac_age = mac_age
        self.namespace = switch_namespace(switch)
        self.links = {port: front_panel_link(switch, port) for port in ports}
        self.port_map = PortMap({port: n for n, port in enumerate(ports, 1)}, TUNNEL_OFPORT)
        self.ovs = OvsInstance(directory, self.namespace)
        self.underlay = Underlay(underlay)
        self._wanted: Mapping[str, ForwardingTable] = {}
        self._generation = 0
        self._installed_generation = -1
        self._installed = asyncio.Event()
        self._wake = asyncio.Event()
        self._flows: tuple[Flow, ...] | None = None
        self._learned: set[LearnedMac] = set()
        self._listeners: list[Callable[[], None]] = []
        self._monitor: asyncio.subprocess.Process | None = None
        self._reaper: asyncio.subprocess.Process | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._created: list[str] = []  # what start() made, for stop(): "namespace", "underlay"

    @property
    def learned(self) -> frozenset[LearnedMac]:
        """The MACs in the datapath's ``macs`` table now."""
        return frozenset(self._learned)

    @property
    def flows(self) -> tuple[Flow, ...]:
        """The compiled flows installed last."""
        return self._flows or ()

    def add_listener(self, listener: Callable[[], None]) -> None:
        """Call ``listener()`` whenever :attr:`learned` changes."""
        self._listeners.append(listener)

    def program(self, tables: Mapping[str, ForwardingTable]) -> None:
        """The memory ASIC's change hook: install ``tables`` soon (latest state wins)."""
        self._wanted = dict(tables)
        self._generation += 1
        self._wake.set()

    async def flushed(self, *, timeout: float = 10.0) -> None:
        """Wait until everything programmed before this call is installed in OVS."""
        target = self._generation
        async with asyncio.timeout(timeout):
            while self._installed_generation < target:
                await self._installed.wait()

    async def start(self) -> None:
        """Build the namespace, daemons, bridges and underlay; install the empty pipeline."""
        if os.geteuid() != 0:
            raise AsicNotAvailableError("the ovs ASIC needs root (it creates network namespaces)")
        await add_namespace(self.namespace)
        self._created.append("namespace")
        try:
            await self._start_reaper()
            for port, link in self.links.items():
                await add_veth(link, port, peer_netns=self.namespace)
                await ip("link", "set", port, "up", netns=self.namespace)
            await self.ovs.start()
            await self._build_bridges()
            await self.underlay.attach(self.namespace, self.namespace)
            self._created.append("underlay")
            await self.ovs.vsctl("add-port", UNDERLAY_BRIDGE, MEMBER_LINK)
            await route_tunnels(self.ovs, self.interface, UNDERLAY_BRIDGE)
            await self._start_monitor()
            await self._install(self._wanted)
            self._installed_generation = self._generation
            self._tasks.append(asyncio.get_running_loop().create_task(self._run_installer()))
        except BaseException:
            await self.stop()
            raise

    async def _start_reaper(self) -> None:
        """The process that cleans up if this one dies without :meth:`stop` (:mod:`.reaper`)."""
        args = ["--rundir", str(self.ovs.rundir), "--underlay", self.underlay.name]
        self._reaper = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "tether.lab.reaper", self.namespace, *args,
            stdin=asyncio.subprocess.PIPE, start_new_session=True,
        )  # fmt: skip

    async def _release_reaper(self) -> None:
        reaper, self._reaper = self._reaper, None
        if reaper is None or reaper.stdin is None:
            return
        with contextlib.suppress(ConnectionError):
            reaper.stdin.write(REAPER_RELEASE)
            await reaper.stdin.drain()
        reaper.stdin.close()
        await reaper.wait()

    async def _build_bridges(self) -> None:
        asic = [
            *("--", "add-br", ASIC_BRIDGE),
            *("--", "set", "Bridge", ASIC_BRIDGE, "datapath_type=netdev", "fail_mode=secure"),
            "protocols=OpenFlow10,OpenFlow13,OpenFlow14",
            "other_config:disable-in-band=true",
        ]
        for port, number in self.port_map.front_panel.items():
            asic += ["--", "add-port", ASIC_BRIDGE, port]
            asic += ["--", "set", "Interface", port, f"ofport_request={number}"]
        asic += ["--", "add-port", ASIC_BRIDGE, TUNNEL_PORT, "--", "set", "Interface"]
        asic += [TUNNEL_PORT, "type=vxlan", "options:remote_ip=flow", "options:key=flow"]
        asic += [f"ofport_request={TUNNEL_OFPORT}"]
        phy = ["--", "add-br", UNDERLAY_BRIDGE, "--", "set", "Bridge", UNDERLAY_BRIDGE]
        phy += ["datapath_type=netdev", "other_config:disable-in-band=true"]
        await self.ovs.vsctl(*asic, *phy)
        wanted = {**self.port_map.front_panel, TUNNEL_PORT: TUNNEL_OFPORT}
        got = await self.ovs.vsctl(
            *(arg for name in wanted for arg in ("--", "get", "Interface", name, "ofport"))
        )
        if [int(n) for n in got.split()] != list(wanted.values()):
            raise DaemonError(f"switch {self.switch}: OpenFlow port numbers {got.split()}")

    async def _start_monitor(self, *, timeout: float = 10.0) -> None:
        """Start the flow monitor on ``macs``; return once it is registered."""
        argv = [find_binary("ovs-ofctl"), "monitor", self.ovs.bridge_target(ASIC_BRIDGE)]
        argv.append(f"watch:table={MACS.id}")
        self._monitor = await asyncio.create_subprocess_exec(
            *dies_with_us(argv),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,  # where it prints the updates
            env={**os.environ, "OVS_RUNDIR": str(self.ovs.rundir)},
        )
        assert self._monitor.stdout is not None
        try:
            first = await asyncio.wait_for(self._monitor.stdout.readline(), timeout)
        except TimeoutError:
            raise DaemonError(f"switch {self.switch}: ovs-ofctl monitor is silent") from None
        if not first:
            raise DaemonError(f"switch {self.switch}: ovs-ofctl monitor exited at once")
        task = asyncio.get_running_loop().create_task(self._read_monitor(self._monitor.stdout))
        self._tasks.append(task)

    async def _read_monitor(self, stream: asyncio.StreamReader) -> None:
        async for raw in stream:
            event = parse_monitor_line(raw.decode(errors="replace"))
            if event is None:
                continue
            had = event.learned in self._learned
            if event.present:
                self._learned.add(event.learned)
            else:
                self._learned.discard(event.learned)
            log.debug("switch %s: %s %s", self.switch, event, "" if had else "(new)")
            if had != event.present:
                for listener in self._listeners:
                    listener()
        log.error("switch %s: the MAC learning monitor stopped", self.switch)

    async def _install(self, tables: Mapping[str, ForwardingTable]) -> None:
        flows = compile_flows(tables, self.port_map, own_ip=self.tunnel_ip, mac_age=self.mac_age)
        mods = flow_mods(self._flows, flows)
        if mods:
            bundle = ["-O", "OpenFlow13", "--bundle", "add-flows"]
            target = self.ovs.bridge_target(ASIC_BRIDGE)
            await self.ovs.ofctl(*bundle, target, "-", stdin="\n".join(mods) + "\n")
            log.debug("switch %s: %d flow mods installed", self.switch, len(mods))
        self._flows = flows

    async def _run_installer(self) -> None:
        """Install the latest programmed state whenever it changes; retry failures."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            generation = self._generation
            try:
                await self._install(self._wanted)
            except LabError as exc:  # the bundle is atomic: the old flows are still there
                log.error("switch %s: installing flows failed: %s", self.switch, exc)
                await asyncio.sleep(1.0)
                self._wake.set()
                continue
            self._installed_generation = generation
            self._installed.set()
            self._installed = asyncio.Event()

    async def stop(self) -> None:
        """Stop everything start() made, in reverse; safe to call twice."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        monitor, self._monitor = self._monitor, None
        if monitor is not None and monitor.returncode is None:
            monitor.terminate()
            await monitor.wait()
        await self.ovs.stop()
        if "underlay" in self._created:
            await _logged(self.underlay.detach(self.namespace), self.switch)
        if "namespace" in self._created:
            await _logged(delete_namespace(self.namespace), self.switch)
        await self._release_reaper()
        self._created = []
        self._flows = None
        self._listeners.clear()  # the next start adds its own
        self._learned.clear()  # the datapath is gone, and with it what it learned


def _underlay_interface(tunnel_ip: str, prefix: int) -> ipaddress.IPv4Interface:
    """The tunnel IP with the underlay's prefix length (VXLAN over IPv4 only)."""
    try:
        interface = ipaddress.ip_interface(f"{tunnel_ip}/{prefix}")
    except ValueError:
        raise LabError(f"{tunnel_ip}/{prefix} is not an IP address and prefix length") from None
    if not isinstance(interface, ipaddress.IPv4Interface):
        raise LabError(f"tunnel IP {tunnel_ip}: the ovs ASIC's underlay is IPv4")
    return interface


async def _logged(step: Awaitable[None], switch: str) -> None:
    """Await a clean-up step; a failure is logged, so the next steps still run."""
    try:
        await step
    except LabError as exc:
        log.warning("switch %s: clean-up: %s", switch, exc)
