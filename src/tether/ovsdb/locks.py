"""OVSDB locks as this session sees them: which locks it wants, which it holds.

Pure: replies and notifications in, :class:`LockEvent` lists out; :mod:`.client` sends the
requests. Server behaviour (ovsdb-server 3.1, see RFC 7047 section 4.1.8):

* ``lock`` queues the session; the reply says whether it got the lock at once, else a
  ``locked`` notification comes when it does. It stays queued after another session
  ``steal``s the lock and gets ``locked`` again when the thief unlocks.
* ``steal`` takes the lock at once. Stolen from in turn, the session leaves the queue: it
  must ``unlock`` and ``lock`` again.
* The owner may receive ``locked`` again when a waiter leaves: idempotent here, no event.
* After a reconnect every wanted lock is requested again with ``lock``.

Lock names must match ``[A-Za-z_][A-Za-z0-9_]*`` (the server refuses others as a syntax
error); :func:`validate_lock_name` checks before anything is sent.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

from tether.ovsdb.errors import InvalidLockNameError

__all__ = ["LockEvent", "LockEventKind", "LockMode", "LockTable", "validate_lock_name"]

_LOCK_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def validate_lock_name(name: str) -> str:
    if not isinstance(name, str) or not _LOCK_NAME.fullmatch(name):
        raise InvalidLockNameError(f"invalid lock name {name!r}: use [A-Za-z_][A-Za-z0-9_]*")
    return name


class LockEventKind(enum.Enum):
    LOCKED = "locked"  # this session now holds the lock
    STOLEN = "stolen"  # another session stole it
    LOST = "lost"  # the connection went down while holding it


@dataclass(frozen=True, slots=True)
class LockEvent:
    name: str
    kind: LockEventKind


class LockMode(enum.Enum):
    LOCK = "lock"  # queued: gets the lock back after a thief unlocks
    STEAL = "steal"  # took it by force: leaves the queue when stolen from


@dataclass(slots=True)
class _Lock:
    mode: LockMode
    held: bool = False
    queued: bool = True  # the server still has this session's request


class LockTable:
    """The locks one client wants, across connections."""

    def __init__(self) -> None:
        self._locks: dict[str, _Lock] = {}

    def holds(self, name: str) -> bool:
        lock = self._locks.get(name)
        return lock is not None and lock.held

    def mode(self, name: str) -> LockMode | None:
        lock = self._locks.get(name)
        return None if lock is None else lock.mode

    def is_queued(self, name: str) -> bool:
        lock = self._locks.get(name)
        return lock is not None and lock.queued

    def wanted(self) -> list[str]:
        return list(self._locks)

    def want(self, name: str, mode: LockMode) -> None:
        """A ``lock`` or ``steal`` request for ``name`` is being sent."""
        self._locks[name] = _Lock(mode)

    def forget(self, name: str) -> None:
        """``unlock`` was sent: the lock is neither wanted nor held any more."""
        self._locks.pop(name, None)

    def reply(self, name: str, locked: bool) -> list[LockEvent]:
        """The server answered ``lock``/``steal`` for ``name``."""
        lock = self._locks.get(name)
        if lock is None or not locked:
            return []  # not yet: a `locked` notification will follow
        return self._acquired(name, lock)

    def notify(self, method: str, name: str) -> list[LockEvent]:
        """A ``locked`` or ``stolen`` notification for ``name``."""
        lock = self._locks.get(name)
        if lock is None:
            return []  # unlocked meanwhile
        if method == "locked":
            return self._acquired(name, lock)
        was_held = lock.held
        lock.held = False
        lock.queued = lock.mode is LockMode.LOCK
        return [LockEvent(name, LockEventKind.STOLEN)] if was_held else []

    def connection_lost(self) -> list[LockEvent]:
        """The session ended: nothing is held; every wanted lock is to be asked for again."""
        events = [
            LockEvent(name, LockEventKind.LOST) for name, lock in self._locks.items() if lock.held
        ]
        for lock in self._locks.values():
            lock.held = False
            lock.queued = False
            lock.mode = LockMode.LOCK  # re-acquired with `lock`, never stolen back
        return events

    @staticmethod
    def _acquired(name: str, lock: _Lock) -> list[LockEvent]:
        if lock.held:
            return []  # a repeated `locked`
        lock.held = True
        lock.queued = True
        return [LockEvent(name, LockEventKind.LOCKED)]
