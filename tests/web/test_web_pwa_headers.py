"""The web app's response headers (issue 20.6): the strictest CSP it works with, and the rest.

Chromium's side (no violation while the app is used, Trusted Types enforced) is in
tests/e2e/test_push_web_app_origin.py.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from webtest import Browser

APP = "/security-info/app/"
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
    "require-trusted-types-for 'script'; trusted-types authenticator"
)


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return make_browser(methods={"push": {"web_app": True, "app_name": ""}})


@pytest.mark.parametrize("file", ["", "app.js", "i18n.js", "sw.js", "manifest.webmanifest"])
def test_every_file_of_the_app_carries_the_policies(browser: Browser, file: str) -> None:
    r = browser.get(APP + file)
    assert r.status_code == 200
    h = r.headers
    assert h["Content-Security-Policy"] == CSP
    assert h["Cross-Origin-Opener-Policy"] == "same-origin"
    assert h["Cross-Origin-Resource-Policy"] == "same-origin"
    assert h["Referrer-Policy"] == "no-referrer"
    assert h["X-Content-Type-Options"] == "nosniff"
    assert h["X-Frame-Options"] == "DENY"
    features = dict(f.strip().split("=") for f in h["Permissions-Policy"].split(","))
    assert {"camera", "microphone", "geolocation", "payment", "usb"} <= set(features)
    assert set(features.values()) == {"()"}  # each one off, for every origin
    assert "Set-Cookie" not in h
    assert "Access-Control-Allow-Origin" not in h  # no cross-origin reader


def test_the_shell_needs_nothing_the_policy_refuses(browser: Browser) -> None:
    html = browser.get(APP).get_data(as_text=True)
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+\s*=", html)  # no inline event handler (onclick=...)
    for file in ("app.js", "i18n.js", "authcrypto.js", "webpush.js", "sw.js"):
        code = browser.get(APP + file).get_data(as_text=True)
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
            assert sink not in code, (file, sink)
