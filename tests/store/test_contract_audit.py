"""Store contract: the audit log, newest first, with filters."""

from __future__ import annotations

import pytest
from store_helpers import T0, event

from oidc_combinedreg.store import AuditEvent, Store


def test_an_event_round_trips_with_every_field(store: Store) -> None:
    full = AuditEvent(
        at=T0,
        event="ca.blocked",
        user_id=None,
        outcome="blocked",
        ip="2001:db8::1",
        correlation_id="req-1",
        detail={"policy": "Block untrusted", "locations": ["a", "b"]},
    )
    store.append_audit(full)
    assert store.list_audit() == [full]


def test_events_are_listed_newest_first_ties_by_last_written(store: Store) -> None:
    store.append_audit(event("a", at=T0 + 1))
    store.append_audit(event("b", at=T0 + 3))
    store.append_audit(event("c", at=T0 + 2))
    store.append_audit(event("d", at=T0 + 3))
    assert [e.event for e in store.list_audit()] == ["d", "b", "c", "a"]


@pytest.fixture
def log(store: Store) -> Store:
    for e in [
        event("method.added", "alice", at=T0),
        event("method.deleted", "alice", at=T0 + 10),
        event("mfa.failed", "alice", at=T0 + 20, outcome="failure"),
        event("method.added", "bob", at=T0 + 30),
        event("ca.blocked", None, at=T0 + 40, outcome="blocked"),
        event("method_x", "bob", at=T0 + 50),
    ]:
        store.append_audit(e)
    return store


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        pytest.param(
            {},
            [
                "method_x",
                "ca.blocked",
                "method.added",
                "mfa.failed",
                "method.deleted",
                "method.added",
            ],
            id="no filter lists everything",
        ),
        pytest.param(
            {"user_id": "alice"}, ["mfa.failed", "method.deleted", "method.added"], id="by user"
        ),
        pytest.param(
            {"event_prefix": "method."},
            ["method.added", "method.deleted", "method.added"],
            id="by event prefix",
        ),
        pytest.param(
            {"event_prefix": "method_"},
            ["method_x"],
            id="a prefix is literal text, not a LIKE pattern",
        ),
        pytest.param(
            {"since": T0 + 10, "until": T0 + 30},
            ["mfa.failed", "method.deleted"],
            id="since is inclusive, until exclusive",
        ),
        pytest.param(
            {"user_id": "alice", "event_prefix": "method", "since": T0 + 1},
            ["method.deleted"],
            id="filters combine",
        ),
        pytest.param({"limit": 2}, ["method_x", "ca.blocked"], id="limit keeps the newest"),
        pytest.param({"limit": 0}, [], id="a zero limit lists nothing"),
        pytest.param({"user_id": "nobody"}, [], id="an unknown user has no events"),
    ],
)
def test_audit_filters(log: Store, filters: dict[str, object], expected: list[str]) -> None:
    assert [e.event for e in log.list_audit(**filters)] == expected  # type: ignore[arg-type]
