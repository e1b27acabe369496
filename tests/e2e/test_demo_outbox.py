"""Issue 19.2: the demo's development outbox (example_idp/outbox.py) over a real HTTP server.

Email goes through the shipped SMTP provider to the real SMTP server on loopback the demo starts;
texts and calls through a provider behind the TextSender/VoiceCaller interface. The outbox page
lists them newest first: a password reset with email + phone read from it, a change notice with its
"This wasn't me" link followed, one flow in real Chromium, and the outbox refused in production.
"""

from __future__ import annotations

import datetime as dt
import html
import re
import shutil
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pyotp
import pytest
import requests
from babel.dates import format_date
from werkzeug.serving import make_server

from example_idp.outbox import OutboxRefused, create_demo_app
from oidc_combinedreg import CombinedRegistration, load_config
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.methods.phone import mask_phone
from oidc_combinedreg.store.base import MethodRecord

pytestmark = pytest.mark.e2e

EXAMPLE_IDP = Path(__file__).resolve().parents[2] / "example_idp"
PHONE = "+14155550123"
HOME = "alice.home@example.test"
ANSWERS = ("amsterdam harbour", "blue bicycle", "grandma rosa")


@dataclass
class Demo:
    url: str
    reg: CombinedRegistration
    app: Any


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[Demo]:
    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    holder: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda e, s: holder[0](e, s), threaded=True)
    url = f"http://localhost:{server.server_port}"
    app = create_demo_app(
        instance_path=tmp_path / "instance", issuer=url, combinedreg_config=config
    )
    holder.append(app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Demo(url, app.extensions["combinedreg"], app)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        app.extensions["example_idp_outbox_smtp"].stop()


def _seed_phone_and_email(demo: Demo) -> None:
    store = demo.reg.info.store
    for kind, data in (
        (MethodKind.MOBILE_PHONE, {"phone": PHONE}),
        (MethodKind.EMAIL, {"email": HOME}),
    ):
        record = MethodRecord(
            id=f"{kind.value}-1",
            user_id="alice",
            kind=kind,
            label=kind.value,
            created_at=0.0,
            data=data,
        )
        store.add_method(record, limit=5)


class Browser:
    def __init__(self, demo: Demo) -> None:
        self.url = demo.url
        self.s = requests.Session()
        self.token = ""

    def _keep(self, r: requests.Response) -> requests.Response:
        m = re.search(r'name="csrf_token" value="([^"]+)"', r.text)
        if m:
            self.token = m.group(1)
        return r

    def get(self, path: str) -> requests.Response:
        return self._keep(self.s.get(self.url + path, timeout=10))

    def post(self, path: str, **data: str) -> requests.Response:
        return self._keep(
            self.s.post(self.url + path, data={"csrf_token": self.token, **data}, timeout=10)
        )


_MESSAGE = re.compile(
    r'<li class="message" id="message-\d+" data-channel="(\w+)" data-to="([^"]*)"([^>]*)>'
)


def _outbox(demo: Demo) -> list[tuple[str, str, str]]:
    """(channel, to, code) of each message on the page, as listed (newest first)."""
    page = requests.get(demo.url + "/outbox", timeout=10).text
    rows = []
    for channel, to, rest in _MESSAGE.findall(page):
        code = re.search(r'data-code="(\d+)"', rest)
        rows.append((channel, html.unescape(to), code.group(1) if code else ""))
    return rows


def test_a_reset_with_email_and_phone_reads_both_codes_from_the_outbox(demo: Demo) -> None:
    _seed_phone_and_email(demo)
    assert _outbox(demo) == []
    b = Browser(demo)
    b.get("/security-info/reset")
    assert (
        "Verify your identity"
        in b.post("/security-info/reset", action="account", account="alice").text
    )
    r = b.post("/security-info/reset/method", action="choose", choice="email")
    assert "we sent a code" in r.text
    channel, to, code = _outbox(demo)[0]
    assert (channel, to) == ("email", HOME) and re.fullmatch(r"\d{6}", code)
    r = b.post("/security-info/reset/verify", action="verify", code=code)
    assert "Choose a new password" not in r.text  # a phone is MFA: one more method is asked
    r = b.post("/security-info/reset/method", action="choose", choice="mobile_text")
    newest = _outbox(demo)[0]
    assert newest[:2] == ("sms", PHONE) and newest[2] and newest[2] != code  # newest first
    r = b.post("/security-info/reset/verify", action="verify", code=newest[2])
    assert "Choose a new password" in r.text
    r = b.post(
        "/security-info/reset/password",
        action="password",
        password="correct horse battery",
        confirm="correct horse battery",
    )
    assert "Your password was changed" in r.text
    # The "password was changed" notice went out by email too, listed above the codes.
    assert _outbox(demo)[0][0] == "email"


def test_a_change_notice_and_its_this_wasnt_me_link(demo: Demo) -> None:
    info = demo.reg.info
    setup, state = info.totp.register_begin("alice", "alice", None)
    info.totp.register_complete(
        "alice", state, pyotp.TOTP(setup.secret).now(), label="Phone", ip="127.0.0.1"
    )
    page = requests.get(demo.url + "/outbox", timeout=10).text
    assert 'data-to="alice@example.test"' in page
    link = re.search(rf'<a href="({re.escape(demo.url)}/security-info/not-me/[^"]+)">', page)
    assert link, "the notice's link is clickable on the outbox page"
    r = requests.get(html.unescape(link.group(1)), timeout=10)
    assert r.status_code == 200 and "This wasn't me" in html.unescape(r.text)


def test_the_demo_rp_links_to_the_outbox(demo: Demo) -> None:
    assert 'href="/outbox"' in requests.get(demo.url + "/demo", timeout=10).text


def test_the_outbox_is_refused_in_production(tmp_path: Path) -> None:
    from oidc_combinedreg.config.model import Environment

    config = load_config(shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "c.toml"))
    production = replace(
        config, general=replace(config.general, environment=Environment.PRODUCTION)
    )
    with pytest.raises(OutboxRefused, match="general.environment"):
        create_demo_app(
            instance_path=tmp_path / "i", issuer="http://localhost:1", combinedreg_config=production
        )
    assert not (tmp_path / "i" / "outbox.sqlite3").exists()


