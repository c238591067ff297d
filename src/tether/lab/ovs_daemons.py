"""A private Open vSwitch for one emulated switch: ovsdb-server and ovs-vswitchd in its namespace.

Files in ``DIR/ovs`` (``OVS_RUNDIR`` of the daemons and of every command run against them):
``conf.db`` (the ``Open_vSwitch`` database, created afresh at each start: the bridges are
derived state, the switch's real database is its ``hardware_vtep`` one), ``db.sock``,
``ovsdb-server.{pid,ctl,log}``, ``ovs-vswitchd.{pid,ctl,log}`` and one ``BRIDGE.mgmt``
OpenFlow socket per bridge.

Both daemons run inside the switch's network namespace (``ip netns exec`` execs them, so the
PIDs we hold are theirs), one ``ovs-vswitchd --disable-system --disable-system-route`` per
namespace as the userspace datapath requires, in sessions of their own, and with
``setpriv --pdeathsig TERM`` so that a lab process killed with SIGKILL does not leave them
running. :meth:`OvsInstance.stop` asks ``ovs-vswitchd`` to ``exit --cleanup`` (which removes
its tap devices), SIGTERMs ``ovsdb-server``, and SIGKILLs either after a timeout — always by
PID.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import signal
import subprocess
from collections.abc import Sequence
from pathlib import Path

from tether.lab.errors import DaemonError
from tether.lab.netns import find_binary, in_namespace, run

__all__ = ["VSWITCH_SCHEMA", "OvsInstance", "dies_with_us"]

log = logging.getLogger(__name__)

VSWITCH_SCHEMA = Path("/usr/share/openvswitch/vswitch.ovsschema")
_MAX_UNIX_PATH = 107
_POLL = 0.01


def dies_with_us(argv: Sequence[str]) -> list[str]:
    """``argv`` run so that it gets SIGTERM when this process dies (when setpriv exists)."""
    setpriv = shutil.which("setpriv")
    return [setpriv, "--pdeathsig", "TERM", *argv] if setpriv else list(argv)


class _Daemon:
    """One daemon process we started, known by its PID."""

    def __init__(self, name: str, argv: Sequence[str], *, socket: Path, env: dict[str, str]):
        self.name = name
        self.argv = list(argv)
        self.socket = socket
        self.env = env
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> None:
        self.process = subprocess.Popen(
            dies_with_us(self.argv),
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )

    async def wait_ready(self, log_file: Path) -> None:
        """Until its unix socket accepts connections; DaemonError if it exits first."""
        process = self.process
        assert process is not None
        while True:
            if process.poll() is not None:
                raise DaemonError(
                    f"{self.name} exited with status {process.returncode} ({log_file})"
                )
            with contextlib.suppress(OSError):
                _, writer = await asyncio.open_unix_connection(str(self.socket))
                writer.close()
                await writer.wait_closed()
                return
            await asyncio.sleep(_POLL)

    async def wait_exit(self, timeout: float) -> bool:
        process = self.process
        if process is None:
            return True
        try:
            async with asyncio.timeout(timeout):
                while process.poll() is None:
                    await asyncio.sleep(_POLL)
        except TimeoutError:
            return False
        return True

    async def terminate(self, timeout: float) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; reaps it."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            if not await self.wait_exit(timeout):
                log.warning(
                    "%s %d ignored SIGTERM for %.0f s: killing it", self.name, process.pid, timeout
                )
                process.kill()
                await asyncio.to_thread(process.wait)
        self.process = None


class OvsInstance:
    """``ovsdb-server`` + ``ovs-vswitchd`` of one switch, running in ``namespace``."""

    def __init__(self, directory: Path, namespace: str) -> None:
        self.rundir = directory / "ovs"
        self.namespace = namespace
        self.db_path = self.rundir / "conf.db"
        self.db_socket = self.rundir / "db.sock"
        self.vswitchd_ctl = self.rundir / "ovs-vswitchd.ctl"
        env = {"OVS_RUNDIR": str(self.rundir), "OVS_LOGDIR": str(self.rundir)}
        self._env = env
        self._server = _Daemon("ovsdb-server", self._server_argv(), socket=self.db_socket, env=env)
        self._vswitchd = _Daemon(
            "ovs-vswitchd", self._vswitchd_argv(), socket=self.vswitchd_ctl, env=env
        )

    def _server_argv(self) -> list[str]:
        run_dir = self.rundir
        return in_namespace(
            self.namespace,
            [
                find_binary("ovsdb-server"),
                str(self.db_path),
                f"--remote=punix:{self.db_socket}",
                f"--pidfile={run_dir / 'ovsdb-server.pid'}",
                f"--unixctl={run_dir / 'ovsdb-server.ctl'}",
                f"--log-file={run_dir / 'ovsdb-server.log'}",
                "--no-chdir",
            ],
        )

    def _vswitchd_argv(self) -> list[str]:
        run_dir = self.rundir
        return in_namespace(
            self.namespace,
            [
                find_binary("ovs-vswitchd"),
                f"unix:{self.db_socket}",
                "--disable-system",
                "--disable-system-route",
                f"--pidfile={run_dir / 'ovs-vswitchd.pid'}",
                f"--unixctl={self.vswitchd_ctl}",
                f"--log-file={run_dir / 'ovs-vswitchd.log'}",
                "--no-chdir",
            ],
        )

    @property
    def pids(self) -> tuple[int, ...]:
        """PIDs of the running daemons (ovsdb-server first)."""
        daemons = (self._server, self._vswitchd)
        return tuple(d.process.pid for d in daemons if d.process is not None)

    def bridge_target(self, bridge: str) -> str:
        """The OpenFlow management socket of ``bridge`` (for ``ovs-ofctl``)."""
        return f"unix:{self.rundir / bridge}.mgmt"

    async def start(self, *, timeout: float = 20.0) -> None:
        """Create the database and start both daemons; DaemonError if they do not come up."""
        longest = self.rundir / "ovs-ofctl.4194304.ctl"  # ovs-ofctl monitor's own socket
        if len(os.fsencode(longest)) > _MAX_UNIX_PATH:
            raise DaemonError(f"{self.rundir}: path too long for OVS's unix sockets")
        self.rundir.mkdir(parents=True, exist_ok=True)
        self.db_path.unlink(missing_ok=True)
        await run(
            ["ovsdb-tool", "create", str(self.db_path), str(VSWITCH_SCHEMA)], error=DaemonError
        )
        try:
            async with asyncio.timeout(timeout):
                self._server.spawn()
                await self._server.wait_ready(self.rundir / "ovsdb-server.log")
                await self.vsctl("--no-wait", "init")
                self._vswitchd.spawn()
                await self._vswitchd.wait_ready(self.rundir / "ovs-vswitchd.log")
        except TimeoutError:
            await self.stop()
            raise DaemonError(
                f"Open vSwitch in {self.rundir} not ready after {timeout:.0f} s"
            ) from None
        except BaseException:
            await self.stop()
            raise

    async def kill_vswitchd(self) -> None:
        """``kill -9`` of ``ovs-vswitchd``, left down (:meth:`restart_vswitchd` brings it back)."""
        process = self._vswitchd.process
        if process is not None and process.poll() is None:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def restart_vswitchd(self, *, crash: bool = True, timeout: float = 20.0) -> None:
        """Stop ``ovs-vswitchd`` (SIGKILL when ``crash``, else SIGTERM) and start it again;
        returns once its control socket answers (its datapath and flows start empty)."""
        process = self._vswitchd.process
        if process is not None and process.poll() is None:
            if crash:
                process.kill()
                await asyncio.to_thread(process.wait)
            else:
                await self._vswitchd.terminate(timeout)
        self._vswitchd.process = None
        self.vswitchd_ctl.unlink(missing_ok=True)  # a killed daemon leaves its socket behind
        self._vswitchd.spawn()
        try:
            async with asyncio.timeout(timeout):
                await self._vswitchd.wait_ready(self.rundir / "ovs-vswitchd.log")
        except TimeoutError:
            raise DaemonError(
                f"ovs-vswitchd in {self.rundir} not back after {timeout:.0f} s"
            ) from None

    async def vsctl(self, *args: str) -> str:
        """``ovs-vsctl`` against this instance (waits for ovs-vswitchd to apply changes)."""
        db = f"--db=unix:{self.db_socket}"
        return await run(["ovs-vsctl", db, "--timeout=20", *args], env=self._env, error=DaemonError)

    async def ofctl(self, *args: str, stdin: str | None = None) -> str:
        return await run(["ovs-ofctl", *args], stdin=stdin, env=self._env, error=DaemonError)

    async def appctl(self, *args: str) -> str:
        target = ["-t", str(self.vswitchd_ctl)]
        return await run(["ovs-appctl", *target, *args], env=self._env, error=DaemonError)

    async def stop(self, *, timeout: float = 10.0) -> None:
        """Stop both daemons by PID; safe to call twice."""
        vswitchd = self._vswitchd.process
        if vswitchd is not None and vswitchd.poll() is None:
            try:
                await run(
                    ["ovs-appctl", "-t", str(self.vswitchd_ctl), "exit", "--cleanup"],
                    env=self._env,
                    timeout=timeout,
                    error=DaemonError,
                )
            except DaemonError as exc:
                log.warning("ovs-vswitchd %d: %s", vswitchd.pid, exc)
            if not await self._vswitchd.wait_exit(timeout):
                log.warning("ovs-vswitchd %d did not exit --cleanup", vswitchd.pid)
        await self._vswitchd.terminate(timeout)
        await self._server.terminate(timeout)
