"""Special-use domains (RFC 6761: .test, .local, .localhost, .invalid ...) in the email method
(issue 19.10): refused with a message that says why, and .test accepted in development mode, where
every demo user's address is @example.test."""

from __future__ import annotations

import pytest

from oidc_combinedreg.exceptions import InvalidInput
from oidc_combinedreg.methods.email import SPECIAL_USE_MESSAGE, parse_email


@pytest.mark.parametrize(
    "typed", ["alice@example.test", "alice@printer.local", "a@localhost", "a@x.invalid"]
)
def test_special_use_domains_are_refused_saying_why(typed: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_email(typed)
    assert (caught.value.field, caught.value.message) == ("email", SPECIAL_USE_MESSAGE)
    assert "reserved" in SPECIAL_USE_MESSAGE


def test_development_mode_accepts_test_domains_only() -> None:
    assert parse_email("Alice@Example.TEST", allow_test_domains=True) == "Alice@example.test"
    with pytest.raises(InvalidInput) as caught:
        parse_email("alice@printer.local", allow_test_domains=True)
    assert caught.value.message == SPECIAL_USE_MESSAGE


def test_a_syntax_error_keeps_its_own_message() -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_email("alice@@example.test", allow_test_domains=True)
    assert caught.value.message == "Enter a valid email address, like name@example.com."
