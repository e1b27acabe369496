"""The authenticator web app on an origin of its own (issue 20.6, ``[methods.push] web_app_origin``).

On the app's host name the middleware answers the app and the device API only: no security-info
page, none of the host's pages, no cookie. On the IdP's origin the app's address redirects there
(the fragment with the enrollment payload survives a redirect), and the QR code's link and the
payload's device URL name the app's origin. tests/e2e/test_push_web_app_origin.py does the same
in Chromium with two real origins.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

import pytest
from test_web_push import ADD, approve_at, push_methods, start_enrollment
from webtest import Browser, location
from werkzeug.test import Client, TestResponse

from oidc_combinedreg.device import Device, DeviceError
from oidc_combinedreg.web.views import pwa
from oidc_combinedreg.web.views.pwa import AppOrigin

APP_ORIGIN = "https://authenticator.example.com"
APP_HOST = "authenticator.example.com"
APP = "/security-info/app/"


@pytest.fixture
def browser(make_browser: Callable[..., Browser]) -> Browser:
    return make_browser(
        methods={"push": {"web_app": True, "app_name": "", "web_app_origin": APP_ORIGIN}}
    )


def on_app_origin(browser: Browser, path: str, host: str = APP_HOST, **kw: Any) -> TestResponse:
    """A request to the app's host name: its own client, so no cookie of the IdP's goes along
    (a browser keeps cookies per host, RFC 6265 5.4)."""
    client = Client(browser.reg)
    method = kw.pop("method", "GET")
    environ = {"REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": host}  # a Host werkzeug cannot parse too
    return client.open(
        path, base_url="https://localhost", method=method, environ_overrides=environ, **kw
    )


def app_transport(browser: Browser) -> Any:
    """The reference device talking to the app's origin, as the enrollment payload tells it."""

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}" == APP_ORIGIN, url
        r = on_app_origin(browser, parts.path, method="POST", json=body)
        assert "Set-Cookie" not in r.headers
        if r.status_code >= 400:
            raise DeviceError(r.status_code, r.get_json() or {})
        return dict(r.get_json() or {})

    return post


def test_the_app_origin_serves_the_app_and_nothing_of_the_idp(browser: Browser) -> None:
    shell = on_app_origin(browser, APP)
    assert shell.status_code == 200 and b"app.js" in shell.data
    assert "connect-src 'self'" in shell.headers["Content-Security-Policy"]
    assert on_app_origin(browser, APP + "app.js").status_code == 200
    # Every page of the IdP (the middleware's and the host's) is absent here, with the app's
    # headers, and no response sets a cookie on this host.
    for path in (
        "/security-info/",
        "/security-info/wizard",
        "/security-info/mfa",
        "/security-info/push/status?for=enroll",
        "/security-info/static/push.js",
        "/security-info/admin/",
        "/login",
        "/authorize?client_id=demo&state=s1",
        "/logout",
        "/security-info-not",
    ):
        r = on_app_origin(browser, path)
        assert r.status_code == 404, path
        assert r.headers["Content-Security-Policy"].startswith("default-src 'none'"), path
        assert "Set-Cookie" not in r.headers, path
    # Someone typing the host name lands on the app.
    home = on_app_origin(browser, "/")
    assert home.status_code == 302 and home.headers["Location"] == APP
    # The device API is here, and answers JSON without a cookie (even asked for a language).
    r = on_app_origin(browser, "/security-info/device/pending?lng=de", method="POST", json={})
    assert r.status_code == 401 and r.get_json()["error"] == "unauthorized"
    assert "Set-Cookie" not in r.headers


#: Host values and whether they name the app's origin
HOSTS = [
    ("AUTHENTICATOR.example.com", True),
    ("authenticator.example.com:443", True),  # the scheme's default port, spelled out
    ("authenticator.example.com:8443", False),  # another port: another origin
    ("idp.example.com", False),
    ("authenticator.example.com.evil.test", False),
    ("authenticator.example.com:x", False),
]


@pytest.mark.parametrize(("host", "app"), HOSTS)
def test_the_app_origin_is_told_by_its_host_and_port(
    browser: Browser, host: str, app: bool
) -> None:
    r = on_app_origin(browser, "/login", host=host)
    assert (r.status_code == 404) is app, r.status_code


def test_each_hosts_answer_is_kept_within_a_bound() -> None:
    """Every request the middleware sees asks whether its Host is the app's: each value's answer
    is kept (the same as parsing it again), for at most ``_KNOWN_HOSTS`` values. Hosts an
    anonymous client makes up cannot keep the deployment's own out: a full memo starts over."""
    origin = AppOrigin(APP_ORIGIN, "/security-info")
    for _ in range(2):  # parsed, then remembered
        for host, app in HOSTS:
            assert origin.matches({"HTTP_HOST": host}) is app, host
    for n in range(2 * pwa._KNOWN_HOSTS + 1):
        assert origin.matches({"HTTP_HOST": f"h{n}.example"}) is False
        assert len(origin._known) <= pwa._KNOWN_HOSTS
    assert origin.matches({"HTTP_HOST": "AUTHENTICATOR.EXAMPLE.COM:443"}) is True
    assert origin._known.get("AUTHENTICATOR.EXAMPLE.COM:443") is True  # kept after the flood
    assert origin.matches({"HTTP_HOST": "authenticator.example.com.:443"}) is False
    assert origin.matches({"SERVER_NAME": APP_HOST}) is True  # no Host: the server's name
    assert len(origin._known) <= pwa._KNOWN_HOSTS


def test_on_the_idp_origin_the_app_redirects_to_its_own(browser: Browser) -> None:
    r = browser.get(APP + "?lng=de")
    assert r.status_code == 308
    assert r.headers["Location"] == APP_ORIGIN + APP + "?lng=de"
    assert browser.get(APP + "index.html").headers["Location"] == APP_ORIGIN + APP
    assert browser.get("/security-info/app").headers["Location"] == APP_ORIGIN + APP
    # Nothing of the app runs on the IdP's origin any more: its files are gone, and a worker
    # the app installed there before the move finds one that clears its caches and leaves.
    assert browser.get(APP + "app.js").status_code == 404
    worker = browser.get(APP + "sw.js")
    assert worker.status_code == 200 and worker.mimetype == "text/javascript"
    assert b"registration.unregister()" in worker.data
    # The IdP's pages are where they were.
    assert browser.get("/login").status_code == 200


def test_the_qr_link_and_the_devices_use_the_app_origin(browser: Browser) -> None:
    browser.login("alice")
    payload, token = start_enrollment(browser)
    page = browser.get_json(ADD).get_json()
    assert page["app_link"].startswith(APP_ORIGIN + APP + "#enroll=")
    assert unquote(page["app_link"].split("#enroll=", 1)[1]) == payload
    assert "url=" + APP_ORIGIN.replace(":", "%3A").replace("/", "%2F") in payload
    # The device enrolls, is asked, and approves, all on the app's origin.
    device = Device.enroll(payload, "Phone", clock=browser.clock, transport=app_transport(browser))
    assert device.state.server_url == APP_ORIGIN + "/security-info"
    r = browser.post_json(ADD, {"action": "next", "csrf_token": token})
    assert location(r).startswith("/security-info/mfa")
    assert approve_at(browser, location(r), device).status_code == 303
    assert [m.label for m in push_methods(browser)] == ["Phone"]


def test_the_intro_page_links_to_the_app_on_its_origin(browser: Browser) -> None:
    browser.login("alice")
    page = browser.get_json(ADD).get_json()
    assert page["app_url"] == APP_ORIGIN + APP
