"""The hypervisor pipeline: its tables, by name, and what each one does. Pure.

Every packet a VM sends, and every packet a tunnel brings in, walks these tables in order
(``goto_table`` only moves forward). The pipeline is proactive: every flow is installed from
the model before traffic needs it, nothing but DHCP ever reaches the agent, and an unknown
destination is flooded within its network — never punted.

============== ================================================================================
table          what it does
============== ================================================================================
INGRESS        Classifies by input port. A VM's port: the network's key goes into
               ``metadata``, the port's key into ``reg6``; then PORT_SECURITY. The tunnel
               port: the VNI (``tun_id``) picks the network, ``reg7`` = 1 marks "from a
               tunnel"; then L2_LOOKUP (remote traffic was checked where it entered).
               Anything else is dropped.
PORT_SECURITY  A VM may only send from its own MAC, and IPv4 / ARP only from its own
               addresses (DHCP from 0.0.0.0 too). Everything else is dropped.
ARP_RESPONDER  An ARP request for an address the network knows (a port's IP, a router
               interface) is answered right here, on the sending hypervisor; other ARP
               goes on.
DHCP           DHCP requests (UDP to port 67) go to the agent, which answers them.
L3             A packet to a router interface MAC for a known host of another network
               attached to that router is routed here, on the source hypervisor: TTL
               decremented, source MAC = the router's MAC in the destination network,
               destination MAC = the host's, ``metadata`` = the destination network; then
               L2_LOOKUP of that network.
L2_LOOKUP      Destination MAC of the network: a local port (output) or a MAC behind
               another VTEP (``tun_id`` = VNI, ``tun_dst`` = that VTEP's tunnel IP, out of
               the tunnel port). Broadcast, multicast and unknown MACs go to FLOOD.
FLOOD          The network's local ports, and — unless the packet came from a tunnel
               (split horizon) — one copy to every other VTEP carrying the network.
============== ================================================================================
"""

from __future__ import annotations

from enum import IntEnum

__all__ = ["COOKIE", "Table", "cookie_of", "generation_of"]


class Table(IntEnum):
    INGRESS = 0
    PORT_SECURITY = 10
    ARP_RESPONDER = 20
    DHCP = 30
    L3 = 40
    L2_LOOKUP = 50
    FLOOD = 60


COOKIE = 0x7E7E_0000_0000_0000
"""Marks tether's flows: the top 16 bits of the 64-bit cookie. The next 16 bits are left to
the agent's generation (the restart issue); the rest is free."""
COOKIE_MASK = 0xFFFF_0000_0000_0000
GENERATION_SHIFT = 32
GENERATION_MASK = 0xFFFF_FFFF_0000_0000
"""Tether's mark and the agent's generation: a cookie of one generation of tether flows."""


def cookie_of(generation: int) -> int:
    """The cookie of tether's flows installed by an agent of ``generation`` (1..65535)."""
    if not 0 <= generation <= 0xFFFF:
        raise ValueError(f"generation {generation} is not 0..65535")
    return COOKIE | generation << GENERATION_SHIFT


def generation_of(cookie: int) -> int | None:
    """The generation of a tether cookie; None for a cookie that is not tether's."""
    if cookie & COOKIE_MASK != COOKIE:
        return None
    return (cookie >> GENERATION_SHIFT) & 0xFFFF


# registers
NETWORK = "metadata"
"""The network key of the packet's current network."""
PORT_REG = "reg6"
FROM_TUNNEL_REG = "reg7"

ETH_ARP = 0x0806
ETH_IP = 0x0800
UDP = 17
BROADCAST_BIT = "01:00:00:00:00:00/01:00:00:00:00:00"
