"""The example IdP's login page loads no user (issue 22): Flask-Login's context processor loaded
one (its session-protection hash, the user loader) for every page rendered; templates now get
the ``current_user`` proxy, which loads the user only when a template uses it."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path
from urllib.parse import urlencode

import pytest
from flask import render_template_string
from flask_login import LoginManager
from idp_client import USER, authorize_params, callback, login, make_idp, registered


def user_loads(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every Flask-Login user load from now on (``LoginManager._load_user``), recorded."""
    loads: list[object] = []
    load = LoginManager._load_user

    def counting(self: LoginManager) -> object:
        loads.append(self)
        return load(self)

    monkeypatch.setattr(LoginManager, "_load_user", counting)
    return loads


def test_the_login_page_loads_no_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_idp(tmp_path)
    loads = user_loads(monkeypatch)
    assert client.get("/login?next=/").status_code == 200
    assert loads == []


def test_templates_still_see_the_signed_in_user(tmp_path: Path) -> None:
    client = make_idp(tmp_path)
    page = "{{ current_user.is_authenticated }} {{ current_user.get_id() }}"
    app = client.application
    with app.test_request_context("/"):
        assert render_template_string(page) == "False None"
    login(client)
    cookie = client.get_cookie("idp_session")
    assert cookie is not None
    with app.test_request_context("/", headers={"Cookie": f"idp_session={cookie.value}"}):
        assert render_template_string(page) == f"True {USER}"


@pytest.mark.parametrize(
    "state", ["a&b", "https://rp.example/cb?x=1", "~-_.!$'()*,;:@", "caf\u00e9 #frag%", ""]
)
def test_the_login_form_at_authorize_comes_back_to_the_request(tmp_path: Path, state: str) -> None:
    """A signed-out browser gets the sign-in form at the authorization endpoint itself (decision
    217: no redirect to /login), whose ``next`` is the request as the browser sent it: after the
    password the same request gets its code, its state intact."""
    client = make_idp(tmp_path)
    query = urlencode(authorize_params(registered(client)["client_id"], state=state))
    page = client.get("/authorize?" + query)
    assert page.status_code == 200 and page.headers["Cache-Control"] == "no-store"
    html = page.get_data(as_text=True)
    next_url = _hidden(html, "next")
    assert next_url == "/authorize?" + query
    form = {"csrf_token": _hidden(html, "csrf_token"), "username": USER, "password": USER,
            "next": next_url}  # fmt: skip
    back = client.post("/login", data=form)
    assert back.status_code == 302 and back.headers["Location"] == next_url
    answer = callback(client.get(next_url))
    assert "code" in answer and answer.get("state", "") == state


def _hidden(html: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', html)
    assert found is not None, html[:300]
    return htmllib.unescape(found.group(1))


def test_a_signed_out_authorization_request_loads_no_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser with no host session: Flask-Login's load (session-protection hash, signals)
    could only find nobody; current_sign_in answers without it. A signed-in one still loads."""
    client = make_idp(tmp_path)
    params = authorize_params(registered(client)["client_id"])
    loads = user_loads(monkeypatch)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 200 and 'name="password"' in response.get_data(as_text=True)
    assert loads == []
    login(client)
    assert "code" in callback(client.get("/authorize", query_string=params))
    assert loads != []
