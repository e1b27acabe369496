"""What an anonymous caller moves by repeating a refused request: one audit event each time.

Every anonymous entry point audits its refusals, and a refused caller can send them without end:
each one a row in the audit log (on Redis the stream is cut at ``audit_maxlen``, so a flood pushes
the real events out) and, for a named account, a row on the owner's Recent activity page (which
reads the newest 2,000 events, so a flood hides a real sign-in). A caller over a limit is audited
once per window and address, then only counted (docs/security.md, decision 188)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from admin_helpers import admin_section, api, fast_taps
from reset_helpers import Reset, ResetEnv, add_email, make_env
from webtest import Browser

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.service.refusal_audit import REFUSAL_WINDOW

STRANGER = "203.0.113.66"
OTHER = "198.51.100.23"
OWNER = "192.0.2.10"


def audited(browser: Browser, event: str, **detail: str) -> int:
    found = browser.reg.store.list_audit(event_prefix=event, limit=10_000)
    return sum(1 for e in found if all(e.detail.get(k) == v for k, v in detail.items()))


def test_a_flood_of_wrong_admin_tokens_is_audited_once_per_address_and_window(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(admin=admin_section())
    browser.remote_addr = STRANGER
    for _ in range(200):
        assert api(browser, "GET", "/audit", token="crg_admin_guess").status_code == 401
    assert audited(browser, "admin.denied") == 1
    (first,) = browser.reg.store.list_audit(event_prefix="admin.denied")
    assert first.ip == STRANGER and first.detail["reason"] == "admin: wrong token"
    assert first.detail["repeats_not_audited_s"] == REFUSAL_WINDOW
    # the admin's own token from the same address: nothing refused, unlock audited as ever
    r = api(browser, "POST", "/users/alice/unlock")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert audited(browser, "admin.unlocked") == 1
    browser.remote_addr = OTHER  # another address is audited on its own
    api(browser, "GET", "/audit", token="crg_admin_guess2")
    assert audited(browser, "admin.denied") == 2
    browser.clock.advance(REFUSAL_WINDOW + 1)
    browser.remote_addr = STRANGER
    api(browser, "GET", "/audit", token="crg_admin_guess")
    assert audited(browser, "admin.denied") == 3


def test_refused_pass_tries_are_audited_once_per_address_and_window(
    make_browser: Callable[..., Browser],
) -> None:
    browser = fast_taps(make_browser(admin=admin_section()))
    alice = browser.reg.directory.get_user("alice")
    tap = browser.reg.admin.tap
    for _ in range(300):
        assert tap.sign_in(alice, "alice", "AAAA-AAAA-AAAA-AAAA", ip=STRANGER) is None
    assert audited(browser, "tap.failed", reason="throttled") == 1
    wrong = audited(browser, "tap.failed", reason="none")
    assert 0 < wrong <= 10  # the tries the throttle let through, each audited as before


def test_refused_app_password_tries_are_audited_once_per_address_and_window(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser()
    for _ in range(300):
        assert not browser.reg.check_app_password("alice", "x" * 16, ip=STRANGER)
    assert audited(browser, "app_password.failed", reason="rate_limited") == 1
    browser.clock.advance(REFUSAL_WINDOW + 1)
    for _ in range(300):
        browser.reg.check_app_password("alice", "x" * 16, ip=STRANGER)
    assert audited(browser, "app_password.failed", reason="rate_limited") == 2


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    e = make_env(tmp_path, clock, monkeypatch)
    add_email(e.reg, "alice")
    return e


def test_refused_reset_tries_are_audited_once_per_address_and_window(env: ResetEnv) -> None:
    stranger_browser = env.new_browser()
    stranger_browser.remote_addr = STRANGER
    stranger = Reset(stranger_browser)
    stranger.start("alice")
    stranger.choose("email")
    statuses = [stranger.verify(code="000000").status_code for _ in range(100)]
    assert statuses[:10] == [400] * 10 and set(statuses[10:]) == {429}
    events = env.reg.store.list_audit(event_prefix="reset.failed", limit=1000)
    reasons = [e.detail["reason"] for e in events]
    assert reasons.count("throttled") == 1 and reasons.count("wrong_code") == 10
    owner_browser = env.new_browser()
    owner_browser.remote_addr = OWNER
    owner = Reset(owner_browser)  # the owner's own reset is untouched
    owner.start("alice")
    owner.choose("email")
    r = owner.verify(code=env.sender.last_code("alice.private@example.test"))
    assert r.status_code == 303, r.get_data(as_text=True)
