"""The authenticator web app (issue 20) in real Chromium: two browser contexts, the desktop that
signs in and the phone that runs the app, against the plain WSGI host with ``[methods.push]
web_app = true`` served on ``http://localhost:PORT`` (a secure context: WebCrypto, IndexedDB and
service workers need one).

* The app's own cryptography in Chromium: TOTP against the RFC 6238 appendix B vectors (SHA-1),
  and a WebCrypto P-256 signature, converted to DER by the app, verified by Python's cryptography.
* The wizard's QR code is a link to the app with the enrollment payload in the fragment; the phone
  opens it and enrolls; the desktop sees the device arrive and asks for the try-out approval.
* The next sign-in: the desktop shows a number, the app shows the request and takes the number;
  the right number signs in (amr ``swk`` + ``mfa``, audit ``push.approved``), a wrong one is
  refused (``push.wrong_number``), "This wasn't me" is reported.
* The app's offline code is accepted at the MFA step (amr ``otp``).
"""

from __future__ import annotations

import http.client
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
from plain_wsgi_host import DictDirectory, Host, make_app
from werkzeug.serving import make_server

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.store.sqlite import SqliteStore

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium"),
]

APP = "/security-info/app/"


class Served:
    def __init__(self, url: str, host: Host, store: SqliteStore, reg: Any) -> None:
        self.url, self.host, self.store, self.reg = url, host, store, reg

    def audit(self, prefix: str, user: str = "alice") -> list[Any]:
        return list(self.store.list_audit(user_id=user, event_prefix=prefix))


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
    from webtest import base_config

    apps: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda e, s: apps[0](e, s), threaded=True)
    url = f"http://localhost:{server.server_port}"
    data = base_config(tmp_path, methods={"push": {"web_app": True, "app_name": ""}})
    # The wizard proposes the push app first: the app is offered (issue 20, last paragraph).
    data["policies"]["wizard_preference"] = ["push"]
    config = parse_config(data)
    clock = SystemClock()  # the app signs its polls with the real time
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(config, DictDirectory(), store=store, clock=clock)
    host.redirect_uri = f"{url}/cb"  # any other path of this server answers
    apps.append(reg)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(url, host, store, reg)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()


def _context(browser: Any) -> tuple[Any, Any]:
    context = browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    return context, page


@pytest.fixture
def desktop(chromium_browser: Any) -> Iterator[Any]:
    context, page = _context(chromium_browser)
    yield page
    context.close()


@pytest.fixture
def phone(chromium_browser: Any) -> Iterator[Any]:
    context, page = _context(chromium_browser)
    yield page
    context.close()


RFC6238_SHA1 = [  # RFC 6238 appendix B: seed "12345678901234567890", 8 digits
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]


def test_totp_matches_the_rfc_6238_vectors_in_chromium(served: Served, phone: Any) -> None:
    phone.goto(served.url + APP)
    phone.wait_for_selector("body[data-ready]")
    codes = phone.evaluate(
        """async (times) => {
          const seed = new TextEncoder().encode("12345678901234567890");
          const out = [];
          for (const t of times) { out.push(await AuthCrypto.totp(seed, t, 30, 8)); }
          return out;
        }""",
        [t for t, _ in RFC6238_SHA1],
    )
    assert codes == [code for _, code in RFC6238_SHA1]


def test_a_webcrypto_signature_converted_to_der_verifies_in_python(
    served: Served, phone: Any
) -> None:
    from oidc_combinedreg.methods.push import b64d, poll_message, verify_signature

    phone.goto(served.url + APP)
    phone.wait_for_selector("body[data-ready]")
    # Many signatures: r or s with a high bit (a 0x00 pad) or a leading zero byte must all pass.
    signed = phone.evaluate(
        """async () => {
          const pair = await AuthCrypto.newDeviceKey();
          const spki = await AuthCrypto.publicKeySpki(pair.publicKey);
          const sigs = [];
          for (let i = 0; i < 64; i++) {
            sigs.push(await AuthCrypto.sign(pair.privateKey, ["pending", "dev", String(i)]));
          }
          const exported = await crypto.subtle.exportKey("pkcs8", pair.privateKey)
            .then(() => "exported", (e) => e.name);
          return {spki, sigs, exported};
        }"""
    )
    assert signed["exported"] == "InvalidAccessError"  # the private key cannot leave WebCrypto
    for i, sig in enumerate(signed["sigs"]):
        verify_signature(b64d(signed["spki"]), poll_message("dev", i), sig)


def _sign_in(desktop: Any, served: Served, user: str = "alice") -> None:
    desktop.goto(f"{served.url}/logout")
    desktop.goto(served.url + "/login?next=" + quote("/authorize?client_id=demo&state=s1"))
    desktop.fill("input[name=username]", user)
    desktop.fill("input[name=password]", f"{user}-password")
    desktop.get_by_role("button", name="Sign in").click()


