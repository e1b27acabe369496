"""Store contract: ``transaction()`` groups calls where the backend can, and never loses them."""

from __future__ import annotations

import pytest
from store_helpers import T0, event, method

from oidc_combinedreg.store import Store


def test_calls_in_a_block_see_their_own_writes_and_stay(store: Store) -> None:
    record = method(counter=0)
    store.add_method(record, limit=5)
    with store.transaction():
        assert store.counters(incr=[("fail:user:alice:consecutive", None)]) == [1]
        assert store.get_count("fail:user:alice:consecutive") == 1
        assert store.advance_counter(
            "alice", record.id, 7, T0, events=[event("mfa.succeeded")],
            reset=["fail:user:alice:consecutive"],
        )  # fmt: skip
        assert store.get_count("fail:user:alice:consecutive") == 0
    got = store.get_method("alice", record.id)
    assert got is not None and got.counter == 7
    assert [e.event for e in store.list_audit()] == ["mfa.succeeded"]


def test_a_block_that_raises_keeps_what_its_calls_wrote(store: Store) -> None:
    with pytest.raises(LookupError), store.transaction():
        store.counters(incr=[("fail:user:alice:consecutive", None)])
        store.append_audit(event("mfa.failed"))
        raise LookupError("a refused code: the attempt must stay counted")
    assert store.get_count("fail:user:alice:consecutive") == 1
    assert [e.event for e in store.list_audit()] == ["mfa.failed"]


def test_nested_blocks_join_the_outer_one(store: Store) -> None:
    with store.transaction():
        store.incr("a", ttl=None)
        with store.transaction():
            store.incr("a", ttl=None)
        assert store.get_count("a") == 2
    assert store.get_count("a") == 2
