"""Drive the real VtepAgent against the in-memory switch database (tests/unit/fake_vtep.py)
through a fake OVSDB client, with a lock server that behaves like ovsdb-server's and the
emulated switch's own decisions (tether.lab.switch_agent.decide) run after every write, so a
test can inject refused transactions and dropped sessions and ask what the switch applied."""

import asyncio
from types import SimpleNamespace

from tests.unit.fake_vtep import FakeVtepDb, FakeVtepError
from tether.lab.switch_agent import decide
from tether.model.resources import Gateway
from tether.ovsdb.errors import ConnectionLostError, TransactionError
from tether.vtep import agent as agent_mod
from tether.vtep.agent import VtepAgent
from tether.vtep.state import GatewayConfig, LogicalSwitchConfig, RemoteMac, observe


class LockServer:
    def __init__(self):
        self.owner = {}
        self.queue = {}

    def lock(self, who, name):
        if self.owner.get(name) is None:
            self.owner[name] = who
            return True
        if self.owner[name] != who and who not in self.queue.setdefault(name, []):
            self.queue[name].append(who)
        return self.owner[name] == who

    def steal(self, who, name):
        old = self.owner.get(name)
        self.owner[name] = who
        if old and old != who and old == "sw":  # `lock` mode: stays queued
            self.queue.setdefault(name, []).insert(0, old)

    def unlock(self, who, name):
        q = self.queue.setdefault(name, [])
        if who in q:
            q.remove(who)
        if self.owner.get(name) == who:
            self.owner[name] = q.pop(0) if q else None

    def held(self, who):
        return {n for n, o in self.owner.items() if o == who}


class Switch:
    """The switch agent's decisions, run after every write (as the real one would)."""

    def __init__(self, db, locks, allowed):
        self.db, self.locks, self.allowed = db, locks, allowed
        self.programmed, self.requested, self.violations, self.log = {}, set(), [], []

    def step(self):
        for _ in range(5):
            view = observe(self.db.tables, "tor1")
            d = decide(
                view,
                programmed=self.programmed,
                held=self.locks.held("sw"),
                requested=self.requested,
            )
            for name, t in d.program.items():
                if t is None:
                    self.programmed.pop(name, None)
                else:
                    self.programmed[name] = t
                    key = (
                        t.vni,
                        tuple(sorted((m, e.locator, e.ip) for m, e in t.remote_macs.items())),
                        t.flood_locators,
                        t.bindings,
                    )
                    ok = key in [
                        (
                            c.tunnel_key,
                            tuple(sorted((m, r.locator, r.ip) for m, r in c.remote_macs.items())),
                            c.flood_locators,
                            c.bindings,
                        )
                        for c in self.allowed.get(name, [])
                    ]
                    self.log.append((name, ok))
                    if not ok:
                        self.violations.append((name, key))
            for n in d.unlock:
                self.requested.discard(n)
                self.locks.unlock("sw", n)
            for n in d.lock:
                self.requested.add(n)
                self.locks.lock("sw", n)
            if d.is_empty:
                return


class FakeMonitor:
    def __init__(self, db):
        self.db = db
        # the columns the agent reads the schema from (vtep 1.7.0 has other_config)
        self.replica = SimpleNamespace(columns={"Logical_Switch": {"other_config": None}})

    def rows(self, table):
        return self.db.tables.get(table, {})

    async def wait_for(self, pred, timeout):
        return


class FakeClient:
    def __init__(self, db, locks, switch, faults):
        self.db, self.locks, self.switch, self.faults = db, locks, switch, faults
        self.n = 0
        self.is_ready = True
        self.wanted = {}
        self.agent = None

    def start(self):
        pass

    async def close(self):
        pass

    async def wait_ready(self, timeout=None):
        while not self.is_ready:
            await asyncio.sleep(0.01)

    async def monitor_cond_since(self, db, tables, on_update=None):
        self.on_update = on_update
        return FakeMonitor(self.db)

    async def steal(self, name):
        self.locks.steal("ctl", name)
        self.wanted[name] = "steal"
        self.db.locks = self.locks.held("ctl")
        self.switch.step()
        return True

    async def unlock(self, name):
        self.wanted.pop(name, None)
        self.locks.unlock("ctl", name)
        self.db.locks = self.locks.held("ctl")
        self.switch.step()
        return False

    async def transact(self, dbname, ops, timeout=None):
        self.n += 1
        f = self.faults.get(self.n)
        if f == "refuse":
            raise TransactionError(len(ops), None, "constraint violation", "injected")
        if f == "disconnect":
            # as the real client: the server drops our locks; on reconnect every wanted
            # lock is asked for again with `lock`
            for name in list(self.locks.held("ctl")):
                self.locks.unlock("ctl", name)
            self.switch.step()
            for name in self.wanted:
                self.wanted[name] = "lock"
                self.locks.lock("ctl", name)
            self.db.locks = self.locks.held("ctl")
            self.switch.step()
            asyncio.get_running_loop().create_task(self.agent._reconnected())
            raise ConnectionLostError("injected drop")
        self.db.locks = self.locks.held("ctl")
        try:
            res = self.db.transact(list(ops))
        except FakeVtepError as e:
            raise TransactionError(0, None, "fake", str(e)) from e
        self.switch.step()
        if self.on_update:
            self.on_update([])
        return res


def gw(mode, max_rows):
    return Gateway(
        id="g1",
        tenant="default",
        name="tor1",
        ovsdb="tcp:127.0.0.1:6640",
        physical_switch="tor1",
        tunnel_ip="192.0.2.21",
        mode=mode,
        max_rows_per_txn=max_rows,
    )


def net(n, macs, locator="192.0.2.11", ports=(("eth1", None),), vni=None):
    remote = {
        f"02:00:00:{n:02x}:00:{m:02x}": RemoteMac(
            f"02:00:00:{n:02x}:00:{m:02x}", locator, f"10.{n}.0.{m}"
        )
        for m in macs
    }
    return LogicalSwitchConfig(
        name=f"net-{n}",
        tunnel_key=vni or 5000 + n,
        description=f"t/net{n}",
        remote_macs=remote,
        flood_locators=frozenset({locator, "192.0.2.12"}),
        bindings=frozenset((p, v if v else 100 + n) for p, v in ports),
    )


def cfg(*s):
    return GatewayConfig("tor1", {x.name: x for x in s})


async def settle(agent, client, secs=0.3):
    await asyncio.sleep(secs)


async def scenario(mode, max_rows, phases, faults=None, retry=0.01):
    """``phases``: GatewayConfigs (each applied once the previous settled) or callables."""
    saved, agent_mod.RETRY_SECONDS = agent_mod.RETRY_SECONDS, retry
    db = FakeVtepDb()
    locks = LockServer()
    allowed = {}
    for p in phases:
        if isinstance(p, GatewayConfig):
            for n, s in p.switches.items():
                allowed.setdefault(n, []).append(s)
    sw = Switch(db, locks, allowed)
    client = FakeClient(db, locks, sw, faults or {})
    statuses = []
    a = VtepAgent(gw(mode, max_rows), on_status=statuses.append)
    client.agent = a
    task = asyncio.get_running_loop().create_task(a._session(client))
    for gen, p in enumerate(phases, start=1):
        if isinstance(p, GatewayConfig):
            a.set_desired(p, gen)
        else:
            p(a)
        await settle(a, client)
    task.cancel()
    try:
        await task
    except asyncio.CancelledError:
        pass
    finally:
        agent_mod.RETRY_SECONDS = saved
    return a, db, locks, sw, client, statuses
