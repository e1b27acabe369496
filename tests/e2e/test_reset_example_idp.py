"""Password reset end to end through the example IdP over HTTP, with email through a real SMTP
server on loopback (aiosmtpd): 1 and 2 required methods, email + TOTP + questions, enumeration,
old sessions dead, the new password signs in."""

from __future__ import annotations

import re
import sys
import threading
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from email.message import Message
from pathlib import Path
from typing import Any

import pyotp
import pytest
import requests
from werkzeug.serving import make_server

from example_idp import create_app
from oidc_combinedreg import CombinedRegistration, Config, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import fast_hasher_for_tests
from oidc_combinedreg.methods.questions import DEFAULT_QUESTIONS, QuestionAnswer

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "delivery"))
from servers import Mailbox, smtp_server  # noqa: E402

pytestmark = pytest.mark.e2e

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
T0 = 1_700_000_000.0
ANSWERS = ("amsterdam harbour", "blue bicycle", "grandma rosa")


@dataclass
class Idp:
    url: str
    reg: CombinedRegistration
    clock: FrozenClock
    mailbox: Mailbox
    app: Any


def _config(tmp: Path, smtp_port: int, required: int) -> Config:
    # The demo's config with this test's keys set (the demo has questions on, two methods).
    data = tomllib.loads((EXAMPLE_IDP / "combinedreg.toml").read_text())
    assert data["policies"]["methods"]["security_questions"]["enabled"] is True
    data["policies"]["sspr"]["methods_required"] = required
    data["policies"]["sspr"]["methods"] = ["totp", "email", "security_questions"]
    data["delivery"] = {
        "public_url": "http://localhost",
        "email": {
            "provider": "smtp",
            "host": "127.0.0.1",
            "port": smtp_port,
            "security": "none",
            "from": "Contoso <no-reply@example.test>",
        },
    }
    return parse_config(data, base_dir=tmp)  # its relative paths: tmp/instance


@pytest.fixture(params=[1, 2], ids=["one method required", "two methods required"])
def idp(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Idp]:
    with smtp_server() as (port, mailbox):
        clock = FrozenClock(T0)
        config = _config(tmp_path, port, request.param)
        holder: list[Any] = []
        server = make_server("127.0.0.1", 0, lambda e, s: holder[0](e, s), threaded=True)
        url = f"http://localhost:{server.server_port}"
        app = create_app(
            instance_path=tmp_path / "instance", issuer=url, combinedreg_config=config, clock=clock
        )
        holder.append(app)
        reg: CombinedRegistration = app.extensions["combinedreg"]
        reg.info.questions.hasher = fast_hasher_for_tests()
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield Idp(url, reg, clock, mailbox, app)
        finally:
            server.shutdown()
            thread.join(timeout=10)
            server.server_close()


def _seed(idp: Idp) -> tuple[str, dict[str, str]]:
    info = idp.reg.info
    setup, state = info.totp.register_begin("alice", "alice", None)
    info.totp.register_complete(
        "alice", state, pyotp.TOTP(setup.secret).at(T0), label="Phone", ip=None
    )
    pairs = [
        QuestionAnswer(question=q, answer=a)
        for q, a in zip(DEFAULT_QUESTIONS, ANSWERS, strict=False)
    ]
    info.questions.register("alice", pairs, ip=None)
    idp.reg.password_reset.email.ctx.store.add_method(
        _email_record(idp, "alice.home@example.test"), limit=1
    )
    idp.clock.advance(30)
    return setup.secret, {p.question: p.answer for p in pairs}


def _email_record(idp: Idp, address: str) -> Any:
    from oidc_combinedreg.methods.kinds import MethodKind
    from oidc_combinedreg.store.base import MethodRecord

    return MethodRecord(
        id="email-1",
        user_id="alice",
        kind=MethodKind.EMAIL,
        label=address,
        created_at=T0,
        data={"email": address},
    )


class Browser:
    def __init__(self, idp: Idp) -> None:
        self.idp = idp
        self.s = requests.Session()
        self.token = ""

    def get(self, path: str) -> requests.Response:
        r = self.s.get(self.idp.url + path, timeout=10)
        m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        if m:
            self.token = m.group(1)
        return r

    def post(self, path: str, **data: str) -> requests.Response:
        r = self.s.post(self.idp.url + path, data={"csrf_token": self.token, **data}, timeout=10)
        m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        if m:
            self.token = m.group(1)
        return r


