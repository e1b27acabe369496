"""SECURITY.md case 58 through the WSGI stack: anonymous password-reset flows cannot use up the
owner's MFA calls, and calls to one number are bounded per hour and audited."""

from __future__ import annotations

from pathlib import Path

import pytest
from reset_helpers import ResetEnv, phone_env, reset_call
from webtest import location

from oidc_combinedreg.clock import FrozenClock

PHONE = "+14255550123"


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    return phone_env(tmp_path, clock, monkeypatch)


def anonymous_reset_call(env: ResetEnv, n: int) -> int:
    """One anonymous reset flow for alice, from its own address, asking for a call."""
    return reset_call(env, f"203.0.113.{n}")


def test_six_anonymous_reset_calls_leave_the_owners_mfa_call(env: ResetEnv) -> None:
    statuses = [anonymous_reset_call(env, n) for n in range(6)]
    assert statuses == [303, 303, 303, 429, 429, 429], "the reset's own budget: 3 an hour"
    assert len(env.sender.calls) == 3
    refused = env.store.list_audit(event_prefix="code.send_refused", limit=100)
    assert len(refused) == 3 and refused[-1].detail["scope"] == "reset-send-destination"
    assert {e.detail["scope"] for e in refused} <= {"reset-send-destination", "reset-send-user"}
    assert all(e.user_id == "alice" and e.detail["purpose"] == "reset" for e in refused)
    # alice signs in: her MFA call goes out (it got 429 for an hour before).
    browser = env.browser
    browser.login("alice")
    mfa_url = location(browser.authorize())
    page = browser.get_json(mfa_url).get_json()
    assert page["method"]["kind"] == "mobile_phone"
    r = browser.post_json(
        mfa_url,
        {
            "action": "start",
            "via": "voice",
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert r.status_code == 200, r.get_data(as_text=True)
    assert len(env.sender.calls) == 4 and env.sender.calls[-1].to == PHONE
    r = browser.post_json(
        mfa_url,
        {
            "action": "verify",
            "code": env.sender.last_code(PHONE),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert r.status_code == 303
