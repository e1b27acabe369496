"""The example IdP's login page loads no user (issue 22): Flask-Login's context processor loaded
one (its session-protection hash, the user loader) for every page rendered; templates now get
the ``current_user`` proxy, which loads the user only when a template uses it."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import render_template_string
from flask_login import LoginManager
from idp_client import USER, login, make_idp


def test_the_login_page_loads_no_user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    client = make_idp(tmp_path)
    loads: list[object] = []
    load = LoginManager._load_user

    def counting(self: LoginManager) -> object:
        loads.append(self)
        return load(self)

    monkeypatch.setattr(LoginManager, "_load_user", counting)
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
