"""Issue 23.5: a directory office phone does not make "Is your security info still up to date?"
appear on a user's very first sign-in (the office phone is a synthetic record dated 0)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from plain_wsgi_host import DictDirectory, make_app
from webtest import Browser, base_config, code_from, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.directory import DirectoryUser
from oidc_combinedreg.store.sqlite import SqliteStore


class OfficeDirectory(DictDirectory):
    """alice has an office phone in the directory (as example_idp/directory.toml's users can)."""

    def get_user(self, user_id: str) -> DirectoryUser | None:
        user = super().get_user(user_id)
        return replace(user, office_phone="+14255550100") if user else None


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, RecordingSender]]:
    sender = RecordingSender()
    data = base_config(tmp_path, delivery={"public_url": "https://idp.example.test"})
    data["policies"]["sspr"] = {"enabled_for": "all", "methods_required": 1, "reconfirm_days": 30}
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        parse_config(data), OfficeDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    yield Browser(reg, host, clock), sender
    store.close()


def test_first_sign_in_with_only_the_office_phone_is_not_asked_to_reconfirm(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    browser.login("alice")
    mfa = location(browser.authorize())
    assert mfa.startswith("/security-info/mfa?c="), mfa  # the office phone is her MFA method
    page = browser.get_json(mfa).get_json()
    assert page["method"]["kind"] == "office_phone"
    body = {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    browser.post_json(mfa, {**body, "action": "start", "via": "voice"})
    assert sender.calls[-1].to == "+14255550100"
    r = browser.post_json(mfa, {**body, "action": "verify", "code": sender.last_code()})
    assert r.status_code == 303
    assert location(r) == "/authorize?client_id=demo&state=s1"
    after = browser.get(location(r))
    assert "/wizard" not in location(after), location(after)  # no "Is your info up to date?"
    assert code_from(after) is not None
    assert browser.reg.store.get_user_state("alice").confirmed_at is None
