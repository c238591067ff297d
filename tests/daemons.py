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
