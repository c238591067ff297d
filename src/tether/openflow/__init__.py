"""The hypervisor's OpenFlow pipeline as data (issue 5, pure part).

:mod:`~tether.openflow.pipeline` names and documents the tables;
:mod:`~tether.openflow.compiler` turns what a hypervisor must know of the model into its
complete flow set; :mod:`~tether.openflow.diff` says what to change on the switch, in an
order that opens no gap; :mod:`~tether.openflow.simulator` answers "where does this packet
go" for tests. The agent that applies the flows (over OpenFlow, with bundles) is the shell
still to come.
"""

from tether.openflow.compiler import (
    AgentView,
    LocalPort,
    NetworkView,
    RouterInterface,
    compile_flows,
)
from tether.openflow.diff import FlowChanges, diff_flows
from tether.openflow.flows import Flow, to_ofctl
from tether.openflow.pipeline import COOKIE, Table
from tether.openflow.simulator import Delivery, Outcome, simulate

__all__ = [
    "COOKIE",
    "AgentView",
    "Delivery",
    "Flow",
    "FlowChanges",
    "LocalPort",
    "NetworkView",
    "Outcome",
    "RouterInterface",
    "Table",
    "compile_flows",
    "diff_flows",
    "simulate",
    "to_ofctl",
]
