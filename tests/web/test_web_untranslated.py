"""No English inside German or Arabic pages (issue 19.7), through the WSGI stack.

Two checks over the pages a user meets (manage mode and each of its pages, recent activity, the
wizard's steps of every kind, the MFA step, the password reset's first page), each rendered in
``de`` and ``ar``:

* every msgid that reached gettext while the page rendered (recorded by wrapping the catalogs'
  lookup) has a translation in every shipped catalog: a label computed in Python and translated
  in a template (``_(m.name)``) is caught even when extraction never saw it;
* the page's visible text (text nodes and the attributes a screen reader reads) contains no
  English msgid of the source set whose translation differs: a string shown without passing
  through gettext at all (a stored English label, a name formatted in Python) is caught.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import pyotp
import pytest
from babel.messages.pofile import read_po
from babel.support import NullTranslations
from plain_wsgi_host import DictDirectory, make_app
from reset_helpers import RESET, Reset, add_email, add_phone, add_questions, add_totp
from reset_helpers import make_env as make_reset_env
from test_web_i18n import _extracted
from test_web_manage import SECURITY_INFO, add_record, enrolled
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import fast_hasher_for_tests
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.sqlite import SqliteStore
from oidc_combinedreg.web import i18n
from oidc_combinedreg.web.i18n import CATALOGS, SUPPORTED

LANGS = ("de", "ar")
_READ = ("aria-label", "title", "placeholder", "alt")


class _Visible(HTMLParser):
    """Text nodes and read-out attributes, outside script and style."""

    def __init__(self) -> None:
        super().__init__()
        self.chunks: list[str] = []
        self._skip = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        named = dict(attrs)
        self.chunks += [v for k, v in attrs if k in _READ and v]
        if tag == "input" and named.get("type") in ("submit", "button") and named.get("value"):
            self.chunks.append(str(named["value"]))

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1

    def handle_data(self, data: str) -> None:
        if not self._skip and data.strip():
            self.chunks.append(" ".join(data.split()))


def _translated(lang: str) -> dict[str, str]:
    with (CATALOGS / lang / "LC_MESSAGES" / "messages.po").open("rb") as fp:
        catalog = read_po(fp, locale=lang)
    out: dict[str, str] = {}
    for m in catalog:
        if not m.id or m.fuzzy:
            continue
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if all(strings):
            out[m.id if isinstance(m.id, str) else m.id[0]] = strings[0]
    return out


@pytest.fixture(scope="module")
def catalogs() -> dict[str, dict[str, str]]:
    return {lang: _translated(lang) for lang in SUPPORTED if lang != "en"}


@pytest.fixture(scope="module")
def english() -> set[str]:
    """Source msgids worth looking for in a page: words, not placeholders or punctuation."""
    return {m for m in _extracted() if re.search(r"[A-Za-z]{3}", m) and "%(" not in m}


@pytest.fixture
def seen(monkeypatch: pytest.MonkeyPatch) -> set[str]:
    """Every msgid a page asks gettext for while the test runs."""
    asked: set[str] = set()
    real = i18n.translations

    class Recording(NullTranslations):
        def __init__(self, inner: NullTranslations) -> None:
            super().__init__()
            self.inner = inner

        def gettext(self, message: str) -> str:
            asked.add(message)
            return self.inner.gettext(message)

        def ngettext(self, singular: str, plural: str, n: int) -> str:
            asked.add(singular)
            return self.inner.ngettext(singular, plural, n)

    monkeypatch.setattr(i18n, "translations", lambda lang: Recording(real(lang)))
    return asked


def english_in(html: str, lang: str, english: set[str], catalog: dict[str, str]) -> list[str]:
    parser = _Visible()
    parser.feed(html)
    text = "\n".join(parser.chunks)
    found = []
    for msgid in english:
        if catalog.get(msgid, msgid) == msgid:
            continue  # the same in both languages ("OK", a brand name)
        exact = msgid in parser.chunks
        words = len(msgid.split()) > 1 and re.search(
            rf"(?<![\w-]){re.escape(msgid)}(?![\w-])", text
        )
        if exact or words:
            found.append(msgid)
    return sorted(found)


Check = Callable[[Browser, str], None]


@pytest.fixture
def check(
    seen: set[str], english: set[str], catalogs: dict[str, dict[str, str]]
) -> Iterator[Check]:
    """``check(browser, url)``: that page in every language of LANGS; collects what is wrong."""
    problems: list[str] = []

    def run(browser: Browser, url: str) -> None:
        for lang in LANGS:
            sep = "&" if "?" in url else "?"
            r = browser.get(f"{url}{sep}lng={lang}")
            assert r.status_code < 500, (url, r.status_code)
            html = r.get_data(as_text=True)
            shown = english_in(html, lang, english, catalogs[lang])
            if shown:
                problems.append(f"{url} [{lang}] shows English: {shown}")
        assert seen, "nothing reached gettext: the recording is not in place"
        missing = {
            lang: sorted(m for m in seen if m.strip() and m not in table)
            for lang, table in catalogs.items()
        }
        for lang, ids in missing.items():
            if ids:
                problems.append(f"{url}: not in the {lang} catalog: {ids}")
        seen.clear()

    yield run
    assert not problems, "\n".join(problems)


def test_the_checks_find_english(english: set[str], catalogs: dict[str, dict[str, str]]) -> None:
    """The detector itself: a stored English label inside a German sentence is found."""
    html = '<p>Möchten Sie <b>Authenticator app</b> löschen?</p><a aria-label="Delete">x</a>'
    assert english_in(html, "de", english, catalogs["de"]) == ["Authenticator app", "Delete"]
    assert english_in("<p>Authentifizierungs-App</p>", "de", english, catalogs["de"]) == []


def test_manage_mode_pages(browser: Browser, check: Check) -> None:
    enrolled(browser)
    records = [
        add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167"),
        add_record(browser, "alice", MethodKind.ALTERNATE_PHONE, phone="+14255550168"),
        add_record(browser, "alice", MethodKind.EMAIL, email="b@example.test"),
        add_record(browser, "alice", MethodKind.WEBAUTHN),
    ]
    records.append(browser.reg.store.list_methods("alice")[0])  # the app from the wizard
    check(browser, SECURITY_INFO)
    for record in records:
        check(browser, f"/security-info/methods/{record.id}/delete")
    check(browser, "/security-info/default")
    for kind in ("totp", "mobile_phone", "alternate_phone", "email", "webauthn"):
        check(browser, f"/security-info/add/{kind}")
    check(browser, "/security-info/activity")
    ref = browser.get_json("/security-info/activity").get_json()["events"][0]["ref"]
    check(browser, f"/security-info/activity/not-me?ref={ref}")


def test_the_mfa_step_for_every_kind_and_its_other_ways(browser: Browser, check: Check) -> None:
    from test_web_hardware_oath import B32, HEADER

    mfa_url, _form = browser.at_mfa_with_totp()
    check(browser, mfa_url)
    others = [
        add_record(browser, "alice", MethodKind.MOBILE_PHONE, phone="+14255550167"),
        add_record(browser, "alice", MethodKind.ALTERNATE_PHONE, phone="+14255550168"),
        add_record(browser, "alice", MethodKind.WEBAUTHN),
    ]
    assert browser.reg.info.hardware_oath.import_file(csv_text=HEADER + f"alice,HW1,{B32},30,,\n")
    others.append(next(m for m in browser.reg.store.list_methods("alice") if m.label == "HW1"))
    for record in others:
        shown = browser.get_json(f"{mfa_url}&method={record.id}").get_json()
        assert shown["method"]["id"] == record.id, shown
        check(browser, f"{mfa_url}&method={record.id}")


def test_the_blocked_and_limit_pages(make_browser: Callable[..., Browser], check: Check) -> None:
    from test_web_conditional_access import SEED

    browser = make_browser(**SEED)
    browser.remote_addr = "192.168.10.20"  # the trusted "office"
    enrolled(browser)
    for n in range(4):
        add_record(browser, "alice", MethodKind.TOTP, n=n)
    assert browser.get_json("/security-info/add/totp").get_json()["page"] == "method_limit"
    check(browser, "/security-info/add/totp")  # "You can have up to 5 authenticator apps."
    browser.remote_addr = "203.0.113.9"
    assert browser.get_json(SECURITY_INFO).get_json()["page"] == "blocked"
    check(browser, SECURITY_INFO)  # blocked by Conditional Access on this network


def test_the_password_reset(
    tmp_path: Path, clock: FrozenClock, monkeypatch: pytest.MonkeyPatch, check: Check
) -> None:
    env = make_reset_env(tmp_path, clock, monkeypatch, required=2)
    for add in (add_email, add_phone, add_totp, add_questions):
        add(env.reg, "alice")
    browser, reset = env.browser, Reset(env.browser)
    check(browser, RESET)
    reset.page()
    r = reset.post("account", action="account", account="alice")
    check(browser, location(r))  # choose a method
    for choice in ("app_code", "mobile_text", "email", "questions"):
        browser = env.new_browser()  # a reset of its own: one method at a time
        reset = Reset(browser)
        reset.start("alice")
        r = reset.post("method", action="choose", choice=choice)
        assert location(r), (choice, r.status_code, r.get_data(as_text=True)[:300])
        check(browser, location(r))  # its verify page


def test_the_wizards_last_pages_and_the_error_pages(browser: Browser, check: Check) -> None:
    browser.login("alice")
    wizard = location(browser.authorize())
    token = browser.csrf(wizard)
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    secret = browser.get_json(wizard).get_json()["secret"]
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    code = pyotp.TOTP(secret).at(browser.clock.now())
    browser.post_json(wizard, {"action": "verify", "code": code, "csrf_token": token})
    assert browser.get_json(wizard).get_json()["page"] == "method_added"
    check(browser, wizard)  # "Authenticator app was registered"
    browser.post_json(wizard, {"action": "next", "csrf_token": token})
    assert browser.get_json(wizard).get_json()["page"] == "wizard_summary"
    check(browser, wizard)  # the summary
    check(browser, "/security-info/no-such-page")
    browser.post(SECURITY_INFO + "signout-everywhere", data={"csrf_token": token})
    check(browser, SECURITY_INFO)  # signed out


@pytest.fixture
def wizard_browser(tmp_path: Path, clock: FrozenClock) -> Iterator[Callable[[str], Browser]]:
    """A browser whose wizard proposes ``kind`` first (every kind of the reset policy offered)."""
    stores: list[SqliteStore] = []

    def factory(kind: str) -> Browser:
        data = base_config(tmp_path, delivery={"public_url": "https://idp.example.test"})
        data["policies"]["wizard_preference"] = [kind]
        data["policies"]["mfa_registration"]["skips_allowed"] = 2
        data["policies"]["methods"] = {"security_questions": {"enabled": True}}
        data["policies"]["sspr"] = {
            "enabled_for": "all",
            "methods_required": 2,
            "methods": ["totp", "mobile_phone", "email", "security_questions", "push"],
            "allow_questions_alone": True,
        }
        store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
        stores.append(store)
        reg, host = make_app(
            parse_config(data),
            DictDirectory(),
            store=store,
            clock=clock,
            delivery=RecordingSender().delivery(),
        )
        reg.info.questions.hasher = fast_hasher_for_tests()
        return Browser(reg, host, clock)

    yield factory
    for store in stores:
        store.close()


#: kind -> the forms that walk its wizard step from its first page (each page is checked)
WALKS: dict[str, list[dict[str, str]]] = {
    "totp": [{"action": "next"}, {"action": "next"}],
    "push": [{"action": "next"}],
    "webauthn": [],
    "security_questions": [],
    "email": [{"action": "next", "email": "a@example.com"}],
    "mobile_phone": [{"action": "next", "country": "US", "number": "415 555 0123",
                      "channel": "sms"}],
}  # fmt: skip


def test_the_wizards_first_step_and_chooser(
    wizard_browser: Callable[[str], Browser], check: Check
) -> None:
    browser = wizard_browser("totp")
    browser.login("alice")
    wizard = location(browser.authorize())
    assert "/wizard" in wizard, wizard
    check(browser, wizard)
    check(browser, wizard + "&choose=1")  # "I want to set up a different method"


@pytest.mark.parametrize("kind", list(WALKS))
def test_every_registration_steps_pages(
    wizard_browser: Callable[[str], Browser], check: Check, kind: str
) -> None:
    """The steps the wizard shows, reached through "+ Add sign-in method" (the same templates)."""
    browser = wizard_browser("totp")
    enrolled(browser)
    url = f"/security-info/add/{kind}"
    assert browser.get_json(url).status_code == 200, browser.get_json(url).get_data(as_text=True)
    token = browser.csrf(url)
    check(browser, url)
    for form in WALKS[kind]:
        r = browser.post_json(url, {**form, "csrf_token": token})
        assert r.status_code in (200, 303), r.get_data(as_text=True)
        check(browser, url)


@pytest.mark.parametrize("lang", LANGS)
def test_the_change_notice_names_the_method_once_in_the_users_language(lang: str) -> None:
    """An app registered without a name keeps its kind's English name as its label: the notice
    says "Authentifizierungs-App wurde ...", not "Authentifizierungs-App (Authenticator app)"."""
    from oidc_combinedreg.delivery.messages import change_sentence

    sentence = change_sentence("added", "Authenticator app", "Authenticator app", lang)
    assert "Authenticator app" not in sentence and "()" not in sentence
    with i18n.using_language(lang):
        assert i18n.gettext("Authenticator app") in sentence
    phone = change_sentence("added", "Phone", "+1 XXXXXXXX67", lang)
    assert "(+1 XXXXXXXX67)" in phone  # a real detail stays


def test_a_hardware_token_without_make_or_model_is_named_by_its_serial(
    browser: Browser, check: Check
) -> None:
    """Imported without manufacturer or model, a token's label was "Hardware token HW1": English
    inside every other language. Its label is now the serial (the name says what it is), and a
    label stored that way by an older version shows without the English prefix."""
    from test_web_hardware_oath import B32, HEADER

    enrolled(browser)
    imported = browser.reg.info.hardware_oath.import_file(
        csv_text=HEADER + f"alice,HW1,{B32},30,,\nalice,HW2,{B32},30,Acme,K1\n"
    )
    assert imported.ok, imported
    labels = {m.data.get("serial"): m.label for m in browser.reg.store.list_methods("alice")}
    assert labels["HW1"] == "HW1" and labels["HW2"] == "Acme K1 HW2"
    older = add_record(browser, "alice", MethodKind.HARDWARE_OATH, serial="HW0")
    browser.reg.store.update_method(replace(older, label="Hardware token HW0"))
    check(browser, SECURITY_INFO)
    html = browser.get(SECURITY_INFO + "?lng=de").get_data(as_text=True)
    assert "HW0" in html and "HW1" in html and "Acme K1 HW2" in html


def test_the_admin_dashboard(make_browser: Callable[..., Browser], check: Check) -> None:
    from admin_helpers import sign_in_and_register_totp

    browser = make_browser(groups={"alice": frozenset({"admins"})}, admin={"group": "admins"})
    sign_in_and_register_totp(browser, "alice")
    assert browser.get_json("/security-info/admin/").get_json()["page"] == "admin_dashboard"
    check(browser, "/security-info/admin/")
