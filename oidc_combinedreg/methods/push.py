"""Push authenticator with number matching: the protocol's pure parts. No I/O.

The device (a phone app, or ``combinedreg authenticator``) holds a P-256 key pair it generated
itself; the server keeps the public key. Every message the device sends that changes something is
an ECDSA P-256 / SHA-256 signature over a canonical text (:func:`enroll_message`,
:func:`poll_message`, :func:`response_message`), so the server needs no shared secret with the
device and a copy of the store cannot approve anything. docs/methods/push.md is the full protocol.

The verb pair matches every other method: ``register_begin``/``register_complete`` (QR code ->
device key), ``authenticate_begin``/``authenticate_complete`` (number shown in the browser ->
signed answer from the device). The caller (``service/push.py``) keeps state in the store.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ..exceptions import ChallengeExpired, InvalidInput, VerificationFailed
from .kinds import METHOD_RULES, MethodKind

# The key and signature code loads with the first device request, not with the package
# (benchmarks/import_time.py).
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = [
    "PROTOCOL",
    "Decision",
    "EnrollmentPayload",
    "Outcome",
    "PushMethod",
    "PushRequest",
    "b64d",
    "b64e",
    "device_id_for",
    "enroll_message",
    "load_public_key",
    "poll_message",
    "remove_message",
    "response_message",
    "verify_signature",
]

#: the protocol's name and version, first line of every signed message
PROTOCOL = "combinedreg-push-v1"
#: the QR code's URI scheme
SCHEME = "combinedreg-push"
#: how many numbers the device offers (one is the number the browser shows)
CHOICES = 3
_MAX_NAME = 64


class Decision(StrEnum):
    """What the device's user chose."""

    APPROVE = "approve"
    DENY = "deny"
    #: deny, and flag the request as "this wasn't me" (audited; the user should change the password)
    REPORT = "report"


class Outcome(StrEnum):
    """What became of one sign-in request."""

    APPROVED = "approved"
    DENIED = "denied"
    #: approved, but with a number other than the one the browser showed: treated as a denial
    WRONG_NUMBER = "wrong_number"
    REPORTED = "reported"


# -- encoding -------------------------------------------------------------------------------------


def b64e(data: bytes) -> str:
    """base64url without padding (the protocol's only binary encoding)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64d(text: object, field: str = "value") -> bytes:
    """Strict base64url decoding; :class:`InvalidInput` for anything else."""
    if not isinstance(text, str) or len(text) > 4096:
        raise InvalidInput(field, "expected base64url text")
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidInput(field, "expected base64url text") from None


# -- keys and signatures --------------------------------------------------------------------------


def load_public_key(encoded: object) -> ec.EllipticCurvePublicKey:
    """A P-256 public key from base64url SubjectPublicKeyInfo DER; anything else is refused."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec

    der = b64d(encoded, "public_key")
    try:
        key = serialization.load_der_public_key(der)
    except (ValueError, TypeError):
        raise InvalidInput("public_key", "not a DER public key") from None
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise InvalidInput("public_key", "expected a P-256 key")
    return key


def public_key_der(key: ec.EllipticCurvePublicKey) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def device_id_for(spki_der: bytes) -> str:
    """The device id: SHA-256 of its public key. Derived, so one key can be registered once."""
    return b64e(hashlib.sha256(spki_der).digest())


