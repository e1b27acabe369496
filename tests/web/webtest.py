"""Helpers for tests through the WSGI stack: a config, a cookie-keeping browser, URL helpers.

Imported by name (``from webtest import Browser``): a module called ``conftest`` would be
ambiguous across test folders.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyotp
import pytest
from plain_wsgi_host import Host
from werkzeug.test import Client, TestResponse

from oidc_combinedreg import CombinedRegistration
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.store.base import Store

T0 = 1_700_000_000.0


def base_config(tmp_path: Path, **sections: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {
        "general": {"organization": "Test Org", "environment": "development"},
        "web": {"secure_cookies": False},
        "secrets": {"encryption_keys": [generate_key()]},
        "storage": {"sqlite": {"path": str(tmp_path / "reg.sqlite3")}},
        "policies": {
            "mfa_registration": {"enforced": True, "exclude_groups": ["break-glass"]},
            # Tests drive the authenticator-app steps; other kinds are chosen explicitly.
            "wizard_preference": ["totp"],
        },
    }
    for name, value in sections.items():
        data[name] = value
    # Push registration is offered only with an app to install (issue 19.4); the tests' device is
    # the reference one (tests/e2e/test_push_device.py). A test may set app_name = "" to turn it off.
    methods = data["methods"] = {k: dict(v) for k, v in data.get("methods", {}).items()}
    methods.setdefault("push", {}).setdefault("app_name", "Test Authenticator")
    return data


class Browser:
    """A werkzeug test client with a cookie jar, plus helpers for the middleware's pages."""

    def __init__(self, reg: CombinedRegistration, host: Host, clock: FrozenClock) -> None:
        self.reg, self.host, self.clock = reg, host, clock
        self.client = Client(reg)

        self.remote_addr = "127.0.0.1"
        #: headers sent with every request (e.g. X-Forwarded-For from a "proxy")
        self.headers: dict[str, str] = {}

    def _kw(self, kw: dict[str, Any]) -> dict[str, Any]:
        kw.setdefault("environ_base", {"REMOTE_ADDR": self.remote_addr})
        if self.headers:
            kw["headers"] = {**self.headers, **(kw.get("headers") or {})}
        return kw

    def get(self, url: str, **kw: Any) -> TestResponse:
        return self.client.get(url, **self._kw(kw))

    def post(self, url: str, **kw: Any) -> TestResponse:
        return self.client.post(url, **self._kw(kw))

    def get_json(self, url: str, **kw: Any) -> TestResponse:
        kw["headers"] = {"Accept": "application/json", **(kw.get("headers") or {})}
        return self.client.get(url, **self._kw(kw))

    def post_json(self, url: str, data: dict[str, Any], **kw: Any) -> TestResponse:
        kw["headers"] = {"Accept": "application/json", **(kw.get("headers") or {})}
        return self.client.post(url, json=data, **self._kw(kw))

    def login(self, user: str, password: str | None = None) -> TestResponse:
        return self.post(
            "/login?next=/authorize%3Fclient_id%3Ddemo%26state%3Ds1",
            data={"username": user, "password": password or f"{user}-password"},
        )

    def authorize(self, query: str = "client_id=demo&state=s1") -> TestResponse:
        return self.get("/authorize?" + query)

    def csrf(self, url: str) -> str:
        body = self.get_json(url).get_json()
        assert body is not None and "csrf_token" in body, body
        return str(body["csrf_token"])

    def register_totp(self, wizard_url: str) -> str:
        """Walk the wizard's authenticator-app step with the JSON twin; returns the secret."""
        token = self.csrf(wizard_url)
        self.post_json(wizard_url, {"action": "next", "csrf_token": token})  # intro -> setup
        setup = self.get_json(wizard_url).get_json()
        secret = setup["secret"]
        self.post_json(wizard_url, {"action": "next", "csrf_token": token})  # setup -> verify
        code = pyotp.TOTP(secret).at(self.clock.now())
        r = self.post_json(wizard_url, {"action": "verify", "code": code, "csrf_token": token})
        assert r.status_code == 303, r.get_data(as_text=True)
        added = self.get_json(wizard_url).get_json()
        assert added["page"] == "method_added", added
        self.post_json(wizard_url, {"action": "next", "csrf_token": token})  # -> next or summary
        return str(secret)

    def at_mfa_with_totp(self, user: str = "alice") -> tuple[str, dict[str, str]]:
        """Register an authenticator app in a first sign-in, then sign in again two minutes
        later up to the MFA step: (its URL, the form that verifies the app's current code).
        Each password's answer is followed as a browser follows it: straight to the step's page
        (decision 226)."""
        wizard = location(self.login(user))
        assert wizard.startswith("/security-info/wizard?c="), wizard
        secret = self.register_totp(wizard)
        self.post_json(wizard, {"action": "finish", "csrf_token": self.csrf(wizard)})
        self.clock.advance(120)
        mfa_url = location(self.login(user))
        assert mfa_url.startswith("/security-info/mfa?c="), mfa_url
        page = self.get_json(mfa_url).get_json()
        form = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
                "code": pyotp.TOTP(secret).at(self.clock.now())}  # fmt: skip
        return mfa_url, form


