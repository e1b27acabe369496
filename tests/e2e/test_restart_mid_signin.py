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
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pytest
import requests
from gunicorn_servers import Gunicorn
from test_gunicorn_workers import Browser, code_now, field_value, register_app_in_wizard

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
    query = {
        "client_id": "demo-rp",
        "response_type": "code",
        "redirect_uri": f"{idp.url}/demo/callback",
        "scope": "openid",
        "state": "after-restart",
        "nonce": "n-after-restart",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    again = browser.follow(browser.get("/authorize?" + urlencode(query)))
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
