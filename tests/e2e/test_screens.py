"""Every screen of the product in real Chromium (issue 19, "Screens"): the wizard, manage mode, the
MFA step, password reset, recent activity and the admin dashboard each pass axe-core with no
violation at all (any impact) in all six languages, Arabic right to left.

With ``COMBINEDREG_SCREENSHOTS=1`` (``make screenshots``) the walk also writes PNGs at desktop
(1280x800) and phone (390x844) width into docs/screenshots/ (shown in docs/screens.md): English
for every page, Arabic for a few. The ordinary run writes nothing: it must not rewrite tracked files.

One example IdP of its own (a frozen clock, users nobody else touches), one page object, one
sign-in per user: the walk reuses the session from page to page.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyotp
import pytest
from test_browser_a11y import AXE, _sign_in, _with_lng
from werkzeug.serving import make_server

from example_idp.outbox import create_demo_app
from oidc_combinedreg.clock import FrozenClock

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "docs" / "screenshots"
DESKTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
#: every language the middleware ships; English last, the language the walk clicks through
LANGUAGES = ("ar", "de", "es", "fr", "ja", "en")
#: pages also shot in Arabic (right to left)
ARABIC_SHOTS = {"wizard-intro", "manage", "reset-choose"}
ANSWERS = ("amsterdam harbour", "blue bicycle", "grandma rosa")
_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(
    v => `${v.id} (${v.impact}): ${v.help} -> ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
}"""


class Walk:
    """Audits each page in every language, and shoots it when screenshots are asked for."""

    def __init__(self, page: Any, shoot: bool) -> None:
        self.page = page
        self.shoot = shoot
        self.found: list[str] = []
        self.pages: list[str] = []

    def axe(self, label: str) -> None:
        # axe-core comes with every document (the context's init script), not sent page by page.
        lang = self.page.locator("html").get_attribute("lang")
        self.pages.append(f"{label} [{lang}]")
        self.found += [f"{label} [{lang}]: {v}" for v in self.page.evaluate(_RUN)]

    def screen(self, name: str, *, languages: Iterable[str] = LANGUAGES) -> None:
        """This page (a GET) in every language, ending in English; shot if asked."""
        url = self.page.url
        for lang in languages:
            self.page.goto(_with_lng(url, lang))
            if lang == "ar":
                assert self.page.locator("html").get_attribute("dir") == "rtl", name
            self.axe(name)
            if self.shoot and (lang == "en" or (lang == "ar" and name in ARABIC_SHOTS)):
                self._shoot(name if lang == "en" else f"{name}-ar")
        self.fits_a_phone(name)

    def fits_a_phone(self, name: str) -> None:
        """At phone width nothing may push the page sideways (no horizontal scrolling)."""
        self.page.set_viewport_size(PHONE)
        wide = self.page.evaluate("document.documentElement.scrollWidth")
        self.page.set_viewport_size(DESKTOP)
        if wide > PHONE["width"]:
            self.found.append(f"{name}: {wide} px wide at phone width ({PHONE['width']} px)")

    def here(self, name: str) -> None:
        """A page that cannot be loaded again (the end of a flow): audited as it is, in English."""
        self.axe(name)
        if self.shoot:
            self._shoot(name)
        self.fits_a_phone(name)

    def _shoot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        for suffix, viewport in (("desktop", DESKTOP), ("phone", PHONE)):
            self.page.set_viewport_size(viewport)
            self.page.screenshot(path=str(SHOTS / f"{name}-{suffix}.png"), full_page=True)
        self.page.set_viewport_size(DESKTOP)


class Server:
    def __init__(self, url: str, app: Any, clock: FrozenClock) -> None:
        self.url, self.app, self.clock = url, app, clock

    def code(self, secret: str) -> str:
        return str(pyotp.TOTP(secret).at(self.clock.now()))


