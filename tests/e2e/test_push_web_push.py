"""Web Push for the authenticator web app (issue 20.5) in real Chromium: the desktop that signs in
and the phone that runs the app, against the plain WSGI host with ``[methods.push.web_push]``, and a
local RFC 8030 push service (tests/web/push_receiver.py) that verifies VAPID and decrypts.

* The service worker's ``push`` handler: a push message delivered with the DevTools protocol
  (``ServiceWorker.deliverPushMessage``) shows a notice in the app's language, with the catalog's
  generic words only, and an open app polls at once.
* The whole path: "Notify me of sign-in requests" asks for the permission on the click, subscribes
  with the server's application server key, and sends the subscription signed with the device key;
  the next sign-in request reaches the push service encrypted and VAPID-signed; delivered to the
  worker, it shows the notice; the app shows the request and the right number signs in. "Turn off
  notifications" makes the server forget the subscription.

The limit, honestly: headless Chromium has no push service behind ``PushManager.subscribe`` (it
rejects with ``AbortError``; ``test_without_a_push_service_the_app_says_so`` shows what the app
then tells the user).
So the path test replaces ``PushManager.prototype.subscribe`` / ``getSubscription`` with an init
script that returns a subscription whose endpoint is the local push service and whose keys the
test holds; everything before that call (the permission, the options: ``userVisibleOnly`` and the
server's key) and after it (the signed request, the server's send, the worker's notice) is the
real code. The push service's own delivery to the browser is played by the DevTools protocol.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from plain_wsgi_host import DictDirectory, make_app
from test_push_web_app import APP, Served, _enroll, _sign_in
from werkzeug.serving import make_server

from oidc_combinedreg import parse_config
from oidc_combinedreg.clock import SystemClock
from oidc_combinedreg.config.web_push import generate_vapid_keys
from oidc_combinedreg.service.webpush import PAYLOAD
from oidc_combinedreg.store.sqlite import SqliteStore

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not shutil.which("chromium"), reason="needs Debian's chromium"),
]

SUBJECT = "mailto:security@example.com"
GERMAN_TITLE = "Anmeldeanfrage"
GERMAN_BODY = (
    "Eine Anmeldung wartet auf Ihre Bestätigung. Öffnen Sie die App, um sie zu beantworten."
)


def _web() -> Any:
    import sys

    web = str(Path(__file__).resolve().parents[1] / "web")
    if web not in sys.path:
        sys.path.insert(0, web)
    import push_receiver
    import webtest

    return push_receiver, webtest


@pytest.fixture
def keys() -> tuple[str, str]:
    return generate_vapid_keys()


@pytest.fixture
def receiver(keys: tuple[str, str]) -> Iterator[Any]:
    push_receiver, _ = _web()
    r = push_receiver.Receiver(subject=SUBJECT, server_key=keys[1])
    yield r
    r.close()


@pytest.fixture
def served(tmp_path: Path, keys: tuple[str, str]) -> Iterator[Served]:
    _, webtest = _web()
    apps: list[Any] = []
    server = make_server("127.0.0.1", 0, lambda e, s: apps[0](e, s), threaded=True)
    url = f"http://localhost:{server.server_port}"
    web_push = {"vapid_private_key": keys[0], "subject": SUBJECT}
    push = {"web_app": True, "app_name": "", "web_push": web_push}
    data = webtest.base_config(tmp_path, methods={"push": push})
    data["policies"]["wizard_preference"] = ["push"]
    config = parse_config(data)
    clock = SystemClock()
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(config, DictDirectory(), store=store, clock=clock)
    host.redirect_uri = f"{url}/cb"
    apps.append(reg)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(url, host, store, reg)
    finally:
        reg.info.push.web_push.drain(timeout=30)
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()


def _page(chromium_browser: Any, served: Served, **options: Any) -> Iterator[Any]:
    context = chromium_browser.new_context(locale="en-US", **options)
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def desktop(chromium_browser: Any, served: Served) -> Iterator[Any]:
    yield from _page(chromium_browser, served)


@pytest.fixture
def phone(chromium_browser: Any, served: Served) -> Iterator[Any]:
    yield from _page(chromium_browser, served)


def _registration_id(phone: Any, served: Served) -> str:
    """The app's service worker registration, as the DevTools protocol names it."""
    phone.evaluate("navigator.serviceWorker.ready.then((r) => !!r.active)")
    cdp = phone.context.new_cdp_session(phone)
    found: list[str] = []

    def updated(event: dict[str, Any]) -> None:
        found.extend(
            r["registrationId"]
            for r in event["registrations"]
            if r["scopeURL"] == served.url + APP and not r.get("isDeleted")
        )

    cdp.on("ServiceWorker.workerRegistrationUpdated", updated)
    cdp.send("ServiceWorker.enable")
    for _ in range(100):
        if found:
            break
        phone.wait_for_timeout(50)  # let the protocol's events arrive
    assert found, "no service worker registration for the app"
    phone._cdp = cdp  # kept alive for the delivery
    return found[0]


