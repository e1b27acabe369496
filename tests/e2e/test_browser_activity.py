"""Recent activity (issue 19.12) in real Chromium: reached from the manage page's navigation, it
passes axe-core in English, German and Arabic (right to left), as does its "This wasn't me"
confirmation; screenshots at desktop and phone width go to ``.artifacts/screenshots/``
(docs/screenshots/ holds the committed copies)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyotp
import pytest
from test_browser_a11y import AXE, Auditor, _sign_in, _with_lng

pytestmark = pytest.mark.e2e

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
LANGUAGES = ("de", "ar", "en")


@pytest.fixture
def auditor(chromium_browser: Any) -> Iterator[Auditor]:
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make e2e-deps` (npm ci in tests/e2e/axe)")
    context = chromium_browser.new_context(bypass_csp=True, locale="en-US", viewport=DESKTOP)
    context.set_default_timeout(10_000)
    auditor = Auditor(context.new_page())
    yield auditor
    context.close()
    assert not auditor.found, "\n".join(auditor.found)


def _every_language(auditor: Auditor, label: str) -> None:
    url = auditor.page.url
    for lang in LANGUAGES:
        auditor.page.goto(_with_lng(url, lang))
        auditor.here(label)


def test_recent_activity_passes_axe_in_every_language(
    auditor: Auditor, frozen_idp_server: Any
) -> None:
    server, page = frozen_idp_server, auditor.page
    page.goto(f"{server.url}/login?next=/security-info/")
    _sign_in(page, "grace")  # no method yet: the page needs no MFA
    page.wait_for_url("**/security-info/")
    page.goto(f"{server.url}/security-info/add/totp")  # an app: a change row
    page.get_by_role("button", name="Next").click()
    page.get_by_text("Can't scan the image?").click()
    secret = page.locator("code.secret").inner_text().strip()
    page.get_by_role("button", name="Next").click()
    page.fill("#code", pyotp.TOTP(secret).at(server.clock.now()))
    page.get_by_role("button", name="Next").click()
    page.wait_for_url("**/security-info/?done=added")

    page.get_by_role("link", name="Recent activity").click()
    page.wait_for_url("**/security-info/activity")
    assert page.locator("h1").inner_text() == "Recent activity"
    main = page.inner_text("main")
    assert "Method added" in main and "Signed in with password" in main
    _every_language(auditor, "recent activity")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("activity-desktop.png", DESKTOP), ("activity-phone.png", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size(DESKTOP)

    page.get_by_role("link", name="This wasn't me").first.click()
    page.wait_for_url("**/security-info/activity/not-me?ref=*")
    _every_language(auditor, "this wasn't me: confirm")
    page.get_by_role("button", name="Secure my account").click()
    assert page.locator("h1").inner_text() == "Your account is being secured"
    auditor.here("this wasn't me: done")
    page.goto(f"{server.url}/security-info/activity")
    # signed out everywhere, this browser too: the page is not shown any more
    assert "Method added" not in page.inner_text("body")
