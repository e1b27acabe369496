"""The push protocol end to end: the reference device as a separate process (``combinedreg
authenticator ...``) against the plain-WSGI host served on loopback by werkzeug in a thread.

The browser side is a werkzeug client on the same app; the server's clock is a FrozenClock started at
the real time (the device signs its polls with the real time) and moved by the tests for expiry.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from werkzeug.serving import make_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "web"))
from plain_wsgi_host import DictDirectory, make_app  # noqa: E402
from webtest import Browser, base_config, location  # noqa: E402

from oidc_combinedreg import parse_config  # noqa: E402
from oidc_combinedreg.clock import FrozenClock  # noqa: E402
from oidc_combinedreg.device import Device, DeviceError, DeviceState  # noqa: E402
from oidc_combinedreg.store.sqlite import SqliteStore  # noqa: E402

pytestmark = pytest.mark.e2e
CLI = str(Path(sys.executable).parent / "combinedreg")
ADD = "/security-info/add/push"


@dataclass
class Served:
    url: str
    tmp: Path
    clock: FrozenClock
    browsers: list[Browser]
    reg: Any
    host: Any

    def browser(self) -> Browser:
        b = Browser(self.reg, self.host, self.clock)
        self.browsers.append(b)
        return b


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    server = make_server("127.0.0.1", 0, lambda e, s: app[0](e, s), threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    sections = {"methods": {"push": {"server_url": url + "/security-info"}}}
    config = parse_config(base_config(tmp_path, **sections))
    clock = FrozenClock(time.time())
    store = SqliteStore(str(tmp_path / "reg.sqlite3"), clock=clock)
    reg, host = make_app(config, DictDirectory(), store=store, clock=clock)
    app = [reg]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Served(url=url, tmp=tmp_path, clock=clock, browsers=[], reg=reg, host=host)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        server.server_close()
        store.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, "authenticator", *args], capture_output=True, text=True, timeout=60, check=False
    )


def enroll_with_cli(served: Served, browser: Browser, user: str, state: Path) -> None:
    browser.login(user)
    token = browser.csrf(ADD)
    browser.post_json(ADD, {"action": "next", "csrf_token": token})
    payload = browser.get_json(ADD).get_json()["payload"]
    done = cli("enroll", payload, "--state", str(state), "--name", f"{user}'s phone")
    assert done.returncode == 0, done.stderr
    assert state.stat().st_mode & 0o777 == 0o600
    r = browser.post_json(ADD, {"action": "next", "csrf_token": token})
    assert location(r).startswith("/security-info/mfa")  # the gate: try it out at once
    approve_in_browser(browser, location(r), state)


def start_push(browser: Browser, mfa: str) -> dict[str, Any]:
    page = browser.get_json(mfa).get_json()
    body = {"action": "start", "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    started = browser.post_json(mfa, body).get_json()
    return {"number": started["challenge"]["number"], "body": body}


def verify(browser: Browser, mfa: str, started: dict[str, Any]) -> int:
    return browser.post_json(mfa, {**started["body"], "action": "verify"}).status_code


def approve_in_browser(browser: Browser, mfa: str, state: Path) -> None:
    started = start_push(browser, mfa)
    done = cli("approve", str(started["number"]), "--state", str(state))
    assert done.returncode == 0 and "result: approved" in done.stdout, done.stderr
    assert verify(browser, mfa, started) == 303


def sign_in(served: Served, browser: Browser, user: str = "alice") -> str:
    served.clock.advance(31)
    browser.login(user)
    mfa = location(browser.authorize())
    assert mfa.startswith("/security-info/mfa?c=")
    return mfa


def pending(state: Path) -> list[dict[str, Any]]:
    done = cli("pending", "--state", str(state), "--json")
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


@pytest.fixture
def alice(served: Served) -> tuple[Browser, Path]:
    browser = served.browser()
    state = served.tmp / "alice-device.json"
    enroll_with_cli(served, browser, "alice", state)
    return browser, state


def _audit(served: Served, prefix: str) -> list[Any]:
    return served.reg.store.list_audit(user_id="alice", event_prefix=prefix)


def test_approve_with_the_right_number(served: Served, alice: tuple[Browser, Path]) -> None:
    browser, state = alice
    mfa = sign_in(served, browser)
    started = start_push(browser, mfa)
    (request,) = pending(state)
    assert started["number"] in request["numbers"] and request["client_ip"] == "127.0.0.1"
    done = cli("approve", str(started["number"]), "--state", str(state))
    assert "result: approved" in done.stdout
    assert verify(browser, mfa, started) == 303
    assert pending(state) == []


def test_wrong_number_is_refused(served: Served, alice: tuple[Browser, Path]) -> None:
    browser, state = alice
    mfa = sign_in(served, browser)
    started = start_push(browser, mfa)
    (request,) = pending(state)
    wrong = next(n for n in request["numbers"] if n != started["number"])
    assert "result: wrong_number" in cli("approve", str(wrong), "--state", str(state)).stdout
    assert verify(browser, mfa, started) == 400
    assert browser.get_json(mfa).get_json()["page"] == "mfa"


def test_deny_and_report(served: Served, alice: tuple[Browser, Path]) -> None:
    browser, state = alice
    mfa = sign_in(served, browser)
    started = start_push(browser, mfa)
    done = cli("deny", "--report", "--state", str(state))
    assert "result: reported" in done.stdout and "change" in done.stdout
    assert verify(browser, mfa, started) == 400
    assert len(_audit(served, "push.reported")) == 1


def test_expired_request_cannot_be_approved(served: Served, alice: tuple[Browser, Path]) -> None:
    browser, state = alice
    mfa = sign_in(served, browser)
    started = start_push(browser, mfa)
    served.clock.advance(121)
    done = cli("approve", str(started["number"]), "--state", str(state))
    assert done.returncode != 0 and "no pending request" in done.stderr
    assert verify(browser, mfa, started) == 400


def test_replayed_approval_is_refused(served: Served, alice: tuple[Browser, Path]) -> None:
    browser, state = alice
    mfa = sign_in(served, browser)
    started = start_push(browser, mfa)
    (request,) = pending(state)
    device = Device(DeviceState.load(state), clock=served.clock)  # same key, over real HTTP
    assert device.respond(request, started["number"], "approve")["result"] == "approved"
    with pytest.raises(DeviceError) as err:
        device.respond(request, started["number"], "approve")
    assert err.value.status == 410
    assert verify(browser, mfa, started) == 303
    assert verify(browser, mfa, started) == 400  # the approval was used once


def test_signature_from_another_device_is_refused(
    served: Served, alice: tuple[Browser, Path]
) -> None:
    browser, state = alice
    bob_state = served.tmp / "bob-device.json"
    enroll_with_cli(served, served.browser(), "bob", bob_state)
    mfa = sign_in(served, browser)
    started = start_push(browser, mfa)
    (request,) = pending(state)
    bob = Device(DeviceState.load(bob_state), clock=served.clock)
    with pytest.raises(DeviceError) as err:
        bob.respond(request, started["number"], "approve")
    assert err.value.status == 401
    assert pending(state) == [request]  # untouched: alice's device can still answer
    approve = cli("approve", str(started["number"]), "--state", str(state))
    assert "result: approved" in approve.stdout


def test_offline_code_from_the_cli(served: Served, alice: tuple[Browser, Path]) -> None:
    browser, state = alice
    mfa = sign_in(served, browser)
    page = browser.get_json(mfa).get_json()
    code = cli("code", "--state", str(state)).stdout.strip()
    served.clock.set(time.time())  # the CLI used the real time
    body = {
        "action": "verify",
        "code": code,
        "method_id": page["method"]["id"],
        "csrf_token": page["csrf_token"],
    }
    assert browser.post_json(mfa, body).status_code == 303


@pytest.mark.parametrize(
    ("existing", "stored"),
    [
        pytest.param(5, 0, id="20 parallel sixth devices -> none stored"),
        pytest.param(4, 1, id="20 parallel fifth devices -> exactly one stored"),
    ],
)
def test_limit_holds_under_parallel_enrollments(served: Served, existing: int, stored: int) -> None:
    push = served.reg.info.push
    url = served.url + "/security-info"
    payloads = [
        push.enrollment("alice", "alice@example.test", None, server_url=url)[0].uri()
        for _ in range(existing + 20)
    ]
    for payload in payloads[:existing]:
        Device.enroll(payload, "Phone", clock=served.clock)

    def attempt(payload: str) -> int:
        try:
            Device.enroll(payload, "Parallel", clock=served.clock)
        except DeviceError as exc:
            return exc.status
        return 201

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(attempt, payloads[existing:]))
    assert statuses.count(201) == stored
    assert statuses.count(409) == 20 - stored
    kinds = [m.kind for m in served.reg.store.list_methods("alice")]
    assert kinds.count("push") == existing + stored


def test_in_chromium_a_denied_request_is_told_and_polling_stops(
    served: Served, alice: tuple[Browser, Path], chromium_browser: Any
) -> None:
    """Issue 23.1 in a real browser: static/push.js sees the device's answer and presses "Check
    again" once; the page then says the request was denied, shows no number and no polling form,
    and sends nothing more however long it stays open (Playwright's clock drives the timers);
    "Send a new request" starts over, and an approval then signs in."""
    _, state = alice
    served.clock.advance(31)
    context = chromium_browser.new_context(locale="en-US")
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.clock.install()  # push.js's setTimeout runs only when the test moves this clock
    try:
        page.goto(served.url + "/login?next=" + quote("/authorize?client_id=demo&state=s1"))
        page.fill("input[name=username]", "alice")
        page.fill("input[name=password]", "alice-password")
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url("**/security-info/mfa?c=*")
        page.get_by_role("button", name="Send notification").click()
        number = page.locator(".push-number").inner_text().strip()
        assert page.locator("[data-push-status]").count() == 1
        done = cli("deny", "--state", str(state))
        assert "result: denied" in done.stdout, done.stderr
        with page.expect_navigation():
            page.clock.run_for(2_100)  # the first poll: "answered" -> "Check again"
        assert "denied in your authenticator app" in page.get_by_role("alert").inner_text()
        assert page.locator(".push-number").count() == 0
        assert page.locator("[data-push-status]").count() == 0
        assert page.locator("script[src$='push.js']").count() == 0
        assert number not in page.inner_text("main")
        sent: list[str] = []
        page.on("request", lambda request: sent.append(f"{request.method} {request.url}"))
        page.clock.run_for(60_000)  # a minute on the page's clock: no poll, no resubmission
        page.wait_for_load_state()
        assert sent == []
        assert len(_audit(served, "mfa.failed")) == 1  # checked once, not every 2 seconds
        # A new request, approved this time, signs in.
        page.get_by_role("button", name="Send a new request").click()
        number = page.locator(".push-number").inner_text().strip()
        done = cli("approve", number, "--state", str(state))
        assert "result: approved" in done.stdout, done.stderr
        # The host sends the browser on to the RP with a code (not on this machine: not loaded).
        with page.expect_request(lambda r: r.url.startswith("https://rp.example.test/cb?")) as rp:
            page.clock.run_for(2_100)
        assert "code=" in rp.value.url and "state=s1" in rp.value.url
        assert len(_audit(served, "mfa.succeeded")) == 2  # the enrollment's try-out, and this
    finally:
        context.close()


def test_remove_from_the_cli_keeps_a_needed_device_then_deletes_it(
    served: Served, alice: tuple[Browser, Path]
) -> None:
    """``authenticator remove`` (POST /device/remove): refused while the device is alice's only
    MFA method (replace before remove), done once she has an authenticator app as well."""
    import pyotp

    _, state = alice
    refused = cli("remove", "--state", str(state))
    assert refused.returncode == 2 and "replace_first" in refused.stderr
    assert state.exists()
    info = served.reg.info
    setup, begun = info.totp.register_begin("alice", "alice", None)
    code = pyotp.TOTP(setup.secret).at(served.clock.now() - 30)
    info.totp.register_complete("alice", begun, code, label="App", ip=None)
    done = cli("remove", "--state", str(state))
    assert done.returncode == 0 and "removed" in done.stdout, done.stderr
    assert not state.exists()
    assert [m.kind for m in served.reg.store.list_methods("alice")] == ["totp"]
    assert len(_audit(served, "method.deleted")) == 1
