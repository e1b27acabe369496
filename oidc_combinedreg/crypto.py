"""Secrets at rest, slow hashes, peppered code hashes and CSPRNG values. Pure: no I/O.

* :class:`SecretBox` encrypts what must be read back (TOTP seeds, push keys) with AES-256-GCM and
  rotating keys. Not ``MultiFernet``: Fernet has no associated data, and binding each ciphertext to
  its owner (user id + method id) is the point: a seed copied into another user's row must not
  decrypt. A token is ``version (1) | key id (4) | nonce (12) | ciphertext | tag (16)``; the key id
  is derived from the key itself, so reordering the configured keys never breaks old tokens.
* :class:`SecretHasher` (Argon2id, argon2-cffi) hashes what is only ever compared (app passwords,
  security answers, Temporary Access Passes).
* :class:`CodeHasher` hashes short one-time codes with HMAC-SHA256 under a server pepper: six digits
  have a million values, so a plain or even a slow hash of them is reversed instantly by anyone who
  reads the store; without the pepper the stored value is useless.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import cached_property

import argon2
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .exceptions import CombinedRegError

__all__ = [
    "CodeHasher",
    "DecryptionFailed",
    "InvalidKey",
    "SecretBox",
    "SecretHasher",
    "bind_context",
    "fast_hasher_for_tests",
    "generate_key",
    "hash_secret",
    "needs_rehash",
    "parse_key",
    "random_digits",
    "random_id",
    "verify_secret",
]

_VERSION = b"\x01"
_KEY_ID_LEN = 4
_NONCE_LEN = 12
_TAG_LEN = 16
_HEADER_LEN = len(_VERSION) + _KEY_ID_LEN
KEY_LEN = 32
_CODE_HASH_PREFIX = "h1$"


class InvalidKey(CombinedRegError, ValueError):
    """A configured key or pepper is not what it must be (32 bytes, base64url)."""


class DecryptionFailed(CombinedRegError):
    """A token could not be decrypted. ``reason`` says why, never containing key or plaintext."""

    def __init__(self, reason: str) -> None:
        #: ``malformed token``, ``unknown key id`` or ``wrong key, context or tampered token``
        self.reason = reason
        super().__init__(f"cannot decrypt secret: {reason}")


# -- keys ---------------------------------------------------------------------------------------


def generate_key() -> str:
    """A new random 256-bit key as base64url text (no padding), ready for the config file."""
    return base64.urlsafe_b64encode(secrets.token_bytes(KEY_LEN)).rstrip(b"=").decode("ascii")


def parse_key(text: str) -> bytes:
    """The 32 key bytes from :func:`generate_key` text; :class:`InvalidKey` says what is wrong."""
    cleaned = text.strip()
    try:
        padded = cleaned + "=" * (-len(cleaned) % 4)
        raw = base64.b64decode(padded, altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise InvalidKey("not base64url text (see oidc_combinedreg.crypto.generate_key)") from None
    if len(raw) != KEY_LEN:
        raise InvalidKey(f"decodes to {len(raw)} bytes, expected {KEY_LEN}")
    return raw


def _key_id(key: bytes) -> bytes:
    return hashlib.sha256(b"oidc-combinedreg key id\x00" + key).digest()[:_KEY_ID_LEN]


def bind_context(*parts: str) -> bytes:
    """An unambiguous context from strings: ``("ab", "c")`` differs from ``("a", "bc")``."""
    out = bytearray()
    for part in parts:
        encoded = part.encode("utf-8")
        out += len(encoded).to_bytes(4, "big") + encoded
    return bytes(out)


# -- encryption at rest -------------------------------------------------------------------------


class SecretBox:
    """Authenticated encryption with rotating keys: the first key encrypts, every key decrypts."""

    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys:
            raise InvalidKey("at least one key is needed")
        self._ciphers: dict[bytes, AESGCM] = {}
        for key in keys:
            if len(key) != KEY_LEN:
                raise InvalidKey(f"a key has {len(key)} bytes, expected {KEY_LEN}")
            kid = _key_id(key)
            if kid in self._ciphers:
                raise InvalidKey("the same key is listed twice")
            self._ciphers[kid] = AESGCM(key)
        self._current = _key_id(keys[0])

    def encrypt(self, plaintext: bytes, *, context: bytes) -> bytes:
        """Encrypt with the newest key, bound to ``context`` (see :func:`bind_context`)."""
        header = _VERSION + self._current
        nonce = secrets.token_bytes(_NONCE_LEN)
        sealed = self._ciphers[self._current].encrypt(nonce, plaintext, header + context)
        return header + nonce + sealed

    def decrypt(self, token: bytes, *, context: bytes) -> bytes:
        """The plaintext; :class:`DecryptionFailed` for a wrong context, key or a changed token."""
        if len(token) < _HEADER_LEN + _NONCE_LEN + _TAG_LEN or token[:1] != _VERSION:
            raise DecryptionFailed("malformed token")
        header, kid = token[:_HEADER_LEN], token[1:_HEADER_LEN]
        cipher = self._ciphers.get(kid)
        if cipher is None:
            raise DecryptionFailed("unknown key id")
        nonce = token[_HEADER_LEN : _HEADER_LEN + _NONCE_LEN]
        try:
            return cipher.decrypt(nonce, token[_HEADER_LEN + _NONCE_LEN :], header + context)
        except InvalidTag:
            raise DecryptionFailed("wrong key, context or tampered token") from None

    def is_current(self, token: bytes) -> bool:
        """True if ``token`` was written with the newest key (nothing to rotate)."""
        return token[1:_HEADER_LEN] == self._current

    def rotate(self, token: bytes, context: bytes) -> bytes:
        """``token`` re-encrypted with the newest key (same plaintext, same context)."""
        return self.encrypt(self.decrypt(token, context=context), context=context)


# -- slow hashes (Argon2id) ---------------------------------------------------------------------


class SecretHasher:
    """Argon2id hashing for secrets that are only compared, never read back."""

    def __init__(self, parameters: argon2.Parameters = argon2.profiles.RFC_9106_LOW_MEMORY) -> None:
        self._hasher = argon2.PasswordHasher.from_parameters(parameters)

    @cached_property
    def _dummy_hash(self) -> str:
        return self._hasher.hash(secrets.token_urlsafe(16))

    def hash(self, text: str) -> str:
        return self._hasher.hash(text)

    def verify(self, stored: str, text: str) -> bool:
        """True iff ``text`` matches; never raises on a mismatch or a malformed ``stored`` hash."""
        try:
            return self._hasher.verify(stored, text)
        except argon2.exceptions.InvalidHashError:
            # Spend the same time as a real check, so a missing hash does not show in the timing.
            self._verify_quietly(self._dummy_hash, text)
            return False
        except argon2.exceptions.VerificationError:
            return False

    def _verify_quietly(self, stored: str, text: str) -> None:
        try:
            self._hasher.verify(stored, text)
        except argon2.exceptions.VerificationError:
            pass

    def needs_rehash(self, stored: str) -> bool:
        """True if ``stored`` was made with other parameters (rehash after a successful verify)."""
        try:
            return self._hasher.check_needs_rehash(stored)
        except argon2.exceptions.InvalidHashError:
            return True


_DEFAULT_HASHER = SecretHasher()


def fast_hasher_for_tests() -> SecretHasher:
    """A hasher with argon2-cffi's cheapest parameters: for test suites only, never production."""
    return SecretHasher(argon2.profiles.CHEAPEST)


