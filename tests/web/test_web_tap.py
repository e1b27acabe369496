"""Temporary Access Pass through the WSGI stack: a user with no methods signs in with a pass and
registers; expired, used and revoked passes fail (SECURITY.md case 16)."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from admin_helpers import admin_section, api, fast_taps
from plain_wsgi_host import DictDirectory, Host
from webtest import Browser, base_config, code_from, location

from oidc_combinedreg import CombinedRegistration, parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.conditional_access import REGISTER_SECURITY_INFO, Outcome
from oidc_combinedreg.store.sqlite import SqliteStore

UNTRUSTED = "203.0.113.9"


class TapHost:
    """The example host plus the few lines a host adds for a "Use a Temporary Access Pass" form."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/login-tap":
            return self.host(environ, start_response)
        size = int(environ.get("CONTENT_LENGTH") or 0)
        form = parse_qs(environ["wsgi.input"].read(min(size, 4096)).decode())
        user, code = form.get("username", [""])[0], form.get("pass", [""])[0]
        assert self.host.reg is not None
        if not self.host.reg.verify_temporary_access_pass(environ, user, code):
            start_response("401 Unauthorized", [("Content-Type", "text/plain")])
            return [b"That pass isn't valid."]
        sid = secrets.token_urlsafe(32)
        self.host.sessions[sid] = user
        cookie = f"host_sid={sid}; Path=/; HttpOnly; SameSite=Lax"
        start_response(
            "303 See Other",
            [("Location", "/authorize?client_id=demo&state=s1"), ("Set-Cookie", cookie)],
        )
        return [b""]


@pytest.fixture
def make_tap_browser(tmp_path: Path, clock: FrozenClock) -> Iterator[Callable[..., Browser]]:
    stores: list[SqliteStore] = []

    def factory(**sections: Any) -> Browser:
        config = parse_config(base_config(tmp_path, admin=admin_section(), **sections))
        store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
        stores.append(store)
        host = Host()
        reg = CombinedRegistration(
            TapHost(host),
            config=config,
            directory=DictDirectory(),
            store=store,
            clock=clock,
            authorization=host,
        )
        host.reg = reg
        return fast_taps(Browser(reg, host, clock))

    yield factory
    for store in stores:
        store.close()


def issue(browser: Browser, user: str = "alice", **body: Any) -> str:
    r = api(browser, "POST", f"/users/{user}/tap", json=body)
    assert r.status_code == 201, r.get_data(as_text=True)
    return str(r.get_json()["code"])


def tap_login(browser: Browser, code: str, user: str = "alice") -> int:
    return browser.post("/login-tap", data={"username": user, "pass": code}).status_code


def test_a_user_with_no_methods_signs_in_with_a_pass_and_registers(
    make_tap_browser: Callable[..., Browser],
) -> None:
    browser = make_tap_browser()
    assert browser.reg.store.list_methods("alice") == []
    assert tap_login(browser, issue(browser)) == 303
    r = browser.authorize()
    wizard = location(r)
    assert wizard.startswith("/security-info/wizard"), "registration enforced, MFA already done"
    browser.register_totp(wizard)
    token = browser.csrf(wizard)
    r = browser.post_json(wizard, {"action": "finish", "csrf_token": token})
    code = code_from(browser.get(location(r)))
    assert code is not None
    issued = browser.host.codes[code]
    assert issued["sub"] == "alice" and "pwd" not in issued["amr"]
    assert {"otp", "mfa"} <= set(issued["amr"]) and issued["acr"] == "urn:combinedreg:acr:mfa"
    assert [m.kind.value for m in browser.reg.store.list_methods("alice")] == ["totp"]
    used = browser.reg.store.list_audit(event_prefix="tap.used")
    assert len(used) == 1 and used[0].ip == "127.0.0.1"


def test_a_pass_session_passes_the_manage_pages_gate(
    make_tap_browser: Callable[..., Browser],
) -> None:
    browser = make_tap_browser(policies={})
    tap_login(browser, issue(browser))
    assert browser.get_json("/security-info/").get_json()["page"] == "manage"


@pytest.mark.parametrize(
    ("spoil", "reason"),
    [
        pytest.param(lambda b, c: b.clock.advance(61 * 60), "expired", id="an expired pass"),
        pytest.param(lambda b, c: tap_login(b, c), "used", id="a one-time pass used once"),
        pytest.param(
            lambda b, c: api(b, "DELETE", "/users/alice/tap"), "revoked", id="a revoked pass"
        ),
    ],
)
def test_spent_passes_fail_and_are_audited(
    make_tap_browser: Callable[..., Browser],
    spoil: Callable[[Browser, str], object],
    reason: str,
) -> None:
    browser = make_tap_browser()
    code = issue(browser, lifetime_minutes=60)
    spoil(browser, code)
    other = make_tap_browser()  # a fresh browser, as an attacker holding the pass would be
    assert tap_login(other, code) == 401
    assert browser.reg.store.list_audit(event_prefix="tap.failed")[0].detail["reason"] == reason
    assert other.authorize().status_code == 302  # no sign-in: back to the host's login


def test_a_pass_for_one_user_does_not_sign_in_another(
    make_tap_browser: Callable[..., Browser],
) -> None:
    browser = make_tap_browser()
    code = issue(browser, "alice")
    assert tap_login(browser, code, user="bob") == 401


CA_MFA_OUTSIDE_OFFICE = {
    "named_locations": [{"name": "office", "ranges": ["127.0.0.0/8"], "trusted": True}],
    "conditional_access": [
        {
            "name": "Registration outside the office needs MFA",
            "state": "on",
            "assignments": {"include_users": ["all"]},
            "target": {"user_action": "register-security-information"},
            "conditions": {"locations": {"include": ["any"], "exclude": ["all-trusted"]}},
            "grant": {"require": ["mfa"]},
        }
    ],
}


@pytest.mark.parametrize(
    ("with_pass", "outcome"),
    [
        pytest.param(False, Outcome.REQUIRE_CONTROLS, id="a password alone from outside needs MFA"),
        pytest.param(True, Outcome.ALLOW, id="a pass session satisfies the policy's MFA"),
    ],
)
def test_conditional_access_sees_mfa_satisfied_in_a_pass_session(
    make_tap_browser: Callable[..., Browser], with_pass: bool, outcome: Outcome
) -> None:
    browser = make_tap_browser(**CA_MFA_OUTSIDE_OFFICE)
    code = issue(browser)  # issued from the office (127.0.0.1)
    browser.remote_addr = UNTRUSTED
    if with_pass:
        assert tap_login(browser, code) == 303
    else:
        browser.login("alice")
    cookie = browser.client.get_cookie("combinedreg")
    assert cookie is not None
    session = browser.reg.sessions.load({"HTTP_COOKIE": f"combinedreg={cookie.value}"})
    user = browser.reg.directory.get_user("alice")
    assert session is not None and user is not None
    environ = {"REMOTE_ADDR": UNTRUSTED}
    decision = browser.reg.evaluate_ca(environ, session, user, REGISTER_SECURITY_INFO)
    assert decision.outcome is outcome
