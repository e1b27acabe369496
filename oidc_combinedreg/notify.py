"""The "Your security info changed" notification, its outbox, and the "This wasn't me" link.

Every add, change and delete of a method sends an email to every address the user has: the
registered email method and the directory's email, plus the old address when the email itself
changed or was removed (SECURITY.md case 17). The email says what changed, when and from which IP,
and carries a single-use "This wasn't me" link; confirming it on its page revokes the user's sessions,
flags the account in the audit log and asks for a password reset at the next sign-in, and suspends
the method(s) the change added or changed (SECURITY.md case 59), all in one store write
(``Store.report_methods``): an attacker's authenticator app stops counting for MFA, password reset
and registration at once. A suspended ("reported") method stays listed as such for the user to
delete or an admin to restore. A notice about a delete or a rename suspends nothing (nothing of the
attacker's is left; a renamed key is still the user's), but its report ends the sessions all the same.

The outbox rides on the audit log, so no change to the store protocol is needed: the caller writes a
``notify.queued`` event *in the same transaction as the change* (``events=[..., *notice.events]``),
then calls ``notice.send()`` after the commit. A rolled-back change therefore never notifies (case 55),
and a change committed just before a crash or a mail-server outage still has its queued event:
:meth:`Notifier.flush` (``combinedreg``-style admin task, or any periodic job) sends every queued
notice that has no ``notify.sent`` event yet. Delivery is at-least-once.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

from .clock import Clock
from .config.model import Config
from .crypto import random_id
from .delivery.base import DeliveryFailed, EmailMessage, EmailSender
from .delivery.messages import change_sentence, security_info_changed_email
from .delivery.method_names import KIND_NAMES, added_ordinal, is_named, method_detail_text
from .delivery.reset_messages import password_reset_email
from .directory import Directory
from .methods.kinds import METHOD_RULES, MethodKind
from .store.base import AuditEvent, Store

__all__ = [
    "Change",
    "NotMeReport",
    "Notifier",
    "PendingNotice",
    "prepare_notice",
    "withdraw_notice",
]

log = logging.getLogger("oidc_combinedreg.notify")

#: how long a "This wasn't me" link works
NOT_ME_TTL = 14 * 86400
#: user-state flag the sign-in reads to ask for a password reset
RESET_FLAG = "password_reset_required"
#: the outbox message kind of the "your password was changed" notice (password reset)
PASSWORD_RESET_MESSAGE = "password_reset"


class Change(StrEnum):
    ADDED = "added"
    CHANGED = "changed"
    DELETED = "deleted"
    #: an admin took a reported method back into use
    RESTORED = "restored"


@dataclass(frozen=True, slots=True)
class NotMeReport:
    """What confirming a "This wasn't me" link did."""

    user_id: str
    #: ids of the methods it suspended (were in use when it ran)
    suspended: tuple[str, ...]
    #: live sessions it ended
    sessions_revoked: int


@dataclass(frozen=True, slots=True)
class PendingNotice:
    """A notification prepared with a change: write ``events`` with it, ``send()`` after commit."""

    events: tuple[AuditEvent, ...] = ()
    _send: Callable[[], None] | None = None

    def send(self) -> None:
        if self._send is not None:
            self._send()


def prepare_notice(
    notifier: Notifier | None,
    user_id: str,
    change: Change,
    kind: MethodKind,
    *,
    ip: str | None,
    method_id: str | None = None,
    detail: str = "",
    old_email: str | None = None,
    suspend: Sequence[str] = (),
    created_at: float | None = None,
) -> PendingNotice:
    """What every add/change/delete path calls (a no-op when no notifier is configured).
    ``suspend``: the method ids its "This wasn't me" link suspends; ``created_at``: when the
    method was added, which names an unnamed one ("Authenticator app (added 6 Dec 2026)")."""
    if notifier is None:
        return PendingNotice()
    return notifier.prepare(
        user_id, change, kind, ip=ip, method_id=method_id, detail=detail, old_email=old_email,
        suspend=suspend, created_at=created_at,
    )  # fmt: skip


def withdraw_notice(notice: PendingNotice, *, at: float, reason: str) -> list[AuditEvent]:
    """Events that close ``notice``'s queued entries unsent (``notify.skipped``): write them with
    the undo of its change, so the outbox never sends a notice for a change that was taken back."""
    return [
        AuditEvent(
            at=at,
            event="notify.skipped",
            user_id=queued.user_id,
            outcome="info",
            detail={"outbox_id": queued.detail.get("outbox_id"), "reason": reason},
        )
        for queued in notice.events
    ]


def _token_key(token: str) -> str:
    return "notme:" + hashlib.sha256(token.encode("ascii")).hexdigest()


class Notifier:
    def __init__(
        self,
        *,
        config: Config,
        store: Store,
        clock: Clock,
        directory: Directory | None,
        email: EmailSender | None,
        attempts: int = 2,
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.directory = directory
        self.email = email
        self.attempts = max(1, attempts)

    # -- queueing -----------------------------------------------------------------------------

    def prepare(
        self,
        user_id: str,
        change: Change,
        kind: MethodKind,
        *,
        ip: str | None,
        method_id: str | None = None,
        detail: str = "",
        old_email: str | None = None,
        suspend: Sequence[str] = (),
        created_at: float | None = None,
    ) -> PendingNotice:
        info: dict[str, Any] = {
            "outbox_id": random_id(),
            "change": change.value,
            "kind": kind.value,
            "method_id": method_id,
            "detail": detail,
            "suspend": list(suspend),
        }
        if old_email:
            info["old_email"] = old_email
        if created_at is not None and method_id and not is_named(kind, detail):
            # An unnamed method is named by the day it was added (and its number among that
            # day's unnamed ones of its kind), as the pages name it; the email composes the
            # text in its own language when it is sent.
            info["created_at"] = created_at
            info["ordinal"] = self._ordinal(user_id, method_id, kind, created_at)
        event = AuditEvent(
            at=self.clock.now(),
            event="notify.queued",
            user_id=user_id,
            outcome="info",
            ip=ip,
            detail=info,
        )
        return PendingNotice((event,), lambda: self._deliver_safely(event))

    def prepare_password_reset(self, user_id: str, *, ip: str | None) -> PendingNotice:
        """The "your password was changed" notice, queued like a change notice."""
        event = AuditEvent(
            at=self.clock.now(),
            event="notify.queued",
            user_id=user_id,
            outcome="info",
            ip=ip,
            detail={"outbox_id": random_id(), "message": PASSWORD_RESET_MESSAGE},
        )
        return PendingNotice((event,), lambda: self._deliver_safely(event))

    def _ordinal(self, user_id: str, method_id: str, kind: MethodKind, created_at: float) -> int:
        if METHOD_RULES[kind].per_user < 2:
            return 0
        siblings = [
            (m.id, m.kind, m.created_at, is_named(m.kind, m.label))
            for m in self.store.list_methods(user_id)
            if m.id != method_id
        ]
        # The method itself: not stored yet when it is being added, still stored when deleted.
        siblings.append((method_id, kind, created_at, False))
        return added_ordinal(method_id, kind, created_at, siblings)

    # -- sending ------------------------------------------------------------------------------

    def recipients(self, user_id: str, old_email: str | None = None) -> list[str]:
        """Every address of the user, each once: registered email, directory email, old address."""
        found: list[str] = []
        for method in self.store.list_methods(user_id):
            if method.kind is MethodKind.EMAIL and isinstance(method.data.get("email"), str):
                found.append(str(method.data["email"]))
        user = self.directory.get_user(user_id) if self.directory is not None else None
        if user is not None and user.email:
            found.append(user.email)
        if old_email:
            found.append(old_email)
        unique: dict[str, str] = {}
        for address in found:
            unique.setdefault(address.casefold(), address)
        return list(unique.values())

    def _deliver_safely(self, event: AuditEvent) -> None:
        # The change is committed: a failed notice must not turn it into an error page.
        try:
            self.deliver(event)
        except Exception:  # noqa: BLE001 - logged; the queued event stays for flush()
            log.exception("notification %s not delivered", event.detail.get("outbox_id"))

    def deliver(self, event: AuditEvent) -> bool:
        """Send one queued notice (with retries); True when every recipient got it."""
        assert event.user_id is not None
        outbox_id = event.detail.get("outbox_id")
        recipients = self.recipients(event.user_id, event.detail.get("old_email"))
        if self.email is None or not recipients:
            why = "no email provider" if self.email is None else "no address"
            self._audit("notify.skipped", event, "info", outbox_id=outbox_id, reason=why)
            return False
        failures = [to for to in recipients if not self._send_one(event, to)]
        if failures:
            self._audit(
                "notify.failed",
                event,
                "failure",
                outbox_id=outbox_id,
                failed=len(failures),
                recipients=len(recipients),
            )
            return False
        self._audit(
            "notify.sent", event, "success", outbox_id=outbox_id, recipients=len(recipients)
        )
        return True

    def _send_one(self, event: AuditEvent, to: str) -> bool:
        assert self.email is not None and event.user_id is not None
        lang = self.config.general.default_language
        if event.detail.get("message") == PASSWORD_RESET_MESSAGE:
            message = password_reset_email(
                to=to, org=self.config.general.organization, at=event.at, ip=event.ip, lang=lang
            )
            return self._send_with_retries(message)
        kind = MethodKind(str(event.detail["kind"]))
        created_at = event.detail.get("created_at")
        detail = method_detail_text(
            kind,
            str(event.detail["detail"]),
            float(created_at) if isinstance(created_at, (int, float)) else None,
            int(event.detail.get("ordinal") or 0),
            lang,
        )
        message = security_info_changed_email(
            to=to,
            org=self.config.general.organization,
            what=change_sentence(str(event.detail["change"]), KIND_NAMES[kind], detail, lang),
            at=event.at,
            ip=event.ip,
            not_me_url=self._not_me_url(event),
            lang=lang,
        )
        return self._send_with_retries(message)

    def _send_with_retries(self, message: EmailMessage) -> bool:
        assert self.email is not None
        for _ in range(self.attempts):
            try:
                self.email.send_email(message)
                return True
            except DeliveryFailed as exc:
                if exc.permanent:
                    return False
        return False

    def _not_me_url(self, event: AuditEvent) -> str | None:
        base = self.config.delivery.public_url
        if not base:
            return None
        token = random_id()
        # The token names the change's method(s): its report suspends exactly those.
        data = {
            "user_id": event.user_id,
            "outbox_id": str(event.detail.get("outbox_id")),
            "suspend": _suspend_ids(event.detail),
        }
        self.store.put_challenge(_token_key(token), data, ttl=NOT_ME_TTL)
        return f"{base}{self.config.web.prefix}/not-me/{token}"

    def _audit(self, name: str, queued: AuditEvent, outcome: str, **detail: Any) -> None:
        self.store.append_audit(
            AuditEvent(
                at=self.clock.now(),
                event=name,
                user_id=queued.user_id,
                outcome=outcome,
                detail=detail,
            )
        )

    # -- the outbox ---------------------------------------------------------------------------

    def pending(self, *, since: float | None = None, limit: int = 10_000) -> list[AuditEvent]:
        """Queued notices with no ``notify.sent`` or ``notify.skipped`` yet, oldest first."""
        events = self.store.list_audit(event_prefix="notify.", since=since, limit=limit)
        done = {
            e.detail.get("outbox_id")
            for e in events
            if e.event in ("notify.sent", "notify.skipped")
        }
        queued = [e for e in events if e.event == "notify.queued"]
        return [e for e in reversed(queued) if e.detail.get("outbox_id") not in done]

    def flush(self, *, since: float | None = None) -> int:
        """Send every pending notice; returns how many went out completely."""
        return sum(1 for event in self.pending(since=since) if self.deliver(event))

    # -- "This wasn't me" ---------------------------------------------------------------------

    def not_me_user(self, token: str) -> str | None:
        """The user a link belongs to (None: unknown, used or expired), without using it."""
        data = self.store.peek_challenge(_token_key(token)) if _plausible(token) else None
        return str(data["user_id"]) if data else None

    def not_me_confirm(self, token: str, *, ip: str | None) -> str | None:
        """Use the link (see :meth:`not_me_report`); the user it belonged to, or None."""
        report = self.not_me_report(token, ip=ip)
        return None if report is None else report.user_id

    def not_me_report(self, token: str, *, ip: str | None) -> NotMeReport | None:
        """Use the link: in one store write, suspend the method(s) the change added or changed,
        revoke every session, flag the account and require a password reset. None: unknown,
        used or expired link."""
        data = self.store.take_challenge(_token_key(token)) if _plausible(token) else None
        if not data:
            return None
        user_id = str(data["user_id"])
        wanted = self._reported_ids(user_id, data)
        reason = "user reported a security-info change as not theirs"
        return self.secure_account(
            user_id, wanted, ip=ip, reason=reason, outbox_id=data.get("outbox_id")
        )

    def secure_account(
        self, user_id: str, wanted: Sequence[str], *, ip: str | None, reason: str, **detail: Any
    ) -> NotMeReport:
        """What "This wasn't me" does, from a notice's link or the Recent activity page: in one
        store write, suspend ``wanted`` (those still in use), revoke every session, flag the
        account and require a password reset; ``detail`` goes into the ``account.flagged`` event."""
        # Which of them are in use now (the rest were deleted meanwhile: nothing to suspend).
        suspended = tuple(m for m in wanted if self.store.get_method(user_id, m) is not None)
        now = self.clock.now()
        state = self.store.get_user_state(user_id)
        extra = {**state.extra, RESET_FLAG: True, "flagged_at": now}
        flagged = AuditEvent(
            at=now,
            event="account.flagged",
            user_id=user_id,
            outcome="info",
            ip=ip,
            detail={"reason": reason, **detail, "methods_suspended": list(suspended)},
        )
        revoked = self.store.report_methods(
            replace(state, extra=extra), wanted, at=now, events=[flagged]
        )
        # How many ended is known once they have (as "sign out everywhere" logs it).
        self.store.append_audit(
            AuditEvent(
                at=now,
                event="session.revoked_all",
                user_id=user_id,
                outcome="success",
                ip=ip,
                detail={"count": revoked, "reason": "not_me"},
            )
        )
        return NotMeReport(user_id, suspended, revoked)

    def _reported_ids(self, user_id: str, data: Mapping[str, Any]) -> list[str]:
        """The method ids a link's report suspends. A link sent before links named them (an
        upgrade within its 14 days) is matched to its queued notice in the audit log."""
        if isinstance(data.get("suspend"), list):
            return [str(m) for m in data["suspend"]]
        outbox_id = data.get("outbox_id")
        for queued in self.store.list_audit(
            user_id=user_id,
            event_prefix="notify.queued",
            since=self.clock.now() - NOT_ME_TTL - 86400,
            limit=10_000,
        ):
            if queued.detail.get("outbox_id") == outbox_id:
                return _suspend_ids(queued.detail)
        return []


def _suspend_ids(detail: Mapping[str, Any]) -> list[str]:
    """The methods a queued notice's report suspends: as named (``suspend``), or for a notice
    queued before notices named them, the added or changed method (not a key's rename: the
    only change of a security key)."""
    if isinstance(detail.get("suspend"), list):
        return [str(m) for m in detail["suspend"]]
    method_id, change = detail.get("method_id"), detail.get("change")
    if not isinstance(method_id, str) or change not in (Change.ADDED, Change.CHANGED):
        return []
    if change == Change.CHANGED and detail.get("kind") == MethodKind.WEBAUTHN:
        return []
    return [method_id]


def _plausible(token: str) -> bool:
    return (
        16 <= len(token) <= 64
        and token.isascii()
        and token.replace("-", "").replace("_", "").isalnum()
    )


def flagged_users(events: Iterable[AuditEvent]) -> list[str]:
    """User ids in ``account.flagged`` events (for admin reports)."""
    return sorted({e.user_id for e in events if e.event == "account.flagged" and e.user_id})
