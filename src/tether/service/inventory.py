"""The MAC inventory service: claims in from the store and the model, locations out.

The shell around the pure reconciler (:mod:`tether.logical`), run inside ``tether serve``:

* **Claims live in the store**, one key per (device, network, MAC)::

      /tether/macs/claims/<device>/<network>/<mac>  ->  {"role", "ip", "source"}

  A put is a claim recorded at the key's ``mod_revision``; a delete withdraws it at the
  delete's revision. The store revision orders claims, so every controller following the
  store reaches the same answer. Two writers fill the space: the collector
  (:meth:`MacInventory.report`, fed by each VTEP agent with its switch's
  ``Ucast_Macs_Local``; source ``switch``) and the API (``POST /v1/macs/claims``, for
  devices tether does not collect from; source ``api``).
* **Ports bound to a chassis** are master claims of that chassis, recorded at the port's
  revision in the model — they are not copied into the claim space.
* **HA groups** (:mod:`tether.logical.ha`) add the slave claims of a gateway's group
  members; the gateways' priorities decide MACs nobody claims as master.
* Claims go to the reconciler split per network, in real time or in batches
  (:class:`~tether.logical.BatchPolicy`); each batch's location changes update the per
  network view (:meth:`located`) and are handed to ``on_change`` — only the networks that
  changed, for distribution (:class:`tether.vtep.controller.PhysicalController`).
* A device that disappears (gateway deleted, chassis deleted) has all its claims withdrawn
  at once, and its keys are removed from the store.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from tether.logical import (
    Batch,
    Batcher,
    BatchPolicy,
    ClaimRow,
    Counters,
    Damping,
    DeviceName,
    Explanation,
    Location,
    Mac,
    NetworkId,
    Reconciler,
    Revision,
)
from tether.logical.claims import MASTER, SLAVE, WITHDRAWN
from tether.logical.ha import changed_rows, effective_claims, members_of
from tether.model.resources import Chassis, Gateway, Port
from tether.service.models import ModelService
from tether.store import (
    CompactedError,
    Delete,
    EventType,
    KeyValue,
    Op,
    Put,
    Store,
    StoreError,
)

__all__ = [
    "CLAIMS_PREFIX",
    "InventorySettings",
    "MacInventory",
    "claim_key",
    "parse_claim_key",
]

log = logging.getLogger(__name__)

CLAIMS_PREFIX = "/tether/macs/claims/"
LIST_PAGE = 5000
"""Claims read per request at start (etcd answers at most 64 MB at once)."""
TXN_OPS = 100
"""Claim writes per store transaction (etcd refuses more than 128 by default)."""
TICK_SECONDS = 1.0
"""How often damped MACs are checked for release."""
COMPACT_SECONDS = 60.0
"""How often tombstones the store watch can no longer contradict are dropped."""

Key = tuple[NetworkId, Mac]


def claim_key(device: str, network: str, mac: str) -> str:
    return f"{CLAIMS_PREFIX}{device}/{network}/{mac}"


def parse_claim_key(key: str) -> tuple[DeviceName, NetworkId, Mac] | None:
    parts = key[len(CLAIMS_PREFIX) :].split("/")
    if not key.startswith(CLAIMS_PREFIX) or len(parts) != 3 or not all(parts):
        return None
    return DeviceName(parts[0]), NetworkId(parts[1]), Mac(parts[2])


@dataclass(frozen=True, slots=True)
class InventorySettings:
    batch: BatchPolicy = field(default_factory=BatchPolicy.real_time)
    """When collected claims reach the reconciler (real time unless configured)."""
    damping: Damping | None = field(default_factory=Damping)
    """MAC-mobility damping (EVPN's 5 moves in 180 s unless configured); None: off."""


@dataclass(frozen=True, slots=True)
class _Report:
    """A device's latest report of the MACs behind it, waiting to be written."""

    macs: Mapping[tuple[str, str], str | None]


class MacInventory:
    """Every claim, one location per (network, MAC), and the changes as they happen."""

    def __init__(
        self,
        models: ModelService,
        store: Store,
        settings: InventorySettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.models = models
        self.store = store
        self.settings = settings or InventorySettings()
        self._clock = clock
        self.reconciler = Reconciler(damping=self.settings.damping)
        self._batcher = Batcher(self.settings.batch)
        self._own: dict[Key, dict[DeviceName, ClaimRow]] = {}
        """Each device's own latest claim per MAC (withdrawals included until compacted)."""
        self._fed: dict[Key, dict[DeviceName, ClaimRow]] = {}
        """What the reconciler was given per MAC: own claims plus HA-derived slaves."""
        self._located: dict[NetworkId, dict[str, Location]] = {}
        self._since: dict[Key, float] = {}
        self._groups: dict[DeviceName, str] = {}
        self._members: dict[str, tuple[DeviceName, ...]] = {}
        self._devices: set[DeviceName] = set()
        self._port_claims: dict[str, ClaimRow] = {}
        self._reports: dict[str, _Report] = {}
        self._report_wake: dict[str, asyncio.Event] = {}
        self._writers: dict[str, asyncio.Task[None]] = {}
        self._written: dict[str, dict[tuple[str, str], bytes]] = {}
        """What the collector stored for each device (``switch`` claims), to write diffs."""
        self._last_reports: dict[str, _Report] = {}
        self._networks: set[str] = set()
        self._strangers: dict[DeviceName, list[ClaimRow]] = {}
        """Claims of devices not (yet) in the model, by device."""
        self._revision = 0
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self.on_change: Callable[[set[str]], None] = lambda networks: None
        """Called with the networks whose locations changed (set by the distributor)."""
        self.version = 0
        """Counts batches that changed a location."""

    # -- life ---------------------------------------------------------------------------

    async def start(self) -> None:
        async with self.models.reading():
            seen = self.models.version
            fence = self.models.catalog.fence_revision
            self._follow_devices()
        kvs, revision = await self._list_claims()
        self._take(kvs, [], revision)
        self._revision = revision
        await self._forget_strangers(kvs, fence)
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._follow_claims()),
            loop.create_task(self._follow_model(seen)),
            loop.create_task(self._flush_loop()),
        ]

    async def _list_claims(self) -> tuple[list[KeyValue], int]:
        """Every stored claim, a page at a time; the revision of the first page (a key
        changed while paging comes again through the watch, which starts after it)."""
        listing = await self.store.range(CLAIMS_PREFIX, limit=LIST_PAGE)
        kvs, revision = list(listing.kvs), listing.revision
        while listing.more and listing.kvs:
            listing = await self.store.range(
                CLAIMS_PREFIX, start_after=listing.kvs[-1].key, limit=LIST_PAGE
            )
            kvs += listing.kvs
        return kvs, revision

    async def stop(self) -> None:
        for task in [*self._tasks, *self._writers.values()]:
            task.cancel()
        for task in [*self._tasks, *self._writers.values()]:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        self._writers.clear()

    # -- reading --------------------------------------------------------------------------

    @property
    def revision(self) -> int:
        """The store revision up to which claims have been read."""
        return self._revision

    def located(self, network: str) -> Mapping[str, Location]:
        """Where each MAC of ``network`` lives."""
        return self._located.get(NetworkId(network), {})

    def networks(self) -> Iterable[NetworkId]:
        return self._located.keys()

    def explain(self, network: str, mac: str) -> Explanation | None:
        return self.reconciler.explain(NetworkId(network), Mac(mac))

    def is_derived(self, network: str, mac: str, device: str) -> bool:
        """Whether the device's claim on the MAC is a slave claim its HA group made."""
        key = (NetworkId(network), Mac(mac))
        return DeviceName(device) not in self._own.get(key, {}) or (
            self._own[key][DeviceName(device)][4] == WITHDRAWN
        )

    def age(self, network: str, mac: str) -> float | None:
        """Seconds since the MAC last changed location."""
        since = self._since.get((NetworkId(network), Mac(mac)))
        return None if since is None else max(0.0, self._clock() - since)

    def counters(self) -> Counters:
        return self.reconciler.counters()

    def pending(self) -> int:
        """Claims waiting in a batch."""
        return self._batcher.pending()

    def entries(
        self, network: str | None = None, device: str | None = None
    ) -> list[tuple[NetworkId, str, Location]]:
        """Located MACs, by network then MAC, optionally of one network or one device."""
        networks = [NetworkId(network)] if network is not None else sorted(self._located)
        found = []
        for net in networks:
            for mac, where in sorted(self._located.get(net, {}).items()):
                if device is None or where.device == device:
                    found.append((net, mac, where))
        return found

    def networks_of_mac(self, mac: str) -> list[NetworkId]:
        """The networks in which the MAC has claims (live or just withdrawn)."""
        return sorted(net for net, m in self._fed if m == mac)

    # -- claims through the API -----------------------------------------------------------

    async def put_claim(
        self, device: str, network: str, mac: str, role: str, ip: str | None
    ) -> int:
        """Record an ``api`` claim; returns its revision. The caller has checked that the
        device and network exist."""
        value = orjson.dumps({"role": role, "ip": ip, "source": "api"})
        return await self.store.put(claim_key(device, network, mac), value)

    async def delete_claim(self, device: str, network: str, mac: str) -> bool:
        """Withdraw a device's claim (of any source); False when it had none."""
        return await self.store.delete(claim_key(device, network, mac)) > 0

    async def wait_revision(self, revision: int, timeout: float = 10.0) -> None:
        """Wait until claims up to ``revision`` have been read (read-your-writes)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while self._revision < revision and loop.time() < deadline:
            await asyncio.sleep(0.005)

    # -- collection: what a device reports ------------------------------------------------

    def report(self, device: str, macs: Mapping[tuple[str, str], str | None]) -> None:
        """The complete set of (network, MAC) -> IP a device has behind it now; written to
        the store as that device's ``switch`` claims (only the difference, in the
        background, the latest report winning over ones not yet written)."""
        self._reports[device] = _Report(dict(macs))
        wake = self._report_wake.setdefault(device, asyncio.Event())
        wake.set()
        if device not in self._writers:
            task = asyncio.get_running_loop().create_task(self._write_reports(device, wake))
            self._writers[device] = task

    async def _write_reports(self, device: str, wake: asyncio.Event) -> None:
        while True:
            await wake.wait()
            wake.clear()
            report = self._reports.pop(device, None)
            if report is None:
                continue
            self._last_reports[device] = report
            try:
                await self._write_report(device, report)
            except Exception as exc:  # the store, or a bug: retry, never stop collecting
                if not isinstance(exc, StoreError):
                    log.exception("claims of %s not written", device)
                log.warning("claims of %s not stored (%s); retrying", device, exc)
                self._reports.setdefault(device, report)
                wake.set()
                await asyncio.sleep(0.5)

    async def _write_report(self, device: str, report: _Report) -> None:
        if DeviceName(device) not in self._devices:
            # not in this controller's model yet: written once it is (_follow_devices)
            self._reports.setdefault(device, report)
            return
        written = self._written.get(device)
        if written is None:
            listing = await self.store.range(f"{CLAIMS_PREFIX}{device}/")
            written = {}
            for kv in listing.kvs:
                parsed = parse_claim_key(kv.key)
                if parsed and _source(kv.value) == "switch":
                    written[(parsed[1], parsed[2])] = kv.value
            self._written[device] = written
        networks = self.models.catalog.objects["networks"]
        wanted = {
            key: orjson.dumps({"role": "master", "ip": ip, "source": "switch"})
            for key, ip in report.macs.items()
            if key[0] in networks
        }
        ops: list[Op] = [
            Put(claim_key(device, *key), value)
            for key, value in wanted.items()
            if written.get(key) != value
        ]
        ops += [Delete(claim_key(device, *key)) for key in written if key not in wanted]
        for start in range(0, len(ops), TXN_OPS):
            chunk = ops[start : start + TXN_OPS]
            await self.store.txn([], chunk)
            for op in chunk:
                parsed = parse_claim_key(op.key)
                assert parsed is not None
                if isinstance(op, Put):
                    written[(parsed[1], parsed[2])] = op.value
                else:
                    written.pop((parsed[1], parsed[2]), None)

    # -- following the store and the model ------------------------------------------------

    async def _follow_claims(self) -> None:
        while True:
            try:
                watch = self.store.watch(CLAIMS_PREFIX, start_revision=self._revision + 1)
                async for batch in watch:
                    puts = [e.kv for e in batch.events if e.type is EventType.PUT]
                    deletes = [e.kv for e in batch.events if e.type is EventType.DELETE]
                    if batch.events:
                        self._take(puts, deletes, batch.revision)
                    self._revision = max(self._revision, batch.revision)
            except CompactedError:
                log.warning("claim watch fell behind compaction; re-reading every claim")
                await self._reload()
            except StoreError as exc:
                log.warning("claim watch interrupted (%s); resuming", exc)
                await asyncio.sleep(0.5)
            except Exception:
                log.exception("claim watch failed; resuming")
                await asyncio.sleep(0.5)

    async def _reload(self) -> None:
        kvs, revision = await self._list_claims()
        present = {kv.key for kv in kvs}
        ported = {(row[0], row[1], row[2]) for row in self._port_claims.values()}
        gone = [
            KeyValue(claim_key(device, *key), b"", 0, revision, 0)
            for key, rows in self._own.items()
            for device, row in rows.items()
            if row[4] != WITHDRAWN
            and (key[0], key[1], device) not in ported
            and claim_key(device, *key) not in present
        ]
        self._take(kvs, gone, revision)
        self._revision = revision

    async def _follow_model(self, seen: int) -> None:
        while True:
            try:
                seen = await self.models.wait_change(seen)
                async with self.models.reading():
                    removed, dropped = self._follow_devices()
                for device in removed:
                    with contextlib.suppress(StoreError):
                        await self.store.delete(f"{CLAIMS_PREFIX}{device}/", prefix=True)
                    self._written.pop(device, None)
                    self._last_reports.pop(device, None)
                for key in dropped:  # claims in networks that are gone
                    with contextlib.suppress(StoreError):
                        await self.store.delete(key)
            except Exception:
                log.exception("inventory: following the model failed; resuming")
                await asyncio.sleep(0.5)

    def _follow_devices(self) -> tuple[set[DeviceName], list[str]]:
        """Take the catalog's devices, networks, HA groups, priorities and chassis-bound
        ports; returns the devices that disappeared and the stored claim keys of networks
        that did. A device or network that is gone loses its claims whatever their
        revisions: the model watch and the claims watch do not run in step."""
        catalog = self.models.catalog
        revision = Revision(catalog.fence_revision)
        networks = set(catalog.objects["networks"])
        gone_networks = self._networks - networks
        self._networks = networks
        gateways = [g for g in catalog.objects["gateways"].values() if isinstance(g, Gateway)]
        chassis = [c for c in catalog.objects["chassis"].values() if isinstance(c, Chassis)]
        devices = {DeviceName(g.name) for g in gateways} | {DeviceName(c.name) for c in chassis}
        removed = self._devices - devices
        added = devices - self._devices
        self._devices = devices
        groups = {DeviceName(g.name): g.ha_group for g in gateways if g.ha_group}
        priorities = {DeviceName(g.name): g.priority for g in gateways}
        rows: list[ClaimRow] = []
        forced: list[Key] = []
        dropped: list[str] = []
        for key, claims in self._own.items():
            for device, row in claims.items():
                if row[4] == WITHDRAWN:
                    continue
                if device in removed or key[0] in gone_networks:
                    claims[device] = (
                        key[0],
                        key[1],
                        device,
                        max(revision, row[3]),
                        WITHDRAWN,
                        None,
                    )
                    forced.append(key)
                    if key[0] in gone_networks and device not in removed:
                        dropped.append(claim_key(device, *key))
        for device in removed:
            self._strangers.pop(device, None)
        for device in added:
            rows += self._strangers.pop(device, [])
            wake = self._report_wake.get(device)
            if wake is not None and device in self._reports:
                wake.set()
        rows += self._port_changes(catalog.objects["ports"].values(), catalog.mod_revisions)
        regroup = groups != self._groups
        if regroup:
            self._groups = groups
            self._members = members_of(groups)
        now = self._clock()
        if priorities != self.reconciler.priorities:
            self._publish(self.reconciler.set_priorities(priorities, now), now)
        self._ingest(rows, revision, now, regroup=regroup, touched=forced)
        return removed, dropped

    def _port_changes(
        self, ports: Iterable[Any], revisions: Mapping[tuple[str, str], int]
    ) -> list[ClaimRow]:
        """Claims of chassis for their bound ports, as changed since the last call."""
        current: dict[str, ClaimRow] = {}
        for port in ports:
            if isinstance(port, Port) and port.chassis:
                previous = self._port_claims.get(port.id)
                ip = port.ips[0] if port.ips else None
                if (
                    previous is not None
                    and previous[0] == port.network
                    and previous[1] == port.mac
                    and previous[2] == port.chassis
                    and previous[5] == ip
                ):
                    current[port.id] = previous
                    continue
                revision = Revision(revisions.get(("ports", port.id), 0))
                current[port.id] = (
                    NetworkId(port.network),
                    Mac(port.mac),
                    DeviceName(port.chassis),
                    revision,
                    MASTER,
                    ip,
                )
        rows: list[ClaimRow] = []
        fence = Revision(self.models.catalog.fence_revision)
        for port_id, old in self._port_claims.items():
            new = current.get(port_id)
            if new is None or new[:3] != old[:3]:
                # moved or unbound: withdrawn at the port's new revision; deleted: at the
                # newest model revision seen (the delete's, or just after it)
                withdrawn_at = new[3] if new is not None else fence
                rows.append((old[0], old[1], old[2], withdrawn_at, WITHDRAWN, old[5]))
        rows += [row for port_id, row in current.items() if self._port_claims.get(port_id) != row]
        self._port_claims = current
        return rows

    def _take(self, puts: Iterable[KeyValue], deletes: Iterable[KeyValue], revision: int) -> None:
        rows: list[ClaimRow] = []
        for kv in puts:
            parsed = parse_claim_key(kv.key)
            if parsed is None:
                continue
            device, network, mac = parsed
            try:
                value = orjson.loads(kv.value)
                state = SLAVE if value.get("role") == "slave" else MASTER
                ip = value.get("ip") or None
            except (orjson.JSONDecodeError, AttributeError):
                log.error("claim %s is not readable; ignored", kv.key)
                continue
            rows.append((network, mac, device, Revision(kv.mod_revision), state, ip))
        for kv in deletes:
            parsed = parse_claim_key(kv.key)
            if parsed is None:
                continue
            device, network, mac = parsed
            rows.append((network, mac, device, Revision(kv.mod_revision), WITHDRAWN, None))
        rows.sort(key=lambda row: row[3])
        for row in rows:
            written = self._written.get(row[2])
            mine = (row[0], row[1])
            if row[4] == WITHDRAWN and written is not None and mine in written:
                del written[mine]
                # a switch claim deleted by someone else (an API unclaim, another
                # controller): the collector writes the device's last report again
                report = self._last_reports.get(row[2])
                if report is not None and row[2] not in self._reports:
                    self._reports[row[2]] = report
                    self._report_wake[row[2]].set()
        known = [row for row in rows if row[2] in self._devices]
        for row in rows:
            if row[2] not in self._devices:
                # a device this controller's model has not seen yet (another controller
                # created it and its switch reported at once): held until it appears; its
                # withdrawals only cancel what is held (a deleted device's last deletes)
                held = [r for r in self._strangers.pop(row[2], []) if r[:2] != row[:2]]
                if row[4] != WITHDRAWN:
                    held.append(row)
                if held:
                    self._strangers[row[2]] = held
        if known:
            self._ingest(known, Revision(revision), self._clock())

    async def _forget_strangers(self, kvs: Iterable[KeyValue], fence: int) -> None:
        """Remove the stored claims of devices that no longer exist (deleted while no
        controller ran): claims no newer than the model read at start (``fence``), whose
        device that model does not have. Newer ones may belong to a device created since;
        they wait."""
        strangers = {
            parsed[0]
            for kv in kvs
            if (parsed := parse_claim_key(kv.key))
            and parsed[0] not in self._devices
            and kv.mod_revision <= fence
        }
        for device in strangers:
            self._strangers.pop(device, None)
            with contextlib.suppress(StoreError):
                await self.store.delete(f"{CLAIMS_PREFIX}{device}/", prefix=True)

    # -- into the reconciler --------------------------------------------------------------

    def _ingest(
        self,
        rows: Iterable[ClaimRow],
        revision: Revision,
        now: float,
        *,
        regroup: bool = False,
        touched: Iterable[Key] = (),
    ) -> None:
        """Own claims in (``touched``: MACs whose own claims the caller changed already); the
        rows the reconciler must see (HA-expanded) to the batcher."""
        touched = dict.fromkeys(touched)
        for row in rows:
            key = (row[0], row[1])
            own = self._own.setdefault(key, {})
            old = own.get(row[2])
            if old is not None and old[3] > row[3]:
                continue  # an older claim arriving late
            own[row[2]] = row
            touched[key] = None
        if regroup:
            touched.update(dict.fromkeys(self._own))
        fed_rows: list[ClaimRow] = []
        for key in touched:
            own = self._own[key]
            after = effective_claims(own, self._groups, self._members)
            before = self._fed.get(key, {})
            fed_rows += changed_rows(before, after, revision)
            if after:
                self._fed[key] = after
            else:
                self._fed.pop(key, None)
            if all(row[4] == WITHDRAWN for row in own.values()) and not after:
                del self._own[key]
        if fed_rows:
            self._flush(self._batcher.add(fed_rows, now), now)
            self._wake.set()

    def _flush(self, batches: list[Batch], now: float) -> None:
        for batch in batches:
            # this shell orders each device's claims itself (_own), and derives rows whose
            # revisions come from two watches that do not run in step: the rows replace
            self._publish(self.reconciler.apply_rows(batch.rows(), now, ordered=True), now)

    def _publish(self, changes: Iterable[Any], now: float) -> None:
        networks: set[str] = set()
        for change in changes:
            located = self._located.setdefault(change.network, {})
            if change.new is None:
                located.pop(change.mac, None)
                self._since.pop((change.network, change.mac), None)
                if not located:
                    del self._located[change.network]
            else:
                located[change.mac] = change.new
                if change.old is None or change.old.device != change.new.device:
                    self._since[(change.network, change.mac)] = now
            networks.add(change.network)
        if networks:
            self.version += 1
            self.on_change(networks)

    async def _flush_loop(self) -> None:
        """Flush batches when they fall due; release damped MACs when their hold ends; now
        and then drop tombstones (the watch is in revision order: nothing older arrives)."""
        compacted = self._clock()
        while True:
            self._wake.clear()
            deadline = self._batcher.deadline()
            now = self._clock()
            wait = TICK_SECONDS if deadline is None else max(0.0, deadline - now)
            if self.reconciler.counters().damped == 0 and deadline is None:
                wait = TICK_SECONDS * 5
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=wait)
            now = self._clock()
            self._flush(self._batcher.due(now), now)
            self._publish(self.reconciler.tick(now), now)
            if now - compacted > COMPACT_SECONDS:  # ordered merges need no tombstones
                self.reconciler.compact(Revision(self._revision))
                compacted = now


def _source(value: bytes) -> str:
    try:
        decoded = orjson.loads(value)
    except orjson.JSONDecodeError:
        return ""
    return str(decoded.get("source", "")) if isinstance(decoded, dict) else ""
