"""WebAuthn across two browsers (SECURITY.md cases 41 and 45): real Chromium, two browser contexts,
each with its own CDP virtual authenticator (RECIPES.md), against the plain WSGI example host.

* A challenge is bound to the session that asked for it: alice's passkey, synced into a second
  browser, answers a challenge fetched in the first browser from the second browser's sign-in ->
  refused, no code; the same key then passes with the second session's own challenge.
* Registration options fetched in alice's browser, answered by bob's browser and posted to bob's
  session -> refused, nothing stored; alice's own challenge still registers her key.
* Another person's authenticator cannot answer for alice: a second browser whose authenticator holds
  only bob's passkey signs in with alice's password; the browser finds no credential for alice's
  challenge, and an assertion forced from bob's discoverable passkey (his ``userHandle``, his
  credential id), posted by hand to alice's MFA step -> refused, no code, audited.

The single-session cases (replay, counter, ceremony, altered client data) are in
tests/web/test_web_webauthn.py and tests/core/test_webauthn.py.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from typing import Any

import pyotp
import pytest
from test_browser_webauthn import Served, served  # noqa: F401  (the served host fixture)

from oidc_combinedreg.methods.kinds import MethodKind

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium"),
]

AUTHENTICATOR = {
    "protocol": "ctap2",
    "transport": "usb",
    "hasResidentKey": True,
    "hasUserVerification": True,
    "isUserVerified": True,
    "automaticPresenceSimulation": True,
}

#: POST the MFA step's "start" through its JSON twin, as webauthn.js does: the request options
JS_START = """async () => {
  const form = document.querySelector('form[data-webauthn=get]');
  const r = await fetch(location.href, {method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
    body: JSON.stringify({action: 'start', method_id: form.elements.method_id.value,
                          csrf_token: form.elements.csrf_token.value})});
  return {status: r.status, body: await r.json()};
}"""

#: this browser's authenticator answers the given request options: the credential's JSON
JS_GET = """async (pk) => {
  const cred = await navigator.credentials.get(
    {publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(pk)});
  return cred.toJSON();
}"""

#: POST an answer to this page's MFA step; 0 = a redirect (accepted), else the status
JS_VERIFY = """async (credential) => {
  const form = document.querySelector('form[data-webauthn=get]');
  const r = await fetch(location.href, {method: 'POST', credentials: 'same-origin',
    redirect: 'manual',
    headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
    body: JSON.stringify({action: 'verify', method_id: form.elements.method_id.value,
                          csrf_token: form.elements.csrf_token.value, credential})});
  return r.status;
}"""


class Tab:
    """One browser context (its own cookies, its own virtual authenticator) with one page."""

    def __init__(self, browser: Any, srv: Served) -> None:
        self.served = srv
        self.context = browser.new_context()
        self.page = self.context.new_page()
        self.page.set_default_timeout(15_000)
        self.cdp = self.context.new_cdp_session(self.page)
        self.cdp.send("WebAuthn.enable", {"enableUI": False})
        self.authenticator = self.cdp.send(
            "WebAuthn.addVirtualAuthenticator", {"options": AUTHENTICATOR}
        )["authenticatorId"]

    def credentials(self) -> list[dict[str, Any]]:
        found = self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator})
        return list(found["credentials"])

    def sign_in(self, user: str) -> None:
        self.page.goto(f"{self.served.url}/logout")
        self.page.goto(f"{self.served.url}/login?next=/authorize%3Fclient_id%3Ddemo%26state%3Ds1")
        self.page.fill("input[name=username]", user)
        self.page.fill("input[name=password]", f"{user}-password")
        self.page.click("button")
        self.page.wait_for_url("**/security-info/mfa*")

    def pass_mfa_with_app(self, secret: str) -> None:
        self.page.fill("#code", pyotp.TOTP(secret).now())
        rp = self.served.host.redirect_uri
        self.page.click("button[value=verify]")
        self.page.wait_for_url(f"{rp}**")

    def add_key(self, name: str) -> None:
        self.page.goto(f"{self.served.url}/security-info/add/webauthn")
        self.page.fill("#name", name)
        self.page.click("form[data-webauthn=register] button")
        self.page.wait_for_url("**/security-info/?done=added")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def tabs(served: Served, chromium_browser: Any) -> Iterator[tuple[Tab, Tab]]:  # noqa: F811
    first, second = Tab(chromium_browser, served), Tab(chromium_browser, served)
    yield first, second
    first.close()
    second.close()


def _seed_app(srv: Served, user: str) -> str:
    """An authenticator app for ``user`` through the service (the wizard has its own tests)."""
    reg = srv.host.reg
    assert reg is not None
    setup, state = reg.info.totp.register_begin(user, user, None)
    # The previous step's code (accepted: one step of drift), so the current one stays unused
    # for the MFA step that follows.
    code = pyotp.TOTP(setup.secret).at(reg.clock.now() - 30)
    reg.info.totp.register_complete(user, state, code, label="Phone", ip=None)
    return setup.secret


def _keys(srv: Served, user: str) -> list[Any]:
    return [m for m in srv.store.list_methods(user) if m.kind is MethodKind.WEBAUTHN]


def test_a_challenge_fetched_in_one_browser_is_refused_from_another(
    served: Served,  # noqa: F811
    tabs: tuple[Tab, Tab],
) -> None:
    first, second = tabs
    secret = _seed_app(served, "alice")
    first.sign_in("alice")
    first.pass_mfa_with_app(secret)
    first.add_key("Alice's passkey")
    [held] = first.credentials()
    assert held["isResidentCredential"] is True
    # The same passkey, synced to alice's second browser (its private key copied).
    second.cdp.send(
        "WebAuthn.addCredential", {"authenticatorId": second.authenticator, "credential": held}
    )

    first.sign_in("alice")  # the key is now offered first
    started = first.page.evaluate(JS_START)
    assert started["status"] == 200, started
    options_of_first = started["body"]["challenge"]["publicKey"]

    second.sign_in("alice")
    issued = len(served.host.codes)
    # The second browser's authenticator signs the FIRST session's challenge (a valid signature
    # by alice's own key), posted to the second session's MFA step: not its challenge.
    answer = second.page.evaluate(JS_GET, options_of_first)
    assert second.page.evaluate(JS_VERIFY, answer) == 400
    assert len(served.host.codes) == issued
    assert "/security-info/mfa" in second.page.url
    failed = served.store.list_audit(user_id="alice", event_prefix="mfa.failed", limit=5)
    assert [(f.detail["kind"], f.detail["reason"]) for f in failed] == [("webauthn", "challenge")]

    # The same browser and key with its own session's challenge: accepted (the refusal was the
    # challenge's binding, not the key).
    second.page.reload()
    rp = served.host.redirect_uri
    with second.page.expect_request(lambda r: r.url.startswith(rp)):
        second.page.click("form[data-webauthn=get] button")
    assert len(served.host.codes) == issued + 1


def test_another_persons_authenticator_cannot_answer_for_alice(
    served: Served,  # noqa: F811
    tabs: tuple[Tab, Tab],
) -> None:
    alice_tab, mallory_tab = tabs
    alice_secret = _seed_app(served, "alice")
    alice_tab.sign_in("alice")
    alice_tab.pass_mfa_with_app(alice_secret)
    alice_tab.add_key("Alice's key")
    [alice_key] = _keys(served, "alice")

    # Mallory (here: bob, a real user of the same IdP) has his own passkey in his own browser.
    bob_secret = _seed_app(served, "bob")
    mallory_tab.sign_in("bob")
    mallory_tab.pass_mfa_with_app(bob_secret)
    mallory_tab.add_key("Bob's key")
    [bob_key] = _keys(served, "bob")
    [bobs_credential] = mallory_tab.credentials()

    # Mallory knows alice's password: the sign-in stops at alice's MFA step (her key first).
    mallory_tab.sign_in("alice")
    issued = len(served.host.codes)
    counters = {k.id: k.counter for k in (alice_key, bob_key)}

    # 1. The page's own button: the browser finds no credential of alice's and posts nothing.
    mallory_tab.page.click("form[data-webauthn=get] button")
    status = mallory_tab.page.locator("#webauthn-status")
    status.wait_for(state="visible")
    assert "was not used" in status.inner_text()

    # 2. Forced: alice's challenge answered by bob's discoverable passkey (allowCredentials
    #    emptied), posted by hand. The assertion is valid for bob, with bob's userHandle.
    started = mallory_tab.page.evaluate(JS_START)
    options = dict(started["body"]["challenge"]["publicKey"])
    options["allowCredentials"] = []
    answer = mallory_tab.page.evaluate(JS_GET, options)
    assert answer["id"] == bobs_credential["credentialId"].rstrip("=").replace("+", "-").replace(
        "/", "_"
    )
    assert answer["response"]["userHandle"]  # bob's handle, not alice's
    assert mallory_tab.page.evaluate(JS_VERIFY, answer) == 400

    assert len(served.host.codes) == issued
    assert {k.id: k.counter for k in _keys(served, "alice") + _keys(served, "bob")} == counters
    failures = served.store.list_audit(user_id="alice", event_prefix="mfa.failed", limit=5)
    # The forced post was seen and refused: bob's credential is not alice's.
    assert [(f.detail["kind"], f.detail["reason"]) for f in failures] == [
        ("webauthn", "unknown_credential")
    ]


#: on the add-a-key page: POST "options" (or "verify" with a credential) through the JSON twin
JS_ADD = """async ([action, credential]) => {
  const form = document.querySelector('form[data-webauthn=register]');
  const body = {action, name: 'Key', csrf_token: form.elements.csrf_token.value};
  if (credential) { body.credential = credential; }
  const r = await fetch(location.href, {method: 'POST', credentials: 'same-origin',
    redirect: 'manual',
    headers: {'Content-Type': 'application/json', 'Accept': 'application/json'},
    body: JSON.stringify(body)});
  return {status: r.status, body: r.type === 'opaqueredirect' ? null : await r.json()};
}"""

#: this browser's authenticator answers the given creation options: the credential's JSON
JS_CREATE = """async (pk) => {
  const cred = await navigator.credentials.create(
    {publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(pk)});
  return cred.toJSON();
}"""


def test_registration_options_of_one_browser_are_refused_in_another(
    served: Served,  # noqa: F811
    tabs: tuple[Tab, Tab],
) -> None:
    alice_tab, bob_tab = tabs
    alice_secret, bob_secret = _seed_app(served, "alice"), _seed_app(served, "bob")
    alice_tab.sign_in("alice")
    alice_tab.pass_mfa_with_app(alice_secret)
    bob_tab.sign_in("bob")
    bob_tab.pass_mfa_with_app(bob_secret)
    for tab in tabs:
        tab.page.goto(f"{served.url}/security-info/add/webauthn")

    # Alice's browser asks for creation options (her user handle, her session's challenge) ...
    alices = alice_tab.page.evaluate(JS_ADD, ["options", None])
    assert alices["status"] == 200, alices
    # ... bob's browser makes a key with them and posts it to his own session.
    bob_tab.page.evaluate(JS_ADD, ["options", None])  # his session has its own challenge
    made = bob_tab.page.evaluate(JS_CREATE, alices["body"]["options"]["publicKey"])
    refused = bob_tab.page.evaluate(JS_ADD, ["verify", made])
    assert refused["status"] == 400, refused
    assert _keys(served, "alice") == [] and _keys(served, "bob") == []
    # Alice's own challenge was untouched: her browser registers a key with it.
    mine = alice_tab.page.evaluate(JS_CREATE, alices["body"]["options"]["publicKey"])
    assert alice_tab.page.evaluate(JS_ADD, ["verify", mine])["status"] == 0  # a redirect: added
    assert len(_keys(served, "alice")) == 1 and _keys(served, "bob") == []
