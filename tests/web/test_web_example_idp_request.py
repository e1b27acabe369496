"""The example IdP's request class (example_idp/request.py) and Authlib's request over it
(example_idp/oauth.py ``_FlaskRequest``, ``_FlaskPayload``): the same cookies, headers and
parameters as werkzeug's, without walking the WSGI environ for them (issue 22: two walks of some
forty keys per code issued) or reading each parameter through a combined multi-dict."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from flask import Request
from idp_client import authorize_params, callback, login, make_idp, pkce, registered
from werkzeug.datastructures import EnvironHeaders
from werkzeug.test import EnvironBuilder

from example_idp.request import IdpRequest

COOKIE_HEADERS = [
    None,
    "",
    "a=1",
    "a=1; b=2",
    "a=1;b=2;;  c=3 ;",
    "a=1; a=2",  # the same name twice: both kept, in order
    'q="quoted \\"value\\" \\073"',
    "broken; a=1; =x; b",
    "bad\x7fname=1; ok=2",
    "latin=\xe9t\xe9; utf8=\xc3\xa9",  # WSGI strings: latin-1 decoded bytes, as werkzeug gets them
    "spaces = around ; x=y z",
]


def _environ(cookie: str | None) -> dict[str, Any]:
    environ: dict[str, Any] = EnvironBuilder(
        path="/authorize",
        headers={"User-Agent": "t", "Accept": "*/*", "X-Other": "1", "X-Cookie": "no=1"},
    ).get_environ()
    environ["HTTP_COOKIE_X"] = "not=this"  # a header named Cookie-X, not Cookie
    if cookie is not None:
        environ["HTTP_COOKIE"] = cookie
    return environ


@pytest.mark.parametrize("cookie", COOKIE_HEADERS)
def test_the_cookies_are_werkzeugs(cookie: str | None) -> None:
    ours = IdpRequest(_environ(cookie)).cookies
    theirs = Request(_environ(cookie)).cookies
    assert list(ours.items(multi=True)) == list(theirs.items(multi=True))
    assert type(ours) is type(theirs)


def test_the_cookies_do_not_walk_the_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    walks: list[int] = []
    walk = EnvironHeaders.__iter__

    def counted(self: EnvironHeaders) -> Any:
        walks.append(1)
        return walk(self)

    monkeypatch.setattr(EnvironHeaders, "__iter__", counted)
    assert IdpRequest(_environ("a=1")).cookies["a"] == "1"
    assert walks == []
    assert Request(_environ("a=1")).cookies["a"] == "1"  # werkzeug's own walks it
    assert walks


def test_a_code_is_issued_without_walking_the_environ(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through the whole IdP: its session cookie, Flask-Login's user and Authlib's request
    (which kept ``headers or {}``, counting the headers to decide) read no header by a walk."""
    client = make_idp(tmp_path)
    client_id = registered(client)["client_id"]
    _, challenge = pkce()
    params = authorize_params(client_id, code_challenge=challenge, code_challenge_method="S256")
    login(client)
    walks: list[str] = []
    walk = EnvironHeaders.__iter__

    def counted(self: EnvironHeaders) -> Any:
        walks.append(self.environ.get("PATH_INFO", ""))
        return walk(self)

    monkeypatch.setattr(EnvironHeaders, "__iter__", counted)
    assert "code" in callback(client.get("/authorize", query_string=params))
    assert walks == []


def test_authlib_reads_the_request_headers(tmp_path: Path) -> None:
    """The headers Authlib's request holds are the request's (``Authorization`` at /token
    and /par, read by client authentication)."""
    client = make_idp(tmp_path)
    app = client.application
    server = app.extensions["example_idp"].server
    with app.test_request_context("/par", headers={"Authorization": "Basic eDp5"}):
        request = server.create_oauth2_request(None)
        assert request.headers["Authorization"] == "Basic eDp5"
        assert request.headers.get("Host") == "localhost"


def test_authlibs_payload_answers_as_the_requests_values(tmp_path: Path) -> None:
    """Authlib's payload holds the first value of each name (the query's before the form's), as
    werkzeug's ``values.get`` answers, and every value in ``datalist``."""
    client = make_idp(tmp_path)
    app = client.application
    server = app.extensions["example_idp"].server
    url = "/authorize?a=1&a=2&b=q&empty=&sp=x+y%20z"
    form = {"b": "f", "c": ["3", "4"], "a": "form"}
    with app.test_request_context(url, method="POST", data=form):
        from flask import request

        payload = server.create_oauth2_request(None).payload
        values = request.values
        assert set(payload.data) == set(values)
        for name in [*values, "missing"]:
            assert payload.data.get(name) == values.get(name)
            assert (name in payload.data) == (name in values)
            assert payload.datalist.get(name, []) == values.getlist(name)
        assert payload.data["a"] == "1" and payload.data["b"] == "q" and payload.data["c"] == "3"
        assert payload.data["sp"] == "x y z" and payload.data["empty"] == ""
        assert payload.datalist["a"] == ["1", "2", "form"]


@pytest.mark.parametrize("name", ["scope", "state", "response_type"])
def test_a_parameter_sent_twice_is_refused(tmp_path: Path, name: str) -> None:
    """RFC 6749 3.1: request parameters must not be included more than once (Authlib's check,
    on ``datalist``): invalid_request, shown to the user (which of two states or redirect URIs
    would the RP trust?), and no code."""
    client = make_idp(tmp_path)
    client_id = registered(client)["client_id"]
    _, challenge = pkce()
    params = authorize_params(client_id, code_challenge=challenge, code_challenge_method="S256")
    login(client)
    query = [*params.items(), (name, params[name])]
    twice = client.get("/authorize", query_string=query)
    assert twice.status_code == 400 and "Location" not in twice.headers
    page = twice.get_data(as_text=True)
    assert "<code>invalid_request</code>" in page and f"Multiple &#39;{name}&#39;" in page
    single = callback(client.get("/authorize", query_string=params))
    assert "code" in single, single  # the same request once: a code
