"""Keeps a bridge's flows equal to a compiled set, one atomic bundle per change.

The first :meth:`FlowApplier.apply` replaces every flow carrying tether's cookie by the new
set in one ``ovs-ofctl --bundle`` transaction (a ``delete`` by cookie and mask, then the
adds): a packet sees either the old flows or the new ones, never an empty table, and foreign
flows stay. Later calls send only the difference (:func:`tether.openflow.diff_flows`):
adds, ``modify_strict`` and ``delete_strict`` lines, again as one bundle.

:meth:`FlowApplier.audit` compares what the switch really holds with the desired set
(``ovs-ofctl diff-flows``): a tether flow missing, changed, or on the switch without being
wanted (someone deleted, edited or injected it behind tether's back) is repaired by the
atomic replace of the first apply. Foreign flows (other cookies) are never counted or
touched.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tether.agent.bridge import OvsCommands
from tether.openflow import Flow, diff_flows, to_ofctl
from tether.openflow.pipeline import COOKIE, COOKIE_MASK, GENERATION_MASK, generation_of

__all__ = ["AuditResult", "FlowApplier"]


@dataclass(frozen=True, slots=True)
class AuditResult:
    """What an audit found: desired flows the switch lacks (or holds changed: OVS lists a
    changed flow both ways) and tether flows it holds unwanted."""

    missing: int = 0
    unwanted: int = 0

    @property
    def repaired(self) -> int:
        return self.missing + self.unwanted


class FlowApplier:
    def __init__(
        self, ovs: OvsCommands, target: str, workdir: Path | None = None, *, timeout: float = 30
    ) -> None:
        self.ovs = ovs
        self.target = target
        self.timeout = timeout
        self._workdir = workdir
        self.installed: frozenset[Flow] | None = None
        """What the last successful apply left on the bridge (None: not yet known)."""
        self.bundles = 0

    async def apply(self, desired: frozenset[Flow]) -> int:
        """Make the bridge hold ``desired``; returns how many flow changes were sent."""
        if self.installed is None:
            lines = [f"delete cookie={COOKIE:#x}/{COOKIE_MASK:#x}"]
            lines += [f"add {to_ofctl(flow)}" for flow in sorted(desired, key=_order)]
            changes = len(desired)
        else:
            diff = diff_flows(desired, self.installed)
            if not diff:
                return 0
            lines = []
            for step, flow in diff.ordered():
                text = to_ofctl(flow)
                if step == "add":
                    lines.append(f"add {text}")
                elif step == "modify":
                    lines.append(f"modify_strict {text}")
                else:
                    plain = to_ofctl(flow, with_cookie=False)  # ofctl: no cookie in a delete
                    lines.append(f"delete_strict {plain.split(',actions=')[0]}")
            changes = len(lines)
        await self._bundle(lines)
        self.installed = desired
        self.bundles += 1
        return changes

    async def audit(self, desired: frozenset[Flow]) -> AuditResult:
        """Repair the switch if it differs from ``desired``; what was found."""
        path = self._write([to_ofctl(flow) for flow in sorted(desired, key=_order)])
        try:
            process = await asyncio.create_subprocess_exec(
                "ovs-ofctl", "-O", "OpenFlow13", "diff-flows", self.target, str(path),
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            )  # fmt: skip
            try:
                out, err = await asyncio.wait_for(process.communicate(), self.timeout)
            except TimeoutError:
                process.kill()
                await process.wait()
                raise OSError(f"ovs-ofctl diff-flows: no answer in {self.timeout:.0f} s") from None
        finally:
            path.unlink(missing_ok=True)
        if process.returncode not in (0, 2):  # 2: differences found
            raise OSError(f"ovs-ofctl diff-flows: {err.decode(errors='replace').strip()}")
        ours = f"cookie={COOKIE:#x}"[:13]  # the tether part of the cookie
        lines = out.decode().splitlines()
        found = AuditResult(
            missing=sum(1 for line in lines if line.startswith("+")),
            unwanted=sum(1 for line in lines if line.startswith("-") and ours in line),
        )
        if found.repaired:
            self.installed = None  # replace everything of tether's, atomically
            await self.apply(desired)
        return found

    def _write(self, lines: list[str]) -> Path:
        with tempfile.NamedTemporaryFile(
            "w", suffix=".flows", dir=self._workdir, delete=False
        ) as handle:
            handle.write("".join(line + "\n" for line in lines))
            return Path(handle.name)

    async def cleanup(self, live: int) -> int:
        """Delete tether's flows of every generation but ``live`` (residue of an agent that
        died, or of older ones); foreign flows stay. Returns how many were deleted."""
        dump = await self.ovs.ofctl("-O", "OpenFlow13", "dump-flows", self.target)
        stale: dict[int, int] = {}
        for line in dump.splitlines():
            found = re.search(r"cookie=(0x[0-9a-f]+)", line)
            if found is None:
                continue
            cookie = int(found[1], 16)
            generation = generation_of(cookie)
            if generation is not None and generation != live:
                key = cookie & GENERATION_MASK
                stale[key] = stale.get(key, 0) + 1
        if stale:
            await self._bundle(
                [f"delete cookie={cookie:#x}/{GENERATION_MASK:#x}" for cookie in sorted(stale)]
            )
        return sum(stale.values())

    async def _bundle(self, lines: list[str]) -> None:
        path = self._write(lines)
        try:
            await self.ovs.ofctl(
                "-O", "OpenFlow13", "--bundle", "add-flows", self.target, str(path)
            )
        finally:
            path.unlink(missing_ok=True)


def _order(flow: Flow) -> tuple[int, int, tuple[tuple[str, str | int], ...]]:
    return (flow.table, flow.priority, flow.match)
