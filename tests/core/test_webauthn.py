"""WebAuthn ceremonies (SECURITY.md cases 39-45) with a software authenticator built in process.

Each altered response differs from a good one in exactly one thing; the good one is accepted in
the same test setup, so a refusal is the alteration's doing.
"""

from __future__ import annotations

import datetime
import json
import uuid
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from fido2.utils import websafe_decode, websafe_encode

from oidc_combinedreg.config.webauthn import WebAuthnConfig
from oidc_combinedreg.exceptions import ChallengeExpired, InvalidInput, VerificationFailed
from oidc_combinedreg.methods.soft_authenticator import FLAG, SoftAuthenticator
from oidc_combinedreg.methods.webauthn import (
    CounterRegression,
    WebAuthnMethod,
    check_counter,
    clean_label,
)

ORIGIN = "http://localhost:5000"
HANDLE = b"u" * 32
UP, UV, BE, BS, AT = int(FLAG.UP), int(FLAG.UV), int(FLAG.BE), int(FLAG.BS), int(FLAG.AT)


def method(**kw: Any) -> WebAuthnMethod:
    return WebAuthnMethod(WebAuthnConfig(**kw), rp_name="Test Org")


def begin_register(m: WebAuthnMethod, now: float = 0) -> tuple[dict[str, Any], dict[str, Any]]:
    return m.register_begin(
        user_handle=HANDLE,
        user_name="alice@example.test",
        display_name="Alice",
        exclude=[],
        now=now,
    )


def registered(m: WebAuthnMethod, auth: SoftAuthenticator) -> dict[bytes, tuple[bytes, bool]]:
    options, state = begin_register(m)
    cred = m.register_complete(state, auth.create(options, origin=ORIGIN), now=1)
    return {cred.credential_id: (cred.credential_data, cred.backup_eligible)}


