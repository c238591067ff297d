"""The switch agent's asyncio shell: monitor the database, ask the core, program the ASIC.

One :class:`SwitchAgent` is one hardware switch's OVSDB client (FIG. 4, client 452). It
monitors the ``hardware_vtep`` tables, and on every change, lock event or reconnect runs one
*pass*: observe the replica (:func:`tether.vtep.state.observe`), call
:func:`~tether.lab.switch_agent.decide`, program the ASIC and send the lock requests and
releases it returns. Every decision lives in :mod:`.switch_agent`.

The one thing this shell adds is ordering. When a lock arrives (``locked``), the agent must
apply the logical switch's state as the controller left it. ovsdb-server sends a session its
pending monitor updates before it reads that session's next request, so one ``echo`` round
trip after ``locked`` guarantees that every transaction committed before the thief's
``unlock`` is in the replica (FIG. 7, 722-728: ask for the records once the lock is back).
Until that round trip returns, the lock counts as not held.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import cast

from tether.lab.asic import MemoryAsic
from tether.lab.switch_agent import Decision, decide
from tether.ovsdb import Client, ClientOptions, LockEventKind, Monitor, OvsdbError
from tether.vtep.state import DATABASE, TABLES, ObserveCache, Tables, observe

__all__ = ["DB", "MONITORED_TABLES", "SwitchAgent"]

log = logging.getLogger(__name__)

DB = DATABASE
MONITORED_TABLES = TABLES


class SwitchAgent:
    """Programs ``asic`` from the database of switch ``physical_switch`` at ``address``."""

    def __init__(
        self,
        address: str,
        physical_switch: str,
        asic: MemoryAsic,
        *,
        options: ClientOptions | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.physical_switch = physical_switch
        self.asic = asic
        self._address = address
        self._options = options
        self._clock = clock
        self._client: Client | None = None
        self._monitor: Monitor | None = None
        self._wake = asyncio.Event()
        self._pass_done = asyncio.Event()
        self._passes_started = 0
        self._passes_done = 0
        self._last_changed = True
        self._requested: set[str] = set()  # locks asked for and not given up
        self._confirmed: set[str] = set()  # locks held, with the replica read after `locked`
        # `locked` arrived, the echo round trip is to come: lock -> number of that `locked`
        self._fresh: dict[str, int] = {}
        self._locked_count = 0
        self._decision: Decision | None = None
        self._observed = ObserveCache()
        self._flush_handle: asyncio.TimerHandle | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def client(self) -> Client:
        if self._client is None:
            raise RuntimeError("the switch agent is not connected")
        return self._client

    @property
    def last_decision(self) -> Decision | None:
        return self._decision

    async def connect(self, *, timeout: float = 10.0) -> Client:
        """Open the OVSDB session (the caller may write before :meth:`start`)."""
        self._client = Client(self._address, options=self._options, on_reconnect=self._reconnected)
        await self._client.connect(timeout=timeout)
        return self._client

    async def start(self) -> None:
        """Monitor the tables and start programming."""
        client = self.client
        tables = dict.fromkeys(MONITORED_TABLES)
        self._monitor = await client.monitor_cond_since(
            DB, tables, on_update=lambda _: self._wake.set()
        )
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._run(), name=f"switch-agent {self.physical_switch}"),
            loop.create_task(self._forward_lock_events()),
        ]
        self._wake.set()

    async def stop(self) -> None:
        if self._flush_handle is not None:
            self._flush_handle.cancel()
            self._flush()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        if self._client is not None:
            await self._client.close()  # the server releases our locks with the session

    async def settle(self, *, timeout: float = 10.0) -> None:
        """Wait until the agent has acted on everything the server sent before this call and
        a pass changes nothing more (for tests and benchmarks)."""
        async with asyncio.timeout(timeout):
            while True:
                await self.client.echo()  # every earlier update is in the replica now
                target = self._passes_started + 1
                self._wake.set()
                while self._passes_done < target:
                    await self._pass_done.wait()
                if not self._last_changed and not self._fresh:
                    self.asic.flush_files()
                    return

    async def _reconnected(self) -> None:
        self._wake.set()

    async def _forward_lock_events(self) -> None:
        """Wake the pass loop on lock events (the pass reads the queue itself, in order)."""
        queue = self.client.lock_events
        while True:
            event = await queue.get()
            self._on_lock_event(event.name, event.kind)
            self._wake.set()

    def _on_lock_event(self, name: str, kind: LockEventKind) -> None:
        if name not in self._requested:
            return  # given up since: the event is stale
        if kind is LockEventKind.LOCKED:
            self._locked_count += 1
            self._fresh[name] = self._locked_count
        else:  # stolen, or lost with the connection
            self._fresh.pop(name, None)
            self._confirmed.discard(name)

    def _take_lock_events(self) -> None:
        queue = self.client.lock_events
        while not queue.empty():
            event = queue.get_nowait()
            self._on_lock_event(event.name, event.kind)

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            self._passes_started += 1
            try:
                self._last_changed = await self._pass()
            except OvsdbError as exc:  # retried on the next update, lock event or reconnect
                log.info("switch %s: pass failed: %s", self.physical_switch, exc)
                self._last_changed = True
            except Exception:  # a bug: say so loudly, but keep the switch forwarding
                log.exception("switch %s: pass crashed", self.physical_switch)
                self._last_changed = True
            self._passes_done += 1
            self._pass_done.set()
            self._pass_done = asyncio.Event()

    async def _pass(self) -> bool:
        """One observe-decide-apply step; returns whether it did anything."""
        client, monitor = self.client, self._monitor
        assert monitor is not None
        did = await self._confirm_locks()
        held = {name for name in self._confirmed if client.holds_lock(name)}
        # observe() reads the replica's decoded rows as they are: no copy per pass
        view = observe(cast(Tables, monitor.replica.tables), self.physical_switch, self._observed)
        decision = decide(view, programmed=self.asic.tables, held=held, requested=self._requested)
        self._decision = decision
        now = self._clock()
        for entry in self.asic.program_many(decision.program, now=now):
            log.debug(
                "switch %s: programmed %s: %s", self.physical_switch, entry.switch, entry.state
            )
        self._schedule_flush()
        for name in decision.unlock:
            self._requested.discard(name)
            self._confirmed.discard(name)
            await client.unlock(name)
        for name in decision.lock:
            self._requested.add(name)
            await client.lock(name)  # a LOCKED event follows when it is ours
        return did or not decision.is_empty

    def _schedule_flush(self) -> None:
        """A state file left pending (the ASIC's state interval) is written when it is due."""
        if self.asic.files_pending and self._flush_handle is None:
            interval = self.asic.state_interval
            self._flush_handle = asyncio.get_running_loop().call_later(interval, self._flush)

    def _flush(self) -> None:
        self._flush_handle = None
        self.asic.flush_files()

    async def _confirm_locks(self) -> bool:
        """Echo once per batch of new ``locked``: the replica is then as of the unlock."""
        did = False
        self._take_lock_events()
        while self._fresh:
            before = dict(self._fresh)
            await self.client.echo()
            self._take_lock_events()  # stolen (and maybe locked again) meanwhile?
            for name, count in before.items():
                if self._fresh.get(name) == count:  # no newer event: confirmed by this echo
                    del self._fresh[name]
                    self._confirmed.add(name)
            did = True
        return did
