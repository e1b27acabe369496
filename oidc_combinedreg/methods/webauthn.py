"""FIDO2 security keys and passkeys (WebAuthn) with python-fido2: the ceremonies, no I/O.

fido2's ``Fido2Server`` checks type, origin, challenge, rpIdHash, UP, UV-when-required and the
signature. This module adds what it leaves to the relying party (SECURITY.md cases 39-45):
``crossOrigin``/``topOrigin``, BS without BE, a BE flag that changed, the credential id length and
its match with ``rawId``, the offered algorithms, known attestation formats, the AAGUID allow-list,
the ceremony a challenge belongs to, its expiry, the ``userHandle`` and the sign counter. Every
fido2 failure (a bare ``ValueError``, or an attestation exception) becomes one of our exceptions:
``InvalidInput("credential", ...)`` for what cannot be parsed, ``VerificationFailed(reason)`` for
what parses but does not verify, ``ChallengeExpired`` for a challenge that cannot be used.

The caller keeps ``state`` server side (single use: the service puts it in the store's
``take_challenge``) and persists what :meth:`WebAuthnMethod.register_complete` returns.
"""

from __future__ import annotations

import base64
import json
import secrets
import struct
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from typing import TYPE_CHECKING, Any

from ..config.webauthn import WebAuthnConfig
from ..exceptions import ChallengeExpired, InvalidInput, VerificationFailed
from .kinds import METHOD_RULES, MethodKind

# fido2 (and the cryptography.x509 its attestation formats load) is imported where a ceremony
# runs, not with this module: a host that never sees a security key pays nothing for it at import
# (benchmarks/import_time.py). The types below are for the annotations only.
if TYPE_CHECKING:
    from fido2.attestation.base import AttestationVerifier
    from fido2.cose import CoseKey
    from fido2.server import Fido2Server
    from fido2.webauthn import AuthenticatorData, UserVerificationRequirement

__all__ = [
    "MAX_CREDENTIAL_ID",
    "OFFERED_ALGORITHMS",
    "Assertion",
    "CounterRegression",
    "NewCredential",
    "WebAuthnMethod",
    "check_counter",
    "clean_label",
]

#: WebAuthn L3: a credential id is at most 1023 bytes
MAX_CREDENTIAL_ID = 1023
#: COSE algorithms offered: ES256, EdDSA, RS256 (what every authenticator and platform supports)
OFFERED_ALGORITHMS = (-7, -8, -257)
#: attestation statement formats of the WebAuthn registry that fido2 understands
KNOWN_FORMATS = frozenset(
    {"none", "packed", "fido-u2f", "tpm", "android-key", "android-safetynet", "apple"}
)
#: a browser's JSON response is a few KB; anything much larger is refused before parsing
MAX_RESPONSE = 32 * 1024
LABEL_MAX = 64
REGISTER = "register"
AUTHENTICATE = "authenticate"
#: how long the browser may take (the options' timeout, milliseconds)
TIMEOUT_MS = 120_000


class CounterRegression(VerificationFailed):
    """The sign counter did not go up: a cloned authenticator, or a replayed assertion."""

    def __init__(self, stored: int, received: int) -> None:
        #: the counter we had
        self.stored = stored
        #: the counter the authenticator sent
        self.received = received
        super().__init__("counter_regression")


@dataclass(frozen=True, kw_only=True, slots=True)
class NewCredential:
    """What a successful registration yields: everything to persist (none of it secret)."""

    credential_id: bytes
    #: ``bytes(AttestedCredentialData)``: AAGUID, credential id and COSE public key
    credential_data: bytes
    counter: int
    aaguid: str
    alg: int
    user_verified: bool
    backup_eligible: bool
    backed_up: bool
    fmt: str


@dataclass(frozen=True, kw_only=True, slots=True)
class Assertion:
    """What a successful authentication proved."""

    credential_id: bytes
    counter: int
    user_verified: bool
    backed_up: bool

    def amr(self, *, backup_eligible: bool) -> tuple[str, ...]:
        """RFC 8176 values: ``hwk`` for a device-bound key, ``swk`` for a synced passkey (BE=1),
        plus ``user`` when the authenticator verified the user (PIN or biometric)."""
        values = ["swk" if backup_eligible else "hwk"]
        if self.user_verified:
            values.append("user")
        return tuple(values)


