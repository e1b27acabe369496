"""The host contract: what the host IdP tells oidc_combinedreg about its users.

The host implements :class:`Directory` (a few lines over its own user table or LDAP). The middleware
only reads from it, except :meth:`Directory.set_password` (password reset) and
:meth:`Directory.set_per_user_mfa` (admin API), which a read-only directory may refuse.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from .exceptions import CombinedRegError

__all__ = ["Directory", "DirectoryUser", "PasswordRejected", "PerUserMfa", "require_directory"]


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
