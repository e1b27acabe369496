"""Push authenticator through the WSGI stack: enrollment by QR code, approval with number matching.

The device is the reference device (oidc_combinedreg.device) talking to the device API through a
cookie-less werkzeug client; tests/e2e/test_push_device.py runs it as a real process over HTTP.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from webtest import Browser, code_from, location, notices
from werkzeug.test import Client

from oidc_combinedreg.device import Device, DeviceError

ADD = "/security-info/add/push"


def transport(browser: Browser) -> Any:
    client = Client(browser.reg)  # its own cookie jar: the device never holds a session

    def post(url: str, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(urlsplit(url).path, json=body, headers={"Accept": "application/json"})
        data = r.get_json() or {}
        assert "Set-Cookie" not in r.headers  # the device API never sets a cookie
        if r.status_code >= 400:
            raise DeviceError(r.status_code, data)
        return dict(data)

    return post


def start_enrollment(browser: Browser) -> tuple[str, str]:
    # A previous enrollment that ended at the MFA gate is reported as added by this first visit.
    browser.get_json(ADD)
    token = browser.csrf(ADD)
    browser.post_json(ADD, {"action": "next", "csrf_token": token})
    page = browser.get_json(ADD).get_json()
    assert page["page"] == "push_setup", page
    return str(page["payload"]), token


def record_of(browser: Browser, device: Device, user: str = "alice") -> Any:
    record = browser.reg.store.find_method_by_lookup(f"push:{device.state.device_id}")
    assert record is not None and record.user_id == user
    return record


def approve_at(browser: Browser, mfa: str, device: Device) -> Any:
    """The MFA page's push: start, the device approves the shown number, "Check again"."""
    page = browser.get_json(mfa).get_json()
    method_id = record_of(browser, device).id
    body = {"action": "start", "method_id": method_id, "csrf_token": page["csrf_token"]}
    started = browser.post_json(mfa, body).get_json()
    (request,) = device.pending()
    device.respond(request, started["challenge"]["number"], "approve")
    body["action"] = "verify"
    return browser.post_json(mfa, body)


def enroll(browser: Browser, name: str = "Phone") -> Device:
    """alice's session adds a push device, then (the gate asks at once) approves a request."""
    payload, token = start_enrollment(browser)
    device = Device.enroll(payload, name, clock=browser.clock, transport=transport(browser))
    r = browser.post_json(ADD, {"action": "next", "csrf_token": token})
    assert r.status_code == 303, r.get_json()
    if location(r).startswith("/security-info/mfa"):
        # The first MFA-capable method: the gate asks for MFA at once ("let's try it out").
        assert approve_at(browser, location(r), device).status_code == 303
    else:
        assert "done=added" in location(r)
    return device


def push_methods(browser: Browser, user: str = "alice") -> list[Any]:
    return [m for m in browser.reg.store.list_methods(user) if m.kind == "push"]


