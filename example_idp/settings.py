"""The example IdP's own settings (``idp.toml``): lifetimes, throttle, and the listed clients.

The middleware's settings live in a separate file (``combinedreg.toml``), read by
``oidc_combinedreg.load_config``.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, Type

from .client_auth import ClientAuthSettings, client_auth_settings
from .clients import SUPPORTED_SCOPES, Client, hash_secret
from .par_limits import ParSettings, par_settings
from .registration_limits import RegistrationSettings, registration_settings

__all__ = ["DEFAULT_SETTINGS_PATH", "IdpSettings", "PasswordHashSettings", "load_settings"]

DEFAULT_SETTINGS_PATH = Path(__file__).with_name("idp.toml")
_CLIENT_KEYS = {
    "client_id",
    "client_secret",
    "client_name",
    "token_endpoint_auth_method",
    "redirect_uris",
    "post_logout_redirect_uris",
    "scope",
}
_AUTH_METHODS = ("client_secret_basic", "client_secret_post", "none")


@dataclass(frozen=True, kw_only=True, slots=True)
class PasswordHashSettings:
    """Argon2id parameters of new password hashes (RFC 9106). The default is OWASP's first
    recommended minimum (Password Storage Cheat Sheet): 19 MiB, 2 passes, 1 lane. A stored hash
    made with other parameters still verifies, and is remade with these at the next sign-in."""

    memory_kib: int = 19 * 1024
    time_cost: int = 2
    parallelism: int = 1

    def hasher(self) -> PasswordHasher:
        return PasswordHasher(
            time_cost=self.time_cost,
            memory_cost=self.memory_kib,
            parallelism=self.parallelism,
            type=Type.ID,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class IdpSettings:
    code_lifetime: int = 300
    access_token_lifetime: int = 3600
    id_token_lifetime: int = 3600
    #: failed logins per user name from one client IP (per name and per IP: times 10) per window
    login_failures_allowed: int = 5
    login_window: int = 300
    clients: tuple[Client, ...] = ()
    password_hash: PasswordHashSettings = PasswordHashSettings()
    #: /par's limits per client and per address, and its pending requests per client
    par: ParSettings = ParSettings()
    #: failed client authentications at /token and /par, per address and per client
    client_auth: ClientAuthSettings = ClientAuthSettings()
    #: /register: open or not, its limit per address and its cap on registered clients
    registration: RegistrationSettings = RegistrationSettings()

    @property
    def open_registration(self) -> bool:
        return self.registration.open


def _client(raw: dict[str, Any], issuer: str, where: str) -> Client:
    unknown = set(raw) - _CLIENT_KEYS
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    method = raw.get("token_endpoint_auth_method", "client_secret_basic")
    if method not in _AUTH_METHODS:
        raise ValueError(f"{where}.token_endpoint_auth_method: expected one of {_AUTH_METHODS}")
    secret = raw.get("client_secret")
    if (method == "none") != (secret is None):
        raise ValueError(f"{where}: a client_secret exactly when the auth method is not 'none'")

    def uris(key: str) -> list[str]:
        # "{issuer}" lets the built-in demo RP follow the issuer the IdP is started with.
        return [str(u).replace("{issuer}", issuer) for u in raw.get(key, [])]

    metadata = {
        "client_name": raw.get("client_name", raw["client_id"]),
        "token_endpoint_auth_method": method,
        "redirect_uris": uris("redirect_uris"),
        "post_logout_redirect_uris": uris("post_logout_redirect_uris"),
        "scope": raw.get("scope", " ".join(SUPPORTED_SCOPES)),
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
    }
    return Client(
        client_id=str(raw["client_id"]),
        secret_hash=hash_secret(secret) if secret else None,
        client_metadata=metadata,
    )


_HASH_KEYS = {"memory_kib": 8, "time_cost": 1, "parallelism": 1}  # each with its least value


def _password_hash(raw: Any, where: str) -> PasswordHashSettings:
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: expected a table (memory_kib, time_cost, parallelism)")
    unknown = set(raw) - set(_HASH_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}")
    base = PasswordHashSettings()
    values = {key: raw.get(key, getattr(base, key)) for key in _HASH_KEYS}
    for key, least in _HASH_KEYS.items():
        value = values[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"{where}.{key}: expected a whole number of at least {least}")
    if values["memory_kib"] < 8 * values["parallelism"]:  # RFC 9106 3.1
        raise ValueError(f"{where}.memory_kib: expected at least 8 KiB per lane (parallelism)")
    return PasswordHashSettings(**values)


def load_settings(path: Path, *, issuer: str) -> IdpSettings:
    """Read idp.toml; a mistake stops the start with the key that is wrong."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    tokens = data.get("tokens", {})
    login = data.get("login", {})
    base = IdpSettings()
    clients = tuple(
        _client(raw, issuer, f"clients[{i}]") for i, raw in enumerate(data.get("clients", []))
    )
    return IdpSettings(
        code_lifetime=int(tokens.get("code_lifetime", base.code_lifetime)),
        access_token_lifetime=int(tokens.get("access_token_lifetime", base.access_token_lifetime)),
        id_token_lifetime=int(tokens.get("id_token_lifetime", base.id_token_lifetime)),
        login_failures_allowed=int(login.get("failures_allowed", base.login_failures_allowed)),
        login_window=int(login.get("window", base.login_window)),
        clients=clients,
        password_hash=_password_hash(data.get("password_hash", {}), f"{path.name}: password_hash"),
        par=par_settings(data.get("par", {}), f"{path.name}: par"),
        client_auth=client_auth_settings(data.get("client_auth", {}), f"{path.name}: client_auth"),
        registration=registration_settings(
            data.get("registration", {}), f"{path.name}: registration"
        ),
    )
