"""The ``[admin]`` table: absent is valid (API off); errors name their path."""

from __future__ import annotations

from typing import Any

import pytest

from oidc_combinedreg import parse_config
from oidc_combinedreg.admin.auth import hash_token
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.exceptions import ConfigError

GOOD_HASH = hash_token("crg_admin_example")


def parse(admin: dict[str, Any] | None) -> Any:
    data: dict[str, Any] = {
        "general": {"environment": "development"},
        "web": {"secure_cookies": False},
        "secrets": {"encryption_keys": [generate_key()]},
    }
    if admin is not None:
        data["admin"] = admin
    return parse_config(data).admin


def test_an_absent_table_is_valid_and_turns_the_api_off() -> None:
    admin = parse(None)
    assert admin.tokens == () and admin.group is None and not admin.api_enabled
    assert admin.tap.default_lifetime_minutes == 60 and admin.tap.max_lifetime_minutes == 43200


def test_tokens_group_and_tap_limits() -> None:
    admin = parse(
        {
            "group": "admins",
            "tokens": [{"name": "ops", "hash": GOOD_HASH, "user": "ada"}],
            "tap": {"default_lifetime_minutes": 30, "max_lifetime_minutes": 1440},
        }
    )
    assert (
        admin.api_enabled
        and admin.tokens[0].user == "ada"
        and admin.tap.max_lifetime_minutes == 1440
    )


@pytest.mark.parametrize(
    ("admin", "message"),
    [
        pytest.param(
            {"tokens": [{"name": "ops", "hash": "plain-token"}]},
            "admin.tokens[0].hash: expected 'sha256:'",
            id="a token in clear instead of its hash",
        ),
        pytest.param(
            {"group": "admins", "tokens": [{"name": "ops", "hash": GOOD_HASH}]},
            "admin.tokens[0].user: required when admin.group is set",
            id="a group but a token without its admin user",
        ),
        pytest.param(
            {"tokens": [{"name": "a", "hash": GOOD_HASH}, {"name": "a", "hash": GOOD_HASH}]},
            "admin.tokens: token name 'a' is used more than once",
            id="two tokens with one name",
        ),
        pytest.param(
            {"tap": {"max_lifetime_minutes": 5}},
            "admin.tap.max_lifetime_minutes: expected an integer from 10 to 43200",
            id="a pass shorter than ten minutes",
        ),
        pytest.param(
            {"tap": {"default_lifetime_minutes": 600, "max_lifetime_minutes": 60}},
            "admin.tap.default_lifetime_minutes: expected at most max_lifetime_minutes",
            id="a default above the maximum",
        ),
        pytest.param({"tokenz": []}, "admin.tokenz: unknown key", id="an unknown key"),
    ],
)
def test_errors_name_their_path(admin: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as exc:
        parse(admin)
    assert any(str(p).startswith(message) for p in exc.value.problems), exc.value.problems


def test_the_pass_pages_failure_limits_are_read_and_checked() -> None:
    tap = parse(
        {"tap": {"failures_per_window": 5, "account_failures_per_window": 40, "window": 600}}
    ).tap
    assert (tap.failures_per_window, tap.account_failures_per_window, tap.window) == (5, 40, 600)
    assert tap.ip_failures_per_window == 50
    for bad, path in (
        ({"window": 5}, "admin.tap.window: expected an integer from 10 to 3600"),
        ({"failures_per_window": 0}, "admin.tap.failures_per_window: expected an integer"),
        (
            {"failures_per_window": 20, "account_failures_per_window": 10},
            "admin.tap.account_failures_per_window: expected at least failures_per_window",
        ),
    ):
        with pytest.raises(ConfigError) as caught:
            parse({"tap": bad})
        assert path in str(caught.value), caught.value
