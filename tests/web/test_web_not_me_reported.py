""" "This wasn't me" through the WSGI stack (SECURITY.md case 59): the authenticator app an attacker
added stops working at once (password reset and MFA), the manage page shows it as reported with a
delete button, and an admin can restore it (audited, the user is told)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import plain_wsgi_host
import pyotp
import pytest
from admin_helpers import admin_section, api
from plain_wsgi_host import DictDirectory, make_app
from reset_helpers import Reset, add_totp
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.store.sqlite import SqliteStore

SECURITY_INFO = "/security-info/"
NEW_PASSWORD = "a much longer pass phrase 42"


@pytest.fixture
def env(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch
) -> tuple[Browser, RecordingSender]:
    # set_password changes the example host's module-level users: give this test its own.
    monkeypatch.setattr(plain_wsgi_host, "USERS", dict(plain_wsgi_host.USERS))
    sender = RecordingSender()
    data = base_config(
        tmp_path, delivery={"public_url": "https://idp.example.test"}, admin=admin_section()
    )
    data["policies"]["sspr"] = {"enabled_for": "all", "methods_required": 1, "methods": ["totp"]}
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        parse_config(data), DictDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    return Browser(reg, host, clock), sender


def _not_me_path(sender: RecordingSender) -> str:
    [notice] = [m for m in sender.emails if m.tag == "security_info_changed"]
    found = re.search(r"https://idp\.example\.test(/security-info/not-me/\S+)", notice.text)
    assert found is not None, notice.text
    return found.group(1)


def _code(secret: str, browser: Browser) -> str:
    browser.clock.advance(30)  # a new time step: codes are single use
    return pyotp.TOTP(secret).at(browser.clock.now())


def _attacked(env: tuple[Browser, RecordingSender]) -> tuple[str, str, str]:
    """Alice's own app; an attacker in her session adds a second one; she reports it from the
    email. Returns (her secret, the attacker's secret, the attacker's method id)."""
    browser, sender = env
    reg = browser.reg
    own = add_totp(reg, "alice")
    mine = {m.id for m in reg.store.list_methods("alice")}
    browser.clock.advance(60)
    sender.clear()
    attackers = add_totp(reg, "alice")
    (attacker_id,) = {m.id for m in reg.store.list_methods("alice")} - mine
    path = _not_me_path(sender)
    r = browser.client.post(path, headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.get_json()["done"] is True
    assert r.get_json()["suspended"] == 1
    return own, attackers, attacker_id


def _reset_password(browser: Browser, own: str) -> None:
    flow = Reset(browser)
    flow.start("alice")
    flow.choose("app_code")
    r = flow.verify(code=_code(own, browser))
    assert r.status_code == 303, r.get_data(as_text=True)
    flow.page(location(r))
    done = flow.new_password(NEW_PASSWORD)
    assert done.get_json()["page"] == "reset_done", done.get_data(as_text=True)


def _at_mfa(browser: Browser) -> tuple[str, dict[str, Any]]:
    browser.login("alice", NEW_PASSWORD)
    mfa_url = location(browser.authorize())
    page = browser.get_json(mfa_url).get_json()
    assert page["page"] == "mfa", page
    return mfa_url, page


def test_an_attacker_added_app_passes_neither_the_forced_reset_nor_mfa(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, _ = env
    own, attackers, attacker_id = _attacked(env)
    # The forced password reset: the attacker's app code is refused ...
    flow = Reset(browser)
    flow.start("alice")
    flow.choose("app_code")
    refused = flow.verify(code=_code(attackers, browser))
    assert refused.status_code != 303, "the reported app passed the password reset"
    # ... and alice's own app still resets the password.
    _reset_password(Browser(browser.reg, browser.host, browser.clock), own)
    # MFA at the next sign-in: the reported app is neither offered nor accepted.
    mfa_url, page = _at_mfa(browser)
    offered = re.findall(r"[\w-]{16,}", repr(page))
    assert attacker_id not in offered
    form = {"method_id": attacker_id, "csrf_token": page["csrf_token"]}
    r = browser.post_json(mfa_url, {**form, "code": _code(attackers, browser)})
    assert r.status_code in (400, 403), r.get_data(as_text=True)
    own_id = page["method"]["id"]
    r = browser.post_json(mfa_url, {**form, "method_id": own_id, "code": _code(own, browser)})
    assert r.status_code == 303, r.get_data(as_text=True)  # on with the sign-in
    assert browser.reg.store.get_method("alice", own_id) is not None


def test_the_manage_page_shows_the_reported_app_to_delete(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, _ = env
    own, _attackers, attacker_id = _attacked(env)
    _reset_password(Browser(browser.reg, browser.host, browser.clock), own)
    mfa_url, page = _at_mfa(browser)
    browser.post_json(
        mfa_url,
        {"method_id": page["method"]["id"], "csrf_token": page["csrf_token"],
         "code": _code(own, browser)},
    )  # fmt: skip
    body = browser.get_json(SECURITY_INFO).get_json()
    assert [m["id"] for m in body["methods"]] == [page["method"]["id"]]
    [reported] = body["reported"]
    assert reported["id"] == attacker_id and reported["kind"] == "totp"
    assert reported["delete_url"] == f"/security-info/methods/{attacker_id}/delete-reported"
    # the default method is never the reported one, and "add an app" is offered again
    assert body["default"]["id"] != attacker_id
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    assert "Reported as not yours" in html
    assert f'action="/security-info/methods/{attacker_id}/delete-reported"' in html
    # a cross-site or token-less delete is refused; the real one deletes it
    assert browser.post(reported["delete_url"], data={}).status_code == 403
    r = browser.post(reported["delete_url"], data={"csrf_token": body["csrf_token"]})
    assert location(r) == "/security-info/?done=deleted"
    assert browser.get_json(SECURITY_INFO).get_json()["reported"] == []
    assert browser.reg.store.list_reported_methods("alice") == []


def test_an_admin_restores_a_reported_app_audited_and_the_user_is_told(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    _own, attackers, attacker_id = _attacked(env)
    listed = api(browser, "GET", "/users/alice/methods").get_json()
    assert [m["id"] for m in listed["reported"]] == [attacker_id]
    assert listed["reported"][0]["reported_at"] is not None
    assert attacker_id not in [m["id"] for m in listed["methods"]]
    assert api(browser, "POST", "/users/alice/methods/nope/restore").status_code == 404
    sender.clear()
    r = api(browser, "POST", f"/users/alice/methods/{attacker_id}/restore")
    assert r.status_code == 200, r.get_data(as_text=True)
    assert r.get_json()["id"] == attacker_id and r.get_json()["reported_at"] is None
    assert attacker_id in [m.id for m in browser.reg.store.list_methods("alice")]
    [event] = browser.reg.store.list_audit(event_prefix="method.restored")
    assert event.user_id == "alice" and event.detail["actor"]
    told = [m.text for m in sender.emails if m.tag == "security_info_changed"]
    assert told and "restored to your account by your administrator" in told[0]
    assert api(browser, "POST", f"/users/alice/methods/{attacker_id}/restore").status_code == 404
    assert attackers  # (its codes work again: the method is in use)
