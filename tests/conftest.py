"""Shared fixtures: the anyio backend, a session etcd on loopback, stores of each backend."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from tests.daemons import EtcdServer, running_etcd
from tether.store import Store, open_store


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EtcdServer]:
    with running_etcd(tmp_path_factory.mktemp("etcd")) as server:
        yield server


@pytest.fixture(params=["sqlite", "etcd"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:{tmp_path / 'tether.db'}"
    server: EtcdServer = request.getfixturevalue("etcd_server")
    return server.url


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    opened = await open_store(store_url)
    if opened.name == "etcd":
        await opened.delete("", prefix=True)  # one etcd per session: start each test empty
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def api(tmp_path: Path) -> Iterator[str]:
    """A real API server on a fresh embedded store; yields its base URL."""
    from tests.servers import running_api

    with running_api(f"sqlite:{tmp_path / 'api.db'}") as url:
        yield url


@pytest.fixture
def http(api: str) -> Iterator[httpx.Client]:
    """A client of :func:`api`."""
    with httpx.Client(base_url=api, timeout=30) as client:
        yield client