def _amr_of(url: str, served: Served) -> list[str]:
    code = parse_qs(urlsplit(url).query)["code"][0]
    return list(served.host.codes[code]["amr"])


def _enroll(desktop: Any, phone: Any, served: Served) -> str:
    """First sign-in: the wizard proposes the app, the phone opens the QR code's link."""
    _sign_in(desktop, served)
    desktop.wait_for_url("**/security-info/wizard*")
    desktop.get_by_role("button", name="Next").click()
    link = (desktop.locator("code.secret").text_content() or "").strip()
    assert link.startswith(served.url + APP + "#enroll=")
    # The one-time token travels only in the fragment: the app's URL the server sees has none.
    assert "token" not in link.split("#")[0]
    seen: list[str] = []
    phone.on("request", lambda r: seen.append(r.url))
    phone.goto(link)
    phone.get_by_text("alice").first.wait_for()
    phone.get_by_role("button", name="Add account").first.click()
    phone.locator("article.account").wait_for()
    assert phone.url == served.url + APP  # the fragment left the address bar
    assert not any("token" in u for u in seen)
    return link


def test_enroll_then_approve_with_the_number_and_refuse_a_wrong_one(
    served: Served, desktop: Any, phone: Any
) -> None:
    _enroll(desktop, phone, served)
    # The desktop saw the device arrive (push.js): the try-out approval at the MFA step.
    desktop.wait_for_url("**/security-info/mfa*")
    methods = served.store.list_methods("alice")
    assert [m.kind for m in methods] == ["push"]
    _approve(desktop, phone, served, right=True)
    assert served.audit("push.approved")
    # The next sign-in: a wrong number is refused.
    _sign_in(desktop, served)
    desktop.wait_for_url("**/security-info/mfa*")
    _approve(desktop, phone, served, right=False)
    assert len(served.audit("push.wrong_number")) == 1
    assert "/cb?" not in desktop.url
    # "This wasn't me" is reported.
    desktop.get_by_role("button", name="Send a new request").click()
    desktop.locator(".push-number").wait_for()
    card = phone.locator("form.request:not([data-result])")
    card.wait_for()
    card.get_by_role("button", name="This wasn't me").click()
    phone.locator("form.request[data-result=reported]").wait_for()
    assert len(served.audit("push.reported")) == 1
    # "Deny" denies.
    desktop.get_by_role("button", name="Send a new request").click()
    desktop.locator(".push-number").wait_for()
    card = phone.locator("form.request:not([data-result])")
    card.wait_for()
    card.get_by_role("button", name="Deny").click()
    phone.locator("form.request[data-result=denied]").wait_for()
    desktop.get_by_role("button", name="Send a new request").wait_for()  # told, not signed in
    assert len(served.audit("push.denied")) == 1
    assert "/cb?" not in desktop.url


def _approve(desktop: Any, phone: Any, served: Served, *, right: bool) -> None:
    desktop.get_by_role("button", name="Send notification").click()
    number = int(desktop.locator(".push-number").inner_text().strip())
    card = phone.locator("form.request:not([data-result])")
    card.wait_for()  # the app's poll found the request
    facts = card.locator("dl").inner_text()
    assert "demo" in facts and "127.0.0.1" in facts
    typed = number if right else (number + 1) % 90 + 10
    card.get_by_label("Enter the number shown on the sign-in screen").fill(str(typed))
    if right:
        with desktop.expect_request(lambda r: r.url.startswith(f"{served.url}/cb?")) as rp:
            card.get_by_role("button", name="Approve").click()
        desktop.wait_for_url(f"{served.url}/cb?**")  # let that navigation finish
        phone.locator("form.request[data-result=approved]").wait_for()
        assert set(_amr_of(rp.value.url, served)) >= {"swk", "mfa"}
    else:
        card.get_by_role("button", name="Approve").click()
        phone.locator("form.request[data-result=wrong_number]").wait_for()
        desktop.get_by_role("button", name="Send a new request").wait_for()


