"""The reset's decoys: an account that cannot reset (unknown, disabled, outside the policy, too
few methods) gets the same pages and the same work as one that can, where every check fails
(SECURITY.md case 46: no account enumeration)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ..policy.reset import ResetChoice
from .reset_flow import ANSWERS_MAX, answers

if TYPE_CHECKING:
    from ..config.model import Config
    from . import SecurityInfo


class ResetDecoys:
    """The decoy half of :class:`~oidc_combinedreg.service.reset.ResetService` (mixed in)."""

    info: SecurityInfo
    config: Config
    #: keys the stable per-account choice of decoy questions
    _pepper: bytes
    #: one slow hash of a dummy answer, made at the first decoy that needs it
    _dummy_hash: str | None

    def _decoy_questions(self, account: str) -> list[str]:
        """For accounts without questions: a stable set per name, then a random pick per flow,
        which is exactly how a real account's questions behave."""
        predefined = list(self.config.questions.predefined)
        sspr = self.config.policies.sspr
        seed = hmac.new(self._pepper, account.casefold().encode(), hashlib.sha256).digest()
        ranked = sorted(
            range(len(predefined)),
            key=lambda i: hmac.new(seed, str(i).encode(), hashlib.sha256).digest(),
        )
        stable = sorted(ranked[: min(sspr.questions_to_register, len(predefined))])
        count = min(sspr.questions_to_answer, len(stable))
        picked = sorted(secrets.SystemRandom().sample(stable, count))
        return [predefined[i] for i in picked]

    def _decoy_work(self, choice: ResetChoice | None, fields: Mapping[str, Any]) -> None:
        # Answers are slow-hashed for real accounts: hash as many for a decoy.
        if choice is not ResetChoice.QUESTIONS:
            return
        hasher = self.info.questions.hasher
        if self._dummy_hash is None:
            self._dummy_hash = hasher.hash("decoy answer")
        for answer in answers(fields)[:ANSWERS_MAX]:
            hasher.verify(self._dummy_hash, str(answer))
