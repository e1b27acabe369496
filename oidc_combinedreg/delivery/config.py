"""The ``[delivery]`` table: which provider sends email, texts and calls, and the code rules.

::

    [delivery]
    public_url = "https://idp.example.com"     # for links in emails ("This wasn't me")

    [delivery.email]
    provider = "smtp"                           # smtp | console | none
    host = "smtp.example.com"
    port = 587
    security = "starttls"                       # starttls | tls | none
    username = "idp"
    password_env = "SMTP_PASSWORD"              # or password = "..."
    from = "Contoso <no-reply@example.com>"

    [delivery.text]                             # and [delivery.voice], same keys
    provider = "webhook"                        # webhook | twilio | console | none
    url = "https://sms-gateway.internal/send"
    secret_env = "SMS_WEBHOOK_SECRET"           # or secret = "..." (at least 16 bytes)

    [delivery.twilio]                           # when a provider is "twilio"
    account_sid = "AC..."
    auth_token_env = "TWILIO_AUTH_TOKEN"
    from_number = "+14155550100"

    [delivery.codes]                            # see methods/otp_codes.py
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from enum import StrEnum
from urllib.parse import urlsplit

from ..config.model import Environment
from ..config.reader import Reader
from ..methods.otp_codes import CodePolicy, read_code_policy
from .base import Delivery, EmailSender, TextSender, VoiceCaller
from .smtp import SmtpSecurity

__all__ = [
    "DeliveryConfig",
    "EmailProvider",
    "PhoneProvider",
    "PhoneProviderConfig",
    "SmtpConfig",
    "TwilioConfig",
    "build_delivery",
    "read_delivery",
]


class EmailProvider(StrEnum):
    SMTP = "smtp"
    CONSOLE = "console"
    NONE = "none"


class PhoneProvider(StrEnum):
    WEBHOOK = "webhook"
    TWILIO = "twilio"
    CONSOLE = "console"
    NONE = "none"


@dataclass(frozen=True, kw_only=True, slots=True)
class SmtpConfig:
    host: str = "localhost"
    port: int = 587
    security: SmtpSecurity = SmtpSecurity.STARTTLS
    username: str = ""
    password: str = field(default="", repr=False)
    sender: str = ""
    timeout: float = 10.0


@dataclass(frozen=True, kw_only=True, slots=True)
class PhoneProviderConfig:
    provider: PhoneProvider = PhoneProvider.NONE
    url: str = ""
    secret: bytes = field(default=b"", repr=False)
    timeout: float = 5.0
    attempts: int = 3


@dataclass(frozen=True, kw_only=True, slots=True)
class TwilioConfig:
    account_sid: str = ""
    auth_token: str = field(default="", repr=False)
    from_number: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryConfig:
    #: the site's public base URL, for links in emails ("" = no "This wasn't me" link)
    public_url: str = ""
    email: EmailProvider = EmailProvider.NONE
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    text: PhoneProviderConfig = field(default_factory=PhoneProviderConfig)
    voice: PhoneProviderConfig = field(default_factory=PhoneProviderConfig)
    twilio: TwilioConfig = field(default_factory=TwilioConfig)
    codes: CodePolicy = field(default_factory=CodePolicy)


def _secret(r: Reader, key: str) -> str:
    """``key`` inline, or ``key_env`` naming an environment variable (kept out of the file)."""
    inline = r.string(key, "")
    env_name = r.string(f"{key}_env", "")
    if inline and env_name:
        r.error(f"{key}_env", f"expected either {key} or {key}_env, not both")
    if env_name:
        value = os.environ.get(env_name, "")
        if not value:
            r.error(f"{key}_env", f"the environment variable {env_name!r} is not set")
        return value
    return inline


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _read_smtp(r: Reader, env: Environment) -> SmtpConfig:
    base = SmtpConfig()
    cfg = SmtpConfig(
        host=r.string("host", base.host, non_empty=True),
        port=r.integer("port", base.port, min=1, max=65535),
        security=r.choice("security", SmtpSecurity, SmtpSecurity.STARTTLS),
        username=r.string("username", ""),
        password=_secret(r, "password"),
        sender=r.string("from", "", non_empty=True) if r.has("from") else "",
        timeout=float(r.integer("timeout", 10, min=1, max=120)),
    )
    if not cfg.sender:
        r.error("from", "required: expected the sender address, e.g. 'no-reply@example.com'")
    if (
        env is Environment.PRODUCTION
        and cfg.security is SmtpSecurity.NONE
        and not _is_loopback(cfg.host)
    ):
        r.error("security", "expected 'starttls' or 'tls' for a non-loopback host in production")
    return cfg


def _read_phone(r: Reader, env: Environment) -> PhoneProviderConfig:
    provider = r.choice("provider", PhoneProvider, PhoneProvider.NONE)
    cfg = PhoneProviderConfig(provider=provider)
    if provider is not PhoneProvider.NONE:
        from ..extras import missing_extra

        # Phone numbers are parsed and checked with phonenumbers ([phone] extra).
        if (problem := missing_extra("phone")) is not None:
            r.error("provider", f"a phone provider {problem}")
    if provider is PhoneProvider.WEBHOOK:
        url = r.string("url", "", non_empty=True)
        secret = _secret(r, "secret").encode()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            r.error("url", f"expected an http(s) URL, got {url!r}")
        elif (
            env is Environment.PRODUCTION
            and parts.scheme != "https"
            and not _is_loopback(parts.hostname)
        ):
            r.error("url", "expected an https URL in production")
        if len(secret) < 16:
            r.error("secret", "expected a shared secret of at least 16 bytes")
        cfg = PhoneProviderConfig(
            provider=provider,
            url=url,
            secret=secret,
            timeout=float(r.integer("timeout", 5, min=1, max=60)),
            attempts=r.integer("attempts", 3, min=1, max=5),
        )
    if provider is PhoneProvider.CONSOLE and env is Environment.PRODUCTION:
        r.error(
            "provider", "the console provider is refused when general.environment is 'production'"
        )
    r.done()
    return cfg


def _read_twilio(r: Reader, needed: bool) -> TwilioConfig:
    cfg = TwilioConfig(
        account_sid=r.string("account_sid", ""),
        auth_token=_secret(r, "auth_token"),
        from_number=r.string("from_number", ""),
    )
    if needed:
        for key in ("account_sid", "auth_token", "from_number"):
            if not getattr(cfg, key):
                r.error(key, "required when a delivery provider is 'twilio'")
    r.done()
    return cfg


def read_delivery(root: Reader, env: Environment) -> DeliveryConfig:
    """Read ``[delivery]`` (every part optional: no provider means the methods cannot send)."""
    r = root.section("delivery")
    public_url = r.string("public_url", "").rstrip("/")
    if public_url and urlsplit(public_url).scheme not in ("http", "https"):
        r.error("public_url", f"expected an absolute http(s) URL, got {public_url!r}")
    er = r.section("email")
    email = er.choice("provider", EmailProvider, EmailProvider.NONE)
    if email is EmailProvider.CONSOLE and env is Environment.PRODUCTION:
        er.error(
            "provider", "the console provider is refused when general.environment is 'production'"
        )
    smtp = _read_smtp(er, env) if email is EmailProvider.SMTP else SmtpConfig()
    er.done()
    text = _read_phone(r.section("text"), env)
    voice = _read_phone(r.section("voice"), env)
    needs_twilio = PhoneProvider.TWILIO in (text.provider, voice.provider)
    cfg = DeliveryConfig(
        public_url=public_url,
        email=email,
        smtp=smtp,
        text=text,
        voice=voice,
        twilio=_read_twilio(r.section("twilio"), needs_twilio),
        codes=read_code_policy(r.section("codes")),
    )
    r.done()
    return cfg


def _phone_sender(cfg: PhoneProviderConfig, twilio: TwilioConfig) -> TextSender | None:
    if cfg.provider is PhoneProvider.WEBHOOK:
        from .webhook import WebhookSender

        return WebhookSender(
            url=cfg.url, secret=cfg.secret, timeout=cfg.timeout, attempts=cfg.attempts
        )
    if cfg.provider is PhoneProvider.TWILIO:
        from .twilio import TwilioSender

        return TwilioSender(
            account_sid=twilio.account_sid,
            auth_token=twilio.auth_token,
            from_number=twilio.from_number,
        )
    if cfg.provider is PhoneProvider.CONSOLE:
        from .console import ConsoleSender

        return ConsoleSender()
    return None


def build_delivery(cfg: DeliveryConfig) -> Delivery:
    """The providers the config names (the shipped ones; hosts may pass their own instead)."""
    email: EmailSender | None = None
    if cfg.email is EmailProvider.SMTP:
        from .smtp import SmtpSender

        s = cfg.smtp
        email = SmtpSender(
            host=s.host,
            port=s.port,
            sender=s.sender,
            security=s.security,
            username=s.username,
            password=s.password,
            timeout=s.timeout,
        )
    elif cfg.email is EmailProvider.CONSOLE:
        from .console import ConsoleSender

        email = ConsoleSender()
    text = _phone_sender(cfg.text, cfg.twilio)
    voice_sender = _phone_sender(cfg.voice, cfg.twilio)
    voice: VoiceCaller | None = voice_sender if isinstance(voice_sender, VoiceCaller) else None
    return Delivery(email=email, text=text, voice=voice)
