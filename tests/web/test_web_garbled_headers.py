"""Headers that are not UTF-8 (a WSGI server passes their bytes as latin-1 text) get the page a
clean header would, never an exception: the middleware's own cookie and language parsing reads
what it can and leaves the rest, as Flask does for the host's pages."""

from __future__ import annotations

import io
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest
from flask import Flask
from idp_client import authorize_params, make_idp, registered

from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.web.session import request_cookies

#: the bytes 0xff 0xfe, as a WSGI server hands them on (latin-1)
GARBLED = "\xff\xfe"


def call(app: Flask, path: str, **headers: str) -> tuple[str, bytes]:
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path.split("?")[0],
        "QUERY_STRING": path.partition("?")[2], "SERVER_NAME": "localhost",
        "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(b""),
        "wsgi.errors": sys.stderr, "wsgi.multithread": False,
        "wsgi.multiprocess": False, "wsgi.run_once": False, "wsgi.version": (1, 0),
        **{f"HTTP_{name.upper()}": value for name, value in headers.items()},
    }  # fmt: skip
    seen: list[str] = []
    body = b"".join(app.wsgi_app(environ, lambda status, _h, _e=None: seen.append(status)))
    return seen[-1], body


@pytest.fixture
def app(tmp_path: Path) -> tuple[Flask, str]:
    client = make_idp(tmp_path, FrozenClock(time.time()))
    client_id = registered(client)["client_id"]
    return client.application, client_id


@pytest.mark.parametrize(
    "path",
    ["/security-info/", "/security-info/signin?c=x", "/reset", "/authorize?{query}"],
)
def test_a_cookie_header_that_is_not_utf8_gets_the_page_a_clean_one_gets(
    app: tuple[Flask, str], path: str
) -> None:
    flask_app, client_id = app
    path = path.format(query=urlencode(authorize_params(client_id)))
    clean = call(flask_app, path, cookie="lng=de")
    garbled = call(flask_app, path, cookie=f"junk={GARBLED}; lng=de")
    assert garbled[0] == clean[0], garbled


def test_the_cookies_around_a_garbled_one_are_read() -> None:
    cookies = request_cookies({"HTTP_COOKIE": f"a={GARBLED}; lng=de; b=c"})
    assert cookies["lng"] == "de" and cookies["b"] == "c"


@pytest.mark.parametrize("header", ["accept_language", "user_agent", "x_forwarded_for"])
def test_other_headers_that_are_not_utf8_change_nothing(
    app: tuple[Flask, str], header: str
) -> None:
    flask_app, _ = app
    assert (
        call(flask_app, "/security-info/", **{header: GARBLED})[0]
        == call(flask_app, "/security-info/")[0]
    )


@pytest.mark.parametrize(
    "path",
    [
        f"/security-info/signin?c={GARBLED}",
        f"/security-info/{GARBLED}",
        f"/security-info/mfa?c=x&lng={GARBLED}",
        f"/reset?lng={GARBLED}",
    ],
)
def test_a_path_or_query_that_is_not_utf8_gets_the_middleware_an_answer(
    app: tuple[Flask, str], path: str
) -> None:
    # Raw bytes like these never pass gunicorn (400 at the request line) but do pass other
    # servers; the host's own Flask views are werkzeug's to decode.
    flask_app, _ = app
    status, _ = call(flask_app, path)
    assert status[:3] in {"200", "302", "303", "400", "401", "404"}, status


#: a JSON body nested deeper than Python's parser goes (it raises RecursionError, not ValueError)
DEEP = '{"a":' * 5000 + "1" + "}" * 5000


@pytest.mark.parametrize(
    "path",
    ["/security-info/device/enroll", "/security-info/device/respond", "/security-info/reset"],
)
@pytest.mark.parametrize("chunked", [False, True], ids=["with a length", "chunked"])
def test_a_json_body_nested_too_deep_is_no_json_not_an_exception(
    app: tuple[Flask, str], path: str, chunked: bool
) -> None:
    flask_app, _ = app
    body = DEEP.encode()
    environ: dict[str, Any] = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "localhost", "SERVER_PORT": "5000", "SERVER_PROTOCOL": "HTTP/1.1",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": sys.stderr, "CONTENT_TYPE": "application/json",
    }  # fmt: skip
    if chunked:  # no length: the server ends the stream (werkzeug's parser then reads it)
        environ.update({"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True})
    else:
        environ["CONTENT_LENGTH"] = str(len(body))
    seen: list[str] = []
    b"".join(flask_app.wsgi_app(environ, lambda status, _h, _e=None: seen.append(status)))
    assert seen[-1][0] == "4", seen


@pytest.mark.parametrize(
    "path",
    [
        "/security-info/device/enroll",
        "/security-info/device/pending",
        "/security-info/device/respond",
        "/security-info/device/subscribe",
    ],
)
@pytest.mark.parametrize("field", ["device_id", "token", "request_id", "signature"])
def test_a_json_string_with_a_lone_surrogate_is_no_text_not_an_exception(
    app: tuple[Flask, str], path: str, field: str
) -> None:
    # '"\ud800"' is valid JSON and parses to a str that no encoder takes (the store's, UTF-8).
    flask_app, _ = app
    body = "{" + f'"{field}": "\\ud800", "device_id": "d\\udfff"' + "}"
    response = flask_app.test_client().post(path, data=body, content_type="application/json")
    assert 400 <= response.status_code < 500, response.status_code
