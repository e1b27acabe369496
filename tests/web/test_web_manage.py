"""Manage mode ("My security info") through the WSGI stack: list, add, change, default, delete
(replace before remove), legacy mode, sign out everywhere. The MFA gate: test_web_manage_gate.py."""

from __future__ import annotations

import re
import secrets
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pyotp
import pytest
from webtest import Browser, location

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord

SECURITY_INFO = "/security-info/"


def enrolled(browser: Browser, user: str = "alice") -> str:
    """Sign in, register an authenticator app in the wizard, finish; MFA is now fresh."""
    wizard = location(browser.login(user))  # straight to the wizard (decision 226)
    assert wizard.startswith("/security-info/wizard?c="), wizard
    secret = browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    return secret


def add_record(browser: Browser, user: str, kind: MethodKind, **data: Any) -> MethodRecord:
    """A method stored directly (the per-method steps have their own tests)."""
    label = {"phone": "+1 XXXXXXXX67", "email": "b•••@example.test"}
    record = MethodRecord(
        id=secrets.token_urlsafe(12),
        user_id=user,
        kind=kind,
        label=next((label[k] for k in data if k in label), kind.value),
        created_at=browser.clock.now(),
        data=data,
    )
    browser.reg.store.add_method(record, limit=100)
    return record


def manage(browser: Browser, query: str = "") -> dict[str, Any]:
    r = browser.get_json(SECURITY_INFO + query)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["page"] == "manage"
    return dict(body)


def kinds(page: dict[str, Any], key: str = "methods") -> list[str]:
    return [m["kind"] for m in page[key]]


def test_lists_every_method_with_masked_phone_and_email(browser: Browser) -> None:
    enrolled(browser)
    add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    add_record(browser, "alice", MethodKind.EMAIL, email="bob.private@example.test")
    page = manage(browser)
    assert sorted(kinds(page)) == ["email", "mobile_phone", "totp"]
    labels = {m["kind"]: m["label"] for m in page["methods"]}
    assert labels["mobile_phone"] == "+1 XXXXXXXX67"
    assert labels["email"].startswith("b") and labels["email"].endswith("@example.test")
    for response in (browser.get_json(SECURITY_INFO), browser.get(SECURITY_INFO)):
        text = response.get_data(as_text=True)
        assert "4255550167" not in text and "bob.private" not in text


def test_a_stored_label_with_a_whole_number_is_still_masked(browser: Browser) -> None:
    enrolled(browser)
    record = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    assert browser.reg.store.update_method(replace(record, label="+14255550167"))
    assert "4255550167" not in browser.get(SECURITY_INFO).get_data(as_text=True)
    assert "4255550167" not in browser.get_json(SECURITY_INFO).get_data(as_text=True)


def test_default_method_and_last_used_are_shown_localized(browser: Browser) -> None:
    enrolled(browser)
    page = manage(browser)
    assert page["default"]["kind"] == "totp"
    html = browser.get(SECURITY_INFO + "?lng=de").get_data(as_text=True)
    # T0 is 2023-11-14 (UTC): German medium date format.
    assert "14.11.2023" in html
    html = browser.get(SECURITY_INFO + "?lng=ja").get_data(as_text=True)
    assert "2023/11/14" in html


