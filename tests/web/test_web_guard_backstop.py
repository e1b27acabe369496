"""The guard's backstop against a careless host (docs/integration.md, "The guard's backstop").

``CarelessHost`` issues an authorization code at /authorize for anyone, in the request's
``response_mode``, without asking ``sign_in_result()``. The middleware must refuse every such
answer for a request it did not clear (no sign-in, a ``prompt=none`` error answer) and pass it
for a cleared one. Legitimate answers to an uncleared request (errors, the host's login page)
still pass.
"""

from __future__ import annotations

import base64
import gzip
import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from plain_wsgi_host import DictDirectory
from webtest import T0, base_config
from werkzeug.test import Client, TestResponse

from oidc_combinedreg import CombinedRegistration, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.store.sqlite import SqliteStore
from oidc_combinedreg.web.backstop import MAX_SCANNED

REDIRECT = "https://rp.example.test/cb"
CODE = "SplxlOBeZQQYbYS6WxSbIA"
PEER = {"REMOTE_ADDR": "127.0.0.1"}


def _jws(payload: dict[str, Any]) -> str:
    body = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJSUzI1NiJ9.{body}.c2lnbmF0dXJl"


def answer(mode: str, fields: dict[str, str]) -> tuple[str, list[tuple[str, str]], bytes]:
    """An authorization response (OAuth 2.0 Multiple Response Type Encoding Practices 2.1, Form
    Post Response Mode 2, JARM 2.3) or a page that smuggles one, as a careless host writes it."""
    html = [("Content-Type", "text/html; charset=utf-8")]
    if mode == "query":
        return "302 Found", [("Location", f"{REDIRECT}?{urlencode(fields)}")], b""
    if mode == "fragment":
        return "302 Found", [("Location", f"{REDIRECT}#{urlencode(fields)}")], b""
    if mode in ("form_post", "form_post_gzip", "form_post_utf16"):
        inputs = "".join(
            f'<input type="hidden" name="{k}" value="{v}"/>' for k, v in fields.items()
        )
        page = (
            '<html><body onload="document.forms[0].submit()">'
            f'<form method="post" action="{REDIRECT}">{inputs}</form></body></html>'
        )
        if mode == "form_post_gzip":
            return "200 OK", [*html, ("Content-Encoding", "gzip")], gzip.compress(page.encode())
        if mode == "form_post_utf16":
            return "200 OK", [("Content-Type", "text/html; charset=utf-16")], page.encode("utf-16")
        return "200 OK", html, page.encode()
    if mode == "js":  # 200 + a script redirect, the URL escaped as Flask's |tojson does
        url = json.dumps(f"{REDIRECT}?{urlencode(fields)}").replace("&", "\\u0026")
        return "200 OK", html, f"<script>window.location.replace({url})</script>".encode()
    if mode == "meta":
        url = f"{REDIRECT}?{urlencode(fields)}".replace("&", "&amp;")
        return "200 OK", html, f'<meta http-equiv="refresh" content="0;url={url}">'.encode()
    if mode == "refresh_header":
        return "200 OK", [("Refresh", f"0; url={REDIRECT}?{urlencode(fields)}")], b"wait"
    if mode == "web_message":
        data = json.dumps({"type": "authorization_response", "response": fields})
        return "200 OK", html, f"<script>opener.postMessage({data}, '*')</script>".encode()
    if mode in ("query.jwt", "fragment.jwt"):
        sep = "?" if mode == "query.jwt" else "#"
        location = f"{REDIRECT}{sep}response={_jws(fields)}"
        return "302 Found", [("Location", location)], b""
    if mode == "form_post.jwt":
        page = f'<form method="post" action="{REDIRECT}"><input type="hidden" name="response" value="{_jws(fields)}"></form>'  # noqa: E501
        return "200 OK", html, page.encode()
    raise AssertionError(mode)


CODE_MODES = [
    "query",
    "fragment",
    "form_post",
    "form_post_gzip",
    "form_post_utf16",
    "js",
    "meta",
    "refresh_header",
    "web_message",
    "query.jwt",
    "fragment.jwt",
    "form_post.jwt",
]


