"""What every method service shares, and the one interface the MFA step uses for all of them.

A method service sits between the web layer and the pure method module: it reads and writes the
store, encrypts with the secret box, counts attempts with the throttle and writes audit events.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Protocol

from ..clock import Clock
from ..config.model import Config
from ..crypto import CodeHasher, SecretBox, bind_context
from ..directory import Directory, DirectoryUser
from ..exceptions import AccessDenied, CodeReused, LimitReached, VerificationFailed
from ..methods.kinds import METHOD_RULES, MethodKind
from ..notify import Change, Notifier, PendingNotice, prepare_notice
from ..store.base import AuditEvent, LimitCheckedAdvance, MethodRecord, Store
from ..throttle import Throttle

__all__ = ["MfaVerifier", "ServiceContext", "secret_context", "signing_in_to"]

#: the OIDC client of the sign-in the current request serves (the web layer sets it around the
#: MFA step); every audit event built meanwhile names it as ``client_id``, so "Recent activity"
#: shows the application without a parameter through every method service or a store write of
#: its own (decision 187)
_SIGN_IN_CLIENT: ContextVar[str | None] = ContextVar("combinedreg_sign_in_client", default=None)


@contextmanager
def signing_in_to(client_id: str | None) -> Iterator[None]:
    """Audit events built inside the block name ``client_id`` (none if empty)."""
    token = _SIGN_IN_CLIENT.set(client_id or None)
    try:
        yield
    finally:
        _SIGN_IN_CLIENT.reset(token)


@dataclass(frozen=True, kw_only=True)
class ServiceContext:
    """The shared parts, built once by :class:`~oidc_combinedreg.service.SecurityInfo`."""

    config: Config
    store: Store
    clock: Clock
    box: SecretBox
    codes: CodeHasher
    throttle: Throttle
    directory: Directory | None = None
    #: the "security info changed" notifier (see ``notify.prepare_notice``)
    notifier: Notifier | None = None

    @cached_property
    def checked_advance(self) -> LimitCheckedAdvance | None:
        """The store, if it checks the code throttle's limits in the call that records a
        success (one Redis server); asked once (a protocol ``isinstance`` costs ~25 µs)."""
        store = self.store
        return store if isinstance(store, LimitCheckedAdvance) and store.checks_limits() else None

    def event(
        self,
        event: str,
        user_id: str | None,
        outcome: str,
        *,
        ip: str | None = None,
        correlation_id: str | None = None,
        **detail: Any,
    ) -> AuditEvent:
        client_id = _SIGN_IN_CLIENT.get()
        if client_id is not None:
            detail.setdefault("client_id", client_id)
        return AuditEvent(
            at=self.clock.now(),
            event=event,
            user_id=user_id,
            outcome=outcome,
            ip=ip,
            correlation_id=correlation_id,
            detail=detail,
        )

    def audit(
        self, event: str, user_id: str | None, outcome: str, *, ip: str | None = None, **detail: Any
    ) -> None:
        self.store.append_audit(self.event(event, user_id, outcome, ip=ip, **detail))

    def method_change(
        self,
        name: str,
        change: Change,
        record: MethodRecord,
        *,
        ip: str | None,
        detail: str | None = None,
        old_email: str | None = None,
        **extra: Any,
    ) -> tuple[list[AuditEvent], PendingNotice]:
        """What a change of ``record`` writes with it: its audit event ``name`` (kind, method id
        and ``extra``) and its owner's "security info changed" notice (SECURITY.md case 17),
        which shows ``detail`` (the record's label unless given). Write the events in the same
        store call as the change; send the notice once it is stored.

        The notice's "This wasn't me" suspends ``record`` (SECURITY.md case 59) unless the change
        removed it or only renamed it (a renamed key is still the user's own key)."""
        keeps = change is Change.DELETED or name == "method.renamed"
        notice = prepare_notice(
            self.notifier,
            record.user_id,
            change,
            record.kind,
            ip=ip,
            method_id=record.id,
            detail=record.label if detail is None else detail,
            old_email=old_email,
            suspend=() if keeps else (record.id,),
            created_at=record.created_at,
        )
        event = self.event(
            name,
            record.user_id,
            "success",
            ip=ip,
            kind=record.kind.value,
            method_id=record.id,
            **extra,
        )
        return [event, *notice.events], notice

    def check_code(
        self,
        user_id: str,
        record: MethodRecord,
        match: Callable[[float], int],
        *,
        ip: str | None,
        events: tuple[str, str] = ("mfa.succeeded", "mfa.failed"),
    ) -> int:
        """The MFA check of a one-time code (authenticator app, hardware token, the push app's
        offline code): throttled, replay-proof, audited. Returns the counter or time step used.

        Every attempt is counted, atomically, before the code can be accepted: of parallel
        guesses at most the limit's worth get past the count, and only those can reach the
        store's compare-and-set (inside a transaction the store serializes, the count is read
        and the failure written in the same transaction: ``Throttle.begin``). ``match(now)``
        returns the counter or step the code matches, or raises ``VerificationFailed``; it runs
        first, before the transaction's first store call (it is CPU: decrypt, HMAC), and its
        outcome counts only once the attempt is. Then one store call stores the step if it is
        past the stored one (``CodeReused`` if not: a replay or a parallel use), writes the
        success event and clears the throttle's counters, all or nothing. A failure is counted
        against the account and the IP, and audited. A caller may hold the transaction open
        to commit more with the success (the MFA page saves the upgraded session in it).
        ``events`` names the success and the failure in the audit log (a resync is no MFA).
        """
        kind = record.kind.value
        now = self.clock.now()
        matched: int | None = None
        refused: Exception | None = None
        try:
            matched = match(now)
        except Exception as exc:  # noqa: BLE001 - raised below, once the attempt is counted
            refused = exc
        succeeded, failed = events
        success = self.event(succeeded, user_id, "success", ip=ip, kind=kind, method_id=record.id)
        # One write transaction on SQLite (one commit, one turn of the writer lock, and no
        # counter row written for a clean success); on Redis each call is atomic on its own.
        store = self.store
        # On one Redis server the limits are checked in the script that records the success:
        # one round trip instead of two (the count first, then the success).
        checked = self.checked_advance if refused is None else None
        with store.transaction():
            if checked is not None:
                attempt = self.throttle.unchecked(user_id, ip)
            else:
                attempt = self.throttle.begin(user_id, ip)
            try:
                if refused is not None:
                    raise refused
                assert matched is not None
                if checked is not None:
                    stored = checked.advance_counter_checked(
                        user_id, record.id, matched, now,
                        checks=self.throttle.limit_checks(user_id, ip),
                        events=[success], reset=attempt.clears,
                    )  # fmt: skip
                    if isinstance(stored, str):
                        self.throttle.refused(user_id, ip, stored)
                else:
                    stored = store.advance_counter(
                        user_id, record.id, matched, now, events=[success], reset=attempt.clears
                    )
                if not stored:
                    # Another request used this step (or a later one) between our read and write.
                    raise CodeReused("this code was already used; wait for the next one")
            except (VerificationFailed, CodeReused) as exc:
                attempt.failed()
                reason = "replay" if isinstance(exc, CodeReused) else "code"
                self.audit(failed, user_id, "failure", ip=ip, kind=kind, reason=reason)
                raise
        return matched

    def check_room(self, user_id: str, kind: MethodKind, replace_id: str | None = None) -> None:
        """Before starting a registration: a new method must fit under the per-user limit
        (``LimitReached``); a change (``replace_id``) must name one of this user's methods of that
        kind (``AccessDenied``). The store enforces the limit again, atomically, at the commit."""
        if replace_id is None:
            limit = METHOD_RULES[kind].per_user
            if sum(1 for m in self.store.list_methods(user_id) if m.kind is kind) >= limit:
                raise LimitReached(kind.value, limit)
            return
        record = self.store.get_method(user_id, replace_id)
        if record is None or record.kind is not kind:
            raise AccessDenied(f"no such {kind.value} method for this user")


def secret_context(user_id: str, method_id: str) -> bytes:
    """Binds a ciphertext to its row: a seed copied into another user's record does not decrypt."""
    return bind_context(user_id, method_id)


class MfaVerifier(Protocol):
    """How the MFA step (and the password reset) uses a registered method, whatever its kind.

    ``state`` is a JSON-safe dict the caller keeps server side in the session between the two
    calls (a sent code's hash, a push transaction id, a WebAuthn challenge).
    """

    kind: MethodKind

    #: the method needs an explicit start (send a text, make a call, push a request, WebAuthn options)
    needs_start: bool

    def start(
        self, user: DirectoryUser, record: MethodRecord, state: dict[str, Any], *, ip: str | None
    ) -> dict[str, Any]:
        """Begin one verification; returns JSON-safe data for the page (never a secret)."""
        ...

    def verify(
        self,
        user: DirectoryUser,
        record: MethodRecord,
        response: Mapping[str, Any],
        state: dict[str, Any],
        *,
        ip: str | None,
    ) -> tuple[str, ...]:
        """Check the user's response; returns the RFC 8176 ``amr`` values it proves.

        Raises ``VerificationFailed``/``CodeReused``/``ChallengeExpired``/``InvalidInput``/
        ``RateLimited``; throttles and audits itself.
        """
        ...


class CodeVerifier(ABC):
    """The :class:`MfaVerifier` calls for a method that is verified by a typed one-time code
    (authenticator apps, hardware tokens): nothing to start, the code proves "otp". Subclasses
    implement ``verify_code`` (throttled, replay-proof, audited)."""

    needs_start = False

    def start(
        self, user: DirectoryUser, record: MethodRecord, state: dict[str, Any], *, ip: str | None
    ) -> dict[str, Any]:
        return {}

    def verify(
        self,
        user: DirectoryUser,
        record: MethodRecord,
        response: Mapping[str, Any],
        state: dict[str, Any],
        *,
        ip: str | None,
    ) -> tuple[str, ...]:
        self.verify_code(user.id, record, response.get("code"), ip=ip)
        return ("otp",)

    @abstractmethod
    def verify_code(
        self, user_id: str, record: MethodRecord, code: object, *, ip: str | None
    ) -> int:
        """Check one code for ``record``; returns the counter/time step it used."""
