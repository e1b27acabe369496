"""Web Push (issue 20.5), the server's side, through the WSGI stack against a local RFC 8030 push
service (tests/web/push_receiver.py) that verifies the VAPID JWT (RFC 8292) and decrypts the body
(RFC 8291) with the subscription's private key.

* A sign-in request sends one notice: signed for the receiver's origin, with the configured subject,
  decrypting to "a sign-in request is waiting" and nothing of the request (number, transaction,
  challenge, application, address, account).
* The subscription is a signed, timestamped device request; it is kept encrypted with the device.
* 404 and 410 from the push service remove the subscription; a push service that does not answer
  never holds up the sign-in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from push_receiver import Receiver
from test_web_push import _mfa_sign_in, _start_push, _verify, enroll, record_of, transport
from webtest import Browser, location

from oidc_combinedreg.config.web_push import generate_vapid_keys
from oidc_combinedreg.device import Device, DeviceError, _sign
from oidc_combinedreg.methods.push import poll_message
from oidc_combinedreg.service.webpush import PAYLOAD, subscribe_message, unsubscribe_message

SUBJECT = "mailto:security@example.com"


@pytest.fixture
def keys() -> tuple[str, str]:
    return generate_vapid_keys()


@pytest.fixture
def receiver(keys: tuple[str, str]) -> Iterator[Receiver]:
    r = Receiver(subject=SUBJECT, server_key=keys[1])
    yield r
    r.close()


@pytest.fixture
def pushing(make_browser: Callable[..., Browser], keys: tuple[str, str]) -> Browser:
    web_push = {"vapid_private_key": keys[0], "subject": SUBJECT, "ttl": 60, "timeout": 2}
    return make_browser(methods={"push": {"web_app": True, "web_push": web_push}})


def subscribe(browser: Browser, device: Device, subscription: dict[str, Any]) -> dict[str, Any]:
    from oidc_combinedreg.service.webpush import Subscription

    now = int(browser.clock.now())
    sub = Subscription.from_dict(subscription)
    message = subscribe_message(device.state.device_id, now, sub)
    body = {
        "device_id": device.state.device_id,
        "timestamp": now,
        "subscription": subscription,
        "signature": _sign(device._key, message),
    }
    return transport(browser)(device.state.server_url + "/device/subscribe", body)


def stored_subscription(browser: Browser, device: Device) -> Any:
    """The subscription the server would push to (None: none, or one for another key)."""
    n = notifier(browser)
    sub = n._subscription(record_of(browser, device))
    return sub and sub.to_dict()


def notifier(browser: Browser) -> Any:
    n = browser.reg.info.push.web_push
    assert n is not None
    return n


def test_a_sign_in_request_sends_one_encrypted_vapid_signed_notice_without_secrets(
    pushing: Browser, receiver: Receiver
) -> None:
    pushing.login("alice")
    device = enroll(pushing)
    assert receiver.received == []  # the try-out approval came before the subscription
    subscription = receiver.subscription()
    assert subscribe(pushing, device, subscription)["result"] == "subscribed"
    assert stored_subscription(pushing, device) == subscription
    # The endpoint is a capability: stored only inside the encrypted secret.
    assert subscription["endpoint"].encode() not in record_of(pushing, device).secret
    (event,) = pushing.reg.store.list_audit(user_id="alice", event_prefix="push.subscribed")
    assert event.detail["service"] == "127.0.0.1"
    assert subscription["endpoint"] not in str(event.detail)

    mfa = _mfa_sign_in(pushing)
    page = _start_push(pushing, mfa)
    assert notifier(pushing).drain(timeout=30)
    (got,) = receiver.received
    assert got.problems == []
    assert got.claims["aud"] == receiver.url and got.claims["sub"] == SUBJECT
    assert got.headers["TTL"] == "60" and got.headers["Urgency"] == "high"
    assert got.plaintext == PAYLOAD
    (request,) = device.pending()
    secrets = [
        str(page["challenge"]["number"]),
        request["transaction_id"],
        request["challenge"],
        "alice",
        "127.0.0.1",
    ]
    assert not [s for s in secrets if s in got.plaintext.decode()]
    # The pending answer tells the app the key to subscribe with, and that it is subscribed.
    answer = transport(pushing)(
        device.state.server_url + "/device/pending",
        {
            "device_id": device.state.device_id,
            "timestamp": int(pushing.clock.now()),
            "signature": _sign(
                device._key, poll_message(device.state.device_id, int(pushing.clock.now()))
            ),
        },
    )
    assert answer["web_push"] == {
        "application_server_key": receiver.server_key,
        "subscribed": True,
    }


@pytest.mark.parametrize("status", [404, 410])
def test_a_gone_subscription_is_removed(pushing: Browser, receiver: Receiver, status: int) -> None:
    pushing.login("alice")
    device = enroll(pushing)
    subscribe(pushing, device, receiver.subscription())
    receiver.status = status
    _start_push(pushing, _mfa_sign_in(pushing))
    assert notifier(pushing).drain(timeout=30)
    assert len(receiver.received) == 1
    assert stored_subscription(pushing, device) is None
    events = pushing.reg.store.list_audit(user_id="alice", event_prefix="push.unsubscribed")
    assert [e.detail["reason"] for e in events] == [f"HTTP {status}"]
    # The next request sends nothing.
    pushing.clock.advance(200)
    _start_push(pushing, _mfa_sign_in(pushing))
    assert notifier(pushing).drain(timeout=30)
    assert len(receiver.received) == 1


def test_a_push_service_that_does_not_answer_never_holds_up_the_sign_in(
    pushing: Browser, receiver: Receiver
) -> None:
    pushing.login("alice")
    device = enroll(pushing)
    subscribe(pushing, device, receiver.subscription())
    receiver.hold.clear()  # the push service takes the request and does not answer
    mfa = _mfa_sign_in(pushing)
    page = _start_push(pushing, mfa)
    # The page has its number while the notice is still in flight...
    assert receiver.arrived.wait(30)
    assert not notifier(pushing).drain(timeout=0)
    # ... and the whole sign-in completes while it still is.
    (request,) = device.pending()
    device.respond(request, page["challenge"]["number"], "approve")
    r = _verify(pushing, mfa, page)
    assert r.status_code == 303 and "/mfa" not in location(r)
    assert not notifier(pushing).drain(timeout=0)
    receiver.hold.set()
    assert notifier(pushing).drain(timeout=30)


def test_an_unreachable_push_service_is_audited_and_the_sign_in_goes_on(
    pushing: Browser, receiver: Receiver
) -> None:
    pushing.login("alice")
    device = enroll(pushing)
    subscription = receiver.subscription()
    receiver.close()  # nothing listens there any more
    subscribe(pushing, device, subscription)
    mfa = _mfa_sign_in(pushing)
    page = _start_push(pushing, mfa)
    assert notifier(pushing).drain(timeout=30)
    (failed,) = pushing.reg.store.list_audit(user_id="alice", event_prefix="push.notify_failed")
    assert failed.detail["reason"] == "ConnectionRefusedError"
    assert subscription["endpoint"] not in str(failed.detail)
    assert stored_subscription(pushing, device) is not None  # a failure is not "gone"
    (request,) = device.pending()
    device.respond(request, page["challenge"]["number"], "approve")
    assert _verify(pushing, mfa, page).status_code == 303


def test_a_subscription_needs_the_devices_signature_and_unsubscribe_forgets_it(
    pushing: Browser, receiver: Receiver
) -> None:
    pushing.login("alice")
    device = enroll(pushing)
    subscription = receiver.subscription()
    now = int(pushing.clock.now())
    forged = {
        "device_id": device.state.device_id,
        "timestamp": now,
        "subscription": subscription,
        "signature": _sign(device._key, unsubscribe_message(device.state.device_id, now)),
    }
    with pytest.raises(DeviceError) as err:
        transport(pushing)(device.state.server_url + "/device/subscribe", forged)
    assert err.value.status == 401
    assert stored_subscription(pushing, device) is None
    subscribe(pushing, device, subscription)
    body = {
        "device_id": device.state.device_id,
        "timestamp": now,
        "signature": _sign(device._key, unsubscribe_message(device.state.device_id, now)),
    }
    answer = transport(pushing)(device.state.server_url + "/device/unsubscribe", body)
    assert answer["result"] == "unsubscribed"
    assert stored_subscription(pushing, device) is None


@pytest.mark.parametrize(
    ("endpoint", "field"),
    [
        pytest.param("http://push.example.com/x", "endpoint", id="http to a public host"),
        pytest.param("https://push.example.com/" + "x" * 1024, "endpoint", id="too long"),
        pytest.param("https://push.example.com/a b", "endpoint", id="a space"),
        pytest.param("https://10.0.0.1/x", "endpoint", id="private address"),
        pytest.param("https://169.254.169.254/x", "endpoint", id="link-local (cloud metadata)"),
        pytest.param("https://user@push.example.com/x", "endpoint", id="userinfo"),
    ],
)
def test_a_bad_endpoint_is_refused(
    pushing: Browser, receiver: Receiver, endpoint: str, field: str
) -> None:
    pushing.login("alice")
    device = enroll(pushing)
    subscription = {**receiver.subscription(), "endpoint": endpoint}
    with pytest.raises(DeviceError) as err:
        subscribe(pushing, device, subscription)
    assert err.value.status == 400 and err.value.body["field"] == field
    assert stored_subscription(pushing, device) is None


def test_without_web_push_there_is_no_subscription_endpoint(browser: Browser) -> None:
    browser.login("alice")
    device = enroll(browser)
    with pytest.raises(DeviceError) as err:
        subscribe(
            browser,
            device,
            {"endpoint": "https://push.example.com/x", "keys": {"p256dh": "", "auth": ""}},
        )
    assert err.value.status == 404 and err.value.body["error"] == "not_configured"
    assert "web_push" not in transport(browser)(
        device.state.server_url + "/device/pending",
        {
            "device_id": device.state.device_id,
            "timestamp": int(browser.clock.now()),
            "signature": _sign(
                device._key, poll_message(device.state.device_id, int(browser.clock.now()))
            ),
        },
    )


def test_a_subscription_made_for_an_earlier_key_is_not_used_and_the_app_is_told(
    pushing: Browser, receiver: Receiver
) -> None:
    from dataclasses import replace

    pushing.login("alice")
    device = enroll(pushing)
    subscribe(pushing, device, receiver.subscription())
    n = notifier(pushing)
    # The operator replaced the VAPID key: the push service would refuse the old subscription.
    n.config = replace(n.config, application_server_key=generate_vapid_keys()[1])
    assert n.info(record_of(pushing, device))["subscribed"] is False
    _start_push(pushing, _mfa_sign_in(pushing))
    assert n.drain(timeout=30)
    assert receiver.received == []


@pytest.mark.parametrize(
    ("ip", "development", "allowed"),
    [
        ("93.184.215.14", False, True),
        ("2606:4700::6810:84e5", False, True),
        ("127.0.0.1", False, False),
        ("127.0.0.1", True, True),
        ("::1", False, False),
        ("10.1.2.3", True, False),
        ("192.168.1.1", False, False),
        ("169.254.169.254", False, False),
        ("100.64.0.1", False, False),
        ("::ffff:127.0.0.1", False, False),
        ("fe80::1%eth0", False, False),
        ("224.0.0.1", False, False),
    ],
)
def test_only_public_unicast_addresses_are_reached(
    ip: str, development: bool, allowed: bool
) -> None:
    from oidc_combinedreg.service.webpush import address_allowed

    assert address_allowed(ip, development=development) is allowed


@pytest.mark.parametrize(
    "endpoint",
    [
        "http://127.0.0.1:8080/push/x",
        "https://127.0.0.1/push/x",
        "https://localhost/push/x",
        "https://[::1]/push/x",
        "https://push.localhost/x",
    ],
)
def test_in_production_loopback_endpoints_are_refused(receiver: Receiver, endpoint: str) -> None:
    from oidc_combinedreg.exceptions import InvalidInput
    from oidc_combinedreg.service.webpush import parse_subscription

    subscription = {**receiver.subscription(), "endpoint": endpoint}
    with pytest.raises(InvalidInput) as err:
        parse_subscription(subscription, development=False)
    assert err.value.field == "endpoint"
    parse_subscription(receiver.subscription(), development=True)  # the tests' receiver


def test_a_name_that_resolves_to_a_refused_address_is_not_connected_to(
    pushing: Browser, receiver: Receiver
) -> None:
    """The endpoint's host name is checked when the socket connects, not only when the device
    subscribed: a name re-pointed to the server's own network (here: localhost, with the server
    in production mode) is refused, and the failure is audited like any other."""
    from oidc_combinedreg.service.webpush import Subscription

    pushing.login("alice")
    device = enroll(pushing)
    subscription = receiver.subscription()
    subscribe(pushing, device, subscription)
    n = notifier(pushing)
    n.development = False
    port = receiver.server.server_port
    moved = Subscription.from_dict(
        {**subscription, "endpoint": f"https://localhost:{port}/push/phone"}
    )
    with pytest.raises(OSError, match="refused address"):
        n.send(moved)
    # Through the background path: audited, nothing reached the receiver.
    record = record_of(pushing, device)
    n._store(record, moved, "push.subscribed", ip=None, reason="app")
    n.notify(record_of(pushing, device))
    assert n.drain(timeout=30)
    assert receiver.received == []
    (failed,) = pushing.reg.store.list_audit(user_id="alice", event_prefix="push.notify_failed")
    assert failed.detail["reason"] == "OSError" and failed.detail["service"] == "localhost"
