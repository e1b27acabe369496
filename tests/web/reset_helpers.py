"""Helpers for the password-reset tests: a host with SSPR on, methods seeded through the services,
and a small driver for the reset pages' JSON twin."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import plain_wsgi_host
import pyotp
import pytest
from plain_wsgi_host import DictDirectory, make_app
from webtest import Browser, base_config, location
from werkzeug.test import TestResponse

from oidc_combinedreg import CombinedRegistration, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import fast_hasher_for_tests
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.methods.questions import DEFAULT_QUESTIONS, QuestionAnswer
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore

RESET = "/security-info/reset"
ANSWERS = ("amsterdam harbour", "blue bicycle", "grandma rosa")


@dataclass
class ResetEnv:
    browser: Browser
    sender: RecordingSender
    store: SqliteStore
    hook_calls: list[str] = field(default_factory=list)

    @property
    def reg(self) -> CombinedRegistration:
        return self.browser.reg

    def new_browser(self) -> Browser:
        return Browser(self.browser.reg, self.browser.host, self.browser.clock)


def make_env(
    tmp_path: Path,
    clock: FrozenClock,
    monkeypatch: pytest.MonkeyPatch,
    *,
    required: int = 1,
    sspr: dict[str, Any] | None = None,
    groups: dict[str, frozenset[str]] | None = None,
    questions: dict[str, Any] | None = None,
) -> ResetEnv:
    # set_password changes the example host's module-level users: give each test its own.
    monkeypatch.setattr(plain_wsgi_host, "USERS", dict(plain_wsgi_host.USERS))
    sender = RecordingSender()
    data = base_config(tmp_path, delivery={"public_url": "https://idp.example.test"})
    data["policies"]["sspr"] = {
        "enabled_for": "all",
        "methods_required": required,
        "methods": ["totp", "push", "hardware_oath", "mobile_phone", "email", "security_questions"],
        **(sspr or {}),
    }
    data["policies"]["methods"] = {"security_questions": {"enabled": True}}
    if questions is not None:
        data["methods"] = {"questions": questions}
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    calls: list[str] = []
    reg, host = make_app(
        parse_config(data),
        DictDirectory(groups),
        store=store,
        clock=clock,
        delivery=sender.delivery(),
        on_password_reset=calls.append,
    )
    reg.info.questions.hasher = fast_hasher_for_tests()
    return ResetEnv(Browser(reg, host, clock), sender, store, calls)


# -- seeding methods --------------------------------------------------------------------------


def add_email(reg: CombinedRegistration, user: str, address: str | None = None) -> None:
    address = address or f"{user}.private@example.test"
    record = MethodRecord(
        id=secrets.token_urlsafe(12),
        user_id=user,
        kind=MethodKind.EMAIL,
        label=address,
        created_at=reg.clock.now(),
        data={"email": address},
    )
    reg.store.add_method(record, limit=1)


def add_phone(reg: CombinedRegistration, user: str, phone: str = "+14255550123") -> None:
    record = MethodRecord(
        id=secrets.token_urlsafe(12),
        user_id=user,
        kind=MethodKind.MOBILE_PHONE,
        label=phone,
        created_at=reg.clock.now(),
        data={"phone": phone},
    )
    reg.store.add_method(record, limit=1)


def add_totp(reg: CombinedRegistration, user: str) -> str:
    setup, state = reg.info.totp.register_begin(user, user, None)
    code = pyotp.TOTP(setup.secret).at(reg.clock.now())
    reg.info.totp.register_complete(user, state, code, label="Phone", ip=None)
    return setup.secret


def add_questions(reg: CombinedRegistration, user: str) -> dict[str, str]:
    pairs = [
        QuestionAnswer(question=q, answer=a)
        for q, a in zip(DEFAULT_QUESTIONS, ANSWERS, strict=False)
    ]
    reg.info.questions.register(user, pairs, ip=None)
    return {p.question: p.answer for p in pairs}


# -- driving the pages ------------------------------------------------------------------------


class Reset:
    """The reset pages through their JSON twin, for one browser."""

    def __init__(self, browser: Browser) -> None:
        self.b = browser
        self.token = ""

    def page(self, url: str = RESET) -> dict[str, Any]:
        r = self.b.get_json(url)
        while r.status_code == 303:
            r = self.b.get_json(location(r))
        body = r.get_json()
        assert body is not None, r.get_data(as_text=True)
        self.token = str(body.get("csrf_token", self.token))
        return dict(body)

    def post(self, step: str, **fields: Any) -> TestResponse:
        url = RESET if step == "account" else f"{RESET}/{step}"
        return self.b.post_json(url, {"csrf_token": self.token, **fields})

    def start(self, account: str) -> dict[str, Any]:
        self.page()
        r = self.post("account", action="account", account=account)
        assert r.status_code == 303, r.get_data(as_text=True)
        return self.page(location(r))

    def choose(self, choice: str) -> dict[str, Any]:
        r = self.post("method", action="choose", choice=choice)
        assert r.status_code == 303, r.get_data(as_text=True)
        return self.page(location(r))

    def verify(self, **fields: Any) -> TestResponse:
        return self.post("verify", action="verify", **fields)

    def new_password(self, password: str, confirm: str | None = None) -> TestResponse:
        return self.post(
            "password", action="password", password=password, confirm=confirm or password
        )


def phone_env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    """A reset host whose alice has a mobile phone (the default number): the code sends'
    refusals and quotas tests."""
    env = make_env(tmp_path, clock, monkeypatch)
    add_phone(env.reg, "alice")
    return env


def reset_call(env: ResetEnv, address: str) -> int:
    """One anonymous reset flow for alice from ``address``, asking for a call; then past the
    resend cool-down, so that only the quotas refuse the next one. The status of the choice."""
    browser = env.new_browser()
    browser.remote_addr = address
    flow = Reset(browser)
    flow.start("alice")
    status = flow.post("method", action="choose", choice="mobile_call").status_code
    env.browser.clock.advance(61)
    return status
