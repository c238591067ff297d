"""An emulated switch's ``ovsdb-server``: its database file and process, stopped by PID.

Files in the switch's directory: ``vtep.ovsschema`` (the installed ``hardware_vtep`` schema
plus tether's ``state_consistent`` column, :mod:`tether.vtep.schema`), ``vtep.db`` (created
when absent, converted when its schema is older, otherwise kept: the controller's rows
survive a restart), ``db.sock`` (``punix:``), ``ovsdb-server.pid``, ``ovsdb-server.ctl``
and ``ovsdb-server.log``. With a TCP port the server also listens on ``127.0.0.1:PORT``.

The server runs in its own session (a terminal's Ctrl-C reaches the lab, which stops it) and
is stopped with SIGTERM to the PID in its pidfile, never by name. Waiting never blocks the
event loop: many switches start and stop side by side in one process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
from pathlib import Path

from tether.lab.errors import DaemonError
from tether.vtep.schema import with_state_consistent

__all__ = ["VTEP_SCHEMA", "OvsdbServerProcess"]

log = logging.getLogger(__name__)

VTEP_SCHEMA = Path("/usr/share/openvswitch/vtep.ovsschema")
_MAX_UNIX_PATH = 107  # sun_path holds 108 bytes, NUL included
_POLL = 0.01


def _binary(name: str) -> str:
    path = shutil.which(name) or next(
        (f"{d}/{name}" for d in ("/usr/sbin", "/usr/bin") if os.path.exists(f"{d}/{name}")), None
    )
    if path is None:
        raise DaemonError(f"{name} is not installed (Debian: apt-get install openvswitch-switch)")
    return path


async def _tool(*args: str) -> str:
    """Run ``ovsdb-tool`` (in a worker thread) and return its output."""
    try:
        done = await asyncio.to_thread(
            subprocess.run, [_binary("ovsdb-tool"), *args], capture_output=True, text=True
        )
    except OSError as exc:
        raise DaemonError(f"ovsdb-tool {args[0]}: {exc}") from exc
    if done.returncode != 0:
        reason = " ".join(done.stderr.split()) or f"exit status {done.returncode}"
        raise DaemonError(f"ovsdb-tool {args[0]} failed: {reason}")
    return done.stdout.strip()


class OvsdbServerProcess:
    """One ``ovsdb-server`` serving ``DIR/vtep.db``."""

    def __init__(
        self, directory: Path, *, tcp_port: int | None = None, source_schema: Path = VTEP_SCHEMA
    ) -> None:
        self.directory = directory
        self.tcp_port = tcp_port
        self.source_schema = source_schema
        self.db_path = directory / "vtep.db"
        self.schema_path = directory / "vtep.ovsschema"
        self.socket_path = directory / "db.sock"
        self.pidfile = directory / "ovsdb-server.pid"
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def unix(self) -> str:
        return f"unix:{self.socket_path}"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    async def prepare(self) -> None:
        """Write the schema; create the database, or convert it if its schema is older."""
        if len(os.fsencode(self.socket_path)) > _MAX_UNIX_PATH:
            raise DaemonError(f"{self.socket_path}: path too long for a unix socket")
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            schema = json.loads(self.source_schema.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DaemonError(f"cannot read the hardware_vtep schema: {exc}") from exc
        text = json.dumps(with_state_consistent(schema), indent=1)
        self.schema_path.write_text(text, encoding="utf-8")
        if not self.db_path.exists():
            await _tool("create", str(self.db_path), str(self.schema_path))
        elif await _tool("needs-conversion", str(self.db_path), str(self.schema_path)) == "yes":
            log.info("%s: converting to %s", self.db_path, self.schema_path)
            await _tool("convert", str(self.db_path), str(self.schema_path))

    async def start(self, *, timeout: float = 15.0) -> None:
        """Prepare the database, start the server and wait until it accepts connections."""
        await self.prepare()
        self._reap()
        self.pidfile.unlink(missing_ok=True)
        args = [
            _binary("ovsdb-server"),
            str(self.db_path),
            f"--remote=punix:{self.socket_path}",
            f"--pidfile={self.pidfile}",
            f"--unixctl={self.directory / 'ovsdb-server.ctl'}",
            f"--log-file={self.directory / 'ovsdb-server.log'}",
            "--no-chdir",
        ]
        if self.tcp_port is not None:
            args.append(f"--remote=ptcp:{self.tcp_port}:127.0.0.1")
        self._process = subprocess.Popen(
            args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            async with asyncio.timeout(timeout):
                await self._wait_ready()
        except (TimeoutError, DaemonError) as exc:
            await self.stop()
            if isinstance(exc, DaemonError):
                raise
            raise DaemonError(
                f"ovsdb-server in {self.directory} not ready after {timeout} s"
            ) from exc

    def _reap(self) -> None:
        """Forget a previous server process that died (e.g. killed with SIGKILL)."""
        if self._process is not None and self._process.poll() is not None:
            self._process = None

    async def _wait_ready(self) -> None:
        process = self._process
        assert process is not None
        while True:
            if process.poll() is not None:
                log_file = self.directory / "ovsdb-server.log"
                raise DaemonError(
                    f"ovsdb-server exited with status {process.returncode} (see {log_file})"
                )
            if self.pidfile.exists():
                with contextlib.suppress(OSError):
                    _, writer = await asyncio.open_unix_connection(str(self.socket_path))
                    writer.close()
                    await writer.wait_closed()
                    return
            await asyncio.sleep(_POLL)

    async def wait_exited(self, *, poll: float = 0.2) -> int:
        """Wait until the server exits on its own; its exit status."""
        process = self._process
        if process is None:
            raise DaemonError(f"ovsdb-server in {self.directory} is not running")
        while process.poll() is None:
            await asyncio.sleep(poll)
        return process.returncode

    async def stop(self, *, timeout: float = 10.0) -> None:
        """SIGTERM to the PID in the pidfile (SIGKILL after ``timeout``), then reap it."""
        process, self._process = self._process, None
        if process is None:
            return
        pid = self._pid_from_file() or process.pid
        if pid != process.pid:
            log.warning("%s names %d, not our server %d", self.pidfile, pid, process.pid)
            pid = process.pid
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        try:
            async with asyncio.timeout(timeout):
                while process.poll() is None:
                    await asyncio.sleep(_POLL)
        except TimeoutError:
            log.warning("ovsdb-server %d ignored SIGTERM for %.0f s: killing it", pid, timeout)
            process.kill()
            await asyncio.to_thread(process.wait)

    def _pid_from_file(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
