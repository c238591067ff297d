"""The integration bridge: created if missing, with tether's settings, its VXLAN port and the
agent's controller socket.

``fail_mode=secure``: OVS keeps forwarding on the installed flows while the agent is away
(never falls back to a learning switch). ``protocols=OpenFlow13``. The tunnel port is
flow-based (``remote_ip=flow``, ``key=flow``): one port carries every VNI to every VTEP. The
controller target ``punix:RUNDIR/BRIDGE.tether`` is a socket OVS listens on for the agent
(OVS accepts ``punix:`` paths of that form only).
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["OvsCommands", "ensure_bridge"]


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
