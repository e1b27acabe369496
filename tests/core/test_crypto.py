"""Secrets at rest (SecretBox), Argon2 hashes, peppered code hashes and CSPRNG helpers."""

from __future__ import annotations

import pytest

from oidc_combinedreg import crypto
from oidc_combinedreg.crypto import (
    CodeHasher,
    DecryptionFailed,
    InvalidKey,
    SecretBox,
    bind_context,
    fast_hasher_for_tests,
    generate_key,
    parse_key,
)

OLD_KEY = bytes(range(32))
NEW_KEY = bytes(range(32, 64))
CONTEXT = bind_context("alice", "method-1")
SEED = b"JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


# -- SecretBox ------------------------------------------------------------------------------------


def test_a_secret_round_trips_and_is_not_stored_in_clear() -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(SEED, context=CONTEXT)
    assert SEED not in token
    assert box.decrypt(token, context=CONTEXT) == SEED


def test_the_same_secret_encrypts_differently_each_time() -> None:
    box = SecretBox([NEW_KEY])
    assert box.encrypt(SEED, context=CONTEXT) != box.encrypt(SEED, context=CONTEXT)


def test_after_rotation_old_tokens_decrypt_and_new_ones_use_the_first_key() -> None:
    old_token = SecretBox([OLD_KEY]).encrypt(SEED, context=CONTEXT)
    rotated_box = SecretBox([NEW_KEY, OLD_KEY])
    assert rotated_box.decrypt(old_token, context=CONTEXT) == SEED
    assert not rotated_box.is_current(old_token)
    new_token = rotated_box.encrypt(SEED, context=CONTEXT)
    assert rotated_box.is_current(new_token)
    assert SecretBox([NEW_KEY]).decrypt(new_token, context=CONTEXT) == SEED
    with pytest.raises(DecryptionFailed, match="unknown key id"):
        SecretBox([OLD_KEY]).decrypt(new_token, context=CONTEXT)


def test_rotate_rewrites_with_the_newest_key() -> None:
    old_token = SecretBox([OLD_KEY]).encrypt(SEED, context=CONTEXT)
    rotated = SecretBox([NEW_KEY, OLD_KEY]).rotate(old_token, CONTEXT)
    assert SecretBox([NEW_KEY]).decrypt(rotated, context=CONTEXT) == SEED


def test_key_order_does_not_matter_for_decryption() -> None:
    token = SecretBox([OLD_KEY, NEW_KEY]).encrypt(SEED, context=CONTEXT)
    assert SecretBox([NEW_KEY, OLD_KEY]).decrypt(token, context=CONTEXT) == SEED


@pytest.mark.parametrize(
    "other_context",
    [
        pytest.param(bind_context("bob", "method-1"), id="another user's row"),
        pytest.param(bind_context("alice", "method-2"), id="another method of the same user"),
        pytest.param(bind_context("alicem", "ethod-1"), id="the same characters split elsewhere"),
        pytest.param(b"", id="no context"),
    ],
)
def test_a_token_moved_to_another_context_does_not_decrypt(other_context: bytes) -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(SEED, context=CONTEXT)
    with pytest.raises(DecryptionFailed, match="wrong key, context or tampered"):
        box.decrypt(token, context=other_context)


def _flip(token: bytes, index: int) -> bytes:
    return token[:index] + bytes([token[index] ^ 0x01]) + token[index + 1 :]


@pytest.mark.parametrize(
    ("tamper", "reason"),
    [
        pytest.param(lambda t: _flip(t, len(t) - 1), "tampered", id="a flipped tag bit"),
        pytest.param(lambda t: _flip(t, 20), "tampered", id="a flipped ciphertext bit"),
        pytest.param(lambda t: _flip(t, 8), "tampered", id="a flipped nonce bit"),
        pytest.param(lambda t: _flip(t, 0), "malformed", id="another version byte"),
        pytest.param(lambda t: _flip(t, 2), "unknown key id", id="another key id"),
        pytest.param(lambda t: t[:20], "malformed", id="a truncated token"),
        pytest.param(lambda t: b"", "malformed", id="an empty token"),
    ],
)
def test_a_tampered_token_does_not_decrypt(tamper: object, reason: str) -> None:
    box = SecretBox([NEW_KEY])
    token = box.encrypt(SEED, context=CONTEXT)
    with pytest.raises(DecryptionFailed, match=reason):
        box.decrypt(tamper(token), context=CONTEXT)  # type: ignore[operator]


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        pytest.param([], "at least one key", id="no keys"),
        pytest.param([b"short"], "expected 32", id="a short key"),
        pytest.param([OLD_KEY, OLD_KEY], "twice", id="a key listed twice"),
    ],
)
def test_a_box_with_bad_keys_is_refused(keys: list[bytes], message: str) -> None:
    with pytest.raises(InvalidKey, match=message):
        SecretBox(keys)


