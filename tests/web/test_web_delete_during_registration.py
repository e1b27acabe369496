"""Deleting the last MFA method while another method is being registered (SECURITY.md case 56,
ASVS 5.0 2.3.3-2.3.4): a pending registration is not a method, so it never makes room for the
delete; once it is bound, the delete may go. Run in parallel, the two end in one of the two
consistent states (new method bound and the old one deleted, or the delete refused), never with
the user holding no MFA method or a half-bound one.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from plain_wsgi_host import DictDirectory, make_app
from test_web_manage import enrolled
from webtest import Browser, base_config, location, notices

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.policy.compliance import ReplaceFirst
from oidc_combinedreg.store.sqlite import SqliteStore

ADD = "/security-info/add/mobile_phone"
NUMBER = "+14155550123"


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, RecordingSender]]:
    sender = RecordingSender()
    config = parse_config(base_config(tmp_path, delivery={"public_url": "https://idp.test"}))
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        config, DictDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    yield Browser(reg, host, clock), sender
    store.close()


def _kinds(browser: Browser) -> list[str]:
    return sorted(m.kind.value for m in browser.reg.store.list_methods("alice"))


def _app_id(browser: Browser) -> str:
    [app] = [m for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.TOTP]
    return app.id


def _phone_pending(browser: Browser) -> str:
    """Start adding a phone in manage mode (code sent, not verified); the CSRF token."""
    token = browser.csrf(ADD)
    page = browser.post_json(
        ADD,
        {"action": "next", "country": "US", "number": "415 555 0123", "channel": "sms"}
        | {"csrf_token": token},
    ).get_json()
    assert page["page"] == "phone_verify", page
    return token


def test_a_pending_registration_does_not_make_room_for_deleting_the_last_mfa_method(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    enrolled(browser)  # alice: one authenticator app, MFA fresh; MFA registration is enforced
    token = _phone_pending(browser)
    app_id = _app_id(browser)
    delete = f"/security-info/methods/{app_id}/delete"
    r = browser.post_json(delete, {"csrf_token": token})
    assert r.status_code == 409 and _kinds(browser) == ["totp"]
    # The pending phone is bound by its code; now the app may go.
    r = browser.post_json(
        ADD, {"action": "verify", "code": sender.last_code(NUMBER), "csrf_token": token}
    )
    assert "done=added" in location(r)
    r = browser.post_json(delete, {"csrf_token": token})
    assert location(r) == "/security-info/?done=deleted"
    assert _kinds(browser) == ["mobile_phone"]
    assert [n[:2] for n in notices(browser.reg.store, "alice")] == [
        ("added", "totp"),
        ("added", "mobile_phone"),
        ("deleted", "totp"),
    ]


@pytest.mark.parametrize("attempt", range(5))
def test_a_delete_racing_the_binding_ends_consistent(
    env: tuple[Browser, RecordingSender], attempt: int
) -> None:
    browser, sender = env
    enrolled(browser)
    user = browser.reg.directory.get_user("alice")
    assert user is not None
    phones = browser.reg.info.mobile_phone
    _, state = phones.register_begin("alice", number=NUMBER, region="US", channel="sms", ip=None)
    code, app_id = sender.last_code(NUMBER), _app_id(browser)
    barrier = threading.Barrier(2)
    outcome: dict[str, object] = {}

    def bind() -> None:
        barrier.wait()
        outcome["bound"] = phones.register_complete("alice", state, code, ip=None).id

    def delete() -> None:
        barrier.wait()
        try:
            outcome["deleted"] = browser.reg.info.delete_method("alice", app_id, ip=None)
        except ReplaceFirst:
            outcome["deleted"] = "refused"

    threads = [threading.Thread(target=bind), threading.Thread(target=delete)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcome["bound"]  # the registration never fails because of the delete
    kinds = _kinds(browser)
    if outcome["deleted"] is True:
        assert kinds == ["mobile_phone"]  # the delete saw the bound phone
    else:
        assert outcome["deleted"] == "refused" and kinds == ["mobile_phone", "totp"]
    deleted_events = browser.reg.store.list_audit(user_id="alice", event_prefix="method.deleted")
    assert len(deleted_events) == (1 if outcome["deleted"] is True else 0)