class CarelessHost:
    """Signs anyone in at /login and issues a code at /authorize without ever asking the
    middleware (the bug the backstop exists for). ``mode``: how it answers."""

    def __init__(self) -> None:
        self.reg: CombinedRegistration | None = None
        self.mode = "query"
        self.large_page = False
        #: a page to show at /authorize instead (streamed in two chunks)
        self.page: bytes | None = None

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        assert self.reg is not None
        if environ["PATH_INFO"] == "/login":
            user = dict(parse_qsl(environ.get("QUERY_STRING", "")))["user"]
            self.reg.password_verified(environ, user)
            start_response("302 Found", [("Location", "/authorize?client_id=demo&state=s1")])
            return [b""]
        if environ["PATH_INFO"] == "/authorize" and self.page is not None:
            start_response("200 OK", [("Content-Type", "text/html; charset=utf-8")])
            return [self.page[:40], self.page[40:]]
        if environ["PATH_INFO"] == "/authorize":
            fields = {"code": CODE, "state": "s1"}
            status, headers, body = answer(self.mode, fields)
            if self.large_page:
                body += b" " * MAX_SCANNED
            start_response(status, headers)
            return [body]
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"not found"]

    # The AuthorizationEndpoint contract: errors, answered the same careless way.
    def error_response(self, environ: Any, params: Any, error: str, description: str) -> Any:
        mode = self.mode
        leak = self.leak_in_errors

        def app(environ: Any, start_response: Any) -> Iterable[bytes]:
            fields = {"error": error, "state": params.get("state", "")}
            if leak:
                fields["code"] = CODE
            status, headers, body = answer(mode, fields)
            start_response(status, headers)
            return [body]

        return app

    leak_in_errors = False

    def effective_params(self, environ: Any, params: Any) -> Any:
        return params


@pytest.fixture
def careless(tmp_path: Path) -> Any:
    clock = FrozenClock(T0)
    config = parse_config(base_config(tmp_path))
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    host = CarelessHost()
    # bob is exempt from MFA registration: his sign-in clears at once
    directory = DictDirectory({"bob": frozenset({"break-glass"})})
    reg = CombinedRegistration(
        host, config=config, directory=directory, store=store, clock=clock, authorization=host
    )
    host.reg = reg
    client = Client(reg)
    yield host, client
    store.close()


def _authorize(client: Client, query: str = "client_id=demo&state=s1") -> TestResponse:
    # an RP-library-like request (no Accept: text/html): no cookie probe, the host answers
    return client.get("/authorize?" + query, environ_base=PEER)


def _leaks(r: TestResponse) -> bool:
    text = r.get_data(as_text=True) + r.headers.get("Location", "") + r.headers.get("Refresh", "")
    return CODE in text or "response=" in text or "eyJ" in text


@pytest.mark.parametrize("mode", CODE_MODES)
def test_a_code_for_a_request_nobody_cleared_is_refused(
    careless: Any, mode: str, caplog: pytest.LogCaptureFixture
) -> None:
    host, client = careless
    host.mode = mode
    with caplog.at_level(logging.ERROR, logger="oidc_combinedreg"):
        r = _authorize(client, f"client_id=demo&state=s1&response_mode={mode}")
    assert r.status_code == 403, (mode, r.status_code, r.headers)
    assert not _leaks(r)
    assert "Location" not in r.headers and "Refresh" not in r.headers
    assert "did not clear" in caplog.text and CODE not in caplog.text


@pytest.mark.parametrize("mode", CODE_MODES)
def test_a_code_for_a_cleared_sign_in_passes_untouched(careless: Any, mode: str) -> None:
    host, client = careless
    host.mode = mode
    client.get("/login?user=bob", environ_base=PEER)
    expected = answer(mode, {"code": CODE, "state": "s1"})
    r = _authorize(client)
    assert r.status_code == int(expected[0][:3])
    assert r.data == expected[2]
    for name, value in expected[1]:
        assert r.headers.get(name) == value


