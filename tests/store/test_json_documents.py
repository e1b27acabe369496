"""The JSON text the stores keep (store/json_documents.py): what it writes and what it reads, against
what the standard library wrote before it; and every backend keeping the same documents."""

from __future__ import annotations

import json
import math
import types
from typing import Any

import pytest

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store import Store
from oidc_combinedreg.store.base import AuditEvent, UserState
from oidc_combinedreg.store.json_documents import dumps, loads

#: what the stores wrote before json_documents: the standard library, compact, keys sorted
_BEFORE = json.JSONEncoder(separators=(",", ":"), sort_keys=True)

DOCUMENTS: list[dict[str, Any]] = [
    {},
    {"amr": ["pwd", "otp", "mfa"], "conts": {}, "csrf": "MH4hz7v_Aspe", "at": 1796585677.57234},
    {"z": 1, "a": {"y": [1, 2.5, None, True, False], "b": ""}, "M": -(2**63), "n": 2**64 - 1},
    {"quote": 'a "b" \\ c', "controls": "\x00\x01\n\t\x1f", "html": "</script>"},
]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_ascii_documents_are_written_as_the_standard_library_wrote_them(
    document: dict[str, Any],
) -> None:
    assert dumps(document) == _BEFORE.encode(document)
    assert loads(dumps(document)) == document


def test_text_outside_ascii_is_written_as_utf8_and_read_back() -> None:
    document = {"label": "Schlüssel 🔑", "日本": "ok"}
    text = dumps(document)
    assert "Schlüssel 🔑" in text and "\\u" not in text
    assert loads(text) == document
    assert loads(text.encode()) == document


def test_what_the_standard_library_wrote_before_reads_the_same() -> None:
    document = {"label": "Schlüssel 🔑", "lone": "x\udc80y", "n": 5, "f": 0.1}
    assert loads(_BEFORE.encode(document)) == document  # escapes, a lone surrogate's too
    assert math.isnan(loads('{"f":NaN}')["f"])  # what allow_nan let the standard library write


def test_a_lone_surrogate_is_kept() -> None:
    document = {"name": "x\udc80y", "ok": "é"}
    assert loads(dumps(document)) == document


def test_keys_that_are_not_strings_become_strings_as_the_standard_library_makes_them() -> None:
    assert (
        dumps({1: "a", 2: {3: 4}}) == _BEFORE.encode({1: "a", 2: {3: 4}}) == '{"1":"a","2":{"3":4}}'
    )
    # mixed kinds of keys: the standard library could not sort them (a TypeError); now written
    document: dict[Any, Any] = {7: "a", True: "b", None: "c", 2.5: "d"}
    assert loads(dumps(document)) == {"7": "a", "true": "b", "null": "c", "2.5": "d"}


def test_a_mapping_that_is_not_a_dict_is_written() -> None:
    assert loads(dumps(types.MappingProxyType({"b": 1, "a": [2]}))) == {"a": [2], "b": 1}


@pytest.mark.parametrize("number", [2**64, -(2**63) - 1, 10**30])
def test_an_integer_past_64_bits_is_refused(number: int) -> None:
    with pytest.raises(ValueError, match="64 bits"):
        dumps({"deep": [{"n": number}]})
    with pytest.raises(ValueError, match="64 bits"):  # the fallback's path (a lone surrogate)
        dumps({"s": "\udc80", "n": number})


def test_a_value_json_cannot_write_is_a_type_error_as_before() -> None:
    with pytest.raises(TypeError):
        dumps({"o": object()})


@pytest.mark.parametrize("text", ["[1, 2]", '"s"', "3", "null", "{bad", ""])
def test_reading_anything_but_an_object_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        loads(text)


# -- every backend -----------------------------------------------------------------------------

_DOCUMENT = {"label": "Schlüssel 🔑", "lone": "x\udc80y", "n": 2**64 - 1, "z": [0.1, None]}


def test_every_store_keeps_the_same_document(store: Store, clock: FrozenClock) -> None:
    store.save_session("s" * 43, _DOCUMENT, user_id="alice", ttl=60)
    assert store.load_session("s" * 43) == _DOCUMENT
    store.put_challenge("c1", _DOCUMENT, ttl=60)
    assert store.take_challenge("c1") == _DOCUMENT
    store.put_user_state(UserState(user_id="alice", extra=_DOCUMENT))
    assert store.get_user_state("alice").extra == _DOCUMENT
    store.append_audit(
        AuditEvent(at=clock.now(), event="x", user_id="alice", outcome="success", detail=_DOCUMENT)
    )
    assert [event.detail for event in store.list_audit(user_id="alice")] == [_DOCUMENT]


def test_every_store_refuses_an_integer_past_64_bits_and_keeps_nothing(store: Store) -> None:
    with pytest.raises(ValueError, match="64 bits"):
        store.save_session("t" * 43, {"n": 2**64}, user_id="alice", ttl=60)
    assert store.load_session("t" * 43) is None


def test_a_float_that_is_not_a_number_is_written_as_null() -> None:
    assert loads(dumps({"n": math.nan, "i": math.inf, "m": -math.inf})) == {
        "n": None,
        "i": None,
        "m": None,
    }
