"""Parsing of codes typed by users: strict, so odd input is refused instead of half-understood."""

from __future__ import annotations

import re

from ..exceptions import InvalidInput

__all__ = ["parse_code"]

# [0-9], not \d: \d also matches full-width and other Unicode digits ("１２３４５６").
_DIGITS = {n: re.compile(f"[0-9]{{{n}}}") for n in range(4, 11)}


def parse_code(raw: object, digits: int = 6, *, field: str = "code") -> str:
    """The code if ``raw`` is exactly ``digits`` ASCII digits, else :class:`InvalidInput`."""
    if not isinstance(raw, str) or len(raw) > 64:
        raise InvalidInput(field, "Enter the {digits}-digit code.")
    if not _DIGITS[digits].fullmatch(raw):
        raise InvalidInput(field, "Enter the {digits}-digit code.")
    return raw
