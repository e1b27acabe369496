"""The example IdP's login page loads no user (issue 22): Flask-Login's context processor loaded
one (its session-protection hash, the user loader) for every page rendered; templates now get
the ``current_user`` proxy, which loads the user only when a template uses it."""

from __future__ import annotations

from pathlib import Path

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
    "next_url",
    [
        "/authorize?client_id=demo&scope=openid+profile&state=a%26b",
        "/authorize?redirect_uri=https%3A%2F%2Frp.example%2Fcb%3Fx%3D1&nonce=~-_.!$'()*,;:@",
        "/authorize?q=caf\u00e9 #frag%",
        "",
    ],
)
@pytest.mark.parametrize("script_name", ["", "/idp"])
def test_the_login_url_is_url_fors(tmp_path: Path, next_url: str, script_name: str) -> None:
    """The authorization request's redirect to the login page is built without url_for
    (oidc_views._login_url): the same string url_for makes, under a mounted app's root too."""
    from flask import url_for

    from example_idp.oidc_views import _login_url

    app = make_idp(tmp_path).application
    with app.test_request_context("/authorize", environ_base={"SCRIPT_NAME": script_name}):
        assert _login_url(next_url) == url_for("login.login", next=next_url)


def test_the_redirect_to_the_login_page_builds_no_url(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from idp_client import authorize_params, registered
    from werkzeug.routing import MapAdapter

    client = make_idp(tmp_path)
    params = authorize_params(registered(client)["client_id"])
    built: list[str] = []
    build = MapAdapter.build

    def counting(self: MapAdapter, endpoint: str, *args: object, **kwargs: object) -> str:
        built.append(endpoint)
        return build(self, endpoint, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(MapAdapter, "build", counting)
    response = client.get("/authorize", query_string=params)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=/authorize?client_id%3D")
    assert built == []


def test_a_signed_out_authorization_request_loads_no_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A browser with no host session: Flask-Login's load (session-protection hash, signals)
    could only find nobody; current_sign_in answers without it. A signed-in one still loads."""
    client = make_idp(tmp_path)
    params = authorize_params(registered(client)["client_id"])
    loads = user_loads(monkeypatch)
    response = client.get("/authorize", query_string=params)
    assert response.headers["Location"].startswith("/login?")
    assert loads == []
    login(client)
    assert "code" in callback(client.get("/authorize", query_string=params))
    assert loads != []
