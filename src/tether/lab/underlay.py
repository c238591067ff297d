"""The lab's underlay: the one L2 segment that carries VXLAN between emulated switches.

A Linux bridge ``underlay`` inside its own namespace (``tl-underlay`` unless told otherwise).
Each member — an emulated switch's namespace, later a hypervisor's — is plugged in by a veth:
``ul-HASH`` (:func:`~tether.lab.names.underlay_link`) on the bridge, ``phy0`` in the member's
namespace, where the member's OVS underlay bridge ``br-phy`` takes it. Both ends get MTU
9000, so VXLAN's 50 bytes of headers fit around full 1500-byte frames. Tunnel IPs live on
the members' ``br-phy`` ports, inside their namespaces: no lab traffic reaches the machine's
own interfaces.

The first member to attach creates the namespace and bridge; the member whose detach leaves
the bridge without ports deletes the namespace. Members may live in different processes
(several ``tether lab vtep`` commands), so attach and detach hold an exclusive ``flock`` on
``/run/tether-lab/NAME.lock``. The bridge's own port list is the reference count: a member
whose namespace was deleted without a detach lost its veth with it, and counts no more.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import os
from collections.abc import AsyncIterator
from pathlib import Path

from tether.lab.errors import DaemonError, NetworkSetupError
from tether.lab.names import underlay_link
from tether.lab.netns import add_namespace, add_veth, delete_namespace, ip, namespace_exists
from tether.lab.ovs_daemons import OvsInstance

__all__ = [
    "BRIDGE",
    "DEFAULT_UNDERLAY",
    "MEMBER_LINK",
    "UNDERLAY_MTU",
    "Underlay",
    "route_tunnels",
]

DEFAULT_UNDERLAY = "tl-underlay"
BRIDGE = "underlay"
MEMBER_LINK = "phy0"
"""The veth end inside each member's namespace."""
UNDERLAY_MTU = 9000
LOCK_DIR = Path("/run/tether-lab")


class Underlay:
    """The shared segment in namespace ``name``."""

    def __init__(self, name: str = DEFAULT_UNDERLAY, *, lock_dir: Path = LOCK_DIR) -> None:
        if not name.startswith("tl-"):
            raise NetworkSetupError(f"underlay namespace {name!r} must start with 'tl-'")
        self.name = name
        self.lock_path = lock_dir / f"{name}.lock"

    @contextlib.asynccontextmanager
    async def _locked(self) -> AsyncIterator[None]:
        """Hold the underlay's lock (polled: waiting stays cancellable, needs no thread)."""
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except OSError as exc:
                    if exc.errno not in (errno.EAGAIN, errno.EWOULDBLOCK):
                        raise
                    await asyncio.sleep(0.02)
            yield
        finally:
            os.close(fd)  # releases the lock

    async def members(self) -> list[str]:
        """The veths plugged into the bridge."""
        if not namespace_exists(self.name):
            return []
        out = await ip("-o", "link", "show", "master", BRIDGE, netns=self.name)
        return [
            line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line
        ]

    async def attach(self, member: str, namespace: str) -> None:
        """Plug ``namespace`` in: ``phy0`` there, its peer on the bridge, both up."""
        async with self._locked():
            if not namespace_exists(self.name):
                await add_namespace(self.name)
                await ip("link", "add", BRIDGE, "type", "bridge", netns=self.name)
                await ip("link", "set", BRIDGE, "up", netns=self.name)
            link = underlay_link(member)
            await add_veth(
                link, MEMBER_LINK, peer_netns=namespace, netns=self.name, mtu=UNDERLAY_MTU
            )
            await ip("link", "set", link, "master", BRIDGE, "up", netns=self.name)
            await ip("link", "set", MEMBER_LINK, "up", netns=namespace)

    async def detach(self, member: str) -> None:
        """Unplug ``member``; the last one out deletes the underlay's namespace."""
        async with self._locked():
            if not namespace_exists(self.name):
                return
            link = underlay_link(member)
            if link in await self.members():
                await ip("link", "del", link, netns=self.name)
            if not await self.members():
                await delete_namespace(self.name)


async def route_tunnels(
    ovs: OvsInstance,
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface,
    bridge: str,
    *,
    timeout: float = 10.0,
) -> None:
    """A member's tunnel IP on its OVS underlay bridge, and OVS's own route to the underlay
    subnet through it (the userspace datapath routes VXLAN by its own table)."""
    await ip("addr", "replace", str(interface.with_prefixlen), "dev", bridge, netns=ovs.namespace)
    await ip("link", "set", bridge, "up", netns=ovs.namespace)
    subnet = str(interface.network)
    try:
        async with asyncio.timeout(timeout):
            while True:  # until ovs-vswitchd has seen the address
                with contextlib.suppress(DaemonError):
                    await ovs.appctl("ovs/route/add", subnet, bridge)
                    return
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise NetworkSetupError(f"ovs/route/add {subnet} {bridge} kept failing") from None
