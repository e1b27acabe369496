"""The ``[admin]`` table: who may call the admin API, who sees the dashboard, TAP limits.

```toml
[admin]
group = "combinedreg-admins"          # optional: the Directory group of admins (dashboard, tokens)

[[admin.tokens]]
name = "ops-cli"                      # shown in the audit log as the actor
hash = "sha256:9f86d0..."             # from `combinedreg admin-token`; never the token itself
user = "admin"                        # optional: the admin the token acts for (required with group)

[admin.tap]
default_lifetime_minutes = 60
max_lifetime_minutes = 43200          # 30 days
one_time_default = true
failures_per_window = 10              # wrong passes per account from one client IP
account_failures_per_window = 100     # ... per account from all addresses
ip_failures_per_window = 50           # ... per client IP over all accounts
window = 300                          # seconds; nothing about a pass is counted longer
```

An absent table is valid: no token, so the admin API answers 401 to everything (it is off).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..config.reader import Reader

__all__ = ["AdminConfig", "AdminToken", "TapConfig", "read_admin"]

_HASH = re.compile(r"^sha256:[0-9a-f]{64}$")

#: Entra's bounds for a Temporary Access Pass: 10 minutes to 30 days
TAP_MIN_MINUTES = 10
TAP_MAX_MINUTES = 30 * 24 * 60


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminToken:
    name: str
    #: ``sha256:<hex>`` of the token
    hash: str
    #: the admin this token acts for (group membership is checked on every call when set)
    user: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class TapConfig:
    default_lifetime_minutes: int = 60
    max_lifetime_minutes: int = TAP_MAX_MINUTES
    one_time_default: bool = True
    #: windowed failure limits of the TAP sign-in (never the MFA codes' durable counter)
    failures_per_window: int = 10
    account_failures_per_window: int = 100
    ip_failures_per_window: int = 50
    window: int = 300


@dataclass(frozen=True, kw_only=True, slots=True)
class AdminConfig:
    tokens: tuple[AdminToken, ...] = ()
    #: members of this Directory group may open the dashboard; token users must be members too
    group: str | None = None
    tap: TapConfig = TapConfig()

    @property
    def api_enabled(self) -> bool:
        return bool(self.tokens)


def _read_token(r: Reader, group: str | None) -> AdminToken | None:
    name = r.string("name", non_empty=True)
    digest = r.string("hash")
    user = r.string("user", "") or None
    r.done()
    if digest and not _HASH.match(digest):
        r.error("hash", "expected 'sha256:' and 64 lowercase hex digits (combinedreg admin-token)")
        return None
    if group is not None and user is None:
        r.error("user", "required when admin.group is set: the token acts for a group member")
    return AdminToken(name=name, hash=digest, user=user)


def _read_tap(r: Reader) -> TapConfig:
    base = TapConfig()
    cfg = TapConfig(
        default_lifetime_minutes=r.integer(
            "default_lifetime_minutes",
            base.default_lifetime_minutes,
            min=TAP_MIN_MINUTES,
            max=TAP_MAX_MINUTES,
        ),
        max_lifetime_minutes=r.integer(
            "max_lifetime_minutes",
            base.max_lifetime_minutes,
            min=TAP_MIN_MINUTES,
            max=TAP_MAX_MINUTES,
        ),
        one_time_default=r.boolean("one_time_default", base.one_time_default),
        failures_per_window=r.integer(
            "failures_per_window", base.failures_per_window, min=1, max=1000
        ),
        account_failures_per_window=r.integer(
            "account_failures_per_window", base.account_failures_per_window, min=1, max=100000
        ),
        ip_failures_per_window=r.integer(
            "ip_failures_per_window", base.ip_failures_per_window, min=1, max=100000
        ),
        window=r.integer("window", base.window, min=10, max=3600),
    )
    if cfg.default_lifetime_minutes > cfg.max_lifetime_minutes:
        r.error("default_lifetime_minutes", "expected at most max_lifetime_minutes")
    if cfg.account_failures_per_window < cfg.failures_per_window:
        r.error("account_failures_per_window", "expected at least failures_per_window")
    r.done()
    return cfg


def read_admin(root: Reader) -> AdminConfig:
    """Read ``[admin]`` (every key optional)."""
    r = root.section("admin")
    group = r.string("group", "") or None
    tokens = [t for tr in r.sections("tokens") if (t := _read_token(tr, group)) is not None]
    names = [t.name for t in tokens]
    for name in sorted({n for n in names if names.count(n) > 1}):
        r.error("tokens", f"token name {name!r} is used more than once")
    cfg = AdminConfig(tokens=tuple(tokens), group=group, tap=_read_tap(r.section("tap")))
    r.done()
    return cfg
