"""Benchmark: the hypervisor agent restarted over ~10,000 flows of its predecessor (issue 6).

Set-up (not timed): ``tether serve`` (its own process, SQLite), ten chassis, and an Open
vSwitch in a namespace of its own (userspace datapath). The networks of
:mod:`agent_flows` (each with one VIF on ``hv0`` and nine ports on other chassis), plus a
network ``ping`` with two VMs on ``hv0`` (namespaces on veths plugged into ``br-int`` by
``iface-id``). A ``tether agent`` process for ``hv0`` programs the bridge and is killed
with SIGKILL; the flows another one, started afresh, settles on are the expected set (the
same flows as the first agent's but for the cookie: networks are numbered by VNI, ports by
OpenFlow port). Every run starts from a bridge holding ~10,000 flows of another generation
(the floor's, or a killed agent's), no agent running.

Per run:

* **floor** — the expected flows with the cookie of a generation no agent uses, loaded over
  the old ones with ``ovs-ofctl --bundle replace-flows``.
* **tether** — from starting a ``tether agent`` process (interpreter start-up included)
  until the bridge holds exactly the expected flows, all with the new agent's cookie, and
  nothing of any other generation: the end is when the agent records its generation on the
  bridge (after its first apply, one atomic bundle; that record is one ``ovs-vsctl`` the
  floor does not pay), checked against a dump; if the first
  apply left the bridge incomplete, the time runs until a dump shows it complete, and the
  run counts as failed. The agent is then killed with SIGKILL.

Then **loss**: one VM pings the other every 20 ms (``tether.lab.ping --stream -W 1``: on
schedule, whatever the replies) from before the first to after the last of ten restarts:
the agent killed with SIGKILL and started again, each time once the new one recorded its
generation and its flows are checked. Target: no packet lost.

``--smoke`` (CI): ten networks, one run, two restarts. Exits non-zero when a packet is lost,
a first apply was incomplete, or something did not come up.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parent))
from agent_flows import CHASSIS, bulk_body
from tether.lab.netns import add_namespace, add_veth, delete_namespace, in_namespace, ip, run
from tether.lab.ovs_daemons import OvsInstance, dies_with_us
from tether.openflow.pipeline import cookie_of
from vtep_push import tether_serve

NETWORKS = 344
"""With ``ping``'s flows and the fixed ones, about 10,000 flows on the bridge."""
RESTARTS = 10
BRIDGE = "br-int"
PREFIX = "tb-rs-"
TUNNEL_IP = "192.0.2.10"
VMS = {"a": ("02:20:00:00:00:01", "10.200.0.11"), "b": ("02:20:00:00:00:02", "10.200.0.12")}
FLOOR_OFFSET = 1000
"""The floor's flows carry the generation of the agent to come + this: no agent's."""
PING = ("--stream", "-c", "0", "-i", "0.02", "-W", "1")
"""Every 20 ms until SIGTERM (after the restarts); a reply not back within 1 s is lost."""
TIMEOUT = 120.0
_STATS = re.compile(r"\b(duration|n_packets|n_bytes|idle_age|hard_age)=[^,\s]+,?\s*")
_COOKIE = re.compile(r"\bcookie=(0x[0-9a-f]+),?\s*")


class RestartError(Exception):
    """The benchmark found tether wrong (not merely slow)."""