def _deliver(phone: Any, served: Served, data: str) -> list[dict[str, Any]]:
    """A push message to the app's worker (as the browser's push service would hand it over);
    returns the notices the worker then shows."""
    registration = _registration_id(phone, served)
    phone._cdp.send(
        "ServiceWorker.deliverPushMessage",
        {"origin": served.url, "registrationId": registration, "data": data},
    )
    notices: list[dict[str, Any]] = phone.evaluate(
        """async () => {
          const r = await navigator.serviceWorker.ready;
          for (let i = 0; i < 200; i++) {
            const shown = await r.getNotifications();
            if (shown.length) {
              return shown.map((n) => ({title: n.title, body: n.body, tag: n.tag,
                                        lang: n.lang, dir: n.dir, data: n.data}));
            }
            await new Promise((ok) => setTimeout(ok, 50));
          }
          return [];
        }"""
    )
    return notices


def test_the_worker_shows_a_notice_in_the_apps_language_and_the_open_app_polls(
    served: Served, phone: Any
) -> None:
    phone.context.grant_permissions(["notifications"], origin=served.url)
    phone.goto(served.url + APP + "?lng=de")  # the phone itself is en-US
    phone.locator("body[data-ready]").wait_for()
    phone.evaluate(
        """() => { window.workerSaid = [];
          navigator.serviceWorker.addEventListener("message", (e) => workerSaid.push(e.data)); }"""
    )
    # Even a push that claimed more than "a sign-in is waiting" shows only the generic words.
    (notice,) = _deliver(phone, served, '{"type": "sign-in-request", "number": 42, "app": "x"}')
    assert notice["title"] == GERMAN_TITLE and notice["body"] == GERMAN_BODY
    assert "42" not in notice["body"] and notice["lang"] == "de"
    assert notice["tag"] == "sign-in-request"
    assert notice["data"]["url"] == "/security-info/app/#requests"
    phone.wait_for_function("window.workerSaid.length > 0")
    assert phone.evaluate("window.workerSaid") == [{"type": "sign-in-request"}]


def test_without_a_push_service_the_app_says_so(served: Served, desktop: Any, phone: Any) -> None:
    """Debian's headless Chromium has no push service behind PushManager.subscribe: with the
    notifications permission granted it still rejects with ``AbortError: Registration failed -
    permission denied``. The app tells the user it cannot notify here (it keeps polling), rather
    than failing silently, and the server holds no subscription."""
    phone.context.grant_permissions(["notifications"], origin=served.url)
    _enroll(desktop, phone, served)
    button = phone.get_by_role("button", name="Notify me of sign-in requests")
    button.wait_for()  # the poll told the app that the server sends Web Push
    button.click()
    phone.locator("#notify-status.error").wait_for()
    said = phone.locator("#notify-status").inner_text()
    assert said.startswith("This browser cannot deliver notifications to this app"), said
    method = served.store.list_methods("alice")[0]
    assert served.reg.info.push.secrets_of(method).web_push is None