def hash_secret(text: str, *, hasher: SecretHasher = _DEFAULT_HASHER) -> str:
    """Argon2id hash of ``text`` (RFC 9106 low-memory profile unless another hasher is given)."""
    return hasher.hash(text)


def verify_secret(stored: str, text: str, *, hasher: SecretHasher = _DEFAULT_HASHER) -> bool:
    """True iff ``text`` matches ``stored``; False (never an exception) otherwise."""
    return hasher.verify(stored, text)


def needs_rehash(stored: str, *, hasher: SecretHasher = _DEFAULT_HASHER) -> bool:
    return hasher.needs_rehash(stored)


# -- one-time codes -----------------------------------------------------------------------------


class CodeHasher:
    """Peppered HMAC-SHA256 of short one-time codes, bound to a context (challenge id, user id)."""

    def __init__(self, pepper: bytes) -> None:
        if len(pepper) < 16:
            raise InvalidKey(f"the pepper has {len(pepper)} bytes, expected at least 16")
        self._pepper = pepper

    def hash(self, code: str, context: bytes) -> str:
        mac = hmac.new(self._pepper, bind_context(code) + context, hashlib.sha256)
        return _CODE_HASH_PREFIX + mac.hexdigest()

    def verify(self, stored: str, code: str, context: bytes) -> bool:
        """Constant-time comparison with a stored :meth:`hash`; False for anything malformed."""
        return hmac.compare_digest(stored.encode("utf-8"), self.hash(code, context).encode("ascii"))


# -- randomness ---------------------------------------------------------------------------------


def random_id() -> str:
    """A 128-bit random identifier as URL-safe text (22 characters)."""
    return secrets.token_urlsafe(16)


def random_digits(n: int) -> str:
    """``n`` CSPRNG decimal digits, leading zeros kept. At least 6 (NIST SP 800-63B)."""
    if n < 6:
        raise ValueError(f"one-time codes need at least 6 digits, got {n}")
    return f"{secrets.randbelow(10**n):0{n}d}"