@dataclass
class Lab:
    workdir: Path
    ovs: OvsInstance
    url: str
    tag: int
    expected: frozenset[str] = frozenset()
    """The bridge's flows as dumped, without cookie and counters."""
    generation: int = 0
    """The live generation (recorded on the bridge)."""
    agent: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def target(self) -> str:
        return self.ovs.bridge_target(BRIDGE)

    def vm(self, name: str) -> str:
        return f"{PREFIX}{name}{self.tag}"

    def start_agent(self) -> subprocess.Popen[bytes]:
        """A ``tether agent`` process for ``hv0`` (dies with us; logs to ``agentN.log``)."""
        self.starts += 1
        argv = [
            sys.executable, "-m", "tether.cli.main", "agent", "--chassis", "hv0",
            "--tunnel-ip", TUNNEL_IP, "--server", self.url, "--ovsdb",
            f"unix:{self.ovs.db_socket}", "--datapath", "netdev", "--log-level", "warning",
        ]  # fmt: skip
        with open(self.workdir / f"agent{self.starts}.log", "wb") as log:
            self.agent = subprocess.Popen(
                dies_with_us(argv), stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        return self.agent

    def kill_agent(self) -> None:
        """SIGKILL the running agent, by PID, and reap it."""
        if self.agent is not None:
            if self.agent.poll() is None:
                self.agent.kill()
            self.agent.wait()
            self.agent = None

    def agent_log(self) -> str:
        path = self.workdir / f"agent{self.starts}.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""


# -- set-up --------------------------------------------------------------------------------


async def set_up(stack: contextlib.AsyncExitStack, workdir: Path, networks: int) -> Lab:
    tag = os.getpid() % 100_000
    namespace = f"{PREFIX}hv{tag}"
    await add_namespace(namespace)
    stack.push_async_callback(delete_namespace, namespace)
    ovs = OvsInstance(workdir / "hv0", namespace)
    await ovs.start()
    stack.push_async_callback(ovs.stop)
    url = await stack.enter_async_context(tether_serve(workdir))
    lab = Lab(workdir, ovs, url, tag)
    stack.callback(lab.kill_agent)
    async with httpx.AsyncClient(base_url=url, timeout=600) as http:
        await _create_model(http, networks)
    await start_generation(lab)  # creates br-int
    await _plug(stack, lab, networks)
    await _settled(lab, networks + len(VMS))
    lab.kill_agent()
    # the expected flows: what an agent starting on this model and these VIFs settles on
    await start_generation(lab)
    lab.expected = frozenset(await _settled(lab, networks + len(VMS)))
    lab.kill_agent()
    return lab


async def _create_model(http: httpx.AsyncClient, networks: int) -> None:
    for c in range(CHASSIS):
        body = {"name": f"hv{c}", "tunnel_ip": f"192.0.2.{10 + c}"}
        (await http.post("/v1/chassis", json=body)).raise_for_status()
    items = orjson.loads(bulk_body(networks))["items"]
    items.append(
        {
            "kind": "network",
            "spec": {"name": "ping", "vni": 30_000, "subnets": [{"cidr": "10.200.0.0/24"}]},
        }
    )
    for name, (mac, address) in VMS.items():
        spec = {"network": "ping", "name": f"vm-{name}", "mac": mac, "ips": [address]}
        items.append({"kind": "port", "spec": {**spec, "chassis": "hv0"}})
    reply = await http.post(
        "/v1/bulk",
        content=orjson.dumps({"items": items}),
        headers={"content-type": "application/json"},
    )
    reply.raise_for_status()


async def _plug(stack: contextlib.AsyncExitStack, lab: Lab, networks: int) -> None:
    """One internal port per network (as in :mod:`agent_flows`) and the two VMs."""
    vifs: list[str] = []
    for n in range(networks):
        vifs += ["--", "add-port", BRIDGE, f"v{n}", "--", "set", "Interface", f"v{n}"]
        vifs += ["type=internal", f"external_ids:iface-id=n{n}p0"]
    await lab.ovs.vsctl(*vifs)
    for name, (mac, address) in VMS.items():
        vm, link = lab.vm(name), f"rs{name}{lab.tag}"
        await add_namespace(vm)
        stack.push_async_callback(delete_namespace, vm)
        await add_veth(link, "eth0", peer_netns=vm, netns=lab.ovs.namespace)
        await ip("link", "set", link, "up", netns=lab.ovs.namespace)
        await lab.ovs.vsctl(
            "add-port", BRIDGE, link, "--", "set", "Interface", link,
            f"external_ids:iface-id=vm-{name}", f"external_ids:attached-mac={mac}",
        )  # fmt: skip
        await ip("link", "set", "eth0", "address", mac, netns=vm)
        await ip("addr", "add", f"{address}/24", "dev", "eth0", netns=vm)
        await ip("link", "set", "eth0", "up", netns=vm)


async def _settled(lab: Lab, local_ports: int) -> dict[str, int | None]:
    """The bridge's flows once every local port has its flows and nothing changed for 1 s."""
    last: dict[str, int | None] = {}
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        dump = await _dump(lab)
        local = sum(1 for flow in dump if re.match(r"priority=100,in_port=\d+ ", flow))
        if local >= local_ports and dump == last:
            return dump
        last = dump
        await asyncio.sleep(1.0)
    raise RestartError(f"the agent's flows did not settle in {TIMEOUT:.0f} s:\n{lab.agent_log()}")


# -- the bridge ----------------------------------------------------------------------------


async def _dump(lab: Lab) -> dict[str, int | None]:
    """The bridge's flows (without cookie and counters) and the generation of each."""
    text = await lab.ovs.ofctl("-O", "OpenFlow13", "--no-stats", "dump-flows", lab.target)
    flows: dict[str, int | None] = {}
    for line in text.splitlines():
        if "actions=" not in line:
            continue
        found = _COOKIE.search(line)
        cookie = int(found[1], 16) if found else 0
        flow = _COOKIE.sub("", _STATS.sub("", line)).strip()
        if flow in flows:
            raise RestartError(f"two flows dump as {flow!r}")
        flows[flow] = (cookie >> 32) & 0xFFFF if cookie >> 48 == 0x7E7E else None
    return flows


async def _problem(lab: Lab, generation: int) -> str | None:
    """What keeps the bridge from holding exactly the expected flows of ``generation``."""
    dump = await _dump(lab)
    missing = len(lab.expected - dump.keys())
    extra = len(dump.keys() - lab.expected)
    other = sum(1 for g in dump.values() if g != generation)
    if missing or extra or other:
        return (
            f"{missing} flows missing, {extra} unexpected, {other} not of generation {generation}"
        )
    return None


async def _await_generation(lab: Lab, agent: subprocess.Popen[bytes], generation: int) -> None:
    """Until the bridge records ``generation`` (the agent's first apply is done)."""
    wait = asyncio.ensure_future(
        run(
            [
                "ovs-vsctl", f"--db=unix:{lab.ovs.db_socket}", f"--timeout={TIMEOUT:.0f}",
                "wait-until", "Bridge", BRIDGE, f"external_ids:tether-generation={generation}",
            ],
            timeout=TIMEOUT + 5,
        )
    )  # fmt: skip
    try:
        while not wait.done():
            if agent.poll() is not None:
                raise RestartError(f"the agent exited ({agent.returncode}):\n{lab.agent_log()}")
            await asyncio.wait({wait}, timeout=0.01)
        wait.result()
    finally:
        wait.cancel()


# -- the measurements ----------------------------------------------------------------------


async def time_floor(lab: Lab) -> float:
    """``replace-flows`` of the expected flows, with a cookie no agent uses, over the old ones."""
    generation = lab.generation + 1 + FLOOR_OFFSET
    path = lab.workdir / "floor.flows"
    cookie = cookie_of(generation)
    path.write_text("".join(f"cookie={cookie:#x}, {flow}\n" for flow in lab.expected))
    started = time.perf_counter()
    await lab.ovs.ofctl("-O", "OpenFlow13", "--bundle", "replace-flows", lab.target, str(path))
    took = time.perf_counter() - started
    if (problem := await _problem(lab, generation)) is not None:
        raise RestartError(f"floor: {problem}")
    return took


async def start_generation(lab: Lab) -> float:
    """Start an agent (the last one is dead); seconds until it recorded its generation."""
    generation = lab.generation % 0xFFFF + 1
    started = time.perf_counter()
    agent = lab.start_agent()
    await _await_generation(lab, agent, generation)
    lab.generation = generation
    return time.perf_counter() - started


async def restart(lab: Lab) -> tuple[float, bool]:
    """Start an agent over the dead one's flows; seconds until its flows are all in and no
    others remain, and whether its first apply did it. Leaves it running."""
    started = time.perf_counter()
    took = await start_generation(lab)
    complete = (problem := await _problem(lab, lab.generation)) is None
    deadline = time.monotonic() + TIMEOUT
    while problem is not None:
        if time.monotonic() > deadline:
            raise RestartError(f"after {TIMEOUT:.0f} s, {problem}:\n{lab.agent_log()}")
        await asyncio.sleep(0.05)
        problem = await _problem(lab, lab.generation)
        took = time.perf_counter() - started
    return took, complete


class Pinger:
    """``tether.lab.ping --stream`` from VM a to VM b: a ping every 20 ms, on schedule whether
    or not replies come, until SIGTERM; then its summary."""

    def __init__(self, lab: Lab) -> None:
        self.argv = in_namespace(
            lab.vm("a"), [sys.executable, "-m", "tether.lab.ping", *PING, VMS["b"][1]]
        )
        self.received = 0
        self.summary = ""
        self.process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *dies_with_us(self.argv), stdout=asyncio.subprocess.PIPE, start_new_session=True
        )
        self._reader = asyncio.ensure_future(self._read())

    async def _read(self) -> None:
        assert self.process is not None and self.process.stdout is not None
        async for line in self.process.stdout:
            if line.startswith(b"reply "):
                self.received += 1
            else:
                self.summary += line.decode(errors="replace")

    async def stop(self) -> tuple[int, int]:
        """SIGTERM it, by PID (it waits ``-W`` for the last replies); pings sent and lost."""
        if self.process is not None:
            if self.process.returncode is None:
                self.process.terminate()
            await self.process.wait()
        if self._reader is not None:
            await self._reader
        found = re.search(r"(\d+) packets transmitted, (\d+) received", self.summary)
        if found is None:
            raise RestartError(f"ping printed no summary: {self.summary!r}")
        return int(found[1]), int(found[1]) - int(found[2])


