"""Phone, email and security questions through the WSGI stack, with the recording sender."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from plain_wsgi_host import DictDirectory, make_app
from webtest import Browser, base_config, code_from, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import fast_hasher_for_tests
from oidc_combinedreg.delivery.base import Channel
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.sqlite import SqliteStore

ADD = "/security-info/add/"


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock) -> Iterator[tuple[Browser, RecordingSender]]:
    sender = RecordingSender()
    data = base_config(tmp_path, delivery={"public_url": "https://idp.example.test"})
    data["policies"]["methods"] = {"security_questions": {"enabled": True}}
    # Questions serve only a reset that can use them (issue 23.8): one of two reset methods; no
    # sign-in interrupt for the reset's registration.
    data["policies"]["sspr"] = {
        "enabled_for": "all",
        "methods_required": 2,
        "methods": ["totp", "mobile_phone", "email", "security_questions"],
        "require_registration": False,
        "reconfirm_days": 0,
    }
    config = parse_config(data)
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        config, DictDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    reg.info.questions.hasher = fast_hasher_for_tests()
    yield Browser(reg, host, clock), sender
    store.close()


def _signed_in(browser: Browser) -> str:
    browser.login("alice")
    return browser.csrf(ADD + "mobile_phone")


def _add_phone(browser: Browser, sender: RecordingSender, channel: str = "sms") -> None:
    token = _signed_in(browser)
    r = browser.post_json(
        ADD + "mobile_phone",
        {
            "action": "next",
            "country": "US",
            "number": "415 555 0123",
            "channel": channel,
            "csrf_token": token,
        },
    )
    page = r.get_json()
    assert page["page"] == "phone_verify" and page["sent"]["masked"] == "+1 XXXXXXXX23", page
    r = browser.post_json(
        ADD + "mobile_phone", {"action": "verify", "code": sender.last_code(), "csrf_token": token}
    )
    assert r.status_code == 303 and "done=added" in location(r)


def test_adding_a_mobile_phone_in_manage_mode_then_signing_in_by_call(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    _add_phone(browser, sender)
    [record] = browser.reg.store.list_methods("alice")
    assert record.kind is MethodKind.MOBILE_PHONE and record.data["phone"] == "+14155550123"
    notices = [m for m in sender.emails if m.tag == "security_info_changed"]
    assert [m.to for m in notices] == ["alice@example.test"]

    browser.clock.advance(120)
    browser.login("alice")
    r = browser.authorize()
    mfa_url = location(r)
    page = browser.get_json(mfa_url).get_json()
    assert page["method"]["kind"] == "mobile_phone" and page["needs_start"]
    r = browser.post_json(
        mfa_url,
        {
            "action": "start",
            "via": "voice",
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    started = r.get_json()
    assert started["challenge"]["channel"] == "voice" and sender.calls[-1].to == "+14155550123"
    r = browser.post_json(
        mfa_url,
        {
            "action": "verify",
            "code": sender.last_code(),
            "method_id": page["method"]["id"],
            "csrf_token": page["csrf_token"],
        },
    )
    assert r.status_code == 303
    r = browser.get(location(r))
    code = code_from(r)
    assert code is not None and {"pwd", "tel", "mfa"} <= set(browser.host.codes[code]["amr"])


def test_a_bad_number_keeps_what_was_typed(env: tuple[Browser, RecordingSender]) -> None:
    browser, sender = env
    token = _signed_in(browser)
    r = browser.post_json(
        ADD + "mobile_phone",
        {
            "action": "next",
            "country": "US",
            "number": "555 12",
            "channel": "sms",
            "csrf_token": token,
        },
    )
    assert r.status_code == 400
    page = r.get_json()
    assert page["errors"]["number"] and page["values"]["number"] == "555 12"
    assert any(c["code"] == "US" and c["dial"] == 1 for c in page["countries"])
    assert sender.texts == []


def test_a_provider_outage_is_a_clear_page_and_binds_nothing(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    token = _signed_in(browser)
    sender.fail_next(Channel.SMS, "the gateway answered 503 (after 3 attempts)")
    r = browser.post_json(
        ADD + "mobile_phone",
        {
            "action": "next",
            "country": "US",
            "number": "4155550123",
            "channel": "sms",
            "csrf_token": token,
        },
    )
    assert r.status_code == 503 and r.get_json()["errors"]["send"].startswith("We couldn't send")
    assert browser.reg.store.list_methods("alice") == []


def test_a_wrong_code_binds_nothing(env: tuple[Browser, RecordingSender]) -> None:
    browser, sender = env
    token = _signed_in(browser)
    browser.post_json(
        ADD + "mobile_phone",
        {
            "action": "next",
            "country": "US",
            "number": "4155550123",
            "channel": "sms",
            "csrf_token": token,
        },
    )
    wrong = "000000" if sender.last_code() != "000000" else "111111"
    r = browser.post_json(
        ADD + "mobile_phone", {"action": "verify", "code": wrong, "csrf_token": token}
    )
    assert r.status_code == 400 and r.get_json()["errors"]["code"]
    assert browser.reg.store.list_methods("alice") == []


def test_email_is_registered_with_a_code_and_gives_no_mfa(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    token = _signed_in(browser)
    r = browser.post_json(
        ADD + "email", {"action": "next", "email": "alice@home.example", "csrf_token": token}
    )
    assert r.get_json()["page"] == "email_verify"
    r = browser.post_json(
        ADD + "email", {"action": "verify", "code": sender.last_code(), "csrf_token": token}
    )
    assert r.status_code == 303
    [record] = browser.reg.store.list_methods("alice")
    assert record.kind is MethodKind.EMAIL
    assert browser.reg.info.mfa_methods("alice") == []


def test_security_questions_are_registered_as_a_set(env: tuple[Browser, RecordingSender]) -> None:
    browser, _ = env
    token = _signed_in(browser)
    page = browser.get_json(ADD + "security_questions").get_json()
    assert page["page"] == "questions" and page["count"] == 3
    q = page["predefined"]
    fields = {"action": "next", "csrf_token": token}
    for i, answer in enumerate(["Rex", "rex", "Golf"]):
        fields |= {f"question{i}": q[i], f"answer{i}": answer}
    r = browser.post_json(ADD + "security_questions", fields)
    assert r.status_code == 400 and "answer1" in r.get_json()["errors"]
    assert "answer0" not in r.get_json()["values"]  # answers are never echoed back
    fields["answer1"] = "Lyon"
    r = browser.post_json(ADD + "security_questions", fields)
    assert r.status_code == 303
    assert [m.kind for m in browser.reg.store.list_methods("alice")] == [
        MethodKind.SECURITY_QUESTIONS
    ]


def test_this_wasnt_me_from_the_email_secures_the_account(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    _add_phone(browser, sender)
    [notice] = [m for m in sender.emails if m.tag == "security_info_changed"]
    path = re.search(r"https://idp\.example\.test(/security-info/not-me/\S+)", notice.text).group(1)  # type: ignore[union-attr]
    assert browser.get_json(path).get_json()["valid"] is True
    r = browser.client.post(
        path, headers={"Accept": "application/json", "Sec-Fetch-Site": "cross-site"}
    )
    assert r.status_code == 403
    r = browser.client.post(path, headers={"Accept": "application/json"})
    assert r.get_json()["done"] is True
    assert browser.reg.store.get_user_state("alice").extra["password_reset_required"] is True
    assert browser.reg.store.list_audit(event_prefix="account.flagged")
    # The session is gone: the security-info page needs a new sign-in.
    assert browser.get_json("/security-info/").status_code == 401
    assert browser.client.post(path, headers={"Accept": "application/json"}).status_code == 404


@pytest.mark.parametrize(
    ("kind", "text"),
    [
        pytest.param("mobile_phone", "Text me a code", id="the phone page offers text and call"),
        pytest.param("alternate_phone", "Call me", id="the alternate phone page offers a call"),
        pytest.param("email", "What email would you like to use?", id="the email page"),
        pytest.param("security_questions", "Security question 3", id="the questions page"),
    ],
)
def test_the_html_pages_render(env: tuple[Browser, RecordingSender], kind: str, text: str) -> None:
    browser, _ = env
    _signed_in(browser)
    r = browser.get(ADD + kind)
    assert r.status_code == 200 and text in r.get_data(as_text=True)


def test_the_html_code_and_mfa_pages_render(env: tuple[Browser, RecordingSender]) -> None:
    browser, sender = env
    token = _signed_in(browser)
    r = browser.post(
        ADD + "mobile_phone",
        data={
            "action": "next",
            "country": "US",
            "number": "4155550123",
            "channel": "sms",
            "csrf_token": token,
        },
    )
    html = r.get_data(as_text=True)
    assert "We just sent a 6-digit code to +1 XXXXXXXX23." in html and "Call me instead" in html
    browser.post(
        ADD + "mobile_phone",
        data={"action": "verify", "code": sender.last_code(), "csrf_token": token},
    )
    browser.clock.advance(120)
    browser.login("alice")
    mfa_url = location(browser.authorize())
    html = browser.get(mfa_url).get_data(as_text=True)
    assert "Text +1 XXXXXXXX23" in html and "Call +1 XXXXXXXX23" in html
    token = browser.csrf(mfa_url)
    method_id = browser.reg.store.list_methods("alice")[0].id
    r = browser.post(
        mfa_url, data={"action": "start", "via": "sms", "method_id": method_id, "csrf_token": token}
    )
    assert "We just sent a 6-digit code" in r.get_data(as_text=True)
