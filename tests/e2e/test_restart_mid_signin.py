"""The example IdP restarted in the middle of a sign-in (SECURITY.md case 15): a real gunicorn
process on the shipped SQLite config, stopped (gracefully, or killed with SIGKILL) after the
password and before the MFA step, and started again on the same port and instance folder.

Sessions, continuations and counters live in the SQLite store and the host's cookie key in the
instance folder, so the sign-in may continue where it was: the MFA step is still required and still
works, and the ID token then reports the MFA. What must never happen: an authorization code
without the MFA (a fresh authorization request after the restart, a wrong code, the security-info
pages all stay behind the MFA step).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from gunicorn_servers import Gunicorn
from test_gunicorn_workers import (
    Browser,
    answer_questions,
    choose_the_app,
    code_now,
    field_value,
    register_app_in_wizard,
)

pytestmark = pytest.mark.e2e

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


@pytest.fixture
def idp(tmp_path: Path) -> Iterator[Gunicorn]:
    # The shipped config (SQLite store, generated key file); its relative paths resolve next to
    # the copy, so the store and keys are in tmp_path/instance and survive the restart.
    config = Path(shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml"))
    server = Gunicorn("example_idp.wsgi:app", directory=tmp_path, workers=1, threads=2)
    server.env.update(
        EXAMPLE_IDP_ISSUER=server.url,
        EXAMPLE_IDP_INSTANCE=str(tmp_path / "instance"),
        EXAMPLE_IDP_COMBINEDREG_CONFIG=str(config),
    )
    server.extra = ("--chdir", str(EXAMPLE_IDP.parent))
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _restart(server: Gunicorn, how: str) -> None:
    if how == "graceful":
        server.stop()
    else:
        # A crash: the arbiter first (so it respawns nothing), then its worker(s), by pid.
        assert server.process is not None
        workers = {line.pid for line in server.access()} - {server.process.pid}
        server.process.kill()
        server.process.wait(timeout=10)
        for pid in workers:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        server.process = None
    server.start()


#: RFC 7636 appendix B: this verifier's S256 challenge is the one _query sends
RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"


def _query(server: Gunicorn, tag: str) -> dict[str, str]:
    """A fresh authorization request of the demo RP (PKCE S256 with RFC 7636's example)."""
    return {
        "client_id": "demo-rp",
        "response_type": "code",
        "redirect_uri": f"{server.url}/demo/callback",
        "scope": "openid",
        "state": f"after-restart-{tag}",
        "nonce": f"n-after-restart-{tag}",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }


def _no_code(response: requests.Response) -> None:
    location = response.headers.get("Location", "")
    assert "code=" not in location, location


@pytest.mark.parametrize("how", ["graceful", "crash"])
def test_a_restart_after_the_password_keeps_the_mfa_step_and_issues_no_code_without_it(
    idp: Gunicorn, how: str
) -> None:
    secret, _ = register_app_in_wizard(Browser(idp.url, "alice"))

    browser = Browser(idp.url, "alice")
    page, verifier = browser.authorize(prompt="login")
    mfa = browser.login(page)
    assert "/security-info/mfa" in mfa.url, mfa.text[:300]
    method_id = field_value(mfa.text, "method_id")

    _restart(idp, how)

    # A new authorization request from the same browser: back to the MFA step, no code.
    again = browser.follow(browser.get("/authorize?" + urlencode(_query(idp, "m"))))
    _no_code(again)
    assert again.status_code == 200 and "/security-info/mfa?c=" in again.url, again.url
    # The security-info pages stay behind the MFA step too.
    info = browser.get("/security-info/")
    assert (info.status_code, info.headers.get("Location")) == (303, "/security-info/mfa")

    # A wrong code after the restart: refused, no code.
    wrong = browser.submit(mfa, action="verify", method_id=method_id, code="000000")
    _no_code(wrong)
    assert wrong.status_code == 400, (wrong.status_code, wrong.url)

    # The right code on the page from before the restart: the sign-in continues, with MFA.
    callback = browser.submit(mfa, action="verify", method_id=method_id, code=code_now(secret, 1))
    tokens = browser.exchange(callback, verifier)
    assert tokens["sub"] == "alice"
    assert {"pwd", "otp", "mfa"} <= set(tokens["amr"])
    assert all(line.status < 500 for line in idp.access()), idp.errors()


def test_a_restart_in_the_wizard_issues_no_code_before_the_wizard_ends(idp: Gunicorn) -> None:
    browser = Browser(idp.url, "alice")  # no method yet: the wizard registers an app
    page, _ = browser.authorize()
    wizard = browser.login(page)
    assert "/security-info/wizard" in wizard.url, wizard.text[:300]
    setup = browser.submit(choose_the_app(browser, wizard), action="next")
    assert '<code class="secret">' in setup.text, setup.text[:300]
    browser.submit(setup, action="next")  # at the code step, nothing bound yet

    _restart(idp, "crash")

    # A new authorization request from the same browser comes back to the wizard, no code.
    query = _query(idp, "w")
    again = browser.follow(browser.get("/authorize?" + urlencode(query)))
    _no_code(again)
    assert again.status_code == 200 and "/security-info/wizard" in again.url, again.url
    # Walking the wizard to its end after the restart registers the app and gets the code (the
    # new request's wizard proposes the web app again: the app is chosen again).
    setup = browser.submit(choose_the_app(browser, again), action="next")
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', setup.text)
    assert secret is not None, setup.text[:300]
    verify = browser.submit(setup, action="next")
    added = browser.submit(verify, action="verify", code=code_now(secret[1]))
    assert "successfully registered" in added.text, added.text[:500]
    questions = browser.submit(added, action="next")
    summary = browser.submit(answer_questions(browser, questions), action="next")
    callback = browser.submit(summary, action="finish")
    assert f"state={query['state']}" in callback.headers.get("Location", "")
    tokens = browser.exchange(callback, RFC7636_VERIFIER)
    assert tokens["sub"] == "alice" and {"pwd", "otp", "mfa"} <= set(tokens["amr"])
    assert all(line.status < 500 for line in idp.access()), idp.errors()
