"""The interrupt wizard end to end through the example IdP, driven by the independent ``oic`` RP
(issue 5): two required methods with a real SMTP server, choosing a different method, skipping within
the allowance and refused beyond it, re-confirm after the interval (a clock the test moves), legacy
mode. The middleware pages are driven through their JSON twin; the code and ID token through oic.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
import tomllib
from collections.abc import Iterable, Iterator
from email import message_from_bytes
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pyotp
import pytest
import requests
from aiosmtpd.controller import Controller
from flask import Flask
from oic.oic import Client
from oic.utils.authn.client import CLIENT_AUTHN_METHOD
from test_oidc_provider import LOGOUT_URI, REDIRECT_URI, Rp, _callback, _field
from werkzeug.serving import make_server

from example_idp import create_app
from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock

pytestmark = pytest.mark.e2e

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
DAY = 86400
JSON = {"Accept": "application/json"}


class Mailbox:
    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(message_from_bytes(envelope.content))
        return "250 OK"

    def last_code(self, to: str) -> str:
        for message in reversed(self.messages):
            if to in message["To"]:
                body = message.get_payload(0).get_payload(decode=True).decode()
                match = re.search(r"\b(\d{6,8})\b", body)
                assert match, body
                return match.group(1)
        raise AssertionError(f"no message to {to}")


class Server:
    def __init__(self, url: str, clock: FrozenClock, mailbox: Mailbox, app: Flask) -> None:
        self.url, self.clock, self.mailbox, self.app = url, clock, mailbox, app


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("wizard-idp")
    mailbox = Mailbox()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        smtp_port = s.getsockname()[1]
    smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
    smtp.start()
    data = tomllib.loads((EXAMPLE_IDP / "combinedreg.toml").read_text())
    data["policies"]["sspr"]["methods_required"] = 2
    data["policies"]["sspr"]["reconfirm_days"] = 30
    data["policies"]["mfa_registration"]["skips_allowed"] = 1
    data["delivery"] = {
        "email": {
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from": "IdP <idp@example.test>",
        }
    }
    shutil.copytree(EXAMPLE_IDP, root / "example_idp", ignore=shutil.ignore_patterns("instance"))
    config = parse_config(data, base_dir=root / "example_idp")
    clock = FrozenClock(float(int(time.time())))  # oic checks iat against the real time
    apps: list[Flask] = []

    def dispatch(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return apps[0](environ, start_response)  # type: ignore[return-value]

    httpd = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://localhost:{httpd.server_port}"
    apps.append(
        create_app(
            instance_path=root / "instance", issuer=url, combinedreg_config=config, clock=clock
        )
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield Server(url, clock, mailbox, apps[0])
    finally:
        httpd.shutdown()
        thread.join(timeout=10)
        httpd.server_close()
        smtp.stop()


def _rp(server: Server) -> Rp:
    client = Client(client_authn_method=CLIENT_AUTHN_METHOD)
    client.provider_config(server.url)
    client.register(
        client.provider_info["registration_endpoint"],
        redirect_uris=[REDIRECT_URI],
        post_logout_redirect_uris=[LOGOUT_URI],
    )
    return Rp(idp=server, client=client)  # type: ignore[arg-type]


class Session:
    """One browser: an oic authorization request, the password, then the middleware's pages."""

    def __init__(self, server: Server, user: str) -> None:
        self.server, self.user = server, user
        self.rp = _rp(server)
        url, self.state, self.verifier = self.rp.authorize_url()
        page = self.rp.follow(url)
        form = {
            "username": user,
            "password": user,
            "csrf_token": _field(page.text, "csrf_token"),
            "next": _field(page.text, "next"),
        }
        r = self.rp.browser.post(urljoin(page.url, "/login"), data=form, allow_redirects=False)
        self.response = self.rp.follow(urljoin(page.url, r.headers["Location"]))
        self.url = self.response.url

    def page(self) -> dict[str, Any]:
        return self.rp.browser.get(self.url, headers=JSON).json()

    def post(self, **fields: str) -> requests.Response:
        data = {"csrf_token": self.page()["csrf_token"], **fields}
        r = self.rp.browser.post(self.url, json=data, headers=JSON, allow_redirects=False)
        if r.status_code == 303:
            self.response = self.rp.follow(urljoin(self.url, r.headers["Location"]))
            if not self.response.headers.get("Location", "").startswith(REDIRECT_URI):
                self.url = self.response.url
        return r

    def choose_app(self) -> None:
        """The demo proposes its authenticator web app first: "I want to set up a different
        method", an authenticator app of the user's own."""
        assert self.page()["page"] == "push_intro", self.page()
        r = self.post(action="choose", kind="totp")
        assert r.status_code == 303, r.text

    def register_app(self) -> str:
        assert self.page()["page"] == "totp_intro", self.page()
        self.post(action="next")
        secret = self.page()["secret"]
        self.post(action="next")
        r = self.post(action="verify", code=pyotp.TOTP(secret).at(self.server.clock.now()))
        assert r.status_code == 303, r.text
        self.post(action="next")  # method_added -> next
        return str(secret)

    def register_email(self, address: str) -> None:
        assert self.page()["page"] == "email_enter", self.page()
        r = self.post(action="next", email=address)
        assert r.status_code in (200, 303), r.text
        code = self.server.mailbox.last_code(address)
        r = self.post(action="verify", code=code)
        assert r.status_code == 303, r.text
        self.post(action="next")

    def id_token(self) -> dict[str, Any]:
        query = _callback(self.response)
        return dict(self.rp.exchange(query, self.state, self.verifier)["id_token"].to_dict())


