"""The JSON text every store keeps its documents in (session data, a method's data, audit details,
challenges, a user's state): one encoder and one decoder for SQLite, PostgreSQL, Redis and the
in-memory store, so that a document reads back the same from each.

Written by orjson: compact, keys sorted, UTF-8 as is. The standard library's encoder (a
``JSONEncoder`` built once) cost about 3 us for a session's few keys and its Python wrapper an MFA
verify's tenth of a millisecond through the example IdP with the decoder's; orjson is one C call
(decision 221). Where orjson refuses a value the standard library writes, the standard library
writes it as before: a lone surrogate in a string (escaped), and a mapping that is not a ``dict``.
An integer past 64 bits is refused (``ValueError``): orjson would read it back as a float, and no
store keeps one (counters, times and signature counts all fit). A float that is not a number
(``nan``, ``inf``) is written as ``null``, as JSON has no such number (the standard library wrote
``NaN``, which no other JSON reader takes); no store keeps one either.

Read by orjson, and by the standard library what orjson refuses: text written before this module
(or by the standard library's fallback) with a lone surrogate's escape or ``NaN``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import orjson

__all__ = ["dumps", "loads"]

#: keys sorted as ``sort_keys=True`` sorts them (UTF-8 order is code point order); a key that is
#: not a string becomes one, as the standard library makes it
_OPTIONS = orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS
_FALLBACK = json.JSONEncoder(separators=(",", ":"), sort_keys=True)
#: the integers orjson writes (and reads back as integers)
_SMALLEST, _LARGEST = -(2**63), 2**64 - 1


def dumps(value: Mapping[str, Any]) -> str:
    """Compact JSON text with sorted keys."""
    try:
        return orjson.dumps(value, option=_OPTIONS).decode()
    except TypeError:
        pass  # orjson.JSONEncodeError: what the standard library may still write
    _check_integers(value)
    return _FALLBACK.encode(dict(value))


def loads(text: str | bytes) -> dict[str, Any]:
    """The JSON object ``text`` holds; ``ValueError`` if it is not one."""
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = json.loads(text)  # raises json.JSONDecodeError (a ValueError) if not JSON either
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _check_integers(value: Any) -> None:
    """Refuse an integer that would not read back as one (see the module's docstring)."""
    if isinstance(value, int) and not _SMALLEST <= value <= _LARGEST:
        raise ValueError(f"a store keeps integers of up to 64 bits, not {value.bit_length()} bits")
    if isinstance(value, Mapping):
        for item in value.values():
            _check_integers(item)
    elif isinstance(value, list | tuple):
        for item in value:
            _check_integers(item)
