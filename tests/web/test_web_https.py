"""A request that came over https never sets a cookie without ``Secure`` and gets HSTS: the
middleware's pages, its cookies on the host's responses, the cookie probe, and the plain host's
pages (examples/plain_wsgi_host.py), under a config with ``secure_cookies = false``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from webtest import Browser
from werkzeug.test import TestResponse

from oidc_combinedreg import ConfigError, parse_config
from oidc_combinedreg.crypto import generate_key

HTTPS = {"base_url": "https://localhost"}
YEAR = "max-age=31536000"


def cookies(response: TestResponse) -> list[str]:
    return list(response.headers.getlist("Set-Cookie"))


def test_the_plain_host_login_page_sends_the_header_set(browser: Browser) -> None:
    reference = browser.get("/security-info/reset").headers
    page = browser.get("/login")
    for name in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert page.headers[name] == reference[name]
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert "Strict-Transport-Security" not in page.headers


def test_over_https_the_host_and_middleware_cookies_are_secure(browser: Browser) -> None:
    assert browser.get("/login", **HTTPS).headers["Strict-Transport-Security"] == YEAR
    login = browser.post(
        "/login?next=/authorize%3Fclient_id%3Ddemo",
        data={"username": "alice", "password": "alice-password"},
        **HTTPS,
    )
    assert login.status_code == 303
    names = {c.split("=", 1)[0] for c in cookies(login)}
    assert names == {"host_sid", "combinedreg"}, cookies(login)
    assert all("; Secure" in c for c in cookies(login)), cookies(login)
    assert login.headers["Strict-Transport-Security"] == YEAR
    # The middleware's own pages: the session saved, the language remembered.
    page = browser.get("/security-info/reset?lng=de", **HTTPS)
    assert page.headers["Strict-Transport-Security"] == YEAR
    assert cookies(page) and all("; Secure" in c for c in cookies(page)), cookies(page)
    static = browser.get("/security-info/static/combinedreg.css", **HTTPS)
    assert static.headers.get("Strict-Transport-Security") == YEAR
    static.close()


def test_the_cookie_probe_over_https_is_secure(browser: Browser) -> None:
    probe = browser.get(
        "/authorize?client_id=demo",
        headers={"Sec-Fetch-Mode": "navigate", "Accept": "text/html"},
        **HTTPS,
    )
    assert probe.status_code == 303 and cookies(probe)
    assert all("; Secure" in c for c in cookies(probe)), cookies(probe)


def test_over_http_nothing_changes(browser: Browser) -> None:
    page = browser.get("/security-info/reset?lng=de")
    assert "Strict-Transport-Security" not in page.headers
    assert cookies(page) and not any("Secure" in c for c in cookies(page))


@pytest.mark.parametrize(
    ("header", "value", "secure"),
    [
        ("X-Forwarded-Proto", "https", True),
        ("X-Forwarded-Proto", "http", False),
        ("Forwarded", "for=203.0.113.9;proto=https", False),  # not the configured header
    ],
)
def test_a_trusted_proxy_tells_https_in_the_configured_header(
    make_browser: Callable[..., Browser], header: str, value: str, secure: bool
) -> None:
    browser = make_browser(network={"trusted_proxies": ["127.0.0.1/32"]})
    page = browser.get("/security-info/reset?lng=de", headers={header: value})
    assert ("Strict-Transport-Security" in page.headers) is secure
    assert all(("; Secure" in c) is secure for c in cookies(page))
    # The same header from a peer that is not a trusted proxy means nothing.
    browser.remote_addr = "198.51.100.7"
    page = browser.get("/security-info/reset?lng=fr", headers={header: value})
    assert "Strict-Transport-Security" not in page.headers


def test_the_forwarded_header_when_configured(make_browser: Callable[..., Browser]) -> None:
    browser = make_browser(
        network={"trusted_proxies": ["127.0.0.1/32"], "forwarded_header": "forwarded"}
    )
    page = browser.get(
        "/security-info/reset?lng=de", headers={"Forwarded": "for=203.0.113.9;proto=https"}
    )
    assert page.headers["Strict-Transport-Security"] == YEAR


def test_hsts_max_age_is_configurable_and_zero_turns_it_off(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(web={"secure_cookies": False, "hsts_max_age": 0})
    page = browser.get("/security-info/reset?lng=de", **HTTPS)
    assert "Strict-Transport-Security" not in page.headers
    assert all("; Secure" in c for c in cookies(page))  # Secure all the same


@pytest.mark.parametrize("value", [-1, 63_072_001, "1y"])
def test_a_bad_hsts_max_age_is_a_path_named_error(value: Any) -> None:
    data = {"secrets": {"encryption_keys": [generate_key()]}, "web": {"hsts_max_age": value}}
    with pytest.raises(ConfigError, match=r"web\.hsts_max_age"):
        parse_config(data)


def test_the_plain_host_refuses_a_large_body_unread(browser: Browser) -> None:
    """Its forms read at most a few KiB: a larger body is refused before anything reads it
    (a real server then closes cleanly: tests/e2e/test_oversized_bodies.py)."""
    response = browser.post(
        "/login",
        data=b"username=alice&password=alice-password&" + b"x" * 70_000,
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 413
    assert "host_sid" not in str(response.headers.getlist("Set-Cookie"))
