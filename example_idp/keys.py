"""Secrets made on first start and kept in the instance folder: the ID token signing key and the
Flask secret key. Several gunicorn workers may start at once: the first file written wins."""

from __future__ import annotations

import json
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from joserfc.jwk import KeySet, RSAKey

__all__ = ["SigningKey", "read_or_create"]


def read_or_create(path: Path, make: Callable[[], str]) -> str:
    """The file's text; if it does not exist yet, write ``make()`` there first (mode 0600)."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        try:
            with os.fdopen(fd, "w") as fh:
                fh.write(make())
            os.chmod(tmp, 0o600)
            try:
                os.link(tmp, path)  # atomic and refuses to replace: a concurrent winner is kept
            except FileExistsError:
                pass
        finally:
            os.unlink(tmp)
    return path.read_text()


class SigningKey:
    """The RS256 key that signs ID tokens; its public half is published as the JWKS."""

    ALG = "RS256"

    def __init__(self, path: Path) -> None:
        text = read_or_create(path, self._generate)
        self.private = RSAKey.import_key(json.loads(text))
        #: the RFC 7638 thumbprint: stable across restarts, put in every ID token header
        self.kid = str(self.private.kid)

    @staticmethod
    def _generate() -> str:
        key = RSAKey.generate_key(2048, auto_kid=True)
        return json.dumps(key.as_dict(private=True))

    @property
    def public_jwks(self) -> dict[str, Any]:
        """The JWKS document: public members only."""
        public = self.private.as_dict(private=False)
        public.update({"use": "sig", "alg": self.ALG, "kid": self.kid})
        return {"keys": [public]}

    @property
    def public_key_set(self) -> KeySet:
        return KeySet.import_key_set(self.public_jwks)  # type: ignore[arg-type]


def new_secret_key() -> str:
    return secrets.token_urlsafe(48)
