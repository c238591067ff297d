"""The VTEP agent: one per hardware gateway, keeps its switch equal to tether's wish.

The shell around the pure planner: it holds an OVSDB session to the switch (reconnecting
forever), a monitor of the ``hardware_vtep`` tables it reads, and a loop that — whenever the
desired configuration, the switch's rows or the session change — observes the switch, asks
:func:`tether.vtep.plan.plan` for the next stage and runs it: steal the stage's locks, send
its transactions one by one (each encoded against the rows the switch holds at that moment),
release the locks. When a stage fails, the locks stay stolen (the switch keeps forwarding on
its last complete state) and the next pass, a full diff against what the switch now holds,
finishes the job. When tether itself dies mid-stage, the server releases the stolen locks
with its session; the marks the plan writes (``state_consistent=false``, ``lock`` mode's
``tether-pending``) keep the switch on its last complete state until the next tether, which
plans from what the switch holds like any pass, finishes the job. Whether the switch's schema
has the column for the ``lock`` mark is read from the monitor's columns. The *realized
generation* moves to the desired one only when a pass finds nothing left to do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, cast

from tether.model.resources import Gateway
from tether.ovsdb import (
    Client,
    ConnectionLostError,
    Monitor,
    OvsdbError,
    RowChange,
    TlsFiles,
    TransactionError,
)
from tether.vtep.encode import EncodeError, Refs, encode
from tether.vtep.ops import Bind, Stage, Transaction, Unbind
from tether.vtep.plan import missing_ports, plan
from tether.vtep.state import (
    DATABASE,
    TABLES,
    GatewayConfig,
    ObserveCache,
    Tables,
    local_macs,
    observe,
    refs_of,
)

__all__ = ["DATABASE", "GatewayStatus", "LocalMacs", "VtepAgent"]

LocalMacs = dict[tuple[str, str], str | None]
"""(logical switch name, MAC) -> IP: what a switch reports in ``Ucast_Macs_Local``."""
LEARNING_TABLES = frozenset({"Ucast_Macs_Local", "Logical_Switch"})

log = logging.getLogger(__name__)

RETRY_SECONDS = 1.0
CONNECT_SECONDS = 10.0
IDLE_CHECK_SECONDS = 1.0
TRANSACT_SECONDS = 60.0
"""A switch that has not answered a transaction in this long is reported in error."""


@dataclass(frozen=True, slots=True)
class GatewayStatus:
    gateway: str
    mode: str
    connection: str = "connecting"
    """``connecting``, ``connected`` or ``disconnected``."""
    desired_generation: int = 0
    realized_generation: int = 0
    stage: str = ""
    bound_ports: tuple[str, ...] = ()
    vlan_bindings: tuple[tuple[str, int], ...] = ()
    """(physical port, VLAN) of every ``vlan_bindings`` entry the switch holds."""
    rows: Mapping[str, int] = field(default_factory=dict)
    last_error: str = ""
    transactions: int = 0
    switch_tunnel_ips: tuple[str, ...] = ()
    """``Physical_Switch.tunnel_ips`` as the switch reports them."""
    update_gap_ms: float | None = None
    """bind-last only: how long the last updated logical switch was unbound (unbind
    confirmed -> rebind confirmed), the outage the patent's update path costs."""
    max_update_gap_ms: float | None = None

    @property
    def state(self) -> str:
        if self.last_error:
            return "error"
        if self.connection == "connected" and self.realized_generation == self.desired_generation:
            return "realized"
        return "pending"

    def as_json(self) -> dict[str, Any]:
        return {
            "gateway": self.gateway,
            "mode": self.mode,
            "state": self.state,
            "connection": self.connection,
            "desired_generation": self.desired_generation,
            "realized_generation": self.realized_generation,
            "stage": self.stage,
            "bound_ports": list(self.bound_ports),
            "vlan_bindings": [list(pair) for pair in self.vlan_bindings],
            "rows": dict(self.rows),
            "last_error": self.last_error,
            "transactions": self.transactions,
            "switch_tunnel_ips": list(self.switch_tunnel_ips),
            "update_gap_ms": self.update_gap_ms,
            "max_update_gap_ms": self.max_update_gap_ms,
        }


