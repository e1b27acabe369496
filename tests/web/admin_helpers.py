"""Shared by the admin and TAP web tests: tokens, an API caller, a user with an authenticator app."""

from __future__ import annotations

from typing import Any

from webtest import Browser, location
from werkzeug.test import TestResponse

from oidc_combinedreg.admin.auth import hash_token, new_token
from oidc_combinedreg.crypto import fast_hasher_for_tests

API = "/security-info/admin/api"
OPS_TOKEN = new_token()
ALICE_TOKEN = new_token()
BOB_TOKEN = new_token()


def admin_section(*, group: str | None = None) -> dict[str, Any]:
    if group is None:
        return {"tokens": [{"name": "ops", "hash": hash_token(OPS_TOKEN)}]}
    return {
        "group": group,
        "tokens": [
            {"name": "alice-cli", "hash": hash_token(ALICE_TOKEN), "user": "alice"},
            {"name": "bob-cli", "hash": hash_token(BOB_TOKEN), "user": "bob"},
        ],
    }


def fast_taps(browser: Browser) -> Browser:
    """Argon2's cheapest parameters for passes, so the suite stays quick (never in production)."""
    browser.reg.admin.tap.hasher = fast_hasher_for_tests()
    return browser


def api(
    browser: Browser,
    method: str,
    path: str,
    *,
    token: str | None = OPS_TOKEN,
    json: Any = None,
    headers: dict[str, str] | None = None,
) -> TestResponse:
    sent = dict(headers or {})
    if token is not None:
        sent["Authorization"] = f"Bearer {token}"
    kw: dict[str, Any] = {"method": method, "headers": sent}
    if json is not None:
        kw["json"] = json
    return browser.client.open(API + path, **browser._kw(kw))


def sign_in_and_register_totp(browser: Browser, user: str = "alice") -> str:
    """Password, the wizard's authenticator-app step, finish; returns the TOTP secret."""
    browser.login(user)
    wizard = location(browser.authorize())
    assert wizard.startswith("/security-info/wizard"), wizard
    secret = browser.register_totp(wizard)
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": token})
    return secret
