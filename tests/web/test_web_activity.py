"""Recent activity (issue 19.12), through the WSGI stack: the user's own sign-ins and security-info
changes from the audit log, paginated, localized, with its JSON twin, behind the manage pages'
MFA gate, and "This wasn't me" (POST with CSRF) securing the account."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyotp
from test_web_manage import SECURITY_INFO, enrolled
from test_web_manage_gate import MFA
from webtest import Browser, location

from oidc_combinedreg.notify import RESET_FLAG
from oidc_combinedreg.store.base import AuditEvent
from oidc_combinedreg.web.views.activity import PAGE_SIZE

ACTIVITY = "/security-info/activity"
NOT_ME = "/security-info/activity/not-me"


def page(browser: Browser, query: str = "") -> dict[str, Any]:
    r = browser.get_json(ACTIVITY + query)
    assert r.status_code == 200, r.get_data(as_text=True)
    body = r.get_json()
    assert body["page"] == "activity"
    return dict(body)


def audit(browser: Browser, user: str, event: str, *, ip: str, at: float, **detail: Any) -> None:
    browser.reg.store.append_audit(
        AuditEvent(at=at, event=event, user_id=user, outcome="success", ip=ip, detail=detail)
    )


def test_lists_alices_sign_ins_and_changes_and_not_bobs(browser: Browser) -> None:
    browser.remote_addr = "203.0.113.77"
    enrolled(browser)  # signin.password, then method.added (the authenticator app)
    now = browser.clock.now()
    audit(browser, "bob", "signin.password", ip="198.51.100.9", at=now)
    audit(browser, "bob", "method.added", ip="198.51.100.9", at=now, kind="mobile_phone")
    body = page(browser)
    events = body["events"]
    assert [e["event"] for e in events] == ["method.added", "signin.password"]
    added, signin = events
    assert added["category"] == "security_info" and added["method"] == "Authenticator app"
    assert signin["category"] == "sign_in" and signin["method"] == "Password"
    assert signin["result"] == "success" and signin["result_text"] == "Successful"
    assert {e["network"] for e in events} == {"203.0.113.0/24"}  # never the whole address
    text = browser.get(ACTIVITY).get_data(as_text=True)
    assert "203.0.113.77" not in text and "198.51.100" not in text
    assert "Signed in with password" in text and "Method added" in text
    assert "203.0.113.0/24" in text
    # the application: a change was made on the security-info pages; a password sign-in's
    # event names none
    assert text.count("<dd>Security info</dd>") == 1 and text.count("<dd>Not recorded</dd>") == 1
    # never a secret or an internal id in the twin
    raw = browser.get_json(ACTIVITY).get_data(as_text=True)
    method_id = browser.reg.store.list_methods("alice")[0].id
    assert method_id not in raw and "203.0.113.77" not in raw


def test_the_network_is_a_named_location_or_a_48_for_ipv6(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(
        named_locations=[{"name": "Head office", "ranges": ["192.0.2.0/24"], "trusted": True}]
    )
    enrolled(browser)
    now = browser.clock.now()
    audit(browser, "alice", "method.renamed", ip="192.0.2.44", at=now + 1, kind="webauthn")
    audit(browser, "alice", "method.deleted", ip="2001:db8:1234:5678::1", at=now + 2, kind="email")
    networks = [e["network"] for e in page(browser)["events"][:2]]
    assert networks == ["2001:db8:1234::/48", "Head office"]


def test_pages_of_twenty_newest_first(browser: Browser) -> None:
    enrolled(browser)
    start = browser.clock.now()
    for i in range(45):
        audit(browser, "alice", "method.renamed", ip="192.0.2.1", at=start + 1 + i, kind="webauthn")
    browser.clock.advance(100)
    first = page(browser)
    assert len(first["events"]) == PAGE_SIZE == 20
    assert first["pagination"] == {
        "page": 1,
        "pages": 3,
        "total": 47,
        "previous": None,
        "next": ACTIVITY + "?page=2",
    }
    assert first["events"][0]["at"] == int(start + 45)
    last = page(browser, "?page=3")
    assert len(last["events"]) == 7 and last["pagination"]["next"] is None
    assert last["pagination"]["previous"] == ACTIVITY + "?page=2"
    assert [e["event"] for e in last["events"][-2:]] == ["method.added", "signin.password"]
    seen = [e["ref"] for n in (1, 2, 3) for e in page(browser, f"?page={n}")["events"]]
    assert len(set(seen)) == 47  # every row once, none skipped between pages
    assert page(browser, "?page=99")["pagination"]["page"] == 3  # past the end: the last page
    assert page(browser, "?page=x")["pagination"]["page"] == 1
    html = browser.get(ACTIVITY + "?page=2").get_data(as_text=True)
    assert "Page 2 of 3" in html and 'rel="next"' in html and 'rel="prev"' in html


def test_behind_the_mfa_gate_and_back_to_the_page_after_it(browser: Browser) -> None:
    secret = enrolled(browser)
    browser.clock.advance(60)
    browser.login("alice")  # a new sign-in: password only
    for get in (browser.get, browser.get_json):
        r = get(ACTIVITY)
        assert r.status_code == 303 and location(r) == MFA + "?back=activity"
        assert "Signed in with password" not in r.get_data(as_text=True)
    r = browser.get(NOT_ME + "?ref=x")
    assert r.status_code == 303 and location(r).startswith(MFA)
    mfa = browser.get_json(MFA + "?back=activity").get_json()
    form = {"method_id": mfa["method"]["id"], "csrf_token": mfa["csrf_token"]}
    form["code"] = pyotp.TOTP(secret).at(browser.clock.now())
    r = browser.post_json(MFA + "?back=activity", form)
    assert location(r) == ACTIVITY, r.get_data(as_text=True)
    assert page(browser)["events"][0]["event"] == "mfa.succeeded"
    assert page(browser)["events"][0]["method"] == "Authenticator app"


def test_signed_out_sees_nothing(browser: Browser) -> None:
    enrolled(browser)
    other = Browser(browser.reg, browser.host, browser.clock)
    r = other.get_json(ACTIVITY)
    assert r.status_code in (302, 303, 401, 403)
    assert "events" not in (r.get_json() or {})


def test_in_german_and_arabic(browser: Browser) -> None:
    enrolled(browser)
    html = browser.get(ACTIVITY + "?lng=de").get_data(as_text=True)
    assert "<h1>Letzte Aktivitäten</h1>" in html
    assert "14.11.2023" in html  # the date in German (Babel), the frozen clock's day
    assert "Signed in with password" not in html and "Successful" not in html
    html = browser.get(ACTIVITY + "?lng=ar").get_data(as_text=True)
    assert '<html lang="ar" dir="rtl">' in html
    assert "Signed in with password" not in html and "Recent activity" not in html


def test_the_manage_page_links_to_recent_activity(browser: Browser) -> None:
    enrolled(browser)
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    assert 'href="/security-info/activity"' in html


def test_this_wasnt_me_on_a_change_secures_the_account(browser: Browser) -> None:
    enrolled(browser)
    app = browser.reg.store.list_methods("alice")[0]
    added = next(e for e in page(browser)["events"] if e["event"] == "method.added")
    confirm = browser.get(added["not_me_url"])
    assert confirm.status_code == 200
    assert "Secure my account" in confirm.get_data(as_text=True)
    assert browser.reg.store.get_method("alice", app.id) is not None  # GET changed nothing
    token = browser.csrf(ACTIVITY)
    refused = browser.post(NOT_ME, data={"ref": added["ref"]})  # no CSRF token
    assert refused.status_code == 403
    assert not browser.reg.store.get_user_state("alice").extra.get(RESET_FLAG)
    r = browser.post(NOT_ME, data={"ref": added["ref"], "csrf_token": token})
    assert r.status_code == 200, r.get_data(as_text=True)
    assert "Your account is being secured" in r.get_data(as_text=True)
    assert browser.reg.store.get_user_state("alice").extra.get(RESET_FLAG) is True
    assert browser.reg.store.get_method("alice", app.id) is None  # suspended (reported)
    assert [m.id for m in browser.reg.store.list_reported_methods("alice")] == [app.id]
    flagged = browser.reg.store.list_audit(user_id="alice", event_prefix="account.flagged")
    assert flagged[0].detail["reported"] == "method.added"
    assert browser.get_json(ACTIVITY).status_code != 200  # this session ended too


def test_the_report_itself_has_no_this_wasnt_me(browser: Browser) -> None:
    enrolled(browser)
    audit(browser, "alice", "account.flagged", ip="192.0.2.1", at=browser.clock.now() + 1)
    browser.clock.advance(5)
    rows = page(browser)["events"]
    flagged = next(e for e in rows if e["event"] == "account.flagged")
    assert flagged["not_me_url"] is None and flagged["activity"] == "Reported as not you"
    assert all(e["not_me_url"] for e in rows if e is not flagged)
    token = browser.csrf(ACTIVITY)
    assert (
        browser.post_json(NOT_ME, {"ref": flagged["ref"], "csrf_token": token}).status_code == 403
    )


def test_this_wasnt_me_on_a_sign_in_ends_sessions_and_asks_for_a_reset(browser: Browser) -> None:
    enrolled(browser)
    elsewhere = Browser(browser.reg, browser.host, browser.clock)
    elsewhere.login("alice")
    signin = next(e for e in page(browser)["events"] if e["event"] == "signin.password")
    token = browser.csrf(ACTIVITY)
    r = browser.post_json(NOT_ME, {"ref": signin["ref"], "csrf_token": token})
    assert r.status_code == 200 and r.get_json()["done"] is True
    assert r.get_json()["suspended"] == 0 and r.get_json()["sessions_ended"] >= 2
    assert browser.reg.store.list_methods("alice") != []  # a sign-in row suspends no method
    assert browser.reg.store.get_user_state("alice").extra.get(RESET_FLAG) is True
    assert location(elsewhere.authorize()).startswith("/login")  # the other session ended


def test_another_users_row_cannot_be_reported(browser: Browser) -> None:
    from oidc_combinedreg.web.views.activity import _refs

    enrolled(browser)
    now = browser.clock.now()
    audit(browser, "bob", "signin.password", ip="198.51.100.9", at=now)
    bobs = browser.reg.store.list_audit(user_id="bob")
    token = browser.csrf(ACTIVITY)
    for ref in (_refs(bobs)[0], "nonsense"):
        r = browser.post_json(NOT_ME, {"ref": ref, "csrf_token": token})
        assert r.status_code == 403
    assert not browser.reg.store.get_user_state("bob").extra.get(RESET_FLAG)
    assert not browser.reg.store.get_user_state("alice").extra.get(RESET_FLAG)


def test_shown_where_conditional_access_blocks_registering_and_the_block_is_listed(
    make_browser: Callable[..., Browser],
) -> None:
    """The trusted-network policy keeps alice from changing her security info on another
    network; she still sees her activity there (the registration block among it) and can report
    a stranger's sign-in: reading and reporting register nothing."""
    from test_web_conditional_access import SEED

    browser = make_browser(**SEED)
    browser.remote_addr = "192.168.10.20"  # the trusted "office"
    enrolled(browser)
    browser.remote_addr = "203.0.113.9"
    blocked = browser.get_json(SECURITY_INFO)
    assert blocked.status_code == 403 and blocked.get_json()["page"] == "blocked"
    body = page(browser)
    row = body["events"][0]
    assert row["event"] == "ca.evaluated" and row["category"] == "security_info"
    assert row["activity"] == "Security info change blocked by your organization"
    assert row["result"] == "blocked" and row["network"] == "203.0.113.0/24"
    assert body["events"][-1]["network"] == "office"  # the named location, not the address
    token = browser.csrf(ACTIVITY)
    r = browser.post_json(NOT_ME, {"ref": body["events"][-1]["ref"], "csrf_token": token})
    assert r.status_code == 200 and r.get_json()["done"] is True


def test_a_sign_in_blocked_for_an_application_names_it(browser: Browser) -> None:
    enrolled(browser)
    browser.reg.store.append_audit(
        AuditEvent(
            at=browser.clock.now() + 1,
            event="ca.evaluated",
            user_id="alice",
            outcome="blocked",
            ip="192.0.2.7",
            detail={"target": "application payroll", "reason": "x", "blocking": ["p"]},
        )
    )
    browser.reg.store.append_audit(
        AuditEvent(
            at=browser.clock.now() + 2,
            event="ca.evaluated",
            user_id="alice",
            outcome="info",  # report-only: the admin's business, no sign-in was refused
            ip="192.0.2.7",
            detail={"target": "application payroll", "report_only": ["p"]},
        )
    )
    browser.clock.advance(5)
    rows = page(browser)["events"]
    assert [r["event"] for r in rows].count("ca.evaluated") == 1
    row = rows[0]
    assert row["category"] == "sign_in" and row["application"] == "payroll"
    assert row["activity"] == "Sign-in blocked by your organization"
