"""Every wizard step's page, in HTML and in its JSON twin (issue 19.1, 19.11): the "Skip setup for
now" button and "I want to set up a different method" link on every stage of every method, and the
legacy heading (erin) kept from the first step to the last."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterator
from html import unescape
from pathlib import Path
from typing import Any

import pyotp
import pytest
from plain_wsgi_host import DictDirectory, make_app
from test_web_manage import add_record
from webtest import Browser, base_config, location

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import FrozenClock
from oidc_combinedreg.crypto import fast_hasher_for_tests
from oidc_combinedreg.delivery.recording import RecordingSender
from oidc_combinedreg.exceptions import ConfigError
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.sqlite import SqliteStore
from oidc_combinedreg.web.render import Page, Renderer

TEMPLATES = Path(__file__).parents[2] / "oidc_combinedreg/web/templates/combinedreg"
SKIP = "Skip setup for now"
OTHER = "I want to set up a different method"

#: (template, stage's page data) of every page a wizard step shows
STEP_PAGES = [
    ("push_intro", {"stage": "intro", "app_name": "Contoso Authenticator", "app_url": ""}),
    ("push_setup", {"stage": "setup", "payload": "x", "_qr_svg": "<svg></svg>"}),
    ("totp_intro", {"stage": "intro"}),
    ("totp_setup", {"stage": "setup", "secret": "ABC", "uri": "otpauth://x", "_qr_svg": ""}),
    ("totp_verify", {"stage": "verify", "errors": {}, "values": {}}),
    ("webauthn_create", {"stage": "create", "errors": {}, "options": {}}),
    ("webauthn_name", {"stage": "name", "errors": {}, "values": {}}),
    ("questions", {"stage": "questions", "errors": {}, "values": {}, "questions": [], "count": 3}),
    ("email_enter", {"stage": "enter", "errors": {}, "values": {}}),
    ("email_verify", {"stage": "verify", "errors": {}, "values": {}, "sent": {}}),
    ("phone_enter", {"stage": "enter", "errors": {}, "values": {}, "countries": []}),
    ("phone_verify", {"stage": "verify", "errors": {}, "values": {}, "sent": {}}),
]


def test_the_table_lists_every_template_with_the_wizard_links() -> None:
    # other_method_for: the same links with the skip state as arguments (imported without context)
    calls = ("other_method(", "other_method_for(")
    with_links = {
        p.stem for p in TEMPLATES.glob("*.html") if any(c in p.read_text() for c in calls)
    }
    with_links.discard("_macros")
    assert with_links == {name for name, _ in STEP_PAGES}


@pytest.mark.parametrize(("name", "data"), STEP_PAGES, ids=[n for n, _ in STEP_PAGES])
def test_every_step_template_has_skip_and_different_method(name: str, data: dict[str, Any]) -> None:
    progress = {"current": 1, "total": 2, "kind": "totp", "name": "x", "purpose": "both"}
    common = {"csrf_token": "t", "cid": "c1", "prefix": "/security-info"}
    page = Page(name, {**data, "progress": progress, "can_choose_other": True, "skips_left": 2})
    html = Renderer().html(page, common, "en")
    assert SKIP in html and OTHER in html
    assert re.search(r'name="csrf_token" value="t"', html.split(SKIP)[0].rsplit("<form", 1)[1])


@pytest.fixture
def make_env(
    tmp_path: Path, clock: FrozenClock
) -> Iterator[Callable[..., tuple[Browser, RecordingSender]]]:
    stores: list[SqliteStore] = []

    def factory(preference: list[str], **policies: Any) -> tuple[Browser, RecordingSender]:
        sender = RecordingSender()
        data = base_config(tmp_path, delivery={"public_url": "https://idp.example.test"})
        data["policies"]["wizard_preference"] = preference
        data["policies"]["mfa_registration"]["skips_allowed"] = 2
        data["policies"]["methods"] = {"security_questions": {"enabled": True}}
        data["policies"]["sspr"] = {
            "enabled_for": "all",
            "methods_required": 2,
            "methods": ["totp", "mobile_phone", "email", "security_questions", "push"],
            "allow_questions_alone": True,
        }
        data["methods"] = {"push": {"app_name": "Contoso Authenticator"}}
        for key, value in policies.items():
            data["policies"][key] = value
        store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
        stores.append(store)
        reg, host = make_app(
            parse_config(data),
            DictDirectory(),
            store=store,
            clock=clock,
            delivery=sender.delivery(),
        )
        reg.info.questions.hasher = fast_hasher_for_tests()
        return Browser(reg, host, clock), sender

    yield factory
    for store in stores:
        store.close()


def _wizard(browser: Browser, user: str = "alice") -> str:
    browser.login(user)
    url = location(browser.authorize())
    assert "/wizard" in url, url
    return url


def _check(browser: Browser, url: str, page: str) -> None:
    twin = browser.get_json(url).get_json()
    assert twin["page"] == page, twin
    assert twin["skips_left"] == 2 and twin["can_choose_other"] is True, twin
    html = browser.get(url).get_data(as_text=True)
    assert SKIP in html and OTHER in html, page


#: kind -> [(form posted to reach the stage, page shown)]
FLOWS: dict[str, list[tuple[dict[str, str] | None, str]]] = {
    "push": [(None, "push_intro"), ({"action": "next"}, "push_setup")],
    "totp": [(None, "totp_intro"), ({"action": "next"}, "totp_setup"),
             ({"action": "next"}, "totp_verify")],
    "webauthn": [(None, "webauthn_name")],
    "security_questions": [(None, "questions")],
    "email": [(None, "email_enter"), ({"action": "next", "email": "a@example.com"}, "email_verify")],
    "mobile_phone": [(None, "phone_enter"),
                     ({"action": "next", "country": "US", "number": "415 555 0123",
                       "channel": "sms"}, "phone_verify")],
}  # fmt: skip


@pytest.mark.parametrize("kind", list(FLOWS))
def test_every_wizard_stage_offers_skip_and_a_different_method(
    make_env: Callable[..., tuple[Browser, RecordingSender]], kind: str
) -> None:
    # Email and questions serve password reset only: a reset-only registration plans them first.
    reset_only = kind in ("email", "security_questions")
    mfa = {"enforced": not reset_only, "skips_allowed": 2}
    browser, _ = make_env([kind], mfa_registration=mfa)
    url = _wizard(browser)
    token = browser.csrf(url)
    if browser.get_json(url).get_json()["page"] != FLOWS[kind][0][1]:
        # a security key is an alternative, never planned first: "set up a different method"
        r = browser.post_json(url, {"action": "choose", "kind": kind, "csrf_token": token})
        assert r.status_code == 303, r.get_data(as_text=True)
    for form, page in FLOWS[kind]:
        if form is not None:
            r = browser.post_json(url, {**form, "csrf_token": token})
            assert r.status_code in (200, 303), r.get_data(as_text=True)
        _check(browser, url, page)


def _h1(html: str) -> str:
    m = re.search(r"<h1>(.*?)</h1>", html, re.S)
    assert m, html
    return m.group(1).strip()


LEGACY = {"enabled_for": "selected", "groups": ["staff"]}
MFA_PART = "Additional security verification"


@pytest.mark.parametrize("kind", ["push", "totp"])
def test_legacy_mode_keeps_its_heading_through_the_mfa_part(
    make_env: Callable[..., tuple[Browser, RecordingSender]], kind: str
) -> None:
    """erin (outside combined registration): every page of the MFA part says "Additional security
    verification", the push intro and the "registered" page too (issue 19.11)."""
    browser, _ = make_env([kind], combined_registration=LEGACY)
    url = _wizard(browser)
    token = browser.csrf(url)
    assert _h1(browser.get(url).get_data(as_text=True)) == MFA_PART
    browser.post_json(url, {"action": "next", "csrf_token": token})
    assert _h1(browser.get(url).get_data(as_text=True)) == MFA_PART
    if kind == "totp":
        secret = browser.get_json(url).get_json()["secret"]
        browser.post_json(url, {"action": "next", "csrf_token": token})  # setup -> verify
        assert _h1(browser.get(url).get_data(as_text=True)) == MFA_PART
        code = pyotp.TOTP(secret).at(browser.clock.now())
        r = browser.post_json(url, {"action": "verify", "code": code, "csrf_token": token})
        assert r.status_code == 303, r.get_data(as_text=True)
        assert browser.get_json(url).get_json()["page"] == "method_added"
        assert _h1(browser.get(url).get_data(as_text=True)) == MFA_PART


