"""Registration, MFA, SSPR and authentication-methods policies, read from the ``[policies]`` table."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from enum import StrEnum

from ..config.reader import Reader
from ..methods.kinds import METHOD_RULES, MethodKind
from .audience import Audience, read_audience
from .campaign import CampaignPolicy, read_campaign

__all__ = [
    "CombinedRegistrationPolicy",
    "MethodPolicy",
    "MfaRegistrationPolicy",
    "PolicyConfig",
    "SsprPolicy",
    "read_policies",
]


class EnabledFor(StrEnum):
    NONE = "none"
    SELECTED = "selected"
    ALL = "all"


@dataclass(frozen=True, kw_only=True, slots=True)
class CombinedRegistrationPolicy:
    enabled_for: EnabledFor = EnabledFor.ALL
    groups: frozenset[str] = frozenset()

    def applies(self, groups: frozenset[str]) -> bool:
        if self.enabled_for is EnabledFor.ALL:
            return True
        return self.enabled_for is EnabledFor.SELECTED and not self.groups.isdisjoint(groups)


@dataclass(frozen=True, kw_only=True, slots=True)
class MfaRegistrationPolicy:
    enforced: bool = False
    audience: Audience = field(default_factory=Audience)
    #: how many times a user may postpone enforced registration
    skips_allowed: int = 0
    #: how long one postponement lasts
    skip_days: int = 14
    #: no postponement after this date
    deadline: dt.date | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class SsprPolicy:
    enabled_for: EnabledFor = EnabledFor.NONE
    groups: frozenset[str] = frozenset()
    methods: frozenset[MethodKind] = frozenset(
        {
            MethodKind.PUSH,
            MethodKind.TOTP,
            MethodKind.HARDWARE_OATH,
            MethodKind.MOBILE_PHONE,
            MethodKind.OFFICE_PHONE,
            MethodKind.EMAIL,
        }
    )
    methods_required: int = 1
    questions_to_register: int = 3
    questions_to_answer: int = 3
    require_registration: bool = True
    #: 0 = never ask to re-confirm
    reconfirm_days: int = 180
    #: restore the original product's behaviour: a reset may rest on security questions alone
    allow_questions_alone: bool = False

    def applies(self, groups: frozenset[str]) -> bool:
        if self.enabled_for is EnabledFor.ALL:
            return True
        return self.enabled_for is EnabledFor.SELECTED and not self.groups.isdisjoint(groups)


@dataclass(frozen=True, kw_only=True, slots=True)
class MethodPolicy:
    enabled: bool
    audience: Audience = field(default_factory=Audience)

    def allows(self, user_id: str, groups: frozenset[str]) -> bool:
        return self.enabled and self.audience.contains(user_id, groups)


# Security questions are off by default (NIST SP 800-63B, OWASP ASVS): an admin turns them on.
_DEFAULT_OFF = {MethodKind.SECURITY_QUESTIONS}


@dataclass(frozen=True, kw_only=True, slots=True)
class PolicyConfig:
    combined_registration: CombinedRegistrationPolicy = field(
        default_factory=CombinedRegistrationPolicy
    )
    mfa_registration: MfaRegistrationPolicy = field(default_factory=MfaRegistrationPolicy)
    sspr: SsprPolicy = field(default_factory=SsprPolicy)
    #: offer the most secure registered method first at the MFA step, whatever the default
    system_preferred_mfa: bool = True
    #: kinds the wizard proposes first, in this order; the rest follow most secure first
    wizard_preference: tuple[MethodKind, ...] = ()
    methods: dict[MethodKind, MethodPolicy] = field(
        default_factory=lambda: {k: MethodPolicy(enabled=k not in _DEFAULT_OFF) for k in MethodKind}
    )
    #: the registration campaign ("nudge" to the authenticator app, policy/campaign.py)
    campaign: CampaignPolicy = field(default_factory=CampaignPolicy)

    def method_allowed(self, kind: MethodKind, user_id: str, groups: frozenset[str]) -> bool:
        return self.methods[kind].allows(user_id, groups)


def _read_enabled_for(r: Reader) -> tuple[EnabledFor, frozenset[str]]:
    enabled_for = r.choice("enabled_for", EnabledFor, EnabledFor.NONE)
    groups = frozenset(r.str_list("groups"))
    if enabled_for is EnabledFor.SELECTED and not groups:
        r.error("groups", 'expected at least one group when enabled_for = "selected"')
    return enabled_for, groups


def _read_combined(r: Reader) -> CombinedRegistrationPolicy:
    enabled_for = r.choice("enabled_for", EnabledFor, EnabledFor.ALL)
    groups = frozenset(r.str_list("groups"))
    if enabled_for is EnabledFor.SELECTED and not groups:
        r.error("groups", 'expected at least one group when enabled_for = "selected"')
    r.done()
    return CombinedRegistrationPolicy(enabled_for=enabled_for, groups=groups)


def _read_mfa_registration(r: Reader) -> MfaRegistrationPolicy:
    deadline_raw = r.raw("deadline")
    deadline: dt.date | None = None
    if deadline_raw is not None:
        if isinstance(deadline_raw, dt.date) and not isinstance(deadline_raw, dt.datetime):
            deadline = deadline_raw
        else:
            r.error("deadline", "expected a TOML date such as 2027-01-31")
    policy = MfaRegistrationPolicy(
        enforced=r.boolean("enforced", False),
        audience=read_audience(r),
        skips_allowed=r.integer("skips_allowed", 0, min=0, max=100),
        skip_days=r.integer("skip_days", 14, min=1, max=14),
        deadline=deadline,
    )
    r.done()
    return policy


def _read_kinds(r: Reader, key: str, default: frozenset[MethodKind]) -> frozenset[MethodKind]:
    if not r.has(key):
        r.raw(key)
        return default
    kinds: set[MethodKind] = set()
    for i, name in enumerate(r.str_list(key)):
        try:
            kinds.add(MethodKind(name))
        except ValueError:
            choices = ", ".join(k.value for k in MethodKind)
            r.error(key, f"[{i}]: expected one of {choices}, got {name!r}")
    return frozenset(kinds)


def _read_preference(r: Reader) -> tuple[MethodKind, ...]:
    out: list[MethodKind] = []
    for i, name in enumerate(r.str_list("wizard_preference")):
        try:
            kind = MethodKind(name)
        except ValueError:
            choices = ", ".join(k.value for k in MethodKind)
            r.error("wizard_preference", f"[{i}]: expected one of {choices}, got {name!r}")
            continue
        if kind in out:
            r.error("wizard_preference", f"[{i}]: {name!r} is listed twice")
        out.append(kind)
    return tuple(dict.fromkeys(out))


def _read_sspr(r: Reader) -> SsprPolicy:
    base = SsprPolicy()
    enabled_for, groups = _read_enabled_for(r)
    methods = _read_kinds(r, "methods", base.methods)
    for kind in methods:
        if not METHOD_RULES[kind].sspr:
            r.error("methods", f"{kind.value!r} cannot be used for password reset")
    policy = SsprPolicy(
        enabled_for=enabled_for,
        groups=groups,
        methods=methods,
        methods_required=r.integer("methods_required", 1, min=1, max=2),
        questions_to_register=r.integer("questions_to_register", 3, min=3, max=5),
        questions_to_answer=r.integer("questions_to_answer", 3, min=3, max=5),
        require_registration=r.boolean("require_registration", True),
        reconfirm_days=r.integer("reconfirm_days", 180, min=0, max=730),
        allow_questions_alone=r.boolean("allow_questions_alone", False),
    )
    if policy.questions_to_answer > policy.questions_to_register:
        r.error("questions_to_answer", "expected at most questions_to_register")
    if policy.allow_questions_alone:
        r.warn(
            "allow_questions_alone",
            "a password reset may rest on security questions alone, which NIST and OWASP advise against",
        )
    r.done()
    return policy


def _read_methods(r: Reader) -> dict[MethodKind, MethodPolicy]:
    out = {k: MethodPolicy(enabled=k not in _DEFAULT_OFF) for k in MethodKind}
    for name, _ in r.table_items():
        try:
            kind = MethodKind(name)
        except ValueError:
            choices = ", ".join(k.value for k in MethodKind)
            r.error(name, f"unknown method: expected one of {choices}")
            continue
        mr = r.section(name)
        out[kind] = MethodPolicy(
            enabled=mr.boolean("enabled", kind not in _DEFAULT_OFF), audience=read_audience(mr)
        )
        mr.done()
    return out


def read_policies(root: Reader) -> PolicyConfig:
    """Read the ``[policies]`` table (every sub-table optional)."""
    r = root.section("policies")
    config = PolicyConfig(
        combined_registration=_read_combined(r.section("combined_registration")),
        mfa_registration=_read_mfa_registration(r.section("mfa_registration")),
        sspr=_read_sspr(r.section("sspr")),
        system_preferred_mfa=r.boolean("system_preferred_mfa", True),
        wizard_preference=_read_preference(r),
        methods=_read_methods(r.section("methods")),
        campaign=read_campaign(r.section("campaign")),
    )
    r.done()
    return config
