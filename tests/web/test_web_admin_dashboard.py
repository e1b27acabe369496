"""The admin dashboard: admin group only, behind the MFA gate, charts as inline SVG, no script."""

from __future__ import annotations

from collections.abc import Callable

import pyotp
import pytest
from admin_helpers import sign_in_and_register_totp
from webtest import Browser, location

DASHBOARD = "/security-info/admin/"


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return make_browser(groups={"alice": frozenset({"admins"})}, admin={"group": "admins"})


def test_an_admin_sees_charts_tables_and_the_latest_events(browser: Browser) -> None:
    sign_in_and_register_totp(browser, "alice")
    r = browser.get(DASHBOARD)
    html = r.get_data(as_text=True)
    assert r.status_code == 200
    assert html.count("<svg") == 3 and 'role="img"' in html and "<title" in html
    assert "<script" not in html and "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "script-src 'self'" in r.headers["Content-Security-Policy"]
    assert "method.added" in html and "registration.completed" in html
    body = browser.get_json(DASHBOARD + "?days=7").get_json()
    assert body["page"] == "admin_dashboard" and body["days"] == 7 and "_charts" not in body
    assert body["summary"]["methods"]["totp"]["methods"] == 1


def test_a_signed_in_user_outside_the_admin_group_is_forbidden(browser: Browser) -> None:
    sign_in_and_register_totp(browser, "bob")
    r = browser.get_json(DASHBOARD)
    assert r.status_code == 403 and r.get_json()["error"] == "forbidden"
    assert "<svg" not in browser.get(DASHBOARD).get_data(as_text=True)


def test_without_a_session_the_dashboard_is_401(browser: Browser) -> None:
    assert browser.get_json(DASHBOARD).status_code == 401


def test_an_admin_whose_mfa_is_stale_is_sent_to_mfa_and_back(browser: Browser) -> None:
    secret = sign_in_and_register_totp(browser, "alice")
    browser.clock.advance(browser.reg.config.web.mfa_freshness + 1)
    r = browser.get(DASHBOARD)
    assert r.status_code == 303 and location(r) == "/security-info/mfa?back=admin"
    page = browser.get_json(location(r)).get_json()
    r = browser.post_json(
        location(r),
        {
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert location(r) == DASHBOARD  # back where the admin was, not manage mode
    assert browser.get_json("/security-info/mfa?back=https://evil.example").status_code == 200
    r = browser.post_json(
        "/security-info/mfa?back=https://evil.example",
        {"code": "000000", "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]},
    )
    assert "evil" not in location(r)


def test_without_an_admin_group_nobody_gets_the_dashboard(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(groups={"alice": frozenset({"admins"})})
    sign_in_and_register_totp(browser, "alice")
    assert browser.get_json(DASHBOARD).status_code == 403