PUSH_FIRST = {"mfa_registration": {"enforced": True}, "wizard_preference": ["push"]}


def test_push_is_not_proposed_without_an_app_to_install(
    make_browser: Callable[..., Browser],
) -> None:
    """Issue 19.4: without ``[methods.push] app_name`` no user could complete push registration,
    so neither the wizard (first or as an alternative) nor "Add sign-in method" offers it."""
    browser = make_browser(methods={"push": {"app_name": ""}}, policies=PUSH_FIRST)
    url = _wizard(browser)
    twin = browser.get_json(url).get_json()
    assert twin["page"] == "totp_intro", twin
    choose = browser.get_json(url + "&choose=1").get_json()
    assert "push" not in [a["kind"] for a in choose["alternatives"]]
    token = browser.csrf(url)
    r = browser.post_json(url, {"action": "choose", "kind": "push", "csrf_token": token})
    assert browser.get_json(url).get_json()["page"] == "totp_intro", r.status_code


def test_push_intro_names_the_app_and_links_to_it(make_browser: Callable[..., Browser]) -> None:
    app = {"app_name": "Contoso Authenticator", "app_url": "https://apps.example.test/get?id=1"}
    browser = make_browser(methods={"push": app}, policies=PUSH_FIRST)
    url = _wizard(browser)
    twin = browser.get_json(url).get_json()
    assert twin["page"] == "push_intro"
    assert (twin["app_name"], twin["app_url"]) == (app["app_name"], app["app_url"])
    html = browser.get(url).get_data(as_text=True)
    assert "On your phone, install Contoso Authenticator." in html
    assert 'href="https://apps.example.test/get?id=1"' in html
    de = browser.get(url + "&lng=de").get_data(as_text=True)
    assert "Installieren Sie auf Ihrem Smartphone Contoso Authenticator." in de


