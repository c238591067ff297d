"""Acknowledged writes survive SIGKILL: of ``tether serve`` on the embedded store, and of the
etcd daemon under the etcd backend."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from tests.daemons import running_etcd
from tests.servers import ServeProcess


def _write_until_killed(server: ServeProcess, count: int) -> list[str]:
    """Create networks one by one; kill -9 right after the last acknowledgement."""
    acknowledged = []
    with httpx.Client(base_url=server.url, timeout=10) as http:
        for i in range(count):
            reply = http.post(
                "/v1/networks", json={"name": f"n{i}", "subnets": [{"cidr": f"10.{i}.0.0/24"}]}
            )
            assert reply.status_code == 201, reply.text
            acknowledged.append(reply.json()["id"])
            if i == count - 1:
                server.kill()  # no chance to flush anything after the last reply
        bulk = [{"kind": "network", "spec": {"name": f"b{i}"}} for i in range(5)]
    del bulk
    return acknowledged


def _all_there(url: str, ids: list[str]) -> None:
    with httpx.Client(base_url=url, timeout=10) as http:
        for obj_id in ids:
            assert http.get(f"/v1/networks/{obj_id}").status_code == 200, obj_id
        vnis = [n["vni"] for n in http.get("/v1/networks", params={"limit": 1000}).json()["items"]]
        assert len(vnis) == len(set(vnis)) == len(ids)
        # the restarted controller keeps validating against what survived
        again = http.post("/v1/networks", json={"name": "n0"})
        assert again.status_code == 409 and again.json()["error"]["field"] == "name"


def test_sqlite_writes_survive_kill_9_of_tether_serve(tmp_path: Path) -> None:
    server = ServeProcess(f"sqlite:{tmp_path / 'tether.db'}", tmp_path)
    server.start()
    try:
        acknowledged = _write_until_killed(server, 40)
        assert server.process is not None and server.process.returncode == -9
        server.start()
        _all_there(server.url, acknowledged)
    finally:
        server.kill()


@pytest.mark.etcd
def test_etcd_writes_survive_kill_9_of_etcd_and_of_tether_serve(tmp_path: Path) -> None:
    with running_etcd(tmp_path) as etcd:
        server = ServeProcess(etcd.url, tmp_path)
        server.start()
        try:
            acknowledged = _write_until_killed(server, 20)
            etcd.kill()
            etcd.start()
            server.start()
            _all_there(server.url, acknowledged)
        finally:
            server.kill()


def test_serve_refuses_a_bad_config_with_one_line(tmp_path: Path) -> None:
    import subprocess
    import sys

    config = tmp_path / "tether.toml"
    config.write_text('store = "sqlite:/tmp/x.db"\nlissten = "127.0.0.1:1"\n')
    done = subprocess.run(
        [sys.executable, "-m", "tether.cli.main", "serve", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"error: lissten: unknown key in {config} (known: store, listen,")