class VtepAgent:
    """Drives one switch. ``on_status`` is called with every status change."""

    def __init__(
        self,
        gateway: Gateway,
        *,
        on_status: Callable[[GatewayStatus], None],
        clock: Callable[[], float] = time.monotonic,
        tls: TlsFiles | None = None,
        on_local_macs: Callable[[LocalMacs], None] | None = None,
    ) -> None:
        self.gateway = gateway
        self._on_local_macs = on_local_macs
        self._local_macs: LocalMacs | None = None
        self._tls = tls
        self._clock = clock
        self._unbound_at: dict[str, float] = {}
        self._on_status = on_status
        self._desired = GatewayConfig(gateway.physical_switch, {})
        self._generation = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.status = GatewayStatus(gateway.name, gateway.mode)
        self._held: set[str] = set()
        self._client_ref: Client | None = None
        self._monitor_ref: Monitor | None = None
        self._observed = ObserveCache()

    # -- control ----------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    def set_desired(self, config: GatewayConfig, generation: int) -> None:
        if config != self._desired:
            self._desired = config
            self._generation = generation
            self._report(desired_generation=generation)
            self._wake.set()

    def set_gateway(self, gateway: Gateway) -> bool:
        """Take new settings; returns True when the agent must restart (new address)."""
        if gateway == self.gateway:
            return False
        restart = gateway.ovsdb != self.gateway.ovsdb
        self.gateway = gateway
        self._report(mode=gateway.mode)
        self._wake.set()
        return restart

    @property
    def realized(self) -> bool:
        return self.status.realized_generation == self._generation

    def _report(self, **changes: Any) -> None:
        new = replace(self.status, **changes)
        if new != self.status:
            self.status = new
            self._on_status(new)

    # -- the loop ---------------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            client = Client(self.gateway.ovsdb, tls_files=self._tls, on_reconnect=self._reconnected)
        except OvsdbError as exc:  # e.g. ssl: without TLS files configured
            hint = (
                " (set ovsdb_private_key, ovsdb_certificate and ovsdb_ca_cert)"
                if "ssl" in str(exc)
                else ""
            )
            self._report(connection="disconnected", last_error=f"{exc}{hint}")
            return
        try:
            await self._session(client)
        finally:
            await client.close()

    async def _reconnected(self) -> None:
        # The server dropped our stolen locks with the old session; the client would ask for
        # them again (queued behind the switch). Give them up: the next pass steals what it
        # needs, and a switch is never left waiting behind tether for a lock.
        held, self._held = self._held, set()
        client = self._client_ref
        if client is not None:
            for lock in sorted(held):
                with contextlib.suppress(OvsdbError):
                    await client.unlock(lock)
        self._wake.set()

    async def _session(self, client: Client) -> None:
        self._client_ref = client
        client.start()
        monitor: Monitor | None = None
        while True:
            try:
                await client.wait_ready(timeout=CONNECT_SECONDS)
                if monitor is None:
                    monitor = await client.monitor_cond_since(
                        DATABASE, dict.fromkeys(TABLES), on_update=self._switch_changed
                    )
                    self._collect(monitor)
                    if self.gateway.mode == "lock" and not _has_other_config(monitor):
                        log.warning(
                            "gateway %s: the switch has no Logical_Switch.other_config, so "
                            "lock mode cannot mark updates pending: if tether dies in the "
                            "middle of one, the switch may apply a partial logical switch",
                            self.gateway.name,
                        )
                self._report(connection="connected")
                await self._converge(client, monitor)
            except OvsdbError as exc:
                connected = "connected" if client.is_ready else "disconnected"
                where = f"{self.status.stage} stage: " if isinstance(exc, TransactionError) else ""
                self._report(connection=connected, last_error=where + _describe(exc))
                log.warning("gateway %s: %s", self.gateway.name, exc)
                await asyncio.sleep(RETRY_SECONDS)
            except EncodeError as exc:
                self._report(last_error=str(exc))
                await self._idle(client)

    def _switch_changed(self, changes: list[RowChange]) -> None:
        self._wake.set()
        monitor = self._monitor_ref
        if monitor is not None and any(c.table in LEARNING_TABLES for c in changes):
            self._collect(monitor)

    def _collect(self, monitor: Monitor) -> None:
        """Hand the MACs the switch learned to the collector, when they changed. A lost
        session changes nothing: the last report stands until the switch is read again."""
        self._monitor_ref = monitor
        if self._on_local_macs is None:
            return
        learned = local_macs(_tables(monitor))
        if learned != self._local_macs:
            self._local_macs = learned
            self._on_local_macs(learned)

    async def _idle(self, client: Client) -> None:
        """Wait for something to do; notice a lost session even when nothing else happens."""
        while not self._wake.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=IDLE_CHECK_SECONDS)
            if not client.is_ready:
                self._report(connection="disconnected")
                raise ConnectionLostError(f"{self.gateway.ovsdb}: session lost")

    async def _converge(self, client: Client, monitor: Monitor) -> None:
        while True:
            self._wake.clear()
            generation, desired = self._generation, self._desired
            stage, problem = self._next_stage(monitor, desired)
            await self._release(client, stage.steal if stage else frozenset())
            if stage is None:
                self._report(last_error=problem)
                await self._idle(client)
                continue
            if not stage.transactions:
                self._report(realized_generation=generation, stage="", last_error=problem)
                await self._idle(client)
                continue
            self._report(stage=stage.name)
            await self._run_stage(client, monitor, stage)

    async def _release(self, client: Client, keep: frozenset[str]) -> None:
        """Unlock what an earlier, failed stage left stolen and this one does not need."""
        for lock in sorted(self._held - keep):
            await client.unlock(lock)
            self._held.discard(lock)

    def _next_stage(self, monitor: Monitor, desired: GatewayConfig) -> tuple[Stage | None, str]:
        """The next stage, and a problem to report even when everything else converges."""
        tables = _tables(monitor)
        view = observe(
            tables,
            self.gateway.physical_switch,
            self._observed,
            can_mark_pending=_has_other_config(monitor),
        )
        counts = {table: len(tables[table]) for table in TABLES}
        self._report(
            bound_ports=tuple(sorted({p for p, _ in view.bindings})),
            vlan_bindings=tuple(sorted(view.bindings)),
            rows=counts,
            switch_tunnel_ips=view.tunnel_ips,
        )
        if not view.physical_switch_found:
            return None, f"the switch has no Physical_Switch {self.gateway.physical_switch!r}"
        missing = missing_ports(desired, view)
        problem = f"the switch has no port {', '.join(missing)}" if missing else ""
        return plan(desired, view, self.gateway.mode, self.gateway.max_rows_per_txn), problem

    async def _run_stage(self, client: Client, monitor: Monitor, stage: Stage) -> None:
        for lock in sorted(stage.steal - self._held):
            await client.steal(lock)
            self._held.add(lock)
        for transaction in stage.transactions:
            switches, locators, ports = refs_of(
                _tables(monitor), self.gateway.physical_switch, self._observed
            )
            ops = encode(transaction, Refs(switches, locators, ports))
            results = await client.transact(DATABASE, ops, timeout=TRANSACT_SECONDS)
            await _seen_by_replica(monitor, ops, results)
            self._report(transactions=self.status.transactions + 1)
            if stage.name == "update":
                self._measure_gaps(transaction)
        for lock in sorted(stage.steal):  # only after every write was confirmed
            await client.unlock(lock)
            self._held.discard(lock)

    def _measure_gaps(self, transaction: Transaction) -> None:
        """Time from a confirmed unbind to the confirmed rebind of the same logical switch."""
        now = self._clock()
        for op in transaction.ops:
            if isinstance(op, Unbind) and op.switch:
                self._unbound_at.setdefault(op.switch, now)
            elif isinstance(op, Bind) and op.switch in self._unbound_at:
                gap = (now - self._unbound_at.pop(op.switch)) * 1000
                worst = max(gap, self.status.max_update_gap_ms or 0.0)
                self._report(update_gap_ms=round(gap, 2), max_update_gap_ms=round(worst, 2))


