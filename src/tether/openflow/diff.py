"""Desired flows against installed flows -> the changes, in an order that opens no gap. Pure.

Flows are identified as OpenFlow identifies them: by table, priority and match. A flow in
both sets with other actions or another cookie is *modified* in place (``mod-flows
--strict``), never deleted and added again. Adds and modifications come first and deletions
last, after one barrier, so a packet never meets a table where the old flow is gone and the
new one is not there yet; the agent sends all of it as one bundle where the switch supports
it. Only flows carrying tether's cookie are ever deleted: foreign flows are left alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from tether.openflow.flows import Flow
from tether.openflow.pipeline import COOKIE, COOKIE_MASK

__all__ = ["FlowChanges", "diff_flows"]


@dataclass(frozen=True, slots=True)
class FlowChanges:
    add: tuple[Flow, ...] = ()
    modify: tuple[Flow, ...] = ()
    delete: tuple[Flow, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.add or self.modify or self.delete)

    def ordered(self) -> list[tuple[str, Flow]]:
        """("add" | "modify" | "delete", flow) in the order to apply them."""
        steps: list[tuple[str, Flow]] = [("add", f) for f in self.add]
        steps += [("modify", f) for f in self.modify]
        return steps + [("delete", f) for f in self.delete]


def diff_flows(desired: Iterable[Flow], installed: Iterable[Flow]) -> FlowChanges:
    want = {flow.key: flow for flow in desired}
    have = {flow.key: flow for flow in installed}
    add = sorted((f for k, f in want.items() if k not in have), key=_order)
    modify = sorted(
        (
            f
            for k, f in want.items()
            if k in have and (have[k].actions != f.actions or have[k].cookie != f.cookie)
        ),
        key=_order,
    )
    delete = sorted(
        (
            f
            for k, f in have.items()
            if k not in want and f.cookie & COOKIE_MASK == COOKIE & COOKIE_MASK
        ),
        key=_order,
    )
    return FlowChanges(tuple(add), tuple(modify), tuple(delete))


def _order(flow: Flow) -> tuple[int, int, tuple[tuple[str, str | int], ...]]:
    # later tables first when adding: a packet reaches a new table only once it is filled
    return (-flow.table, -flow.priority, flow.match)
