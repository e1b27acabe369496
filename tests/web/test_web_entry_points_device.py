"""The push device API (``/device/*``) against a stranger who knows a device's id (it is no secret:
a hash of the device's public key) and even the id of a request waiting for it: every call is
signed by the device key, and nothing a forged or stale call does is counted, audited or used up,
so nothing it does can refuse the owner's device (docs/security.md)."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from test_web_push import _mfa_sign_in, _start_push, _verify, enroll, record_of
from webtest import Browser
from werkzeug.test import Client

from oidc_combinedreg.device import DeviceError
from oidc_combinedreg.methods.push import b64e, poll_message, remove_message, response_message

FORGED_KEY = ec.generate_private_key(ec.SECP256R1())


def forged(message: bytes) -> str:
    return b64e(FORGED_KEY.sign(message, ec.ECDSA(hashes.SHA256())))


def stranger_calls(browser: Browser, device_id: str, txid: str, challenge: str) -> list[int]:
    """Every device call, signed with a key that is not the device's, or stale: the statuses."""
    client = Client(browser.reg)
    now = int(browser.clock.now())
    bodies: list[tuple[str, dict[str, Any]]] = []
    for at in (now, now - 3600):
        bodies += [
            ("pending", {"device_id": device_id, "timestamp": at,
                         "signature": forged(poll_message(device_id, at))}),
            ("remove", {"device_id": device_id, "timestamp": at,
                        "signature": forged(remove_message(device_id, at))}),
            ("unsubscribe", {"device_id": device_id, "timestamp": at, "signature": "AAAA"}),
        ]  # fmt: skip
    for number in range(10, 100):
        for decision in ("approve", "deny", "report"):
            message = response_message(txid, challenge, number, decision)
            body = {"device_id": device_id, "transaction_id": txid, "number": number,
                    "decision": decision, "signature": forged(message)}  # fmt: skip
            bodies.append(("respond", body))
    statuses = []
    for name, body in bodies:
        r = client.post(f"/security-info/device/{name}", json=body)
        statuses.append(r.status_code)
    return statuses


def test_a_stranger_with_the_device_id_and_a_live_request_moves_nothing(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    mfa = _mfa_sign_in(browser)
    started = _start_push(browser, mfa)
    (request,) = device.pending()
    store = browser.reg.store
    before = len(store.list_audit(limit=10_000))
    record = record_of(browser, device)

    statuses = stranger_calls(
        browser, device.state.device_id, request["transaction_id"], request["challenge"]
    )
    assert len(statuses) == 276 and not [s for s in statuses if s < 400]
    assert set(statuses) <= {401, 404}  # a forged or stale signature; no such endpoint here
    assert len(store.list_audit(limit=10_000)) == before  # nothing written
    assert record_of(browser, device) == record  # the device as it was

    # The owner's device: its request still waits, its answer still counts.
    (still,) = device.pending()
    assert still["transaction_id"] == request["transaction_id"]
    device.respond(still, started["challenge"]["number"], "approve")
    page = browser.get_json(mfa).get_json()
    assert _verify(browser, mfa, page).status_code == 303


@pytest.mark.parametrize("calls", [1, 300])
def test_forged_polls_never_refuse_the_owners_poll(browser: Browser, calls: int) -> None:
    browser.login("alice")
    device = enroll(browser)
    client = Client(browser.reg)
    now = int(browser.clock.now())
    body = {"device_id": device.state.device_id, "timestamp": now,
            "signature": forged(poll_message(device.state.device_id, now))}  # fmt: skip
    for _ in range(calls):
        assert client.post("/security-info/device/pending", json=body).status_code == 401
    assert device.pending() == []  # the owner polls as before


def test_a_forged_answer_from_another_device_id_writes_no_audit_event(browser: Browser) -> None:
    """An answer naming another device's request is audited (``push.foreign_answer``) only when
    that other device really signed it: a forged one is refused like any bad signature."""
    browser.login("alice")
    phone = enroll(browser, "Phone")
    browser.clock.advance(30)
    tablet = enroll(browser, "Tablet")
    mfa = _mfa_sign_in(browser)
    page = browser.get_json(mfa).get_json()
    chosen = next(m for m in [page["method"], *page["others"]] if m["label"] == "Phone")
    body = {"action": "start", "method_id": chosen["id"], "csrf_token": page["csrf_token"]}
    browser.post_json(mfa, body)
    (request,) = phone.pending()
    store = browser.reg.store
    statuses = stranger_calls(
        browser, tablet.state.device_id, request["transaction_id"], request["challenge"]
    )
    assert set(statuses) <= {401, 404}
    assert store.list_audit(event_prefix="push.foreign_answer") == []
    with pytest.raises(DeviceError):  # the tablet itself, signing: refused and audited
        tablet.respond(request, 42, "approve")
    assert len(store.list_audit(event_prefix="push.foreign_answer")) == 1
    assert phone.pending() == [request]
