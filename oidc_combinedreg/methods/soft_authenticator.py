"""A software FIDO2 authenticator plus browser, for tests only (never for real users).

It answers WebAuthn options the way a browser with a P-256 authenticator would, built from
python-fido2's own data classes and a ``cryptography`` key: ``create()`` returns a
RegistrationResponseJSON, ``get()`` an AuthenticationResponseJSON. Keyword overrides alter one
thing at a time (type, challenge, origin, flags, counter, credential id, algorithm, user handle,
attestation) so a test can show that each alteration is refused.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from fido2.cose import ES256, ES384, CoseKey
from fido2.utils import websafe_decode, websafe_encode
from fido2.webauthn import (
    AttestationObject,
    AttestedCredentialData,
    AuthenticatorData,
    CollectedClientData,
)

__all__ = ["SoftAuthenticator", "SoftCredential"]

FLAG = AuthenticatorData.FLAG
_UNSET: Any = object()


@dataclass
class SoftCredential:
    credential_id: bytes
    key: ec.EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    counter: int
    backup_eligible: bool

    def sign(self, data: bytes) -> bytes:
        algorithm = hashes.SHA384() if self.key.curve.name == "secp384r1" else hashes.SHA256()
        return self.key.sign(data, ec.ECDSA(algorithm))


class SoftAuthenticator:
    def __init__(
        self,
        *,
        aaguid: bytes = bytes(16),
        user_verified: bool = True,
        backup_eligible: bool = False,
        backed_up: bool = False,
    ) -> None:
        self.aaguid = aaguid
        self.user_verified = user_verified
        self.backup_eligible = backup_eligible
        self.backed_up = backed_up
        self.credentials: dict[bytes, SoftCredential] = {}

    # -- pieces -------------------------------------------------------------------------------

    def _flags(self, extra: int = 0) -> int:
        flags = FLAG.UP | extra
        if self.user_verified:
            flags |= FLAG.UV
        if self.backup_eligible:
            flags |= FLAG.BE
        if self.backed_up:
            flags |= FLAG.BS
        return int(flags)

    @staticmethod
    def client_data(type_: str, challenge: str, origin: str, **extra: Any) -> CollectedClientData:
        return CollectedClientData.create(type=type_, challenge=challenge, origin=origin, **extra)

    # -- ceremonies ---------------------------------------------------------------------------

    def create(
        self,
        options: Mapping[str, Any],
        *,
        origin: str,
        type_: str = "webauthn.create",
        challenge: str | None = None,
        rp_id: str | None = None,
        flags: int | None = None,
        counter: int = 0,
        credential_id: bytes | None = None,
        curve: str = "p256",
        fmt: str = "none",
        att_stmt: Mapping[str, Any] | None = None,
        client_extra: Mapping[str, Any] | None = None,
        attest: Any = None,
    ) -> dict[str, Any]:
        """A registration response for ``options`` (``{"publicKey": ...}`` as the server sent)."""
        pk = options["publicKey"]
        rp = rp_id or pk["rp"]["id"]
        cred_id = credential_id if credential_id is not None else os.urandom(32)
        if curve == "p384":
            key: ec.EllipticCurvePrivateKey = ec.generate_private_key(ec.SECP384R1())
            cose: CoseKey = ES384.from_cryptography_key(key.public_key())  # type: ignore[no-untyped-call]
        else:
            key = ec.generate_private_key(ec.SECP256R1())
            cose = ES256.from_cryptography_key(key.public_key())  # type: ignore[no-untyped-call]
        cred_data = AttestedCredentialData.create(self.aaguid, cred_id, cose)
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp.encode()).digest(),
            AuthenticatorData.FLAG(flags if flags is not None else self._flags(FLAG.AT)),
            counter,
            cred_data,
        )
        client = self.client_data(
            type_, challenge or pk["challenge"], origin, **dict(client_extra or {})
        )
        statement = dict(att_stmt or {})
        if attest is not None:
            fmt, statement = attest(auth_data, client.hash)
        attestation = AttestationObject.create(fmt, auth_data, statement)
        self.credentials[cred_id] = SoftCredential(
            credential_id=cred_id,
            key=key,
            rp_id=rp,
            user_handle=websafe_decode(pk["user"]["id"]),
            counter=counter,
            backup_eligible=self.backup_eligible,
        )
        return {
            "id": websafe_encode(cred_id),
            "rawId": websafe_encode(cred_id),
            "type": "public-key",
            "response": {
                "clientDataJSON": websafe_encode(client),
                "attestationObject": websafe_encode(attestation),
            },
            "clientExtensionResults": {},
        }

    def get(
        self,
        options: Mapping[str, Any],
        *,
        origin: str,
        type_: str = "webauthn.get",
        challenge: str | None = None,
        rp_id: str | None = None,
        flags: int | None = None,
        counter: int | None = None,
        credential_id: bytes | None = None,
        user_handle: bytes | None = _UNSET,
        client_extra: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """An assertion with the first allowed credential this authenticator holds (the counter
        goes up by one unless ``counter`` is given)."""
        pk = options["publicKey"]
        allowed = [websafe_decode(c["id"]) for c in pk.get("allowCredentials") or []]
        if credential_id is None:
            credential_id = next(
                c for c in (allowed or list(self.credentials)) if c in self.credentials
            )
        cred = self.credentials[credential_id]
        cred.counter = cred.counter + 1 if counter is None else counter
        rp = rp_id or pk.get("rpId") or cred.rp_id
        auth_data = AuthenticatorData.create(
            hashlib.sha256(rp.encode()).digest(),
            AuthenticatorData.FLAG(flags if flags is not None else self._flags()),
            cred.counter,
        )
        client = self.client_data(
            type_, challenge or pk["challenge"], origin, **dict(client_extra or {})
        )
        handle = cred.user_handle if user_handle is _UNSET else user_handle
        response: dict[str, Any] = {
            "clientDataJSON": websafe_encode(client),
            "authenticatorData": websafe_encode(auth_data),
            "signature": websafe_encode(cred.sign(bytes(auth_data) + client.hash)),
        }
        if handle is not None:
            response["userHandle"] = websafe_encode(handle)
        return {
            "id": websafe_encode(credential_id),
            "rawId": websafe_encode(credential_id),
            "type": "public-key",
            "response": response,
            "clientExtensionResults": {},
        }
