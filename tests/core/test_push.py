"""The push protocol's pure parts: signed messages, number matching, enrollment checks."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from oidc_combinedreg.exceptions import ChallengeExpired, InvalidInput, VerificationFailed
from oidc_combinedreg.methods.push import (
    Decision,
    EnrollmentPayload,
    Outcome,
    PushMethod,
    b64e,
    enroll_message,
    load_public_key,
    response_message,
)

NOW = 1_700_000_000.0
METHOD = PushMethod(request_ttl=120, enrollment_ttl=600)


def _key() -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return key, spki


def _sign(key: ec.EllipticCurvePrivateKey, message: bytes) -> str:
    return b64e(key.sign(message, ec.ECDSA(hashes.SHA256())))


def _answer(
    key: ec.EllipticCurvePrivateKey, req: Any, number: int, decision: str
) -> dict[str, Any]:
    msg = response_message(req.txid, req.challenge, number, decision)
    return {"number": number, "decision": decision, "signature": _sign(key, msg)}


def test_choices_hold_the_shown_number_among_three_distinct_two_digit_numbers() -> None:
    for _ in range(200):
        req, _ = METHOD.authenticate_begin(now=NOW)
        assert req.number in req.choices and len(set(req.choices)) == 3
        assert all(10 <= n <= 99 for n in req.choices)


@pytest.mark.parametrize(
    ("pick", "decision", "outcome"),
    [
        pytest.param("right", "approve", Outcome.APPROVED, id="right number -> approved"),
        pytest.param("wrong", "approve", Outcome.WRONG_NUMBER, id="wrong number -> not approved"),
        pytest.param("right", "deny", Outcome.DENIED, id="deny -> denied"),
        pytest.param("wrong", "report", Outcome.REPORTED, id="this wasn't me -> reported"),
    ],
)
def test_signed_answers_give_their_outcome(pick: str, decision: str, outcome: Outcome) -> None:
    key, spki = _key()
    req, _ = METHOD.authenticate_begin(now=NOW)
    number = req.number if pick == "right" else next(n for n in req.choices if n != req.number)
    assert (
        METHOD.authenticate_complete(req, spki, _answer(key, req, number, decision), now=NOW)
        is outcome
    )


def test_another_devices_signature_is_refused() -> None:
    key, _ = _key()
    _, other_spki = _key()
    req, _ = METHOD.authenticate_begin(now=NOW)
    with pytest.raises(VerificationFailed):
        METHOD.authenticate_complete(
            req, other_spki, _answer(key, req, req.number, "approve"), now=NOW
        )


def test_signature_over_another_number_or_decision_is_refused() -> None:
    key, spki = _key()
    req, _ = METHOD.authenticate_begin(now=NOW)
    wrong = next(n for n in req.choices if n != req.number)
    body = _answer(key, req, wrong, "approve") | {"number": req.number}
    with pytest.raises(VerificationFailed):
        METHOD.authenticate_complete(req, spki, body, now=NOW)
    body = _answer(key, req, req.number, "deny") | {"decision": "approve"}
    with pytest.raises(VerificationFailed):
        METHOD.authenticate_complete(req, spki, body, now=NOW)


def test_answer_signed_for_another_transaction_is_refused() -> None:
    key, spki = _key()
    first, _ = METHOD.authenticate_begin(now=NOW)
    second, _ = METHOD.authenticate_begin(now=NOW)
    body = _answer(key, first, second.number, "approve")
    with pytest.raises(VerificationFailed):
        METHOD.authenticate_complete(second, spki, body, now=NOW)


def test_expired_request_is_refused_before_looking_at_the_answer() -> None:
    key, spki = _key()
    req, _ = METHOD.authenticate_begin(now=NOW)
    with pytest.raises(ChallengeExpired):
        METHOD.authenticate_complete(
            req, spki, _answer(key, req, req.number, "approve"), now=NOW + 120
        )


def test_session_binding_needs_the_nonce() -> None:
    req, nonce = METHOD.authenticate_begin(now=NOW)
    assert METHOD.session_matches(req.binding, nonce)
    assert not METHOD.session_matches(req.binding, nonce + "x")
    assert not METHOD.session_matches(req.binding, None)


def _enroll_body(
    token: str, key: ec.EllipticCurvePrivateKey, spki: bytes, name: str
) -> dict[str, Any]:
    public = b64e(spki)
    return {
        "token": token,
        "public_key": public,
        "device_name": name,
        "signature": _sign(key, enroll_message(token, public, name)),
    }


def test_enrollment_needs_the_token_and_proof_of_the_private_key() -> None:
    token, state = METHOD.register_begin(now=NOW)
    key, spki = _key()
    assert METHOD.register_complete(state, _enroll_body(token, key, spki, "Phone"), now=NOW) == (
        spki,
        "Phone",
    )
    other, _ = _key()
    with pytest.raises(VerificationFailed):  # signed by another key than the one registered
        METHOD.register_complete(state, _enroll_body(token, other, spki, "Phone"), now=NOW)
    with pytest.raises(ChallengeExpired):
        METHOD.register_complete(state, _enroll_body("x" * 43, key, spki, "Phone"), now=NOW)
    with pytest.raises(ChallengeExpired):
        METHOD.register_complete(state, _enroll_body(token, key, spki, "Phone"), now=NOW + 600)
    assert "token" not in state and token not in str(state)  # only its hash is kept


@pytest.mark.parametrize(
    "public_key",
    [
        pytest.param("not base64!", id="not base64url"),
        pytest.param(b64e(b"\x30\x03\x02\x01\x01"), id="not a key"),
        pytest.param(
            b64e(
                ec.generate_private_key(ec.SECP384R1())
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ),
            id="P-384 instead of P-256",
        ),
        pytest.param(
            b64e(
                rsa.generate_private_key(public_exponent=65537, key_size=1024)
                .public_key()
                .public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            ),
            id="RSA",
        ),
    ],
)
def test_only_p256_public_keys_are_accepted(public_key: str) -> None:
    with pytest.raises(InvalidInput):
        load_public_key(public_key)


def test_payload_round_trips_and_rejects_other_uris() -> None:
    payload = EnrollmentPayload(
        server_url="https://idp.example/security-info", token="t" * 43, account="a@b", issuer="Org"
    )
    assert EnrollmentPayload.parse(payload.uri()) == payload
    with pytest.raises(InvalidInput):
        EnrollmentPayload.parse("otpauth://totp/x?secret=AAAA")
    with pytest.raises(InvalidInput):
        EnrollmentPayload.parse("combinedreg-push://enroll?v=1&token=abc")


def test_decisions_are_a_closed_set() -> None:
    key, spki = _key()
    req, _ = METHOD.authenticate_begin(now=NOW)
    body = _answer(key, req, req.number, "approve") | {"decision": "maybe"}
    with pytest.raises(InvalidInput):
        METHOD.authenticate_complete(req, spki, body, now=NOW)
    assert {d.value for d in Decision} == {"approve", "deny", "report"}
