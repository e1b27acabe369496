"""Security keys through the WSGI stack (JSON twin) with an in-process software authenticator."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from webtest import Browser, code_from, location, notices

from oidc_combinedreg.exceptions import ChallengeExpired, LimitReached
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.methods.soft_authenticator import SoftAuthenticator
from oidc_combinedreg.store.base import MethodRecord

ORIGIN = "http://localhost:5000"
ADD = "/security-info/add/webauthn"


def _enrolled(browser: Browser, user: str = "alice") -> None:
    """Sign in, register an authenticator app in the wizard, finish: MFA is fresh."""
    browser.login(user)
    wizard = location(browser.authorize())
    browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})


def _add_key(browser: Browser, auth: SoftAuthenticator, name: str = "Blue key", **kw: Any) -> Any:
    token = browser.csrf(ADD)
    page = browser.post_json(ADD, {"action": "options", "name": name, "csrf_token": token})
    assert page.status_code == 200, page.get_json()
    options = page.get_json()["options"]
    credential = auth.create(options, origin=ORIGIN, **kw)
    return browser.post_json(
        ADD, {"action": "verify", "credential": credential, "csrf_token": token}
    )


def _keys(browser: Browser, user: str = "alice") -> list[MethodRecord]:
    return [m for m in browser.reg.store.list_methods(user) if m.kind is MethodKind.WEBAUTHN]


def _mfa_with_key(browser: Browser, auth: SoftAuthenticator, **kw: Any) -> Any:
    """A new sign-in up to the MFA page, then the key; returns the verify response."""
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    assert page["method"]["kind"] == "webauthn"  # the most secure method is offered first
    token, method_id = page["csrf_token"], page["method"]["id"]
    started = browser.post_json(
        mfa, {"action": "start", "method_id": method_id, "csrf_token": token}
    )
    options = started.get_json()["challenge"]
    assertion = auth.get(options, origin=ORIGIN, **kw)
    verify = {"action": "verify", "method_id": method_id, "csrf_token": token}
    return mfa, browser.post_json(mfa, {**verify, "credential": assertion}), verify, assertion


def test_register_a_key_then_pass_mfa_with_it(browser: Browser) -> None:
    _enrolled(browser)
    auth = SoftAuthenticator()
    r = _add_key(browser, auth)
    assert location(r) == "/security-info/?done=added"
    [key] = _keys(browser)
    assert key.label == "Blue key" and key.lookup and key.counter == 0
    store = browser.reg.store
    [added] = store.list_audit(user_id="alice", event_prefix="method.", limit=1)
    assert added.event == "method.added" and added.detail["method_id"] == key.id
    [queued] = store.list_audit(user_id="alice", event_prefix="notify.queued", limit=1)
    assert queued.detail["kind"] == "webauthn" and queued.detail["change"] == "added"
    browser.clock.advance(60)
    _, r, _, _ = _mfa_with_key(browser, auth)
    assert r.status_code == 303
    r = browser.get(location(r))
    code = code_from(r)
    assert code is not None
    issued = browser.host.codes[code]
    assert set(issued["amr"]) == {"pwd", "hwk", "user", "mfa"}
    assert issued["acr"] == "urn:combinedreg:acr:phr"
    assert _keys(browser)[0].counter == 1


def test_a_replayed_assertion_is_refused(browser: Browser) -> None:
    _enrolled(browser)
    auth = SoftAuthenticator()
    _add_key(browser, auth)
    mfa, r, verify, assertion = _mfa_with_key(browser, auth)
    assert r.status_code == 303
    browser.login("alice")
    mfa = location(browser.authorize())
    r = browser.post_json(mfa, {**verify, "csrf_token": browser.csrf(mfa), "credential": assertion})
    assert r.status_code == 400
    assert browser.host.codes == {}


def test_a_sign_counter_regression_is_refused_and_audited(browser: Browser) -> None:
    _enrolled(browser)
    auth = SoftAuthenticator()
    _add_key(browser, auth, counter=5)
    _, r, _, _ = _mfa_with_key(browser, auth, counter=3)
    assert r.status_code == 400
    assert _keys(browser)[0].counter == 5
    events = browser.reg.store.list_audit(user_id="alice", event_prefix="webauthn.")
    assert [(e.event, e.outcome, e.detail["received"]) for e in events] == [
        ("webauthn.counter_regression", "blocked", 3)
    ]


def test_a_credential_id_registered_to_another_user_is_refused(
    make_browser: Callable[..., Browser],
) -> None:
    alice, bob = make_browser(), make_browser()
    _enrolled(alice, "alice")
    _enrolled(bob, "bob")
    key_id = b"k" * 32
    assert location(_add_key(alice, SoftAuthenticator(), credential_id=key_id)).endswith("added")
    r = _add_key(bob, SoftAuthenticator(), credential_id=key_id)
    assert r.status_code == 400
    assert r.get_json()["errors"]["credential"] == "This security key is already registered."
    assert _keys(bob, "bob") == []


def test_a_registration_challenge_cannot_sign_in_and_is_single_use(browser: Browser) -> None:
    _enrolled(browser)
    user = browser.reg.directory.get_user("alice")
    assert user is not None
    service = browser.reg.info.webauthn
    options, key = service.register_begin(user)
    with pytest.raises(ChallengeExpired):
        service.verify_assertion("alice", key, {}, ip=None)
    response = SoftAuthenticator().create(options, origin=ORIGIN)
    service.register_complete("alice", key, response, label="k", ip=None)
    with pytest.raises(ChallengeExpired):
        service.register_complete("alice", key, response, label="k", ip=None)


def test_an_expired_challenge_is_refused(browser: Browser) -> None:
    _enrolled(browser)
    user = browser.reg.directory.get_user("alice")
    assert user is not None
    options, key = browser.reg.info.webauthn.register_begin(user)
    browser.clock.advance(301)
    with pytest.raises(ChallengeExpired):
        browser.reg.info.webauthn.register_complete(
            "alice", key, SoftAuthenticator().create(options, origin=ORIGIN), label="k", ip=None
        )


def test_rename_and_delete(browser: Browser) -> None:
    _enrolled(browser)
    _add_key(browser, SoftAuthenticator())
    [key] = _keys(browser)
    token = browser.csrf("/security-info/")
    url = f"/security-info/methods/{key.id}/rename"
    r = browser.post_json(url, {"name": "  ", "csrf_token": token})
    assert r.status_code == 400 and _keys(browser)[0].label == "Blue key"
    r = browser.post_json(url, {"name": "Backup key", "csrf_token": token})
    assert location(r) == "/security-info/?done=renamed"
    assert _keys(browser)[0].label == "Backup key"
    r = browser.post_json(f"/security-info/methods/{key.id}/delete", {"csrf_token": token})
    assert location(r) == "/security-info/?done=deleted"
    assert _keys(browser) == []
    assert notices(browser.reg.store, "alice")[-3:] == [
        ("added", "webauthn", "Blue key"),
        ("changed", "webauthn", "Backup key"),  # the refused empty name told nobody
        ("deleted", "webauthn", "Backup key"),
    ]


def test_renaming_another_users_key_is_refused(make_browser: Callable[..., Browser]) -> None:
    alice, bob = make_browser(), make_browser()
    _enrolled(alice, "alice")
    _enrolled(bob, "bob")
    _add_key(alice, SoftAuthenticator())
    [key] = _keys(alice)
    r = bob.post_json(
        f"/security-info/methods/{key.id}/rename",
        {"name": "mine now", "csrf_token": bob.csrf("/security-info/")},
    )
    assert r.status_code == 403 and _keys(alice)[0].label == "Blue key"


def test_twenty_parallel_adds_of_the_eleventh_key_store_none(browser: Browser) -> None:
    _enrolled(browser)
    user = browser.reg.directory.get_user("alice")
    assert user is not None
    service = browser.reg.info.webauthn
    for _ in range(9):
        options, key = service.register_begin(user)
        service.register_complete(
            "alice", key, SoftAuthenticator().create(options, origin=ORIGIN), label="k", ip=None
        )
    # 21 ceremonies begun while there were 9 keys: one may become the 10th, none the 11th.
    begun = [service.register_begin(user) for _ in range(21)]
    answers = [(key, SoftAuthenticator().create(o, origin=ORIGIN)) for o, key in begun]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(answers))

    def add(key: str, response: dict[str, Any]) -> None:
        barrier.wait()
        try:
            service.register_complete("alice", key, response, label="k", ip=None)
            outcomes.append("added")
        except LimitReached:
            outcomes.append("limit")

    threads = [threading.Thread(target=add, args=a) for a in answers]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["added"] + ["limit"] * 20
    assert len(_keys(browser)) == 10
    with pytest.raises(LimitReached):
        service.register_begin(user)


def test_the_mfa_page_offers_the_key_button_and_a_no_script_message(browser: Browser) -> None:
    _enrolled(browser)
    _add_key(browser, SoftAuthenticator())
    browser.login("alice")
    mfa = location(browser.authorize())
    html = browser.get(mfa).get_data(as_text=True)
    assert 'data-webauthn="get"' in html and "Use your security key" in html
    assert "<noscript>" in html and "/static/webauthn.js" in html
    assert 'name="csrf_token" value=""' not in html  # the forms carry the session's token
    assert "<script>" not in html  # nothing inline: CSP script-src 'self'
    js = browser.get("/security-info/static/webauthn.js")
    assert js.status_code == 200 and "navigator.credentials.get" in js.get_data(as_text=True)
