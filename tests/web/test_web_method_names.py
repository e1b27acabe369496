"""Every method has a distinguishing name (issue 19.6): a nickname the user sets, or a default
("added <date>", numbered when several of one kind were added the same day), shown wherever a
method is named, in HTML and JSON, in the page's language; renaming any nameable kind."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pyotp
from admin_helpers import admin_section, api
from babel.dates import format_date
from webtest import Browser, location, notices

from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord

SECURITY_INFO = "/security-info/"


def _added(browser: Browser, lang: str = "en") -> str:
    return format_date(
        dt.datetime.fromtimestamp(browser.clock.now(), dt.UTC), "medium", locale=lang
    )


def _add_app(browser: Browser) -> str:
    """Add an authenticator app from manage mode (the real steps); returns its secret."""
    url = SECURITY_INFO + "add/totp"
    token = browser.csrf(url)
    browser.post_json(url, {"action": "next", "csrf_token": token})
    secret = browser.get_json(url).get_json()["secret"]
    browser.post_json(url, {"action": "next", "csrf_token": token})
    code = pyotp.TOTP(secret).at(browser.clock.now())
    r = browser.post_json(url, {"action": "verify", "code": code, "csrf_token": token})
    assert r.status_code == 303 and "done=added" in location(r), r.get_data(as_text=True)
    return str(secret)


def _two_apps(browser: Browser) -> tuple[str, list[str]]:
    """alice with two authenticator apps added the same day; (first secret, both ids in order)."""
    browser.login("alice")
    wizard = location(browser.authorize())
    secret = browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    browser.clock.advance(60)
    _add_app(browser)
    apps = sorted(
        (m for m in browser.reg.store.list_methods("alice") if m.kind is MethodKind.TOTP),
        key=lambda m: m.created_at,
    )
    return secret, [m.id for m in apps]


def _manage(browser: Browser) -> dict[str, Any]:
    body = browser.get_json(SECURITY_INFO).get_json()
    assert body["page"] == "manage"
    return dict(body)


def test_two_apps_have_distinct_default_names_on_the_manage_and_delete_pages(
    browser: Browser,
) -> None:
    _, (first, second) = _two_apps(browser)
    added = _added(browser)
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    assert f"#1, added {added}" in html and f"#2, added {added}" in html
    assert "Authenticator app (Authenticator app)" not in html
    page = _manage(browser)
    shown = {m["id"]: (m["label"], m["ordinal"], m["created_at"]) for m in page["methods"]}
    assert shown[first][1:] != shown[second][1:]  # the JSON twin tells them apart too
    assert shown[first][0] == shown[second][0] == ""  # no nickname yet
    delete_first = browser.get(f"{SECURITY_INFO}methods/{first}/delete").get_data(as_text=True)
    delete_second = browser.get(f"{SECURITY_INFO}methods/{second}/delete").get_data(as_text=True)
    assert f"#1, added {added}" in delete_first and f"#2, added {added}" not in delete_first
    assert f"#2, added {added}" in delete_second


def test_the_german_page_shows_the_german_default_name(browser: Browser) -> None:
    _two_apps(browser)
    html = browser.get(SECURITY_INFO + "?lng=de").get_data(as_text=True)
    assert f"hinzugefügt am {_added(browser, 'de')}" in html
    assert f"added {_added(browser)}" not in html


def test_a_renamed_app_shows_its_name_everywhere(browser: Browser) -> None:
    secret, (first, second) = _two_apps(browser)
    form = browser.get_json(f"{SECURITY_INFO}methods/{first}/rename").get_json()
    assert form["page"] == "method_rename" and form["values"]["name"] == ""
    r = browser.post(
        f"{SECURITY_INFO}methods/{first}/rename",
        data={"name": "  Work   phone ", "csrf_token": browser.csrf(SECURITY_INFO)},
    )
    assert r.status_code == 303 and "done=renamed" in location(r)
    assert browser.reg.store.get_method("alice", first).label == "Work phone"  # type: ignore[union-attr]
    [event] = browser.reg.store.list_audit(user_id="alice", event_prefix="method.renamed")
    assert event.detail.get("kind") == "totp"
    page = _manage(browser)
    labels = {m["id"]: m["label"] for m in page["methods"]}
    assert labels == {first: "Work phone", second: ""}
    # The other app is alone on its day now among unnamed apps: no number any more.
    assert next(m for m in page["methods"] if m["id"] == second)["ordinal"] == 0
    for url in (SECURITY_INFO, f"{SECURITY_INFO}methods/{first}/delete", SECURITY_INFO + "default"):
        assert "Work phone" in browser.get(url).get_data(as_text=True), url
    # The MFA step's "Sign in another way" list names both apps apart.
    browser.clock.advance(120)
    browser.login("alice")
    mfa_url = location(browser.authorize())
    mfa = browser.get_json(mfa_url).get_json()
    named = [mfa["method"]["label"]] + [m["label"] for m in mfa["others"]]
    assert "Work phone" in named
    html = browser.get(mfa_url).get_data(as_text=True)
    assert "Work phone" in html and f"added {_added(browser)}" in html


def test_a_bad_name_is_refused_and_what_was_typed_is_kept(browser: Browser) -> None:
    _, (first, _) = _two_apps(browser)
    url = f"{SECURITY_INFO}methods/{first}/rename"
    token = browser.csrf(SECURITY_INFO)
    for typed in ("x" * 65, "   ", "bad\u202ename"):
        r = browser.post_json(url, {"name": typed, "csrf_token": token})
        assert r.status_code == 400, typed
        body = r.get_json()
        assert body["page"] == "method_rename" and body["errors"]["name"]
        assert body["values"]["name"] == typed
    html = browser.post(url, data={"name": "y" * 65, "csrf_token": token}).get_data(as_text=True)
    assert 'value="' + "y" * 65 + '"' in html and 'aria-invalid="true"' in html
    assert browser.reg.store.get_method("alice", first).label != "y" * 65  # type: ignore[union-attr]
    assert not browser.reg.store.list_audit(user_id="alice", event_prefix="method.renamed")


def test_rename_needs_csrf_and_refuses_kinds_without_a_name(browser: Browser) -> None:
    _, (first, _) = _two_apps(browser)
    r = browser.post_json(f"{SECURITY_INFO}methods/{first}/rename", {"name": "Mine"})
    assert r.status_code in (400, 403)
    assert browser.reg.store.get_method("alice", first).label != "Mine"  # type: ignore[union-attr]


def test_the_admin_api_and_the_change_notice_carry_the_new_name(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(admin=admin_section())
    _, (first, _) = _two_apps(browser)
    r = browser.post_json(
        f"{SECURITY_INFO}methods/{first}/rename",
        {"name": "Old tablet", "csrf_token": browser.csrf(SECURITY_INFO)},
    )
    assert r.status_code == 303
    methods = api(browser, "GET", "/users/alice/methods").get_json()["methods"]
    assert {m["id"]: m["label"] for m in methods}[first] == "Old tablet"
    assert notices(browser.reg.store, "alice")[-1] == ("changed", "totp", "Old tablet")


def test_phones_are_named_by_their_number_and_are_not_renamed(browser: Browser) -> None:
    _two_apps(browser)
    phone = MethodRecord(
        id="phone1", user_id="alice", kind=MethodKind.MOBILE_PHONE, label="+1 XXXXXXXX67",
        created_at=browser.clock.now(), data={"phone": "+14255550167"},
    )  # fmt: skip
    browser.reg.store.add_method(phone, limit=10)
    page = _manage(browser)
    described = {m["kind"]: m for m in page["methods"]}
    assert described["mobile_phone"]["rename_url"] is None
    assert described["totp"]["rename_url"] is not None
    r = browser.post_json(
        f"{SECURITY_INFO}methods/phone1/rename",
        {"name": "Mine", "csrf_token": browser.csrf(SECURITY_INFO)},
    )
    assert r.status_code == 403
    assert browser.reg.store.get_method("alice", "phone1").label == "+1 XXXXXXXX67"  # type: ignore[union-attr]


def test_the_wizard_summary_names_the_app_once_with_its_date(browser: Browser) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    browser.register_totp(wizard)
    html = browser.get(wizard).get_data(as_text=True)
    assert "Authenticator app (Authenticator app)" not in html
    assert f"Authenticator app (<bdi>added {_added(browser)}</bdi>)" in html
