"""The ``[methods.webauthn]`` table: relying party, origins, ceremony preferences, attestation policy.

Defaults suit the example IdP on ``http://localhost:5000``: RP id ``localhost``, that one origin.
A deployment sets ``rp_id`` (its registrable domain) and the exact origins its pages are served from;
the origins default to ``https://<rp_id>`` when only ``rp_id`` is given.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from .reader import Reader

__all__ = ["WebAuthnConfig", "read_webauthn"]

_REQUIREMENTS = ("required", "preferred", "discouraged")


@dataclass(frozen=True, kw_only=True, slots=True)
class WebAuthnConfig:
    #: the relying party id: the host name the pages are served on, or a registrable suffix of it
    rp_id: str = "localhost"
    #: shown by the browser and the authenticator ("" = the organization's name)
    rp_name: str = ""
    #: exact origins accepted in clientDataJSON (scheme, host and port)
    origins: tuple[str, ...] = ("http://localhost:5000",)
    user_verification: str = "preferred"
    resident_key: str = "preferred"
    #: allowed authenticator models (lower-case UUIDs); empty = any, with attestation "none"
    aaguids: frozenset[str] = frozenset()
    #: DER root certificates an attestation chain must end in (read from PEM files at start-up)
    attestation_roots: tuple[bytes, ...] = ()
    #: seconds a registration or sign-in challenge stays usable
    challenge_ttl: int = 300

    @property
    def attestation_required(self) -> bool:
        return bool(self.aaguids)


def _origin_problem(origin: str, rp_id: str) -> str | None:
    parts = urlsplit(origin)
    host = parts.hostname or ""
    if parts.path or parts.query or parts.fragment or not host or parts.username:
        return f"{origin!r} is not an origin (expected scheme://host[:port])"
    local = host == "localhost" or host.endswith(".localhost")
    if parts.scheme != "https" and not (parts.scheme == "http" and local):
        return f"{origin!r}: expected https (http only for localhost)"
    if host != rp_id and not host.endswith("." + rp_id):
        return f"{origin!r} is not on the RP id {rp_id!r} or a subdomain of it"
    return None


def _read_roots(r: Reader, base_dir: Path) -> tuple[bytes, ...]:
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    roots: list[bytes] = []
    for i, name in enumerate(r.str_list("attestation_roots")):
        path = Path(name) if Path(name).is_absolute() else base_dir / name
        try:
            certs = x509.load_pem_x509_certificates(path.read_bytes())
        except OSError as exc:
            r.error("attestation_roots", f"[{i}]: cannot read {str(path)!r}: {exc.strerror}")
            continue
        except ValueError:
            r.error("attestation_roots", f"[{i}]: {str(path)!r} holds no PEM certificate")
            continue
        roots += [c.public_bytes(Encoding.DER) for c in certs]
    return tuple(roots)


def _read_aaguids(r: Reader) -> frozenset[str]:
    out = set()
    for i, text in enumerate(r.str_list("aaguids")):
        try:
            out.add(str(uuid.UUID(text)))
        except ValueError:
            r.error("aaguids", f"[{i}]: {text!r} is not an AAGUID (a UUID)")
    return frozenset(out)


def read_webauthn(r: Reader, base_dir: Path = Path(".")) -> WebAuthnConfig:
    """Read ``[methods.webauthn]``; every key is optional."""
    base = WebAuthnConfig()
    rp_id = r.string("rp_id", base.rp_id, non_empty=True).lower()
    default_origins = base.origins if rp_id == base.rp_id else (f"https://{rp_id}",)
    origins = r.str_list("origins", default_origins, non_empty=True)
    for origin in origins:
        problem = _origin_problem(origin, rp_id)
        if problem:
            r.error("origins", problem)
    cfg = WebAuthnConfig(
        rp_id=rp_id,
        rp_name=r.string("rp_name", ""),
        origins=tuple(origins),
        user_verification=r.string("user_verification", "preferred", choices=_REQUIREMENTS),
        resident_key=r.string("resident_key", "preferred", choices=_REQUIREMENTS),
        aaguids=_read_aaguids(r),
        attestation_roots=_read_roots(r, base_dir),
        challenge_ttl=r.integer("challenge_ttl", base.challenge_ttl, min=30, max=900),
    )
    if cfg.aaguids and not cfg.attestation_roots:
        # Without a trusted root the AAGUID is only what the authenticator claims about itself.
        r.error("attestation_roots", "required when aaguids is set: expected PEM root files")
    r.done()
    return cfg
