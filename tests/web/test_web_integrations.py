"""The Flask extension (``init_app``, app factories) and the Authlib mixin (issue 18.3), and the
example IdP using both and ``current_sign_in`` on its home page (issue 18.4)."""

from __future__ import annotations

import base64
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from idp_client import exchange, login, make_idp, registered, signed_in_code
from plain_wsgi_host import DictDirectory, Host
from webtest import T0, base_config

from oidc_combinedreg import CombinedRegistration, SignInResult, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.integrations.authlib import SignInClaimsMixin, code_claims
from oidc_combinedreg.integrations.flask import FlaskCombinedRegistration
from oidc_combinedreg.store.memory import MemoryStore

combinedreg = FlaskCombinedRegistration()  # module level, as a host's extensions.py has it


def _factory(tmp_path: Path, clock: FrozenClock) -> Flask:
    """A minimal Flask host made by an app factory: its own login, and a page asking the
    middleware who is signed in."""
    app = Flask(__name__)
    app.config["COMBINEDREG_CONFIG"] = parse_config(base_config(tmp_path))
    combinedreg.init_app(
        app, directory=DictDirectory(), authorization=Host(), store=MemoryStore(clock=clock),
        clock=clock,
    )  # fmt: skip

    @app.post("/login")
    def do_login() -> str:
        combinedreg.password_verified("alice")
        return "ok"

    @app.get("/me")
    def me() -> dict[str, Any]:
        state = combinedreg.current_sign_in()
        return {"user": state.user_id, "amr": list(state.amr)} if state else {"user": None}

    @app.post("/logout")
    def do_logout() -> str:
        combinedreg.sign_out()
        return "bye"

    return app


def test_init_app_mounts_on_wsgi_app_and_registers_the_extension(tmp_path: Path) -> None:
    clock = FrozenClock(T0)
    one, two = _factory(tmp_path, clock), _factory(tmp_path, clock)
    reg_one, reg_two = one.extensions["combinedreg"], two.extensions["combinedreg"]
    assert isinstance(reg_one, CombinedRegistration) and reg_one is not reg_two
    assert one.wsgi_app is reg_one  # the WSGI callable, never the Flask object, is wrapped
    assert FlaskCombinedRegistration.registration(one) is reg_one
    client = one.test_client()
    assert client.get("/me").get_json() == {"user": None}
    client.post("/login")
    assert client.get("/me").get_json() == {"user": "alice", "amr": ["pwd"]}
    assert two.test_client().get("/me").get_json() == {"user": None}  # another app's sessions
    client.post("/logout")
    assert client.get("/me").get_json() == {"user": None}
    assert client.get("/security-info/reset").status_code == 200  # the middleware's own pages


def test_init_app_reads_the_config_path_and_refuses_twice(tmp_path: Path) -> None:
    app = Flask(__name__)
    with pytest.raises(RuntimeError, match="COMBINEDREG_CONFIG"):
        combinedreg.init_app(app, directory=DictDirectory(), authorization=Host())
    path = tmp_path / "combinedreg.toml"
    data = base_config(tmp_path)
    path.write_text(_toml(data))
    app.config["COMBINEDREG_CONFIG"] = str(path)
    reg = combinedreg.init_app(app, directory=DictDirectory(), authorization=Host())
    assert reg.config.general.organization == "Test Org"
    with pytest.raises(RuntimeError, match="already mounted"):
        combinedreg.init_app(app, directory=DictDirectory(), authorization=Host())
    with pytest.raises(RuntimeError, match=r"not mounted on .* call init_app"):
        FlaskCombinedRegistration.registration(Flask("other"))


def _toml(data: dict[str, Any]) -> str:
    """The few shapes base_config uses, as TOML (tables of scalars and string lists)."""
    lines: list[str] = []

    def table(prefix: str, values: dict[str, Any]) -> None:
        scalars = {k: v for k, v in values.items() if not isinstance(v, dict)}
        lines.append(f"[{prefix}]")
        for key, value in scalars.items():
            lines.append(f"{key} = {json.dumps(value)}")
        for key, value in values.items():
            if isinstance(value, dict):
                table(f"{prefix}.{key}", value)

    for name, section in data.items():
        table(name, section)
    text = "\n".join(lines) + "\n"
    assert tomllib.loads(text) == data
    return text


def test_the_authlib_mixin_gives_authlib_the_sign_in_claims() -> None:
    from authlib.oidc.core.grants.code import OpenIDToken  # type: ignore[import-untyped]

    from oidc_combinedreg.integrations import authlib as integration

    result = SignInResult(user_id="alice", amr=("pwd", "otp", "mfa"), acr="urn:x:mfa",
                          auth_time=1_700_000_100)  # fmt: skip

    class Code(integration.AuthorizationCode):  # type: ignore[name-defined,misc]
        def __init__(self, claims: dict[str, Any]) -> None:
            self.amr, self.acr, self.auth_time = claims["amr"], claims["acr"], claims["auth_time"]

        def get_nonce(self) -> str:
            return "n-1"

    claims = OpenIDToken().get_authorization_code_claims(Code(code_claims(result)))
    assert claims == {"nonce": "n-1", "auth_time": 1_700_000_100, "acr": "urn:x:mfa",
                      "amr": ["pwd", "otp", "mfa"]}  # fmt: skip


def test_the_example_idp_uses_the_extension_and_the_mixin(tmp_path: Path) -> None:
    from example_idp.grants import StoredCode

    assert issubclass(StoredCode, SignInClaimsMixin)
    assert StoredCode.get_amr is SignInClaimsMixin.get_amr  # not its own copy
    client = make_idp(tmp_path)
    app = client.application
    reg = app.extensions["combinedreg"]
    assert isinstance(reg, CombinedRegistration)
    rp = registered(client)
    code, verifier = signed_in_code(client, rp["client_id"])
    id_token = exchange(client, rp, code, verifier)["id_token"]
    payload = json.loads(base64.urlsafe_b64decode(id_token.split(".")[1] + "=="))
    assert payload["amr"] == ["pwd"] and payload["acr"] == reg.config.acr.password
    assert isinstance(payload["auth_time"], int)


def test_the_example_idp_home_page_shows_how_and_when_the_user_signed_in(tmp_path: Path) -> None:
    client = make_idp(tmp_path, clock=FrozenClock(T0))  # 2023-11-14 22:13:20 UTC
    assert "You are not signed in" in client.get("/").get_data(as_text=True)
    login(client, "/")
    html = client.get("/").get_data(as_text=True)
    assert re.search(r"Signed in as <strong>[^<]+</strong>\s+with password, 22:13 UTC", html), html
