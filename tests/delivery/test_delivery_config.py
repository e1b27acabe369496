"""The [delivery] table: providers chosen in config, refused where unsafe, errors named by path."""

from __future__ import annotations

import importlib.util
from typing import Any

import pytest

from oidc_combinedreg.config import parse_config
from oidc_combinedreg.crypto import generate_key
from oidc_combinedreg.delivery.config import build_delivery
from oidc_combinedreg.delivery.console import ConsoleSender
from oidc_combinedreg.delivery.smtp import SmtpSender
from oidc_combinedreg.delivery.webhook import WebhookSender
from oidc_combinedreg.exceptions import ConfigError


def _config(env: str, delivery: dict[str, Any]) -> Any:
    return parse_config(
        {
            "general": {"environment": env},
            "secrets": {"encryption_keys": [generate_key()]},
            "delivery": delivery,
        }
    )


@pytest.mark.parametrize(
    ("delivery", "path"),
    [
        pytest.param(
            {"email": {"provider": "console"}},
            "delivery.email.provider",
            id="console email in production",
        ),
        pytest.param(
            {"text": {"provider": "console"}},
            "delivery.text.provider",
            id="console texts in production",
        ),
        pytest.param(
            {"text": {"provider": "webhook", "url": "http://gw.example/send", "secret": "s" * 32}},
            "delivery.text.url",
            id="a plain-http webhook in production",
        ),
        pytest.param(
            {"voice": {"provider": "webhook", "url": "https://gw.example/send", "secret": "short"}},
            "delivery.voice.secret",
            id="a short webhook secret",
        ),
        pytest.param(
            {
                "email": {
                    "provider": "smtp",
                    "host": "smtp.example",
                    "security": "none",
                    "from": "a@b.example",
                }
            },
            "delivery.email.security",
            id="plain smtp to a remote host in production",
        ),
        pytest.param(
            {"email": {"provider": "smtp", "host": "smtp.example"}},
            "delivery.email.from",
            id="smtp without a sender",
        ),
        pytest.param(
            {"text": {"provider": "twilio"}},
            "delivery.twilio.account_sid",
            id="twilio without an account",
        ),
        pytest.param({"codes": {"digits": 5}}, "delivery.codes.digits", id="five-digit codes"),
        pytest.param({"codes": {"ttl": 7200}}, "delivery.codes.ttl", id="two-hour codes"),
        pytest.param({"fax": {}}, "delivery.fax", id="an unknown key"),
    ],
)
def test_unsafe_or_wrong_settings_are_refused_with_their_path(
    delivery: dict[str, Any], path: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        _config("production", delivery)
    assert any(p.path == path for p in caught.value.problems), caught.value.problems


def test_console_is_fine_in_development() -> None:
    built = build_delivery(
        _config(
            "development", {"email": {"provider": "console"}, "text": {"provider": "console"}}
        ).delivery
    )
    assert isinstance(built.email, ConsoleSender) and isinstance(built.text, ConsoleSender)
    assert built.voice is None


def test_smtp_and_webhook_are_built_from_the_config(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOOK_SECRET", "h" * 32)
    cfg = _config(
        "production",
        {
            "public_url": "https://idp.example",
            "email": {
                "provider": "smtp",
                "host": "smtp.example",
                "port": 465,
                "security": "tls",
                "from": "no-reply@example.com",
            },
            "text": {
                "provider": "webhook",
                "url": "https://gw.example/send",
                "secret_env": "HOOK_SECRET",
            },
            "voice": {
                "provider": "webhook",
                "url": "https://gw.example/call",
                "secret_env": "HOOK_SECRET",
            },
        },
    )
    built = build_delivery(cfg.delivery)
    assert isinstance(built.email, SmtpSender) and built.email.port == 465
    assert isinstance(built.text, WebhookSender) and built.text.secret == b"h" * 32
    assert isinstance(built.voice, WebhookSender) and built.voice.url.endswith("/call")


def test_a_missing_secret_variable_is_named() -> None:
    with pytest.raises(ConfigError, match="HOOK_SECRET_MISSING"):
        _config(
            "development",
            {
                "text": {
                    "provider": "webhook",
                    "url": "https://gw.example/s",
                    "secret_env": "HOOK_SECRET_MISSING",
                }
            },
        )


@pytest.mark.skipif(importlib.util.find_spec("twilio") is not None, reason="twilio is installed")
def test_twilio_without_the_extra_says_how_to_install_it() -> None:
    cfg = _config(
        "production",
        {
            "text": {"provider": "twilio"},
            "twilio": {"account_sid": "AC1", "auth_token": "t", "from_number": "+14155550100"},
        },
    )
    with pytest.raises(ConfigError, match=r"pip install oidc-combinedreg\[twilio\]"):
        build_delivery(cfg.delivery)


def test_twilio_adapter_with_a_fake_client() -> None:
    from oidc_combinedreg.delivery.base import TextMessage, VoiceMessage
    from oidc_combinedreg.delivery.twilio import TwilioSender

    sent: list[dict[str, str]] = []

    class Endpoint:
        def create(self, **kw: str) -> None:
            sent.append(kw)

    class Client:
        messages = Endpoint()
        calls = Endpoint()

    sender = TwilioSender(account_sid="AC1", auth_token="t", from_number="+1415", client=Client())
    sender.send_text(TextMessage(to="+1999", body="code 123456"))
    sender.call(VoiceMessage(to="+1999", say="1, 2 & 3", lang="en"))
    assert sent[0] == {"to": "+1999", "from_": "+1415", "body": "code 123456"}
    assert '<Say language="en">1, 2 &amp; 3</Say>' in sent[1]["twiml"]
