"""The web app's own origin (``[methods.push] web_app_origin``) against paths that try to leave the
device API: dot segments, encoded ones, a different spelling of the prefix. Only the app and the
device calls answer there; nothing of the IdP, and no cookie (docs/security.md)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from webtest import Browser
from werkzeug.test import Client

APP_ORIGIN = "https://authenticator.example.com"


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return make_browser(
        methods={"push": {"web_app": True, "app_name": "", "web_app_origin": APP_ORIGIN}}
    )


@pytest.mark.parametrize(
    "path",
    [
        "/security-info/device/../",
        "/security-info/device/../admin/",
        "/security-info/device/../wizard",
        "/security-info/device/..%2f",
        "/security-info/device/%2e%2e/admin/",
        "/security-info/device/./../activity",
        "/security-info/device//../",
        "/security-info//device/pending",
        "/security-info/app/../",
        "/security-info/app/%2e%2e/admin/",
    ],
)
def test_no_idp_page_through_a_device_or_app_path(browser: Browser, path: str) -> None:
    browser.login("alice")  # the IdP's cookie exists; this host's requests carry none anyway
    environ = {
        "REMOTE_ADDR": "127.0.0.1",
        "HTTP_HOST": "authenticator.example.com",
        "PATH_INFO": path,  # exactly as a server would pass it, no normalizing by the client
        "wsgi.url_scheme": "https",
    }
    for method in ("GET", "POST"):
        r = Client(browser.reg).open("/", method=method, environ_overrides=environ)
        assert "Set-Cookie" not in r.headers, (path, method)
        body = r.get_data(as_text=True)
        assert r.status_code in (400, 401, 404, 405), (path, method, r.status_code, body[:200])
        assert "<form" not in body and "csrf" not in body.lower(), (path, method)


def test_the_raw_paths_reach_the_app_and_the_device_api(browser: Browser) -> None:
    """The requests above do reach the middleware as written: the app and a device call answer."""
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "authenticator.example.com",
               "wsgi.url_scheme": "https"}  # fmt: skip
    client = Client(browser.reg)
    shell = client.open("/", environ_overrides={**environ, "PATH_INFO": "/security-info/app/"})
    assert shell.status_code == 200 and b"app.js" in shell.data
    poll = client.open(
        "/", method="POST", json={},
        environ_overrides={**environ, "PATH_INFO": "/security-info/device/pending"},
    )  # fmt: skip
    assert poll.status_code == 401 and poll.get_json()["error"] == "unauthorized"
