"""Store contract: ``record_use`` sets a method's ``last_used_at`` alone (a use without a counter:
an approved push, a passkey, a reset's email code or questions), with its events and resets."""

from __future__ import annotations

from dataclasses import replace

import pytest
from store_helpers import T0, event, method

from oidc_combinedreg.store import Store
from oidc_combinedreg.store.base import UserState


@pytest.mark.parametrize(
    ("owner", "recorded"),
    [
        pytest.param("alice", True, id="the owner's method records its use and its events"),
        pytest.param("bob", False, id="another user's method id writes nothing"),
    ],
)
def test_record_use_sets_last_used_and_writes_its_events(
    store: Store, owner: str, recorded: bool
) -> None:
    record = method(counter=56_666_666, last_used_at=T0)
    store.add_method(record, limit=5)
    store.incr("push:prompts:alice", ttl=None)
    success = event("mfa.succeeded", user_id=owner, detail={"method_id": record.id})
    used = store.record_use(
        owner, record.id, T0 + 30.25, events=[success], reset=["push:prompts:alice"]
    )
    assert used is recorded
    assert store.list_audit() == ([success] if recorded else [])
    got = store.get_method("alice", record.id)
    assert got is not None
    assert got.last_used_at == (T0 + 30.25 if recorded else T0)
    assert got.counter == 56_666_666  # an offline code's replay guard is untouched
    assert replace(got, last_used_at=None) == replace(record, last_used_at=None)
    assert store.get_count("push:prompts:alice") == (0 if recorded else 1)


def test_record_use_of_a_missing_or_reported_method_writes_nothing(store: Store) -> None:
    record = method()
    store.add_method(record, limit=5)
    store.report_methods(UserState(user_id="alice"), [record.id], at=T0)
    assert store.list_reported_methods("alice") != []
    assert store.record_use("alice", record.id, T0, events=[event("mfa.succeeded")]) is False
    assert store.record_use("alice", "nope", T0, events=[event("mfa.succeeded")]) is False
    assert [e.event for e in store.list_audit()] == []
