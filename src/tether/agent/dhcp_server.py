"""The DHCP server on the agent's channel: the pipeline punts a VM's request, the agent
answers it out of the same port with the port's own lease (:mod:`tether.openflow.dhcp`),
within each port's rate limit."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from tether.agent.channel import OpenFlowChannel
from tether.openflow import codec, dhcp

__all__ = ["DhcpServer"]

log = logging.getLogger(__name__)


class DhcpServer:
    """``leases(ofport)`` gives the lease of the port behind an OpenFlow port (or None)."""

    def __init__(
        self,
        channel: OpenFlowChannel,
        leases: Callable[[int], dhcp.DhcpLease | None],
        *,
        limit: dhcp.RateLimit | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.channel = channel
        self.leases = leases
        self.limit = limit or dhcp.RateLimit()
        self._clock = clock
        self.answered = 0
        self.refused = 0

    def packet_in(self, packet: codec.PacketIn) -> None:
        request = dhcp.parse_request(packet.data)
        lease = self.leases(packet.in_port)
        if request is None or lease is None:
            self.refused += 1
            return
        if not self.limit.allow(str(packet.in_port), self._clock()):
            self.refused += 1
            log.info("DHCP of port %d rate-limited", packet.in_port)
            return
        reply = dhcp.answer(request, lease)
        if reply is not None and self.channel.packet_out(packet.in_port, reply):
            self.answered += 1
