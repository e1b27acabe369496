"""Add and delete notices name a method as the pages do (issue 19.6, a leftover of the review):
an unnamed authenticator app is "Authenticator app (added <date>)", numbered when several were
added the same day, in the change email (text and HTML), in the manage page's banner (HTML and
JSON twin) and in the admin API (``label`` as stored, ``display_name`` as shown)."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import replace
from pathlib import Path

import pyotp
import pytest
from admin_helpers import admin_section, api
from babel.dates import format_date
from plain_wsgi_host import DictDirectory, make_app
from test_web_method_names import _add_app, _two_apps
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore

SECURITY_INFO = "/security-info/"


@pytest.fixture
def env(tmp_path: Path, clock: FrozenClock) -> tuple[Browser, RecordingSender]:
    sender = RecordingSender()
    data = base_config(
        tmp_path, delivery={"public_url": "https://idp.example.test"}, admin=admin_section()
    )
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(
        parse_config(data), DictDirectory(), store=store, clock=clock, delivery=sender.delivery()
    )
    return Browser(reg, host, clock), sender


def _added(browser: Browser, lang: str = "en") -> str:
    day = dt.datetime.fromtimestamp(browser.clock.now(), dt.UTC)
    return format_date(day, "medium", locale=lang)


def _notices(sender: RecordingSender) -> list[tuple[str, str]]:
    """(text, html) of every change notice sent, oldest first (one recipient here)."""
    return [(m.text, m.html) for m in sender.emails if m.tag == "security_info_changed"]


def test_the_add_and_delete_emails_name_each_app_apart(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, sender = env
    _, (first, second) = _two_apps(browser)
    added = _added(browser)
    (text1, html1), (text2, html2) = _notices(sender)[-2:]
    # The first app was alone on its day when it was added; the second made two.
    assert f"Authenticator app (added {added}) was added to your account." in text1
    assert f"Authenticator app (added {added}) was added to your account." in html1
    assert f"Authenticator app (#2, added {added}) was added to your account." in text2
    assert f"Authenticator app (#2, added {added}) was added to your account." in html2
    r = browser.post(
        f"{SECURITY_INFO}methods/{first}/delete", data={"csrf_token": browser.csrf(SECURITY_INFO)}
    )
    assert r.status_code == 303
    text, _ = _notices(sender)[-1]
    assert f"Authenticator app (#1, added {added}) was removed from your account." in text


def test_the_manage_banner_names_the_app_added_or_deleted(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, _ = env
    browser.login("alice")
    wizard = location(browser.authorize())
    browser.register_totp(wizard)
    browser.post_json(wizard, {"action": "finish", "csrf_token": browser.csrf(wizard)})
    browser.clock.advance(60)
    # A second app from manage mode: the list's banner names it (HTML), once.
    _add_app(browser)
    added = _added(browser)
    html = browser.get(SECURITY_INFO + "?done=added").get_data(as_text=True)
    assert f"Authenticator app (#2, added {added}) was added." in html
    again = browser.get(SECURITY_INFO + "?done=added").get_data(as_text=True)
    assert "was added." not in again and "Method added." in again
    # The JSON twin carries the name's parts; in German the banner is German.
    before = {m.id for m in browser.reg.store.list_methods("alice")}
    browser.clock.advance(30)  # added after the second (same-second ones are ordered by id)
    _add_app(browser)
    apps = browser.get_json(SECURITY_INFO + "?done=added").get_json()
    assert apps["notice"] == "added"
    named = apps["notice_method"]
    [third] = [m for m in browser.reg.store.list_methods("alice") if m.id not in before]
    assert (named["id"], named["kind"], named["label"], named["ordinal"]) == (
        third.id,
        "totp",
        "",
        3,
    )
    browser.clock.advance(30)
    _add_app(browser)
    de = browser.get(SECURITY_INFO + "?done=added&lng=de").get_data(as_text=True)
    banner = re.search(r"<p class=\"ok\" role=\"status\">([^<]*)</p>", de)
    assert banner is not None
    assert (
        banner[1]
        == f"Authentifizierungs-App (Nr. 4, hinzugefügt am {_added(browser, 'de')}) wurde hinzugefügt."
    )
    browser.get(SECURITY_INFO + "?lng=en")  # the language chosen is kept: back to English
    # Deleted: the banner names the method that is gone.
    first = min(browser.reg.store.list_methods("alice"), key=lambda m: m.created_at)
    r = browser.post(
        f"{SECURITY_INFO}methods/{first.id}/delete",
        data={"csrf_token": browser.csrf(SECURITY_INFO)},
    )
    assert location(r) == SECURITY_INFO + "?done=deleted"
    html = browser.get(location(r)).get_data(as_text=True)
    assert f"Authenticator app (#1, added {added}) was deleted." in html


def test_the_admin_api_returns_the_stored_label_and_the_display_name(
    env: tuple[Browser, RecordingSender],
) -> None:
    browser, _ = env
    _, (first, second) = _two_apps(browser)
    added = _added(browser)
    methods = {
        m["id"]: m for m in api(browser, "GET", "/users/alice/methods").get_json()["methods"]
    }
    stored = {m.id: m.label for m in browser.reg.store.list_methods("alice")}
    assert methods[first]["label"] == stored[first] and methods[second]["label"] == stored[second]
    assert methods[first]["display_name"] == f"Authenticator app (#1, added {added})"
    assert methods[second]["display_name"] == f"Authenticator app (#2, added {added})"


def test_an_unused_unnamed_app_says_its_date_once(env: tuple[Browser, RecordingSender]) -> None:
    """Its name is "added <date>" already: the row's "Added <date>, not used yet" said it twice."""
    browser, _ = env
    _two_apps(browser)
    # Added the day before (alone on its day: "added <date>" without a number), never used.
    yesterday = browser.clock.now() - 86400
    added = format_date(dt.datetime.fromtimestamp(yesterday, dt.UTC), "medium", locale="en")
    second = "unused-app"
    browser.reg.store.add_method(
        MethodRecord(
            id=second, user_id="alice", kind=MethodKind.TOTP, label="",
            created_at=yesterday, data={},
        ),
        limit=5,
    )  # fmt: skip
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    row = next(li for li in html.split("<li>") if f"methods/{second}/delete" in li)
    row = row.split('<div class="actions">')[0]  # the name and the meta, not the links
    assert row.lower().count(f"added {added}".lower()) == 1, row
    assert "Not used yet" in row
    # A named one keeps the date in its meta line: its name does not say it.
    record = browser.reg.store.get_method("alice", second)
    assert record is not None
    browser.reg.store.update_method(replace(record, label="Tablet"))
    html = browser.get(SECURITY_INFO).get_data(as_text=True)
    row = next(li for li in html.split("<li>") if f"methods/{second}/delete" in li)
    assert f"Added {added}, not used yet" in row.split('<div class="actions">')[0]


