"""No hop through ``/signin?c=`` where it only repeats a decision made anyway (issue 22, decision
212): the /authorize guard sends the browser straight to the page its step needs (the URL the
sign-in dispatcher would choose: one function), and a step that ends (an MFA verify, the wizard's
and the campaign's finish) takes its continuation back in the write that records it and sends the
browser straight to the /authorize request, where the guard decides again. A sign-in with an
authenticator app through the example IdP was then 7 requests, not 9 (6 with the sign-in form at
/authorize, decision 217; 5 with the password's answer sent straight to the MFA page, decision
226: tests/web/test_web_after_password.py)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import pyotp
from idp_client import REDIRECT_URI, authorize_params, make_idp, registered
from reset_helpers import add_phone, add_totp
from test_web_acr_values import PHR, add_security_key
from webtest import Browser, cid_of, code_from, location, stored_conts

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.policy.reset import PASSWORD_RESET_REQUIRED

AUTHORIZE = "/authorize?client_id=demo&state=s1"


def test_the_guard_sends_an_mfa_step_to_the_mfa_page(browser: Browser) -> None:
    add_totp(browser.reg, "alice")
    browser.login("alice")
    r = browser.authorize()
    assert r.status_code == 303
    mfa = location(r)
    assert re.fullmatch(r"/security-info/mfa\?c=[\w-]+", mfa), mfa
    assert cid_of(mfa) in stored_conts(browser)
    page = browser.get_json(mfa).get_json()
    assert page["page"] == "mfa" and page["method"]["kind"] == "totp"


def test_the_guard_asks_for_phishing_resistance_on_the_mfa_page(browser: Browser) -> None:
    add_totp(browser.reg, "alice")
    add_security_key(browser, "alice")
    browser.login("alice")
    r = browser.authorize(f"client_id=demo&state=s1&acr_values={PHR}")
    assert re.fullmatch(r"/security-info/mfa\?c=[\w-]+&only=phr", location(r)), location(r)


def test_the_guard_sends_a_registration_step_to_the_wizard(browser: Browser) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    assert re.fullmatch(r"/security-info/wizard\?c=[\w-]+", wizard), wizard
    assert browser.get_json(wizard).get_json()["page"] == "totp_intro"


CAMPAIGN = {"enabled": True, "method": "totp", "snoozes_allowed": 2, "snooze_days": 3}


def campaign_browser(make_browser: Callable[..., Browser]) -> Browser:
    browser = make_browser(
        policies={"mfa_registration": {"enforced": False}, "sspr": {"enabled_for": "none"},
                  "wizard_preference": ["totp"], "campaign": CAMPAIGN},
    )  # fmt: skip
    add_phone(browser.reg, "alice")
    return browser


def test_the_guard_sends_a_campaign_ask_to_the_campaign_page(
    make_browser: Callable[..., Browser],
) -> None:
    browser = campaign_browser(make_browser)
    browser.login("alice")
    campaign = location(browser.authorize())
    assert re.fullmatch(r"/security-info/campaign\?c=[\w-]+", campaign), campaign
    assert browser.get_json(campaign).get_json()["page"] == "campaign"


def test_the_guard_sends_a_flagged_account_to_the_password_reset(browser: Browser) -> None:
    add_totp(browser.reg, "alice")
    state = browser.reg.store.get_user_state("alice")
    browser.reg.store.put_user_state(replace(state, extra={PASSWORD_RESET_REQUIRED: True}))
    browser.login("alice")
    r = browser.authorize()
    assert r.status_code == 303 and location(r) == "/security-info/reset"
    assert code_from(r) is None and browser.host.codes == {}


def test_an_mfa_verify_takes_its_continuation_back_and_returns_to_authorize(
    browser: Browser,
) -> None:
    mfa_url, form = browser.at_mfa_with_totp()
    cid = cid_of(mfa_url)
    assert cid in stored_conts(browser)
    r = browser.post(mfa_url, data=form)
    assert r.status_code == 303 and location(r) == AUTHORIZE
    assert cid not in stored_conts(browser), "taken back in the verify's own write"
    # the way back through the old page no longer finds it
    assert browser.get(f"/security-info/signin?c={cid}").status_code == 400
    r = browser.get(location(r))
    code = code_from(r)
    assert code is not None
    assert set(browser.host.codes[code]["amr"]) == {"pwd", "otp", "mfa"}
    assert stored_conts(browser) == {}


def test_a_registration_interrupt_after_mfa_goes_from_authorize_to_the_wizard(
    make_browser: Callable[..., Browser],
) -> None:
    """A reset takes two methods: after the app's code the guard at /authorize sends the user
    straight to the wizard for a second one; no code before it."""
    browser = make_browser(
        policies={"mfa_registration": {"enforced": True}, "wizard_preference": ["totp"],
                  "sspr": {"enabled_for": "all", "methods_required": 2}},
    )  # fmt: skip
    secret = add_totp(browser.reg, "alice")
    browser.clock.advance(60)
    browser.login("alice")
    mfa_url = location(browser.authorize())
    assert mfa_url.startswith("/security-info/mfa?c="), mfa_url
    page = browser.get_json(mfa_url).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
            "code": pyotp.TOTP(secret).at(browser.clock.now())}  # fmt: skip
    r = browser.post(mfa_url, data=form)
    assert location(r) == AUTHORIZE
    r = browser.get(AUTHORIZE)
    assert r.status_code == 303 and code_from(r) is None
    wizard = location(r)
    assert re.fullmatch(r"/security-info/wizard\?c=[\w-]+", wizard), wizard
    assert browser.host.codes == {}


def test_the_wizards_finish_returns_to_authorize(browser: Browser) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    browser.register_totp(wizard)
    r = browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    assert r.status_code == 303 and location(r) == AUTHORIZE
    assert cid_of(wizard) not in stored_conts(browser)
    code = code_from(browser.get(location(r)))
    assert code is not None and "mfa" in browser.host.codes[code]["amr"]


def test_the_campaigns_snooze_returns_to_authorize(make_browser: Callable[..., Browser]) -> None:
    browser = campaign_browser(make_browser)
    browser.login("alice")
    campaign = location(browser.authorize())
    token = browser.csrf(campaign)
    r = browser.post_json(campaign, {"action": "snooze", "csrf_token": token})
    assert r.status_code == 303 and location(r) == AUTHORIZE
    assert cid_of(campaign) not in stored_conts(browser)
    assert code_from(browser.get(AUTHORIZE)) is not None


def test_a_sign_in_with_an_app_through_the_example_idp_is_five_requests(
    tmp_path: Path, clock: FrozenClock
) -> None:
    """grace (MFA registration policy alone) with an authenticator app: /authorize (the sign-in
    form, decision 217), the password -> the MFA page (decision 226), the page, the code ->
    /authorize, the code."""
    idp = make_idp(tmp_path, clock)
    client_id = registered(idp)["client_id"]
    secret = add_totp(idp.application.extensions["example_idp"].registration, "grace")
    clock.advance(60)  # its registration used this time step's code
    url = "/authorize?" + urlencode(authorize_params(client_id))
    sent: list[str] = []

    def send(method: str, path: str, form: dict[str, str] | None = None) -> Any:
        sent.append(f"{method} {urlsplit(path).path}")
        return idp.post(path, data=form) if method == "POST" else idp.get(path)

    def hidden(page: str, name: str) -> str:
        found = re.search(rf'name="{name}" value="([^"]*)"', page)
        assert found is not None, page[:300]
        return found.group(1).replace("&amp;", "&")

    here, r = url, send("GET", url)
    while not r.headers.get("Location", "").startswith(REDIRECT_URI):
        assert len(sent) < 12, sent
        page = r.get_data(as_text=True)
        if r.status_code in (301, 302, 303):
            here = r.headers["Location"].removeprefix("http://localhost")
            r = send("GET", here)
        elif 'name="password"' in page:
            form = {"csrf_token": hidden(page, "csrf_token"), "username": "grace",
                    "password": "grace", "next": hidden(page, "next")}  # fmt: skip
            r = send("POST", "/login", form)
        else:
            assert 'name="code"' in page, page[:400]
            form = {"action": "verify", "csrf_token": hidden(page, "csrf_token"),
                    "method_id": hidden(page, "method_id"),
                    "code": pyotp.TOTP(secret).at(clock.now())}  # fmt: skip
            r = send("POST", here, form)
    assert "code=" in r.headers["Location"]
    assert sent == [
        "GET /authorize", "POST /login",
        "GET /security-info/mfa", "POST /security-info/mfa", "GET /authorize",
    ]  # fmt: skip


def test_an_mfa_the_wizard_asked_for_goes_back_through_signin_keeping_its_request(
    browser: Browser,
) -> None:
    """The wizard's summary behind a stale MFA: the wizard keeps its progress under the
    continuation, so the verify keeps it too and returns through ``/signin?c=`` (decision 212)."""
    browser.login("alice")
    wizard = location(browser.authorize())
    secret = browser.register_totp(wizard)
    browser.clock.advance(601)  # past [web] mfa_freshness: the summary asks for MFA again
    mfa_url = browser.get_json(wizard).get_json()["redirect"]
    cid = cid_of(wizard)
    assert mfa_url == f"/security-info/mfa?c={cid}"
    page = browser.get_json(mfa_url).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
            "code": pyotp.TOTP(secret).at(browser.clock.now())}  # fmt: skip
    r = browser.post(mfa_url, data=form)
    assert r.status_code == 303 and location(r) == f"/security-info/signin?c={cid}"
    assert cid in stored_conts(browser)