def test_two_required_methods_app_then_email(server: Server) -> None:
    s = Session(server, "alice")
    first = s.page()
    assert first["progress"] == {
        "current": 1,
        "total": 2,
        "kind": "push",
        "name": "Authenticator app (notification)",
        "purpose": "both",
    }
    s.choose_app()
    assert s.page()["progress"] == {
        **first["progress"],
        "kind": "totp",
        "name": "Authenticator app",
    }
    s.register_app()
    second = s.page()
    assert second["page"] == "email_enter" and second["progress"]["current"] == 2
    s.register_email("alice.private@example.com")
    summary = s.page()
    assert summary["page"] == "wizard_summary"
    assert sorted(m["kind"] for m in summary["methods"]) == ["email", "totp"]
    s.post(action="finish")
    claims = s.id_token()
    assert {"pwd", "otp", "mfa"} <= set(claims["amr"])


def test_choosing_a_different_method_keeps_the_policies_met(server: Server) -> None:
    s = Session(server, "admin")
    choices = s.rp.browser.get(s.url + "&choose=1", headers=JSON).json()
    kinds = [c["kind"] for c in choices["alternatives"]]
    assert "email" not in kinds  # the first step is for MFA: email can't stand in for it
    assert "mobile_phone" in kinds or "webauthn" in kinds
    assert s.page()["page"] == "push_intro"  # the demo's web app, proposed first (issue 20)
    s.post(action="choose", kind="webauthn")
    assert s.page()["page"].startswith("webauthn"), s.page()["page"]
    s.post(action="choose", kind="totp")  # and back: the app after all
    s.register_app()
    s.register_email("admin.private@example.com")
    assert s.page()["page"] == "wizard_summary"


def test_skip_within_the_allowance_then_refused(server: Server) -> None:
    s = Session(server, "frank")  # frank: Conditional Access requires MFA, so no skipping
    assert s.page()["skips_left"] == 0
    assert s.post(action="skip").status_code == 403

    s = Session(server, "erin")
    assert s.page()["skips_left"] == 1
    s.post(action="skip")
    claims = s.id_token()  # postponed: signed in with the password only
    assert claims["amr"] == ["pwd"]
    server.clock.advance(15 * DAY)  # the postponement (14 days) is over
    s = Session(server, "erin")
    assert s.page()["page"] == "push_intro"
    assert s.page()["skips_left"] == 0
    assert s.post(action="skip").status_code == 403
    assert s.page()["page"] == "push_intro"


def test_reconfirm_after_the_interval(server: Server) -> None:
    s = Session(server, "dave")  # password reset only: two methods, no MFA enforcement
    s.choose_app()
    secret = s.register_app()
    s.register_email("dave.private@example.com")
    s.post(action="finish")
    assert _callback(s.response)["code"]
    server.clock.advance(31 * DAY)
    s = Session(server, "dave")
    # Re-confirming touches security info: a user with an MFA method proves it first.
    assert "/security-info/mfa" in s.url
    mfa = s.page()
    s.post(method_id=mfa["method"]["id"], code=pyotp.TOTP(secret).at(server.clock.now()))
    page = s.page()
    assert page["page"] == "reconfirm"
    assert sorted(m["kind"] for m in page["methods"]) == ["email", "totp"]
    s.post(action="looks_good")
    assert _callback(s.response)["code"]
    server.clock.advance(DAY)
    s = Session(server, "dave")  # confirmed: no interrupt the next day, and no MFA asked
    assert _callback(s.response)["code"]


def test_legacy_mode_shows_mfa_and_reset_as_two_parts(server: Server) -> None:
    server.clock.advance(DAY)
    s = Session(server, "erin")  # skipped earlier; the allowance is spent
    first = s.page()
    assert first["legacy"] is True and first["progress"]["purpose"] == "both"
    html = s.rp.browser.get(s.url).text
    assert "Additional security verification" in html
    s.choose_app()
    s.register_app()
    second = s.page()
    assert second["progress"]["purpose"] == "sspr"
    assert (
        "Don&#39;t lose access to your account" in s.rp.browser.get(s.url).text
        or "Don't lose access to your account" in s.rp.browser.get(s.url).text
    )