def test_a_code_read_from_the_outbox_page_in_chromium(demo: Demo, chromium_browser: Any) -> None:
    _seed_phone_and_email(demo)
    context = chromium_browser.new_context()
    try:
        page = context.new_page()
        page.goto(demo.url + "/security-info/reset")
        page.fill("input[name=account]", "alice")
        page.locator("form button[type=submit]").first.click()
        page.locator("input[name=choice][value=email]").check()
        page.locator("button[name=action][value=choose]").click()
        outbox = context.new_page()
        outbox.goto(demo.url + "/outbox")
        code = outbox.locator("li.message[data-channel=email] code.code").first.inner_text()
        page.fill("input[name=code]", code)
        page.locator("button[name=action][value=verify]").click()
        page.locator("input[name=choice][value=mobile_text]").check()
        page.locator("button[name=action][value=choose]").click()
        outbox.reload()
        code = outbox.locator("li.message[data-channel=sms] code.code").first.inner_text()
        page.fill("input[name=code]", code)
        page.locator("button[name=action][value=verify]").click()
        assert page.locator("h1").inner_text() == "Choose a new password"
    finally:
        context.close()


def _csrf(text: str) -> str:
    m = re.search(r'name="csrf_token" value="([^"]+)"', text)
    return m.group(1) if m else ""


def _sign_in_at_the_demo_rp(demo: Demo, user: str) -> tuple[requests.Session, requests.Response]:
    s = requests.Session()
    r = s.get(demo.url + "/demo/login", timeout=10)  # the sign-in form, at /authorize
    m = re.search(r'name="next" value="([^"]*)"', r.text)
    assert m is not None, r.text[:300]
    form = {"csrf_token": _csrf(r.text), "username": user, "password": user,
            "next": html.unescape(m.group(1))}  # fmt: skip
    r = s.post(urljoin(r.url, "/login"), data=form, timeout=10)
    return s, r


def test_admin_answers_a_call_to_his_directory_office_phone(demo: Demo) -> None:
    """The README's admin row: his office phone comes from the directory; the call is listed.
    A password reset takes two methods: the wizard then asks for a second (his questions)."""
    s, r = _sign_in_at_the_demo_rp(demo, "admin")
    assert "Verify your identity" in r.text and 'value="office-phone"' in r.text
    data = {"csrf_token": _csrf(r.text), "method_id": "office-phone"}
    r = s.post(r.url, data={**data, "via": "voice", "action": "start"}, timeout=10)
    channel, to, code = _outbox(demo)[0]
    assert (channel, to) == ("voice", "+14255550100") and code
    r = s.post(
        r.url,
        data={**data, "csrf_token": _csrf(r.text), "action": "verify", "code": code},
        timeout=10,
    )
    assert "/security-info/wizard" in r.url and "Method 1 of 1" in r.text
    r = s.get(r.url + "&choose=1", timeout=10)
    assert 'value="security_questions"' in r.text, r.text
    r = s.post(
        r.url,
        data={"csrf_token": _csrf(r.text), "action": "choose", "kind": "security_questions"},
        timeout=10,
    )
    answers = {f"answer{i}": a for i, a in enumerate(ANSWERS)}
    questions = dict(enumerate(re.findall(r'<option value="([^"]+)" selected>', r.text)))
    answers |= {f"question{i}": html.unescape(q) for i, q in questions.items()}
    r = s.post(r.url, data={"csrf_token": _csrf(r.text), "action": "next", **answers}, timeout=10)
    assert "Security questions was successfully registered" in r.text, r.text
    for action in ("next", "finish"):
        r = s.post(r.url, data={"csrf_token": _csrf(r.text), "action": action}, timeout=10)
    assert r.url == demo.url + "/demo" and '"tel"' in html.unescape(r.text)


