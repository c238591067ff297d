"""The agent's heartbeat: how often it beats, how it recovers, how it leaves."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest

from tether.agent import heartbeat as heartbeat_module
from tether.agent.heartbeat import Heartbeat, backoff

pytestmark = pytest.mark.anyio

UNKNOWN_CHASSIS = {"error": {"code": "not_found", "message": "no chassis", "field": "chassis"}}


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
        if code == 404:
            return httpx.Response(code, json=UNKNOWN_CHASSIS)
        if code == 405:  # an older controller, without the path
            return httpx.Response(404, json={"error": {"code": "not_found", "field": None}})
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


async def test_a_404_for_a_path_an_older_controller_lacks_registers_nothing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heartbeat_module, "RETRY_SECONDS", 0.01)
    registered = []

    async def register() -> None:
        registered.append(True)

    heartbeat = Heartbeat("hv1", register)
    await _beat_against([405, 405], heartbeat, ttl=30, seconds=0.2)
    assert registered == [], "registering again would write the chassis every few seconds"
    assert heartbeat.beats == 1


def test_the_back_off_stays_finite_however_long_the_outage() -> None:
    assert backoff(0.5, 1) == 0.5 and backoff(0.5, 3) == 2.0
    assert backoff(0.5, 5000) == backoff(0.5, 17) < float("inf")


async def test_a_stopping_agent_lets_a_heartbeat_in_flight_finish_before_it_leaves() -> None:
    """Otherwise the controller could handle the abandoned heartbeat after the end of the
    presence, and bring it back for a whole timeout."""
    done: list[str] = []

    async def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "PUT":
            await asyncio.sleep(0.3)
        done.append(request.method)
        return httpx.Response(200, json={"chassis": "hv1", "alive": True, "ttl": 30})

    heartbeat = Heartbeat("hv1", _nothing)
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(handle), base_url="http://controller"
    ) as http:
        task = asyncio.ensure_future(heartbeat.run(http))
        await asyncio.sleep(0.1)  # the first heartbeat is in flight
        task.cancel()
        await heartbeat.leave(http)
    assert done == ["PUT", "DELETE"]
