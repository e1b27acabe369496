"""The exceptions oidc_combinedreg raises.

Decisions are values (a Conditional Access ``Decision``, a sign-in ``Step``); failures are exceptions.
The web layer maps each class to an HTTP status in one place (``web/errors.py``)::

    CombinedRegError
     +-- ConfigError                 the config file is wrong (carries every problem found)
     +-- StoreUnavailable            the store cannot be reached or refused the write: fail closed (503)
     +-- MethodError                 a method could not be registered or used
     |    +-- VerificationFailed     wrong code / signature (``reason``)
     |    +-- CodeReused             a one-time code or time step was used before
     |    +-- ChallengeExpired       the challenge is gone: expired, used, or never existed
     |    +-- LimitReached           per-user limit for this method kind (``limit``)
     |    +-- InvalidInput           malformed input (``field``, ``message``)
     +-- RateLimited                 too many attempts (``retry_after`` seconds)
     +-- AccessDenied                not allowed here (CSRF, gate, policy); ``reason`` is for logs
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "AccessDenied",
    "ChallengeExpired",
    "CodeReused",
    "CombinedRegError",
    "ConfigError",
    "ConfigProblem",
    "InvalidInput",
    "LimitReached",
    "MethodError",
    "RateLimited",
    "StoreUnavailable",
    "VerificationFailed",
]


class CombinedRegError(Exception):
    """Base class of every error raised by oidc_combinedreg."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in a config file: where it is and what was expected there."""

    #: dotted path of the offending key, e.g. ``conditional_access[2].conditions.locations.exclude[0]``
    path: str
    #: what is wrong, e.g. ``'10.0.0.0/33' is not a network``
    message: str
    #: ``"error"`` stops a server from starting; ``"warning"`` is reported by ``check-config`` only
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.path}: {self.message}" if self.path else self.message


class ConfigError(CombinedRegError):
    """The configuration is invalid. ``problems`` lists every error found, not only the first."""

    def __init__(self, problems: Sequence[ConfigProblem]) -> None:
        #: every problem found, in file order
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class StoreUnavailable(CombinedRegError):
    """The store cannot be reached or refused a write. Callers fail closed."""


class MethodsChanged(CombinedRegError):
    """A change made on a condition about the user's methods (``Store.delete_method(if_methods=
    ...)``) found them changed meanwhile: another request added or deleted one. Nothing was
    written; the caller checks again."""


class MethodError(CombinedRegError):
    """A method could not be registered or used."""


class VerificationFailed(MethodError):
    """The proof offered (a code, an answer, a signature) is wrong."""

    def __init__(self, reason: str = "wrong code") -> None:
        #: short machine-readable reason, never containing the secret or the code
        self.reason = reason
        super().__init__(reason)


class CodeReused(MethodError):
    """A one-time code, or a TOTP time step, was already used."""


class ChallengeExpired(MethodError):
    """The challenge expired, was already used, or never existed."""


class LimitReached(MethodError):
    """The user already has the maximum number of methods of this kind."""

    def __init__(self, kind: str, limit: int) -> None:
        #: the method kind
        self.kind = kind
        #: the per-user maximum
        self.limit = limit
        super().__init__(f"at most {limit} {kind} per user")


class InvalidInput(MethodError):
    """Malformed input. ``field`` names the form field so the page can keep what was typed."""

    def __init__(self, field: str, message: str) -> None:
        #: the form field at fault
        self.field = field
        #: a user-facing message (untranslated msgid)
        self.message = message
        super().__init__(f"{field}: {message}")


class RateLimited(CombinedRegError):
    """Too many attempts; try again after ``retry_after`` seconds."""

    def __init__(self, retry_after: int, scope: str = "user") -> None:
        #: seconds until another attempt is allowed
        self.retry_after = retry_after
        #: which counter tripped: ``"user"``, ``"ip"``, ...
        self.scope = scope
        super().__init__(f"rate limited ({scope}); retry after {retry_after}s")


class AccessDenied(CombinedRegError):
    """The request is not allowed: CSRF failure, MFA gate, policy block, wrong user."""

    def __init__(self, reason: str) -> None:
        #: why, for the audit log only (never shown to the user verbatim)
        self.reason = reason
        super().__init__(reason)
