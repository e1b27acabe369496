"""The ``[methods.push.web_push]`` table: Web Push notifications to the authenticator web app.

RFC 8030 (the push protocol), RFC 8291 (message encryption, ``aes128gcm``), RFC 8292 (VAPID: the
application server identifies itself with a P-256 key pair). The table is optional; present, it
needs the private key (inline or in a file), the subject, and the ``webpush`` extra.
``combinedreg generate-vapid-keys`` prints a table to paste (docs/methods/push.md).
"""

from __future__ import annotations

import base64
import binascii
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ..extras import missing_extra
from .reader import Reader

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

# cryptography's key modules are imported where a key is read or made, not at import: a host
# whose config has no Web Push table never loads them (tests/packaging/test_lazy_imports.py).

__all__ = ["WebPushConfig", "generate_vapid_keys", "read_web_push", "vapid_keys"]

#: RFC 8292 2.1: a contact for the push service's operator: a mailto: address or an https URL
_MAILTO = re.compile(r"mailto:[^@\s]+@[^@\s]+\.[^@\s]+")


@dataclass(frozen=True, kw_only=True, slots=True)
class WebPushConfig:
    #: the VAPID private key: the raw 32-byte P-256 scalar (RFC 8292 3.2's key pair)
    vapid_private_key: bytes = field(repr=False)
    #: the application server key the app subscribes with: base64url of the uncompressed P-256
    #: public point (65 bytes, RFC 8292 3.2), derived from the private key
    application_server_key: str
    #: the JWT ``sub`` claim (RFC 8292 2.1): ``mailto:`` address or ``https:`` URL
    subject: str
    #: seconds the push service keeps an undelivered notice (RFC 8030 5.2 ``TTL``); a notice
    #: about a sign-in request is useless once the request expired
    ttl: int = 120
    #: seconds for each network step of one send (connect, TLS, answer): a slow push service
    #: never keeps a sign-in waiting (sends run in the background anyway)
    timeout: int = 5


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def vapid_keys(private: ec.EllipticCurvePrivateKey) -> tuple[str, str]:
    """``(private, public)``: base64url of the raw scalar and of the uncompressed public point."""
    from cryptography.hazmat.primitives import serialization

    scalar = private.private_numbers().private_value.to_bytes(32, "big")
    point = private.public_key().public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )
    return _b64url(scalar), _b64url(point)


def generate_vapid_keys() -> tuple[str, str]:
    """A new VAPID key pair, as :func:`vapid_keys` gives it."""
    from cryptography.hazmat.primitives.asymmetric import ec

    return vapid_keys(ec.generate_private_key(ec.SECP256R1()))


def _parse_private_key(text: str) -> ec.EllipticCurvePrivateKey:
    """The raw base64url scalar ``generate-vapid-keys`` prints, or a PEM (PKCS#8 or SEC 1)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(text.encode(), password=None)
        except (TypeError, UnsupportedAlgorithm) as exc:  # encrypted, or not a key we know
            raise ValueError(f"expected an unencrypted PEM private key ({exc})") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(
            key.curve, ec.SECP256R1
        ):
            raise ValueError("expected a P-256 (prime256v1) EC key")
        return key
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("expected base64url text") from None
    if len(raw) != 32:
        raise ValueError(f"expected 32 bytes (a raw P-256 private key), got {len(raw)}")
    return ec.derive_private_key(int.from_bytes(raw, "big"), ec.SECP256R1())


def _read_key(r: Reader, base_dir: Path) -> ec.EllipticCurvePrivateKey | None:
    inline = r.string("vapid_private_key", "")
    file = r.string("vapid_private_key_file", "")
    if bool(inline) == bool(file):
        r.error(
            None,
            "expected exactly one of vapid_private_key and vapid_private_key_file "
            "(generate a key pair: combinedreg generate-vapid-keys)",
        )
        return None
    key, text = ("vapid_private_key", inline) if inline else ("vapid_private_key_file", "")
    if file:
        path = Path(file) if os.path.isabs(file) else base_dir / file
        try:
            text = path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            r.error(key, f"cannot read {str(path)!r}: {reason}")
            return None
    try:
        return _parse_private_key(text)
    except ValueError as exc:
        r.error(key, f"expected a P-256 private key (base64url raw key or PEM): {exc}")
        return None


def _read_subject(r: Reader) -> str:
    subject = r.string("subject").strip()
    parts = urlsplit(subject)
    ok = bool(_MAILTO.fullmatch(subject)) or (parts.scheme == "https" and bool(parts.hostname))
    if subject and not ok:
        r.error(
            "subject",
            f"expected a mailto: address or an https URL (RFC 8292 2.1), got {subject!r}",
        )
    return subject


def read_web_push(
    r: Reader, base_dir: Path, *, request_ttl: int, web_app: bool
) -> WebPushConfig | None:
    """Read ``[methods.push.web_push]``; None when the table is absent (Web Push off)."""
    key = _read_key(r, base_dir)
    subject = _read_subject(r)
    ttl = r.integer("ttl", min(120, request_ttl), min=0, max=600)
    timeout = r.integer("timeout", 5, min=1, max=30)
    r.done()
    if ttl > request_ttl:
        r.error("ttl", f"expected at most methods.push.request_ttl ({request_ttl}), got {ttl}")
    if not web_app:
        r.error(None, "expected methods.push.web_app = true: Web Push notifies the web app")
    problem = missing_extra("webpush")
    if problem:
        r.error(None, problem)
    if key is None:
        return None
    private, public = vapid_keys(key)
    return WebPushConfig(
        vapid_private_key=base64.urlsafe_b64decode(private + "=" * (-len(private) % 4)),
        application_server_key=public,
        subject=subject,
        ttl=ttl,
        timeout=timeout,
    )
