"""SECURITY.md case 57 through the WSGI stack: no anonymous request locks a known user out, and
admins see and clear an account's lock (API, dashboard, report), audited."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import test_web_tap
from admin_helpers import admin_section, api, fast_taps, sign_in_and_register_totp
from test_web_tap import issue, tap_login
from webtest import Browser, code_from, location
from werkzeug.test import TestResponse

from oidc_combinedreg.exceptions import RateLimited, VerificationFailed
from oidc_combinedreg.service.reset import reset_day_key

#: test_web_tap's fixture (the host with a TAP form), shared under a name of its own
tap_browsers = test_web_tap.make_tap_browser

ATTACKER = "203.0.113.{}"


def wrong_passes(
    browser: Browser, times: int, user: str = "alice", *, per_address: int = 10
) -> list[int]:
    """``times`` wrong passes for ``user`` from anonymous requests, ``per_address`` from each."""
    statuses = []
    saved = browser.remote_addr
    for n in range(times):
        browser.remote_addr = ATTACKER.format(n // per_address + 1)
        statuses.append(tap_login(browser, "AAAA-AAAA-AAAA-AAAA", user=user))
    browser.remote_addr = saved
    return statuses


def follow(browser: Browser, response: TestResponse) -> TestResponse:
    """Follow redirects up to the relying party (at most four hops)."""
    for _ in range(4):
        if code_from(response) is not None or response.status_code not in (302, 303):
            break
        response = browser.get(location(response))
    return response


def test_120_wrong_passes_do_not_lock_the_owner_out_of_mfa_or_a_new_pass(
    tap_browsers: Callable[..., Browser],
) -> None:
    browser = tap_browsers()
    mfa_url, form = browser.at_mfa_with_totp("alice")
    attacker = tap_browsers()
    assert set(wrong_passes(attacker, 120)) == {401}
    # The owner's own correct code still passes (it got 429 before: the durable lock was full).
    r = browser.post(mfa_url, data=form)
    assert r.status_code == 303, r.get_data(as_text=True)
    assert code_from(follow(browser, r)) is not None
    assert browser.reg.store.get_count("fail:user:alice:consecutive") == 0
    # Many addresses together refuse passes for alice for one window (their own limit), no longer.
    fresh = tap_browsers()
    code = issue(fresh)
    assert tap_login(fresh, code) == 401
    fresh.clock.advance(300)
    assert tap_login(fresh, code) == 303
    assert code_from(follow(fresh, fresh.authorize())) is not None
    assert fresh.get_json("/security-info/").get_json()["page"] == "manage"


def test_120_wrong_passes_from_one_address_do_not_refuse_the_owners_pass(
    tap_browsers: Callable[..., Browser],
) -> None:
    browser = tap_browsers()
    code = issue(browser)
    attacker = tap_browsers()
    statuses = wrong_passes(attacker, 120, per_address=120)
    assert set(statuses) == {401}, "a refused try looks like a wrong one"
    assert tap_login(browser, code) == 303
    failed = browser.reg.store.list_audit(event_prefix="tap.failed", limit=1000)
    # 110 refusals from one address: the first audited, the repeats counted (decision 188)
    throttled = [e for e in failed if e.detail.get("reason") == "throttled"]
    assert len(throttled) == 1 and throttled[0].detail["repeats_not_audited_s"] == 900


# -- the durable lock (a caller who knows the password) and the admin's unlock ----------------

LOCK_AFTER_3 = {"max_consecutive_failures": 3, "failures_per_window": 10}
DASHBOARD = "/security-info/admin/"


def lock_alice(browser: Browser) -> tuple[str, dict[str, str]]:
    """alice registers an app; then three wrong codes at the MFA step lock her codes."""
    mfa_url, form = browser.at_mfa_with_totp("alice")
    for _ in range(3):
        assert browser.post(mfa_url, data={**form, "code": "000000"}).status_code == 400
    assert browser.post(mfa_url, data=form).status_code == 429
    return mfa_url, form


def test_the_admin_api_shows_and_clears_a_lock_audited(
    make_browser: Callable[..., Browser],
) -> None:
    browser = fast_taps(make_browser(admin=admin_section(), throttle=LOCK_AFTER_3))
    mfa_url, form = lock_alice(browser)
    r = api(browser, "GET", "/users/alice/lock")
    assert r.status_code == 200
    state = r.get_json()
    assert state["locked"] is True and state["consecutive_failures"] >= 3
    assert state["max_consecutive_failures"] == 3
    assert api(browser, "GET", "/reports/registration?user=alice").get_json()["users"][0]["locked"]
    r = api(browser, "POST", "/users/alice/unlock")
    assert r.status_code == 200 and r.get_json()["was_locked"] is True
    event = browser.reg.store.list_audit(event_prefix="admin.unlocked")[0]
    assert event.user_id == "alice" and event.detail["actor"] == "ops"
    assert event.detail["was_locked"] is True
    assert api(browser, "GET", "/users/alice/lock").get_json()["locked"] is False
    assert browser.post(mfa_url, data=form).status_code == 303, "her code passes again"
    assert api(browser, "GET", "/users/nobody/lock").status_code == 404
    assert api(browser, "POST", "/users/nobody/unlock").status_code == 404


def test_the_dashboard_lists_a_locked_account_and_unlocks_it(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(
        groups={"bob": frozenset({"admins"})}, admin={"group": "admins"}, throttle=LOCK_AFTER_3
    )
    lock_alice(browser)
    admin = make_browser(
        groups={"bob": frozenset({"admins"})}, admin={"group": "admins"}, throttle=LOCK_AFTER_3
    )
    sign_in_and_register_totp(admin, "bob")
    page = admin.get_json(DASHBOARD).get_json()
    assert [a["user_id"] for a in page["locked"]] == ["alice"]
    html = admin.get(DASHBOARD).get_data(as_text=True)
    assert "alice" in html and 'name="user_id" value="alice"' in html
    # A POST without the CSRF token changes nothing.
    assert admin.post(DASHBOARD, data={"user_id": "alice"}).status_code == 403
    assert browser.reg.admin.lock_state("alice")["locked"] is True
    r = admin.post(DASHBOARD, data={"user_id": "alice", "csrf_token": page["csrf_token"]})
    assert r.status_code == 303 and location(r) == DASHBOARD
    assert browser.reg.admin.lock_state("alice")["locked"] is False
    event = browser.reg.store.list_audit(event_prefix="admin.unlocked")[0]
    assert event.user_id == "alice" and event.detail["actor"] == "bob"
    assert admin.get_json(DASHBOARD).get_json()["locked"] == []


def test_unlock_also_clears_the_pass_and_reset_counters_of_the_account(
    make_browser: Callable[..., Browser],
) -> None:
    """A stranger can fill the reset's daily cap (decision 13) and the TAP's account window; the
    admin's unlock gives the owner both back at once."""
    browser = fast_taps(make_browser(admin=admin_section()))
    sign_in_and_register_totp(browser, "alice")
    store = browser.reg.store
    for _ in range(50):
        store.incr(reset_day_key("alice"), ttl=86400)
    taps = browser.reg.admin.tap
    for n in range(12):
        with contextlib.suppress(VerificationFailed, RateLimited):
            taps.verify("alice", "AAAA-AAAA-AAAA-AAAA", ip=f"198.51.100.{n}")
    state = api(browser, "GET", "/users/alice/lock").get_json()
    assert (state["reset_attempts_today"], state["tap_failures"], state["locked"]) == (
        50,
        12,
        False,
    )
    assert api(browser, "POST", "/users/alice/unlock").get_json()["before"] == state
    after = api(browser, "GET", "/users/alice/lock").get_json()
    assert (after["reset_attempts_today"], after["tap_failures"]) == (0, 0)