async def count_lost(lab: Lab, restarts: int) -> tuple[int, int, int]:
    """Pings sent and lost while the agent is killed and restarted; incomplete first applies."""
    await restart(lab)
    pinger = Pinger(lab)
    await pinger.start()
    incomplete = 0
    try:
        deadline = time.monotonic() + 10
        while pinger.received < 5:  # VM a reaches VM b
            if time.monotonic() > deadline:
                raise RestartError(f"VM a does not reach VM b:\n{lab.agent_log()}")
            await asyncio.sleep(0.02)
        for _ in range(restarts):
            lab.kill_agent()
            _took, complete = await restart(lab)
            incomplete += not complete
        await asyncio.sleep(0.5)
    finally:
        sent, lost = await pinger.stop()
    return sent, lost, incomplete


# -- the report ----------------------------------------------------------------------------


@dataclass
class Figures:
    tether: list[float] = field(default_factory=list)
    floor: list[float] = field(default_factory=list)
    incomplete: int = 0
    """Restarts whose first apply did not leave exactly the expected flows."""
    startup: float = 0.0
    """Seconds the agent's interpreter needs to start and import tether."""
    flows: int = 0
    sent: int = 0
    lost: int = 0


async def measure(workdir: Path, networks: int, runs: int, restarts: int) -> Figures:
    figures = Figures()
    async with contextlib.AsyncExitStack() as stack:
        lab = await set_up(stack, workdir, networks)
        figures.flows = len(lab.expected)
        figures.startup = _startup()
        await restart(lab)  # from here on, a killed agent's flows are on the bridge
        lab.kill_agent()
        for _ in range(runs):
            figures.floor.append(await time_floor(lab))
            took, complete = await restart(lab)
            lab.kill_agent()
            figures.tether.append(took)
            figures.incomplete += not complete
        figures.sent, figures.lost, incomplete = await count_lost(lab, restarts)
        figures.incomplete += incomplete
    return figures


