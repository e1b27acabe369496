"""Self-service password reset: which methods may prove who the user is, and when that is enough.

Pure decisions, no I/O (the service in ``service/reset.py`` gathers the facts). The rules:

* a method counts if its kind may reset passwords (the methods table), the SSPR policy lists it,
  the authentication-methods policy allows it for the user, and it can be delivered (a provider);
* methods count per **channel**, not per kind: a text and a call to the same number are one
  channel, and so are two phone kinds with the same number; every authenticator app (TOTP or the
  push app's code) is one channel, because they usually live on the same phone; a hardware token
  and an email address are each their own channel;
* "N of M": at least ``methods_required`` distinct channels passed;
* a user who has any MFA-capable method must pass at least one MFA-capable method: an email code
  (or answers) alone must not reset the password of an MFA user (SECURITY.md case 47);
* security questions are never the only method a reset rests on, unless ``allow_questions_alone``;
* where users may write their own questions, questions are never asked before another method
  proved the user: a question of the user's own would show that the account exists (a decoy can
  only imitate the predefined ones).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from ..methods.kinds import METHOD_RULES, MethodKind
from ..store.base import MethodRecord
from .config import PolicyConfig

__all__ = [
    "CHOICE_KINDS",
    "PASSWORD_RESET_REQUIRED",
    "Eligibility",
    "Passed",
    "ResetBlock",
    "ResetChoice",
    "ResetFacts",
    "channel_of",
    "eligibility",
    "next_choices",
    "offered_choices",
    "passed_from",
    "satisfied",
    "usable_methods",
]

#: the user-state flag ("This wasn't me") that sends the next sign-in to a password reset
PASSWORD_RESET_REQUIRED = "password_reset_required"


class ResetChoice(StrEnum):
    """What the method chooser offers: method *types*, the same list for every account."""

    APP_CODE = "app_code"
    MOBILE_TEXT = "mobile_text"
    MOBILE_CALL = "mobile_call"
    ALTERNATE_CALL = "alternate_call"
    OFFICE_CALL = "office_call"
    EMAIL = "email"
    QUESTIONS = "questions"


#: the method kinds behind each choice (a code from any app or token answers "app code")
CHOICE_KINDS: dict[ResetChoice, tuple[MethodKind, ...]] = {
    ResetChoice.APP_CODE: (MethodKind.TOTP, MethodKind.PUSH, MethodKind.HARDWARE_OATH),
    ResetChoice.MOBILE_TEXT: (MethodKind.MOBILE_PHONE,),
    ResetChoice.MOBILE_CALL: (MethodKind.MOBILE_PHONE,),
    ResetChoice.ALTERNATE_CALL: (MethodKind.ALTERNATE_PHONE,),
    ResetChoice.OFFICE_CALL: (MethodKind.OFFICE_PHONE,),
    ResetChoice.EMAIL: (MethodKind.EMAIL,),
    ResetChoice.QUESTIONS: (MethodKind.SECURITY_QUESTIONS,),
}

_PHONES = (MethodKind.MOBILE_PHONE, MethodKind.ALTERNATE_PHONE, MethodKind.OFFICE_PHONE)
_APPS = (MethodKind.TOTP, MethodKind.PUSH)


class ResetBlock(StrEnum):
    """Why an account cannot reset its password itself (never shown before the user proves it)."""

    UNKNOWN_ACCOUNT = "unknown_account"
    DISABLED = "disabled"
    NOT_ENABLED = "not_enabled"
    TOO_FEW_METHODS = "too_few_methods"


@dataclass(frozen=True, kw_only=True, slots=True)
class Passed:
    """One method passed in a reset flow."""

    kind: MethodKind
    #: the distinct-channel key (see :func:`channel_of`)
    channel: str
    #: the method is MFA-capable (a phone, an app, a token), not an email or answers
    mfa: bool


@dataclass(frozen=True, kw_only=True, slots=True)
class ResetFacts:
    """What the service knows about the named account (``exists=False``: no such account)."""

    user_id: str
    exists: bool
    enabled: bool = True
    groups: frozenset[str] = frozenset()
    #: every registered method, the directory's office phone included
    methods: Sequence[MethodRecord] = ()
    #: kinds a provider can deliver now (no email provider: no email codes)
    deliverable: frozenset[MethodKind] = frozenset(MethodKind)


@dataclass(frozen=True, kw_only=True, slots=True)
class Eligibility:
    block: ResetBlock | None
    #: the user has an MFA-capable method, so the reset must include one
    has_mfa: bool = False

    @property
    def eligible(self) -> bool:
        return self.block is None


def channel_of(record: MethodRecord) -> str:
    """The distinct-channel key: one per phone number, one for all apps, one per token or address."""
    if record.kind in _PHONES:
        return f"phone:{record.data.get('phone', record.id)}"
    if record.kind in _APPS:
        return "app"
    if record.kind is MethodKind.EMAIL:
        return f"email:{str(record.data.get('email', record.id)).casefold()}"
    if record.kind is MethodKind.SECURITY_QUESTIONS:
        return "questions"
    return f"{record.kind.value}:{record.id}"


def passed_from(record: MethodRecord) -> Passed:
    return Passed(kind=record.kind, channel=channel_of(record), mfa=METHOD_RULES[record.kind].mfa)


def usable_methods(facts: ResetFacts, policies: PolicyConfig) -> tuple[MethodRecord, ...]:
    """The registered methods this user may reset with."""
    return tuple(
        m
        for m in facts.methods
        if METHOD_RULES[m.kind].sspr
        and m.kind in policies.sspr.methods
        and m.kind in facts.deliverable
        and policies.method_allowed(m.kind, facts.user_id, facts.groups)
    )


def satisfied(
    passed: Sequence[Passed], *, required: int, has_mfa: bool, allow_questions_alone: bool
) -> bool:
    """Do these passed methods allow a new password?"""
    if len({p.channel for p in passed}) < required:
        return False
    if has_mfa and not any(p.mfa for p in passed):
        return False
    questions_only = all(p.kind is MethodKind.SECURITY_QUESTIONS for p in passed)
    return not (questions_only and not allow_questions_alone)


def _has_mfa(methods: Iterable[MethodRecord]) -> bool:
    return any(METHOD_RULES[m.kind].mfa for m in methods)


def eligibility(facts: ResetFacts, policies: PolicyConfig) -> Eligibility:
    """May this account reset its password itself, and must the reset include MFA?

    Eligible when passing every usable method would satisfy the policy (the rules are monotone:
    passing more never hurts), so the user can always finish with what they registered.
    """
    if not facts.exists:
        return Eligibility(block=ResetBlock.UNKNOWN_ACCOUNT)
    has_mfa = _has_mfa(facts.methods)
    if not facts.enabled:
        return Eligibility(block=ResetBlock.DISABLED, has_mfa=has_mfa)
    sspr = policies.sspr
    if not sspr.applies(facts.groups):
        return Eligibility(block=ResetBlock.NOT_ENABLED, has_mfa=has_mfa)
    everything = [passed_from(m) for m in usable_methods(facts, policies)]
    if not everything or not satisfied(
        everything,
        required=sspr.methods_required,
        has_mfa=has_mfa,
        allow_questions_alone=sspr.allow_questions_alone,
    ):
        return Eligibility(block=ResetBlock.TOO_FEW_METHODS, has_mfa=has_mfa)
    return Eligibility(block=None, has_mfa=has_mfa)


def offered_choices(
    policies: PolicyConfig, deliverable: frozenset[ResetChoice]
) -> tuple[ResetChoice, ...]:
    """The chooser's first list: the same for every account, so it reveals nothing about one.

    ``deliverable`` are the choices the deployment can serve (providers configured). Questions are
    left out when a single method is required and they may not be the only one.
    """
    sspr = policies.sspr
    out: list[ResetChoice] = []
    for choice, kinds in CHOICE_KINDS.items():
        if choice not in deliverable:
            continue
        if not any(k in sspr.methods and policies.methods[k].enabled for k in kinds):
            continue
        if (
            choice is ResetChoice.QUESTIONS
            and sspr.methods_required == 1
            and not sspr.allow_questions_alone
        ):
            continue
        out.append(choice)
    return tuple(out)


def next_choices(
    offered: Sequence[ResetChoice],
    passed_choices: Sequence[ResetChoice],
    passed: Sequence[Passed],
    *,
    required: int,
    has_mfa: bool,
    custom_questions: bool = False,
) -> tuple[ResetChoice, ...]:
    """What the chooser offers now: before any method passed, the first list (the same for
    every account); after, what is left for this proven user.

    A choice already passed is gone; when one more channel completes the count but the user still
    owes an MFA-capable method, only MFA-capable choices remain. With ``custom_questions`` (users
    may write their own), questions are not in the first list.
    """
    if not passed:
        # Never depends on the account.
        return tuple(c for c in offered if not (custom_questions and c is ResetChoice.QUESTIONS))
    left = [c for c in offered if c not in passed_choices]
    owes_mfa = has_mfa and not any(p.mfa for p in passed)
    if owes_mfa and len({p.channel for p in passed}) >= required - 1:
        left = [c for c in left if all(METHOD_RULES[k].mfa for k in CHOICE_KINDS[c])]
    return tuple(left)
