"""auth_time and step-up through the WSGI stack (issue 17 items 3 and 4): ``auth_time`` is when
the last factor completed; a live session that is sent back with a higher ``acr_values`` or a
smaller ``max_age`` (RFC 9470) is asked only for what is missing, the MFA step, never the
password again, and the new code carries the new acr and auth_time."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from reset_helpers import add_totp
from webtest import Browser, code_from, location

PWD, MFA = "urn:combinedreg:acr:pwd", "urn:combinedreg:acr:mfa"
RP_DECIDES: dict[str, Any] = {
    "policies": {"mfa_registration": {"enforced": False}, "wizard_preference": ["totp"]}
}


def follow(browser: Browser, query: str) -> tuple[str, Any]:
    """/authorize?query, following the middleware: ("code", issued) or ("mfa", the page's URL)
    or ("login", the host's login URL)."""
    r = browser.get(f"/authorize?client_id=demo&state=s&{query}")
    while r.status_code == 303 and location(r).startswith("/security-info/signin"):
        r = browser.get(location(r))
    url = location(r)
    if url.startswith("/security-info/mfa"):
        return "mfa", url
    if url.startswith("/login"):
        return "login", url
    code = code_from(r)
    assert code is not None, (r.status_code, url)
    return "code", browser.host.codes[code]


def verify(browser: Browser, mfa_url: str, secret: str) -> dict[str, Any]:
    """Enter the app's current code at the MFA step; the code issued afterwards."""
    page = browser.get_json(mfa_url).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
            "code": pyotp.TOTP(secret).at(browser.clock.now())}  # fmt: skip
    r = browser.post(mfa_url, data=form)
    while r.status_code in (302, 303) and code_from(r) is None:
        assert not location(r).startswith("/login"), "asked for the password again"
        r = browser.get(location(r))
    code = code_from(r)
    assert code is not None, r.get_data(as_text=True)[:300]
    issued: dict[str, Any] = browser.host.codes[code]
    return issued


@pytest.fixture
def alice(make_browser: Callable[..., Browser]) -> tuple[Browser, str]:
    """alice has an authenticator app; no policy asks her for MFA: the RP decides."""
    browser = make_browser(**RP_DECIDES)
    secret = add_totp(browser.reg, "alice")
    browser.clock.advance(60)  # past the code the registration used
    return browser, secret


def test_auth_time_is_when_the_mfa_completed_not_the_password(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser()  # the MFA registration policy asks alice for MFA at every sign-in
    secret = add_totp(browser.reg, "alice")
    browser.clock.advance(60)
    browser.login("alice")
    password_at = int(browser.clock.now())
    got, mfa_url = follow(browser, "")
    assert got == "mfa"
    browser.clock.advance(300)  # five minutes on the MFA page
    issued = verify(browser, mfa_url, secret)
    assert issued["auth_time"] == password_at + 300


def test_step_up_to_mfa_asks_only_for_the_mfa_step(alice: tuple[Browser, str]) -> None:
    browser, secret = alice
    browser.login("alice")
    got, issued = follow(browser, f"acr_values={PWD}")
    assert got == "code" and issued["acr"] == PWD and issued["amr"] == ["pwd"]
    signed_in_at = issued["auth_time"]

    browser.clock.advance(1800)  # half an hour later the RP (or its API) wants MFA
    got, mfa_url = follow(browser, f"acr_values={MFA}")
    assert got == "mfa", "the live session is asked for MFA, not the password"
    issued = verify(browser, mfa_url, secret)
    assert issued["acr"] == MFA
    assert set(issued["amr"]) == {"pwd", "otp", "mfa"}
    assert issued["auth_time"] == signed_in_at + 1800


def test_a_smaller_max_age_asks_for_a_fresh_mfa_not_the_password(
    alice: tuple[Browser, str],
) -> None:
    browser, secret = alice
    browser.login("alice")
    got, mfa_url = follow(browser, f"acr_values={MFA}")
    first = verify(browser, mfa_url, secret)

    browser.clock.advance(300)
    got, again = follow(browser, "max_age=600")
    assert got == "code" and again["auth_time"] == first["auth_time"], "within max_age"

    browser.clock.advance(600)  # now 900 s after the last factor
    got, mfa_url = follow(browser, "max_age=600")
    assert got == "mfa"
    fresh = verify(browser, mfa_url, secret)
    assert fresh["auth_time"] == first["auth_time"] + 900


def test_max_age_zero_is_left_to_the_host_like_prompt_login(alice: tuple[Browser, str]) -> None:
    """max_age=0 means a fresh password (OIDC Core 3.1.2.1 calls it prompt=login's twin): the
    guard asks for no MFA of its own; the host checks auth_time and asks for the password."""
    browser, _ = alice
    browser.login("alice")
    browser.clock.advance(5)
    got, issued = follow(browser, "max_age=0")
    assert got == "code" and issued["auth_time"] == int(browser.clock.now()) - 5
