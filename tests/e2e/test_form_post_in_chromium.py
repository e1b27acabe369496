"""``response_mode=form_post`` (OAuth 2.0 Form Post Response Mode) in a real headless Chromium:
the IdP's page posts the code to a relying party on another origin by itself, under the pages'
Content-Security-Policy (``script-src 'self'``: a static script, no inline one), and without
JavaScript its button does the same."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

import pytest
import requests
from playwright.sync_api import Browser, Page

if TYPE_CHECKING:
    from conftest import IdpServer

pytestmark = pytest.mark.e2e

USER = "breakglass"  # a password sign-in, no MFA: the page under test comes right after it


class _Rp(BaseHTTPRequestHandler):
    posted: list[dict[str, list[str]]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        _Rp.posted.append(parse_qs(self.rfile.read(length).decode()))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"relying party got the form")

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def rp_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Rp)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/cb"
    finally:
        server.shutdown()
        server.server_close()


def _authorize_url(idp: IdpServer, redirect_uri: str, state: str) -> str:
    reg = requests.post(
        f"{idp.url}/register", json={"redirect_uris": [redirect_uri]}, timeout=10
    ).json()
    query = {"client_id": reg["client_id"], "response_type": "code", "scope": "openid",
             "redirect_uri": redirect_uri, "state": state, "nonce": "n-" + state,
             "response_mode": "form_post"}  # fmt: skip
    return f"{idp.url}/authorize?{urlencode(query)}"


def _sign_in(page: Page) -> None:
    page.fill("input[name=username]", USER)
    page.fill("input[name=password]", USER)
    page.get_by_role("button", name=re.compile("^Sign in$", re.I)).click()


@pytest.mark.parametrize("javascript", [True, False], ids=["script", "no script: the button"])
def test_form_post_reaches_the_relying_party(
    chromium_browser: Browser, idp_server: IdpServer, rp_url: str, javascript: bool
) -> None:
    state = f"fp-{javascript}"
    context = chromium_browser.new_context(java_script_enabled=javascript)
    page = context.new_page()
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if m.type == "error" else None)
    try:
        page.goto(_authorize_url(idp_server, rp_url, state))
        _sign_in(page)
        if not javascript:
            assert "Returning to the application" in page.content()
            page.get_by_role("button", name="Continue").click()
        page.wait_for_url(rp_url, timeout=10000)
        assert "relying party got the form" in page.content()
        posted = _Rp.posted[-1]
        assert posted["state"] == [state] and posted["code"][0]
        assert not [v for v in violations if "Content Security Policy" in v], violations
    finally:
        context.close()
