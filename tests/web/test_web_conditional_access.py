"""The seed Conditional Access policy through the WSGI stack (issue 7, SECURITY.md cases 1-9)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from webtest import TRIAL_MFA, Browser, code_from, location

PROXY = "10.0.0.1"
UNTRUSTED = "203.0.113.9"
TRUSTED = "192.168.10.20"

SEED: dict[str, Any] = {
    "named_locations": [
        {"name": "office", "ranges": ["192.168.10.0/24", "::1/128"], "trusted": True}
    ],
    "conditional_access": [
        {
            "name": "Combined Security Info Registration on Trusted Networks",
            "state": "on",
            "assignments": {"include_users": ["all"], "exclude_groups": ["break-glass"]},
            "target": {"user_action": "register-security-information"},
            "conditions": {"locations": {"include": ["any"], "exclude": ["all-trusted"]}},
            "grant": {"block": True},
        }
    ],
    "network": {"trusted_proxies": [f"{PROXY}/32"]},
}


@pytest.fixture
def seeded(make_browser: Callable[..., Browser]) -> Callable[..., Browser]:
    def factory(peer: str = PROXY, forwarded: str | None = None, **kw: Any) -> Browser:
        browser = make_browser(**SEED, **kw)
        browser.remote_addr = peer
        if forwarded is not None:
            browser.headers["X-Forwarded-For"] = forwarded
        return browser

    return factory


def _wizard(browser: Browser) -> Any:
    """Password, then follow the middleware's redirects to the page it stops at (as JSON)."""
    browser.login("alice")
    r = browser.get_json("/authorize?client_id=demo&state=s1")
    while r.status_code == 303 and location(r).startswith("/security-info/"):
        r = browser.get_json(location(r))
    return r


def test_registration_from_an_untrusted_address_is_blocked(seeded: Callable[..., Browser]) -> None:
    browser = seeded(forwarded=UNTRUSTED)
    r = _wizard(browser)
    assert r.status_code == 403
    body = r.get_json()
    assert body["page"] == "blocked" and body["reason"] == "registration_location"
    assert len(body["correlation_id"]) == 32
    assert "Trusted Networks" not in r.get_data(as_text=True)  # no detail an attacker could use
    events = browser.reg.store.list_audit(user_id="alice", event_prefix="ca.")
    assert events[0].outcome == "blocked"
    assert events[0].correlation_id == body["correlation_id"]
    assert events[0].detail["blocking"] == [
        "Combined Security Info Registration on Trusted Networks"
    ]
    assert browser.host.codes == {}


def test_registration_from_a_trusted_address_is_allowed(seeded: Callable[..., Browser]) -> None:
    browser = seeded(forwarded=TRUSTED)
    assert _wizard(browser).get_json()["page"] == "totp_intro"


@pytest.mark.parametrize(
    ("peer", "forwarded"),
    [
        pytest.param(
            UNTRUSTED, TRUSTED, id="no proxy, spoofed trusted XFF -> only the peer counts"
        ),
        pytest.param(
            PROXY, f"{TRUSTED}, {UNTRUSTED}", id="client prepends a trusted IP -> right-most"
        ),
        pytest.param(PROXY, "unknown", id="unknown entry -> fail closed"),
        pytest.param(PROXY, f"{TRUSTED}:443", id="address with a port -> fail closed"),
        pytest.param(PROXY, "x" * 10_000, id="10 KB of junk -> fail closed"),
    ],
)
def test_forwarded_header_tricks_do_not_unlock_registration(
    seeded: Callable[..., Browser], peer: str, forwarded: str
) -> None:
    browser = seeded(peer=peer, forwarded=forwarded)
    r = _wizard(browser)
    # Either the registration or (with an unusable header) the whole sign-in is blocked.
    assert r.status_code == 403 and r.get_json()["page"] == "blocked"
    assert browser.host.codes == {}
    assert browser.reg.store.list_methods("alice") == []


def test_ca_is_checked_again_at_commit(seeded: Callable[..., Browser]) -> None:
    browser = seeded(forwarded=TRUSTED)
    browser.login("alice")
    wizard = location(browser.authorize())
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    secret = browser.get_json(wizard).get_json()["secret"]
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    browser.headers["X-Forwarded-For"] = UNTRUSTED  # the same session moves outside
    r = browser.post_json(
        wizard,
        {
            "action": "verify",
            "csrf_token": token,
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
        },
    )
    assert r.status_code == 403
    assert browser.reg.store.list_methods("alice") == []


def test_blocked_from_registering_can_still_sign_in_to_apps(seeded: Callable[..., Browser]) -> None:
    browser = seeded(forwarded=TRUSTED)
    browser.login("alice")
    wizard = location(browser.authorize())
    secret = browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    browser.clock.advance(600)
    browser.headers["X-Forwarded-For"] = UNTRUSTED
    browser.login("alice")
    mfa_url = location(browser.authorize())
    page = browser.get_json(mfa_url).get_json()
    r = browser.post_json(
        mfa_url,
        {
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    r = browser.get(location(r))
    assert code_from(r) is not None  # the app is not targeted by the user-action policy
    manage = browser.get_json("/security-info/")
    assert manage.status_code == 403 and manage.get_json()["page"] == "blocked"


def test_break_glass_group_is_excluded(seeded: Callable[..., Browser]) -> None:
    browser = seeded(forwarded=UNTRUSTED, groups={"alice": frozenset({"break-glass"})})
    browser.login("alice")
    assert code_from(browser.authorize()) is not None  # excluded from enforcement too
    assert browser.get_json("/security-info/").get_json()["page"] == "manage"


def test_a_grant_requiring_mfa_for_registration_stops_a_password_only_first_registration(
    make_browser: Callable[..., Browser],
) -> None:
    policy = {
        "name": "Registration needs MFA outside the office",
        "state": "on",
        "assignments": {"include_users": ["all"]},
        "target": {"user_action": "register-security-information"},
        "conditions": {"locations": {"include": ["any"], "exclude": ["all-trusted"]}},
        "grant": {"require": ["mfa"]},
    }
    browser = make_browser(**{**SEED, "conditional_access": [policy]})
    browser.remote_addr = PROXY
    browser.headers["X-Forwarded-For"] = UNTRUSTED
    r = _wizard(browser)
    assert r.status_code == 403
    assert r.get_json()["reason"] == "registration_requires_mfa"
    assert browser.reg.store.list_methods("alice") == []


def test_entering_the_wizard_evaluates_the_applications_policies_once(
    make_browser: Callable[..., Browser],
) -> None:
    """A report-only policy on every application is audited at each evaluation: the wizard's
    first request decides and plans from one evaluation, so the audit log has one entry for it
    (it had two), after the one of /authorize."""
    browser = make_browser(conditional_access=[TRIAL_MFA])
    browser.login("alice")
    wizard = location(browser.authorize())
    assert wizard.startswith("/security-info/wizard")
    store = browser.reg.store
    before = len(store.list_audit(event_prefix="ca.evaluated"))

    assert browser.get_json(wizard).get_json()["page"] == "totp_intro"

    evaluated = store.list_audit(event_prefix="ca.evaluated")
    assert len(evaluated) == before + 1
    assert evaluated[0].detail["target"] == "application demo"
