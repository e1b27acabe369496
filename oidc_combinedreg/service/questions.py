"""Security questions: register a set, ask N random ones at password reset, check the answers.

Password reset only (never MFA, never the MFA gate: deliberately not an ``MfaVerifier``). Answers are
normalized, hashed one by one with Argon2id, and the list of hashes is encrypted at rest with the
secret box bound to the row, so a copied database alone does not even allow offline guessing. They
are never stored, logged or audited in clear. Wrong answers go through the same throttle as codes.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from typing import Any

from ..crypto import SecretHasher
from ..exceptions import (
    AccessDenied,
    ChallengeExpired,
    InvalidInput,
    LimitReached,
    VerificationFailed,
)
from ..methods.kinds import METHOD_RULES, MethodKind
from ..methods.questions import QuestionAnswer, check_answer_set, normalize_answer
from ..notify import Change
from ..store.base import MethodRecord
from .base import ServiceContext, secret_context

__all__ = ["QuestionsService"]

_ANSWER_MAX = 200


class QuestionsService:
    kind = MethodKind.SECURITY_QUESTIONS

    def __init__(self, ctx: ServiceContext, hasher: SecretHasher | None = None) -> None:
        self.ctx = ctx
        #: Argon2id; tests swap in ``crypto.fast_hasher_for_tests()``
        self.hasher = hasher or SecretHasher()

    @property
    def to_register(self) -> int:
        return self.ctx.config.policies.sspr.questions_to_register

    @property
    def to_answer(self) -> int:
        return self.ctx.config.policies.sspr.questions_to_answer

    def predefined(self) -> tuple[str, ...]:
        return self.ctx.config.questions.predefined

    # -- registration -------------------------------------------------------------------------

    def register(
        self, user_id: str, pairs: Sequence[QuestionAnswer], *, ip: str | None
    ) -> MethodRecord:
        """Store the set (``questions_to_register`` pairs). Raises ``InvalidInput`` naming the
        field at fault, ``LimitReached`` when a set exists (no change: delete and register again)."""
        ctx = self.ctx
        if any(m.kind is self.kind for m in ctx.store.list_methods(user_id)):
            raise LimitReached(self.kind.value, 1)
        checked = check_answer_set(pairs, count=self.to_register, config=ctx.config.questions)
        method_id = secrets.token_urlsafe(12)
        hashes = [self.hasher.hash(answer) for _, answer, _ in checked]
        record = MethodRecord(
            id=method_id,
            user_id=user_id,
            kind=self.kind,
            label="",
            created_at=ctx.clock.now(),
            data={
                "questions": [q for q, _, _ in checked],
                "custom": [c for _, _, c in checked],
            },
            secret=ctx.box.encrypt(
                json.dumps(hashes).encode(), context=secret_context(user_id, method_id)
            ),
        )
        events, notice = ctx.method_change("method.added", Change.ADDED, record, ip=ip)
        ctx.store.add_method(record, limit=METHOD_RULES[self.kind].per_user, events=events)
        notice.send()
        return record

    # -- password reset -----------------------------------------------------------------------

    def ask(
        self, user_id: str, record: MethodRecord, pending: Mapping[str, Any] | None = None
    ) -> tuple[list[str], dict[str, Any]]:
        """``questions_to_answer`` random questions of the set; the same ones again while
        ``pending`` (the returned state, kept server side) is for this method, so reloading the page
        cannot be used to shop for easier questions."""
        if record.user_id != user_id or record.kind is not self.kind:
            raise AccessDenied("not this user's security questions")
        questions = [str(q) for q in record.data.get("questions", [])]
        if pending and pending.get("method_id") == record.id and pending.get("user_id") == user_id:
            indexes = [int(i) for i in pending["indexes"]]
        else:
            count = min(self.to_answer, len(questions))
            indexes = sorted(secrets.SystemRandom().sample(range(len(questions)), count))
        state = {"user_id": user_id, "method_id": record.id, "indexes": indexes}
        return [questions[i] for i in indexes], state

    def check(
        self,
        user_id: str,
        record: MethodRecord,
        state: Mapping[str, Any] | None,
        answers: Sequence[object],
        *,
        ip: str | None,
    ) -> None:
        """Raises ``VerificationFailed`` unless every answer matches (all are checked, so the
        response never tells which one was wrong); throttled like codes."""
        ctx = self.ctx
        if not state or state.get("method_id") != record.id or state.get("user_id") != user_id:
            raise ChallengeExpired("no questions were asked")
        indexes = [int(i) for i in state["indexes"]]
        if len(answers) != len(indexes):
            raise InvalidInput("answers", "Answer every question.")
        ctx.throttle.attempt(user_id, ip)
        hashes = json.loads(
            ctx.box.decrypt(record.secret, context=secret_context(user_id, record.id))
        )
        results = [
            isinstance(answer, str)
            and len(answer) <= _ANSWER_MAX
            and self.hasher.verify(hashes[i], normalize_answer(answer))
            for i, answer in zip(indexes, answers, strict=True)
        ]
        if not all(results):
            ctx.throttle.failed(user_id, ip)
            ctx.audit("sspr.questions_failed", user_id, "failure", ip=ip, method_id=record.id)
            raise VerificationFailed("wrong answers")
        ctx.throttle.succeeded(user_id)
        ctx.audit("sspr.questions_passed", user_id, "success", ip=ip, method_id=record.id)
