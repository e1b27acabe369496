"""Security keys in real headless Chromium with a CDP virtual authenticator (RECIPES.md).

The plain WSGI example host with the middleware is served on ``http://localhost:PORT`` (the RP id
must equal the host). One browser context walks: first sign-in registers an authenticator app in
the wizard -> manage mode adds a security key through webauthn.js -> sign out -> sign in again and
pass MFA with the key -> the authenticator stops verifying the user -> the UV-required ceremony
fails and no code is issued.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pyotp
import pytest
from plain_wsgi_host import DictDirectory, Host, make_app  # examples/ is on pytest's pythonpath
from werkzeug.serving import make_server

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.sqlite import SqliteStore

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium"),
]


class Served:
    def __init__(self, url: str, host: Host, store: SqliteStore) -> None:
        self.url, self.host, self.store = url, host, store


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    apps: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda e, s: apps[0](e, s), threaded=True)
    try:
        yield from _serve(server, apps, tmp_path)
    finally:
        server.server_close()


def _serve(server: Any, apps: list[Any], tmp_path: Path) -> Iterator[Served]:
    url = f"http://localhost:{server.server_port}"
    config = parse_config(
        {
            "general": {"organization": "Test Org", "environment": "development"},
            "web": {"secure_cookies": False},
            "secrets": {"encryption_keys": [generate_key()]},
            "storage": {"sqlite": {"path": str(tmp_path / "reg.sqlite3")}},
            # The wizard's first proposal is then the authenticator app (codes are easy here).
            "policies": {
                "mfa_registration": {"enforced": True},
                "methods": {"push": {"enabled": False}},
            },
            "methods": {"webauthn": {"origins": [url], "user_verification": "required"}},
        }
    )
    clock = SystemClock()
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(config, DictDirectory(), store=store, clock=clock)
    # The toy host's "relying party" is a page of this same server (any other path answers).
    host.redirect_uri = f"{url}/cb"
    apps.append(reg)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(url, host, store)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        store.close()


@pytest.fixture
def page(served: Served, chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def _sign_in(page: Any, served: Served) -> None:
    page.goto(f"{served.url}/login?next=/authorize%3Fclient_id%3Ddemo%26state%3Ds1")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password")
    page.click("button")


def _code(page: Any, served: Served, selector: str) -> str:
    """Click, follow the sign-in back through /authorize to the toy RP page; the code it got."""
    rp = served.host.redirect_uri
    with page.expect_request(lambda r: r.url.startswith(rp)) as request:
        page.click(selector)
    page.wait_for_url(f"{rp}**")  # let that navigation finish before the next one starts
    return parse_qs(urlsplit(request.value.url).query)["code"][0]


def test_register_a_key_then_sign_in_with_it_and_uv_is_enforced(page: Any, served: Served) -> None:
    # First sign-in: the wizard registers an authenticator app (MFA is then fresh).
    _sign_in(page, served)
    page.wait_for_url("**/security-info/wizard*")
    page.click("button[value=next]")
    secret = (page.text_content("code.secret") or "").replace(" ", "").strip()
    page.click("button[value=next]")
    page.fill("#code", pyotp.TOTP(secret).now())
    page.click("button[value=verify]")
    page.get_by_text("was successfully registered").wait_for()
    page.click("button[value=next]")
    page.get_by_text("Success!").wait_for()
    _code(page, served, "button[value=finish]")

    # Manage mode: add a security key through webauthn.js and the virtual authenticator.
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable", {"enableUI": False})
    authenticator = cdp.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "usb",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )["authenticatorId"]
    page.goto(f"{served.url}/security-info/add/webauthn")
    page.fill("#name", "Virtual key")
    page.click("form[data-webauthn=register] button")
    page.wait_for_url("**/security-info/?done=added")
    assert "Virtual key" in page.inner_text("main")
    [key] = [m for m in served.store.list_methods("alice") if m.kind is MethodKind.WEBAUTHN]
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert len(held) == 1 and held[0]["isResidentCredential"] is True

    # Sign out, sign in again, pass MFA with the key.
    page.goto(f"{served.url}/logout")
    _sign_in(page, served)
    page.wait_for_url("**/security-info/mfa*")
    code = _code(page, served, "form[data-webauthn=get] button")
    assert set(served.host.codes[code]["amr"]) == {"pwd", "hwk", "user", "mfa"}
    [used] = [m for m in served.store.list_methods("alice") if m.id == key.id]
    assert used.counter > key.counter  # the sign counter advanced

    # The authenticator no longer verifies the user: the UV-required ceremony fails.
    issued = len(served.host.codes)
    cdp.send(
        "WebAuthn.setUserVerified", {"authenticatorId": authenticator, "isUserVerified": False}
    )
    page.goto(f"{served.url}/logout")
    _sign_in(page, served)
    page.wait_for_url("**/security-info/mfa*")
    page.click("form[data-webauthn=get] button")
    status = page.locator("#webauthn-status")
    status.wait_for(state="visible")
    assert "was not used" in status.inner_text()
    assert "/security-info/mfa" in page.url
    assert len(served.host.codes) == issued
    failures = served.store.list_audit(user_id="alice", event_prefix="mfa.failed", limit=5)
    assert failures == []  # the browser refused: nothing was even posted
