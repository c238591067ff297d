"""An emulated top-of-rack switch (hardware VTEP): ovsdb-server + switch agent + ASIC.

:class:`EmulatedSwitch` is what ``tether lab vtep`` runs, and what benchmarks start by the
hundred in one process. ``start`` brings up the switch's ``ovsdb-server``
(:mod:`.ovsdb_server`), writes the switch's own rows (:mod:`.bootstrap`), powers on the ASIC
(:mod:`.asic`, recording into :mod:`.records` files) and starts the switch agent
(:mod:`.agent`); ``stop`` undoes it and stops the server by its PID. A restart on the same
directory keeps the database and programs the ASIC again from it.

Two ASIC models: ``memory`` (:mod:`.asic`: tables in a dict, answers lookups) and ``ovs``
(:mod:`.ovs_asic`: a real Open vSwitch in the switch's own network namespace that forwards
real frames between front-panel veths and VXLAN on the lab's underlay, and reports the MACs
it learns in ``Ucast_Macs_Local`` through :mod:`.local_macs`). With ``ovs`` the memory ASIC
still records every programmed state (history, state file, lookups) and hands it to the
datapath. The ``ovs`` model needs root.

Usage::

    async with EmulatedSwitch("tor1", Path("/tmp/tor1"), tunnel_ip="192.0.2.21",
                              ports=["eth1", "eth2"]) as tor:
        ...  # a controller talks to tor.address
        tor.lookup(port="eth1", vlan=100, mac="02:00:00:00:00:01")
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Literal

from tether.lab.agent import DB, SwitchAgent
from tether.lab.asic import MemoryAsic
from tether.lab.bootstrap import SELECTS, bootstrap_ops
from tether.lab.errors import LabError
from tether.lab.forwarding import ForwardingTable, HistoryEntry, Verdict
from tether.lab.local_macs import LocalMacWriter
from tether.lab.mac_learning import LearnedMac
from tether.lab.ovs_asic import OvsAsic
from tether.lab.ovsdb_server import VTEP_SCHEMA, OvsdbServerProcess
from tether.lab.records import AsicFiles
from tether.lab.underlay import DEFAULT_UNDERLAY
from tether.ovsdb import ClientOptions, OvsdbError, ReconnectOptions

__all__ = ["AsicKind", "EmulatedSwitch"]

log = logging.getLogger(__name__)

AsicKind = Literal["memory", "ovs"]
ASIC_KINDS: tuple[AsicKind, ...] = ("memory", "ovs")
_AGENT_OPTIONS = ClientOptions(
    reconnect=ReconnectOptions(min_backoff=0.1, max_backoff=2.0, connect_timeout=10.0)
)


class EmulatedSwitch:
    """One emulated hardware VTEP whose files live in ``directory``."""

    def __init__(
        self,
        name: str,
        directory: Path,
        *,
        tunnel_ip: str,
        ports: Sequence[str],
        asic: AsicKind = "memory",
        tcp_port: int | None = None,
        source_schema: Path = VTEP_SCHEMA,
        clock: Callable[[], float] = time.time,
        underlay: str = DEFAULT_UNDERLAY,
        underlay_prefix: int = 24,
        mac_age: int = 300,
        state_interval: float = 0.0,
    ) -> None:
        if asic not in ASIC_KINDS:
            raise LabError(f"unknown ASIC {asic!r} (memory or ovs)")
        _check(name, tunnel_ip, ports)
        self.name = name
        self.directory = directory
        self.tunnel_ip = tunnel_ip
        self.ports = tuple(ports)
        self.server = OvsdbServerProcess(directory, tcp_port=tcp_port, source_schema=source_schema)
        self.datapath: OvsAsic | None = None
        """The ovs ASIC's datapath (None with the memory ASIC)."""
        if asic == "ovs":
            self.datapath = OvsAsic(
                name,
                directory,
                tunnel_ip=tunnel_ip,
                ports=ports,
                underlay=underlay,
                underlay_prefix=underlay_prefix,
                mac_age=mac_age,
            )
        hook = self._programmed if self.datapath is not None else None
        files = AsicFiles(directory, name, state_interval=state_interval)
        self.asic = MemoryAsic(files, on_change=hook)
        self._clock = clock
        self._agent: SwitchAgent | None = None
        self._local_macs: LocalMacWriter | None = None

    async def __aenter__(self) -> EmulatedSwitch:
        await self.start()
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def address(self) -> str:
        """The switch's OVSDB address for a controller (``unix:DIR/db.sock``)."""
        return self.server.unix

    @property
    def tcp_address(self) -> str | None:
        port = self.server.tcp_port
        return None if port is None else f"tcp:127.0.0.1:{port}"

    @property
    def pid(self) -> int | None:
        """The ovsdb-server's PID while it runs."""
        return self.server.pid

    @property
    def agent(self) -> SwitchAgent:
        if self._agent is None:
            raise LabError(f"switch {self.name} is not running")
        return self._agent

    @property
    def programmed(self) -> Mapping[str, ForwardingTable]:
        """What the ASIC forwards on now, by logical switch name."""
        return self.asic.tables

    @property
    def history(self) -> list[HistoryEntry]:
        """Every change applied to the ASIC since this start, oldest first."""
        return self.asic.history

    @property
    def learned(self) -> frozenset[LearnedMac]:
        """MACs the ovs ASIC learned on its front-panel ports (empty with the memory ASIC)."""
        return frozenset() if self.datapath is None else self.datapath.learned

    def lookup(self, *, port: str, vlan: int, mac: str) -> Verdict:
        """Where a frame entering ``port`` on ``vlan`` for ``mac`` goes now."""
        return self.asic.lookup(port=port, vlan=vlan, mac=mac)

    def _programmed(self, tables: Mapping[str, ForwardingTable]) -> None:
        """The memory ASIC changed: the datapath installs it, the local MACs follow it."""
        assert self.datapath is not None
        self.datapath.program(tables)
        if self._local_macs is not None:
            self._local_macs.wake()

    async def start(self) -> None:
        """Start the server, describe the switch in its database, start programming."""
        await self.server.start()
        try:
            if self.datapath is not None:
                await self.datapath.start()
            self.asic.reset(self._clock())
            agent = SwitchAgent(
                self.address, self.name, self.asic, options=_AGENT_OPTIONS, clock=self._clock
            )
            self._agent = agent
            await agent.connect()
            await self._bootstrap(agent)
            await agent.start()
            if self.datapath is not None:
                await self._start_local_macs(self.datapath)
        except OvsdbError as exc:
            await self.stop()
            raise LabError(f"switch {self.name}: its OVSDB session failed: {exc}") from exc
        except BaseException:
            await self.stop()
            raise

    async def _bootstrap(self, agent: SwitchAgent) -> None:
        try:
            selected = await agent.client.transact(DB, SELECTS)
            globals_, switches, ports = (result["rows"] for result in selected)
            ops = bootstrap_ops(
                globals_,
                switches,
                ports,
                name=self.name,
                tunnel_ip=self.tunnel_ip,
                port_names=self.ports,
            )
            if ops:
                await agent.client.transact(DB, ops)
        except OvsdbError as exc:
            raise LabError(f"switch {self.name}: cannot write its own rows: {exc}") from exc

    async def _start_local_macs(self, datapath: OvsAsic) -> None:
        writer = LocalMacWriter(
            self.address,
            self.name,
            tunnel_ip=self.tunnel_ip,
            programmed=lambda: self.asic.tables,
            learned=lambda: datapath.learned,
            options=_AGENT_OPTIONS,
        )
        self._local_macs = writer
        datapath.add_listener(writer.wake)
        await writer.start()

    async def settle(self, *, timeout: float = 10.0) -> None:
        """Wait until the ASIC reflects everything the database held when called (with the
        ovs ASIC: installed in OVS, and ``Ucast_Macs_Local`` written for what it learned)."""
        await self.agent.settle(timeout=timeout)
        if self.datapath is not None:
            await self.datapath.flushed(timeout=timeout)
        if self._local_macs is not None:
            await self._local_macs.settle(timeout=timeout)

    async def stop(self) -> None:
        """Stop the agent, the datapath and the server (by PID); safe to call twice."""
        agent, self._agent = self._agent, None
        if agent is not None:
            await agent.stop()
        writer, self._local_macs = self._local_macs, None
        if writer is not None:
            await writer.stop()
        if self.datapath is not None:
            await self.datapath.stop()
        self.asic.close_files()
        await self.server.stop()


def _check(name: str, tunnel_ip: str, ports: Sequence[str]) -> None:
    if not name:
        raise LabError("the switch needs a name")
    try:
        ipaddress.ip_address(tunnel_ip)
    except ValueError:
        raise LabError(f"tunnel IP {tunnel_ip!r} is not an IP address") from None
    if not ports or any(not port for port in ports):
        raise LabError("give at least one port, and no empty port names")