def test_alice_registers_a_phone_in_the_wizard_with_the_texted_code(demo: Demo) -> None:
    """The README's alice row: the wizard proposes the demo's web app; "I want to set up a
    different method" offers an app of her own and the phones; after the app, the second method
    for a password reset is a phone, with the texted code from the outbox; and its notice."""
    s, r = _sign_in_at_the_demo_rp(demo, "alice")
    assert "Method 1 of 2" in r.text and "Contoso (demo) Authenticator" in r.text
    r = s.get(r.url + "&choose=1", timeout=10)
    assert 'value="totp"' in r.text and 'value="alternate_phone"' in r.text
    r = s.post(
        r.url,
        data={"csrf_token": _csrf(r.text), "action": "choose", "kind": "totp"},
        timeout=10,
    )
    r = s.post(r.url, data={"csrf_token": _csrf(r.text), "action": "next"}, timeout=10)
    secret = re.search(r'<code class="secret">([A-Z2-7]+)</code>', r.text)
    assert secret is not None, r.text
    r = s.post(r.url, data={"csrf_token": _csrf(r.text), "action": "next"}, timeout=10)
    code = pyotp.TOTP(secret[1]).now()
    r = s.post(
        r.url, data={"csrf_token": _csrf(r.text), "action": "verify", "code": code}, timeout=10
    )
    today = format_date(dt.datetime.now(dt.UTC), "medium", locale="en")
    assert f"Authenticator app (added {today}) was successfully registered" in r.text, r.text
    r = s.post(r.url, data={"csrf_token": _csrf(r.text), "action": "next"}, timeout=10)
    assert "Method 2 of 2" in r.text and 'name="number"' in r.text  # the phone
    form = {"action": "next", "country": "US", "number": "415 555 0123", "channel": "sms"}
    r = s.post(r.url, data={"csrf_token": _csrf(r.text), **form}, timeout=10)
    channel, to, code = _outbox(demo)[0]
    assert (channel, to) == ("sms", PHONE)
    r = s.post(
        r.url, data={"csrf_token": _csrf(r.text), "action": "verify", "code": code}, timeout=10
    )
    assert f"Phone ({mask_phone(PHONE)}) was successfully registered" in r.text
    assert _outbox(demo)[0][:2] == ("email", "alice@example.test")  # the change notice


def test_create_app_alone_has_no_outbox(tmp_path: Path) -> None:
    """The tests' and gunicorn's app (example_idp.wsgi) sends nothing to a page."""
    from example_idp import create_app

    config = shutil.copy(EXAMPLE_IDP / "combinedreg.toml", tmp_path / "combinedreg.toml")
    app = create_app(
        instance_path=tmp_path / "i", issuer="http://localhost:1", combinedreg_config=config
    )
    assert app.test_client().get("/outbox").status_code == 404
    assert 'href="/outbox"' not in app.test_client().get("/demo").get_data(as_text=True)


def test_this_wasnt_me_clicked_on_the_outbox_page_in_chromium(
    demo: Demo, chromium_browser: Any
) -> None:
    """A change notice's link, clicked on the outbox page, secures the account."""
    info = demo.reg.info
    setup, state = info.totp.register_begin("alice", "alice", None)
    record = info.totp.register_complete(
        "alice", state, pyotp.TOTP(setup.secret).now(), label="Phone", ip="127.0.0.1"
    )
    context = chromium_browser.new_context()
    try:
        page = context.new_page()
        page.goto(demo.url + "/outbox")
        page.locator("li.message[data-channel=email] a[href*='/not-me/']").first.click()
        assert page.locator("h1").inner_text() == "This wasn't me"
        page.locator("button[name=action][value=confirm]").click()
        assert page.locator("h1").inner_text() == "Your account is being secured"
    finally:
        context.close()
    assert [e.user_id for e in info.store.list_audit(event_prefix="account.flagged")] == ["alice"]
    assert info.store.get_method("alice", record.id) is None  # the app the notice named: suspended
    assert [m.id for m in info.store.list_reported_methods("alice")] == [record.id]
