"""The newcomer's story of issue 2 in a real headless Chromium, clicking through the HTML pages.

1. /demo -> Sign in -> admin's password -> the wizard proposes the demo's authenticator web app;
   "I want to set up a different method" -> an authenticator app (the secret read from "Can't scan
   the image?") -> security questions (the demo's password reset takes two methods) -> Done -> back
   at the demo RP, which shows the verified claims with amr pwd + otp + mfa.
2. A relying party on another origin: the last redirect (through /authorize to the RP) is a
   cross-origin hop after a form submission, which a too-strict CSP once blocked in real browsers.
3. The demo's web app (issue 20) on a desktop: alice opens it from the wizard with "Open the app on
   this device", a second window of the same browser; it enrolls, she approves the try-out with
   the number, answers her questions, and at her next sign-in approves in the app again.
"""

from __future__ import annotations

import json
import re
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pyotp
import pytest
import requests
from playwright.sync_api import Browser, Page
from werkzeug.serving import make_server

from example_idp import create_app
from oidc_combinedreg.methods.questions import DEFAULT_QUESTIONS

pytestmark = pytest.mark.e2e

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


@pytest.fixture(scope="module")
def own_idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An example IdP of this module's own: its demo users start with no methods whatever other
    modules did with the shared one."""
    root = tmp_path_factory.mktemp("demo-idp")
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", root / "combinedreg.toml")
    apps: list[Any] = []
    httpd = make_server("127.0.0.1", 0, lambda e, s: apps[0](e, s), threaded=True)
    url = f"http://localhost:{httpd.server_port}"
    apps.append(create_app(instance_path=root / "instance", issuer=url, combinedreg_config=config))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(url=url)
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()


@pytest.fixture
def chromium(chromium_browser: Browser) -> Browser:
    return chromium_browser  # one Chromium for the whole session (tests/e2e/conftest.py)


def _login(page: Page, user: str) -> None:
    page.fill("input[name=username]", user)
    page.fill("input[name=password]", user)
    page.get_by_role("button", name=re.compile("^Sign in$", re.I)).click()
    page.wait_for_url(re.compile(r".*/security-info/wizard\?c=.*"))


ANSWERS = ("amsterdam harbour", "blue bicycle", "grandma rosa")
#: the questions the form preselects: the first three the product ships
QUESTIONS = DEFAULT_QUESTIONS[:3]


def _choose_another_method(page: Page, name: str) -> None:
    page.get_by_role("link", name="I want to set up a different method").click()
    page.get_by_role("radio", name=name, exact=True).check()
    page.get_by_role("button", name="Confirm").click()


def _answer_questions(page: Page) -> None:
    """The security questions step: the preselected questions, an answer to each, "Done"."""
    assert "Choose and answer 3 questions" in page.content()
    for i, answer in enumerate(ANSWERS):
        page.fill(f"#answer{i}", answer)
    page.get_by_role("button", name="Done").click()
    assert "successfully registered" in page.content()
    page.get_by_role("button", name="Next").click()


def _finish(page: Page) -> None:
    assert "Success!" in page.content()
    page.get_by_role("button", name="Done").click()
    try:
        page.wait_for_url(re.compile(r"^(?!.*/security-info/).*$"), timeout=10000)
    except Exception as exc:
        heads = re.findall(r"<h[12][^>]*>(.*?)</h[12]>", page.content())
        raise AssertionError(f"stuck at {page.url}: {heads}") from exc


def _register_app_through_the_wizard(page: Page, *, questions: bool) -> str:
    # The demo proposes its own web app first; these visitors pick an app of their own.
    assert "On your phone, install Contoso (demo) Authenticator" in page.content()
    _choose_another_method(page, "Authenticator app")
    assert "Start by getting the app" in page.content()
    page.get_by_role("button", name="Next").click()
    page.get_by_text("Can't scan the image?").click()
    secret = page.locator("code.secret").inner_text().strip()
    page.get_by_role("button", name="Next").click()
    page.fill("#code", pyotp.TOTP(secret).now())
    page.get_by_role("button", name="Next").click()
    assert "successfully registered" in page.content()
    page.get_by_role("button", name="Next").click()
    if questions:  # a password reset takes two methods: the questions are the second
        _answer_questions(page)
    _finish(page)
    return secret


def test_demo_sign_in_registers_an_app_and_shows_mfa_claims(
    chromium: Browser, own_idp: Any
) -> None:
    context = chromium.new_context()
    page = context.new_page()
    page.goto(f"{own_idp.url}/demo")
    page.get_by_role("button", name="Sign in").click()
    _login(page, "admin")
    _register_app_through_the_wizard(page, questions=True)
    assert page.url == f"{own_idp.url}/demo"
    claims = {
        row.locator("th").inner_text(): json.loads(row.locator("td").inner_text())
        for row in page.locator("table tr").all()
    }
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])
    assert claims["acr"] == "urn:combinedreg:acr:mfa"
    assert claims["sub"] == "admin"
    context.close()


class _Callback(BaseHTTPRequestHandler):
    received: list[dict[str, list[str]]] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        if urlsplit(self.path).path == "/cb":  # not /favicon.ico
            _Callback.received.append(parse_qs(urlsplit(self.path).query))
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        self.wfile.write(b"relying party got the code")

    def log_message(self, *args: Any) -> None:
        pass


def test_the_code_reaches_a_relying_party_on_another_origin(
    chromium: Browser, own_idp: Any
) -> None:
    rp = ThreadingHTTPServer(("127.0.0.1", 0), _Callback)
    threading.Thread(target=rp.serve_forever, daemon=True).start()
    redirect_uri = f"http://127.0.0.1:{rp.server_port}/cb"
    try:
        reg = requests.post(
            f"{own_idp.url}/register",
            json={
                "redirect_uris": [redirect_uri],
                "token_endpoint_auth_method": "client_secret_basic",
            },
            timeout=10,
        ).json()
        query = urlencode(
            {
                "client_id": reg["client_id"],
                "response_type": "code",
                "scope": "openid",
                "redirect_uri": redirect_uri,
                "state": "xyz",
                "nonce": "n-1",
                "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
                "code_challenge_method": "S256",
            }
        )
        context = chromium.new_context()
        page = context.new_page()
        page.goto(f"{own_idp.url}/authorize?{query}")
        _login(page, "frank")  # MFA only (Conditional Access): no password reset part
        _register_app_through_the_wizard(page, questions=False)
        assert re.match(rf"http://127\.0\.0\.1:{rp.server_port}/cb\?", page.url), page.url
        assert "relying party got the code" in page.content()
        assert _Callback.received[-1]["state"] == ["xyz"]
        assert _Callback.received[-1]["code"][0]
        context.close()
    finally:
        rp.shutdown()
        rp.server_close()


def _claims(page: Page) -> dict[str, Any]:
    return {
        row.locator("th").inner_text(): json.loads(row.locator("td").inner_text())
        for row in page.locator("table tr").all()
    }


def _approve_in_the_app(page: Page, app: Page) -> None:
    """The sign-in page shows a number; the app shows the request and takes that number."""
    page.get_by_role("button", name="Send notification").click()
    number = page.locator(".push-number").inner_text().strip()
    card = app.locator("form.request:not([data-result])")
    card.wait_for()  # the app's poll found the request
    card.get_by_label("Enter the number shown on the sign-in screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    app.locator("form.request[data-result=approved]").first.wait_for()


def test_the_web_app_in_a_second_window_registers_push_and_approves_the_next_sign_in(
    chromium: Browser, own_idp: Any
) -> None:
    context = chromium.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{own_idp.url}/demo")
    page.get_by_role("button", name="Sign in").click()
    _login(page, "alice")
    assert "On your phone, install Contoso (demo) Authenticator" in page.content()
    page.get_by_role("button", name="Next").click()
    # No phone at hand: the app opens in another window of this browser (same context).
    with context.expect_page() as opened:
        page.get_by_role("link", name="Open the app on this device").click()
    app = opened.value
    app.set_default_timeout(15_000)
    assert app.url.startswith(f"{own_idp.url}/security-info/app/")
    app.get_by_text("alice").first.wait_for()  # the account it is about to add
    app.get_by_role("button", name="Add account").first.click()
    # The app's first start in a fresh window installs its service worker and makes the key:
    # seconds on a loaded 2-core machine (a full make test timed out once at the default 10 s).
    app.locator("article.account").wait_for(timeout=30_000)
    # The wizard saw the device arrive and asks to try it: approve with the number.
    page.wait_for_url("**/security-info/mfa*")
    _approve_in_the_app(page, app)
    page.wait_for_url("**/security-info/wizard*")
    assert "successfully registered" in page.content()
    page.get_by_role("button", name="Next").click()
    _answer_questions(page)  # the second method for a password reset
    summary = page.content()
    assert "Authenticator app (notification)" in summary and "Security questions" in summary
    _finish(page)
    assert page.url == f"{own_idp.url}/demo"
    assert {"pwd", "swk", "mfa"} <= set(_claims(page)["amr"])

    # Signed out, then in again: the password, then a request the app approves.
    page.get_by_role("link", name="Sign out").click()
    page.goto(f"{own_idp.url}/demo")
    page.get_by_role("checkbox", name=re.compile("Ask for the password again")).check()
    page.get_by_role("button", name="Sign in").click()
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice")
    page.get_by_role("button", name=re.compile("^Sign in$", re.I)).click()
    page.wait_for_url("**/security-info/mfa*")
    with page.expect_navigation(url=f"{own_idp.url}/demo"):
        _approve_in_the_app(page, app)
    claims = _claims(page)
    assert {"pwd", "swk", "mfa"} <= set(claims["amr"]) and "otp" not in claims["amr"]
    assert claims["sub"] == "alice"

    # She forgot her password: a reset takes two methods, the code the app shows and her
    # answers (README, the alice row).
    page.get_by_role("link", name="Sign out").click()
    page.goto(f"{own_idp.url}/demo")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("link", name="Forgot your password?").click()
    page.fill("#account", "alice")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Enter a code from my authenticator app").check()
    page.get_by_role("button", name="Next").click()
    app.wait_for_function("document.querySelector('output.code').textContent.length === 6")
    page.fill("#code", app.locator("output.code").first.inner_text())
    page.get_by_role("button", name="Verify").click()
    page.get_by_label("Answer my security questions").check()
    page.get_by_role("button", name="Next").click()
    for i in range(page.locator("input[id^=answer]").count()):
        asked = page.locator(f"label[for=answer{i}]").inner_text().strip()
        page.fill(f"#answer{i}", dict(zip(QUESTIONS, ANSWERS, strict=True))[asked])
    page.get_by_role("button", name="Verify").click()
    page.fill("#password", "a new and long pass phrase 42")
    page.fill("#confirm", "a new and long pass phrase 42")
    page.get_by_role("button", name="Reset password").click()
    assert page.locator("h1").inner_text() == "Your password was changed"
    context.close()