def b64(data: bytes) -> str:
    """base64url without padding (WebAuthn's encoding, as fido2's ``websafe_encode``)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64(text: str) -> bytes:
    """The inverse of :func:`b64` (as fido2's ``websafe_decode``: padding optional)."""
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def clean_label(text: object) -> str:
    """The user's name for a key: trimmed, 1-64 printable characters."""
    label = " ".join(text.split()) if isinstance(text, str) else ""
    if not label:
        raise InvalidInput("name", "Enter a name for your security key.")
    if len(label) > LABEL_MAX or not label.isprintable():
        raise InvalidInput("name", "Use at most 64 letters, digits and spaces.")
    return label


def check_counter(stored: int, received: int) -> bool:
    """True if ``received`` must be stored (it went up); raise :class:`CounterRegression` if it
    did not. Authenticators without a counter send 0 forever: 0 after 0 is allowed."""
    if received > stored:
        return True
    if received == 0 and stored == 0:
        return False
    raise CounterRegression(stored, received)


def _roots_verifier(roots: Sequence[bytes]) -> AttestationVerifier:
    """Attestation trust: the chain must end in one of the configured root certificates."""
    return _roots_verifier_class()(roots)


@cache
def _roots_verifier_class() -> Callable[[Sequence[bytes]], AttestationVerifier]:
    from fido2.attestation.base import AttestationResult, AttestationVerifier

    class _RootsVerifier(AttestationVerifier):
        def __init__(self, roots: Sequence[bytes]) -> None:
            super().__init__()
            self._roots = tuple(roots)

        def ca_lookup(self, attestation_result: AttestationResult, auth_data: Any) -> bytes | None:
            from cryptography import x509

            if not attestation_result.trust_path:
                return None  # self attestation proves nothing about the model
            issuer = x509.load_der_x509_certificate(attestation_result.trust_path[-1]).issuer
            for root in self._roots:
                if x509.load_der_x509_certificate(root).subject == issuer:
                    return root
            return None

    return _RootsVerifier


def _parse_json(response: object) -> Mapping[str, Any]:
    if isinstance(response, str | bytes):
        if len(response) > MAX_RESPONSE:
            raise InvalidInput("credential", "The security key's answer is too large.")
        try:
            response = json.loads(response)
        except (ValueError, RecursionError) as exc:
            raise InvalidInput("credential", "The security key's answer is not JSON.") from exc
    if not isinstance(response, Mapping):
        raise InvalidInput("credential", "The security key's answer is missing.")
    if len(json.dumps(response, default=str)) > MAX_RESPONSE:
        raise InvalidInput("credential", "The security key's answer is too large.")
    return response


# fido2 raises these while parsing (CBOR, base64, struct, missing keys, bad enums).
_PARSE_ERRORS = (ValueError, KeyError, TypeError, IndexError, AttributeError, struct.error)

_FIDO2_REASONS = (
    ("Wrong RP ID hash", "rp_id_hash"),
    ("User Present", "user_presence"),
    ("User verification required", "user_verification"),
    ("Invalid signature", "signature"),
    ("Unknown credential", "unknown_credential"),
    ("origin", "origin"),
    ("challenge", "challenge"),
    ("type", "type"),
)


def _fido2_reason(exc: Exception) -> str:
    text = str(exc)
    for needle, reason in _FIDO2_REASONS:
        if needle.lower() in text.lower():
            return reason
    return "rejected"


def _client_checks(client_json: bytes, expected_type: str) -> None:
    """What fido2 does not look at: the type before anything else, crossOrigin, topOrigin."""
    try:
        data = json.loads(client_json)
    except ValueError as exc:
        raise InvalidInput("credential", "The client data is not JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidInput("credential", "The client data is not an object.")
    if data.get("type") != expected_type:
        raise VerificationFailed("type")
    if data.get("crossOrigin") not in (None, False) or "topOrigin" in data:
        raise VerificationFailed("cross_origin")


def _check_public_key(key: CoseKey) -> None:
    """The COSE key must make a real public key: fido2's CBOR reader quietly accepts a byte
    string cut short, so a truncated authData would otherwise store a broken key."""
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm

    try:
        key.verify(b"probe", b"")
    except InvalidSignature:
        return  # the key was built; only the (empty) signature was wrong
    except (*_PARSE_ERRORS, UnsupportedAlgorithm) as exc:
        raise InvalidInput("credential", "The public key is malformed.") from exc


def _flag_checks(auth_data: AuthenticatorData) -> None:
    if auth_data.is_backed_up() and not auth_data.is_backup_eligible():
        raise VerificationFailed("backup_state")


class WebAuthnMethod:
    """Registration and authentication ceremonies for one relying party."""

    kind = MethodKind.WEBAUTHN
    rules = METHOD_RULES[MethodKind.WEBAUTHN]

    def __init__(self, config: WebAuthnConfig, *, rp_name: str) -> None:
        self.config = config
        self._rp_name = config.rp_name or rp_name

    @cached_property
    def server(self) -> Fido2Server:
        """fido2's server for this relying party, made at the first ceremony (fido2 loads then)."""
        from fido2.server import Fido2Server
        from fido2.webauthn import (
            AttestationConveyancePreference,
            PublicKeyCredentialParameters,
            PublicKeyCredentialRpEntity,
            PublicKeyCredentialType,
        )

        config = self.config
        origins = frozenset(config.origins)
        attest = config.attestation_required
        server = Fido2Server(
            PublicKeyCredentialRpEntity(id=config.rp_id, name=self._rp_name),
            attestation=(
                AttestationConveyancePreference.DIRECT
                if attest
                else AttestationConveyancePreference.NONE
            ),
            # Exact origins only (scheme, host and port): no sibling subdomain, no other port.
            verify_origin=lambda origin: origin in origins,
            verify_attestation=_roots_verifier(config.attestation_roots) if attest else None,
        )
        server.allowed_algorithms = [
            PublicKeyCredentialParameters(type=PublicKeyCredentialType.PUBLIC_KEY, alg=alg)
            for alg in OFFERED_ALGORITHMS
        ]
        server.timeout = TIMEOUT_MS  # type: ignore[assignment]  # fido2 types it None
        return server

    @property
    def _uv(self) -> UserVerificationRequirement:
        from fido2.webauthn import UserVerificationRequirement

        return UserVerificationRequirement(self.config.user_verification)

    # -- registration -------------------------------------------------------------------------

    def register_begin(
        self,
        *,
        user_handle: bytes,
        user_name: str,
        display_name: str,
        exclude: Sequence[bytes],
        now: float,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """``(options, state)``: options for ``navigator.credentials.create`` (JSON-safe, under
        ``publicKey``); ``state`` to keep server side and pass to :meth:`register_complete`."""
        from fido2.webauthn import (
            PublicKeyCredentialDescriptor,
            PublicKeyCredentialType,
            PublicKeyCredentialUserEntity,
            ResidentKeyRequirement,
        )

        options, fido_state = self.server.register_begin(
            PublicKeyCredentialUserEntity(
                id=user_handle, name=user_name, display_name=display_name or user_name
            ),
            [
                PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY, id=c)
                for c in exclude
            ],
            resident_key_requirement=ResidentKeyRequirement(self.config.resident_key),
            user_verification=self._uv,
        )
        return _jsonable(options), self._state(REGISTER, fido_state, user_handle, now)

    def register_complete(
        self, state: Mapping[str, Any], response: object, *, now: float
    ) -> NewCredential:
        from fido2.attestation.base import InvalidAttestation
        from fido2.webauthn import RegistrationResponse

        self._check_state(state, REGISTER, now)
        registration = self._parse(RegistrationResponse, response)
        attestation = registration.response.attestation_object
        auth_data = attestation.auth_data
        cred = auth_data.credential_data
        _client_checks(bytes(registration.response.client_data), "webauthn.create")
        if cred is None or not auth_data.is_attested():
            raise InvalidInput("credential", "The answer holds no credential.")
        if attestation.fmt not in KNOWN_FORMATS:
            raise InvalidInput("credential", "Unknown attestation format.")
        if len(cred.credential_id) > MAX_CREDENTIAL_ID or not cred.credential_id:
            raise VerificationFailed("credential_id_length")
        if cred.credential_id != registration.raw_id:
            raise VerificationFailed("credential_id_mismatch")
        alg = cred.public_key.get(3)
        if alg not in OFFERED_ALGORITHMS:
            raise VerificationFailed("algorithm")
        _check_public_key(cred.public_key)
        _flag_checks(auth_data)
        try:
            self.server.register_complete(self._fido_state(state), registration)
        except InvalidAttestation as exc:
            raise VerificationFailed("attestation") from exc
        except _PARSE_ERRORS as exc:
            raise VerificationFailed(_fido2_reason(exc)) from exc
        aaguid = str(cred.aaguid)
        if self.config.aaguids and aaguid not in self.config.aaguids:
            raise VerificationFailed("aaguid")
        return NewCredential(
            credential_id=cred.credential_id,
            credential_data=bytes(cred),
            counter=auth_data.counter,
            aaguid=aaguid,
            alg=int(alg),
            user_verified=auth_data.is_user_verified(),
            backup_eligible=auth_data.is_backup_eligible(),
            backed_up=auth_data.is_backed_up(),
            fmt=attestation.fmt,
        )

    # -- authentication -----------------------------------------------------------------------

    def authenticate_begin(
        self, *, user_handle: bytes, credential_ids: Sequence[bytes], now: float
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Options for ``navigator.credentials.get`` listing the user's credentials."""
        from fido2.webauthn import PublicKeyCredentialDescriptor, PublicKeyCredentialType

        options, fido_state = self.server.authenticate_begin(
            [
                PublicKeyCredentialDescriptor(type=PublicKeyCredentialType.PUBLIC_KEY, id=c)
                for c in credential_ids
            ],
            user_verification=self._uv,
        )
        return _jsonable(options), self._state(AUTHENTICATE, fido_state, user_handle, now)

    def authenticate_complete(
        self,
        state: Mapping[str, Any],
        credentials: Mapping[bytes, tuple[bytes, bool]],
        response: object,
        *,
        now: float,
    ) -> Assertion:
        """``credentials`` maps the user's credential ids to ``(credential_data, backup_eligible)``
        as stored at registration. The counter is the caller's to compare (:func:`check_counter`)."""
        from fido2.webauthn import AttestedCredentialData, AuthenticationResponse

        self._check_state(state, AUTHENTICATE, now)
        authn = self._parse(AuthenticationResponse, response)
        auth_data = authn.response.authenticator_data
        _client_checks(bytes(authn.response.client_data), "webauthn.get")
        stored = credentials.get(authn.raw_id)
        if stored is None:
            raise VerificationFailed("unknown_credential")
        handle = authn.response.user_handle
        if handle is not None and handle != unb64(str(state["user_handle"])):
            raise VerificationFailed("user_handle")
        _flag_checks(auth_data)
        if auth_data.is_backup_eligible() != stored[1]:
            raise VerificationFailed("backup_eligibility")
        try:
            self.server.authenticate_complete(
                self._fido_state(state), [AttestedCredentialData(stored[0])], authn
            )
        except _PARSE_ERRORS as exc:
            raise VerificationFailed(_fido2_reason(exc)) from exc
        return Assertion(
            credential_id=authn.raw_id,
            counter=auth_data.counter,
            user_verified=auth_data.is_user_verified(),
            backed_up=auth_data.is_backed_up(),
        )

    # -- state --------------------------------------------------------------------------------

    def _state(
        self, ceremony: str, fido_state: Mapping[str, Any], user_handle: bytes, now: float
    ) -> dict[str, Any]:
        uv = fido_state.get("user_verification")
        return {
            "ceremony": ceremony,
            "challenge": str(fido_state["challenge"]),
            "user_verification": str(uv.value) if uv is not None else None,
            "user_handle": b64(user_handle),
            "expires": now + self.config.challenge_ttl,
        }

    @staticmethod
    def _fido_state(state: Mapping[str, Any]) -> dict[str, Any]:
        from fido2.webauthn import UserVerificationRequirement

        uv = state.get("user_verification")
        return {
            "challenge": state["challenge"],
            "user_verification": UserVerificationRequirement(uv) if uv else None,
        }

    @staticmethod
    def _check_state(state: Mapping[str, Any], ceremony: str, now: float) -> None:
        # A registration challenge is never accepted for a sign-in, nor the other way round.
        if not state or state.get("ceremony") != ceremony or "challenge" not in state:
            raise ChallengeExpired("no such WebAuthn ceremony in progress")
        if float(state.get("expires", 0)) < now:
            raise ChallengeExpired("the WebAuthn challenge expired")

    @staticmethod
    def _parse(cls: Any, response: object) -> Any:
        data = _parse_json(response)
        if data.get("type", "public-key") != "public-key":
            raise VerificationFailed("credential_type")
        try:
            return cls.from_dict(data)
        except _PARSE_ERRORS as exc:
            raise InvalidInput("credential", "The security key's answer is malformed.") from exc


def _jsonable(options: Mapping[str, Any]) -> dict[str, Any]:
    # fido2's option objects are Mappings whose bytes come out as base64url: a JSON round trip
    # gives plain dicts for the session and the page.
    return dict(json.loads(json.dumps(dict(options), default=dict)))


def new_user_handle() -> bytes:
    """A random, opaque WebAuthn ``user.id`` (never the user's name: it is stored on keys)."""
    return secrets.token_bytes(32)


def decode_b64(text: object) -> bytes:
    """base64url text from our own records (tolerates missing padding)."""
    value = str(text)
    return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
