"""The example IdP's users: a TOML file, plus password and MFA-state changes kept in sqlite.

:class:`TomlDirectory` implements oidc_combinedreg's ``Directory`` protocol (the middleware reads
users and groups through it, and sets a new password after a self-service reset) and is also what
the IdP's own login form checks passwords against.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.types import StartResponse, WSGIApplication, WSGIEnvironment

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from oidc_combinedreg.directory import DirectoryUser, PasswordRejected, PerUserMfa

from .db import Database
from .settings import PasswordHashSettings

__all__ = ["DirectoryEntry", "RequestRows", "TomlDirectory", "cli_directory", "load_entries"]

MIN_PASSWORD_LENGTH = 8


@dataclass(frozen=True, kw_only=True, slots=True)
class DirectoryEntry:
    """One user as written in the directory file."""

    user: DirectoryUser
    password_hash: str


def _entry(raw: dict[str, Any], where: str) -> DirectoryEntry:
    try:
        user = DirectoryUser(
            id=str(raw["id"]),
            display_name=str(raw.get("display_name", "")),
            email=raw.get("email"),
            groups=frozenset(str(g) for g in raw.get("groups", ())),
            office_phone=raw.get("office_phone"),
            per_user_mfa=PerUserMfa(raw.get("per_user_mfa", "disabled")),
            enabled=bool(raw.get("enabled", True)),
        )
        return DirectoryEntry(user=user, password_hash=str(raw["password_hash"]))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"{where}: {exc!r}") from exc


def load_entries(path: Path) -> dict[str, DirectoryEntry]:
    """Read the directory file; a broken entry stops the start with its position."""
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    entries = [
        _entry(raw, f"{path.name}: users[{i}]") for i, raw in enumerate(data.get("users", []))
    ]
    return {e.user.id: e for e in entries}


#: the users' override rows read in the WSGI request being served (user id -> MFA state
#: override, sessions cutoff); None outside :class:`RequestRows`
_request_rows: ContextVar[dict[str, tuple[str | None, int | None]] | None] = ContextVar(
    "example_idp_directory_rows", default=None
)


def _forget(user_id: str) -> None:
    """A write of the user's row: this request reads it again."""
    rows = _request_rows.get()
    if rows is not None:
        rows.pop(user_id, None)


class RequestRows:
    """WSGI middleware (outside oidc_combinedreg's): inside one request, a user's override row
    is read once, by whichever comes first of the middleware's Directory lookup (its guard at
    /authorize, each of its pages) and the host session's user loader (decision 204). Nothing
    is kept past the request, so a change made by another request or process (an MFA state set
    by an admin, sessions ended by a password reset) still takes effect at the next request
    (decision 112); a change made through this directory in the same request drops the row."""

    def __init__(self, app: WSGIApplication) -> None:
        self.app = app

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        token = _request_rows.set({})
        try:
            return self.app(environ, start_response)
        finally:
            _request_rows.reset(token)


