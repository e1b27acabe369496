"""Hardware OATH code checks against RFC 4226 / RFC 6238 vectors and oathtool (an independent reference)."""

from __future__ import annotations

import base64
import shutil
import subprocess

import pytest

from oidc_combinedreg.exceptions import CodeReused, InvalidInput, VerificationFailed
from oidc_combinedreg.methods.hardware_oath import (
    HardwareOathMethod,
    OathHash,
    OathKind,
    OathParams,
    code_at,
)

RFC_SECRET = b"12345678901234567890"
RFC_SECRETS = {
    OathHash.SHA1: RFC_SECRET,
    OathHash.SHA256: b"12345678901234567890123456789012",
    OathHash.SHA512: b"1234567890123456789012345678901234567890123456789012345678901234",
}
HOTP = OathParams(kind=OathKind.HOTP)
METHOD = HardwareOathMethod(hotp_window=10, resync_window=100, totp_drift_steps=1)

# RFC 4226 appendix D: HOTP values for counters 0..9
RFC4226 = [
    "755224",
    "287082",
    "359152",
    "969429",
    "338314",
    "254676",
    "287922",
    "162583",
    "399871",
    "520489",
]

# RFC 6238 appendix B: (time, SHA1, SHA256, SHA512), 8 digits, 30 s
RFC6238 = [
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize("counter", range(10))
def test_hotp_matches_rfc4226_appendix_d(counter: int) -> None:
    assert code_at(RFC_SECRET, HOTP, counter) == RFC4226[counter]
    new = METHOD.authenticate_complete(RFC_SECRET, HOTP, RFC4226[counter], counter=counter, now=0)
    assert new == counter + 1


@pytest.mark.parametrize(
    ("now", "hash_", "code"),
    [
        pytest.param(t, h, c, id=f"{h.value} at {t}")
        for t, *codes in RFC6238
        for h, c in zip(OathHash, codes, strict=True)
    ],
)
def test_totp_matches_rfc6238_appendix_b(now: int, hash_: OathHash, code: str) -> None:
    params = OathParams(kind=OathKind.TOTP, digits=8, hash=hash_)
    step = METHOD.authenticate_complete(RFC_SECRETS[hash_], params, code, counter=0, now=now)
    assert step == now // 30


oathtool = pytest.mark.skipif(shutil.which("oathtool") is None, reason="oathtool not installed")


def _oathtool(*args: str) -> str:
    return subprocess.run(
        ["oathtool", *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@oathtool
@pytest.mark.parametrize("counter", [0, 7, 1000])
def test_hotp_agrees_with_oathtool(counter: int) -> None:
    b32 = base64.b32encode(RFC_SECRET).decode()
    assert code_at(RFC_SECRET, HOTP, counter) == _oathtool("-b", "-c", str(counter), b32)


@oathtool
@pytest.mark.parametrize("period", [30, 60])
def test_totp_agrees_with_oathtool_for_both_time_steps(period: int) -> None:
    secret = bytes(range(20))
    b32 = base64.b32encode(secret).decode()
    now = 1_700_000_123
    code = _oathtool("--totp", f"--time-step-size={period}s", "-b", b32, "--now", f"@{now}")
    params = OathParams(kind=OathKind.TOTP, period=period)
    assert METHOD.authenticate_complete(secret, params, code, counter=0, now=now) == now // period


def test_hotp_look_ahead_is_small_and_moves_the_counter_only_on_success() -> None:
    # 9 presses ahead is inside the window of 10; the returned counter skips past the code.
    assert METHOD.authenticate_complete(RFC_SECRET, HOTP, RFC4226[9], counter=0, now=0) == 10
    with pytest.raises(VerificationFailed):
        METHOD.authenticate_complete(RFC_SECRET, HOTP, "000000", counter=0, now=0)


def test_hotp_code_beyond_the_window_is_refused() -> None:
    code = code_at(RFC_SECRET, HOTP, 10)
    with pytest.raises(VerificationFailed):
        METHOD.authenticate_complete(RFC_SECRET, HOTP, code, counter=0, now=0)


def test_hotp_old_counter_value_is_refused() -> None:
    with pytest.raises(VerificationFailed):
        METHOD.authenticate_complete(RFC_SECRET, HOTP, RFC4226[3], counter=4, now=0)


def test_hotp_resync_needs_two_consecutive_codes() -> None:
    first, second = code_at(RFC_SECRET, HOTP, 50), code_at(RFC_SECRET, HOTP, 51)
    assert METHOD.resync(RFC_SECRET, HOTP, first, second, counter=0) == 52
    with pytest.raises(VerificationFailed):
        METHOD.resync(RFC_SECRET, HOTP, first, code_at(RFC_SECRET, HOTP, 53), counter=0)
    with pytest.raises(VerificationFailed):  # beyond the resync window
        METHOD.resync(
            RFC_SECRET,
            HOTP,
            code_at(RFC_SECRET, HOTP, 150),
            code_at(RFC_SECRET, HOTP, 151),
            counter=0,
        )


def test_totp_step_at_or_before_the_last_used_is_a_replay() -> None:
    params = OathParams(kind=OathKind.TOTP)
    now = 1_700_000_000
    code = code_at(RFC_SECRET, params, now // 30)
    with pytest.raises(CodeReused):
        METHOD.authenticate_complete(RFC_SECRET, params, code, counter=now // 30, now=now)


@pytest.mark.parametrize(
    ("drift", "accepted"),
    [
        pytest.param(-2, False, id="two steps behind -> refused"),
        pytest.param(-1, True, id="one step behind -> accepted"),
        pytest.param(1, True, id="one step ahead -> accepted"),
        pytest.param(2, False, id="two steps ahead -> refused"),
    ],
)
def test_totp_drift_window(drift: int, accepted: bool) -> None:
    params = OathParams(kind=OathKind.TOTP)
    now = 1_700_000_000
    code = code_at(RFC_SECRET, params, now // 30 + drift)
    if accepted:
        assert METHOD.authenticate_complete(RFC_SECRET, params, code, counter=0, now=now)
    else:
        with pytest.raises(VerificationFailed):
            METHOD.authenticate_complete(RFC_SECRET, params, code, counter=0, now=now)


@pytest.mark.parametrize(
    "code",
    [
        pytest.param("", id="empty"),
        pytest.param("12345", id="five digits"),
        pytest.param("1234567", id="seven digits"),
        pytest.param("１２３４５６", id="full-width digits"),
        pytest.param("+12345", id="plus sign"),
        pytest.param(" 123456", id="padded"),
        pytest.param("1" * 1_000_000, id="a megabyte"),
        pytest.param(123456, id="not a string"),
    ],
)
def test_malformed_codes_are_invalid_input(code: object) -> None:
    with pytest.raises(InvalidInput):
        METHOD.authenticate_complete(RFC_SECRET, HOTP, code, counter=0, now=0)


def test_params_refuse_unsupported_digits_and_periods() -> None:
    with pytest.raises(InvalidInput):
        OathParams(digits=5)
    with pytest.raises(InvalidInput):
        OathParams(kind=OathKind.TOTP, period=45)