STUB = """
(() => {
  const sub = %s;
  const key = (options) => btoa(String.fromCharCode(...new Uint8Array(options.applicationServerKey)))
    .replace(/\\+/g, "-").replace(/\\//g, "_").replace(/=+$/, "");
  let current = null;
  PushManager.prototype.subscribe = function (options) {
    window.subscribeOptions = {userVisibleOnly: options.userVisibleOnly, key: key(options)};
    current = {
      endpoint: sub.endpoint,
      options: {applicationServerKey: options.applicationServerKey},
      toJSON: () => sub,
      unsubscribe: () => { current = null; return Promise.resolve(true); },
    };
    return Promise.resolve(current);
  };
  PushManager.prototype.getSubscription = function () { return Promise.resolve(current); };
})();
"""


def test_notify_me_subscribes_and_a_sign_in_request_reaches_the_phone(
    served: Served, desktop: Any, phone: Any, receiver: Any
) -> None:
    import json

    subscription = receiver.subscription()
    phone.context.add_init_script(STUB % json.dumps(subscription))
    phone.context.grant_permissions(["notifications"], origin=served.url)
    _enroll(desktop, phone, served)
    desktop.wait_for_url("**/security-info/mfa*")  # the try-out approval comes next
    phone.get_by_role("button", name="Notify me of sign-in requests").click()
    phone.get_by_text("Notifications are on").wait_for()
    assert phone.evaluate("window.subscribeOptions") == {
        "userVisibleOnly": True,
        "key": receiver.server_key,
    }
    method = served.store.list_methods("alice")[0]
    stored = served.reg.info.push.web_push._subscription(method)
    assert stored is not None and stored.to_dict() == subscription
    # The sign-in request: the server pushes, the push service checks and decrypts.
    desktop.get_by_role("button", name="Send notification").click()
    number = desktop.locator(".push-number").inner_text().strip()
    assert receiver.arrived.wait(30)
    assert served.reg.info.push.web_push.drain(timeout=30)
    (got,) = receiver.received
    assert got.problems == [] and got.plaintext == PAYLOAD
    assert number not in got.plaintext.decode()
    # The push service hands the message to the phone's browser: the worker shows the notice.
    (notice,) = _deliver(phone, served, got.plaintext.decode())
    assert notice["title"] == "Sign-in request"
    card = phone.locator("form.request:not([data-result])")
    card.wait_for()
    card.get_by_label("Enter the number shown on the sign-in screen").fill(number)
    card.get_by_role("button", name="Approve").click()
    desktop.wait_for_url(f"{served.url}/cb?**")
    # Turned off: the server forgets the subscription, and the next request pushes nothing.
    phone.get_by_role("button", name="Turn off notifications").click()
    phone.get_by_text("Notifications are off").wait_for()
    method = served.store.list_methods("alice")[0]
    assert served.reg.info.push.secrets_of(method).web_push is None
    assert [e.event for e in served.audit("push.unsubscribed")] == ["push.unsubscribed"]
    _sign_in(desktop, served)
    desktop.wait_for_url("**/security-info/mfa*")
    desktop.get_by_role("button", name="Send notification").click()
    desktop.locator(".push-number").wait_for()
    assert served.reg.info.push.web_push.drain(timeout=30)
    assert len(receiver.received) == 1


def test_the_notifications_section_passes_axe(
    served: Served, desktop: Any, chromium_browser: Any
) -> None:
    """axe-core on the app with its notifications section shown, in Arabic and English (the
    context bypasses the CSP only to inject axe)."""
    from test_push_web_app import AXE, AXE_RUN

    if not AXE.is_file():
        pytest.fail("axe-core is not installed: run `make e2e-deps` (npm ci in tests/e2e/axe)")
    pages = _page(chromium_browser, served, bypass_csp=True, viewport={"width": 390, "height": 844})
    phone = next(pages)
    try:
        phone.context.grant_permissions(["notifications"], origin=served.url)
        _enroll(desktop, phone, served)
        found: list[str] = []
        for lang in ("ar", "en"):
            phone.goto(f"{served.url}{APP}?lng={lang}")
            phone.locator("#notify-on:visible").wait_for()
            phone.add_script_tag(path=str(AXE))
            found.extend(f"[{lang}] {v}" for v in phone.evaluate(AXE_RUN))
        assert found == []
    finally:
        next(pages, None)
