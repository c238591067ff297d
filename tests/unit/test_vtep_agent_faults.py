"""The VTEP agent's loop under failures, on an in-memory switch (tests/unit/agent_harness.py):
a refused transaction or a dropped session half way through an update, a mode change, a VNI
change — the switch must end up applying the complete final state, never a partial one, and
tether must not keep any lock the switch needs."""

from __future__ import annotations

import pytest

from tests.unit.agent_harness import cfg, gw, net, scenario
from tether.vtep.state import observe

pytestmark = pytest.mark.anyio

BASE = cfg(net(1, range(1, 5)), net(2, range(1, 5), ports=(("eth2", None),)))
UPDATE = cfg(net(1, range(3, 9)), net(2, range(3, 9), ports=(("eth2", None),)))


@pytest.mark.parametrize("fault", ["refuse", "disconnect"])
@pytest.mark.parametrize("mode", ["lock", "state-consistent", "bind-last"])
async def test_a_failure_mid_update_still_ends_complete_and_unlocked(mode: str, fault: str) -> None:
    _, _, _, _, base_client, _ = await scenario(mode, 6, [BASE])
    after_base = base_client.n
    for at in range(after_base + 1, after_base + 6):  # the failure lands on each transaction
        agent, _, locks, switch, _, _ = await scenario(mode, 6, [BASE, UPDATE], faults={at: fault})
        assert switch.violations == [], f"{mode}: the switch applied a partial state"
        assert {name: len(t.remote_macs) for name, t in switch.programmed.items()} == {
            "net-1": 6,
            "net-2": 6,
        }, f"{mode}, {fault} at transaction {at}: the switch did not get the final state"
        assert locks.held("ctl") == set(), "tether keeps a lock the switch needs"
        assert agent.status.state == "realized"


async def test_leaving_the_state_consistent_mode_leaves_no_switch_inconsistent() -> None:
    base, update = cfg(net(1, range(1, 5))), cfg(net(1, range(3, 9)))
    _, _, _, _, client, _ = await scenario("state-consistent", 3, [base])
    k = client.n

    def to_lock(agent: object) -> None:
        agent.set_gateway(gw("lock", 3))  # type: ignore[attr-defined]

    _, db, _, switch, _, _ = await scenario(
        "state-consistent", 3, [base, update, to_lock], faults={k + 3: "refuse"}, retry=0.2
    )
    assert observe(db.tables, "tor1").switches["net-1"].state_consistent is not False
    assert len(switch.programmed["net-1"].remote_macs) == 6


@pytest.mark.parametrize("mode", ["lock", "state-consistent", "bind-last"])
async def test_a_vni_change_never_shows_a_mix(mode: str) -> None:
    old = cfg(net(1, range(1, 6), ports=(("eth1", None), ("eth2", 7))))
    new = cfg(net(1, range(3, 9), vni=6001))
    _, _, _, switch, _, _ = await scenario(mode, 3, [old, new])
    assert switch.violations == []
    assert switch.programmed["net-1"].vni == 6001
