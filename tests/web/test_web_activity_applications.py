"""Recent activity's Application column for password and MFA rows (decision 187, superseding 135):
the sign-in and MFA audit events name the OIDC client of the /authorize request the middleware
holds, in the event it writes anyway, and the page shows the host's display name for it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyotp
from idp_client import make_idp, registered
from test_web_manage import enrolled
from webtest import Browser, location

from oidc_combinedreg.authorization import client_name
from oidc_combinedreg.store.base import AuditEvent

ACTIVITY = "/security-info/activity"
NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}


def rows(browser: Browser) -> list[dict[str, Any]]:
    body = browser.get_json(ACTIVITY).get_json()
    assert body["page"] == "activity", body
    return list(body["events"])


def events(browser: Browser, name: str) -> list[AuditEvent]:
    return browser.reg.store.list_audit(user_id="alice", event_prefix=name, limit=100)


def sign_in_from_the_app(browser: Browser, client_id: str) -> None:
    """As a browser does: the RP's /authorize (the middleware keeps it, cookie check), the
    host's login form, the password."""
    query = f"client_id={client_id}&state=s1"
    probe = browser.get(f"/authorize?{query}", headers=NAVIGATE)
    assert probe.status_code == 303, probe.get_data(as_text=True)
    back = browser.get(location(probe), headers=NAVIGATE)  # the cookie came back: to /authorize
    assert location(back).startswith("/authorize?")
    assert location(browser.get(location(back))).startswith("/login")
    browser.post(
        f"/login?next=/authorize%3F{query.replace('&', '%26')}",
        data={"username": "alice", "password": "alice-password"},
    )


def test_the_password_event_names_the_app_the_browser_is_signing_in_to(browser: Browser) -> None:
    browser.host.clients["payroll"] = "https://payroll.example.test/cb"
    sign_in_from_the_app(browser, "payroll")
    (signin,) = events(browser, "signin.password")
    assert signin.detail["client_id"] == "payroll"


def test_a_login_without_an_authorization_request_names_no_app(browser: Browser) -> None:
    browser.login("alice")
    (signin,) = events(browser, "signin.password")
    assert "client_id" not in signin.detail


def test_mfa_events_name_the_app_and_the_page_shows_its_name(browser: Browser) -> None:
    secret = enrolled(browser)
    browser.clock.advance(120)
    browser.login("alice")
    assert location(browser.authorize()).startswith("/security-info/mfa?c=")  # left pending
    browser.login("alice")
    mfa_url = location(browser.authorize())
    page = browser.get_json(mfa_url).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    browser.post_json(mfa_url, {**form, "code": "000000"})  # wrong: mfa.failed
    code = pyotp.TOTP(secret).at(browser.clock.now())
    assert browser.post_json(mfa_url, {**form, "code": code}).status_code == 303
    assert [e.detail.get("client_id") for e in events(browser, "mfa.")] == ["demo", "demo"]

    # the last password sign-in too: the request for demo before it was still pending
    shown = [(r["event"], r["application"], r["application_name"]) for r in rows(browser)]
    assert shown[:3] == [("mfa.succeeded", "demo", "Demo app"), ("mfa.failed", "demo", "Demo app"),
                         ("signin.password", "demo", "Demo app")]  # fmt: skip
    html = browser.get(ACTIVITY).get_data(as_text=True)
    assert html.count("<bdi>Demo app</bdi>") == 3


def test_an_app_the_host_cannot_name_shows_its_client_id_and_none_recorded_is_localized(
    browser: Browser,
) -> None:
    enrolled(browser)
    now = browser.clock.now()
    for at, detail in ((now + 1, {"client_id": "legacy-crm"}), (now + 2, {})):
        browser.reg.store.append_audit(
            AuditEvent(
                at=at,
                event="mfa.succeeded",
                user_id="alice",
                outcome="success",
                ip="192.0.2.1",
                detail={"kind": "totp", **detail},
            )
        )
    browser.clock.advance(5)
    none_recorded, unnamed = rows(browser)[:2]
    assert none_recorded["application"] is None and none_recorded["application_name"] is None
    assert unnamed["application"] == "legacy-crm" and unnamed["application_name"] is None
    html = browser.get(ACTIVITY, headers={"Accept-Language": "de"}).get_data(as_text=True)
    assert "<bdi>legacy-crm</bdi>" in html and "Nicht erfasst" in html


def test_a_display_name_is_cleaned_of_control_and_format_characters(browser: Browser) -> None:
    """A name a stranger registered (open registration) cannot reverse the text around it or
    push the page apart."""
    enrolled(browser)
    browser.host.client_names["demo"] = "Pay\u202eroll\u0007 " + "x" * 200
    browser.reg.store.append_audit(
        AuditEvent(
            at=browser.clock.now(),
            event="mfa.succeeded",
            user_id="alice",
            outcome="success",
            ip="192.0.2.1",
            detail={"client_id": "demo"},
        )
    )
    name = next(r["application_name"] for r in rows(browser) if r["application"] == "demo")
    assert name.startswith("Payroll x") and len(name) == 64


def test_the_example_idp_names_a_client_by_its_registered_client_name(tmp_path: Path) -> None:
    idp = make_idp(tmp_path)
    reg = registered(idp, client_name="Payroll")
    endpoint = idp.application.extensions["combinedreg"].authorization
    assert client_name(endpoint, reg["client_id"]) == "Payroll"
    assert client_name(endpoint, "demo-rp") == "Demo relying party (served by the IdP at /demo)"
    assert client_name(endpoint, "nobody") is None
