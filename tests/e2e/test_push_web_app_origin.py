"""The authenticator web app on an origin of its own, in real Chromium (issue 20.6).

One server, two origins on loopback (RFC 6454: same scheme and port, other host): the IdP at
``http://localhost:PORT`` and the app at ``http://127.0.0.1:PORT`` (``[methods.push]
web_app_origin``); both are secure contexts, so WebCrypto, IndexedDB and the service worker work.

* The QR code's link opens the app on its origin; the app enrolls, answers a sign-in with the
  number, and no CSP violation happens on the way (the app's strictest policy, Trusted Types
  included; listened for with ``securitypolicyviolation`` and on the console).
* Neither origin can read the other: the app's page sees none of the IdP's cookies and cannot
  fetch its pages; the IdP's page finds no key of the app in its IndexedDB and cannot fetch the
  app's device API.
* The enrollment link works once and only while it is fresh, and the app says so.
* A lost phone: once the device is deleted on the security-info page, the app's approval is
  refused.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import pytest
from plain_wsgi_host import DictDirectory, Host, make_app
from werkzeug.serving import make_server

from oidc_combinedreg import parse_config
from oidc_combinedreg.store.sqlite import SqliteStore

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium"),
]

APP = "/security-info/app/"

#: collects what the page's CSP refused (CSP Level 3, 5.3 "securitypolicyviolation")
WATCH = """
window.__violations = [];
document.addEventListener("securitypolicyviolation", (e) => {
  window.__violations.push(`${e.violatedDirective}: ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


class OffsetClock:
    """The real time, moved on by a test: the app signs its polls with the real time, and the
    server's view of an enrollment link's age can still be moved past its lifetime."""

    def __init__(self) -> None:
        self.offset = 0.0

    def now(self) -> float:
        return time.time() + self.offset


class Served:
    def __init__(self, idp: str, app: str, host: Host, store: SqliteStore, reg: Any) -> None:
        self.idp, self.app, self.host, self.store, self.reg = idp, app, host, store, reg
        self.clock: OffsetClock = reg.clock

    def audit(self, prefix: str, user: str = "alice") -> list[Any]:
        return list(self.store.list_audit(user_id=user, event_prefix=prefix))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
    from webtest import base_config

    apps: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda e, s: apps[0](e, s), threaded=True)
    idp = f"http://localhost:{server.server_port}"
    app = f"http://127.0.0.1:{server.server_port}"
    push = {"web_app": True, "app_name": "", "web_app_origin": app}
    data = base_config(tmp_path, methods={"push": push})
    data["policies"]["wizard_preference"] = ["push"]
    config = parse_config(data)
    clock = OffsetClock()
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(config, DictDirectory(), store=store, clock=clock)
    host.redirect_uri = f"{idp}/cb"
    apps.append(reg)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(idp, app, host, store, reg)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()


class Watched:
    """A page whose CSP violations, console errors and uncaught exceptions are kept."""

    def __init__(self, context: Any) -> None:
        self.context = context
        context.add_init_script(WATCH)
        self.page = context.new_page()
        self.page.set_default_timeout(15_000)
        self.errors: list[str] = []
        self.page.on("console", lambda m: m.type == "error" and self.errors.append(m.text))
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def violations(self) -> list[str]:
        return list(self.page.evaluate("window.__violations || []"))


@pytest.fixture
def desktop(chromium_browser: Any) -> Iterator[Any]:
    context = chromium_browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def phone(chromium_browser: Any) -> Iterator[Watched]:
    context = chromium_browser.new_context(locale="en-US")
    yield Watched(context)
    context.close()


def _sign_in(desktop: Any, served: Served) -> None:
    desktop.goto(f"{served.idp}/logout")
    desktop.goto(served.idp + "/login?next=" + quote("/authorize?client_id=demo&state=s1"))
    desktop.fill("input[name=username]", "alice")
    desktop.fill("input[name=password]", "alice-password")
    desktop.get_by_role("button", name="Sign in").click()


def _qr_link(desktop: Any, served: Served) -> str:
    _sign_in(desktop, served)
    desktop.wait_for_url("**/security-info/wizard*")
    desktop.get_by_role("button", name="Next").click()
    link = (desktop.locator("code.secret").text_content() or "").strip()
    # The QR code opens the app on its own origin, and the payload sends its device there.
    assert link.startswith(served.app + APP + "#enroll=")
    payload = unquote(link.split("#enroll=", 1)[1])
    assert parse_qs(urlsplit(payload).query)["url"] == [served.app + "/security-info"]
    return link


def _add(phone: Watched, link: str) -> None:
    phone.page.goto(link)
    phone.page.get_by_role("button", name="Add account").first.click()


def _approve(desktop: Any, phone: Watched, served: Served) -> None:
    desktop.get_by_role("button", name="Send notification").click()
    number = desktop.locator(".push-number").inner_text().strip()
    card = phone.page.locator("form.request:not([data-result])")
    card.wait_for()
    card.get_by_label("Enter the number shown on the sign-in screen").fill(number)
    with desktop.expect_request(lambda r: r.url.startswith(f"{served.idp}/cb?")) as rp:
        card.get_by_role("button", name="Approve").click()
    desktop.wait_for_url(f"{served.idp}/cb?**")
    phone.page.locator("form.request[data-result=approved]").wait_for()
    code = parse_qs(urlsplit(rp.value.url).query)["code"][0]
    assert {"swk", "mfa"} <= set(served.host.codes[code]["amr"])


def test_enroll_and_approve_on_the_apps_origin_without_a_csp_violation(
    served: Served, desktop: Any, phone: Watched
) -> None:
    link = _qr_link(desktop, served)
    _add(phone, link)
    phone.page.locator("article.account").wait_for()
    assert phone.page.url == served.app + APP
    desktop.wait_for_url("**/security-info/mfa*")  # the desktop saw the device arrive
    _approve(desktop, phone, served)
    # The service worker registered (its script URL passed Trusted Types) and controls the app.
    worker = phone.page.evaluate(
        """Promise.race([navigator.serviceWorker.ready.then((r) => r.active.scriptURL),
                         new Promise((ok) => setTimeout(() => ok("no worker"), 10000))])"""
    )
    assert worker == served.app + APP + "sw.js"
    phone.page.reload()
    phone.page.locator("body[data-ready]").wait_for()
    assert phone.page.evaluate("!!navigator.serviceWorker.controller")
    phone.page.wait_for_function("document.querySelector('output.code').textContent.length === 6")
    assert phone.violations() == []
    assert phone.errors == []
    # The listener hears what the policy refuses: a string into a DOM sink (Trusted Types).
    refused = phone.page.evaluate(
        "() => { try { document.body.innerHTML = '<b>x</b>'; return 'ran'; }"
        " catch (e) { return e.name; } }"
    )
    assert refused == "TypeError"
    assert [v.split(":")[0] for v in phone.violations()] == ["require-trusted-types-for"]


def test_a_link_to_the_idp_origin_still_lands_on_the_app_with_its_payload(
    served: Served, desktop: Any, phone: Watched
) -> None:
    """An old link (or home-screen icon) to ``<IdP>/security-info/app/`` is redirected; the
    browser keeps the fragment across the redirect, so the enrollment still works."""
    link = _qr_link(desktop, served)
    old = served.idp + APP + link[link.index("#") :]
    _add(phone, old)
    phone.page.locator("article.account").wait_for()
    assert phone.page.url == served.app + APP
    assert [m.kind for m in served.store.list_methods("alice")] == ["push"]


def test_the_two_origins_cannot_read_each_other(
    served: Served, desktop: Any, phone: Watched
) -> None:
    link = _qr_link(desktop, served)  # the desktop holds the IdP's session cookie
    _add(phone, link)
    phone.page.locator("article.account").wait_for()
    context = desktop.context
    assert context.cookies(served.idp)  # signed in at the IdP ...
    # ... and the same browser on the app's origin: no cookie, no way to read an IdP page.
    app_page = context.new_page()
    app_page.goto(served.app + APP)
    app_page.locator("body[data-ready]").wait_for()
    assert context.cookies(served.app) == []
    assert app_page.evaluate("document.cookie") == ""
    read = app_page.evaluate(
        """async (url) => {
          try { const r = await fetch(url, {credentials: "include"}); return await r.text(); }
          catch (e) { return e.name; }
        }""",
        served.idp + "/security-info/",
    )
    assert read == "TypeError"  # blocked by the CSP (connect-src 'self') and by CORS anyway
    # The other way: the IdP's page cannot reach the app's keys (IndexedDB is per origin,
    # HTML "storage key") nor call the app's device API and read the answer.
    idp_page = desktop
    idp_page.goto(served.idp + "/security-info/")
    found = idp_page.evaluate(
        """async (url) => {
          const names = (await indexedDB.databases()).map((d) => d.name);
          let api;
          try {
            const r = await fetch(url, {method: "POST", headers: {"Content-Type": "application/json"},
                                        body: "{}"});
            api = r.status;
          } catch (e) { api = e.name; }
          return {names, api};
        }""",
        served.app + "/security-info/device/pending",
    )
    assert "combinedreg-authenticator" not in found["names"]
    assert found["api"] == "TypeError"
    # The phone's keys are where they were made: in the app origin's IndexedDB.
    names = phone.page.evaluate("indexedDB.databases().then((d) => d.map((x) => x.name))")
    assert "combinedreg-authenticator" in names


def test_an_enrollment_link_works_once(
    served: Served, desktop: Any, phone: Watched, chromium_browser: Any
) -> None:
    link = _qr_link(desktop, served)
    _add(phone, link)
    phone.page.locator("article.account").wait_for()
    second = Watched(chromium_browser.new_context(locale="en-US"))
    try:
        _add(second, link)
        notice = second.page.locator("#notice.error")
        notice.wait_for()
        assert notice.inner_text() == (
            "This link was used already or has expired. Ask the sign-in page for a new one."
        )
        assert second.page.locator("article.account").count() == 0
    finally:
        second.context.close()
    assert len(served.store.list_methods("alice")) == 1


def test_an_expired_enrollment_link_is_refused(
    served: Served, desktop: Any, phone: Watched
) -> None:
    link = _qr_link(desktop, served)
    served.clock.offset = served.reg.config.push.enrollment_ttl + 1
    _add(phone, link)
    notice = phone.page.locator("#notice.error")
    notice.wait_for()
    assert "has expired" in notice.inner_text()
    assert phone.page.locator("article.account").count() == 0
    assert served.store.list_methods("alice") == []


def test_an_install_from_before_the_move_leaves_the_idp_origin(
    tmp_path: Path, phone: Watched
) -> None:
    """The app ran on the IdP's origin (its worker and cache there); the deployment then sets
    ``web_app_origin``: at its next update check the old worker finds the retiring one, which
    clears the caches and unregisters, and the old address leads to the app's new origin."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
    from webtest import base_config

    apps: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda e, s: apps[-1](e, s), threaded=True)
    idp = f"http://localhost:{server.server_port}"
    app = f"http://127.0.0.1:{server.server_port}"
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=OffsetClock())
    for push in ({"web_app": True}, {"web_app": True, "web_app_origin": app}):
        data = base_config(tmp_path, methods={"push": {**push, "app_name": ""}})
        reg, _ = make_app(parse_config(data), DictDirectory(), store=store, clock=OffsetClock())
        apps.append(reg)
    before = apps.pop()  # served once the "deployment" moved the app
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    page = phone.page
    try:
        page.goto(idp + APP)
        page.locator("body[data-ready]").wait_for()
        page.evaluate("navigator.serviceWorker.ready.then(() => true)")
        assert page.evaluate("caches.keys()") != []
        apps.append(before)  # the move
        left = page.evaluate(
            """async () => {
              const reg = await navigator.serviceWorker.getRegistration();
              await reg.update();
              for (let i = 0; i < 100; i++) {
                if ((await navigator.serviceWorker.getRegistrations()).length === 0 &&
                    (await caches.keys()).length === 0) { return true; }
                await new Promise((ok) => setTimeout(ok, 100));
              }
              return false;
            }"""
        )
        assert left is True
        page.goto(idp + APP)
        page.locator("body[data-ready]").wait_for()
        assert page.url == app + APP
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()


def test_once_the_device_is_deleted_the_apps_approval_is_refused(
    served: Served, desktop: Any, phone: Watched
) -> None:
    """A lost phone: the device is deleted (the security-info page's Delete, the same service
    call; tests/web/test_web_pwa_lost_phone.py goes through the page) while the app shows a
    request; the app's approval is refused and says why."""
    import pyotp

    _add(phone, _qr_link(desktop, served))
    phone.page.locator("article.account").wait_for()
    desktop.wait_for_url("**/security-info/mfa*")
    desktop.get_by_role("button", name="Send notification").click()
    number = desktop.locator(".push-number").inner_text().strip()
    card = phone.page.locator("form.request:not([data-result])")
    card.wait_for()
    info = served.reg.info
    setup, state = info.totp.register_begin("alice", "alice", None)
    code = pyotp.TOTP(setup.secret).at(served.clock.now())
    info.totp.register_complete("alice", state, code, label="Other app", ip=None)
    (device,) = [m for m in served.store.list_methods("alice") if m.kind == "push"]
    info.delete_method("alice", device.id, ip=None)
    card.get_by_label("Enter the number shown on the sign-in screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    refused = phone.page.locator("form.request[data-result=error] .result")
    refused.wait_for()
    assert "deleted on the security info page" in refused.inner_text()
    assert not served.audit("push.approved")
    assert "/security-info/mfa" in desktop.url
