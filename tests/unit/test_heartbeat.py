"""The agent's heartbeat: how often it beats, how it recovers, how it leaves."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from tether.agent import heartbeat as heartbeat_module
from tether.agent.heartbeat import Heartbeat

pytestmark = pytest.mark.anyio


async def _nothing() -> None:
    return None


async def _beat_against(
    answers: list[int], heartbeat: Heartbeat, *, ttl: float, seconds: float
) -> list[tuple[str, float]]:
    """Run the heartbeat against a controller answering ``answers`` in turn (then 200 with
    ``ttl``) for ``seconds``; returns (method, time) of every call."""
    calls: list[tuple[str, float]] = []
    started = asyncio.get_running_loop().time()

    def handle(request: httpx.Request) -> httpx.Response:
        calls.append((request.method, asyncio.get_running_loop().time() - started))
        assert request.url.path == "/v1/chassis/hv1/presence"
        code = answers.pop(0) if answers else 200
        return httpx.Response(code, json={"chassis": "hv1", "alive": True, "ttl": ttl})

    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handle), base_url="http://controller"
    ) as http:
        task = asyncio.ensure_future(heartbeat.run(http))
        await asyncio.sleep(seconds)
        task.cancel()
        await heartbeat.leave(http)
    return calls


async def test_it_beats_every_third_of_the_ttl_and_leaves_on_stop() -> None:
    heartbeat = Heartbeat("hv1", _nothing)
    calls = await _beat_against([], heartbeat, ttl=0.6, seconds=0.7)
    puts = [at for method, at in calls if method == "PUT"]
    assert 3 <= len(puts) <= 4, puts  # at 0, 0.2, 0.4 (and 0.6)
    assert all(0.19 <= b - a < 0.5 for a, b in itertools.pairwise(puts)), puts
    assert heartbeat.ttl == 0.6 and heartbeat.beats == len(puts)
    assert calls[-1][0] == "DELETE", "a clean stop ends the presence at once"


async def test_a_failed_beat_is_retried_long_before_the_presence_runs_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heartbeat_module, "RETRY_SECONDS", 0.01)
    heartbeat = Heartbeat("hv1", _nothing)
    calls = await _beat_against([503, 503, 503], heartbeat, ttl=30, seconds=0.3)
    puts = [at for method, at in calls if method == "PUT"]
    assert len(puts) == 4 and puts[3] < 0.2, puts
    assert heartbeat.beats == 1


async def test_a_deleted_chassis_registers_again_and_beats() -> None:
    registered = []

    async def register() -> None:
        registered.append(True)

    heartbeat = Heartbeat("hv1", register)
    calls = await _beat_against([404], heartbeat, ttl=30, seconds=0.2)
    assert registered == [True]
    assert [method for method, _ in calls] == ["PUT", "PUT", "DELETE"]
    assert heartbeat.beats == 1
