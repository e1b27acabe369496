"""The admin operations, over the store, the Directory and the method services. No web imports.

The JSON API (``web/admin_api.py``), the dashboard and the CLI call this. Every change is audited
with the acting admin (``actor``) and the caller's IP, in the same store transaction as the change
where the store allows it. The service works with whatever method kinds exist: it only uses the
generic store calls and ``METHOD_RULES``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from ..crypto import SecretHasher
from ..delivery.method_names import added_ordinal, display_name, is_named
from ..directory import Directory, DirectoryUser, PerUserMfa
from ..exceptions import CombinedRegError, InvalidInput
from ..methods.kinds import METHOD_RULES, MethodKind
from ..service import SecurityInfo
from ..service.reset import reset_account_keys, reset_day_key
from ..store.base import MethodRecord
from . import reports
from .config import AdminConfig
from .tap import IssuedTap, TapService, TapStatus

__all__ = ["AdminService", "NotSupported", "UnknownUser", "describe_method"]

#: the most audit events one report reads (a period with more is summarised from the newest)
MAX_EVENTS = 100_000


class UnknownUser(CombinedRegError):
    """Neither the Directory nor the store knows this user."""


class NotSupported(CombinedRegError):
    """This deployment cannot do that (a read-only Directory, no hardware-token support)."""

    def __init__(self, message: str) -> None:
        #: what to tell the caller
        self.message = message
        super().__init__(message)


def describe_method(
    record: MethodRecord, default_id: str | None, siblings: Sequence[MethodRecord] = ()
) -> dict[str, Any]:
    """A JSON-safe view of a method for admins: never a secret. ``label`` is what is stored (the
    user's name for it, a masked number, or nothing of the user's); ``display_name`` is the name
    the user sees, in English ("Authenticator app (#2, added Dec 6, 2026)"): ``siblings`` (the
    user's methods) number unnamed ones of a kind added the same day."""
    rules = METHOD_RULES[record.kind]
    ordinal = added_ordinal(
        record.id,
        record.kind,
        record.created_at,
        [(m.id, m.kind, m.created_at, is_named(m.kind, m.label)) for m in siblings or (record,)],
    )
    return {
        "id": record.id,
        "kind": record.kind.value,
        "label": record.label,
        "display_name": display_name(record.kind, record.label, record.created_at, ordinal),
        "mfa": rules.mfa,
        "sspr": rules.sspr,
        "default": record.id == default_id,
        "deletable": rules.deletable,
        "created_at": int(record.created_at),
        "last_used_at": int(record.last_used_at) if record.last_used_at else None,
        # set: the user reported it ("This wasn't me"); out of use until restored or deleted
        "reported_at": None if record.reported_at is None else int(record.reported_at),
        # a hardware token an admin imported works before this, and this says whether the
        # user has used it yet; other kinds have no activation (issue 23.8)
        "activated": (
            bool(record.data.get("activated")) if record.kind is MethodKind.HARDWARE_OATH else None
        ),
    }


class AdminService:
    def __init__(
        self,
        *,
        info: SecurityInfo,
        directory: Directory | None,
        config: AdminConfig,
        tap_hasher: SecretHasher | None = None,
    ) -> None:
        self.info = info
        self.store = info.store
        #: None where there is no Directory (the CLI): users are then known by the store only
        self.directory = directory
        self.config = config
        self.tap = TapService(info.ctx, config.tap, tap_hasher)

    # -- users and methods --------------------------------------------------------------------

    def _user(self, user_id: str) -> DirectoryUser | None:
        return self.directory.get_user(user_id) if self.directory is not None else None

    def _require_known(self, user_id: str) -> None:
        if self._user(user_id) is None and not self.store.list_methods(user_id):
            raise UnknownUser(user_id)

    def user_methods(self, user_id: str) -> dict[str, Any]:
        """The user's methods, default, re-registration flag and TAP status."""
        self._require_known(user_id)
        methods = self.store.list_methods(user_id)
        default = self.info.default_method(user_id, methods)
        default_id = default.id if default else None
        state = self.store.get_user_state(user_id)
        tap = self.tap.status(user_id)
        return {
            "user_id": user_id,
            "methods": [describe_method(m, default_id, methods) for m in methods],
            "reported": [describe_method(m, None) for m in self.info.reported_methods(user_id)],
            "default_method_id": default_id,
            "reregister": state.reregister,
            "tap": tap.to_json() if tap else None,
        }

    def delete_method(self, user_id: str, method_id: str, *, actor: str, ip: str | None) -> bool:
        """Delete one method (in use or reported); False if the user has no such deletable
        method."""
        record = self.store.get_method(user_id, method_id)
        if record is None:
            return self.info.delete_reported(user_id, method_id, ip=ip, actor=actor)
        if not METHOD_RULES[record.kind].deletable:
            return False
        # The owner is told, as for their own deletes ("This wasn't me" then flags the account).
        events, notice = self.info.deletion(record, ip=ip, actor=actor)
        deleted = self.store.delete_method(user_id, method_id, events=events)
        if deleted:
            notice.send()
        return deleted

    def restore_method(
        self, user_id: str, method_id: str, *, actor: str, ip: str | None
    ) -> dict[str, Any] | None:
        """Take a method the user reported ("This wasn't me") back into use: audited
        (``method.restored``) and the user is told. None: no such reported method;
        ``LimitReached``: the user registered as many of its kind since."""
        self._require_known(user_id)
        record = self.info.restore_reported(user_id, method_id, actor=actor, ip=ip)
        return None if record is None else describe_method(record, None)

    def require_reregistration(self, user_id: str, *, actor: str, ip: str | None) -> list[str]:
        """Remove the user's MFA methods and app passwords, and run the wizard at their next
        sign-in.

        Returns the ids of the methods removed. App passwords go too: each stands for password
        plus MFA in a legacy client (decision 87). Password-reset-only methods (email,
        questions) stay: they are not a second factor.
        """
        self._require_known(user_id)
        removed: list[str] = []
        for record in self.store.list_methods(user_id):
            rules = METHOD_RULES[record.kind]
            if (
                (rules.mfa or record.kind is MethodKind.APP_PASSWORD)
                and rules.deletable
                and self.delete_method(user_id, record.id, actor=actor, ip=ip)
            ):
                removed.append(record.id)
        state = self.store.get_user_state(user_id)
        self.store.put_user_state(
            replace(state, reregister=True, default_method_id=None),
            events=[
                self.info.event(
                    "admin.reregister_required",
                    user_id,
                    "success",
                    ip=ip,
                    actor=actor,
                    removed=len(removed),
                )
            ],
        )
        return removed

    # -- lockouts (SECURITY.md case 57: every durable lock has an audited admin unlock) -------

    def lock_state(self, user_id: str) -> dict[str, Any]:
        """The account's failure counters: the MFA codes' durable lock and window, the
        Temporary Access Pass's window and the password reset's daily attempts."""
        state = self._lock_json(user_id)
        self._require_known_or_counted(user_id, state)
        return state

    def _require_known_or_counted(self, user_id: str, state: dict[str, Any]) -> None:
        # A user locked while registering a first method has no method yet, and the CLI has no
        # Directory: counters of their own make them known enough to see and clear.
        counted = (
            "consecutive_failures",
            "window_failures",
            "tap_failures",
            "reset_attempts_today",
        )
        if not any(state[k] for k in counted):
            self._require_known(user_id)

    def _lock_json(self, user_id: str) -> dict[str, Any]:
        return {
            "user_id": user_id,
            **self.info.ctx.throttle.lock_state(user_id).to_json(),
            "tap_failures": self.tap.throttle.account_failures(user_id),
            "reset_attempts_today": self.store.get_count(reset_day_key(user_id)),
        }

    def is_locked(self, user_id: str) -> bool:
        return self.info.ctx.throttle.lock_state(user_id).locked

    def locked_accounts(self) -> list[dict[str, Any]]:
        """Every account the store knows whose MFA codes are locked, with its counters."""
        return [self._lock_json(uid) for uid in self.store.list_user_ids() if self.is_locked(uid)]

    def unlock(self, user_id: str, *, actor: str, ip: str | None) -> dict[str, Any]:
        """Clear the account's failure counters (audited ``admin.unlocked``); returns the state
        before. The client-IP counters stay: they are not the account's."""
        before = self._lock_json(user_id)
        self._require_known_or_counted(user_id, before)
        keys = [
            *self.info.ctx.throttle.unlock_keys(user_id),
            *self.tap.throttle.unlock_keys(user_id),
            *self.info.app_passwords.throttle.unlock_keys(user_id),
            *reset_account_keys(user_id),
        ]
        self.store.counters(reset=keys)
        self.info.audit(
            "admin.unlocked",
            user_id,
            "success",
            ip=ip,
            actor=actor,
            was_locked=before["locked"],
            consecutive_failures=before["consecutive_failures"],
        )
        return before

    def revoke_sessions(self, user_id: str, *, actor: str, ip: str | None) -> int:
        """End every middleware session of the user (their MFA sign-ins); returns how many."""
        count = self.store.delete_user_sessions(user_id)
        self.info.audit("session.revoked_all", user_id, "success", ip=ip, count=count, actor=actor)
        return count

    def set_per_user_mfa(
        self, user_id: str, state: PerUserMfa, *, actor: str, ip: str | None
    ) -> None:
        """Through the Directory; ``NotSupported`` when it is read-only."""
        if self.directory is None:
            raise NotSupported("no Directory here: set per-user MFA through the admin API")
        if self.directory.get_user(user_id) is None:
            raise UnknownUser(user_id)
        try:
            self.directory.set_per_user_mfa(user_id, state)
        except NotImplementedError as exc:
            raise NotSupported("the Directory does not allow changing per-user MFA") from exc
        self.info.audit(
            "admin.per_user_mfa_set", user_id, "success", ip=ip, state=state.value, actor=actor
        )

    # -- hardware tokens ----------------------------------------------------------------------

    def import_hardware_tokens(
        self,
        *,
        fmt: str,
        content: str,
        key: str | None = None,
        default_user: str | None = None,
        actor: str,
        ip: str | None,
    ) -> dict[str, Any]:
        """Import tokens from Entra's CSV or a PSKC document (base64), all or nothing."""
        try:
            from ..methods.token_import import parse_csv, parse_pskc
            from ..service.hardware_oath import HardwareOathService
        except ImportError as exc:  # pragma: no cover - the module ships with the package now
            raise NotSupported("hardware token import is not available in this version") from exc
        service = HardwareOathService(self.info.ctx)
        min_bits = self.info.config.hardware_oath.min_secret_bits
        if fmt == "csv":
            report = parse_csv(content, min_secret_bits=min_bits)
        elif fmt == "pskc":
            from ..extras import missing_extra

            if (problem := missing_extra("pskc")) is not None:
                raise NotSupported(f"PSKC import {problem}")
            report = parse_pskc(
                _b64("content", content),
                key=_b64("key", key) if key else None,
                min_secret_bits=min_bits,
            )
        else:
            raise InvalidInput("format", "expected 'csv' or 'pskc'")
        result = service.import_tokens(report, default_user=default_user, actor=actor)
        outcome = "success" if result.ok else "failure"
        self.info.audit(
            "admin.tokens_imported",
            None,
            outcome,
            ip=ip,
            actor=actor,
            count=len(result.imported),
            problems=len(result.problems),
        )
        return {
            "imported": list(result.imported),
            "problems": [{"source": p.source, "message": p.message} for p in result.problems],
        }

    # -- Temporary Access Pass ----------------------------------------------------------------

    def issue_tap(
        self,
        user_id: str,
        *,
        minutes: int | None,
        one_time: bool | None,
        actor: str,
        ip: str | None,
    ) -> IssuedTap:
        if self.directory is not None:
            user = self.directory.get_user(user_id)
            if user is None:
                raise UnknownUser(user_id)
            if not user.enabled:
                raise InvalidInput("user_id", "the account is disabled")
        return self.tap.issue(user_id, minutes=minutes, one_time=one_time, actor=actor, ip=ip)

    def revoke_tap(self, user_id: str, *, actor: str, ip: str | None) -> bool:
        return self.tap.revoke(user_id, actor=actor, ip=ip)

    def tap_status(self, user_id: str) -> TapStatus | None:
        return self.tap.status(user_id)

    # -- reports ------------------------------------------------------------------------------

    def registration_rows(self, user_id: str | None = None) -> list[reports.RegistrationRow]:
        """Every user the store knows (with a method or state) and, when the Directory can list
        its users (an optional ``user_ids()``), those it has not seen; or one user."""
        ids = [user_id] if user_id else list(self.store.list_user_ids())
        listing = getattr(self.directory, "user_ids", None)
        if not user_id and callable(listing):
            seen = set(ids)
            ids += sorted(str(u) for u in listing() if str(u) not in seen)
        policies = self.info.config.policies
        return [
            reports.registration_row(
                uid,
                self._user(uid),
                self.store.list_methods(uid),
                self.store.get_user_state(uid),
                policies,
                locked=self.is_locked(uid),
            )
            for uid in ids
        ]

    def campaign_rows(self, user_id: str | None = None) -> list[reports.CampaignRow]:
        """The registration campaign's rows: every user it concerns, or one user."""
        ids = [user_id] if user_id else list(self.store.list_user_ids())
        policies, now = self.info.config.policies, self.info.clock.now()
        rows = (
            reports.campaign_row(
                uid,
                self._user(uid),
                self.store.list_methods(uid),
                self.store.get_user_state(uid),
                policies,
                now,
            )
            for uid in ids
        )
        return [r for r in rows if r is not None]

    def usage(self, *, since: float | None, until: float | None) -> reports.UsageSummary:
        ids = self.store.list_user_ids()
        methods = {uid: self.store.list_methods(uid) for uid in ids}
        policies = self.info.config.policies
        rows = [
            reports.registration_row(
                uid,
                self._user(uid),
                methods[uid],
                self.store.get_user_state(uid),
                policies,
            )
            for uid in ids
        ]
        events = self.store.list_audit(since=since, until=until, limit=MAX_EVENTS)
        return reports.usage_summary(rows, methods, events, since=since, until=until)

    def audit(
        self,
        *,
        user_id: str | None = None,
        event: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[dict[str, Any]]:
        """Audit rows, newest first; ``event`` matches a type or a dotted prefix (``tap.``)."""
        found = self.store.list_audit(
            user_id=user_id, event_prefix=event, since=since, until=until, limit=limit
        )
        return [reports.audit_row(e) for e in found]


def _b64(field: str, text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidInput(field, "expected base64") from exc
