"""The hypervisor agent's shell (issue 5, in progress): the integration bridge, the flows
applied as bundles, the OpenFlow channel and the DHCP server on it.

:mod:`~tether.agent.bridge` sets up the bridge and its tunnel port,
:mod:`~tether.agent.flows` keeps the bridge's flows equal to a compiled set,
:mod:`~tether.agent.channel` is the agent's OpenFlow 1.3 connection and
:mod:`~tether.agent.dhcp_server` answers the DHCP requests the pipeline punts. The decisions
are in :mod:`tether.openflow` (pure). :mod:`~tether.agent.mirror` mirrors the controller's
store through its watch API and :mod:`~tether.agent.runner` ties it all together.
"""

from tether.agent.bridge import OvsCommands, ensure_bridge
from tether.agent.channel import OpenFlowChannel
from tether.agent.dhcp_server import DhcpServer
from tether.agent.flows import FlowApplier
from tether.agent.mirror import WatchedStore
from tether.agent.runner import AgentSettings, HypervisorAgent

__all__ = [
    "AgentSettings",
    "DhcpServer",
    "FlowApplier",
    "HypervisorAgent",
    "OpenFlowChannel",
    "OvsCommands",
    "WatchedStore",
    "ensure_bridge",
]
