"""What one hypervisor needs of the store: the watch stream of a chassis, filtered. Pure.

A hypervisor agent compiles flows for the networks of its own ports and the networks its
routers reach (:mod:`tether.openflow.view`); it needs those networks' ports and MAC claims,
the routers attached to them, and every chassis, gateway, binding and gateway status (small,
and the tunnel IPs of all VTEPs). It needs nothing of the rest of the fabric.
:class:`ChassisScope` follows the stream and says which events to pass:

* every key outside ``networks``, ``ports``, ``routers`` and the MAC claims passes, but
  the chassis agents' reports and presence (no agent reads them, and each would reach every
  agent);
* a network, its ports and its claims pass while the network is *relevant*: a port of it is
  bound to the chassis, or a router connects it to such a network;
* a router passes while one of its networks is relevant;
* when a network becomes relevant, the shell must send what the agent has not seen of it
  (:meth:`ChassisScope.take` says which networks; :meth:`ChassisScope.backfill` picks their
  keys from a listing); when it stops being relevant, the keys sent for it are deleted from
  the agent's view (:meth:`ChassisScope.take` returns those deletes).

The scope keeps its own small index of ports (network, chassis) and routers (networks) from
the events it sees, so relevance never depends on another component's timing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import orjson

from tether.service.inventory import CLAIMS_PREFIX, parse_claim_key
from tether.service.keys import AGENTS_ONLY_STATUS, MODEL_PREFIX
from tether.store import Event, EventType, KeyValue

__all__ = ["ChassisScope", "ScopeChange"]

NETWORKS = f"{MODEL_PREFIX}networks/"
PORTS = f"{MODEL_PREFIX}ports/"
ROUTERS = f"{MODEL_PREFIX}routers/"


@dataclass(frozen=True, slots=True)
class ScopeChange:
    passed: tuple[Event, ...]
    """The events of the batch the agent should see."""
    gained: frozenset[str] = frozenset()
    """Networks that just became relevant: send their keys (:meth:`ChassisScope.backfill`)."""
    dropped: tuple[Event, ...] = ()
    """Deletes for the keys of networks that are no longer relevant."""


@dataclass
class ChassisScope:
    chassis: str
    _ports: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    """Port key -> (network, chassis)."""
    _routers: dict[str, frozenset[str]] = field(default_factory=dict)
    """Router key -> its networks."""
    _relevant: frozenset[str] = frozenset()
    _sent: dict[str, set[str]] = field(default_factory=dict)
    """Network -> keys passed for it (to delete them when it goes)."""

    @property
    def relevant(self) -> frozenset[str]:
        return self._relevant

    def take(self, events: Iterable[Event], revision: int) -> ScopeChange:
        """Index a batch, then say what passes of it."""
        batch = tuple(events)
        for event in batch:
            self._index(event)
        before, after = self._relevant, self._compute()
        self._relevant = after
        passed = tuple(e for e in batch if self._passes(e))
        for event in passed:
            self._remember(event)
        dropped = []
        for network in sorted(before - after):
            for key in sorted(self._sent.pop(network, set())):
                dropped.append(Event(EventType.DELETE, KeyValue(key, b"", 0, revision, 0)))
        return ScopeChange(passed, after - before, tuple(dropped))

    def backfill(self, kvs: Iterable[KeyValue], networks: frozenset[str]) -> list[KeyValue]:
        """Of a listing, the keys of ``networks`` (that just became relevant)."""
        picked = [kv for kv in kvs if self._network_of(kv.key, kv.value) in networks]
        for kv in picked:
            self._remember(Event(EventType.PUT, kv))
        return picked

    # -- relevance ----------------------------------------------------------------------

    def _index(self, event: Event) -> None:
        key = event.kv.key
        deleted = event.type is EventType.DELETE
        if key.startswith(PORTS):
            if deleted:
                self._ports.pop(key, None)
            else:
                port = _json(event.kv.value)
                chassis = port.get("chassis")
                self._ports[key] = (
                    str(port.get("network", "")),
                    chassis if isinstance(chassis, str) else None,
                )
        elif key.startswith(ROUTERS):
            if deleted:
                self._routers.pop(key, None)
            else:
                interfaces = _json(event.kv.value).get("interfaces")
                self._routers[key] = frozenset(
                    str(i.get("network", ""))
                    for i in (interfaces if isinstance(interfaces, list) else [])
                    if isinstance(i, dict)
                )

    def _compute(self) -> frozenset[str]:
        mine = {network for network, chassis in self._ports.values() if chassis == self.chassis}
        reached = set(mine)
        for networks in self._routers.values():
            if networks & mine:
                reached |= networks
        return frozenset(reached)

    def _passes(self, event: Event) -> bool:
        key = event.kv.key
        if key.startswith(AGENTS_ONLY_STATUS):
            return False
        if not _scoped(key):
            return True
        if event.type is EventType.DELETE:
            return self._sent_network(key) is not None  # only what the agent was given
        if key.startswith(ROUTERS):
            return bool(self._routers.get(key, frozenset()) & self._relevant)
        return self._network_of(key, event.kv.value) in self._relevant

    def _sent_network(self, key: str) -> str | None:
        for network, keys in self._sent.items():
            if key in keys:
                return network
        return None

    def _network_of(self, key: str, value: bytes) -> str | None:
        """The network a scoped key belongs to; None for keys every agent gets."""
        if key.startswith(NETWORKS):
            return key[len(NETWORKS) :]
        if key.startswith(PORTS):
            known = self._ports.get(key)
            if known is not None:
                return known[0]
            return str(_json(value).get("network", "")) if value else ""
        if key.startswith(CLAIMS_PREFIX):
            parsed = parse_claim_key(key)
            return parsed[1] if parsed else None
        if key.startswith(ROUTERS):
            networks = self._routers.get(key) or frozenset()
            relevant = networks & self._relevant
            return next(iter(sorted(relevant)), "") if relevant else ""
        return None

    def _remember(self, event: Event) -> None:
        key = event.kv.key
        if event.type is EventType.DELETE:
            for keys in self._sent.values():
                keys.discard(key)
            return
        if key.startswith(ROUTERS):
            for network in self._routers.get(key, frozenset()) & self._relevant:
                self._sent.setdefault(network, set()).add(key)
            return
        scoped = self._network_of(key, event.kv.value)
        if scoped is not None:
            self._sent.setdefault(scoped, set()).add(key)


def _scoped(key: str) -> bool:
    return key.startswith((NETWORKS, PORTS, ROUTERS, CLAIMS_PREFIX))


def _json(value: bytes) -> dict[str, object]:
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return {}
    return decoded if isinstance(decoded, dict) else {}