@contextmanager
def _demo(root: Path, config_text: str) -> Iterator[Server]:
    config = root / "combinedreg.toml"
    config.write_text(config_text)
    clock = FrozenClock(float(int(time.time())))
    apps: list[Any] = []

    def dispatch(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        return apps[0](environ, start_response)  # type: ignore[no-any-return]

    http = make_server("127.0.0.1", 0, dispatch, threaded=True)
    url = f"http://localhost:{http.server_port}"
    # The demo's own app: its development outbox delivers texts, calls and email, so the phone
    # and email pages are offered as they are to a visitor.
    apps.append(
        create_demo_app(
            instance_path=root / "instance", issuer=url, combinedreg_config=config, clock=clock
        )
    )
    thread = threading.Thread(target=http.serve_forever, name="screens-idp", daemon=True)
    thread.start()
    try:
        yield Server(url, apps[0], clock)
    finally:
        http.shutdown()
        thread.join(timeout=10)
        http.server_close()
        apps[0].extensions["example_idp_outbox_smtp"].stop()


DEMO_CONFIG = (ROOT / "example_idp" / "combinedreg.toml").read_text()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with _demo(tmp_path_factory.mktemp("screens-idp"), DEMO_CONFIG) as demo:
        yield demo


@pytest.fixture
def walk(chromium_browser: Any) -> Iterator[Walk]:
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make e2e-deps` (npm ci in tests/e2e/axe)")
    context = chromium_browser.new_context(bypass_csp=True, locale="en-US", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    context.add_init_script(path=str(AXE))
    walk = Walk(context.new_page(), shoot=os.environ.get("COMBINEDREG_SCREENSHOTS") == "1")
    yield walk
    context.close()
    assert not walk.found, "\n".join(walk.found)


def _app_secret(page: Any) -> str:
    page.get_by_text("Can't scan the image?").click()
    return str(page.locator("code.secret").inner_text().strip())


def _answer(page: Any, answers: dict[str, str]) -> None:
    """Each answer field gets the answer to the question its label asks."""
    for i in range(page.locator("input[id^=answer]").count()):
        question = page.locator(f"label[for=answer{i}]").inner_text().strip()
        page.fill(f"#answer{i}", answers[question])


def test_wizard_manage_mfa_activity_and_reset(walk: Walk, server: Server) -> None:
    page = walk.page
    # The wizard, from the demo relying party (alice: MFA registration and password reset). It
    # proposes the demo's authenticator web app first.
    page.goto(f"{server.url}/demo")
    page.get_by_role("button", name="Sign in").click()
    _sign_in(page, "alice")
    page.wait_for_url("**/security-info/wizard?c=*")
    wizard = page.url
    walk.screen("wizard-intro")
    page.get_by_role("button", name="Next").click()
    walk.screen("wizard-push-qr")  # the QR code, and "Open the app on this device"
    page.goto(wizard + "&choose=1")
    walk.screen("wizard-choose")
    page.goto(wizard)
    # The app in a second window of the same browser; the wizard sees the device arrive.
    with page.context.expect_page() as opened:
        page.get_by_role("link", name="Open the app on this device").click()
    app = opened.value
    app.get_by_role("button", name="Add account").first.click()
    # The app's first start in a fresh window installs its service worker and makes the key:
    # seconds on a loaded 2-core machine (a full make test timed out once at the default 10 s).
    app.locator("article.account").wait_for(timeout=30_000)
    page.wait_for_url("**/security-info/mfa*")
    walk.screen("wizard-push-try")  # "Let's try it out": the approval with the number
    page.get_by_role("button", name="Send notification").click()
    number = page.locator(".push-number").inner_text().strip()
    card = app.locator("form.request:not([data-result])")
    card.get_by_label("Enter the number shown on the sign-in screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    page.wait_for_url("**/security-info/wizard*")
    app.close()
    walk.screen("wizard-added")
    # The second method for a password reset: the phone is proposed; alice answers questions.
    page.get_by_role("button", name="Next").click()
    page.goto(wizard + "&choose=1")
    page.get_by_role("radio", name="Security questions").check()
    page.get_by_role("button", name="Confirm").click()
    walk.screen("wizard-questions")
    chosen = {}
    for i, answer in enumerate(ANSWERS):
        chosen[page.locator(f"#question{i} option:checked").inner_text().strip()] = answer
        page.fill(f"#answer{i}", answer)
    page.get_by_role("button", name="Done").click()
    page.get_by_role("button", name="Next").click()
    walk.screen("wizard-summary")
    page.get_by_role("button", name="Done").click()
    page.wait_for_url(f"{server.url}/demo*")

    # Manage mode: the add pages, a second app, the list, the default chooser, the delete page.
    page.goto(f"{server.url}/security-info/")
    adds = page.locator("details.add a").evaluate_all("links => links.map(a => a.href)")
    assert len(adds) >= 2
    for href in adds:
        page.goto(href)
        walk.screen("add-" + href.rstrip("/").rsplit("/", 1)[-1])
    # The code pages that follow a phone number and an email address (the codes go to the outbox).
    page.goto(f"{server.url}/security-info/add/mobile_phone")
    page.fill("#number", "+1 425 555 0199")
    page.get_by_role("button", name="Next").click()
    walk.screen("phone-verify")
    assert page.locator("#code").count() == 1, page.url
    page.goto(f"{server.url}/security-info/add/email")
    page.fill("#email", "alice.home@example.test")
    page.get_by_role("button", name="Next").click()
    walk.screen("email-verify")
    assert page.locator("#code").count() == 1, page.url
    # An authenticator app of her own beside the web app: its QR code and its code check.
    page.goto(f"{server.url}/security-info/add/totp")
    page.get_by_role("button", name="Next").click()
    walk.screen("add-totp-qr")
    secret = _app_secret(page)
    page.get_by_role("button", name="Next").click()
    walk.screen("add-totp-verify")
    page.fill("#code", server.code(secret))
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**/security-info/?done=added")
    page.goto(f"{server.url}/security-info/")
    assert page.locator("ul.methods > li").count() == 3  # web app, questions, app
    walk.screen("manage")
    page.goto(f"{server.url}/security-info/default")
    walk.screen("manage-default")
    page.goto(f"{server.url}/security-info/")
    page.locator("ul.methods > li a[href*='delete']").first.click()
    walk.screen("manage-delete")

    # Recent activity and its "This wasn't me" confirmation (not sent: it signs out everywhere).
    page.goto(f"{server.url}/security-info/")
    page.get_by_role("link", name="Recent activity").click()
    page.wait_for_url("**/security-info/activity")
    walk.screen("activity")
    page.get_by_role("link", name="This wasn't me").first.click()
    page.wait_for_url("**/security-info/activity/not-me?ref=*")
    walk.screen("activity-not-me")

    # The MFA step: manage mode asks again once the last MFA is older than the window.
    server.clock.advance(server.app.extensions["combinedreg"].config.web.mfa_freshness + 1)
    page.goto(f"{server.url}/security-info/")
    page.wait_for_url("**/security-info/mfa*")
    walk.screen("mfa")
    # The web app is proposed first (the most secure she has): her other app's code instead.
    if page.get_by_role("button", name="Send notification").count():
        page.get_by_text("Sign in another way").click()
        page.locator("main a[href*='method=']").first.click()
        walk.screen("mfa-code")
    page.fill("#code", server.code(secret))
    page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/security-info/")

    # Password reset, signed out: account, chooser, the app's code, the new password, done.
    page.context.clear_cookies()
    server.clock.advance(60)
    page.goto(f"{server.url}/security-info/reset")
    walk.screen("reset-account")
    page.fill("#account", "alice")
    page.get_by_role("button", name="Next").click()
    walk.screen("reset-choose")
    page.get_by_label("Enter a code from my authenticator app").check()
    page.get_by_role("button", name="Next").click()
    walk.screen("reset-verify")
    page.fill("#code", server.code(secret))
    page.get_by_role("button", name="Verify").click()
    # A reset takes two methods: her security questions are the second.
    page.get_by_label("Answer my security questions").check()
    page.get_by_role("button", name="Next").click()
    walk.screen("reset-questions")
    _answer(page, chosen)
    page.get_by_role("button", name="Verify").click()
    walk.screen("reset-password")
    page.fill("#password", "a new and long pass phrase 42")
    page.fill("#confirm", "a new and long pass phrase 42")
    page.get_by_role("button", name="Reset password").click()
    assert page.locator("h1").inner_text() == "Your password was changed"
    walk.here("reset-done")  # the flow is over: loading it again starts a new one
    assert len(walk.pages) >= 29 * len(LANGUAGES) + 1


def test_admin_dashboard(walk: Walk, server: Server) -> None:
    page = walk.page
    page.goto(f"{server.url}/login?next=/security-info/admin/")
    _sign_in(page, "admin")
    # His office phone comes from the directory: the sign-in asks for it; the call's code is on
    # the demo's outbox page (opened beside, the sign-in's page stays where it is).
    page.wait_for_url("**/security-info/**")
    if "/admin/" not in page.url:
        walk.screen("mfa-office-phone")
        page.get_by_role("button", name=re.compile("^Call ")).click()
        walk.screen("mfa-phone-code")
        outbox = page.context.new_page()
        outbox.goto(f"{server.url}/outbox")
        code = outbox.locator("li.message[data-channel=voice]").first.get_attribute("data-code")
        outbox.close()
        page.fill("#code", str(code))
        page.get_by_role("button", name="Verify").click()
    page.wait_for_url("**/security-info/admin/*")
    walk.screen("admin-dashboard")


def test_every_screenshot_the_docs_show_exists() -> None:
    """docs/screens.md shows only files ``make screenshots`` wrote (and they were committed)."""
    shown = re.findall(r'src="screenshots/([^"]+)"', (ROOT / "docs" / "screens.md").read_text())
    assert len(shown) >= 2 * 20
    assert [name for name in shown if not (SHOTS / name).is_file()] == []


def test_legacy_wizard_and_conditional_access_block(walk: Walk, server: Server) -> None:
    page = walk.page
    # erin is outside combined registration: the wizard's legacy headings.
    page.goto(f"{server.url}/demo")
    page.get_by_role("button", name="Sign in").click()
    _sign_in(page, "erin")
    page.wait_for_url("**/security-info/wizard?c=*")
    walk.screen("wizard-legacy")
    # Outside the trusted networks registration is blocked (the demo trusts a proxy on loopback,
    # so the forwarded address is the client's): grace meets the block page.
    page.context.clear_cookies()
    page.set_extra_http_headers({"X-Forwarded-For": "203.0.113.9"})
    page.goto(f"{server.url}/demo")
    page.get_by_role("button", name="Sign in").click()
    _sign_in(page, "grace")
    page.wait_for_url("**/security-info/**")
    walk.screen("blocked")
    assert page.locator("h1").inner_text() == "You can't register security info from this location"


def test_security_questions_page(walk: Walk, tmp_path: Path) -> None:
    """On in the demo (decision 182): "Add sign-in method" offers them to a user without them."""
    with _demo(tmp_path, DEMO_CONFIG) as server:
        page = walk.page
        page.goto(f"{server.url}/login?next=/security-info/")
        _sign_in(page, "alice")
        page.wait_for_url("**/security-info/")
        assert page.locator("details.add a[href$='/add/security_questions']").count() == 1
        page.goto(f"{server.url}/security-info/add/security_questions")
        walk.screen("add-security_questions")