def verify_signature(spki_der: bytes, message: bytes, signature: object) -> None:
    """ECDSA P-256 SHA-256 (DER signature, base64url); :class:`VerificationFailed` if wrong."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec

    key = load_public_key(b64e(spki_der))
    try:
        key.verify(b64d(signature, "signature"), message, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise VerificationFailed("signature") from None


def _message(*parts: str) -> bytes:
    for part in parts:
        if "\n" in part:
            raise InvalidInput("message", "a field contains a line break")
    return "\n".join((PROTOCOL, *parts)).encode("utf-8")


def enroll_message(token: str, public_key: str, device_name: str) -> bytes:
    """Proof that the enrolling device holds the private key of ``public_key``."""
    return _message("enroll", token, public_key, device_name)


def poll_message(device_id: str, timestamp: int) -> bytes:
    return _message("pending", device_id, str(timestamp))


def remove_message(device_id: str, timestamp: int) -> bytes:
    """The device asks the server to forget it (the app removed the account)."""
    return _message("remove", device_id, str(timestamp))


def response_message(txid: str, challenge: str, number: int, decision: str) -> bytes:
    """The answer to one request: transaction, its challenge, the number picked, the decision."""
    return _message("respond", txid, challenge, str(number), decision)


# -- the QR code ----------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class EnrollmentPayload:
    """What the QR code carries."""

    server_url: str
    token: str
    account: str
    issuer: str

    def uri(self) -> str:
        query = urlencode(
            {
                "v": "1",
                "url": self.server_url,
                "token": self.token,
                "account": self.account,
                "issuer": self.issuer,
            }
        )
        return f"{SCHEME}://enroll?{query}"

    @classmethod
    def parse(cls, text: str) -> EnrollmentPayload:
        parts = urlsplit(text.strip())
        if parts.scheme != SCHEME or parts.netloc != "enroll":
            raise InvalidInput("payload", f"expected a {SCHEME}://enroll?... URI")
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if query.get("v") != "1":
            raise InvalidInput("payload", "unsupported protocol version")
        try:
            return cls(
                server_url=query["url"],
                token=query["token"],
                account=query.get("account", ""),
                issuer=query.get("issuer", ""),
            )
        except KeyError as exc:
            raise InvalidInput("payload", f"missing {exc.args[0]}") from None


# -- sign-in requests -----------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class PushRequest:
    """One sign-in approval request, as the server keeps it (the device never sees ``number``)."""

    txid: str
    challenge: str
    #: the two-digit number the browser shows
    number: int
    #: what the device offers, in random order; ``number`` is one of them
    choices: tuple[int, ...]
    #: SHA-256 of a nonce kept in the requesting session: the result is only for that session
    binding: str
    created_at: float
    expires_at: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "txid": self.txid,
            "challenge": self.challenge,
            "number": self.number,
            "choices": list(self.choices),
            "binding": self.binding,
            "created_at": self.created_at,
            "expires_at": self.expires_at,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PushRequest:
        return cls(
            txid=str(data["txid"]),
            challenge=str(data["challenge"]),
            number=int(data["number"]),
            choices=tuple(int(n) for n in data["choices"]),
            binding=str(data["binding"]),
            created_at=float(data["created_at"]),
            expires_at=float(data["expires_at"]),
        )


def binding_of(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def _number_choices() -> tuple[int, tuple[int, ...]]:
    rng = secrets.SystemRandom()
    picked = rng.sample(range(10, 100), CHOICES)
    shown = list(picked)
    rng.shuffle(shown)
    return picked[0], tuple(shown)


def parse_device_name(raw: object) -> str:
    if not isinstance(raw, str) or not raw.strip() or len(raw) > _MAX_NAME:
        raise InvalidInput("device_name", f"expected a name of 1 to {_MAX_NAME} characters")
    name = " ".join(raw.split())
    if not name.isprintable():
        raise InvalidInput("device_name", "expected printable characters")
    return name


def parse_decision(raw: object) -> Decision:
    try:
        return Decision(str(raw))
    except ValueError:
        raise InvalidInput("decision", "expected approve, deny or report") from None


def parse_number(raw: object) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= 99:
        raise InvalidInput("number", "expected an integer from 0 to 99")
    return raw


class PushMethod:
    """The push authenticator's rules; time comes in as ``now``."""

    kind = MethodKind.PUSH
    rules = METHOD_RULES[MethodKind.PUSH]

    def __init__(self, *, request_ttl: int = 120, enrollment_ttl: int = 600) -> None:
        self.request_ttl = request_ttl
        self.enrollment_ttl = enrollment_ttl

    # -- registration -------------------------------------------------------------------------

    def register_begin(self, *, now: float) -> tuple[str, dict[str, Any]]:
        """A one-time enrollment token (for the QR code) and the state to keep, by its hash."""
        token = secrets.token_urlsafe(32)
        return token, {"token_hash": token_hash(token), "expires": now + self.enrollment_ttl}

    def register_complete(
        self, state: dict[str, Any] | None, body: dict[str, Any], *, now: float
    ) -> tuple[bytes, str]:
        """Check the device's enrollment; returns ``(public key DER, device name)``.

        ``state`` is the enrollment challenge the caller *took* (single use) for this token.
        """
        if state is None or float(state.get("expires", 0)) <= now:
            raise ChallengeExpired("unknown, used or expired enrollment token")
        token, encoded = body.get("token"), body.get("public_key")
        if not isinstance(token, str) or not hmac.compare_digest(
            token_hash(token), str(state.get("token_hash", ""))
        ):
            raise ChallengeExpired("unknown, used or expired enrollment token")
        name = parse_device_name(body.get("device_name"))
        spki = public_key_der(load_public_key(encoded))
        verify_signature(spki, enroll_message(token, str(encoded), name), body.get("signature"))
        return spki, name

    # -- sign-in ------------------------------------------------------------------------------

    def authenticate_begin(self, *, now: float) -> tuple[PushRequest, str]:
        """A new request and the nonce the requesting session keeps (its hash binds the result)."""
        number, choices = _number_choices()
        nonce = secrets.token_urlsafe(32)
        request = PushRequest(
            txid=secrets.token_urlsafe(16),
            challenge=secrets.token_urlsafe(32),
            number=number,
            choices=choices,
            binding=binding_of(nonce),
            created_at=now,
            expires_at=now + self.request_ttl,
        )
        return request, nonce

    def authenticate_complete(
        self, request: PushRequest, spki_der: bytes, body: dict[str, Any], *, now: float
    ) -> Outcome:
        """The outcome of the device's signed answer. Raises before anything is decided if the
        signature or the input is wrong, so a forged answer cannot use up the request."""
        if request.expires_at <= now:
            raise ChallengeExpired("the request expired")
        decision = parse_decision(body.get("decision"))
        number = parse_number(body.get("number"))
        message = response_message(request.txid, request.challenge, number, decision.value)
        verify_signature(spki_der, message, body.get("signature"))
        if decision is Decision.REPORT:
            return Outcome.REPORTED
        if decision is Decision.DENY:
            return Outcome.DENIED
        return Outcome.APPROVED if number == request.number else Outcome.WRONG_NUMBER

    def session_matches(self, request_binding: str, nonce: object) -> bool:
        return isinstance(nonce, str) and hmac.compare_digest(request_binding, binding_of(nonce))

    @staticmethod
    def timestamp_fresh(timestamp: object, now: float, skew: int) -> bool:
        return (
            isinstance(timestamp, int)
            and not isinstance(timestamp, bool)
            and abs(timestamp - now) <= skew
        )


def token_hash(token: str) -> str:
    """Enrollment tokens are 256-bit random: a plain SHA-256 is enough to keep them out of the store."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