def test_an_app_link_without_an_app_name_is_a_config_error(tmp_path: Path) -> None:
    data = base_config(tmp_path, methods={"push": {"app_name": "", "app_url": "https://x.test"}})
    with pytest.raises(ConfigError, match=r"methods\.push\.app_url: expected app_name too"):
        parse_config(data)


def test_the_built_in_web_app_is_offered_and_the_qr_code_links_to_it(
    make_browser: Callable[..., Browser],
) -> None:
    """Issue 20.1: ``web_app = true`` offers push without ``app_name``; the intro links to the
    app; the setup page's link carries the one-time payload only in its fragment."""
    from urllib.parse import unquote

    browser = make_browser(methods={"push": {"app_name": "", "web_app": True}}, policies=PUSH_FIRST)
    url = _wizard(browser)
    twin = browser.get_json(url).get_json()
    assert twin["page"] == "push_intro", twin
    assert twin["app_name"] == "Test Org Authenticator"
    assert twin["app_url"] == "http://localhost/security-info/app/"
    token = browser.csrf(url)
    setup = browser.post_json(url, {"action": "next", "csrf_token": token}).get_json()
    link, payload = setup["app_link"], setup["payload"]
    base, fragment = link.split("#", 1)
    assert base == "http://localhost/security-info/app/"
    assert fragment.startswith("enroll=") and unquote(fragment[7:]) == payload
    assert payload.startswith("combinedreg-push://enroll?")