def test_offline_the_app_still_shows_a_code_the_mfa_step_accepts(
    served: Served, desktop: Any, phone: Any
) -> None:
    _enroll(desktop, phone, served)
    desktop.wait_for_url("**/security-info/mfa*")
    _approve(desktop, phone, served, right=True)  # the try-out
    # The service worker has the shell; the phone goes offline and starts the app again.
    phone.evaluate("navigator.serviceWorker.ready.then(() => true)")
    phone.reload()  # now controlled by the worker
    phone.locator("body[data-ready]").wait_for()
    phone.context.set_offline(True)
    phone.reload()
    phone.locator("body[data-ready]").wait_for()
    code_box = phone.locator("output.code")
    phone.wait_for_function("document.querySelector('output.code').textContent.length === 6")
    phone.locator("#offline").wait_for()  # it says why no request can arrive
    code = code_box.inner_text()
    assert code.isdigit()
    # The desktop signs in again and types the app's code instead of waiting for a request.
    _sign_in(desktop, served)
    desktop.wait_for_url("**/security-info/mfa*")
    desktop.get_by_text("Use a verification code from the app instead").click()
    desktop.locator("#code").fill(code)
    with desktop.expect_request(lambda r: r.url.startswith(f"{served.url}/cb?")) as rp:
        desktop.get_by_role("button", name="Verify").click()
    desktop.wait_for_url(f"{served.url}/cb?**")
    assert "otp" in _amr_of(rp.value.url, served)


def test_removing_the_account_in_the_app_tells_the_server(
    served: Served, desktop: Any, phone: Any
) -> None:
    """Issue 20.4: the app removes an account and the server deletes the device (a signed,
    timestamped request with the device's key), under the same replace-before-remove rule as
    the security-info page: the user's only MFA method stays until another one is added."""
    import pyotp

    _enroll(desktop, phone, served)
    desktop.wait_for_url("**/security-info/mfa*")
    _approve(desktop, phone, served, right=True)
    phone.on("dialog", lambda dialog: dialog.accept())
    phone.get_by_role("button", name="Remove").click()
    phone.locator("#notice.error").wait_for()
    assert "another sign-in method" in phone.locator("#notice").inner_text()
    assert phone.locator("article.account").count() == 1  # still here: it is the only one
    assert [m.kind for m in served.store.list_methods("alice")] == ["push"]
    # With an authenticator app as well, the push device may go.
    info = served.reg.info
    setup, state = info.totp.register_begin("alice", "alice", None)
    code = pyotp.TOTP(setup.secret).at(served.reg.clock.now() - 30)
    info.totp.register_complete("alice", state, code, label="Other app", ip=None)
    # A removal signed by another key, or replayed out of its time, deletes nothing.
    forged = phone.evaluate(
        """async () => {
          const accounts = await new Promise((ok) => {
            const open = indexedDB.open("combinedreg-authenticator", 1);
            open.onsuccess = () => {
              const req = open.result.transaction("accounts").objectStore("accounts").getAll();
              req.onsuccess = () => ok(req.result);
            };
          });
          const a = accounts[0];
          const other = await AuthCrypto.newDeviceKey();
          const now = Math.floor(Date.now() / 1000);
          const post = async (key, ts) => (await fetch(a.url + "/device/remove", {
            method: "POST", headers: {"Content-Type": "application/json"},
            body: JSON.stringify({device_id: a.device_id, timestamp: ts,
              signature: await AuthCrypto.sign(key, ["remove", a.device_id, ts])})})).status;
          return [await post(other.privateKey, now), await post(a.key, now - 3600)];
        }"""
    )
    assert forged == [401, 401]
    assert len(served.store.list_methods("alice")) == 2
    phone.get_by_role("button", name="Remove").click()
    phone.get_by_text("Account removed.").wait_for()
    assert phone.locator("article.account").count() == 0
    assert [m.kind for m in served.store.list_methods("alice")] == ["totp"]
    (deleted,) = served.audit("method.deleted")
    assert deleted.detail.get("kind") == "push"


def test_the_app_is_served_with_a_strict_csp_and_no_cookie(served: Served) -> None:
    # One session, closed at the end: its connections never outlive the test (a leaked socket
    # surfaces later as an unraisable ResourceWarning in whichever test the collector runs in).
    with requests.Session() as browser:

        def get(path: str) -> requests.Response:
            return browser.get(served.url + path, timeout=10, allow_redirects=False)

        shell = get(APP)
        assert shell.status_code == 200
        assert shell.headers["Content-Security-Policy"] == (
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
            "connect-src 'self'; manifest-src 'self'; worker-src 'self'; object-src 'none'; "
            "base-uri 'none'; form-action 'none'; frame-ancestors 'none'; "
            "require-trusted-types-for 'script'; trusted-types authenticator"
        )
        assert shell.headers.get("Set-Cookie") is None
        assert shell.headers["Cache-Control"] == "no-cache"
        assert "<script>" not in shell.text  # no inline script anywhere
        manifest = get(APP + "manifest.webmanifest")
        assert manifest.headers["Content-Type"].startswith("application/manifest+json")
        data = manifest.json()
        assert data["start_url"] == "./" and data["display"] == "standalone" and data["icons"]
        worker = get(APP + "sw.js")
        assert worker.headers["Content-Type"].startswith("text/javascript")
        # http.client sends the path as written (requests would remove the dot segments).
        host = urlsplit(served.url).netloc
        for missing in ("../static/push.js", "nope.js", "%2e%2e/app.py"):
            conn = http.client.HTTPConnection(host, timeout=10)
            try:
                conn.request("GET", APP + missing)
                assert conn.getresponse().status == 404, missing
            finally:
                conn.close()
        redirect = get(APP.rstrip("/"))
        assert redirect.status_code == 308 and redirect.headers["Location"] == APP


