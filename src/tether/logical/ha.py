"""HA groups: the slave claims a VRRP or MLAG pair holds for each other's MACs. Pure.

A gateway may belong to an HA group (``tether gateway add … --ha-group NAME``). A hardware
VTEP can only say "this MAC is behind me" (``Ucast_Macs_Local`` has no role), so its own
claims are masters; the group supplies the rest (US 9,942,058: each switch reports the MACs
it is master *or slave* for). For one (network, MAC):

* a member's own claim stands as it is (master, or slave if it reported one itself);
* a member without an own master claim holds a **slave** claim while another member of its
  group claims the MAC as master, with that master's IP — it is the standby;
* when no member of the group claims master any more, the derived slave claims are
  withdrawn: the MAC has left the pair.

So after a failover both members' claims are in the inventory; the newest master wins, a
late delete from the old master turns its claim back into a slave claim (the other member
still claims master) and changes nothing.

:func:`effective_claims` turns one MAC's own claims into the claims the reconciler weighs;
:func:`changed_rows` says which of those differ from what it was given before. A derived
slave claim carries the revision of the master claim it stands by; a withdrawal the
revision of the event that caused it (never older than the row it withdraws). The caller
feeds these rows as already ordered (``Reconciler.apply_rows(..., ordered=True)``): the
model and the claims arrive through two watches that do not run in step, so a derived row
must not be refused for a revision older than the row it replaces.
"""

from __future__ import annotations

from collections.abc import Mapping

from tether.logical.claims import MASTER, SLAVE, WITHDRAWN, ClaimRow, DeviceName, Revision

__all__ = ["Groups", "changed_rows", "effective_claims", "members_of"]

Groups = Mapping[DeviceName, str]
"""Device -> its HA group's name (devices in no group are absent)."""


def members_of(groups: Groups) -> dict[str, tuple[DeviceName, ...]]:
    """Group name -> its members, sorted by name."""
    members: dict[str, list[DeviceName]] = {}
    for device, group in groups.items():
        members.setdefault(group, []).append(device)
    return {group: tuple(sorted(devices)) for group, devices in members.items()}


def effective_claims(
    own: Mapping[DeviceName, ClaimRow],
    groups: Groups,
    members: Mapping[str, tuple[DeviceName, ...]],
) -> dict[DeviceName, ClaimRow]:
    """One MAC's claims as the reconciler should see them: ``own`` (device -> its latest own
    claim, withdrawn ones included) plus the slave claims HA groups derive from masters.
    A device with neither gets no row (the caller withdraws what it gave before)."""
    effective = {device: row for device, row in own.items() if row[4] != WITHDRAWN}
    newest_master: dict[str, ClaimRow] = {}
    for device, row in effective.items():
        group = groups.get(device)
        if group is not None and row[4] == MASTER:
            best = newest_master.get(group)
            if best is None or row[3] > best[3]:
                newest_master[group] = row
    for group, master in newest_master.items():
        for member in members.get(group, ()):
            if member not in effective:
                effective[member] = (master[0], master[1], member, master[3], SLAVE, master[5])
    return effective


def changed_rows(
    before: Mapping[DeviceName, ClaimRow],
    after: Mapping[DeviceName, ClaimRow],
    revision: Revision,
) -> list[ClaimRow]:
    """The rows to hand the reconciler so that its view of one MAC goes from ``before`` to
    ``after``: new or changed claims (role or IP changed, or an own master claim recorded
    again at a new revision; a derived slave claim standing by a newer master is not news)
    and, for devices that lost theirs, a withdrawal at ``revision`` (or at the withdrawn
    row's, if that is newer)."""
    rows = []
    for device, row in after.items():
        old = before.get(device)
        if old is None or old[4] != row[4] or old[5] != row[5] or _restated(old, row):
            rows.append(row)
    for device, old in before.items():
        if device not in after:
            withdrawn_at = Revision(max(revision, old[3]))
            rows.append((old[0], old[1], device, withdrawn_at, WITHDRAWN, old[5]))
    return rows


def _restated(old: ClaimRow, new: ClaimRow) -> bool:
    """A device's own master claim recorded again (a new revision) is news: "the latest to
    report the MAC is the active one". A derived slave claim is not."""
    return new[4] == MASTER and new[3] != old[3]
