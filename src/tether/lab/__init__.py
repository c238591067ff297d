"""The emulated fabric (``tether lab``): hardware VTEPs built from a real ovsdb-server.

An emulated hardware VTEP (:class:`EmulatedSwitch`) is an ``ovsdb-server`` with the
``hardware_vtep`` schema (plus tether's ``state_consistent`` column) and tether's own switch
agent, which plays the switch's side of US 12,388,743 (FIG. 4, 6, 7, 9) and programs an ASIC:
the memory ASIC (tables in a dict) or the ovs ASIC (a real Open vSwitch in the switch's own
network namespace, forwarding real frames between lab hosts over VXLAN).

Modules — pure cores first, then the shells:

* :mod:`.forwarding` (pure): forwarding tables as values, and where a frame goes;
* :mod:`.switch_agent` (pure): what to program and which locks to hold, from the database;
* :mod:`.bootstrap` (pure): the switch's own rows at power-on;
* :mod:`.ovs_pipeline` (pure): forwarding tables → OpenFlow flows and bundle lines;
* :mod:`.mac_learning` (pure): learned-flow events, and the ``Ucast_Macs_Local`` reconciler;
* :mod:`.names` (pure): namespace and link names;
* :mod:`.asic`: the memory ASIC; :mod:`.records`: its history and state files;
* :mod:`.ovsdb_server`: the ovsdb-server process; :mod:`.agent`: the switch agent's loop;
* :mod:`.netns`: iproute2 commands; :mod:`.ovs_daemons`: a private ovsdb-server +
  ovs-vswitchd; :mod:`.underlay`: the shared VXLAN segment; :mod:`.ovs_asic`: the ovs ASIC's
  datapath; :mod:`.local_macs`: its ``Ucast_Macs_Local`` writer; :mod:`.reaper`: its clean-up
  when the lab process is killed;
* :mod:`.hosts`: lab hosts behind front-panel ports, with :mod:`.host_nic` (run inside a
  host: checksums, eBPF VLAN tagging) and :mod:`.ping` (ICMP echo without iputils);
* :mod:`.emulated`: the switch that puts them together. Errors: :mod:`.errors`.
"""

from __future__ import annotations

from tether.lab.asic import MemoryAsic
from tether.lab.emulated import AsicKind, EmulatedSwitch
from tether.lab.errors import AsicNotAvailableError, DaemonError, LabError, NetworkSetupError
from tether.lab.forwarding import ForwardingTable, HistoryEntry, RemoteEntry, Verdict, lookup
from tether.lab.hosts import HostRecord, add_host, delete_host, read_host
from tether.lab.mac_learning import LearnedMac
from tether.lab.names import front_panel_link, switch_namespace
from tether.lab.ovs_asic import OvsAsic
from tether.lab.records import AsicState, read_history, read_state
from tether.lab.switch_agent import Decision, decide
from tether.lab.underlay import DEFAULT_UNDERLAY

__all__ = [
    "DEFAULT_UNDERLAY",
    "AsicKind",
    "AsicNotAvailableError",
    "AsicState",
    "DaemonError",
    "Decision",
    "EmulatedSwitch",
    "ForwardingTable",
    "HistoryEntry",
    "HostRecord",
    "LabError",
    "LearnedMac",
    "MemoryAsic",
    "NetworkSetupError",
    "OvsAsic",
    "RemoteEntry",
    "Verdict",
    "add_host",
    "decide",
    "delete_host",
    "front_panel_link",
    "lookup",
    "read_history",
    "read_host",
    "read_state",
    "switch_namespace",
]