LANGUAGE_TITLES = {
    "en": "Authenticator",
    "de": "Konten",
    "fr": "Comptes",
    "es": "Cuentas",
    "ja": "アカウント",
    "ar": "الحسابات",
}


@pytest.mark.parametrize("lang", sorted(LANGUAGE_TITLES))
def test_the_app_speaks_the_phone_language(
    served: Served, chromium_browser: Any, lang: str
) -> None:
    context = chromium_browser.new_context(locale=lang)
    try:
        page = context.new_page()
        page.goto(served.url + APP)
        page.locator("body[data-ready]").wait_for()
        html = page.locator("html")
        assert html.get_attribute("lang") == lang
        assert html.get_attribute("dir") == ("rtl" if lang == "ar" else "ltr")
        expected = LANGUAGE_TITLES[lang]
        heading = "#accounts-heading" if lang != "en" else "h1"
        assert page.locator(heading).inner_text() == expected
        if lang != "en":
            assert "Add an account" not in page.inner_text("body")
    finally:
        context.close()


AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
#: ``COMBINEDREG_SCREENSHOTS=1`` (``make screenshots``, as tests/e2e/test_screens.py): the axe
#: walk also writes the app's screens at phone size into docs/screenshots/; else nothing
SHOOT = os.environ.get("COMBINEDREG_SCREENSHOTS") == "1"
SHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.filter(v => v.impact === "serious" || v.impact === "critical")
    .map(v => `${v.id}: ${v.help} -> ${v.nodes.slice(0, 3).map(n => n.target.join(" "))}`);
}"""


def test_the_app_passes_axe_with_an_account_and_a_request(
    served: Served, desktop: Any, chromium_browser: Any
) -> None:
    """axe-core on the app's screens (the confirmation, an account with its code, a sign-in
    request) in Arabic and English; the context bypasses the CSP only to inject axe."""
    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make e2e-deps` (npm ci in tests/e2e/axe)")
    context = chromium_browser.new_context(
        bypass_csp=True, locale="en-US", viewport={"width": 390, "height": 844}
    )
    phone = context.new_page()
    phone.set_default_timeout(15_000)
    found: list[str] = []

    def audit(url: str, ready: str) -> None:
        for lang in ("ar", "en"):  # ends in English, the language the test clicks through
            base, _, fragment = url.partition("#")
            phone.goto(f"{base}?lng={lang}" + (f"#{fragment}" if fragment else ""))
            phone.locator(ready).wait_for()
            assert phone.locator("html").get_attribute("lang") == lang
            phone.add_script_tag(path=str(AXE))
            found.extend(f"{ready} [{lang}]: {v}" for v in phone.evaluate(AXE_RUN))
            if SHOOT and (lang == "en" or ready == "form.request"):
                name = {"#confirm-form": "app-confirm", "form.request": "app-request"}[ready]
                suffix = "phone" if lang == "en" else f"{lang}-phone"
                phone.screenshot(path=str(SHOTS / f"{name}-{suffix}.png"), full_page=True)

    try:
        _sign_in(desktop, served)
        desktop.wait_for_url("**/security-info/wizard*")
        desktop.get_by_role("button", name="Next").click()
        link = (desktop.locator("code.secret").text_content() or "").strip()
        audit(link, "#confirm-form")  # the confirmation (nothing is sent before "Add account")
        phone.get_by_role("button", name="Add account").first.click()
        phone.locator("article.account").wait_for()
        desktop.wait_for_url("**/security-info/mfa*")
        desktop.get_by_role("button", name="Send notification").click()
        audit(served.url + APP, "form.request")  # an account with its code, and a request
    finally:
        context.close()
    assert not found, "\n".join(found)


def test_chromium_finds_the_app_installable(served: Served, phone: Any) -> None:
    """Chromium's own installability check (DevTools ``Page.getInstallabilityErrors``): a valid
    manifest, an icon, a service worker. A Playwright context counts as incognito, the one
    reason left."""
    phone.goto(served.url + APP)
    phone.locator("body[data-ready]").wait_for()
    phone.evaluate("navigator.serviceWorker.ready.then(() => true)")
    cdp = phone.context.new_cdp_session(phone)
    assert cdp.send("Page.getAppManifest").get("errors") == []
    errors = cdp.send("Page.getInstallabilityErrors")["installabilityErrors"]
    assert [e["errorId"] for e in errors if e["errorId"] != "in-incognito"] == []