def test_the_setup_page_opens_the_web_app_on_this_device(
    make_browser: Callable[..., Browser],
) -> None:
    """Beside the QR code, a link opens the app in another window of this browser (a desktop
    visitor without a phone at hand): the same link as the QR code's, in every language; the
    JSON twin's ``app_link``. No link where the app is not the built-in one (nothing to open)."""
    import html as html_lib

    browser = make_browser(methods={"push": {"app_name": "", "web_app": True}}, policies=PUSH_FIRST)
    url = _wizard(browser)
    token = browser.csrf(url)
    setup = browser.post_json(url, {"action": "next", "csrf_token": token}).get_json()
    link = setup["app_link"]
    page = browser.get(url).get_data(as_text=True)
    anchor = re.search(r'<a [^>]*class="open-app"[^>]*>([^<]+)</a>', page)
    assert anchor is not None, page
    assert f'href="{html_lib.escape(link)}"' in anchor.group(0)
    assert 'target="_blank"' in anchor.group(0) and "noopener" in anchor.group(0)
    assert anchor.group(1) == "Open the app on this device"
    for lang, text in {
        "de": "App auf diesem Gerät öffnen",
        "es": "Abrir la aplicación en este dispositivo",
        "fr": "Ouvrir l’application sur cet appareil",
        "ja": "このデバイスでアプリを開く",
        "ar": "افتح التطبيق على هذا الجهاز",
    }.items():
        assert f">{text}</a>" in browser.get(url + f"&lng={lang}").get_data(as_text=True), lang
    other = make_browser(
        methods={"push": {"app_name": "Contoso Authenticator"}}, policies=PUSH_FIRST
    )
    url = _wizard(other)
    token = other.csrf(url)
    assert (
        other.post_json(url, {"action": "next", "csrf_token": token}).get_json()["app_link"] is None
    )
    assert 'class="open-app"' not in other.get(url).get_data(as_text=True)


def test_web_app_must_be_a_boolean(tmp_path: Path) -> None:
    data = base_config(tmp_path, methods={"push": {"web_app": "yes"}})
    with pytest.raises(ConfigError, match=r"methods\.push\.web_app"):
        parse_config(data)


def _skip_policies(**mfa: Any) -> dict[str, Any]:
    return {"mfa_registration": {"enforced": True, **mfa}, "wizard_preference": ["totp"]}


def test_the_page_says_how_many_skips_are_left_and_until_when(
    make_browser: Callable[..., Browser],
) -> None:
    """Issue 19.5: "You can skip this 2 more times, until <date>", the date in the page's language
    (T0 is 14 November 2023)."""
    browser = make_browser(policies=_skip_policies(skips_allowed=2, deadline=dt.date(2023, 12, 20)))
    url = _wizard(browser)
    twin = browser.get_json(url).get_json()
    assert (twin["skips_left"], twin["skip_deadline"], twin["skip_refused"]) == (
        2,
        "2023-12-20",
        None,
    )
    html = browser.get(url).get_data(as_text=True)
    assert SKIP in html and "You can skip this 2 more times, until December 20, 2023." in html
    de = browser.get(url + "&lng=de").get_data(as_text=True)
    assert "Sie können dies noch 2 Mal überspringen, bis zum 20. Dezember 2023." in de


