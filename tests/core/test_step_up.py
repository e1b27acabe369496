"""The resource server's step-up helper (RFC 9470; issue 17 item 4): a token's acr/auth_time
against an operation's requirement, and the ``WWW-Authenticate`` challenge, read back with
werkzeug's independent header parser."""

from __future__ import annotations

from typing import Any

import pytest
from werkzeug.datastructures import WWWAuthenticate

from oidc_combinedreg.step_up import Requirement, Shortfall, challenge, check

MFA, PHR, PWD = "urn:combinedreg:acr:mfa", "urn:combinedreg:acr:phr", "urn:combinedreg:acr:pwd"
NOW = 1_700_000_000
NEEDS_MFA = Requirement(acr_values=(MFA, PHR))
RECENT = Requirement(max_age=600)
BOTH = Requirement(acr_values=(MFA, PHR), max_age=600)


@pytest.mark.parametrize(
    ("claims", "requirement", "reason"),
    [
        pytest.param({"acr": MFA, "auth_time": NOW - 10}, NEEDS_MFA, None,
                     id="an mfa token meets an mfa requirement"),
        pytest.param({"acr": PHR}, NEEDS_MFA, None,
                     id="a phishing-resistant token meets a requirement that lists it"),
        pytest.param({"acr": PWD}, NEEDS_MFA, "A different authentication level is required",
                     id="a password token falls short of mfa"),
        pytest.param({}, NEEDS_MFA, "A different authentication level is required",
                     id="a token without acr falls short"),
        pytest.param({"acr": ["urn:combinedreg:acr:mfa"]}, NEEDS_MFA,
                     "A different authentication level is required",
                     id="an acr that is not a string falls short"),
        pytest.param({"auth_time": NOW - 600}, RECENT, None, id="exactly max_age old is recent"),
        pytest.param({"auth_time": NOW - 601}, RECENT, "More recent authentication is required",
                     id="older than max_age falls short"),
        pytest.param({}, RECENT, "The time of authentication is unknown",
                     id="a token without auth_time falls short of max_age"),
        pytest.param({"auth_time": "1700000000"}, RECENT, "The time of authentication is unknown",
                     id="an auth_time that is not a number falls short"),
        pytest.param({"auth_time": True}, RECENT, "The time of authentication is unknown",
                     id="a boolean is no auth_time"),
        pytest.param({"auth_time": NOW + 3600}, RECENT, "More recent authentication is required",
                     id="an auth_time an hour in the future falls short"),
        pytest.param({"acr": MFA, "auth_time": NOW - 601}, BOTH,
                     "More recent authentication is required",
                     id="the right level but too old falls short"),
        pytest.param({"acr": PWD}, Requirement(), None, id="no requirement is always met"),
    ],
)  # fmt: skip
def test_checking_a_tokens_authentication(
    claims: dict[str, Any], requirement: Requirement, reason: str | None
) -> None:
    shortfall = check(claims, requirement, now=NOW)
    if reason is None:
        assert shortfall is None
    else:
        assert shortfall == Shortfall(requirement=requirement, description=reason)


def test_the_challenge_carries_error_acr_values_and_max_age() -> None:
    shortfall = check({"acr": PWD, "auth_time": NOW}, BOTH, now=NOW)
    assert shortfall is not None
    header = shortfall.challenge(realm="api")
    assert header == (
        'Bearer realm="api", error="insufficient_user_authentication", '
        'error_description="A different authentication level is required", '
        f'acr_values="{MFA} {PHR}", max_age="600"'
    )
    parsed = WWWAuthenticate.from_header(header)
    assert parsed is not None and parsed.type == "bearer"
    assert parsed.parameters == {
        "realm": "api",
        "error": "insufficient_user_authentication",
        "error_description": "A different authentication level is required",
        "acr_values": f"{MFA} {PHR}",
        "max_age": "600",
    }


def test_the_challenge_names_only_what_is_required() -> None:
    assert challenge(RECENT, "More recent authentication is required") == (
        'Bearer error="insufficient_user_authentication", '
        'error_description="More recent authentication is required", max_age="600"'
    )


@pytest.mark.parametrize("text", ['say "hi"', "back\\slash", "new\nline", "caf\u00e9"])
def test_a_description_a_quoted_string_cannot_hold_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="RFC 6750 3"):
        challenge(NEEDS_MFA, text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param({"acr_values": ("has space",)}, "acr_values: 'has space'", id="a space"),
        pytest.param({"acr_values": ('q"uote',)}, "acr_values", id="a quote"),
        pytest.param({"max_age": -1}, "max_age: expected whole seconds >= 0", id="negative"),
        pytest.param({"max_age": "600"}, "max_age", id="a string"),
        pytest.param({"max_age": True}, "max_age", id="a boolean"),
    ],
)
def test_a_malformed_requirement_is_refused_at_once(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Requirement(**kwargs)
