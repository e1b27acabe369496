"""The session cookie is sent when its value changes (a new session, a rotation after password
or MFA), not again after every save of an unchanged session (issue 22; decision 199). The cookie
carries no Max-Age or Expires (a browser-session cookie, its lifetime is the store's), so sending
the same value again refreshed nothing: it was bytes and work on every page that saved."""

from __future__ import annotations

from pathlib import Path

import pytest
from plain_wsgi_host import DictDirectory, make_app
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock


@pytest.fixture
def browser(tmp_path: Path, clock: FrozenClock) -> Browser:
    reg, host = make_app(parse_config(base_config(tmp_path)), DictDirectory(), clock=clock)
    return Browser(reg, host, clock)


def _session_cookies(browser: Browser, headers: list[str]) -> list[str]:
    name = browser.reg.sessions.cookie_name
    return [h for h in headers if h.startswith(f"{name}=")]


def test_a_save_without_a_new_id_sends_no_cookie(browser: Browser) -> None:
    r = browser.login("alice")
    assert len(_session_cookies(browser, r.headers.getlist("Set-Cookie"))) == 1  # new session
    wizard = location(browser.authorize())
    token = browser.csrf(wizard)
    r = browser.post_json(wizard, {"action": "next", "csrf_token": token})  # intro -> setup
    # the step was saved (the answer is the setup page), under the id the browser already holds
    assert r.get_json()["page"] == "totp_setup"
    assert browser.get_json(wizard).get_json()["page"] == "totp_setup"
    assert _session_cookies(browser, r.headers.getlist("Set-Cookie")) == []


def test_a_rotation_after_mfa_still_sends_the_new_id(browser: Browser) -> None:
    mfa_url, form = browser.at_mfa_with_totp()
    before = browser.client.get_cookie(browser.reg.sessions.cookie_name)
    assert before is not None
    r = browser.post(mfa_url, data=form)
    assert r.status_code == 303
    sent = _session_cookies(browser, r.headers.getlist("Set-Cookie"))
    assert len(sent) == 1 and before.value not in sent[0], sent
