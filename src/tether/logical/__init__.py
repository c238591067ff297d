"""The logical controller role: the MAC inventory's pure core (issue 4, item 2).

Claims in (:mod:`~tether.logical.claims`), one reconciled location per (network, MAC) out
(:mod:`~tether.logical.reconcile`), only changes travel (:mod:`~tether.logical.location`),
every decision explained (:mod:`~tether.logical.explain`). The rules live in
:mod:`~tether.logical.election` (who owns a MAC) and :mod:`~tether.logical.damping` (when a
flapping MAC is held).

Pure code: no I/O, no clock, no threads. The physical controller role (collection) and
distribution are shells around it: they read claims from the store, pass ``now`` and send
the returned changes.
"""

from tether.logical.claims import (
    Batch,
    Batcher,
    BatchPolicy,
    Claim,
    ClaimKind,
    ClaimRow,
    DeviceName,
    Mac,
    NetworkId,
    Revision,
    Role,
    normalize_mac,
    split_by_network,
)
from tether.logical.damping import Damping
from tether.logical.election import Rule
from tether.logical.explain import ClaimView, Explanation, Standing
from tether.logical.location import ChangeRow, Changes, Location, LocationChange
from tether.logical.reconcile import Counters, Reconciler

__all__ = [
    "Batch",
    "BatchPolicy",
    "Batcher",
    "ChangeRow",
    "Changes",
    "Claim",
    "ClaimKind",
    "ClaimRow",
    "ClaimView",
    "Counters",
    "Damping",
    "DeviceName",
    "Explanation",
    "Location",
    "LocationChange",
    "Mac",
    "NetworkId",
    "Reconciler",
    "Revision",
    "Role",
    "Rule",
    "Standing",
    "normalize_mac",
    "split_by_network",
]
