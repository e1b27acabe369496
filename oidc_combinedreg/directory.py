"""The host contract: what the host IdP tells oidc_combinedreg about its users.

The host implements :class:`Directory` (a few lines over its own user table or LDAP). The middleware
only reads from it, except :meth:`Directory.set_password` (password reset) and
:meth:`Directory.set_per_user_mfa` (admin API), which a read-only directory may refuse.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .exceptions import CombinedRegError

__all__ = [
    "Directory",
    "DirectoryUser",
    "PasswordRejected",
    "PerUserMfa",
    "RequestScopedDirectory",
    "require_directory",
]


class PerUserMfa(StrEnum):
    """The legacy per-user MFA state."""

    DISABLED = "disabled"
    ENABLED = "enabled"
    #: MFA at every sign-in; also the only state that may register app passwords
    ENFORCED = "enforced"


@dataclass(frozen=True, kw_only=True, slots=True)
class DirectoryUser:
    """What the middleware needs to know about one user."""

    id: str
    display_name: str = ""
    #: the directory's email (notifications go here too; not a registered method)
    email: str | None = None
    groups: frozenset[str] = field(default_factory=frozenset)
    #: E.164 office phone kept by the directory: shown read-only, usable for voice MFA
    office_phone: str | None = None
    per_user_mfa: PerUserMfa = PerUserMfa.DISABLED
    enabled: bool = True


class PasswordRejected(CombinedRegError):
    """The directory's password rules refused a new password; ``reasons`` are user-facing."""

    def __init__(self, reasons: Sequence[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


class Directory(Protocol):
    """Implemented by the host. Example::

    class MyDirectory:
        def get_user(self, user_id):
            row = db.users.get(user_id)
            if row is None:
                return None
            return DirectoryUser(id=row.name, display_name=row.full_name,
                                 groups=frozenset(row.groups), email=row.email)
        def set_password(self, user_id, new_password):
            db.users.set_password(user_id, new_password)   # raise PasswordRejected([...])
        def set_per_user_mfa(self, user_id, state):
            raise NotImplementedError   # read-only here
    """

    def get_user(self, user_id: str) -> DirectoryUser | None:
        """The user, or None if there is no such account."""
        ...

    def set_password(self, user_id: str, new_password: str) -> None:
        """Set a new password; raise :class:`PasswordRejected` with reasons if the rules refuse it."""
        ...

    def set_per_user_mfa(self, user_id: str, state: PerUserMfa) -> None:
        """Change the per-user MFA state, or raise ``NotImplementedError`` if the directory can't."""
        ...


#: the methods of :class:`Directory`; a read-only directory still has them (and raises)
DIRECTORY_METHODS = ("get_user", "set_password", "set_per_user_mfa")


def require_directory(directory: Any) -> Directory:
    """At start-up: the host's directory, or a ``TypeError`` naming the missing methods (a
    directory without ``set_password`` would otherwise fail only at the first password reset)."""
    missing = [n for n in DIRECTORY_METHODS if not callable(getattr(directory, n, None))]
    if directory is None or missing:
        what = "no directory=" if directory is None else f"{type(directory).__name__} lacks"
        names = ", ".join(missing)
        raise TypeError(
            f"CombinedRegistration(directory=...): {what} {names}. A Directory has get_user("
            "user_id), set_password(user_id, new_password) and set_per_user_mfa(user_id, state); "
            "a read-only one raises NotImplementedError from the last two (docs/integration.md, "
            "'The Directory protocol')."
        )
    checked: Directory = directory
    return checked


#: the users looked up in this request (RequestScopedDirectory.request_scope), else None
_this_request: ContextVar[dict[str, DirectoryUser | None] | None] = ContextVar(
    "combinedreg_directory_users", default=None
)


class RequestScopedDirectory:
    """The host's Directory, asked at most once per user in one request of the middleware's pages.

    Inside :meth:`request_scope` a ``get_user`` answer is reused for the rest of that request (the
    session check, the policies, the "security info changed" notice all need the same user);
    nothing is kept after it, so a disabled account or a removed group takes effect at the
    user's next request. ``set_password`` and ``set_per_user_mfa`` drop the user's answer, so a
    change made in the request is seen by the rest of it. Outside a scope (the host's own calls,
    the CLI) every call goes to the host. Any other attribute is the host directory's own.
    """

    def __init__(self, directory: Directory) -> None:
        self.host_directory = directory

    @staticmethod
    @contextmanager
    def request_scope() -> Iterator[None]:
        token = RequestScopedDirectory.open_scope()
        try:
            yield
        finally:
            RequestScopedDirectory.close_scope(token)

    @staticmethod
    def open_scope() -> Token[dict[str, DirectoryUser | None] | None]:
        """:meth:`request_scope` in two calls, for a caller that ends it in its own ``finally``
        (web/app.py, on every request: no generator to set up)."""
        return _this_request.set({})

    @staticmethod
    def close_scope(token: Token[dict[str, DirectoryUser | None] | None]) -> None:
        _this_request.reset(token)

    def get_user(self, user_id: str) -> DirectoryUser | None:
        users = _this_request.get()
        if users is None:
            return self.host_directory.get_user(user_id)
        if user_id not in users:
            users[user_id] = self.host_directory.get_user(user_id)
        return users[user_id]

    def set_password(self, user_id: str, new_password: str) -> None:
        try:
            self.host_directory.set_password(user_id, new_password)
        finally:
            self._forget(user_id)

    def set_per_user_mfa(self, user_id: str, state: PerUserMfa) -> None:
        try:
            self.host_directory.set_per_user_mfa(user_id, state)
        finally:
            self._forget(user_id)

    def _forget(self, user_id: str) -> None:
        users = _this_request.get()
        if users is not None:
            users.pop(user_id, None)

    def __getattr__(self, name: str) -> Any:
        # Optional parts of the host's directory (user_ids, ...) and its own attributes.
        if name == "host_directory":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.host_directory, name)