def test_without_a_deadline_the_page_says_how_many_skips_are_left(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(policies=_skip_policies(skips_allowed=1))
    url = _wizard(browser)
    assert browser.get_json(url).get_json()["skip_deadline"] is None
    assert "You can skip this 1 more time." in browser.get(url).get_data(as_text=True)


def test_past_the_deadline_there_is_no_skip_and_the_page_says_why(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(policies=_skip_policies(skips_allowed=2, deadline=dt.date(2023, 11, 1)))
    url = _wizard(browser)
    twin = browser.get_json(url).get_json()
    assert (twin["skips_left"], twin["skip_refused"]) == (0, "deadline_passed")
    html = browser.get(url).get_data(as_text=True)
    assert SKIP not in html
    assert "You can't put this off any more: the deadline was November 1, 2023." in unescape(html)
    r = browser.post_json(url, {"action": "skip", "csrf_token": browser.csrf(url)})
    assert r.status_code == 403


def test_after_the_last_skip_the_page_says_none_are_left(
    make_browser: Callable[..., Browser],
) -> None:
    browser = make_browser(policies=_skip_policies(skips_allowed=1, skip_days=1))
    url = _wizard(browser)
    r = browser.post_json(url, {"action": "skip", "csrf_token": browser.csrf(url)})
    assert r.status_code == 303
    browser.clock.advance(2 * 86400)
    url = _wizard(browser)
    twin = browser.get_json(url).get_json()
    assert (twin["skips_left"], twin["skip_refused"]) == (0, "none_left")
    html = browser.get(url).get_data(as_text=True)
    assert SKIP not in html
    says = "You have skipped this as many times as allowed, so it can't be put off again."
    assert says in unescape(html)


LIMITS = [
    ("totp", 5, "You can have up to 5 authenticator apps. Delete one to add another."),
    ("push", 5, "You can have up to 5 phones with the authenticator app (notification). "
                "Delete one to add another."),
    ("webauthn", 10, "You can have up to 10 security keys or passkeys. Delete one to add another."),
    ("mobile_phone", 1, "You can have one phone number. Change or delete it to use another."),
    ("email", 1, "You can have one email address. Change or delete it to use another."),
    ("security_questions", 1,
     "You already have security questions. Delete them to choose new ones."),
]  # fmt: skip


@pytest.mark.parametrize(("kind", "limit", "says"), LIMITS, ids=[k for k, _, _ in LIMITS])
def test_adding_past_a_limit_says_the_limit(
    make_env: Callable[..., tuple[Browser, RecordingSender]], kind: str, limit: int, says: str
) -> None:
    """Issue 19.8: the sixth authenticator app got "You can't do that here"; now the page (and
    its JSON twin, 409) says what the limit is and how to make room."""
    browser, _ = make_env(["totp"])
    browser.register_totp(_wizard(browser))  # MFA is fresh: manage mode opens
    have = 1 if kind == "totp" else 0
    for _ in range(limit - have):
        add_record(browser, "alice", MethodKind(kind))
    url = f"/security-info/add/{kind}"
    r = browser.get_json(url)
    assert r.status_code == 409, r.get_data(as_text=True)
    twin = r.get_json()
    assert (twin["page"], twin["kind"], twin["limit"]) == ("method_limit", kind, limit)
    html = browser.get(url)
    assert html.status_code == 409
    text = unescape(html.get_data(as_text=True))
    assert says in text and "You can't do that here" not in text
    assert 'href="/security-info/"' in text
    if kind == "totp":
        de = browser.get(url + "?lng=de").get_data(as_text=True)
        assert "Sie können bis zu 5 Authentifizierungs-Apps haben." in de


def _email_step(make_env: Callable[..., tuple[Browser, RecordingSender]]) -> tuple[Browser, str]:
    browser, _ = make_env(["email"], mfa_registration={"enforced": False})
    url = _wizard(browser)
    assert browser.get_json(url).get_json()["page"] == "email_enter"
    return browser, url


def test_development_mode_accepts_the_demo_users_test_domain(
    make_env: Callable[..., tuple[Browser, RecordingSender]],
) -> None:
    """Issue 19.10: every demo user is @example.test (RFC 6761); the tests run in development."""
    browser, url = _email_step(make_env)
    form = {"action": "next", "email": "alice@example.test", "csrf_token": browser.csrf(url)}
    r = browser.post_json(url, form)
    assert r.status_code == 200 and r.get_json()["page"] == "email_verify", r.get_json()


def test_a_reserved_domain_is_refused_saying_so(
    make_env: Callable[..., tuple[Browser, RecordingSender]],
) -> None:
    browser, url = _email_step(make_env)
    form = {"action": "next", "email": "alice@printer.local", "csrf_token": browser.csrf(url)}
    r = browser.post_json(url, form)
    assert r.status_code == 400
    assert r.get_json()["errors"]["email"].startswith("This address is at a reserved domain")
    r = browser.post(url + "&lng=de", data=form)
    assert "reservierten Domain" in r.get_data(as_text=True)