def _code_in(message: Message) -> str:
    for part in message.walk():
        if part.get_content_type() == "text/plain":
            body = part.get_payload(decode=True)
            assert isinstance(body, bytes)
            found = re.search(r"\b(\d{6,8})\b", body.decode())
            if found:
                return found.group(1)
    raise AssertionError("no code in the message")


def _sign_in(idp: Idp, password: str) -> requests.Session:
    b = Browser(idp)
    b.get("/login")
    r = b.post("/login", username="alice", password=password)
    assert r.status_code == 200, r.status_code  # 401 for a wrong password
    return b.s


def test_login_page_links_to_the_reset(idp: Idp) -> None:
    page = Browser(idp).get("/login").text
    assert 'href="/security-info/reset"' in page


def test_reset_with_email_totp_and_questions_through_the_example_idp(idp: Idp) -> None:
    secret, answers = _seed(idp)
    old = _sign_in(idp, "alice")
    b = Browser(idp)
    assert "Reset your password" in b.get("/security-info/reset").text
    chooser = b.post("/security-info/reset", action="account", account="alice")
    assert "Verify your identity" in chooser.text
    # The email code goes through the real SMTP server.
    r = b.post("/security-info/reset/method", action="choose", choice="email")
    assert "we sent a code" in r.text
    to_home = [m for m in idp.mailbox.messages if m["To"] == "alice.home@example.test"]
    r = b.post("/security-info/reset/verify", action="verify", code=_code_in(to_home[-1]))
    # Alice has an authenticator app (MFA): email alone never resets; the app is asked next.
    assert "Choose a new password" not in r.text
    r = b.post("/security-info/reset/method", action="choose", choice="app_code")
    code = pyotp.TOTP(secret).at(idp.clock.now())
    r = b.post("/security-info/reset/verify", action="verify", code=code)
    assert "Choose a new password" in r.text
    r = b.post("/security-info/reset/password", action="password", password="x", confirm="x")
    assert r.status_code == 400 and "Use at least 8 characters." in r.text
    r = b.post(
        "/security-info/reset/password",
        action="password",
        password="correct horse battery",
        confirm="correct horse battery",
    )
    assert r.status_code == 200 and "Your password was changed" in r.text
    # Notified on every address; the host's own sessions ended through its hook.
    notices = [m for m in idp.mailbox.messages if "password was changed" in str(m["Subject"])]
    assert sorted(str(m["To"]) for m in notices) == [
        "alice.home@example.test",
        "alice@example.test",
    ]
    assert idp.app.extensions["example_idp"].directory.sessions_ended_at("alice") is not None
    r = old.get(idp.url + "/authorize?client_id=x", allow_redirects=False, timeout=10)
    assert r.status_code in (302, 303, 400) and "code=" not in r.headers.get("Location", "")
    idp.clock.advance(2)
    _sign_in(idp, "correct horse battery")
    b2 = Browser(idp)
    b2.get("/login")
    assert b2.post("/login", username="alice", password="alice").status_code == 401


def test_questions_then_app_and_wrong_answers(idp: Idp) -> None:
    secret, answers = _seed(idp)
    b = Browser(idp)
    b.get("/security-info/reset")
    r = b.post("/security-info/reset", action="account", account="alice")
    if idp.reg.config.policies.sspr.methods_required == 1:
        # Questions are never the only method a reset rests on (allow_questions_alone is off).
        assert 'value="questions"' not in r.text
        return
    assert 'value="questions"' in r.text
    r = b.post("/security-info/reset/method", action="choose", choice="questions")
    asked = [q for q in DEFAULT_QUESTIONS if q in r.text]
    wrong = {f"answer{i}": "nope nope" for i in range(len(asked))}
    r = b.post("/security-info/reset/verify", action="verify", **wrong)
    assert r.status_code == 400 and "nope nope" not in r.text
    right = {f"answer{i}": answers[q] for i, q in enumerate(asked)}
    r = b.post("/security-info/reset/verify", action="verify", **right)
    assert "Verify your identity" in r.text
    b.post("/security-info/reset/method", action="choose", choice="app_code")
    r = b.post(
        "/security-info/reset/verify", action="verify", code=pyotp.TOTP(secret).at(idp.clock.now())
    )
    assert "Choose a new password" in r.text


def test_unknown_and_known_accounts_look_the_same(idp: Idp) -> None:
    _seed(idp)
    seen = []
    for account in ("alice", "nobody-here"):
        b = Browser(idp)
        b.get("/security-info/reset")
        r = b.post("/security-info/reset", action="account", account=account)
        seen.append((r.status_code, re.sub(r'value="[^"]{43}"', "", r.text)))
    assert seen[0] == seen[1]
