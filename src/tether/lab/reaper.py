"""Clean-up insurance for an ovs-ASIC switch whose lab process dies without stopping it.

A ``tether lab vtep`` killed with SIGKILL (a CI timeout, the OOM killer) runs no clean-up: its
namespace, veths and underlay membership would stay. So :class:`~tether.lab.ovs_asic.OvsAsic`
starts, right after creating its namespace, ``python -m tether.lab.reaper NAMESPACE --rundir
DIR/ovs --underlay NAME`` with a pipe on its standard input, in a session of its own, and
the reaper only waits on that pipe:

* a ``release`` line — the switch stopped normally — ends it, doing nothing;
* end of file without one means its parent died: it stops the switch's daemons (the PIDs in
  ``DIR/ovs/*.pid`` and the ``hardware_vtep`` server's ``DIR/ovsdb-server.pid``, each only
  while ``/proc/PID/cmdline`` still names that directory),
  unplugs the namespace from the underlay (deleting the underlay if it was the last member)
  and deletes the namespace, which its parent created and which nobody else uses.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from tether.lab.errors import LabError
from tether.lab.netns import delete_namespace
from tether.lab.ovs_asic import REAPER_RELEASE
from tether.lab.underlay import Underlay

__all__ = ["main", "reap"]

log = logging.getLogger(__name__)

_PIDFILES = ("ovs/ovs-vswitchd.pid", "ovs/ovsdb-server.pid", "ovsdb-server.pid")
"""Relative to the switch's directory (``DIR/ovs/..``)."""


def _ours(pid: int, directory: Path) -> bool:
    """Whether process ``pid`` still runs with files in ``directory`` (a reused PID does not;
    a zombie has an empty command line)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return os.fsencode(directory) + b"/" in cmdline


def _stop_daemons(directory: Path, *, timeout: float = 5.0) -> None:
    for pidfile in _PIDFILES:
        try:
            pid = int((directory / pidfile).read_text().strip())
        except (OSError, ValueError):
            continue
        if not _ours(pid, directory):
            continue
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _ours(pid, directory) and time.monotonic() < deadline:
            time.sleep(0.02)
        if _ours(pid, directory):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


async def reap(namespace: str, *, rundir: Path, underlay: str) -> None:
    """Undo what an ovs-ASIC switch built (see the module)."""
    _stop_daemons(rundir.parent)
    steps: tuple[Callable[[], Awaitable[None]], ...] = (
        lambda: Underlay(underlay).detach(namespace),
        lambda: delete_namespace(namespace),
    )
    for step in steps:
        try:
            await step()
        except LabError as exc:
            log.warning("reaper for %s: %s", namespace, exc)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tether.lab.reaper")
    parser.add_argument("namespace")
    parser.add_argument("--rundir", type=Path, required=True)
    parser.add_argument("--underlay", required=True)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent's Ctrl-C is the parent's
    message = sys.stdin.buffer.read()
    if message.startswith(REAPER_RELEASE):
        return 0
    asyncio.run(reap(args.namespace, rundir=args.rundir, underlay=args.underlay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
