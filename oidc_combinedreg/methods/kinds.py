"""The method kinds and the rules of DESIGN.md's methods table, as data the planner and pages read."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

__all__ = ["METHOD_RULES", "MethodKind", "MethodRules", "channel_family", "rank"]


class MethodKind(StrEnum):
    PUSH = "push"
    TOTP = "totp"
    HARDWARE_OATH = "hardware_oath"
    MOBILE_PHONE = "mobile_phone"
    ALTERNATE_PHONE = "alternate_phone"
    OFFICE_PHONE = "office_phone"
    EMAIL = "email"
    SECURITY_QUESTIONS = "security_questions"
    APP_PASSWORD = "app_password"
    WEBAUTHN = "webauthn"


@dataclass(frozen=True, kw_only=True, slots=True)
class MethodRules:
    """One row of the methods table."""

    mfa: bool
    sspr: bool
    user_registers: bool
    changeable: bool
    deletable: bool
    per_user: int
    #: lower is more secure (the wizard's "most to least secure" order)
    rank: int
    #: phishing-resistant (satisfies a "require phishing-resistant MFA" grant)
    phishing_resistant: bool = False


METHOD_RULES: dict[MethodKind, MethodRules] = {
    MethodKind.WEBAUTHN: MethodRules(
        mfa=True,
        sspr=False,
        user_registers=True,
        changeable=True,
        deletable=True,
        per_user=10,
        rank=0,
        phishing_resistant=True,
    ),
    MethodKind.PUSH: MethodRules(
        mfa=True,
        sspr=True,
        user_registers=True,
        changeable=False,
        deletable=True,
        per_user=5,
        rank=1,
    ),
    MethodKind.TOTP: MethodRules(
        mfa=True,
        sspr=True,
        user_registers=True,
        changeable=False,
        deletable=True,
        per_user=5,
        rank=2,
    ),
    MethodKind.HARDWARE_OATH: MethodRules(
        mfa=True,
        sspr=True,
        user_registers=False,
        changeable=False,
        deletable=True,
        per_user=100,
        rank=2,
    ),
    MethodKind.MOBILE_PHONE: MethodRules(
        mfa=True,
        sspr=True,
        user_registers=True,
        changeable=True,
        deletable=True,
        per_user=1,
        rank=3,
    ),
    MethodKind.ALTERNATE_PHONE: MethodRules(
        mfa=True,
        sspr=True,
        user_registers=True,
        changeable=True,
        deletable=True,
        per_user=1,
        rank=4,
    ),
    MethodKind.OFFICE_PHONE: MethodRules(
        mfa=True,
        sspr=True,
        user_registers=False,
        changeable=False,
        deletable=False,
        per_user=1,
        rank=5,
    ),
    MethodKind.EMAIL: MethodRules(
        mfa=False,
        sspr=True,
        user_registers=True,
        changeable=True,
        deletable=True,
        per_user=1,
        rank=6,
    ),
    MethodKind.SECURITY_QUESTIONS: MethodRules(
        mfa=False,
        sspr=True,
        user_registers=True,
        changeable=False,
        deletable=True,
        per_user=1,
        rank=7,
    ),
    MethodKind.APP_PASSWORD: MethodRules(
        mfa=False,
        sspr=False,
        user_registers=True,
        changeable=False,
        deletable=True,
        per_user=40,
        rank=9,
    ),
}


def rank(kind: MethodKind) -> int:
    """Position in the most-to-least-secure order (lower is more secure)."""
    return METHOD_RULES[kind].rank


def channel_family(kind: MethodKind) -> str:
    """Kinds that reach the user through the same channel, for "N distinct methods" rules.

    A push app and a TOTP app live on the same phone app: a password reset that asks for two
    methods does not accept both. The reset flow refines this per record (one channel per phone
    number, email address or token: ``policy.reset.channel_of``); the planner works per kind.
    """
    if kind in (MethodKind.PUSH, MethodKind.TOTP):
        return "app"
    return kind.value
