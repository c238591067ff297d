"""The installed ``tether`` command: every failure is one line on stderr and a non-zero exit."""

from __future__ import annotations

import subprocess
import sys

import pytest


def tether(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tether.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "code", "needle"),
    [
        (["port", "create"], 2, "Missing argument"),
        (["network", "create", "web", "--vni", "abc"], 2, "--vni"),
        (["frobnicate"], 2, "No such command"),
        (["network", "list", "--url", "http://127.0.0.1:1"], 1, "not reachable"),
        (["serve", "--store", "sqlite:/proc/nonexistent/db"], 1, "cannot open the store"),
        (["serve", "--store", "mysql://db"], 2, "store"),
        (["agent", "--chassis", "hv1", "--tunnel-ip", "nope"], 2, "nope"),
        (
            ["agent", "--chassis", "hv1", "--tunnel-ip", "192.0.2.1", "--ovsdb", "tcp:x:1"],
            2,
            "ovsdb",
        ),
        (
            [
                "agent",
                "--chassis",
                "hv1",
                "--tunnel-ip",
                "192.0.2.1",
                "--server",
                "http://127.0.0.1:1",
            ],
            1,
            "Connect",
        ),
    ],
)
def test_failures_are_one_line(args: list[str], code: int, needle: str) -> None:
    done = tether(*args)
    assert done.returncode == code, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], done.stderr


def test_help_works_and_exits_zero() -> None:
    done = tether("--help")
    assert done.returncode == 0 and "serve" in done.stdout and "gateway" in done.stdout
    assert tether().returncode == 0
