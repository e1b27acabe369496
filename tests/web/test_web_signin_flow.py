"""The sign-in pipeline through the WSGI stack: password -> wizard or MFA -> back to /authorize."""

from __future__ import annotations

import threading
from typing import Any

import pyotp
import pytest
from webtest import Browser, code_from, location

from oidc_combinedreg.exceptions import StoreUnavailable


def test_first_sign_in_registers_an_app_then_gets_a_code_with_mfa_amr(browser: Browser) -> None:
    r = browser.login("alice")  # the password's answer: straight to the wizard (decision 226)
    assert r.status_code == 303
    wizard = location(r)
    assert wizard.startswith("/security-info/wizard?c=")
    browser.register_totp(wizard)
    summary = browser.get_json(wizard).get_json()
    assert summary["page"] == "wizard_summary"
    assert [m["kind"] for m in summary["methods"]] == ["totp"]
    r = browser.post_json(wizard, {"action": "finish", "csrf_token": summary["csrf_token"]})
    assert location(r) == "/authorize?client_id=demo&state=s1"
    r = browser.get(location(r))
    code = code_from(r)
    assert code is not None
    issued = browser.host.codes[code]
    assert issued["sub"] == "alice"
    assert set(issued["amr"]) == {"pwd", "otp", "mfa"}
    assert issued["acr"] == "urn:combinedreg:acr:mfa"


def test_second_sign_in_asks_for_a_code_and_refuses_its_replay(browser: Browser) -> None:
    browser.login("alice")
    r = browser.authorize()
    wizard = location(r)
    secret = browser.register_totp(wizard)
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": token})
    browser.clock.advance(120)

    browser.login("alice")
    r = browser.authorize()
    mfa_url = location(r)
    assert mfa_url.startswith("/security-info/mfa?c=")
    page = browser.get_json(mfa_url).get_json()
    assert page["page"] == "mfa" and page["method"]["kind"] == "totp"
    code = pyotp.TOTP(secret).at(browser.clock.now())
    r = browser.post_json(
        mfa_url, {"code": code, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    )
    assert r.status_code == 303 and location(r) == "/authorize?client_id=demo&state=s1"
    r = browser.get(location(r))
    assert code_from(r) is not None

    # The same code in a new sign-in within the same time step is a replay.
    browser.login("alice")
    r = browser.authorize()
    mfa_url = location(r)
    page = browser.get_json(mfa_url).get_json()
    r = browser.post_json(
        mfa_url, {"code": code, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    )
    assert r.status_code == 400
    assert r.get_json()["errors"]["code"].startswith("That code was already used")


def test_a_session_that_cannot_be_saved_leaves_the_code_unused(
    browser: Browser, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The code check and the session it upgrades commit together (one SQLite transaction): a
    store failure while saving the session rolls the check back too, so the user's code is
    neither used up nor counted as a failure, and the same code works once the store is back."""
    mfa_url, form = browser.at_mfa_with_totp()
    store = browser.reg.store
    audit_before = len(store.list_audit(limit=1000))

    def broken(*args: Any, **kwargs: Any) -> None:
        raise StoreUnavailable("disk full")

    with monkeypatch.context() as patch:
        patch.setattr(store, "save_session", broken)
        r = browser.post_json(mfa_url, form)
    assert r.status_code == 503
    method = store.get_method("alice", form["method_id"])
    assert method is not None and method.counter < int(browser.clock.now()) // 30, "step unused"
    assert len(store.list_audit(limit=1000)) == audit_before, "no success event without it"
    assert store.counters(read=["fail:user:alice:consecutive"]) == [0]

    r = browser.post_json(mfa_url, form)
    assert r.status_code == 303
    assert code_from(browser.get(location(r))) is not None


def test_authorize_while_mfa_pending_never_reaches_the_host(browser: Browser) -> None:
    browser.login("alice")
    for _ in range(3):
        r = browser.authorize()
        assert r.status_code == 303
        assert location(r).startswith("/security-info/wizard?c=")
    assert browser.host.codes == {}


def test_break_glass_user_signs_in_with_password_only(make_browser) -> None:  # type: ignore[no-untyped-def]
    browser = make_browser(groups={"bob": frozenset({"break-glass"})})
    browser.login("bob")
    r = browser.authorize()
    code = code_from(r)
    assert code is not None
    assert browser.host.codes[code]["amr"] == ["pwd"]
    assert browser.host.codes[code]["acr"] == "urn:combinedreg:acr:pwd"


def test_the_same_code_from_ten_sessions_at_once_succeeds_once(browser: Browser) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    secret = browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    browser.clock.advance(90)
    tabs = []
    for _ in range(10):
        tab = Browser(browser.reg, browser.host, browser.clock)
        tab.login("alice")
        mfa_url = location(tab.authorize())
        tabs.append((tab, mfa_url, tab.get_json(mfa_url).get_json()))
    code = pyotp.TOTP(secret).at(browser.clock.now())
    barrier = threading.Barrier(len(tabs))
    statuses: list[int] = []

    def submit(tab: Browser, url: str, page: dict[str, Any]) -> None:
        barrier.wait()
        r = tab.post_json(
            url, {"code": code, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
        )
        statuses.append(r.status_code)

    threads = [threading.Thread(target=submit, args=t) for t in tabs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [303] + [400] * 9


def test_a_forged_session_id_with_a_live_key_opens_nothing(browser: Browser) -> None:
    """Ids are ``<key>.<secret>``: the key of a live session with any other secret (a guess,
    characters beyond ASCII, none) is no session at all, never an error. (The id from before a
    rotation is one of these: tests/store/test_sqlite.py rotates one.)"""
    name = browser.reg.sessions.cookie_name
    browser.login("alice")
    live = browser.client.get_cookie(name)
    assert live is not None
    key = live.value.rpartition(".")[0]
    assert len(key) >= 16
    for forged in (f"{key}.{'x' * 43}", f"{key}.{'é' * 30}", f"{key}.", key):
        browser.client.set_cookie(name, forged)
        r = browser.get_json("/security-info/")
        assert r.status_code in (401, 403), (forged, r.status_code)
    browser.client.set_cookie(name, live.value)
    assert browser.get_json("/security-info/").status_code not in (401, 403), "the real one does"


def test_a_request_running_while_the_user_signs_out_everywhere_cannot_revive_its_session(
    browser: Browser,
) -> None:
    """The request loaded the session before "sign out everywhere" (or a password reset's
    revocation) ran in another tab: its save, or its rotation, is refused and writes nothing."""
    name = browser.reg.sessions.cookie_name
    browser.login("alice")
    cookie = browser.client.get_cookie(name)
    assert cookie is not None
    environ = {"HTTP_COOKIE": f"{name}={cookie.value}"}
    in_flight = browser.reg.sessions.load(environ)
    assert in_flight is not None
    assert browser.reg.store.delete_user_sessions("alice") == 1
    in_flight.data["late"] = True
    assert not browser.reg.sessions.save(in_flight)
    assert not browser.reg.sessions.save(browser.reg.sessions.rotate(in_flight))
    assert browser.reg.sessions.load(environ) is None
    assert browser.reg.store.delete_user_sessions("alice") == 0
    r = browser.get(location(browser.authorize()))
    assert code_from(r) is None, "and /authorize gives no code for it"
