"""When to connect, probe and give up: a reconnect state machine with exponential back-off.

Pure, after OVS's ``python/ovs/reconnect.py``: every method takes ``now`` (seconds, any
monotonic origin) and :meth:`Reconnect.run` returns the action that is due, if any. The
shell (:mod:`.client`) carries the action out, reports what happened (``connected``,
``connect_failed``, ``disconnected``, ``activity``) and sleeps until :meth:`deadline`.

States and their deadlines::

    STOPPED ──start──▶ BACKOFF ──(backoff over: CONNECT)──▶ CONNECTING
                         ▲  ▲                                   │ connected
      connect_failed /   │  └──(connect_timeout: DISCONNECT)────┤
      disconnected       │                                      ▼
                         └───────────────────────────────── ACTIVE ◀─┐ activity
                           (probe_timeout: DISCONNECT)          │    │
                                 ▲                 (idle for probe_interval: PROBE)
                                 └──────────────────── IDLE ─────────┘

Back-off: 0 before the first attempt, then ``min_backoff``, doubling per failure up to
``max_backoff``. A connection that stayed up at least as long as the current back-off
resets it to ``min_backoff``; a flapping one keeps doubling it. ``probe_interval`` 0 turns
keep-alive probing off. :meth:`run` returns each action once and moves to the state the
action leads to, as if it succeeded.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

__all__ = ["Action", "Reconnect", "ReconnectOptions", "State"]


class State(enum.Enum):
    STOPPED = "stopped"
    BACKOFF = "backoff"
    CONNECTING = "connecting"
    ACTIVE = "active"
    IDLE = "idle"  # a probe is out, awaiting any message


class Action(enum.Enum):
    CONNECT = "connect"
    PROBE = "probe"  # send an echo request
    DISCONNECT = "disconnect"  # the attempt or the connection timed out: drop it


@dataclass(frozen=True, slots=True)
class ReconnectOptions:
    min_backoff: float = 1.0
    max_backoff: float = 8.0
    connect_timeout: float = 10.0
    probe_interval: float = 5.0  # idle time before an echo; 0: never probe
    probe_timeout: float = 5.0  # time for any answer after the echo


class Reconnect:
    """The connect / back-off / keep-alive state of one client."""

    def __init__(self, options: ReconnectOptions | None = None) -> None:
        self.options = options or ReconnectOptions()
        self.state = State.STOPPED
        self.backoff = 0.0
        self.entered = 0.0  # when the current state was entered
        self.last_activity = 0.0
        self.last_connected = 0.0
        self.connections = 0  # successful connections so far

    @property
    def is_connected(self) -> bool:
        return self.state in (State.ACTIVE, State.IDLE)

    def start(self, now: float) -> None:
        if self.state is State.STOPPED:
            self.backoff = 0.0
            self._enter(State.BACKOFF, now)

    def stop(self, now: float) -> None:
        self._enter(State.STOPPED, now)

    def connected(self, now: float) -> None:
        self.connections += 1
        self.last_connected = self.last_activity = now
        self._enter(State.ACTIVE, now)

    def connect_failed(self, now: float) -> None:
        if self.state is State.CONNECTING:
            self._back_off(now, stable=False)

    def disconnected(self, now: float) -> None:
        if self.is_connected:
            self._back_off(now, stable=now - self.last_connected >= self.backoff)
        elif self.state is State.CONNECTING:
            self._back_off(now, stable=False)

    def activity(self, now: float) -> None:
        """Something arrived from the server."""
        self.last_activity = now
        if self.state is State.IDLE:
            self._enter(State.ACTIVE, now)

    def deadline(self) -> float | None:
        """When :meth:`run` will next have something to do (None: not before an event)."""
        options = self.options
        if self.state is State.BACKOFF:
            return self.entered + self.backoff
        if self.state is State.CONNECTING:
            return self.entered + options.connect_timeout
        if self.state is State.ACTIVE and options.probe_interval > 0:
            return max(self.last_activity, self.entered) + options.probe_interval
        if self.state is State.IDLE:
            return self.entered + options.probe_timeout
        return None

    def run(self, now: float) -> Action | None:
        """The action due at ``now``, if any; the machine assumes it is carried out."""
        deadline = self.deadline()
        if deadline is None or now < deadline:
            return None
        if self.state is State.BACKOFF:
            self._enter(State.CONNECTING, now)
            return Action.CONNECT
        if self.state is State.ACTIVE:
            self._enter(State.IDLE, now)
            return Action.PROBE
        self.disconnected(now)  # CONNECTING or IDLE timed out
        return Action.DISCONNECT

    def _back_off(self, now: float, *, stable: bool) -> None:
        options = self.options
        if stable or self.backoff == 0:
            self.backoff = options.min_backoff
        else:
            self.backoff = min(options.max_backoff, self.backoff * 2)
        self._enter(State.BACKOFF, now)

    def _enter(self, state: State, now: float) -> None:
        self.state = state
        self.entered = now
