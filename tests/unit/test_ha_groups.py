"""HA groups turn one member's master claim into slave claims of the others (pure)."""

from __future__ import annotations

from tether.logical import DeviceName, Mac, NetworkId, Reconciler, Revision
from tether.logical.claims import MASTER, SLAVE, WITHDRAWN, ClaimRow
from tether.logical.ha import changed_rows, effective_claims, members_of

NET, MAC = NetworkId("n1"), Mac("02:00:00:00:00:01")
GROUPS = {DeviceName("tor1"): "pair", DeviceName("tor2"): "pair"}
MEMBERS = members_of(GROUPS)


def row(device: str, revision: int, state: int = MASTER, ip: str | None = None) -> ClaimRow:
    return (NET, MAC, DeviceName(device), Revision(revision), state, ip)


def test_a_members_master_claim_makes_the_others_standbys() -> None:
    own = {DeviceName("tor1"): row("tor1", 5, ip="10.0.0.1")}
    effective = effective_claims(own, GROUPS, MEMBERS)
    assert effective[DeviceName("tor2")] == row("tor2", 5, SLAVE, "10.0.0.1")
    assert set(effective) == {"tor1", "tor2"}, "devices outside the group get nothing"


def test_the_standby_follows_the_newest_master_and_goes_with_the_last() -> None:
    both = {DeviceName("tor1"): row("tor1", 5), DeviceName("tor2"): row("tor2", 7)}
    assert effective_claims(both, GROUPS, MEMBERS) == both, "own claims stand as they are"
    late_delete = {
        DeviceName("tor1"): row("tor1", 9, WITHDRAWN),
        DeviceName("tor2"): row("tor2", 7),
    }
    after = effective_claims(late_delete, GROUPS, MEMBERS)
    assert after[DeviceName("tor1")][4] == SLAVE, "tor1 stands by for tor2 again"
    gone = {
        DeviceName("tor1"): row("tor1", 9, WITHDRAWN),
        DeviceName("tor2"): row("tor2", 11, WITHDRAWN),
    }
    assert effective_claims(gone, GROUPS, MEMBERS) == {}


def test_changes_resend_only_news_and_withdraw_what_went() -> None:
    before = {DeviceName("tor1"): row("tor1", 5), DeviceName("tor2"): row("tor2", 5, SLAVE)}
    same_slave_newer_master = {
        DeviceName("tor1"): row("tor1", 6),
        DeviceName("tor2"): row("tor2", 6, SLAVE),
    }
    assert changed_rows(before, same_slave_newer_master, Revision(6)) == [row("tor1", 6)]
    rows = changed_rows(before, {}, Revision(4))
    assert sorted(r[2] for r in rows) == ["tor1", "tor2"]
    assert all(r[4] == WITHDRAWN and r[3] >= 5 for r in rows), "never older than what it ends"


def test_an_ordered_reconciler_takes_rows_whatever_their_revision() -> None:
    rec = Reconciler(damping=None)
    rec.apply_rows([row("tor1", 10), row("tor2", 8)], 0.0)
    assert rec.owner(NET, MAC).device == "tor1"  # type: ignore[union-attr]
    rec.apply_rows([row("tor1", 7, WITHDRAWN)], 0.0)  # older: refused when not ordered
    assert rec.owner(NET, MAC).device == "tor1"  # type: ignore[union-attr]
    rec.apply_rows([row("tor1", 7, WITHDRAWN)], 0.0, ordered=True)
    assert rec.owner(NET, MAC).device == "tor2"  # type: ignore[union-attr]
