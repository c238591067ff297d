"""The hypervisor agent's Prometheus metrics (``tether agent --metrics-listen HOST:PORT``).

What an operator watches on a hypervisor: the flows installed and the generation they carry,
syncs, flows the audit had to repair, Open vSwitch restarts the agent recovered from and how
long each left the bridge without tether's flows, whether the OpenFlow session is up, VIFs
seen and VIFs no port claims. Values are read from the agent's state when scraped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from tether.agent.runner import HypervisorAgent

__all__ = ["AgentCollector", "MetricsServer", "parse_listen"]


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` -> (host, port); ValueError naming the option otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"metrics-listen: {text!r} is not HOST:PORT")
    return host.strip("[]"), int(port)


class AgentCollector(Collector):
    def __init__(self, agent: HypervisorAgent) -> None:
        self.agent = agent

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        agent, state = self.agent, self.agent.state
        installed = agent.applier.installed
        yield GaugeMetricFamily(
            "tether_agent_flows",
            "Flows tether installed on the integration bridge",
            value=len(installed) if installed is not None else 0,
        )
        yield GaugeMetricFamily(
            "tether_agent_generation",
            "The generation in this agent's cookies",
            value=agent.generation,
        )
        yield CounterMetricFamily(
            "tether_agent_syncs", "Syncs that left the bridge equal to the model", value=state.syncs
        )
        yield CounterMetricFamily(
            "tether_agent_flow_repairs",
            "Flows the audit found missing, changed or unwanted, and repaired",
            value=state.repairs,
        )
        yield CounterMetricFamily(
            "tether_agent_ovs_restarts",
            "Open vSwitch restarts (tether's flows gone) the agent recovered from",
            value=state.ovs_restarts,
        )
        yield GaugeMetricFamily(
            "tether_agent_ovs_gap_seconds",
            "Last Open vSwitch restart: from losing the switch to tether's flows back",
            value=state.ovs_gap_seconds,
        )
        yield GaugeMetricFamily(
            "tether_agent_ovs_recovery_seconds",
            "Last Open vSwitch restart: from the switch back to tether's flows back",
            value=state.ovs_recovery_seconds,
        )
        yield GaugeMetricFamily(
            "tether_agent_openflow_connected",
            "1 while the agent's OpenFlow session with its bridge is up",
            value=1 if agent.channel.connected.is_set() else 0,
        )
        yield CounterMetricFamily(
            "tether_agent_model_streams",
            "Model watch streams from the controller that caught up (each resume counts)",
            value=agent.mirror.sessions,
        )
        yield GaugeMetricFamily(
            "tether_agent_model_revision",
            "The newest store revision of the model this agent follows",
            value=agent.mirror.followed_revision,
        )
        yield GaugeMetricFamily("tether_agent_vifs", "VIFs on the bridge", value=len(state.vifs))
        yield GaugeMetricFamily(
            "tether_agent_unknown_vifs", "VIFs whose iface-id no port has", value=agent.unknown_vifs
        )
        yield GaugeMetricFamily(
            "tether_agent_sync_failing",
            "1 while the last sync failed",
            value=int(bool(state.last_error)),
        )
        yield CounterMetricFamily(
            "tether_agent_reports",
            "Reports of what it applied (port and chassis status) the controller accepted",
            value=agent.reporter.sent,
        )
        yield CounterMetricFamily(
            "tether_agent_heartbeats",
            "Heartbeats (presence refreshes) the controller accepted",
            value=agent.heartbeat.beats,
        )
        yield GaugeMetricFamily(
            "tether_agent_broken_vifs",
            "VIFs Open vSwitch cannot attach (Interface.error)",
            value=len(state.broken_vifs),
        )


class MetricsServer:
    """``/metrics`` for one agent, served from a thread (prometheus_client's own server)."""

    def __init__(self, agent: HypervisorAgent, listen: str) -> None:
        self.host, self.port = parse_listen(listen)
        self.registry = CollectorRegistry()
        self.registry.register(AgentCollector(agent))
        self._server: WSGIServer | None = None

    def start(self) -> None:
        server, _thread = start_http_server(self.port, self.host, registry=self.registry)
        self._server = server
        self.port = server.server_address[1]

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
