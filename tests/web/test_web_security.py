"""Bad input and attacks through the WSGI stack: each gets a clear error and changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie

import pyotp
import pytest
from webtest import Browser, code_from, location

from oidc_combinedreg.methods.kinds import MethodKind


def _cookie(browser: Browser, name: str = "combinedreg") -> str | None:
    cookie = browser.client.get_cookie(name)
    return cookie.value if cookie else None


def _enrolled(browser: Browser, user: str = "alice") -> tuple[str, str]:
    """Sign in, register an app, finish; returns (secret, method id)."""
    browser.login(user)
    wizard = location(browser.authorize())
    secret = browser.register_totp(wizard)
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": token})
    method_id = browser.reg.store.list_methods(user)[0].id
    return secret, method_id


def _at_wizard(browser: Browser) -> str:
    browser.login("alice")
    return location(browser.authorize())


def test_post_without_csrf_token_is_refused_and_changes_nothing(browser: Browser) -> None:
    wizard = _at_wizard(browser)
    r = browser.post_json(wizard, {"action": "next"})
    assert r.status_code == 403 and r.get_json()["error"] == "csrf"
    assert browser.get_json(wizard).get_json()["stage"] == "intro"


def test_post_with_a_forged_csrf_token_is_refused(browser: Browser) -> None:
    wizard = _at_wizard(browser)
    r = browser.post_json(wizard, {"action": "next", "csrf_token": "forged" * 8})
    assert r.status_code == 403
    assert browser.get_json(wizard).get_json()["stage"] == "intro"


def test_cross_site_post_is_refused_even_with_the_token(browser: Browser) -> None:
    wizard = _at_wizard(browser)
    token = browser.csrf(wizard)
    r = browser.client.post(
        wizard,
        data={"action": "next", "csrf_token": token},
        headers={"Sec-Fetch-Site": "cross-site"},
        environ_base={"REMOTE_ADDR": "127.0.0.1"},
    )
    assert r.status_code == 403
    assert browser.get_json(wizard).get_json()["stage"] == "intro"


def test_a_tampered_continuation_is_refused(browser: Browser) -> None:
    wizard = _at_wizard(browser)
    for url in (
        "/security-info/signin?c=forged",
        "/security-info/wizard?c=forged",
        "/security-info/signin",
    ):
        r = browser.get_json(url)
        assert r.status_code == 400 and r.get_json()["error"] == "expired", url
    assert browser.get_json(wizard).get_json()["page"] == "totp_intro"


@pytest.mark.parametrize(
    "url",
    [
        "/security-info/",
        "/security-info/mfa",
        "/security-info/wizard?c=x",
        "/security-info/signin?c=x",
        "/security-info/add/totp",
    ],
)
def test_pages_without_a_signed_in_user_are_refused(browser: Browser, url: str) -> None:
    r = browser.get_json(url)
    # With a continuation but no cookie at all, the cookie check explains instead (issue 6).
    expected = "cookies_blocked" if "c=" in url else "signed_out"
    assert r.status_code == 401 and r.get_json()["error"] == expected
    assert "alice" not in r.get_data(as_text=True)


def test_session_id_changes_after_password_and_after_mfa(browser: Browser) -> None:
    secret, _ = _enrolled(browser)
    browser.clock.advance(60)
    browser.get("/hello")
    before = _cookie(browser)
    browser.login("alice")
    after_password = _cookie(browser)
    assert after_password and after_password != before
    mfa_url = location(browser.authorize())
    page = browser.get_json(mfa_url).get_json()
    browser.post_json(
        mfa_url,
        {
            "code": pyotp.TOTP(secret).at(browser.clock.now()),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    after_mfa = _cookie(browser)
    assert after_mfa and after_mfa != after_password
    # The old id is dead: nothing can be done with a fixated or stolen pre-MFA id.
    assert browser.reg.store.load_session(after_password) is None


def test_logout_during_a_partial_sign_in_wipes_it_and_keeps_enforcement(browser: Browser) -> None:
    wizard = _at_wizard(browser)
    browser.get("/logout")
    assert browser.get_json(wizard).status_code == 401
    r = browser.authorize()
    assert location(r).startswith("/login")  # back to the password, not past the wizard
    assert browser.host.codes == {}


def test_a_host_that_forgets_the_check_still_issues_no_code(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser()
    original = browser.host.authorize

    def forgetful(environ, start_response):  # type: ignore[no-untyped-def]
        start_response(
            "302 Found", [("Location", "https://rp.example.test/cb?code=leaked&state=s")]
        )
        return [b""]

    browser.host.authorize = forgetful  # type: ignore[method-assign]
    r = browser.authorize()  # no sign-in at all
    assert r.status_code == 403 and "leaked" not in r.headers.get("Location", "")
    browser.login("alice")
    r = browser.authorize()  # MFA registration pending: never reaches the host
    assert location(r).startswith("/security-info/wizard?c=")
    browser.host.authorize = original  # type: ignore[method-assign]


def test_wizard_is_not_reachable_by_forced_browsing_without_a_need(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(groups={"bob": frozenset({"break-glass"})})
    browser.login("bob")
    # bob needs nothing: a continuation exists only through /authorize, which clears at once.
    assert code_from(browser.authorize()) is not None
    assert browser.get_json("/security-info/wizard?c=anything").status_code == 400


def test_a_user_with_a_method_must_pass_mfa_before_the_wizard(browser: Browser) -> None:
    _enrolled(browser)
    browser.clock.advance(3600)
    browser.login("alice")
    r = browser.authorize()
    assert location(r).startswith("/security-info/mfa")
    cid = location(r).split("c=")[1]
    r = browser.get(f"/security-info/wizard?c={cid}")
    assert location(r).startswith("/security-info/mfa")


def test_get_never_changes_anything(browser: Browser) -> None:
    _, method_id = _enrolled(browser)
    for url in (
        f"/security-info/methods/{method_id}/delete",
        "/security-info/default",
        "/security-info/signout-everywhere",
    ):
        browser.get(url)
    assert [m.id for m in browser.reg.store.list_methods("alice")] == [method_id]


def test_deleting_another_users_method_is_refused(make_browser: Callable[..., Browser]) -> None:
    alice = make_browser()
    _, alice_method = _enrolled(alice)
    bob = Browser(alice.reg, alice.host, alice.clock)
    _enrolled(bob, "bob")
    manage = bob.get_json("/security-info/").get_json()
    r = bob.post_json(
        f"/security-info/methods/{alice_method}/delete", {"csrf_token": manage["csrf_token"]}
    )
    assert r.status_code == 403
    assert [m.id for m in alice.reg.store.list_methods("alice")] == [alice_method]


def test_a_sixth_authenticator_app_is_refused(browser: Browser) -> None:
    _enrolled(browser)
    for _ in range(4):
        token = browser.csrf("/security-info/add/totp")
        browser.post_json("/security-info/add/totp", {"action": "next", "csrf_token": token})
        secret = browser.get_json("/security-info/add/totp").get_json()["secret"]
        browser.post_json("/security-info/add/totp", {"action": "next", "csrf_token": token})
        browser.clock.advance(30)
        r = browser.post_json(
            "/security-info/add/totp",
            {
                "action": "verify",
                "csrf_token": token,
                "code": pyotp.TOTP(secret).at(browser.clock.now()),
            },
        )
        assert location(r) == "/security-info/?done=added"
    kinds = [m.kind for m in browser.reg.store.list_methods("alice")]
    assert kinds == [MethodKind.TOTP] * 5
    manage = browser.get_json("/security-info/").get_json()
    assert "totp" not in [a["kind"] for a in manage["addable"]]
    r = browser.get_json("/security-info/add/totp")
    # refused with the limit said (issue 19.8), and nothing stored
    assert r.status_code == 409 and r.get_json()["page"] == "method_limit"
    assert len(browser.reg.store.list_methods("alice")) == 5


def test_wrong_codes_are_throttled_per_user_without_locking_out_others(
    make_browser: Callable[..., Browser],
) -> None:
    alice = make_browser()
    secret, _ = _enrolled(alice)
    alice.clock.advance(3600)
    alice.login("alice")
    mfa_url = location(alice.authorize())
    page = alice.get_json(mfa_url).get_json()
    good = pyotp.TOTP(secret).at(alice.clock.now())
    wrong = "000000" if good != "000000" else "111111"
    statuses = []
    for _ in range(12):
        r = alice.post_json(
            mfa_url,
            {"code": wrong, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]},
        )
        statuses.append(r.status_code)
    assert statuses[:10] == [400] * 10 and statuses[10:] == [429, 429]
    r = alice.post_json(
        mfa_url, {"code": good, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    )
    assert r.status_code == 429  # even the right code waits out the cool-down
    bob = Browser(alice.reg, alice.host, alice.clock)
    bob.remote_addr = "127.0.0.2"
    _enrolled(bob, "bob")  # another user is not affected
    assert len(bob.reg.store.list_methods("bob")) == 1


def test_oversized_bodies_are_refused_cleanly(browser: Browser) -> None:
    wizard = _at_wizard(browser)
    r = browser.client.post(
        wizard, data={"code": "1" * 1_000_000}, environ_base={"REMOTE_ADDR": "127.0.0.1"}
    )
    assert r.status_code in (403, 413)
    assert browser.get_json(wizard).get_json()["stage"] == "intro"


def test_cookies_are_httponly_samesite_and_secure_with_host_prefix_in_production(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(web={"secure_cookies": True})
    r = browser.login("alice")
    header = next(v for k, v in r.headers.items() if k == "Set-Cookie" and "combinedreg" in v)
    assert header.startswith("__Host-combinedreg=")
    for part in ("Path=/", "HttpOnly", "SameSite=Lax", "Secure"):
        assert part in header
    assert "Domain" not in header
    parsed = SimpleCookie(header)
    assert len(parsed["__Host-combinedreg"].value) >= 40
