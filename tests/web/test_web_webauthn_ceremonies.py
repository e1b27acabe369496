"""WebAuthn ceremonies through the WSGI stack (SECURITY.md cases 39-45), what the core tests
(tests/core/test_webauthn.py) cannot show: that the pages use the configured origin and RP, bind
a challenge to the session that fetched it, turn every malformed or altered answer into a 400 page
(never a 500) and store, count and issue nothing for it.

The answers are built by the in-process software authenticator, one alteration at a time; a good
answer is accepted in the same setup, so each refusal is the alteration's doing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pyotp
import pytest
from fido2.utils import websafe_decode, websafe_encode
from test_web_manage import enrolled
from test_web_webauthn import ADD, ORIGIN, _add_key, _enrolled, _keys
from webtest import Browser, location

from oidc_combinedreg.methods.soft_authenticator import FLAG, SoftAuthenticator

UP, UV, BE, BS, AT = int(FLAG.UP), int(FLAG.UV), int(FLAG.BE), int(FLAG.BS), int(FLAG.AT)


def _options(browser: Browser) -> tuple[dict[str, Any], str]:
    token = browser.csrf(ADD)
    r = browser.post_json(ADD, {"action": "options", "name": "Key", "csrf_token": token})
    assert r.status_code == 200, r.get_data(as_text=True)
    return r.get_json()["options"], token


def _verify(browser: Browser, token: str, credential: object) -> Any:
    return browser.post_json(
        ADD, {"action": "verify", "credential": credential, "csrf_token": token}
    )


# -- case 41: a challenge belongs to its session and its ceremony ----------------------------------


def test_registration_options_of_one_session_are_refused_in_another(
    browser: Browser,
) -> None:
    secret = enrolled(browser)  # alice, session 1, MFA fresh
    browser.clock.advance(30)
    other = Browser(browser.reg, browser.host, browser.clock)  # alice's second session
    other.login("alice")
    mfa = location(other.authorize())
    page = other.get_json(mfa).get_json()
    code = pyotp.TOTP(secret).at(browser.clock.now())
    r = other.post_json(
        mfa, {"code": code, "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    )
    assert r.status_code == 303
    options_1, token_1 = _options(browser)
    _, token_2 = _options(other)
    answer_1 = SoftAuthenticator().create(options_1, origin=ORIGIN)
    # Session 2 posts the answer to session 1's challenge: refused, nothing stored.
    r = _verify(other, token_2, answer_1)
    assert r.status_code == 400 and _keys(browser) == []
    # Session 1's challenge was not touched: its answer registers there.
    assert location(_verify(browser, token_1, answer_1)) == "/security-info/?done=added"


def test_a_registration_answer_for_another_sessions_challenge_is_refused(
    make_browser: Callable[..., Browser],
) -> None:
    alice, bob = make_browser(), make_browser()
    _enrolled(alice, "alice")
    _enrolled(bob, "bob")
    options_of_alice, _ = _options(alice)
    _, bobs_token = _options(bob)
    # Bob's session answers with a key made for alice's challenge (and her user handle).
    r = _verify(bob, bobs_token, SoftAuthenticator().create(options_of_alice, origin=ORIGIN))
    assert r.status_code == 400
    assert _keys(bob, "bob") == [] and _keys(alice, "alice") == []


def test_an_assertion_for_one_session_is_refused_in_another(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser()
    _enrolled(browser)
    auth = SoftAuthenticator()
    _add_key(browser, auth)
    browser.clock.advance(60)
    # Session 1 fetches a challenge and keeps its answer.
    mfa1, _, _, assertion = _mfa_with_key_no_post(browser, auth)
    # Session 2 (a new browser of alice's) posts session 1's answer: not its challenge.
    other = Browser(browser.reg, browser.host, browser.clock)
    other.login("alice")
    mfa2 = location(other.authorize())
    page = other.get_json(mfa2).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    other.post_json(mfa2, {**form, "action": "start"})
    r = other.post_json(mfa2, {**form, "action": "verify", "credential": assertion})
    assert r.status_code == 400 and browser.host.codes == {}
    [failed] = browser.reg.store.list_audit(user_id="alice", event_prefix="mfa.failed", limit=5)
    assert failed.detail["reason"] == "challenge"
    # Session 1 still holds its own challenge: its answer passes there.
    token = browser.get_json(mfa1).get_json()["csrf_token"]
    r = browser.post_json(
        mfa1,
        {"action": "verify", "method_id": page["method"]["id"], "credential": assertion}
        | {"csrf_token": token},
    )
    assert r.status_code == 303


def _mfa_with_key_no_post(
    browser: Browser, auth: SoftAuthenticator, origin: str = ORIGIN, **kw: Any
) -> tuple[str, str, str, Any]:
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    token, method_id = page["csrf_token"], page["method"]["id"]
    started = browser.post_json(
        mfa, {"action": "start", "method_id": method_id, "csrf_token": token}
    )
    return mfa, token, method_id, auth.get(started.get_json()["challenge"], origin=origin, **kw)


def test_a_registration_challenge_answered_at_the_mfa_step_is_refused(browser: Browser) -> None:
    _enrolled(browser)
    auth = SoftAuthenticator()
    _add_key(browser, auth)
    registration_options, _ = _options(browser)  # a registration challenge of this session
    browser.clock.advance(60)
    browser.login("alice")
    mfa = location(browser.authorize())
    page = browser.get_json(mfa).get_json()
    form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    browser.post_json(mfa, {**form, "action": "start"})
    # An assertion signed over the registration challenge, as a sign-in answer.
    challenge = registration_options["publicKey"]["challenge"]
    started = {"publicKey": {"challenge": challenge, "rpId": "localhost"}}
    assertion = auth.get(started, origin=ORIGIN)
    r = browser.post_json(mfa, {**form, "action": "verify", "credential": assertion})
    assert r.status_code == 400 and browser.host.codes == {}


# -- cases 39, 40, 42, 44: altered and malformed registrations -------------------------------------


def _mangle(response: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(response))
    out["response"][field] = value
    return out


def _att(response: dict[str, Any]) -> bytes:
    return websafe_decode(response["response"]["attestationObject"])


ALTERED = [
    pytest.param({"origin": "https://localhost:5000"}, id="origin with another scheme"),
    pytest.param({"origin": "http://evil.localhost:5000"}, id="origin of a sibling host"),
    pytest.param({"origin": "http://localhost:5001"}, id="origin with another port"),
    pytest.param({"type_": "webauthn.get"}, id="type webauthn.get"),
    pytest.param({"challenge": websafe_encode(b"x" * 32)}, id="another challenge"),
    pytest.param({"client_extra": {"crossOrigin": True}}, id="crossOrigin true"),
    pytest.param({"client_extra": {"topOrigin": "http://evil.test"}}, id="a topOrigin"),
    pytest.param({"rp_id": "evil.test"}, id="rpIdHash of another RP"),
    pytest.param({"flags": UV | AT}, id="UP=0"),
    pytest.param({"flags": UP | UV | BS | AT}, id="BS=1 with BE=0"),
    pytest.param({"credential_id": b"c" * 1024}, id="credential id of 1024 bytes"),
    pytest.param({"curve": "p384"}, id="an algorithm that was not offered"),
    pytest.param({"fmt": "made-up"}, id="unknown attestation format"),
    pytest.param({"att_stmt": {"x": b"\0" * 40_000}}, id="huge attStmt"),
]

MALFORMED = [
    pytest.param(lambda r: "{not json", id="not JSON"),
    pytest.param(lambda r: ["a", "list"], id="a JSON list"),
    pytest.param(
        lambda r: _mangle(r, "attestationObject", websafe_encode(b"\xa3\x63fmt")),
        id="malformed CBOR",
    ),
    pytest.param(
        lambda r: _mangle(r, "attestationObject", websafe_encode(_att(r)[:-20])),
        id="truncated authData",
    ),
    pytest.param(lambda r: _mangle(r, "clientDataJSON", "!!"), id="bad base64url"),
]


@pytest.mark.parametrize("alteration", ALTERED)
def test_an_altered_registration_is_a_400_and_stores_nothing(
    browser: Browser, alteration: dict[str, Any]
) -> None:
    _enrolled(browser)
    options, token = _options(browser)
    response = SoftAuthenticator().create(
        options, origin=alteration.pop("origin", ORIGIN), **alteration
    )
    r = _verify(browser, token, response)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["errors"]["credential"]
    assert _keys(browser) == []
    # The same session then registers a good key (a new challenge): the refusal was the alteration.
    options, token = _options(browser)
    good = _verify(browser, token, SoftAuthenticator().create(options, origin=ORIGIN))
    assert location(good) == "/security-info/?done=added"


@pytest.mark.parametrize("mangle", MALFORMED)
def test_a_malformed_registration_is_a_400_not_a_500(browser: Browser, mangle: Any) -> None:
    _enrolled(browser)
    options, token = _options(browser)
    response = mangle(SoftAuthenticator().create(options, origin=ORIGIN))
    r = _verify(browser, token, response)
    assert r.status_code == 400, r.get_data(as_text=True)
    assert r.get_json()["errors"]["credential"]
    assert _keys(browser) == []


def test_a_huge_registration_body_is_a_413_and_stores_nothing(browser: Browser) -> None:
    _enrolled(browser)
    _, token = _options(browser)
    r = _verify(browser, token, "x" * 200_000)
    assert r.status_code == 413 and _keys(browser) == []


def test_uv_required_but_not_given_is_refused_through_the_pages(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(methods={"webauthn": {"user_verification": "required"}})
    _enrolled(browser)
    options, token = _options(browser)
    assert options["publicKey"]["authenticatorSelection"]["userVerification"] == "required"
    r = _verify(
        browser, token, SoftAuthenticator(user_verified=False).create(options, origin=ORIGIN)
    )
    assert r.status_code == 400 and _keys(browser) == []


# -- cases 39, 40, 45: altered assertions at the MFA step ------------------------------------------

ALTERED_ASSERTIONS = [
    pytest.param({"origin": "http://localhost:5000.evil.test"}, id="origin with a suffix"),
    pytest.param({"origin": "http://sub.localhost:5000"}, id="origin of a subdomain"),
    pytest.param({"type_": "webauthn.create"}, id="type webauthn.create"),
    pytest.param({"client_extra": {"crossOrigin": True}}, id="crossOrigin true"),
    pytest.param({"rp_id": "evil.test"}, id="rpIdHash of another RP"),
    pytest.param({"flags": UV}, id="UP=0"),
    pytest.param({"flags": UP | UV | BS}, id="BS=1 with BE=0"),
    pytest.param({"user_handle": b"b" * 32}, id="another user's handle"),
]


@pytest.mark.parametrize("alteration", ALTERED_ASSERTIONS)
def test_an_altered_assertion_issues_no_code_and_moves_no_counter(
    browser: Browser, alteration: dict[str, Any]
) -> None:
    _enrolled(browser)
    auth = SoftAuthenticator()
    _add_key(browser, auth)
    browser.clock.advance(60)
    origin = alteration.pop("origin", ORIGIN)
    mfa, token, method_id, assertion = _mfa_with_key_no_post(browser, auth, origin, **alteration)
    form = {"action": "verify", "method_id": method_id, "csrf_token": token}
    r = browser.post_json(mfa, {**form, "credential": assertion})
    assert r.status_code == 400
    assert browser.host.codes == {}
    assert _keys(browser)[0].counter == 0
    [failed] = browser.reg.store.list_audit(user_id="alice", event_prefix="mfa.failed", limit=5)
    assert failed.detail["kind"] == "webauthn"


def test_a_sign_in_challenge_expires(browser: Browser) -> None:
    _enrolled(browser)
    auth = SoftAuthenticator()
    _add_key(browser, auth)
    browser.clock.advance(60)
    mfa, token, method_id, assertion = _mfa_with_key_no_post(browser, auth)
    ttl = browser.reg.config.webauthn.challenge_ttl
    browser.clock.advance(ttl + 1)
    form = {"action": "verify", "method_id": method_id, "csrf_token": token}
    r = browser.post_json(mfa, {**form, "credential": assertion})
    assert r.status_code == 400 and browser.host.codes == {}
    assert r.get_json()["errors"]["code"] == "This request expired. Start again."
    assert _keys(browser)[0].counter == 0
