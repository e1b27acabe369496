"""The MFA gate of the security-info pages and the cookie check, through the WSGI stack.

SECURITY.md cases 10 (password-only session sees nothing), 11 (no forced browsing), 12 (no delete
or replace without MFA), 13 (questions, email codes and app passwords never satisfy the gate; MFA
older than the window re-prompts), 20 (another user's method id), 50 (cookie flags).
"""

from __future__ import annotations

from collections.abc import Callable

import pyotp
import pytest
from test_web_manage import SECURITY_INFO, add_record, enrolled
from webtest import Browser, location

from oidc_combinedreg.methods.kinds import MethodKind

MFA = "/security-info/mfa"


def signed_in_with_password_only(browser: Browser) -> str:
    """alice has an app; a new sign-in stops at the MFA step (password only). Returns the secret."""
    secret = enrolled(browser)
    browser.clock.advance(60)
    browser.login("alice")
    assert location(browser.authorize()).startswith(MFA)
    return secret


def pass_mfa(browser: Browser, secret: str) -> None:
    page = browser.get_json(MFA).get_json()
    r = browser.post_json(
        MFA,
        {
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert location(r) == SECURITY_INFO, r.get_data(as_text=True)


# -- case 10, 11, 12 ------------------------------------------------------------------------------


def test_password_only_session_is_sent_to_mfa_and_sees_no_method(browser: Browser) -> None:
    signed_in_with_password_only(browser)
    add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    for get in (browser.get, browser.get_json):
        r = get(SECURITY_INFO)
        assert r.status_code == 303 and location(r) == MFA
        assert "XXXXXXXX67" not in r.get_data(as_text=True)


@pytest.mark.parametrize(
    ("method", "url"),
    [
        pytest.param("GET", "/security-info/add/totp", id="add page"),
        pytest.param("POST", "/security-info/add/totp", id="add step post"),
        pytest.param("GET", "/security-info/methods/{id}/delete", id="delete confirmation"),
        pytest.param("POST", "/security-info/methods/{id}/delete", id="delete"),
        pytest.param("GET", "/security-info/methods/{id}/change", id="change"),
        pytest.param("POST", "/security-info/methods/{id}/change", id="change post (replace)"),
        pytest.param("GET", "/security-info/default", id="default chooser"),
        pytest.param("POST", "/security-info/default", id="set default"),
        pytest.param("POST", "/security-info/methods/{id}/rename", id="rename"),
        pytest.param("POST", "/security-info/signout-everywhere", id="sign out everywhere"),
    ],
)
def test_forced_browsing_without_fresh_mfa_is_sent_to_mfa_and_changes_nothing(
    browser: Browser, method: str, url: str
) -> None:
    signed_in_with_password_only(browser)
    phone = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    before = browser.reg.store.list_methods("alice")
    default_before = browser.reg.store.get_user_state("alice").default_method_id
    target = url.format(id=phone.id)
    if method == "GET":
        r = browser.get_json(target)
    else:
        token = browser.csrf(MFA)
        body = {"csrf_token": token, "method_id": phone.id, "action": "next", "name": "x"}
        r = browser.post_json(target, body)
    assert r.status_code == 303 and location(r) == MFA
    assert browser.reg.store.list_methods("alice") == before
    assert browser.reg.store.get_user_state("alice").default_method_id == default_before
    assert browser.get_json(MFA).status_code == 200  # this session still exists


def test_a_wrong_code_at_the_gate_opens_nothing(browser: Browser) -> None:
    signed_in_with_password_only(browser)
    page = browser.get_json(MFA).get_json()
    r = browser.post_json(
        MFA, {"code": "000000", "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    )
    assert r.status_code == 400
    assert location(browser.get_json(SECURITY_INFO)) == MFA


def test_after_mfa_the_same_session_gets_in(browser: Browser) -> None:
    secret = signed_in_with_password_only(browser)
    browser.clock.advance(30)
    pass_mfa(browser, secret)
    assert browser.get_json(SECURITY_INFO).get_json()["page"] == "manage"


# -- case 13 --------------------------------------------------------------------------------------


def test_the_gate_offers_only_mfa_methods_default_first(browser: Browser) -> None:
    signed_in_with_password_only(browser)
    email = add_record(browser, "alice", MethodKind.EMAIL, email="a@example.test")
    questions = add_record(browser, "alice", MethodKind.SECURITY_QUESTIONS)
    app_password = add_record(browser, "alice", MethodKind.APP_PASSWORD)
    phone = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    browser.reg.info.set_default("alice", phone.id, ip=None)
    page = browser.get_json(MFA).get_json()
    assert page["method"]["id"] == phone.id  # the default first, though the app ranks higher
    offered = {page["method"]["kind"], *(m["kind"] for m in page["others"])}
    assert offered == {"mobile_phone", "totp"}
    for record in (email, questions, app_password):
        # Choosing a non-MFA method falls back to a real one; its "proof" verifies nothing.
        shown = browser.get_json(f"{MFA}?method={record.id}").get_json()
        assert shown["method"]["kind"] in ("mobile_phone", "totp")
        r = browser.post_json(
            MFA, {"method_id": record.id, "code": "123456", "csrf_token": page["csrf_token"]}
        )
        assert r.status_code in (400, 429)
    assert location(browser.get_json(SECURITY_INFO)) == MFA


def test_mfa_older_than_the_window_is_asked_again_page_views_do_not_extend_it(
    browser: Browser,
) -> None:
    enrolled(browser)  # MFA (registering the app) at T0
    window = browser.reg.config.web.mfa_freshness
    for _ in range(3):
        browser.clock.advance(window // 3 - 1)
        assert browser.get_json(SECURITY_INFO).status_code == 200  # fresh
    browser.clock.advance(10)
    r = browser.get_json(SECURITY_INFO)
    assert r.status_code == 303 and location(r) == MFA  # stale: the window began at the MFA


def test_a_user_without_mfa_methods_gets_in_with_a_fresh_password_only(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(policies={"mfa_registration": {"enforced": False}})
    browser.login("alice")
    add_record(browser, "alice", MethodKind.EMAIL, email="a@example.test")
    assert browser.get_json(SECURITY_INFO).get_json()["page"] == "manage"
    browser.clock.advance(browser.reg.config.web.password_freshness + 1)
    r = browser.get_json(SECURITY_INFO)
    assert r.status_code == 401 and r.get_json()["error"] == "signed_out"


def test_the_wizard_summary_is_behind_the_gate(browser: Browser) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    browser.register_totp(wizard)
    assert browser.get_json(wizard).get_json()["page"] == "wizard_summary"
    browser.clock.advance(browser.reg.config.web.mfa_freshness + 1)
    r = browser.get_json(wizard)
    cid = wizard.split("c=")[1]
    assert r.status_code == 303 and location(r) == f"{MFA}?c={cid}"
    assert "methods" not in r.get_json()


# -- case 20 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "url", "field"),
    [
        pytest.param("POST", "/security-info/methods/{id}/delete", None, id="delete"),
        pytest.param("GET", "/security-info/methods/{id}/delete", None, id="delete page"),
        pytest.param("GET", "/security-info/methods/{id}/change", None, id="change"),
        pytest.param("POST", "/security-info/methods/{id}/rename", None, id="rename"),
        pytest.param("POST", "/security-info/default", "method_id", id="default"),
    ],
)
def test_another_users_method_id_is_refused(
    make_browser: Callable[..., Browser], method: str, url: str, field: str | None
) -> None:
    browser = make_browser()
    bobs_key = add_record(browser, "bob", MethodKind.WEBAUTHN, credential_id="b")
    bobs_phone = add_record(browser, "bob", MethodKind.MOBILE_PHONE, phone="+14255550167")
    enrolled(browser, "alice")
    for victim in (bobs_key, bobs_phone):
        target = url.format(id=victim.id)
        if method == "GET":
            r = browser.get_json(target)
        else:
            body = {"csrf_token": browser.csrf(SECURITY_INFO), "name": "mine now"}
            if field:
                body[field] = victim.id
            r = browser.post_json(target, body)
        assert r.status_code == 403 and r.get_json()["error"] == "forbidden", target
    assert browser.reg.store.list_methods("bob") == [bobs_key, bobs_phone]
    assert browser.reg.store.get_user_state("alice").default_method_id is None


# -- case 50 and the cookie check --------------------------------------------------------------


def test_cookies_are_secure_httponly_samesite_with_the_host_prefix(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(web={"secure_cookies": True})
    r = browser.login("alice")
    [cookie] = [c for c in r.headers.getlist("Set-Cookie") if "combinedreg=" in c]
    name, *flags = [part.strip() for part in cookie.split(";")]
    assert name.startswith("__Host-combinedreg=")
    assert {"Path=/", "HttpOnly", "SameSite=Lax", "Secure"} <= set(flags)
    assert not any(f.lower().startswith("domain") for f in flags)
    r = browser.get("/security-info/mfa?lng=de", headers={"Cookie": cookie.split(";")[0]})
    [lang] = [c for c in r.headers.getlist("Set-Cookie") if c.startswith("combinedreg_lng=")]
    assert "Secure" in lang and "SameSite=Lax" in lang


NAVIGATE = {"Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document", "Accept": "text/html"}


def test_a_browser_that_drops_the_cookie_gets_the_cookies_page(browser: Browser) -> None:
    r = browser.client.get(
        "/authorize?client_id=demo&state=s1",
        headers=NAVIGATE,
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    signin = location(r)
    assert r.status_code == 303 and signin.startswith("/security-info/signin?c=")
    assert "combinedreg=" in r.headers["Set-Cookie"]
    browser.client._cookies.clear()  # type: ignore[attr-defined] - the browser refused it
    for accept in ("text/html", "application/json"):
        page = browser.client.get(signin, headers={"Accept": accept})
        assert page.status_code == 401
        if accept == "text/html":
            text = page.get_data(as_text=True)
            assert "Turn on cookies to sign in" in text and "allow cookies" in text
        else:
            assert page.get_json()["error"] == "cookies_blocked"
    german = browser.client.get(signin, headers={"Accept-Language": "de"})
    assert 'lang="de"' in german.get_data(as_text=True)


def test_a_browser_that_keeps_the_cookie_goes_straight_back_to_authorize(
    browser: Browser,
) -> None:
    r = browser.client.get("/authorize?client_id=demo&state=s1", headers=NAVIGATE)
    r = browser.client.get(location(r), headers=NAVIGATE)
    assert r.status_code == 303 and location(r) == "/authorize?client_id=demo&state=s1"
    r = browser.client.get(location(r), headers=NAVIGATE)
    assert location(r).startswith("/login")  # the host's own answer: no probe loop
    assert browser.host.codes == {}


def test_non_browser_clients_and_expired_sessions_are_not_mistaken_for_blocked_cookies(
    browser: Browser,
) -> None:
    r = browser.authorize()  # no Sec-Fetch-Mode: an RP library or a test client
    assert location(r).startswith("/login")
    browser.login("alice")
    signin = location(browser.authorize())
    browser.reg.store.delete_user_sessions("alice")  # expired: the cookie is still sent
    r = browser.get_json(signin)
    assert r.status_code == 401 and r.get_json()["error"] == "signed_out"