def begin_auth(m: WebAuthnMethod, creds: dict[bytes, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    return m.authenticate_begin(user_handle=HANDLE, credential_ids=list(creds), now=2)


# -- registration ----------------------------------------------------------------------------


def test_good_registration_yields_the_credential_to_store() -> None:
    m = method()
    options, state = begin_register(m)
    pk = options["publicKey"]
    assert pk["rp"] == {"id": "localhost", "name": "Test Org"}
    assert pk["authenticatorSelection"]["residentKey"] == "preferred"
    assert pk["authenticatorSelection"]["userVerification"] == "preferred"
    assert pk["attestation"] == "none"
    assert [p["alg"] for p in pk["pubKeyCredParams"]] == [-7, -8, -257]
    assert len(websafe_decode(pk["challenge"])) >= 16
    cred = m.register_complete(state, SoftAuthenticator().create(options, origin=ORIGIN), now=1)
    assert cred.counter == 0 and cred.alg == -7 and cred.fmt == "none"
    assert cred.user_verified and not cred.backup_eligible


REGISTRATION_ALTERATIONS = [
    pytest.param(
        {"type_": "webauthn.get"}, "type", id="type webauthn.get at registration -> reject"
    ),
    pytest.param(
        {"challenge": websafe_encode(b"x" * 32)}, "challenge", id="another challenge -> reject"
    ),
    pytest.param({"origin": "https://localhost:5000"}, "origin", id="https scheme -> reject"),
    pytest.param({"origin": "http://localhost:5001"}, "origin", id="another port -> reject"),
    pytest.param({"origin": "http://evil.localhost:5000"}, "origin", id="sibling host -> reject"),
    pytest.param(
        {"client_extra": {"crossOrigin": True}}, "cross_origin", id="crossOrigin true -> reject"
    ),
    pytest.param(
        {"client_extra": {"topOrigin": "http://localhost:5000"}},
        "cross_origin",
        id="any topOrigin -> reject",
    ),
    pytest.param({"rp_id": "example.com"}, "rp_id_hash", id="rpIdHash of another RP -> reject"),
    pytest.param({"flags": UV | AT}, "user_presence", id="UP=0 -> reject"),
    pytest.param({"flags": UP | UV | BS | AT}, "backup_state", id="BS=1 with BE=0 -> reject"),
    pytest.param(
        {"credential_id": b"c" * 1024}, "credential_id_length", id="id of 1024 B -> reject"
    ),
    pytest.param({"curve": "p384"}, "algorithm", id="ES384 was not offered -> reject"),
]


@pytest.mark.parametrize(("alteration", "reason"), REGISTRATION_ALTERATIONS)
def test_altered_registration_is_refused(alteration: dict[str, Any], reason: str) -> None:
    m = method()
    options, state = begin_register(m)
    response = SoftAuthenticator().create(
        options, origin=alteration.pop("origin", ORIGIN), **alteration
    )
    with pytest.raises(VerificationFailed) as info:
        m.register_complete(state, response, now=1)
    assert info.value.reason == reason


def test_uv_required_but_not_verified_is_refused_and_preferred_is_accepted() -> None:
    for uv, refused in (("required", True), ("preferred", False)):
        m = method(user_verification=uv)
        options, state = begin_register(m)
        response = SoftAuthenticator(user_verified=False).create(options, origin=ORIGIN)
        if refused:
            with pytest.raises(VerificationFailed) as info:
                m.register_complete(state, response, now=1)
            assert info.value.reason == "user_verification"
        else:
            assert not m.register_complete(state, response, now=1).user_verified


def _mangle(response: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    out = json.loads(json.dumps(response))
    out["response"][field] = value
    return out


def _att_object(response: dict[str, Any]) -> bytes:
    return websafe_decode(response["response"]["attestationObject"])


MALFORMED = [
    pytest.param(lambda r: "{not json", id="not JSON -> invalid input"),
    pytest.param(lambda r: [], id="a JSON array -> invalid input"),
    pytest.param(
        lambda r: _mangle(r, "attestationObject", websafe_encode(b"\xa3\x63fmt")),
        id="malformed CBOR -> invalid input",
    ),
    pytest.param(
        lambda r: _mangle(r, "attestationObject", websafe_encode(_att_object(r)[:-20])),
        id="truncated authData -> invalid input",
    ),
    pytest.param(lambda r: _mangle(r, "clientDataJSON", "!!"), id="bad base64 -> invalid input"),
    pytest.param(lambda r: {**r, "id": "AAAA"}, id="id differs from rawId -> invalid input"),
    pytest.param(lambda r: "x" * 40_000, id="40 KB answer -> invalid input"),
]


@pytest.mark.parametrize("mangle", MALFORMED)
def test_malformed_registration_is_invalid_input_not_a_crash(mangle: Any) -> None:
    m = method()
    options, state = begin_register(m)
    response = mangle(SoftAuthenticator().create(options, origin=ORIGIN))
    with pytest.raises(InvalidInput) as info:
        m.register_complete(state, response, now=1)
    assert info.value.field == "credential"


def test_unknown_attestation_format_and_huge_statement_are_refused() -> None:
    m = method()
    options, state = begin_register(m)
    unknown = SoftAuthenticator().create(options, origin=ORIGIN, fmt="made-up")
    with pytest.raises(InvalidInput):
        m.register_complete(state, unknown, now=1)
    options, state = begin_register(m)
    huge = SoftAuthenticator().create(options, origin=ORIGIN, att_stmt={"x": b"\0" * 40_000})
    with pytest.raises(InvalidInput):
        m.register_complete(state, huge, now=1)


def test_a_registration_challenge_expires_and_cannot_sign_in() -> None:
    m = method(challenge_ttl=60)
    options, state = begin_register(m, now=0)
    response = SoftAuthenticator().create(options, origin=ORIGIN)
    with pytest.raises(ChallengeExpired):
        m.register_complete(state, response, now=61)
    # The same challenge offered to the sign-in ceremony: refused before anything is parsed.
    with pytest.raises(ChallengeExpired):
        m.authenticate_complete(state, {}, response, now=1)


# -- authentication --------------------------------------------------------------------------


def test_good_assertion_and_its_amr() -> None:
    m, auth = method(), SoftAuthenticator()
    creds = registered(m, auth)
    options, state = begin_auth(m, creds)
    assert options["publicKey"]["rpId"] == "localhost"
    result = m.authenticate_complete(state, creds, auth.get(options, origin=ORIGIN), now=3)
    assert result.counter == 1
    assert result.amr(backup_eligible=False) == ("hwk", "user")
    assert result.amr(backup_eligible=True) == ("swk", "user")


ASSERTION_ALTERATIONS = [
    pytest.param(
        {"type_": "webauthn.create"}, "type", id="type webauthn.create at sign-in -> reject"
    ),
    pytest.param(
        {"challenge": websafe_encode(b"y" * 32)}, "challenge", id="another challenge -> reject"
    ),
    pytest.param({"origin": "http://127.0.0.1:5000"}, "origin", id="another host -> reject"),
    pytest.param({"origin": "http://localhost"}, "origin", id="no port -> reject"),
    pytest.param(
        {"client_extra": {"crossOrigin": True}}, "cross_origin", id="crossOrigin -> reject"
    ),
    pytest.param({"rp_id": "evil.example"}, "rp_id_hash", id="wrong rpIdHash -> reject"),
    pytest.param({"flags": UV}, "user_presence", id="UP=0 -> reject"),
    pytest.param({"flags": UP | UV | BS}, "backup_state", id="BS=1 with BE=0 -> reject"),
    pytest.param(
        {"flags": UP | UV | BE}, "backup_eligibility", id="BE changed since registration -> reject"
    ),
    pytest.param({"user_handle": b"v" * 32}, "user_handle", id="another user's handle -> reject"),
]


@pytest.mark.parametrize(("alteration", "reason"), ASSERTION_ALTERATIONS)
def test_altered_assertion_is_refused(alteration: dict[str, Any], reason: str) -> None:
    m, auth = method(), SoftAuthenticator()
    creds = registered(m, auth)
    options, state = begin_auth(m, creds)
    response = auth.get(options, origin=alteration.pop("origin", ORIGIN), **alteration)
    with pytest.raises(VerificationFailed) as info:
        m.authenticate_complete(state, creds, response, now=3)
    assert info.value.reason == reason


def test_a_credential_that_is_not_the_users_is_refused() -> None:
    m = method()
    alice, mallory = SoftAuthenticator(), SoftAuthenticator()
    alice_creds = registered(m, alice)
    mallory_creds = registered(m, mallory)
    options, state = begin_auth(m, alice_creds)
    # Mallory's own valid key, answering Alice's challenge.
    response = mallory.get(options, origin=ORIGIN, credential_id=next(iter(mallory_creds)))
    with pytest.raises(VerificationFailed) as info:
        m.authenticate_complete(state, alice_creds, response, now=3)
    assert info.value.reason == "unknown_credential"


def test_a_forged_signature_is_refused() -> None:
    m, auth = method(), SoftAuthenticator()
    creds = registered(m, auth)
    options, state = begin_auth(m, creds)
    response = auth.get(options, origin=ORIGIN)
    sig = bytearray(websafe_decode(response["response"]["signature"]))
    sig[-1] ^= 1
    response["response"]["signature"] = websafe_encode(bytes(sig))
    with pytest.raises(VerificationFailed) as info:
        m.authenticate_complete(state, creds, response, now=3)
    assert info.value.reason == "signature"


def test_uv_required_sign_in_without_uv_is_refused() -> None:
    m, auth = method(user_verification="required"), SoftAuthenticator()
    creds = registered(m, auth)
    options, state = begin_auth(m, creds)
    auth.user_verified = False
    with pytest.raises(VerificationFailed) as info:
        m.authenticate_complete(state, creds, auth.get(options, origin=ORIGIN), now=3)
    assert info.value.reason == "user_verification"


COUNTERS = [
    pytest.param(0, 0, False, id="zero after zero: allowed, nothing to store"),
    pytest.param(0, 1, True, id="first nonzero: stored"),
    pytest.param(5, 6, True, id="went up: stored"),
    pytest.param(5, 5, None, id="same nonzero value: regression"),
    pytest.param(5, 4, None, id="went down: regression"),
    pytest.param(5, 0, None, id="back to zero after nonzero: regression"),
]


@pytest.mark.parametrize(("stored", "received", "store"), COUNTERS)
def test_sign_counter(stored: int, received: int, store: bool | None) -> None:
    if store is None:
        with pytest.raises(CounterRegression) as info:
            check_counter(stored, received)
        assert (info.value.stored, info.value.received, info.value.reason) == (
            stored,
            received,
            "counter_regression",
        )
    else:
        assert check_counter(stored, received) is store


@pytest.mark.parametrize(
    ("text", "ok"),
    [
        pytest.param("  YubiKey  5C ", "YubiKey 5C", id="spaces are collapsed"),
        pytest.param("", None, id="empty -> invalid"),
        pytest.param("k" * 65, None, id="65 characters -> invalid"),
        pytest.param("key\x00", None, id="control character -> invalid"),
        pytest.param(7, None, id="not text -> invalid"),
    ],
)
def test_key_names(text: object, ok: str | None) -> None:
    if ok is None:
        with pytest.raises(InvalidInput):
            clean_label(text)
    else:
        assert clean_label(text) == ok


# -- attestation policy (AAGUID allow-list with a trusted root) ------------------------------

AAGUID = uuid.UUID("cb69481e-8ff7-4039-93ec-0a2729a154a8")


def _name(cn: str, ou: str | None = None) -> x509.Name:
    attrs = [
        x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test Vendor"),
        x509.NameAttribute(NameOID.COMMON_NAME, cn),
    ]
    if ou:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, ou))
    return x509.Name(attrs)


def _cert(
    subject: x509.Name, issuer: x509.Name, key: Any, signer: Any, *, ca: bool
) -> x509.Certificate:
    now = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    return builder.sign(signer, hashes.SHA256())


@pytest.fixture(scope="module")
def vendor() -> dict[str, Any]:
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert(_name("Test Root"), _name("Test Root"), root_key, root_key, ca=True)
    att_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(
        _name("Test Key", "Authenticator Attestation"), root.subject, att_key, root_key, ca=False
    )

    def packed(auth_data: bytes, client_hash: bytes) -> tuple[str, dict[str, Any]]:
        sig = att_key.sign(bytes(auth_data) + client_hash, ec.ECDSA(hashes.SHA256()))
        return "packed", {
            "alg": -7,
            "sig": sig,
            "x5c": [leaf.public_bytes(serialization.Encoding.DER)],
        }

    return {"root": root.public_bytes(serialization.Encoding.DER), "packed": packed}


def test_allow_listed_model_with_a_trusted_chain_registers(vendor: dict[str, Any]) -> None:
    m = method(aaguids=frozenset({str(AAGUID)}), attestation_roots=(vendor["root"],))
    options, state = begin_register(m)
    assert options["publicKey"]["attestation"] == "direct"
    auth = SoftAuthenticator(aaguid=AAGUID.bytes)
    cred = m.register_complete(
        state, auth.create(options, origin=ORIGIN, attest=vendor["packed"]), now=1
    )
    assert cred.aaguid == str(AAGUID) and cred.fmt == "packed"


def test_attestation_policy_refusals(vendor: dict[str, Any]) -> None:
    m = method(aaguids=frozenset({str(AAGUID)}), attestation_roots=(vendor["root"],))
    cases = [
        ("none", SoftAuthenticator(aaguid=AAGUID.bytes), None),  # no statement: nothing proven
        ("model not listed", SoftAuthenticator(aaguid=uuid.uuid4().bytes), vendor["packed"]),
    ]
    for name, auth, attest in cases:
        options, state = begin_register(m)
        with pytest.raises(VerificationFailed) as info:
            m.register_complete(state, auth.create(options, origin=ORIGIN, attest=attest), now=1)
        assert info.value.reason in ("attestation", "aaguid"), name
    other_root = method(
        aaguids=frozenset({str(AAGUID)}),
        attestation_roots=(
            _cert(
                _name("Other"),
                _name("Other"),
                k := ec.generate_private_key(ec.SECP256R1()),
                k,
                ca=True,
            ).public_bytes(serialization.Encoding.DER),
        ),
    )
    options, state = begin_register(other_root)
    response = SoftAuthenticator(aaguid=AAGUID.bytes).create(
        options, origin=ORIGIN, attest=vendor["packed"]
    )
    with pytest.raises(VerificationFailed) as info:
        other_root.register_complete(state, response, now=1)
    assert info.value.reason == "attestation"
