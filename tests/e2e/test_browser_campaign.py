"""The registration campaign's page in real headless Chromium: a user who signs in with only a
text is asked to add the authenticator app; the page passes axe-core in English, German and
Arabic (right to left); "Not now" ends the sign-in at the relying party with a code; screenshots
at desktop and phone width go to ``.artifacts/screenshots/campaign-*.png``."""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from plain_wsgi_host import DictDirectory, make_app  # examples/ is on pytest's pythonpath
from test_browser_a11y import AXE, Auditor, _with_lng
from werkzeug.serving import make_server

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.methods.kinds import MethodKind
from oidc_combinedreg.store.base import MethodRecord
from oidc_combinedreg.store.sqlite import SqliteStore

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium"),
]

ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "screenshots"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, str]]:
    apps: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda e, s: apps[0](e, s), threaded=True)
    url = f"http://localhost:{server.server_port}"
    config = parse_config(
        {
            "general": {"organization": "Test Org", "environment": "development"},
            "web": {"secure_cookies": False},
            "secrets": {"encryption_keys": [generate_key()]},
            "storage": {"sqlite": {"path": str(tmp_path / "reg.sqlite3")}},
            "policies": {"campaign": {"enabled": True, "method": "totp"}},
        }
    )
    clock = SystemClock()
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(config, DictDirectory(), store=store, clock=clock)
    host.redirect_uri = f"{url}/cb"  # the toy RP: a page of this same server
    # alice signs in with a text only (a phone record, as the Directory's sync would leave it)
    phone = MethodRecord(
        id="phone", user_id="alice", kind=MethodKind.MOBILE_PHONE, label="+14255550123",
        created_at=clock.now(), data={"phone": "+14255550123"},
    )  # fmt: skip
    store.add_method(phone, limit=1)
    apps.append(reg)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield url, host.redirect_uri
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()


@pytest.fixture
def auditor(chromium_browser: Any) -> Iterator[Auditor]:
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make e2e-deps` (npm ci in tests/e2e/axe)")
    context = chromium_browser.new_context(bypass_csp=True, locale="en-US", viewport=DESKTOP)
    context.set_default_timeout(15_000)
    auditor = Auditor(context.new_page())
    yield auditor
    context.close()
    assert not auditor.found, "\n".join(auditor.found)


def test_the_campaign_page_passes_axe_and_not_now_ends_at_the_rp(
    auditor: Auditor, served: tuple[str, str]
) -> None:
    url, rp = served
    page = auditor.page
    page.goto(f"{url}/login?next=/authorize%3Fclient_id%3Ddemo%26state%3Ds1")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "alice-password")
    page.click("button")
    page.wait_for_url("**/security-info/campaign?c=*")
    assert page.locator("h1").inner_text() == "Add the authenticator app"
    here = page.url
    for lang in ("de", "ar", "en"):
        page.goto(_with_lng(here, lang))
        auditor.here("campaign")
        assert (page.locator("html").get_attribute("dir") == "rtl") is (lang == "ar")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for name, viewport in (("campaign-desktop.png", DESKTOP), ("campaign-phone.png", PHONE)):
        page.set_viewport_size(viewport)
        page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    page.set_viewport_size(DESKTOP)
    with page.expect_request(lambda r: r.url.startswith(rp)) as request:
        page.get_by_role("button", name="Not now").click()
    page.wait_for_url(f"{rp}**")
    assert parse_qs(urlsplit(request.value.url).query)["code"][0]
