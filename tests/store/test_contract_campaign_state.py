"""Store contract: the registration campaign's state (policy/campaign.py) in ``UserState.extra``
round-trips on every backend (SQLite, Redis, Redis Cluster, memory, PostgreSQL), next to other
flags, with the audit event written with it."""

from __future__ import annotations

from dataclasses import replace

from store_helpers import event

from oidc_combinedreg.policy.campaign import CAMPAIGN_KEY, CampaignState, campaign_state
from oidc_combinedreg.store import Store, UserState


def test_campaign_state_round_trips_beside_other_flags(store: Store) -> None:
    camp = CampaignState(
        asked=3, first_asked=1_800_000_000.0, last_asked=1_800_100_000.5, snoozes=2,
        until=1_800_359_200.5, added=None,
    )  # fmt: skip
    state = UserState(
        user_id="alice", skips_used=1, extra={"not_me": {"at": 3}, CAMPAIGN_KEY: camp.to_extra()}
    )
    store.put_user_state(state, events=[event("campaign.snoozed")])
    got = store.get_user_state("alice")
    assert campaign_state(got.extra) == camp
    assert got.extra["not_me"] == {"at": 3} and got.skips_used == 1
    added = replace(camp, added=1_800_400_000.0)
    store.put_user_state(replace(got, extra={**got.extra, CAMPAIGN_KEY: added.to_extra()}))
    assert campaign_state(store.get_user_state("alice").extra) == added
    assert [e.event for e in store.list_audit()] == ["campaign.snoozed"]
