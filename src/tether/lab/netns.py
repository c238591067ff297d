"""Linux network plumbing for the lab, through iproute2: commands, namespaces, links.

Each function runs one command as an asyncio subprocess (many switches start side by side in
one process) and raises :class:`~tether.lab.errors.NetworkSetupError` with the command's own
reason when iproute2 refuses, :class:`~tether.lab.errors.DaemonError` when a binary is
missing. Namespaces are only ever deleted by the name their creator passes in; creating one
that exists fails instead of adopting it.

Users: :mod:`.ovs_daemons`, :mod:`.ovs_asic`, :mod:`.underlay` and :mod:`.hosts`.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from tether.lab.errors import DaemonError, LabError, NetworkSetupError

__all__ = [
    "NETNS_DIR",
    "add_namespace",
    "add_veth",
    "delete_namespace",
    "find_binary",
    "in_namespace",
    "ip",
    "link_exists",
    "namespace_exists",
    "run",
]

NETNS_DIR = Path("/run/netns")
"""Where ``ip netns`` keeps named namespaces (``/var/run/netns`` is a link to it)."""


def find_binary(name: str) -> str:
    """The path of ``name`` (also looked up in ``/usr/sbin``, often not on a user's PATH)."""
    path = shutil.which(name) or next(
        (
            f"{d}/{name}"
            for d in ("/usr/sbin", "/usr/bin", "/sbin")
            if os.path.exists(f"{d}/{name}")
        ),
        None,
    )
    if path is None:
        raise DaemonError(f"{name} is not installed")
    return path


async def run(
    argv: Sequence[str],
    *,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float = 30.0,
    error: type[LabError] = NetworkSetupError,
) -> str:
    """Run ``argv`` and return its standard output; ``error`` with its stderr on failure."""
    command = [find_binary(argv[0]), *argv[1:]]
    try:
        process = await asyncio.create_subprocess_exec(
            *command,
            stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=None if env is None else {**os.environ, **env},
        )
    except OSError as exc:
        raise error(f"{argv[0]}: {exc}") from exc
    try:
        async with asyncio.timeout(timeout):
            out, err = await process.communicate(None if stdin is None else stdin.encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        raise error(f"`{' '.join(argv)}` did not finish within {timeout:.0f} s") from None
    if process.returncode != 0:
        reason = " ".join(err.decode(errors="replace").split()) or f"exit {process.returncode}"
        raise error(f"`{' '.join(argv)}` failed: {reason}")
    return out.decode(errors="replace")


def in_namespace(namespace: str, argv: Sequence[str]) -> list[str]:
    """``argv`` run inside ``namespace`` (``ip netns exec`` execs it: the PID stays)."""
    return [find_binary("ip"), "netns", "exec", namespace, *argv]


async def ip(*args: str, netns: str | None = None) -> str:
    """``ip [-n NETNS] ARGS``."""
    return await run(["ip", *(("-n", netns) if netns else ()), *args])


def namespace_exists(name: str) -> bool:
    return (NETNS_DIR / name).exists()


async def add_namespace(name: str) -> None:
    """Create namespace ``name`` with its loopback up; fails if it exists."""
    if namespace_exists(name):
        raise NetworkSetupError(
            f"network namespace {name} exists already (left over from a crash? "
            f"`ip netns del {name}` if it is yours)"
        )
    await ip("netns", "add", name)
    await ip("link", "set", "lo", "up", netns=name)


async def delete_namespace(name: str) -> None:
    """Delete namespace ``name`` (its links go with it); nothing if it is gone already."""
    if namespace_exists(name):
        await ip("netns", "del", name)


async def link_exists(name: str, *, netns: str | None = None) -> bool:
    try:
        await ip("link", "show", "dev", name, netns=netns)
    except NetworkSetupError:
        return False
    return True


async def add_veth(
    name: str, peer: str, *, peer_netns: str, netns: str | None = None, mtu: int | None = None
) -> None:
    """A veth pair: ``name`` in ``netns`` (None: this one), ``peer`` in ``peer_netns``."""
    extra = ("mtu", str(mtu)) if mtu else ()
    await ip(
        "link", "add", name, *extra, "type", "veth", "peer", "name", peer, *extra,
        "netns", peer_netns, netns=netns,
    )  # fmt: skip