# -- key text -------------------------------------------------------------------------------------


def test_a_generated_key_parses_back_to_32_random_bytes() -> None:
    text = generate_key()
    assert text.isascii() and "=" not in text
    assert len(parse_key(text)) == 32
    assert parse_key(f"  {text}\n") == parse_key(text)
    assert generate_key() != text


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param("not base64 !!!", "not base64url", id="not base64"),
        pytest.param("a" * 20, "expected 32", id="too short"),
        pytest.param("a" * 64, "expected 32", id="too long"),
        pytest.param("", "expected 32", id="empty"),
    ],
)
def test_a_bad_key_text_is_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(InvalidKey, match=message):
        parse_key(text)


# -- Argon2 ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def hasher() -> crypto.SecretHasher:
    return fast_hasher_for_tests()


def test_a_hashed_secret_verifies_only_with_the_same_text(hasher: crypto.SecretHasher) -> None:
    stored = crypto.hash_secret("correct horse", hasher=hasher)
    assert stored.startswith("$argon2id$")
    assert crypto.verify_secret(stored, "correct horse", hasher=hasher) is True
    assert crypto.verify_secret(stored, "correct horsE", hasher=hasher) is False
    assert crypto.verify_secret(stored, "", hasher=hasher) is False


@pytest.mark.parametrize("stored", ["", "garbage", "$argon2id$v=19$m=8,t=1,p=1$bad"])
def test_a_malformed_hash_never_verifies_and_never_raises(
    hasher: crypto.SecretHasher, stored: str
) -> None:
    assert crypto.verify_secret(stored, "anything", hasher=hasher) is False
    assert crypto.needs_rehash(stored, hasher=hasher) is True


def test_hashes_from_other_parameters_need_a_rehash(hasher: crypto.SecretHasher) -> None:
    fast = crypto.hash_secret("pw", hasher=hasher)
    assert crypto.needs_rehash(fast, hasher=hasher) is False
    assert crypto.needs_rehash(fast) is True, "the default (RFC 9106 low-memory) is stronger"


def test_the_default_profile_is_rfc_9106_low_memory() -> None:
    stored = crypto.hash_secret("pw")
    assert "$m=65536,t=3,p=4$" in stored
    assert crypto.verify_secret(stored, "pw") is True


# -- one-time codes -------------------------------------------------------------------------------


PEPPER = b"p" * 32


def test_a_code_hash_verifies_the_code_in_its_context_only() -> None:
    codes = CodeHasher(PEPPER)
    stored = codes.hash("123456", bind_context("challenge-1"))
    assert "123456" not in stored
    assert codes.verify(stored, "123456", bind_context("challenge-1")) is True
    assert codes.verify(stored, "123457", bind_context("challenge-1")) is False
    assert codes.verify(stored, "123456", bind_context("challenge-2")) is False
    assert CodeHasher(b"q" * 32).verify(stored, "123456", bind_context("challenge-1")) is False


@pytest.mark.parametrize("stored", ["", "h1$", "h1$zz", "123456", "\u00e9"])
def test_a_malformed_code_hash_never_verifies(stored: str) -> None:
    assert CodeHasher(PEPPER).verify(stored, "123456", b"") is False


def test_a_short_pepper_is_refused() -> None:
    with pytest.raises(InvalidKey, match="at least 16"):
        CodeHasher(b"short")


# -- randomness -----------------------------------------------------------------------------------


@pytest.mark.parametrize("n", [6, 8])
def test_random_digits_have_the_asked_length(n: int) -> None:
    codes = {crypto.random_digits(n) for _ in range(200)}
    assert all(len(c) == n and c.isdigit() and c.isascii() for c in codes)
    assert len(codes) > 190, "200 draws from 10^6 values barely ever collide"


def test_random_digits_refuse_short_codes() -> None:
    with pytest.raises(ValueError, match="at least 6"):
        crypto.random_digits(5)


def test_random_ids_are_url_safe_and_distinct() -> None:
    ids = {crypto.random_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(len(i) == 22 and i.replace("-", "").replace("_", "").isalnum() for i in ids)
