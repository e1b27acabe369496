"""A method's name (issue 19.6) is its ``label``, renamed with ``update_method`` on every backend:
any name the web layer accepts (methods/names.py: up to 64 printable characters, any script)
reads back exactly, with nothing else of the method changed, and the rename's audit event is
written with it."""

from __future__ import annotations

from dataclasses import replace

import pytest
from store_helpers import T0, event, method

from oidc_combinedreg.methods.names import NAME_MAX, clean_name
from oidc_combinedreg.store import Store

NAMES = [
    "Büro-Handy 📱",
    "هاتف العمل",
    'Work "phone" \\ 1',
    "仕事用" * (NAME_MAX // 3),
    "x" * NAME_MAX,
]


@pytest.mark.parametrize("name", NAMES)
def test_a_rename_reads_back_exactly_and_changes_nothing_else(store: Store, name: str) -> None:
    assert clean_name(name) == name  # a name the rename page accepts as typed
    record = method(label="", secret=b"s", counter=7, last_used_at=T0 + 3, data={"issuer": "X"})
    store.add_method(record, limit=5)
    renamed = replace(record, label=name)
    assert (
        store.update_method(renamed, events=[event("method.renamed", detail={"kind": "totp"})])
        is True
    )
    assert store.get_method("alice", record.id) == renamed
    assert [m.label for m in store.list_methods("alice")] == [name]
    assert [e.event for e in store.list_audit(user_id="alice")] == ["method.renamed"]
