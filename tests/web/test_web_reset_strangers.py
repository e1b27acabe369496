"""Password reset against a stranger who knows alice's name (SECURITY.md case 57): one address that
keeps failing is refused alone; alice, from her own address, still resets."""

from __future__ import annotations

from pathlib import Path

import pytest
from reset_helpers import RESET, Reset, ResetEnv, add_email, make_env
from webtest import Browser

from oidc_combinedreg.clock import FrozenClock

OWNER = "192.0.2.10"
STRANGER = "203.0.113.66"


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch) -> ResetEnv:
    e = make_env(tmp_path, clock, monkeypatch)
    add_email(e.reg, "alice")
    return e


def _browser(env: ResetEnv, ip: str) -> Browser:
    browser = env.new_browser()
    browser.remote_addr = ip
    return browser


def test_a_stranger_naming_alice_again_and_again_is_refused_alone(env: ResetEnv) -> None:
    statuses = []
    for _ in range(12):
        flow = Reset(_browser(env, STRANGER))
        flow.page()
        statuses.append(flow.post("account", action="account", account="alice").status_code)
    assert statuses == [303] * 10 + [429] * 2
    flow = Reset(_browser(env, OWNER))
    assert flow.start("alice")["page"] == "reset_choose"


def test_a_stranger_guessing_codes_does_not_refuse_alices_own_code(env: ResetEnv) -> None:
    stranger = Reset(_browser(env, STRANGER))
    stranger.start("alice")
    stranger.choose("email")
    statuses = [stranger.verify(code="000000").status_code for _ in range(12)]
    assert statuses == [400] * 10 + [429] * 2
    owner = Reset(_browser(env, OWNER))
    owner.start("alice")
    owner.choose("email")
    r = owner.verify(code=env.sender.last_code("alice.private@example.test"))
    assert r.status_code == 303, r.get_data(as_text=True)
    assert owner.page(RESET + "/password")["page"] == "reset_password"
