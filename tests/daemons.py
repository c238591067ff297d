"""Real daemons for tests: etcd (and later ovsdb-server) on loopback, stopped by PID.

Each daemon gets ports and a directory of its own. When a daemon's binary is missing the
test skips on a developer machine and fails under CI (``CI=true``), as the guide requires.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

__all__ = ["EtcdServer", "free_port", "require_binary", "running_etcd"]


def require_binary(name: str) -> str:
    path = shutil.which(name) or (
        f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None
    )
    if path:
        return path
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{name} is required under CI but is not installed (run `make test`)")
    pytest.skip(f"{name} is not installed")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, *, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


@dataclass
class EtcdServer:
    data_dir: Path
    client_port: int
    peer_port: int
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"etcd://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        binary = require_binary("etcd")
        client = f"http://127.0.0.1:{self.client_port}"
        peer = f"http://127.0.0.1:{self.peer_port}"
        log = open(self.data_dir.parent / f"etcd-{self.client_port}.log", "ab")  # noqa: SIM115
        self.process = subprocess.Popen(
            [
                binary,
                "--name",
                "default",
                "--data-dir",
                str(self.data_dir),
                "--listen-client-urls",
                client,
                "--advertise-client-urls",
                client,
                "--listen-peer-urls",
                peer,
                "--initial-advertise-peer-urls",
                peer,
                "--initial-cluster",
                f"default={peer}",
                # tether's bulk API writes thousands of keys in one transaction
                "--max-txn-ops",
                "100000",
                "--max-request-bytes",
                "67108864",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        wait_for_port(self.client_port)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)


@contextlib.contextmanager
def running_etcd(base: Path) -> Iterator[EtcdServer]:
    server = EtcdServer(base / "etcd-data", free_port(), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- ovsdb-server ---------------------------------------------------------------------------

VTEP_SCHEMA = Path("/usr/share/openvswitch/vtep.ovsschema")


@dataclass
class OvsdbTls:
    """PEM files for ovsdb-server's ``pssl:`` remote: its key and certificate, the CA's."""

    private_key: Path
    certificate: Path
    ca_cert: Path


@dataclass
class OvsdbServer:
    """A private ovsdb-server: one database file, a unix socket and a loopback TCP port (and
    an SSL port with ``tls``), all under ``workdir``; stopped by PID. ``start`` creates the
    database from ``schema`` unless the file exists, so a restart keeps the data."""

    workdir: Path
    schema: Path = VTEP_SCHEMA
    tcp_port: int = 0
    ssl_port: int = 0
    tls: OvsdbTls | None = None
    process: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        self.tcp_port = self.tcp_port or free_port()
        if self.tls is not None:
            self.ssl_port = self.ssl_port or free_port()

    @property
    def db_path(self) -> Path:
        return self.workdir / "ovsdb.db"

    @property
    def socket_path(self) -> Path:
        return self.workdir / "db.sock"

    @property
    def unix(self) -> str:
        return f"unix:{self.socket_path}"

    @property
    def tcp(self) -> str:
        return f"tcp:127.0.0.1:{self.tcp_port}"

    @property
    def ssl(self) -> str:
        return f"ssl:127.0.0.1:{self.ssl_port}"

    def start(self) -> None:
        server = require_binary("ovsdb-server")
        tool = require_binary("ovsdb-tool")
        if not self.db_path.exists():
            subprocess.run([tool, "create", str(self.db_path), str(self.schema)], check=True)
        args = [
            server,
            str(self.db_path),
            f"--remote=punix:{self.socket_path}",
            f"--remote=ptcp:{self.tcp_port}:127.0.0.1",
            f"--pidfile={self.workdir / 'ovsdb-server.pid'}",
            f"--unixctl={self.workdir / 'ovsdb-server.ctl'}",
            f"--log-file={self.workdir / 'ovsdb-server.log'}",
            "--no-chdir",
        ]
        if self.tls is not None:
            args += [
                f"--remote=pssl:{self.ssl_port}:127.0.0.1",
                f"--private-key={self.tls.private_key}",
                f"--certificate={self.tls.certificate}",
                f"--ca-cert={self.tls.ca_cert}",
            ]
        self.process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for_unix_socket(self.socket_path, self.process)
        wait_for_port(self.tcp_port)
        if self.tls is not None:
            wait_for_port(self.ssl_port)

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            if sig in (signal.SIGKILL, signal.SIGTERM):
                self.process.send_signal(signal.SIGCONT)  # a stopped process cannot exit
            self.process.send_signal(sig)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def pause(self) -> None:
        """SIGSTOP: the server keeps its sockets open and answers nothing."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def transact_offline(self, transaction: str) -> str:
        """``ovsdb-tool transact`` on the database file (the server must be stopped)."""
        tool = require_binary("ovsdb-tool")
        done = subprocess.run(
            [tool, "transact", str(self.db_path), transaction],
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout


def wait_for_unix_socket(
    path: Path, process: subprocess.Popen[bytes], *, timeout: float = 15.0
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(path))
            return
        time.sleep(0.02)
    raise TimeoutError(f"nothing listens on {path} after {timeout}s (exit {process.poll()})")


@contextlib.contextmanager
def running_ovsdb(workdir: Path, *, tls: OvsdbTls | None = None) -> Iterator[OvsdbServer]:
    server = OvsdbServer(workdir, tls=tls)
    server.start()
    try:
        yield server
    finally:
        server.kill()


OVS_BINARIES = (
    "ovsdb-server",
    "ovsdb-tool",
    "ovs-vswitchd",
    "ovs-vsctl",
    "ovs-ofctl",
    "ovs-appctl",
)


def require_ovs_lab(*extra: str) -> None:
    """Open vSwitch, ``ip`` and ``extra`` binaries, and root (network namespaces): skipped
    without them, failed under CI."""
    for name in (*OVS_BINARIES, "ip", *extra):
        require_binary(name)
    if os.geteuid() != 0:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("this test needs root under CI (network namespaces)")
        pytest.skip("this test needs root (network namespaces)")
