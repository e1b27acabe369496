"""Accessibility: axe-core on every page of manage mode, the MFA step, the wizard, the error and
cookie pages, in English and in Arabic (right to left). No serious or critical violation passes.

axe-core is an npm package pinned in tests/e2e/axe/package.json and installed there by
``make e2e-deps`` (part of ``make test``). The contexts bypass the pages' CSP so the test can inject
it; the pages themselves load no script of their own here.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pyotp
import pytest

pytestmark = pytest.mark.e2e

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
#: Arabic first: each page ends in English, the language the flows below click through
LANGUAGES = ("ar", "en")
_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations
    .filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.id} (${v.impact}): ${v.help} -> ${v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", ")}`);
}"""


class Auditor:
    """Runs axe on pages and collects what it finds (the test fails once, listing them all)."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.found: list[str] = []
        self.pages: list[str] = []

    def here(self, label: str) -> None:
        self.page.add_script_tag(path=str(AXE))
        lang = self.page.locator("html").get_attribute("lang")
        self.pages.append(f"{label} [{lang}]")
        self.found += [f"{label} [{lang}]: {v}" for v in self.page.evaluate(_RUN)]

    def both(self, label: str) -> None:
        """This page (a GET) in every language, ending in English."""
        url = self.page.url
        for lang in LANGUAGES:
            self.page.goto(_with_lng(url, lang))
            self.here(label)


def _with_lng(url: str, lang: str) -> str:
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "lng"] + [("lng", lang)]
    return urlunsplit(parts._replace(query=urlencode(query)))


@pytest.fixture
def audit(chromium_browser: Any) -> Iterator[Auditor]:
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make e2e-deps` (npm ci in tests/e2e/axe)")
    context = chromium_browser.new_context(bypass_csp=True, locale="en-US")
    context.set_default_timeout(10_000)
    auditor = Auditor(context.new_page())
    yield auditor
    context.close()
    assert not auditor.found, "\n".join(auditor.found)


def _sign_in(page: Any, user: str) -> None:
    page.fill("#username", user)
    page.fill("#password", user)
    page.get_by_role("button", name="Sign in", exact=True).click()


def test_manage_mode_and_mfa_pages(audit: Auditor, frozen_idp_server: Any) -> None:
    server, page = frozen_idp_server, audit.page
    page.goto(f"{server.url}/login?next=/security-info/")
    _sign_in(page, "carol")
    page.wait_for_url("**/security-info/")
    audit.both("manage, no methods")

    page.goto(f"{server.url}/security-info/add/totp")
    audit.both("add app: intro")
    page.get_by_role("button", name="Next").click()
    audit.both("add app: QR code")
    page.get_by_text("Can't scan the image?").click()
    secret = page.locator("code.secret").inner_text().strip()
    audit.here("add app: secret revealed")
    page.get_by_role("button", name="Next").click()
    audit.both("add app: try it")
    page.fill("#code", "000000" if pyotp.TOTP(secret).at(server.clock.now()) != "000000" else "1")
    page.get_by_role("button", name="Next").click()
    audit.here("add app: wrong code")
    page.fill("#code", pyotp.TOTP(secret).at(server.clock.now()))
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**/security-info/?done=added")
    audit.both("manage, one app")

    page.goto(f"{server.url}/security-info/default")
    audit.both("default chooser")
    page.goto(f"{server.url}/security-info/")
    page.get_by_role("link", name="Rename").first.click()
    audit.both("rename app")
    page.fill("#name", "x" * 65)
    page.get_by_role("button", name="Save").click()
    audit.here("rename app: name refused")
    page.fill("#name", "Carol's phone")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url("**/security-info/?done=renamed")
    audit.both("manage, app renamed")
    page.goto(f"{server.url}/security-info/")
    # carol's only app cannot go (replace before remove): the list links to the delete page,
    # which says at once what to add first; it is audited in every language.
    assert page.locator("a.danger-link").count() == 0
    page.get_by_role("link", name="Add another method first").first.click()
    assert "/delete" in page.url
    audit.both("delete refused (replace before remove)")
    page.goto(f"{server.url}/security-info/")

    adds = page.locator("details.add a").evaluate_all("links => links.map(a => a.href)")
    assert len(adds) >= 4
    for href in adds:
        page.goto(href)
        audit.both("add: " + href.rsplit("/", 1)[-1])

    page.goto(f"{server.url}/security-info/mfa")
    audit.both("MFA step")
    page.goto(f"{server.url}/security-info/no-such-page")
    audit.both("error: not found")
    page.goto(f"{server.url}/security-info/")
    page.get_by_role("button", name="Sign out everywhere").click()
    audit.here("signed out everywhere")
    page.goto(f"{server.url}/security-info/")
    audit.both("error: signed out")
    page.context.clear_cookies()
    page.goto(f"{server.url}/security-info/signin?c=lost")
    audit.both("cookies blocked")


def test_wizard_pages(audit: Auditor, frozen_idp_server: Any) -> None:
    server, page = frozen_idp_server, audit.page
    page.goto(f"{server.url}/demo")
    page.get_by_role("button", name="Sign in").click()
    _sign_in(page, "erin")
    page.wait_for_url("**/security-info/wizard?c=*")
    wizard = page.url
    audit.both("wizard: first step")
    # The demo's web app first: its QR code with "Open the app on this device".
    page.get_by_role("button", name="Next").click()
    page.get_by_role("link", name="Open the app on this device").wait_for()
    audit.both("wizard: the web app's QR code")
    page.goto(wizard + "&choose=1")
    audit.both("wizard: choose another method")
    page.get_by_role("radio", name="Authenticator app", exact=True).check()
    page.get_by_role("button", name="Confirm").click()
    page.get_by_role("button", name="Next").click()
    audit.both("wizard: QR code")
    page.get_by_text("Can't scan the image?").click()
    secret = page.locator("code.secret").inner_text().strip()
    page.get_by_role("button", name="Next").click()
    audit.both("wizard: try it")
    page.fill("#code", pyotp.TOTP(secret).at(server.clock.now()))
    page.get_by_role("button", name="Next").click()
    audit.both("wizard: method added")
    page.get_by_role("button", name="Next").click()
    # erin's password reset takes a second method: her security questions.
    page.locator("#answer0").wait_for()
    audit.both("wizard: security questions")
    for i, answer in enumerate(("amsterdam harbour", "blue bicycle", "grandma rosa")):
        page.fill(f"#answer{i}", answer)
    page.get_by_role("button", name="Done").click()
    page.get_by_role("button", name="Next").click()
    audit.both("wizard: summary")
    assert len(audit.pages) >= 16