def _startup() -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", "import tether.cli.main, tether.agent"], check=True)
    return time.perf_counter() - started


async def measure_until_sigterm(workdir: Path, networks: int, runs: int, restarts: int) -> Figures:
    """:func:`measure`, cancelled (so its clean-up runs) by SIGTERM."""
    task = asyncio.current_task()
    assert task is not None
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
    return await measure(workdir, networks, runs, restarts)


def report(figures: Figures, networks: int, restarts: int) -> bool:
    t, f = statistics.median(figures.tether), statistics.median(figures.floor)
    runs = " ".join(f"{a:.2f}/{b:.2f}" for a, b in zip(figures.tether, figures.floor, strict=True))
    print(f"  tether   {t:6.2f} s   agent process start -> its flows only   (runs {runs})")
    print(f"           {figures.startup:6.2f} s   of it: interpreter start-up and imports")
    print(f"  floor    {f:6.2f} s   ovs-ofctl --bundle replace-flows, same flows")
    print(f"  ratio    {t / f:6.2f} x   flows: {figures.flows} ({networks} networks + ping)")
    print(f"  lost     {figures.lost:6d}     of {figures.sent} pings, {restarts} SIGKILL restarts")
    ok = figures.lost == 0 and figures.incomplete == 0
    if figures.incomplete:
        print(f"  FAILED   {figures.incomplete} first applies left the bridge incomplete")
    print(f"  target   0 lost, every first apply complete   {'met' if ok else 'MISSED'}")
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--smoke", action="store_true", help="10 networks, 1 run, 2 restarts")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--networks", type=int, default=NETWORKS)
    parser.add_argument("--restarts", type=int, default=RESTARTS)
    args = parser.parse_args()
    networks, runs, restarts = (
        (10, 1, 2) if args.smoke else (args.networks, args.runs, args.restarts)
    )
    print(f"agent restart: {networks} networks x 10 ports + 2 VMs; median of {runs}")
    workdir = Path(tempfile.mkdtemp(prefix="tether-restart-"))
    try:
        figures = asyncio.run(measure_until_sigterm(workdir, networks, runs, restarts))
    except RestartError as exc:
        print(f"  FAILED   {exc}", file=sys.stderr)
        return 1
    except asyncio.CancelledError:  # SIGTERM; everything it started is stopped
        print("  stopped by SIGTERM", file=sys.stderr)
        return 1
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0 if report(figures, networks, restarts) else 1


if __name__ == "__main__":
    raise SystemExit(main())
