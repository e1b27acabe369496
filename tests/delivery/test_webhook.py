"""Texts and calls through the signed webhook, against a real HTTP receiver on loopback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from oidc_combinedreg.delivery.base import Delivery, DeliveryFailed, TextMessage
from oidc_combinedreg.delivery.webhook import WebhookSender, sign, verify_signature

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "core"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from codes_env import make_env  # noqa: E402
from servers import webhook_receiver  # noqa: E402

SECRET = b"s" * 32


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def test_the_receiver_checks_the_signature_and_extracts_the_code_that_registers_the_phone() -> None:
    with webhook_receiver(SECRET, [200]) as (url, receiver):
        env = make_env()
        hook = WebhookSender(url=url, secret=SECRET)
        svc = env.info.mobile_phone
        svc.delivery = Delivery(text=hook, voice=hook)
        _, state = svc.register_begin(
            "alice", number="4155550123", region="US", channel="sms", ip=None
        )
        [request] = receiver.requests
        assert request["signed"]
        payload = request["json"]
        assert payload["channel"] == "sms" and payload["to"] == "+14155550123"
        assert payload["code"] in payload["text"]
        svc.register_complete("alice", state, payload["code"], ip=None)
        assert env.store.list_methods("alice")[0].data["phone"] == "+14155550123"


def test_a_call_goes_through_the_same_webhook() -> None:
    with webhook_receiver(SECRET, [200]) as (url, receiver):
        env = make_env()
        hook = WebhookSender(url=url, secret=SECRET)
        env.info.alternate_phone.delivery = Delivery(text=hook, voice=hook)
        env.info.alternate_phone.register_begin(
            "alice", number="4155550123", region="US", channel="voice", ip=None
        )
        assert receiver.requests[0]["json"]["channel"] == "voice"


def test_a_receiver_answering_500_is_retried_with_backoff_then_reported() -> None:
    with webhook_receiver(SECRET, [500]) as (url, receiver):
        sleeps = Sleeps()
        hook = WebhookSender(url=url, secret=SECRET, attempts=3, backoff=0.5, sleep=sleeps)
        with pytest.raises(DeliveryFailed) as caught:
            hook.send_text(TextMessage(to="+14155550123", body="x"))
        assert len(receiver.requests) == 3 and sleeps.calls == [0.5, 1.0]
        assert "500" in caught.value.reason and "3 attempts" in caught.value.reason


def test_a_500_then_200_succeeds_on_the_retry() -> None:
    with webhook_receiver(SECRET, [500, 200]) as (url, receiver):
        hook = WebhookSender(url=url, secret=SECRET, sleep=Sleeps())
        hook.send_text(TextMessage(to="+14155550123", body="x"))
        assert len(receiver.requests) == 2
        # Each attempt is a new request with the same message id.
        assert receiver.requests[0]["json"]["id"] == receiver.requests[1]["json"]["id"]


def test_a_4xx_is_permanent_and_not_retried() -> None:
    with webhook_receiver(b"another secret of 32 bytes......", [200]) as (url, receiver):
        hook = WebhookSender(url=url, secret=SECRET, sleep=Sleeps())
        with pytest.raises(DeliveryFailed) as caught:
            hook.send_text(TextMessage(to="+14155550123", body="x"))
        assert caught.value.permanent and len(receiver.requests) == 1
        assert not receiver.requests[0]["signed"]  # wrong secret: the receiver answered 401


def test_an_unreachable_gateway_is_reported_after_the_retries() -> None:
    hook = WebhookSender(url="http://127.0.0.1:9/send", secret=SECRET, sleep=Sleeps(), timeout=1)
    with pytest.raises(DeliveryFailed, match="cannot reach the gateway"):
        hook.send_text(TextMessage(to="+14155550123", body="x"))


@pytest.mark.parametrize(
    ("change", "ok"),
    [
        pytest.param({}, True, id="as sent"),
        pytest.param({"body": b'{"to":"+1999"}'}, False, id="a changed body"),
        pytest.param({"now": 1_700_000_000 + 301}, False, id="too old: a replay"),
        pytest.param({"secret": b"x" * 32}, False, id="another secret"),
    ],
)
def test_verify_signature(change: dict[str, object], ok: bool) -> None:
    body = b'{"to":"+14155550123"}'
    headers = {
        "X-Combinedreg-Timestamp": "1700000000",
        "X-Combinedreg-Signature": sign(SECRET, 1_700_000_000, body),
    }
    args: dict[str, object] = {"secret": SECRET, "body": body, "now": 1_700_000_000}
    args.update(change)
    assert (
        verify_signature(
            args["secret"],
            headers,
            args["body"],
            now=args["now"],  # type: ignore[arg-type]
        )
        is ok
    )
