"""The integration bridge: created if missing, with tether's settings, its VXLAN port and the
agent's controller socket.

``fail_mode=secure``: OVS keeps forwarding on the installed flows while the agent is away
(never falls back to a learning switch). ``protocols=OpenFlow13``. The tunnel port is
flow-based (``remote_ip=flow``, ``key=flow``): one port carries every VNI to every VTEP. The
controller target ``punix:RUNDIR/BRIDGE.tether`` is a socket OVS listens on for the agent
(OVS accepts ``punix:`` paths of that form only).
"""

from __future__ import annotations

import asyncio
from typing import Protocol

__all__ = ["LocalOvs", "OvsCommands", "ensure_bridge"]


class OvsCommands(Protocol):
    """Runs ``ovs-vsctl`` / ``ovs-ofctl`` against one Open vSwitch (and returns stdout)."""

    async def vsctl(self, *args: str) -> str: ...

    async def ofctl(self, *args: str, stdin: str | None = None) -> str: ...


async def ensure_bridge(
    ovs: OvsCommands,
    bridge: str,
    *,
    datapath: str,
    tunnel_port: str,
    tunnel_ofport: int,
    controller: str,
) -> None:
    """Make ``bridge`` exist as tether wants it; idempotent (``--may-exist``)."""
    await ovs.vsctl(
        "--may-exist", "add-br", bridge,
        "--", "set", "Bridge", bridge, f"datapath_type={datapath}", "fail_mode=secure",
        "protocols=OpenFlow13", "other_config:disable-in-band=true",
        "--", "--may-exist", "add-port", bridge, tunnel_port,
        "--", "set", "Interface", tunnel_port, "type=vxlan", "options:remote_ip=flow",
        "options:key=flow", f"ofport_request={tunnel_ofport}",
        "--", "set-controller", bridge, controller,
    )  # fmt: skip


class LocalOvs:
    """:class:`OvsCommands` for the Open vSwitch whose database is at ``db`` (``unix:PATH``):
    ``ovs-vsctl --db`` and ``ovs-ofctl``, as subprocesses."""

    def __init__(self, db: str, *, timeout: float = 30.0) -> None:
        self.db = db
        self.timeout = timeout

    async def vsctl(self, *args: str) -> str:
        return await self._run(
            "ovs-vsctl", f"--db={self.db}", f"--timeout={self.timeout:.0f}", *args
        )

    async def ofctl(self, *args: str, stdin: str | None = None) -> str:
        return await self._run("ovs-ofctl", *args, stdin=stdin)

    async def _run(self, *argv: str, stdin: str | None = None) -> str:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(
            process.communicate(None if stdin is None else stdin.encode()), self.timeout
        )
        if process.returncode != 0:
            reason = " ".join(err.decode(errors="replace").split()) or f"exit {process.returncode}"
            raise OSError(f"{argv[0]} {' '.join(argv[1:3])}...: {reason}")
        return out.decode()
