"""How often a refused anonymous caller reaches the audit log.

An anonymous entry point audits every attempt, and a caller it refuses (over a throttle's limit,
or without a valid admin token) can repeat the request without end: each one a row in the audit
log, which on Redis is cut at ``audit_maxlen`` (a flood pushes the real events out), and, when the
request names an account, a row on the owner's Recent activity page (it reads the newest 2,000
events: a flood hides a real sign-in there). So such a refusal is audited once per
:data:`REFUSAL_WINDOW` and address, with ``repeats_not_audited_s`` saying that the repeats are
not; a repeat costs one counter increment instead of one audit write. The counter refuses
nothing: it decides only what is written (decision 188).
"""

from __future__ import annotations

from typing import Any

from ..store.base import Store

__all__ = ["REFUSAL_WINDOW", "RefusalAudit"]

#: seconds during which one address's repeated refusals are audited once
REFUSAL_WINDOW = 900


class RefusalAudit:
    """The refusals of one kind (``name``), audited once per address and window."""

    def __init__(self, store: Store, name: str, *, window: int = REFUSAL_WINDOW) -> None:
        self._store = store
        self._name = name
        self._window = window

    def detail(self, source: str) -> dict[str, Any] | None:
        """The extra detail of the audit event of this refusal, or None: not audited (a repeat
        within the window). ``source``: the caller's address (per address: one caller cannot
        vary it, while an account name it can)."""
        key = f"refusals:{self._name}:{source[:100]}"
        seen = self._store.incr(key, ttl=self._window)
        return {"repeats_not_audited_s": self._window} if seen == 1 else None