class TomlDirectory:
    """Users from the directory file, with overrides (new passwords, MFA state) from the database."""

    def __init__(self, path: Path, db: Database, hasher: PasswordHasher | None = None) -> None:
        """``hasher``: makes new password hashes (idp.toml [password_hash]; by default OWASP's
        argon2id minimum, settings.PasswordHashSettings) and verifies stored ones of any
        parameters."""
        self._entries = load_entries(path)
        self._db = db
        self._hasher = hasher or PasswordHashSettings().hasher()
        # Verifying against this hash for unknown users keeps "no such user" as slow as "wrong
        # password": made with the same parameters as the hashes a known user's login checks.
        self._dummy_hash = self._hasher.hash("not a password of anybody")

    def user_ids(self) -> list[str]:
        """Every user (optional in the Directory protocol: ``combinedreg report registration``
        lists users the store has not seen yet through it)."""
        return sorted(self._entries)

    def get_user(self, user_id: str) -> DirectoryUser | None:
        entry = self._entries.get(user_id)
        if entry is None:
            return None
        rows = _request_rows.get()
        if rows is not None:  # the user's row is read once per WSGI request
            return self._with_override(entry.user, self._user_row(user_id, rows)[0])
        row = self._db.fetch_one(
            "SELECT per_user_mfa FROM user_overrides WHERE user_id = ?", (user_id,)
        )
        return self._with_override(entry.user, row["per_user_mfa"] if row is not None else None)

    def get_session_user(self, user_id: str) -> tuple[DirectoryUser | None, int | None]:
        """``get_user`` and ``sessions_ended_at`` in one query: the host session's user loader
        runs on every request of a signed-in browser (at /authorize after the middleware's
        guard read the same row: then none, decision 204)."""
        entry = self._entries.get(user_id)
        if entry is None:
            return None, None
        per_user_mfa, ended = self._user_row(user_id, _request_rows.get())
        return self._with_override(entry.user, per_user_mfa), ended

    def _user_row(
        self, user_id: str, rows: dict[str, tuple[str | None, int | None]] | None
    ) -> tuple[str | None, int | None]:
        """The user's MFA state override and sessions cutoff, in one query; kept in ``rows``
        (the WSGI request's, inside :class:`RequestRows`) for the rest of the request, never
        longer (a write through this directory drops it)."""
        kept = rows.get(user_id) if rows is not None else None
        if kept is not None:
            return kept
        row = self._db.fetch_one(
            "SELECT (SELECT per_user_mfa FROM user_overrides WHERE user_id = ?) AS per_user_mfa,"
            " (SELECT at FROM session_cutoffs WHERE user_id = ?) AS ended",
            (user_id, user_id),
        )
        read: tuple[str | None, int | None] = (None, None)
        if row is not None:  # always: a SELECT without FROM has its one row
            read = (row["per_user_mfa"], int(row["ended"]) if row["ended"] is not None else None)
        if rows is not None:
            rows[user_id] = read
        return read

    @staticmethod
    def _with_override(user: DirectoryUser, per_user_mfa: str | None) -> DirectoryUser:
        if per_user_mfa is None:
            return user
        return DirectoryUser(
            id=user.id,
            display_name=user.display_name,
            email=user.email,
            groups=user.groups,
            office_phone=user.office_phone,
            per_user_mfa=PerUserMfa(per_user_mfa),
            enabled=user.enabled,
        )

    def check_password(self, user_id: str, password: str) -> DirectoryUser | None:
        """The user if the password is right and the account enabled, else None."""
        entry = self._entries.get(user_id)
        row, stored = None, self._dummy_hash
        if entry is not None:  # its override row once: a reset password's hash, the MFA state
            row = self._db.fetch_one(
                "SELECT password_hash, per_user_mfa FROM user_overrides WHERE user_id = ?",
                (user_id,),
            )
            reset = row["password_hash"] if row is not None else None
            stored = str(reset) if reset else entry.password_hash
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if entry is None or not entry.user.enabled:
            return None
        if self._hasher.check_needs_rehash(stored):
            # Made with other parameters (the seed file's, or before a change of [password_hash]):
            # the password is at hand only now, so the hash is remade here (RFC 9106 4).
            self._store_password_hash(user_id, self._hasher.hash(password))
        return self._with_override(entry.user, row["per_user_mfa"] if row is not None else None)

    def set_password(self, user_id: str, new_password: str) -> None:
        if user_id not in self._entries:
            raise PasswordRejected(["There is no such account."])
        if len(new_password) < MIN_PASSWORD_LENGTH:
            raise PasswordRejected([f"Use at least {MIN_PASSWORD_LENGTH} characters."])
        if new_password.casefold() == user_id.casefold():
            raise PasswordRejected(["Don't use your user name as the password."])
        self._store_password_hash(user_id, self._hasher.hash(new_password))

    def _store_password_hash(self, user_id: str, password_hash: str) -> None:
        _forget(user_id)
        self._db.execute(
            "INSERT INTO user_overrides (user_id, password_hash) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET password_hash = excluded.password_hash",
            (user_id, password_hash),
        )

    def set_per_user_mfa(self, user_id: str, state: PerUserMfa) -> None:
        if user_id not in self._entries:
            raise KeyError(user_id)
        _forget(user_id)
        self._db.execute(
            "INSERT INTO user_overrides (user_id, per_user_mfa) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET per_user_mfa = excluded.per_user_mfa",
            (user_id, str(state)),
        )

    def end_sessions(self, user_id: str, at: int) -> None:
        """After a password reset: every host session that signed in at or before ``at`` ends."""
        _forget(user_id)
        self._db.execute(
            "INSERT INTO session_cutoffs (user_id, at) VALUES (?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET at = excluded.at",
            (user_id, at),
        )

    def sessions_ended_at(self, user_id: str) -> int | None:
        rows = _request_rows.get()
        if rows is not None:
            return self._user_row(user_id, rows)[1]
        row = self._db.fetch_one("SELECT at FROM session_cutoffs WHERE user_id = ?", (user_id,))
        return int(row["at"]) if row is not None else None


def cli_directory() -> TomlDirectory:
    """The demo's directory for the ``combinedreg`` command, as the IdP itself opens it::

        combinedreg tap issue --config example_idp/combinedreg.toml \\
            --directory example_idp.directory:cli_directory --user alice

    The users file and the instance folder are the IdP's defaults, or ``EXAMPLE_IDP_DIRECTORY``
    and ``EXAMPLE_IDP_INSTANCE`` (as for ``example_idp.wsgi``).
    """
    import os

    from .app import DEFAULT_DIRECTORY, DEFAULT_INSTANCE_PATH

    instance = Path(os.environ.get("EXAMPLE_IDP_INSTANCE") or DEFAULT_INSTANCE_PATH)
    instance.mkdir(parents=True, exist_ok=True)
    users = Path(os.environ.get("EXAMPLE_IDP_DIRECTORY") or DEFAULT_DIRECTORY)
    return TomlDirectory(users, Database(instance / "idp.sqlite3"))