@pytest.mark.parametrize("mode", ["query", "fragment", "form_post", "query.jwt", "form_post.jwt"])
def test_an_error_answer_to_the_rp_passes_and_one_with_a_code_is_refused(
    careless: Any, mode: str
) -> None:
    host, client = careless
    host.mode = mode
    # prompt=none without a sign-in: the middleware answers the RP through error_response
    r = _authorize(client, "client_id=demo&state=s1&prompt=none")
    assert r.status_code == int(answer(mode, {})[0][:3])
    expected = answer(mode, {"error": "login_required", "state": "s1"})
    assert r.data == expected[2] and r.headers.get("Location") == dict(expected[1]).get("Location")
    host.leak_in_errors = True
    r = _authorize(client, "client_id=demo&state=s1&prompt=none")
    assert r.status_code == 403 and not _leaks(r)


def test_a_login_page_at_the_authorization_endpoint_still_passes(careless: Any) -> None:
    """A host that shows its login form at /authorize itself: an empty one-time-code field,
    ``response_type=code`` in the form's action and a script's ``code=`` are not a code."""
    host, client = careless
    page = (
        b'<form method="post" action="/authorize?response_type=code&amp;client_id=demo">'
        b'<input name="username"><input type="password" name="password">'
        b'<input type="text" name="code" value="" autocomplete="one-time-code">'
        b'<input type="hidden" name="code_challenge" value="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJ">'
        b"</form><script>var code=document.forms[0].code;code.focus()</script>"
    )
    host.page = page
    r = _authorize(client)
    assert r.status_code == 200 and r.data == page


def test_an_uncleared_answer_too_large_to_read_is_refused(careless: Any) -> None:
    host, client = careless
    host.mode = "form_post"
    host.large_page = True
    r = _authorize(client)
    assert r.status_code == 403 and not _leaks(r)


@pytest.mark.parametrize("mode", ["query", "form_post", "js", "form_post.jwt"])
def test_cancel_sign_in_cannot_carry_a_code_either(careless: Any, mode: str) -> None:
    """ "Cancel sign-in" answers the RP through the host's error_response too: a careless one
    that puts a code in it is refused like the guard's own error answers."""
    host, client = careless
    host.mode = mode
    client.get("/login?user=alice", environ_base=PEER)  # alice must register: not cleared
    wizard = _authorize(client).headers["Location"]
    assert wizard.startswith("/security-info/wizard?c=")
    page = client.get(wizard, headers={"Accept": "application/json"}, environ_base=PEER).get_json()
    cancel = page["cancel_url"]
    host.leak_in_errors = True
    r = client.post(cancel, data={"csrf_token": page["csrf_token"]}, environ_base=PEER)
    assert r.status_code == 403 and not _leaks(r)
    assert "Max-Age=0" in r.headers["Set-Cookie"]  # the sign-in still ends


def test_cancel_sign_in_passes_the_error_answer(careless: Any) -> None:
    host, client = careless
    host.mode = "form_post"
    client.get("/login?user=alice", environ_base=PEER)
    wizard = _authorize(client).headers["Location"]
    assert wizard.startswith("/security-info/wizard?c=")
    page = client.get(wizard, headers={"Accept": "application/json"}, environ_base=PEER).get_json()
    r = client.post(page["cancel_url"], data={"csrf_token": page["csrf_token"]}, environ_base=PEER)
    assert r.status_code == 200
    assert r.data == answer("form_post", {"error": "access_denied", "state": "s1"})[2]


@pytest.mark.parametrize("leak", [True, False])
def test_an_answer_written_with_the_legacy_write_callable_is_read_too(
    careless: Any, leak: bool
) -> None:
    """PEP 3333's ``write()``: what the host writes before returning is held back and read."""
    host, client = careless
    fields = {"code": CODE, "state": "s1"} if leak else {"error": "login_required", "state": "s1"}
    _, headers, page = answer("form_post", fields)

    def writer(environ: Any, start_response: Any) -> Iterable[bytes]:
        write = start_response("200 OK", headers)
        write(page[:50])
        write(page[50:100])
        return [page[100:]]

    client.application.app = writer  # the middleware's wrapped app
    r = _authorize(client)
    assert (r.status_code, _leaks(r)) == ((403, False) if leak else (200, False))
    if not leak:
        assert r.data == page