def notices(store: Store, user_id: str) -> list[tuple[str, str, str]]:
    """The "security info changed" notices queued for a user, oldest first: (change, kind,
    detail). Queued with the change itself (SECURITY.md case 17), sent or not."""
    queued = store.list_audit(user_id=user_id, event_prefix="notify.queued", limit=1000)
    return [(e.detail["change"], e.detail["kind"], e.detail["detail"]) for e in reversed(queued)]


def stored_conts(browser: Browser) -> dict[str, Any]:
    """The continuations of the browser's middleware session as the store holds them."""
    cookie = browser.client.get_cookie(browser.reg.sessions.cookie_name)
    assert cookie is not None
    data = browser.reg.store.load_session(cookie.value)
    assert data is not None
    conts: dict[str, Any] = data.get("conts") or {}
    return conts


def cid_of(url: str) -> str:
    """The continuation id ``c`` of a middleware URL."""
    found = re.search(r"[?&]c=([^&]+)", url)
    assert found is not None, url
    return found.group(1)


#: a Conditional Access policy blocking every user's sign-in to the demo client
BLOCK_DEMO: dict[str, Any] = {
    "name": "Block demo",
    "state": "on",
    "assignments": {"include_users": ["all"]},
    "target": {"applications": ["demo"]},
    "grant": {"block": True},
}

#: a report-only Conditional Access policy asking MFA of every user for every application
TRIAL_MFA: dict[str, Any] = {
    "name": "Trial: MFA everywhere",
    "state": "report-only",
    "assignments": {"include_users": ["all"]},
    "target": {"applications": ["all"]},
    "grant": {"require": ["mfa"]},
}


def location(response: TestResponse) -> str:
    return response.headers.get("Location", "")


def code_from(response: TestResponse) -> str | None:
    m = re.search(r"[?&]code=([^&]+)", location(response))
    return m.group(1) if m else None


def post_with_change_after_read(
    browser: Browser,
    store: Store,
    url: str,
    form: dict[str, str],
    change: Callable[[str, str, object], None],
) -> TestResponse:
    """POST ``form`` to ``url`` with ``change(user_id, method_id, record)`` run right after the
    view read its method (``store.get_method``), before the code is used: what another tab or
    process does in between (the round-trip tests' races)."""
    read = store.get_method

    def read_then_change(user_id: str, method_id: str) -> object:
        record = read(user_id, method_id)
        change(user_id, method_id, record)
        return record

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(store, "get_method", read_then_change)
        return browser.post(url, data=form)


def assert_method_removed_after_read_is_refused(
    browser: Browser, store: Store, remover: Store | None = None
) -> None:
    """alice's MFA verify with her authenticator app removed (by ``remover``: another store on
    the same data, else ``store``) right after the view read it, before the code is used: the
    call that uses the code must find it gone (the stores that answer the read from the
    session's load, decisions 216, 218, 219), so the sign-in does not pass with it (fail
    closed): no success audited, the failure audited."""
    mfa_url, form = browser.at_mfa_with_totp()

    def removed_elsewhere(user_id: str, method_id: str, record: object) -> None:
        assert record is not None, "the method as the request loaded it"
        assert (remover or store).delete_method(user_id, method_id) is True

    r = post_with_change_after_read(browser, store, mfa_url, form, removed_elsewhere)

    assert r.status_code != 303
    assert store.list_audit(event_prefix="mfa.succeeded", limit=100) == []
    failed = store.list_audit(event_prefix="mfa.failed", limit=100)
    assert [e.user_id for e in failed] == ["alice"]