def test_the_wizard_names_the_method_it_registered(env: tuple[Browser, RecordingSender]) -> None:
    """The wizard's "... was successfully registered." names the method as the list does."""
    browser, _ = env
    browser.login("alice")
    wizard = location(browser.authorize())
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    secret = browser.get_json(wizard).get_json()["secret"]
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    code = pyotp.TOTP(secret).at(browser.clock.now())
    browser.post_json(wizard, {"action": "verify", "code": code, "csrf_token": token})
    added = browser.get_json(wizard).get_json()
    assert added["page"] == "method_added"
    [app] = browser.reg.store.list_methods("alice")
    assert (added["method"]["id"], added["method"]["label"]) == (app.id, "")
    html = browser.get(wizard).get_data(as_text=True)
    assert f"Authenticator app (added {_added(browser)}) was successfully registered." in html


def test_recent_activity_names_the_methods_it_lists(env: tuple[Browser, RecordingSender]) -> None:
    """A row about one of the user's methods names it apart (while the method exists); the
    twin carries the name's parts, no internal id."""
    browser, _ = env
    _, (first, second) = _two_apps(browser)
    added = _added(browser)
    page = browser.get_json(SECURITY_INFO + "activity").get_json()
    named = [e["method_described"] for e in page["events"] if e["event"] == "method.added"]
    assert sorted(m["ordinal"] for m in named) == [1, 2]
    assert {m["kind"] for m in named} == {"totp"} and all("id" not in m for m in named)
    raw = browser.get_json(SECURITY_INFO + "activity").get_data(as_text=True)
    assert first not in raw and second not in raw
    html = browser.get(SECURITY_INFO + "activity").get_data(as_text=True)
    assert f"Authenticator app (<bdi>#1, added {added}</bdi>)" in html
    assert f"Authenticator app (<bdi>#2, added {added}</bdi>)" in html
