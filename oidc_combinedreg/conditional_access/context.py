"""What the engine is asked about: one sign-in (or one opening of the registration pages)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

from .model import ClientAppType, Control, IPAddress, RiskLevel, UserAction

__all__ = ["REGISTER_SECURITY_INFO", "SignInContext", "Target", "TargetKind", "close_controls"]


class TargetKind(StrEnum):
    USER_ACTION = "user-action"
    APPLICATION = "application"


@dataclass(frozen=True, kw_only=True, slots=True)
class Target:
    """A user action, or an application named by its OIDC client id."""

    kind: TargetKind
    value: str

    @classmethod
    def application(cls, client_id: str) -> Target:
        return cls(kind=TargetKind.APPLICATION, value=client_id)

    @classmethod
    def user_action(cls, action: UserAction | str) -> Target:
        # UserAction(...) refuses an unknown action here instead of never matching later
        return cls(kind=TargetKind.USER_ACTION, value=UserAction(action).value)

    def __str__(self) -> str:
        return f"{self.kind.value} {self.value}"


#: the user action the wizard and the manage page evaluate
REGISTER_SECURITY_INFO = Target.user_action(UserAction.REGISTER_SECURITY_INFO)


def close_controls(satisfied: Iterable[Control | str]) -> frozenset[Control]:
    """The controls a session has met, with what they imply (phishing-resistant MFA is MFA)."""
    controls = frozenset(Control(c) for c in satisfied)
    if Control.PHISHING_RESISTANT_MFA in controls:
        controls |= {Control.MFA}
    return controls


@dataclass(frozen=True, kw_only=True, slots=True)
class SignInContext:
    """The facts of one evaluation.

    ``client_ip`` may be a string or ``None``: the engine blocks when it cannot parse it, and also
    when ``client_ip_malformed`` says the forwarded header was unusable (see
    :func:`.resolve_client_ip`), because the address we have then is only the proxy's.
    """

    user_id: str
    target: Target
    client_ip: IPAddress | str | None
    groups: frozenset[str] = field(default_factory=frozenset)
    client_app: ClientAppType = ClientAppType.BROWSER
    sign_in_risk: RiskLevel = RiskLevel.NONE
    #: controls this session already met, e.g. ``{"mfa"}``
    satisfied: frozenset[Control] = field(default_factory=frozenset)
    client_ip_malformed: bool = False

    def __post_init__(self) -> None:
        # accept any iterable of str for convenience, but keep frozen, validated values
        object.__setattr__(self, "groups", frozenset(self.groups))
        object.__setattr__(self, "satisfied", close_controls(self.satisfied))
        object.__setattr__(self, "client_app", ClientAppType(self.client_app))
        object.__setattr__(self, "sign_in_risk", RiskLevel(self.sign_in_risk))
