"""The example IdP's own pages, as integrators copy them: the middleware's security headers
(one source: ``CombinedRegistration.security_headers``), ``Secure`` cookies and HSTS on https,
and the store-down answer its docs promise (503 with ``Retry-After``)."""

from __future__ import annotations

import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from flask.testing import FlaskClient

from example_idp import create_app

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"


def make_idp(tmp_path: Path, extra: str = "") -> FlaskClient:
    config = tmp_path / "combinedreg.toml"
    shutil.copy(EXAMPLE_IDP / "combinedreg.toml", config)
    if extra:
        config.write_text(config.read_text() + extra)
    return create_app(instance_path=tmp_path / "instance", combinedreg_config=config).test_client()


def csrf_form(client: FlaskClient, page: str = "/login", **fields: str) -> dict[str, str]:
    html = client.get(page).get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert token is not None
    return {"csrf_token": token.group(1), **fields}


# -- the store down: 503 and Retry-After, as the middleware's pages and docs/deploy.md say --------


def test_the_login_answers_503_with_retry_after_when_the_store_is_down(tmp_path: Path) -> None:
    # Shipped config, but a short busy timeout: another writer holds the database's write lock.
    client = make_idp(tmp_path, "")
    config = tmp_path / "combinedreg.toml"
    config.write_text(
        config.read_text().replace(
            'path = "instance/combinedreg.sqlite3"',
            'path = "instance/combinedreg.sqlite3"\nbusy_timeout_ms = 100',
        )
    )
    client = create_app(
        instance_path=tmp_path / "instance", combinedreg_config=config
    ).test_client()
    form = csrf_form(client, username="alice", password="alice")
    holder = sqlite3.connect(tmp_path / "instance" / "combinedreg.sqlite3", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        response = client.post("/login", data=form)
    finally:
        holder.close()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"
    assert "unavailable" in response.get_data(as_text=True)
    assert "Set-Cookie" not in response.headers or "idp_session" not in str(
        response.headers.getlist("Set-Cookie")
    )


# -- the IdP's own pages: the middleware's header set (SECURITY.md case 62) ---------------------

HOST_PAGES = ["/", "/login", "/login/tap", "/end-session"]


def assert_page_headers(headers: object, reference: object) -> None:
    from werkzeug.datastructures import Headers

    assert isinstance(headers, Headers) and isinstance(reference, Headers)
    csp = headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp and "default-src 'self'" in csp
    assert headers.get("X-Frame-Options") == "DENY"
    assert headers.get("Cache-Control") == "no-store"
    assert headers.get("X-Content-Type-Options") == "nosniff"
    assert headers.get("Referrer-Policy") == "no-referrer"
    # One source: exactly what the middleware's own pages send.
    for name in ("Content-Security-Policy", "X-Frame-Options", "Referrer-Policy"):
        assert headers.get(name) == reference.get(name), name


@pytest.mark.parametrize("page", HOST_PAGES)
def test_the_idp_pages_send_the_middleware_header_set(tmp_path: Path, page: str) -> None:
    client = make_idp(tmp_path)
    reference = client.get("/security-info/reset").headers
    response = client.get(page)
    assert response.status_code == 200, response.get_data(as_text=True)[:200]
    assert_page_headers(response.headers, reference)
    assert "Strict-Transport-Security" not in response.headers  # plain http: never (RFC 6797 7.2)


def test_the_idp_pages_have_no_inline_style_the_policy_would_block(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    html = client.get("/login").get_data(as_text=True)
    assert "<style" not in html and "style=" not in html and "<script>" not in html
    css = client.get("/static/idp.css")
    try:
        assert css.status_code == 200 and "font-family" in css.get_data(as_text=True)
    finally:
        css.close()


def test_without_the_middleware_the_idp_pages_still_send_the_header_set(tmp_path: Path) -> None:
    client = create_app(instance_path=tmp_path / "i", combinedreg_config=None).test_client()
    headers = client.get("/login").headers
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert headers["X-Frame-Options"] == "DENY" and headers["Cache-Control"] == "no-store"
    # The demo's short HSTS on localhost, as with the middleware's shipped config.
    https = client.get("/login", base_url="https://localhost").headers
    assert https["Strict-Transport-Security"] == "max-age=300"


# -- https: Secure cookies and HSTS, directly or through a trusted TLS proxy ----------------------


def cookies_of(response: object) -> list[str]:
    return list(response.headers.getlist("Set-Cookie"))  # type: ignore[attr-defined]


def test_over_https_every_cookie_is_secure_and_hsts_is_sent(tmp_path: Path) -> None:
    """The shipped config (secure_cookies = false, http issuer), reached over https."""
    client = make_idp(tmp_path)
    https = {"base_url": "https://localhost"}
    page = client.get("/login", **https)
    assert page.headers["Strict-Transport-Security"] == "max-age=300"
    form = csrf_form(client, "/login", username="alice", password="alice")
    seen: list[str] = cookies_of(page)
    response = client.post("/login?next=/authorize%3Fclient_id%3Ddemo", data=form, **https)
    for _ in range(6):  # the login, /authorize, the middleware's pages
        seen += cookies_of(response)
        assert response.headers.get("Strict-Transport-Security") == "max-age=300"
        location = response.headers.get("Location")
        if not location:
            break
        response = client.get(location.removeprefix("https://localhost"), **https)
    names = {c.split("=", 1)[0] for c in seen}
    assert {"idp_csrf", "idp_session", "combinedreg"} <= names, seen
    assert all("; Secure" in c for c in seen), [c for c in seen if "; Secure" not in c]


def test_over_plain_http_the_demo_cookies_stay_as_configured(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    form = csrf_form(client, "/login", username="alice", password="alice")
    response = client.post("/login?next=/authorize%3Fclient_id%3Ddemo", data=form)
    assert cookies_of(response) and not any("Secure" in c for c in cookies_of(response))
    assert "Strict-Transport-Security" not in response.headers


@pytest.mark.parametrize(
    ("peer", "trusted"), [("127.0.0.1", True), ("::1", True), ("198.51.100.7", False)]
)
def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(
    tmp_path: Path, peer: str, trusted: bool
) -> None:
    """The shipped config trusts a proxy on loopback ([network] trusted_proxies)."""
    client = make_idp(tmp_path)
    environ = {"REMOTE_ADDR": peer}
    headers = {"X-Forwarded-Proto": "https"}
    client.get("/login", environ_base=environ, headers=headers)
    form = csrf_form(client, "/login", username="alice", password="alice")
    response = client.post(
        "/login?next=/authorize%3Fclient_id%3Ddemo",
        data=form,
        environ_base=environ,
        headers=headers,
    )
    assert response.status_code == 302
    cookies = cookies_of(response)
    assert cookies and all(("; Secure" in c) is trusted for c in cookies), cookies
    assert ("Strict-Transport-Security" in response.headers) is trusted


def test_a_real_https_server_with_the_shipped_config(tmp_path: Path) -> None:
    """``python -m example_idp --tls``, as it serves: werkzeug's server, the self-signed
    certificate of example_idp/tls.py, the shipped config (secure_cookies = false)."""
    import threading

    import requests
    from werkzeug.serving import make_server

    from example_idp.tls import self_signed_certificate

    config = tmp_path / "combinedreg.toml"
    shutil.copy(EXAMPLE_IDP / "combinedreg.toml", config)
    instance = tmp_path / "instance"
    instance.mkdir()
    cert, key = self_signed_certificate(instance)
    server = make_server(
        "localhost", 0, create_app(instance_path=instance, issuer="https://localhost:1",
                                   combinedreg_config=config),
        threaded=True, ssl_context=(str(cert), str(key)),
    )  # fmt: skip
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    base = f"https://localhost:{server.port}"
    try:
        with requests.Session() as http:
            http.trust_env = False  # this certificate, not a CA bundle from the environment
            http.verify = str(cert)
            page = http.get(base + "/login")
            assert page.headers["Strict-Transport-Security"] == "max-age=300"
            assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
            token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
            assert token is not None
            seen = [page.headers.get("Set-Cookie", "")]
            response = http.post(
                base + "/login?next=/authorize%3Fclient_id%3Ddemo",
                data={"csrf_token": token.group(1), "username": "alice", "password": "alice"},
                allow_redirects=False,
            )
            assert response.status_code == 302
            seen += response.raw.headers.getlist("Set-Cookie")
            follow = http.get(base + response.headers["Location"], allow_redirects=False)
            seen += follow.raw.headers.getlist("Set-Cookie")
            assert follow.headers["Strict-Transport-Security"] == "max-age=300"
    finally:
        server.shutdown()
        thread.join(5)
    names = {c.split("=", 1)[0] for c in seen if c}
    assert {"idp_csrf", "idp_session", "combinedreg"} <= names, seen
    assert all("; Secure" in c for c in seen if c), seen