def test_enrollment_adds_a_device_with_its_key_encrypted_and_a_totp_seed(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    (record,) = push_methods(browser)
    assert record.label == "Phone" and record.lookup == f"push:{device.state.device_id}"
    assert device.state.totp_secret.encode() not in record.secret
    audit = browser.reg.store.list_audit(user_id="alice", event_prefix="method.added")
    assert [e.detail["kind"] for e in audit] == ["push"]
    assert notices(browser.reg.store, "alice") == [("added", "push", "Phone")]


def test_the_qr_code_is_the_same_across_reloads_and_works_once(browser: Browser) -> None:
    browser.login("alice")
    payload, _ = start_enrollment(browser)
    assert browser.get_json(ADD).get_json()["payload"] == payload
    Device.enroll(payload, "Phone", clock=browser.clock, transport=transport(browser))
    with pytest.raises(DeviceError) as err:
        Device.enroll(payload, "Other", clock=browser.clock, transport=transport(browser))
    assert err.value.status == 410
    assert len(push_methods(browser)) == 1


def test_an_expired_qr_code_is_refused(browser: Browser) -> None:
    browser.login("alice")
    payload, _ = start_enrollment(browser)
    browser.clock.advance(601)
    with pytest.raises(DeviceError) as err:
        Device.enroll(payload, "Phone", clock=browser.clock, transport=transport(browser))
    assert err.value.status == 410
    assert push_methods(browser) == []


def test_the_setup_page_waits_for_the_device(browser: Browser) -> None:
    browser.login("alice")
    _, token = start_enrollment(browser)
    assert (
        browser.get_json("/security-info/push/status?for=enroll").get_json()["status"] == "pending"
    )
    page = browser.post_json(ADD, {"action": "next", "csrf_token": token}).get_json()
    assert page["page"] == "push_setup" and page["notice"]


def _mfa_sign_in(browser: Browser) -> str:
    browser.clock.advance(60)
    browser.login("alice")
    r = browser.authorize()
    mfa = location(r)
    assert mfa.startswith("/security-info/mfa?c=")
    return mfa


def _start_push(browser: Browser, mfa: str) -> dict[str, Any]:
    page = browser.get_json(mfa).get_json()
    assert page["method"]["kind"] == "push"
    started = browser.post_json(
        mfa,
        {"action": "start", "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]},
    ).get_json()
    assert started["started"] and 10 <= started["challenge"]["number"] <= 99
    return dict(started)


def _verify(browser: Browser, mfa: str, page: dict[str, Any]) -> Any:
    body = {"action": "verify", "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    return browser.post_json(mfa, body)


def test_sign_in_approved_with_the_right_number_gets_mfa_and_swk(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    status = "/security-info/push/status?for=mfa"
    assert browser.get_json(status).get_json()["status"] == "pending"
    waiting = _verify(browser, mfa, page)  # "Check again" before the device answered
    assert waiting.status_code == 400 and "waiting" in waiting.get_json()["errors"]["code"]
    (request,) = device.pending()
    assert request["app"] == "" or isinstance(request["app"], str)
    assert request["client_ip"] == "127.0.0.1"
    device.respond(request, page["challenge"]["number"], "approve")
    assert browser.get_json(status).get_json()["status"] == "answered"
    r = _verify(browser, mfa, page)
    assert r.status_code == 303
    r = browser.get(location(r))
    issued = browser.host.codes[code_from(r) or ""]
    assert {"pwd", "mfa", "swk"} <= set(issued["amr"])


@pytest.mark.parametrize(
    ("decision", "pick_right", "result"),
    [
        pytest.param("approve", False, "wrong_number", id="wrong number -> refused"),
        pytest.param("deny", True, "denied", id="deny -> refused"),
        pytest.param("report", True, "reported", id="this wasn't me -> refused and reported"),
    ],
)
def test_sign_in_not_approved(
    browser: Browser, decision: str, pick_right: bool, result: str
) -> None:
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    (request,) = device.pending()
    right = page["challenge"]["number"]
    number = right if pick_right else next(n for n in request["numbers"] if n != right)
    answer = device.respond(request, number, decision)
    assert answer["result"] == result
    r = _verify(browser, mfa, page)
    assert r.status_code == 400
    assert browser.get_json(mfa).get_json()["page"] == "mfa"  # still not signed in
    if decision == "report":
        assert "change" in answer["message"]
        assert browser.reg.store.list_audit(user_id="alice", event_prefix="push.reported")
        assert "push_reported_at" in browser.reg.store.get_user_state("alice").extra


def test_expired_request_cannot_be_approved(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    (request,) = device.pending()
    browser.clock.advance(121)
    assert device.pending() == []
    with pytest.raises(DeviceError) as err:
        device.respond(request, page["challenge"]["number"], "approve")
    assert err.value.status == 410
    assert _verify(browser, mfa, page).status_code == 400


def test_replayed_approval_is_refused_and_the_result_is_single_use(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    (request,) = device.pending()
    device.respond(request, page["challenge"]["number"], "approve")
    with pytest.raises(DeviceError) as err:
        device.respond(request, page["challenge"]["number"], "approve")
    assert err.value.status == 410
    assert _verify(browser, mfa, page).status_code == 303


def test_approval_cannot_be_used_by_another_session(make_browser: Any) -> None:
    victim = make_browser()
    victim.login("alice")
    device = enroll(victim)
    mfa = _mfa_sign_in(victim)
    page = _start_push(victim, mfa)
    (request,) = device.pending()
    # An attacker's session (same user, say with a stolen password) starts its own request...
    attacker = make_browser()
    attacker_mfa = _mfa_sign_in(attacker)
    attacker_page = _start_push(attacker, attacker_mfa)
    # ... but the device's approval names the victim's transaction: only that session gets it.
    device.respond(request, page["challenge"]["number"], "approve")
    assert _verify(attacker, attacker_mfa, attacker_page).status_code == 400
    assert _verify(victim, mfa, page).status_code == 303


def test_a_signature_from_another_device_is_refused_and_changes_nothing(
    browser: Browser,
) -> None:
    browser.login("alice")
    device = enroll(browser, "Phone")
    browser.clock.advance(30)
    other = enroll(browser, "Tablet")  # alice's second device
    mfa = _mfa_sign_in(browser)
    page = browser.get_json(mfa).get_json()
    phone = next(m for m in [page["method"], *page["others"]] if m["label"] == "Phone")
    browser.post_json(
        mfa, {"action": "start", "method_id": phone["id"], "csrf_token": page["csrf_token"]}
    )
    (request,) = device.pending()
    assert other.pending() == []  # a request goes to one device only
    with pytest.raises(DeviceError) as err:
        other.respond(request, 0, "approve")  # signed with the tablet's key
    assert err.value.status == 401
    assert device.pending() == [request]  # still answerable by the right device


def test_prompts_are_limited_until_one_is_approved(make_browser: Any) -> None:
    browser = make_browser(methods={"push": {"max_prompts": 3}})
    browser.login("alice")
    device = enroll(browser)  # the test request counts, and its approval resets the count
    mfa = _mfa_sign_in(browser)
    page = browser.get_json(mfa).get_json()
    body = {"action": "start", "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    assert [browser.post_json(mfa, body).status_code for _ in range(4)] == [200, 200, 200, 429]
    assert len(device.pending()) == 3
    assert browser.reg.store.list_audit(user_id="alice", event_prefix="push.refused")


def test_the_apps_offline_code_works_at_the_mfa_step(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    page = browser.get_json(mfa).get_json()
    body = {
        "action": "verify",
        "code": device.code(),
        "method_id": page["method"]["id"],
        "csrf_token": page["csrf_token"],
    }
    assert browser.post_json(mfa, body).status_code == 303


def test_a_sixth_device_is_refused(make_browser: Any) -> None:
    browser = make_browser()
    browser.login("alice")
    devices = [enroll(browser, f"Phone {i}") for i in range(4)]
    second = make_browser()  # another session of alice's, also past MFA
    second.login("alice")
    assert approve_at(second, "/security-info/mfa", devices[0]).status_code == 303
    first_payload, _ = start_enrollment(browser)
    second_payload, _ = start_enrollment(second)
    Device.enroll(first_payload, "Fifth", clock=browser.clock, transport=transport(browser))
    with pytest.raises(DeviceError) as err:
        Device.enroll(second_payload, "Sixth", clock=browser.clock, transport=transport(browser))
    assert err.value.status == 409 and err.value.body["error"] == "limit_reached"
    assert len(push_methods(browser)) == 5
    # The first browser's enrollment page (the fifth device) finishes, then push is not offered.
    assert browser.get_json(ADD).status_code == 303
    addable = browser.get_json("/security-info/").get_json()["addable"]
    assert "push" not in [a["kind"] for a in addable]
    refused = browser.get_json(ADD)  # the limit is said (issue 19.8)
    assert refused.status_code == 409 and refused.get_json()["limit"] == 5


def test_device_endpoints_want_signed_json_and_ignore_cookies(browser: Browser) -> None:
    browser.login("alice")
    r = browser.post("/security-info/device/pending", data={"device_id": "x"})
    assert r.status_code == 400 and r.get_json()["error"] == "bad_request"
    r = browser.post_json("/security-info/device/pending", {"device_id": "nope", "timestamp": 0})
    assert r.status_code == 401
    assert "Set-Cookie" not in r.headers


_SAYS = {
    "denied": "denied in your authenticator app",
    "wrong_number": "number chosen in your authenticator app",
    "reported": "reported",
    "expired": "expired before it was approved",
}


@pytest.mark.parametrize(
    ("decision", "pick_right", "result"),
    [
        pytest.param("approve", False, "wrong_number", id="wrong number"),
        pytest.param("deny", True, "denied", id="deny"),
        pytest.param("report", True, "reported", id="this wasn't me"),
        pytest.param(None, True, "expired", id="no answer before the request expired"),
    ],
)
def test_a_refused_or_expired_request_says_so_and_stops_waiting(
    browser: Browser, decision: str | None, pick_right: bool, result: str
) -> None:
    """Issue 23.1: the page says what became of the request (not "expired" under the code
    field), stops polling (no status form) and offers a new request; JSON and HTML twins."""
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    (request,) = device.pending()
    if decision is None:
        browser.clock.advance(121)
    else:
        right = page["challenge"]["number"]
        number = right if pick_right else next(n for n in request["numbers"] if n != right)
        device.respond(request, number, decision)
    body = {"action": "verify", "method_id": page["method"]["id"], "csrf_token": page["csrf_token"]}
    html = browser.post(mfa, data=body)  # what the page's script presses ("Check again")
    assert html.status_code == 400
    text = html.get_data(as_text=True)
    assert _SAYS[result] in text
    assert "data-push-status" not in text and "push.js" not in text  # polling stops
    assert 'value="start"' in text and "Send a new request" in text
    assert 'id="code-error"' not in text  # nothing about the code field
    # The JSON twin: the same state, read again (the answer was used by the HTML post).
    again = _verify(browser, mfa, page)
    twin = again.get_json()
    assert again.status_code == 400 and twin["started"] is False
    assert twin["push_result"] == "expired" and "code" not in twin["errors"]
    # A new request can be sent at once and is approved as usual.
    started = browser.post_json(mfa, {**body, "action": "start"}).get_json()
    assert started["started"] and started["push_result"] is None
    (fresh,) = device.pending()
    device.respond(fresh, started["challenge"]["number"], "approve")
    assert _verify(browser, mfa, page).status_code == 303


@pytest.mark.parametrize("result", ["denied", "wrong_number", "reported"])
def test_the_json_twin_names_the_devices_answer(browser: Browser, result: str) -> None:
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    page = _start_push(browser, mfa)
    (request,) = device.pending()
    right = page["challenge"]["number"]
    wrong = next(n for n in request["numbers"] if n != right)
    decision = {"denied": "deny", "wrong_number": "approve", "reported": "report"}[result]
    device.respond(request, wrong if result == "wrong_number" else right, decision)
    r = _verify(browser, mfa, page)
    body = r.get_json()
    assert r.status_code == 400 and body["push_result"] == result and body["started"] is False
    assert _SAYS[result] in body["errors"]["push"] and "code" not in body["errors"]
    # A reload shows the "send a notification" form, not the old number.
    assert browser.get_json(mfa).get_json()["started"] is False
