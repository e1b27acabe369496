"""The middleware asks the host's Directory at most once per request (issue 22.2): the guard, the
MFA POST, the wizard and manage mode. A change in the directory (a group removed, an account
disabled) still takes effect at the user's next request: nothing is kept across requests."""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable
from pathlib import Path

import pyotp
import pytest
from plain_wsgi_host import DictDirectory, make_app
from webtest import Browser, base_config, location
from werkzeug.test import TestResponse

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.directory import DirectoryUser, PerUserMfa, RequestScopedDirectory
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore


class CountingDirectory(DictDirectory):
    """The example host's directory, counting get_user calls; ``disabled`` users are disabled."""

    def __init__(self, groups: dict[str, frozenset[str]] | None = None) -> None:
        super().__init__(groups)
        self.calls = 0
        self.disabled: set[str] = set()

    def get_user(self, user_id: str) -> DirectoryUser | None:
        self.calls += 1
        user = super().get_user(user_id)
        if user is not None and user_id in self.disabled:
            return dataclasses.replace(user, enabled=False)
        return user


@pytest.fixture
def counted(
    tmp_path: Path, clock: FrozenClock
) -> tuple[Browser, CountingDirectory, Callable[[Callable[[], TestResponse]], int]]:
    directory = CountingDirectory({"bob": frozenset({"break-glass"})})
    config = parse_config(base_config(tmp_path))
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(config, directory, store=store, clock=clock)
    browser = Browser(reg, host, clock)

    def calls(request: Callable[[], TestResponse]) -> int:
        before = directory.calls
        request()
        return directory.calls - before

    return browser, directory, calls


Counted = tuple[Browser, CountingDirectory, Callable[[Callable[[], TestResponse]], int]]


def test_the_wizard_and_the_guard_ask_once_per_request(counted: Counted) -> None:
    browser, _, calls = counted
    browser.login("alice")
    assert calls(lambda: browser.authorize()) <= 1  # the guard: registration needed
    wizard = location(browser.authorize())
    wizard = location(browser.get(wizard)) or wizard
    assert calls(lambda: browser.get_json(wizard)) <= 1
    token = browser.csrf(wizard)
    assert calls(lambda: browser.post_json(wizard, {"action": "next", "csrf_token": token})) <= 1
    secret = browser.get_json(wizard).get_json()["secret"]
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    code = pyotp.TOTP(secret).at(browser.clock.now())
    verify = {"action": "verify", "code": code, "csrf_token": token}
    assert calls(lambda: browser.post_json(wizard, verify)) <= 1
    finish = {"action": "finish", "csrf_token": browser.csrf(wizard)}
    assert calls(lambda: browser.post_json(wizard, finish)) <= 1
    assert calls(lambda: browser.authorize()) <= 1  # the guard: cleared, the host issues a code


def test_the_mfa_page_and_its_post_ask_once_per_request(counted: Counted) -> None:
    browser, _, calls = counted
    mfa_url, form = browser.at_mfa_with_totp("alice")
    assert calls(lambda: browser.get_json(mfa_url)) <= 1
    response: list[TestResponse] = []
    assert calls(lambda: response.append(browser.post(mfa_url, data=form)) or response[0]) <= 1
    assert response[0].status_code == 303, response[0].get_data(as_text=True)[:300]


def test_manage_mode_asks_once_per_request(counted: Counted) -> None:
    browser, _, calls = counted
    mfa_url, form = browser.at_mfa_with_totp("alice")
    browser.post(mfa_url, data=form)
    record = MethodRecord(id=secrets.token_urlsafe(12), user_id="alice",
                          kind=MethodKind.MOBILE_PHONE, label="+1 XXXXXXXX67",
                          created_at=browser.clock.now(), data={"phone": "+14255550167"})  # fmt: skip
    browser.reg.store.add_method(record, limit=100)
    assert calls(lambda: browser.get_json("/security-info/")) <= 1
    delete = f"/security-info/methods/{record.id}/delete"
    assert calls(lambda: browser.get_json(delete)) <= 1
    token = browser.csrf(delete)
    response: list[TestResponse] = []
    post = lambda: response.append(browser.post_json(delete, {"csrf_token": token})) or response[0]  # noqa: E731
    assert calls(post) <= 1
    assert location(response[0]) == "/security-info/?done=deleted"


def test_a_disabled_account_takes_effect_at_its_next_request(counted: Counted) -> None:
    browser, directory, _ = counted
    mfa_url, form = browser.at_mfa_with_totp("alice")
    browser.post(mfa_url, data=form)
    assert browser.get_json("/security-info/").status_code == 200
    directory.disabled.add("alice")
    assert browser.get_json("/security-info/").status_code == 401  # not signed in any more
    directory.disabled.clear()  # nothing was kept from the last request either way
    assert browser.get_json("/security-info/").get_json()["page"] == "manage"


def test_within_a_request_a_change_made_through_the_directory_is_seen(counted: Counted) -> None:
    browser, directory, _ = counted
    scoped = browser.reg.directory
    with RequestScopedDirectory.request_scope():
        before = directory.calls
        assert scoped.get_user("alice").per_user_mfa is PerUserMfa.DISABLED  # type: ignore[union-attr]
        scoped.get_user("alice")
        assert directory.calls == before + 1  # once per user in the request
        scoped.set_per_user_mfa("alice", PerUserMfa.ENFORCED)
        assert scoped.get_user("alice").per_user_mfa is PerUserMfa.ENFORCED  # type: ignore[union-attr]
    scoped.get_user("alice")
    scoped.get_user("alice")
    assert directory.calls == before + 4  # outside a request's scope: every call is the host's


def test_a_removed_group_takes_effect_at_the_next_request(counted: Counted) -> None:
    browser, directory, _ = counted
    # bob is in break-glass (excluded from MFA registration): his sign-in clears at once.
    browser.login("bob")
    assert location(browser.authorize()).startswith("https://rp.example.test/cb?code=")
    directory.groups["bob"] = frozenset()  # removed from the group
    browser.login("bob")
    assert "/security-info/" in location(browser.authorize())  # registration now required
