"""TOTP against RFC 6238's vectors, against oathtool (an implementation nobody here wrote), and bad input."""

from __future__ import annotations

import shutil
import subprocess

import pyotp
import pytest

from oidc_combinedreg.exceptions import (
    ChallengeExpired,
    CodeReused,
    InvalidInput,
    VerificationFailed,
)
from oidc_combinedreg.methods.codes import hotp
from oidc_combinedreg.methods.totp import TotpMethod, secret_bytes

# RFC 6238 appendix B, SHA-1 rows: the seed is ASCII "12345678901234567890".
RFC_SECRET = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
RFC_VECTORS = [
    (59, "94287082"),
    (1111111109, "07081804"),
    (1111111111, "14050471"),
    (1234567890, "89005924"),
    (2000000000, "69279037"),
    (20000000000, "65353130"),
]
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


@pytest.fixture
def totp() -> TotpMethod:
    return TotpMethod(issuer="Test", drift_steps=1)


@pytest.mark.parametrize(
    ("t", "code8"), RFC_VECTORS, ids=[f"rfc 6238 at {t}" for t, _ in RFC_VECTORS]
)
def test_rfc6238_vectors_match_the_time_step(totp: TotpMethod, t: int, code8: str) -> None:
    # Six-digit codes are the same truncated value mod 10**6: the last six digits of the vector.
    assert totp.match_step(RFC_SECRET, code8[-6:], now=t) == t // 30


@pytest.mark.parametrize("t", [t for t, _ in RFC_VECTORS])
def test_the_eight_digit_rfc6238_vectors_come_out_of_hotp(t: int) -> None:
    key = pyotp.TOTP(RFC_SECRET).byte_secret()
    assert hotp(key, t // 30, digits=8) == dict(RFC_VECTORS)[t]


def test_hotp_agrees_with_pyotp_on_random_keys_and_counters() -> None:
    for n in range(200):
        secret = pyotp.random_base32(32 if n % 2 else 48)
        counter = (n * 7_919_111) % 2**40
        expected = pyotp.HOTP(secret).at(counter)
        assert secret_bytes(secret) == pyotp.HOTP(secret).byte_secret()
        assert secret_bytes(secret.rstrip("=").lower()) == pyotp.HOTP(secret).byte_secret()
        assert hotp(secret_bytes(secret), counter) == expected


@pytest.mark.skipif(shutil.which("oathtool") is None, reason="oathtool is installed by make test")
@pytest.mark.parametrize("t", [0, 59, 1_700_000_000, 1_700_000_029, 2_000_000_000])
def test_codes_from_oathtool_are_accepted(totp: TotpMethod, t: int) -> None:
    out = subprocess.run(
        ["oathtool", "--totp", "-b", SECRET, "--now", f"@{t}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert totp.match_step(SECRET, out, now=t) == t // 30


@pytest.mark.parametrize(
    ("offset_steps", "accepted"),
    [
        pytest.param(-2, False, id="two steps old -> rejected"),
        pytest.param(-1, True, id="one step old -> accepted"),
        pytest.param(0, True, id="current step -> accepted"),
        pytest.param(1, True, id="one step ahead -> accepted"),
        pytest.param(2, False, id="two steps ahead -> rejected"),
    ],
)
def test_clock_drift_of_one_step_either_side(
    totp: TotpMethod, offset_steps: int, accepted: bool
) -> None:
    now = 1_700_000_010
    code = pyotp.TOTP(SECRET).at(now + 30 * offset_steps)
    if accepted:
        assert totp.match_step(SECRET, code, now=now) == now // 30 + offset_steps
    else:
        with pytest.raises(VerificationFailed):
            totp.match_step(SECRET, code, now=now)


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param("", id="empty"),
        pytest.param("12345", id="five digits"),
        pytest.param("1234567", id="seven digits"),
        pytest.param("１２３４５６", id="full-width digits"),
        pytest.param("+12345", id="plus sign"),
        pytest.param(" 123456", id="leading space"),
        pytest.param("123456 ", id="trailing space"),
        pytest.param("12 3456", id="inner space"),
        pytest.param("1" * 1_000_000, id="one megabyte"),
        pytest.param(None, id="missing"),
        pytest.param(123456, id="a number, not text"),
    ],
)
def test_malformed_codes_are_invalid_input_not_errors(totp: TotpMethod, raw: object) -> None:
    with pytest.raises(InvalidInput):
        totp.match_step(SECRET, raw, now=1_700_000_000)


def test_a_used_step_and_older_steps_are_replays(totp: TotpMethod) -> None:
    now = 1_700_000_000
    step = now // 30
    with pytest.raises(CodeReused):
        totp.authenticate_complete(SECRET, pyotp.TOTP(SECRET).at(now), last_step=step, now=now)
    older = pyotp.TOTP(SECRET).at(now - 30)
    with pytest.raises(CodeReused):
        totp.authenticate_complete(SECRET, older, last_step=step, now=now)
    newer = pyotp.TOTP(SECRET).at(now + 30)
    assert totp.authenticate_complete(SECRET, newer, last_step=step, now=now + 30) == step + 1


def test_registration_needs_a_correct_code_before_expiry(totp: TotpMethod) -> None:
    setup, state = totp.register_begin(account_name="alice@example.test", now=1000)
    assert setup.uri.startswith("otpauth://totp/Test:alice%40example.test?secret=")
    assert len(setup.secret) == 32  # 160 bits
    with pytest.raises(VerificationFailed):
        wrong = "000000" if pyotp.TOTP(setup.secret).at(1000) != "000000" else "111111"
        totp.register_complete(state, wrong, now=1000)
    assert totp.register_complete(state, pyotp.TOTP(setup.secret).at(1000), now=1000) == (
        setup.secret,
        1000 // 30,
    )
    with pytest.raises(ChallengeExpired):
        totp.register_complete(state, pyotp.TOTP(setup.secret).at(5000), now=5000)


def test_a_reload_shows_the_same_secret(totp: TotpMethod) -> None:
    setup, state = totp.register_begin(account_name="alice", now=1000)
    assert totp.setup_from_state(state) == setup
