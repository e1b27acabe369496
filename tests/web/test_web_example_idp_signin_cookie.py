"""The example IdP's host session through a whole sign-in (issue 22.5): the authorization request
that sends a browser to the login page keeps the request's key in the host session only when
that request asks for a fresh password (prompt=login, max_age), so the code issuance that ends a
plain sign-in has nothing to clean up and does not sign and set the host cookie again. A fresh
password is still asked for, once, where the request demands one."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from flask.testing import FlaskClient
from idp_client import authorize_params, callback, login, make_idp, registered
from werkzeug.test import TestResponse


def _host_cookies(response: TestResponse) -> list[str]:
    return [c for c in response.headers.getlist("Set-Cookie") if c.startswith("idp_session=")]


def _sign_in(client: FlaskClient, url: str) -> TestResponse:
    """The authorization request (the sign-in form), its password, and the request again."""
    first = client.get(url)
    assert first.status_code == 200 and 'name="password"' in first.get_data(as_text=True)
    assert login(client, url).headers["Location"] == url
    return client.get(url)


def test_a_plain_sign_in_issues_its_code_without_rewriting_the_host_session(
    tmp_path: Path,
) -> None:
    client = make_idp(tmp_path)
    reg = registered(client)
    url = "/authorize?" + urlencode(authorize_params(reg["client_id"]))
    issued = _sign_in(client, url)
    assert "code" in callback(issued)
    # The old code kept the request's key through the login and removed it here: one more
    # signed cookie for every code.
    assert _host_cookies(issued) == []
    with client.session_transaction() as session:
        assert "login_for" not in session and "reauthenticated" not in session


def test_a_signed_out_browsers_plain_request_sets_no_host_session(tmp_path: Path) -> None:
    """Nothing to keep for a plain request that shows the sign-in form: no host cookie is signed
    and set there, none is opened and checked at the password's POST (the old code wrote one
    with the request's key and Flask-Login's "not fresh" mark). The login page itself (its
    links, a failed password) sets none either."""
    client = make_idp(tmp_path)
    reg = registered(client)
    url = "/authorize?" + urlencode(authorize_params(reg["client_id"]))
    first = client.get(url)
    assert first.status_code == 200 and 'name="password"' in first.get_data(as_text=True)
    assert _host_cookies(first) == []
    page = client.get("/login?" + urlencode({"next": url}))
    assert page.status_code == 200 and _host_cookies(page) == []
    assert client.get_cookie("idp_session") is None
    # The password still starts a host session, and the request gets its code.
    signed_in = login(client, url)
    assert _host_cookies(signed_in) and client.get_cookie("idp_session") is not None
    assert "code" in callback(client.get(url))


def test_prompt_login_still_asks_for_the_password_once(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    reg = registered(client)
    plain = "/authorize?" + urlencode(authorize_params(reg["client_id"]))
    assert "code" in callback(_sign_in(client, plain))
    fresh = "/authorize?" + urlencode(authorize_params(reg["client_id"], prompt="login"))
    issued = _sign_in(client, fresh)  # signed in, and still shown the sign-in form first
    assert "code" in callback(issued)  # after the password: the code, no second login page
    with client.session_transaction() as session:
        assert "login_for" not in session and "reauthenticated" not in session
    another = authorize_params(reg["client_id"], prompt="login")  # another request: again
    again = client.get("/authorize?" + urlencode(another))
    assert again.status_code == 200 and 'name="password"' in again.get_data(as_text=True)


def test_max_age_zero_still_asks_for_the_password_once(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    reg = registered(client)
    plain = "/authorize?" + urlencode(authorize_params(reg["client_id"]))
    assert "code" in callback(_sign_in(client, plain))
    fresh = "/authorize?" + urlencode(authorize_params(reg["client_id"], max_age="0"))
    assert "code" in callback(_sign_in(client, fresh))


def test_a_stale_request_key_does_not_survive_a_plain_sign_in(tmp_path: Path) -> None:
    """A prompt=login request abandoned at the login page, then a plain one: the password typed
    for the plain one does not count as the abandoned request's fresh password later."""
    client = make_idp(tmp_path)
    reg = registered(client)
    plain = "/authorize?" + urlencode(authorize_params(reg["client_id"]))
    assert "code" in callback(_sign_in(client, plain))
    abandoned = "/authorize?" + urlencode(authorize_params(reg["client_id"], prompt="login"))
    assert 'name="password"' in client.get(abandoned).get_data(as_text=True)
    other = "/authorize?" + urlencode(authorize_params(reg["client_id"]))
    assert "code" in callback(client.get(other))  # still signed in: a code, no login
    with client.session_transaction() as session:
        assert "login_for" not in session
    assert 'name="password"' in client.get(abandoned).get_data(as_text=True)
