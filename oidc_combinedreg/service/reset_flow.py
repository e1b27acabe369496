"""A password reset's state between requests: its step, what it has passed, and its token.

The state lives server side under its own random token (``reset:flow:<sha256>``) as a store
challenge; :class:`~oidc_combinedreg.service.reset.ResetService` takes it and stores it again
under a new token at every POST (why: service/reset.py's docstring).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from ..methods.kinds import MethodKind
from ..policy.reset import Passed, ResetChoice

#: a reset flow lives this long from its start, whatever happens in it
FLOW_TTL = 900
#: at most this many answers are read from a form (and slow-hashed for a decoy)
ANSWERS_MAX = 5
_KEY = "reset:flow:"


class ResetStep(StrEnum):
    ACCOUNT = "account"
    CHOOSE = "choose"
    VERIFY = "verify"
    PASSWORD = "password"


@dataclass(frozen=True, kw_only=True)
class ResetFlow:
    """One reset in progress (JSON-safe through :meth:`as_dict`)."""

    step: ResetStep
    csrf: str
    created_at: float
    #: the account name as typed (stripped)
    account: str = ""
    #: the directory account, when one exists (decoy flows of real accounts keep it for audit)
    user_id: str | None = None
    eligible: bool = False
    has_mfa: bool = False
    choice: ResetChoice | None = None
    #: the current method's state (a code challenge id, the questions asked)
    method: Mapping[str, Any] = field(default_factory=dict)
    passed: tuple[Passed, ...] = ()
    passed_choices: tuple[ResetChoice, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.step.value,
            "csrf": self.csrf,
            "created_at": self.created_at,
            "account": self.account,
            "user_id": self.user_id,
            "eligible": self.eligible,
            "has_mfa": self.has_mfa,
            "choice": self.choice.value if self.choice else None,
            "method": dict(self.method),
            "passed": [[p.kind.value, p.channel, p.mfa] for p in self.passed],
            "passed_choices": [c.value for c in self.passed_choices],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ResetFlow:
        choice = data.get("choice")
        return cls(
            step=ResetStep(data["step"]),
            csrf=str(data["csrf"]),
            created_at=float(data["created_at"]),
            account=str(data.get("account", "")),
            user_id=data.get("user_id"),
            eligible=bool(data.get("eligible")),
            has_mfa=bool(data.get("has_mfa")),
            choice=ResetChoice(choice) if choice else None,
            method=dict(data.get("method") or {}),
            passed=tuple(
                Passed(kind=MethodKind(k), channel=str(c), mfa=bool(m))
                for k, c, m in data.get("passed", [])
            ),
            passed_choices=tuple(ResetChoice(c) for c in data.get("passed_choices", [])),
        )


def flow_token_key(token: str) -> str:
    """The store key of a flow's state: the token's hash, never the token itself."""
    return _KEY + hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def plausible_token(token: str | None) -> bool:
    return bool(token) and 20 <= len(token or "") <= 100 and (token or "").isascii()


def answers(fields: Mapping[str, Any]) -> list[object]:
    """The answers a questions form sent, as a list (at most :data:`ANSWERS_MAX`)."""
    raw = fields.get("answers")
    if isinstance(raw, list):
        return list(raw[:ANSWERS_MAX])
    return [fields.get(f"answer{i}", "") for i in range(ANSWERS_MAX) if f"answer{i}" in fields]
