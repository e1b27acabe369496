"""The authenticator web app through the example IdP and a real OIDC client (``oic``): the ID
token's ``amr`` after a push approval in the app (issue 20.2).

Its own example IdP (the demo's config: ``[methods.push] web_app = true``, the wizard proposing
push first), served on ``http://localhost:PORT``; the desktop and the phone are
two Chromium contexts. grace (the MFA registration policy alone) registers the app in the wizard
with the QR code's link and approves the try-out with the number: the first ID token says pwd,
swk and mfa; at the next sign-in a fresh approval gives swk and mfa again.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from flask import Flask
from oic.oic import Client
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from test_oidc_provider import LOGOUT_URI, REDIRECT_URI, Rp
from werkzeug.serving import make_server

from example_idp import create_app

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium"),
]
USER = "grace"
EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


@dataclass(frozen=True)
class IdpServer:  # as tests/e2e/conftest.py's (importing "conftest" is ambiguous across dirs)
    url: str
    app: Flask
    instance_path: Path


@pytest.fixture(scope="module")
def web_app_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdpServer]:
    root = tmp_path_factory.mktemp("example-idp-web-app")
    # The demo's own config: it serves the web app and proposes push first.
    text = (EXAMPLE_IDP / "combinedreg.toml").read_text()
    assert "[methods.push]\nweb_app = true\n" in text
    assert 'wizard_preference = ["push", ' in text
    config = root / "combinedreg.toml"
    config.write_text(text)
    apps: list[Flask] = []

    def dispatch(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return apps[0](environ, start_response)  # type: ignore[return-value]

    server = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://localhost:{server.server_port}"
    apps.append(create_app(instance_path=root / "instance", issuer=url, combinedreg_config=config))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield IdpServer(url=url, app=apps[0], instance_path=root / "instance")
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()


@pytest.fixture
def rp(web_app_idp: IdpServer) -> Rp:
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(web_app_idp.url)
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[LOGOUT_URI],
    )
    return Rp(idp=web_app_idp, client=client)


def _pages(browser: Any) -> Iterator[tuple[Any, Any]]:
    contexts = [browser.new_context(locale="en-US") for _ in range(2)]
    pages = []
    for context in contexts:
        page = context.new_page()
        page.set_default_timeout(15_000)
        pages.append(page)
    yield pages[0], pages[1]
    for context in contexts:
        context.close()


@pytest.fixture
def desktop_and_phone(chromium_browser: Any) -> Iterator[tuple[Any, Any]]:
    yield from _pages(chromium_browser)


def _sign_in(rp: Rp, desktop: Any, **extra: str) -> tuple[str, str | None]:
    url, state, verifier = rp.authorize_url(**extra)
    desktop.goto(url)
    desktop.fill("#username", USER)
    desktop.fill("#password", USER)
    desktop.get_by_role("button", name="Sign in", exact=True).click()
    return state, verifier


def _approve(desktop: Any, phone: Any) -> None:
    desktop.get_by_role("button", name="Send notification").click()
    number = desktop.locator(".push-number").inner_text().strip()
    card = phone.locator("form.request:not([data-result])")
    card.wait_for()
    card.get_by_label("Enter the number shown on the sign-in screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    phone.locator("form.request[data-result=approved]").first.wait_for()


def _moved(desktop: Any, callbacks: list[str], here: str) -> None:
    """Wait for the next page, or for the request to the relying party's callback (which has
    no server here, so its navigation fails and cannot be waited for)."""
    for _ in range(150):
        if callbacks:
            return
        if desktop.url != here:
            desktop.wait_for_load_state()
            return
        desktop.wait_for_timeout(100)
    raise AssertionError(f"still on {here}")


def _claims(rp: Rp, callbacks: list[str], state: str, verifier: str | None) -> dict[str, Any]:
    (url,) = callbacks
    callbacks.clear()
    query = parse_qs(urlsplit(url).query)
    return dict(rp.exchange(query, state, verifier)["id_token"])  # verified by oic (JWKS)


def test_the_id_token_says_swk_after_an_approval_in_the_web_app(
    rp: Rp, desktop_and_phone: tuple[Any, Any]
) -> None:
    desktop, phone = desktop_and_phone
    # The relying party is not on this machine: its callback URL is read from the request.
    callbacks: list[str] = []
    desktop.on(
        "request", lambda r: callbacks.append(r.url) if r.url.startswith(REDIRECT_URI) else None
    )
    # ... and answered by a stub in the browser: a navigation to it that failed (no such host)
    # ended late and interrupted the next sign-in's navigation now and then.
    desktop.route(
        REDIRECT_URI + "**", lambda route: route.fulfill(status=200, body="callback received")
    )
    state, verifier = _sign_in(rp, desktop)
    desktop.wait_for_url("**/security-info/wizard*")
    desktop.get_by_role("button", name="Next").click()
    link = (desktop.locator("code.secret").text_content() or "").strip()
    assert "/security-info/app/#enroll=" in link
    phone.goto(link)
    phone.get_by_role("button", name="Add account").first.click()
    phone.locator("article.account").wait_for()
    desktop.wait_for_url("**/security-info/mfa*")  # the desktop saw the device arrive
    _approve(desktop, phone)
    # The wizard reports the method and ends; "Done" returns to the relying party.
    _moved(desktop, callbacks, desktop.url)  # push.js saw the approval
    for _ in range(4):
        if callbacks:
            break
        here = desktop.url
        desktop.locator("main button[value=next], main button[value=finish]").first.click()
        _moved(desktop, callbacks, here)
    claims = _claims(rp, callbacks, state, verifier)
    assert {"pwd", "swk", "mfa"} <= set(claims["amr"]) and "otp" not in claims["amr"]
    # The redirect to the callback is a hop of a redirect chain, which the stub above does not
    # answer (Playwright routes a chain's first request only): its navigation fails, and must
    # have ended (Chromium's error page) before the next one starts, or it interrupts it.
    desktop.wait_for_url(lambda url: url.startswith(("chrome-error:", REDIRECT_URI)))
    # The next sign-in: a new approval in the app.
    state, verifier = _sign_in(rp, desktop, prompt="login")
    desktop.wait_for_url("**/security-info/mfa*")
    with desktop.expect_request(lambda r: r.url.startswith(REDIRECT_URI)):
        _approve(desktop, phone)
    claims = _claims(rp, callbacks, state, verifier)
    assert {"pwd", "swk", "mfa"} <= set(claims["amr"]) and "otp" not in claims["amr"]