def test_add_offers_only_methods_the_policies_allow_and_respects_limits(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(
        policies={
            "mfa_registration": {"enforced": True},
            "wizard_preference": ["totp"],
            "methods": {"webauthn": {"enabled": False}},
        }
    )
    enrolled(browser)
    page = manage(browser)
    addable = kinds(page, "addable")
    assert "totp" in addable and "webauthn" not in addable
    assert "app_password" not in addable  # only for per-user MFA enforced
    for _ in range(4):
        add_record(browser, "alice", MethodKind.TOTP)
    assert "totp" not in kinds(manage(browser), "addable")  # 5 apps: the limit
    r = browser.get_json("/security-info/add/totp")
    # The limit is said, not a bare "forbidden" (issue 19.8); a disallowed kind stays 403.
    assert r.status_code == 409 and r.get_json()["page"] == "method_limit"
    assert r.get_json()["limit"] == 5
    r = browser.get_json("/security-info/add/webauthn")
    assert r.status_code == 403


def test_add_an_app_from_manage_mode_returns_to_the_list(browser: Browser) -> None:
    enrolled(browser)
    url = "/security-info/add/totp"
    token = browser.csrf(url)
    assert browser.get_json(url).get_json()["page"] == "totp_intro"
    browser.post_json(url, {"action": "next", "csrf_token": token})
    secret = browser.get_json(url).get_json()["secret"]
    browser.post_json(url, {"action": "next", "csrf_token": token})
    browser.clock.advance(30)  # a new time step: the first app's code was used at T0
    code = pyotp.TOTP(secret).at(browser.clock.now())
    r = browser.post_json(url, {"action": "verify", "code": code, "csrf_token": token})
    assert location(r) == "/security-info/?done=added"
    assert kinds(manage(browser)) == ["totp", "totp"]


def test_change_the_default_offers_only_mfa_methods(browser: Browser) -> None:
    enrolled(browser)
    phone = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    email = add_record(browser, "alice", MethodKind.EMAIL, email="a@example.test")
    page = browser.get_json("/security-info/default").get_json()
    assert page["page"] == "manage_default"
    assert sorted(m["kind"] for m in page["choices"]) == ["mobile_phone", "totp"]
    token = page["csrf_token"]
    r = browser.post_json("/security-info/default", {"method_id": email.id, "csrf_token": token})
    assert r.status_code == 403
    r = browser.post_json("/security-info/default", {"method_id": phone.id, "csrf_token": token})
    assert location(r) == "/security-info/?done=default"
    assert manage(browser)["default"]["id"] == phone.id


def test_delete_asks_naming_the_method_then_deletes(browser: Browser) -> None:
    enrolled(browser)
    phone = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    url = f"/security-info/methods/{phone.id}/delete"
    html = browser.get(url).get_data(as_text=True)
    assert "Delete Phone (+1 XXXXXXXX67)?" in html
    assert [m.id for m in browser.reg.store.list_methods("alice") if m.id == phone.id]
    r = browser.post_json(url, {"csrf_token": browser.csrf(url)})
    assert location(r) == "/security-info/?done=deleted"
    assert phone.id not in [m.id for m in browser.reg.store.list_methods("alice")]
    assert browser.get_json(url).status_code == 403  # gone


def test_deleting_the_last_mfa_method_under_enforced_mfa_is_refused(browser: Browser) -> None:
    enrolled(browser)
    [app] = browser.reg.store.list_methods("alice")
    url = f"/security-info/methods/{app.id}/delete"
    r = browser.post_json(url, {"csrf_token": browser.csrf(url)})
    assert r.status_code == 409
    body = r.get_json()
    assert body["error"] == "replace_first" and body["refused"]["shortfalls"] == ["mfa"]
    suggested = [a["kind"] for a in body["refused"]["add_first"]]
    assert "webauthn" in suggested and "email" not in suggested
    assert browser.reg.store.list_methods("alice") == [app]
    html = browser.post(url, data={"csrf_token": browser.csrf(url)}).get_data(as_text=True)
    assert "Add another method first" in html and "/security-info/add/webauthn" in html
    # With a second MFA method the same delete goes through.
    add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    r = browser.post_json(url, {"csrf_token": browser.csrf(url)})
    assert location(r) == "/security-info/?done=deleted"


def test_the_service_refuses_the_same_delete_whoever_calls_it(browser: Browser) -> None:
    from oidc_combinedreg.policy.compliance import ReplaceFirst, Shortfall

    enrolled(browser)
    [app] = browser.reg.store.list_methods("alice")
    with pytest.raises(ReplaceFirst) as refused:
        browser.reg.info.delete_method("alice", app.id, ip="127.0.0.1")
    assert refused.value.shortfalls == (Shortfall.MFA,)
    assert browser.reg.store.list_methods("alice") == [app]


def test_two_parallel_deletes_cannot_both_pass_replace_before_remove(browser: Browser) -> None:
    """Each delete alone is allowed (the other MFA method stays); together they would leave
    none. The check and the delete are one SQLite transaction, so exactly one goes through."""
    from oidc_combinedreg.policy.compliance import ReplaceFirst

    enrolled(browser)
    add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    methods = browser.reg.store.list_methods("alice")
    assert len(methods) == 2

    def race() -> list[object]:
        barrier, outcomes = threading.Barrier(2), [object(), object()]

        def run(i: int) -> None:
            barrier.wait()
            try:
                outcomes[i] = browser.reg.info.delete_method("alice", methods[i].id, ip=None)
            except ReplaceFirst as exc:
                outcomes[i] = exc

        threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        return outcomes

    for _ in range(5):  # the race is won by either; each round starts from two methods again
        outcomes = race()
        assert sorted(type(o).__name__ for o in outcomes) == ["ReplaceFirst", "bool"], outcomes
        assert sum(o is True for o in outcomes) == 1
        assert isinstance(next(o for o in outcomes if o is not True), ReplaceFirst)
        [left] = browser.reg.store.list_methods("alice")
        gone = next(m for m in methods if m.id != left.id)
        browser.reg.store.add_method(gone, limit=5)
        methods = browser.reg.store.list_methods("alice")


def test_too_few_reset_methods_is_refused_with_what_to_add(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(
        policies={
            "mfa_registration": {"enforced": True},
            "wizard_preference": ["totp"],
            "sspr": {"enabled_for": "all", "methods_required": 2},
        },
        # a text provider, so a phone can be registered (and so suggested)
        delivery={"text": {"provider": "console"}},
    )
    browser.login("alice")
    browser.reg.store.add_method(
        MethodRecord(
            id="e1",
            user_id="alice",
            kind=MethodKind.EMAIL,
            label="a•••@example.test",
            created_at=browser.clock.now(),
            data={"email": "alice@example.test"},
        ),
        limit=1,
    )
    wizard = location(browser.authorize())
    browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    url = "/security-info/methods/e1/delete"
    r = browser.post_json(url, {"csrf_token": browser.csrf(url)})
    assert r.status_code == 409 and r.get_json()["refused"]["shortfalls"] == ["sspr"]
    suggested = {a["kind"] for a in r.get_json()["refused"]["add_first"]}
    assert "mobile_phone" in suggested
    # Only what this user could add here, never a second phone app (push and TOTP: one channel).
    assert suggested <= {a["kind"] for a in manage(browser)["addable"]}
    assert not suggested & {"totp", "push"}


def test_change_links_follow_the_methods_table(browser: Browser) -> None:
    enrolled(browser)
    phone = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    page = manage(browser)
    links = {m["kind"]: m["change_url"] for m in page["methods"]}
    assert links["totp"] is None  # an app is replaced, not changed
    assert links["mobile_phone"] == f"/security-info/methods/{phone.id}/change"
    r = browser.get_json(links["mobile_phone"])
    assert r.status_code == 200 and r.get_json()["page"] == "phone_enter"
    [app] = [m for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.TOTP]
    assert browser.get_json(f"/security-info/methods/{app.id}/change").status_code == 403


def test_a_security_key_is_renamed_from_its_change_link(browser: Browser) -> None:
    enrolled(browser)
    key = add_record(browser, "alice", MethodKind.WEBAUTHN, credential_id="x")
    url = manage(browser)["methods"][-1]["change_url"]
    assert url == f"/security-info/methods/{key.id}/change"
    page = browser.get_json(url).get_json()
    assert page["page"] == "webauthn_rename" and page["method_id"] == key.id


def test_legacy_mode_shows_mfa_and_password_reset_methods_apart(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(
        groups={"alice": frozenset({"legacy"})},
        policies={
            "mfa_registration": {"enforced": True},
            "wizard_preference": ["totp"],
            "combined_registration": {"enabled_for": "selected", "groups": ["staff"]},
            "sspr": {"enabled_for": "all"},
        },
    )
    enrolled(browser)
    add_record(browser, "alice", MethodKind.EMAIL, email="a@example.test")
    mfa = manage(browser)
    assert (mfa["mode"], mfa["part"]) == ("legacy", "mfa")
    assert kinds(mfa) == ["totp"]
    assert "email" not in kinds(mfa, "addable") and "totp" in kinds(mfa, "addable")
    sspr = manage(browser, "?part=sspr")
    assert sspr["part"] == "sspr" and sorted(kinds(sspr)) == ["email", "totp"]
    assert "webauthn" not in kinds(sspr, "addable")  # keys don't reset passwords
    html = browser.get(SECURITY_INFO + "?part=sspr").get_data(as_text=True)
    assert "Password reset info" in html and 'aria-current="page"' in html


def test_combined_mode_is_one_page(browser: Browser) -> None:
    enrolled(browser)
    page = manage(browser, "?part=sspr")
    assert (page["mode"], page["part"]) == ("combined", "all")


def test_sign_out_everywhere_ends_every_session_of_the_user(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser()
    enrolled(browser)
    other = Browser(browser.reg, browser.host, browser.clock)
    other.login("alice")
    assert other.get_json("/security-info/mfa").status_code == 200
    r = browser.post_json(
        "/security-info/signout-everywhere", {"csrf_token": browser.csrf(SECURITY_INFO)}
    )
    assert r.get_json()["page"] == "signed_out_everywhere" and r.get_json()["count"] == 2
    assert "Max-Age=0" in r.headers.get("Set-Cookie", "")
    assert other.get_json("/security-info/mfa").status_code == 401
    assert browser.get_json(SECURITY_INFO).status_code == 401


def test_every_manage_page_renders_as_html_with_a_label_on_every_control(browser: Browser) -> None:
    enrolled(browser)
    phone = add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167")
    for url in (
        SECURITY_INFO,
        "/security-info/default",
        f"/security-info/methods/{phone.id}/delete",
        f"/security-info/methods/{phone.id}/change",
    ):
        r = browser.get(url)
        assert r.status_code == 200, url
        html = r.get_data(as_text=True)
        for control_id in re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', html):
            assert f'for="{control_id}"' in html, (url, control_id)
