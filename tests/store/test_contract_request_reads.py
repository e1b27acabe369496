"""Store contract: inside a request of the middleware (store/request_reads.py) every backend
answers as outside it. Redis on one server, PostgreSQL and SQLite answer a user's methods and
state from the session's load (decisions 216, 218, 219): the answers must be the store's, a change made in the
request must be seen by the rest of it, a change made elsewhere by the next request, and a
reported method must stay out of use."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from store_helpers import T0, event, method

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store import Store, UserState, request_reads


@pytest.fixture
def alice(store: Store) -> tuple[str, str, str]:
    first, second, reported = method(), method(kind=MethodKind.EMAIL), method(label="gone")
    for record in (first, second, reported):
        store.add_method(record, limit=5)
    store.put_user_state(UserState(user_id="alice", default_method_id=second.id, skips_used=2))
    store.report_methods(UserState(user_id="alice", default_method_id=second.id, skips_used=2),
                         [reported.id], at=T0 + 1, events=[event("account.flagged")])  # fmt: skip
    store.save_session("s.alice", {"uid": "alice"}, user_id="alice", ttl=600)
    return first.id, second.id, reported.id


@pytest.fixture
def scope() -> Iterator[None]:
    with request_reads.scope():
        yield


def _answers(store: Store, ids: tuple[str, ...]) -> tuple[object, ...]:
    return (
        store.list_methods("alice"),
        store.get_user_state("alice"),
        *(store.get_method("alice", i) for i in ids),
        store.get_method("alice", "no-such-method"),
        store.get_method("bob", ids[0]),
        store.list_methods("bob"),
    )


def test_a_request_reads_what_the_store_holds(store: Store, alice: tuple[str, str, str]) -> None:
    outside = _answers(store, alice)
    with request_reads.scope():
        assert store.load_session("s.alice") == {"uid": "alice"}
        inside = _answers(store, alice)
    assert inside == outside
    assert inside[4] is None, "a reported method is out of use"


def test_a_change_in_the_request_is_seen_by_the_rest_of_it(
    store: Store, alice: tuple[str, str, str], scope: None
) -> None:
    first, _, _ = alice
    store.load_session("s.alice")
    added = method()
    store.add_method(added, limit=5)
    assert added.id in [m.id for m in store.list_methods("alice")]
    store.load_session("s.alice")
    assert store.advance_counter("alice", first, 7, T0 + 2) is True
    found = store.get_method("alice", first)
    assert found is not None and found.counter == 7
    store.load_session("s.alice")
    store.put_user_state(UserState(user_id="alice", skips_used=3))
    assert store.get_user_state("alice").skips_used == 3


def test_a_change_elsewhere_is_seen_by_the_next_request(
    store: Store, alice: tuple[str, str, str]
) -> None:
    first, _, _ = alice
    with request_reads.scope():
        store.load_session("s.alice")
    assert store.delete_method("alice", first) is True
    with request_reads.scope():
        store.load_session("s.alice")
        assert store.get_method("alice", first) is None
        assert first not in [m.id for m in store.list_methods("alice")]


def test_a_change_in_the_same_transaction_as_the_load_is_seen(
    store: Store, alice: tuple[str, str, str], scope: None
) -> None:
    """A session loaded inside a store transaction, then a change in that transaction: on
    SQLite only the transaction's first statement passes the writer lock (where what a load
    kept is dropped), so a load there keeps nothing (decision 219)."""
    with store.transaction():
        assert store.load_session("s.alice") == {"uid": "alice"}
        added = method()
        store.add_method(added, limit=5)
        assert added.id in [m.id for m in store.list_methods("alice")]
        store.put_user_state(UserState(user_id="alice", skips_used=4))
        assert store.get_user_state("alice").skips_used == 4