async def _seen_by_replica(monitor: Monitor, ops: list[dict[str, Any]], results: list[Any]) -> None:
    """Wait until the rows this transaction inserted are in the replica (ovsdb-server sends
    the update before the reply, so this normally returns at once)."""
    inserted = [
        (op["table"], str(result["uuid"][1]))
        for op, result in zip(ops, results, strict=False)
        if op.get("op") == "insert" and isinstance(result, dict) and "uuid" in result
    ]
    if inserted:
        await monitor.wait_for(
            lambda replica: all(
                uuid in replica.rows(table)
                for table, uuid in inserted
                if table in ("Logical_Switch", "Physical_Locator")
            ),
            timeout=10,
        )


def _has_other_config(monitor: Monitor) -> bool:
    """The switch's schema has ``Logical_Switch.other_config`` (where ``lock`` mode marks an
    update pending). The monitor asks for every column, so its columns are the schema's (a
    switch without logical switches has no rows to tell)."""
    return "other_config" in monitor.replica.columns.get("Logical_Switch", {})


def _tables(monitor: Monitor) -> Tables:
    return {table: cast(Mapping[str, Mapping[str, Any]], monitor.rows(table)) for table in TABLES}


def _describe(exc: OvsdbError) -> str:
    return str(exc) or type(exc).__name__
