"""The ``Store`` protocol: everything oidc_combinedreg keeps, behind one small backend-neutral interface.

Three backends implement it (``store/sqlite.py``, ``store/redis.py``, ``store/postgres.py``) and
pass the same contract tests.
Rules every backend keeps:

* ``add_method`` counts and inserts atomically, so a per-kind limit holds under concurrent requests,
  and writes the given audit events in the same transaction (no "added" event for a rolled-back add).
* ``advance_counter`` is a compare-and-set: it stores ``value`` only if it is greater than the stored
  counter. TOTP replay protection, HOTP counters and WebAuthn sign counts rest on it. A success
  also writes its audit events and clears the throttle's counters in the same call.
* ``take_challenge`` is an atomic get-and-delete: a challenge is usable once.
* ``incr`` is atomic. Counters with ``ttl=None`` are durable (consecutive-failure counts).
  ``counters`` does several counter operations in one round trip; each increment stays atomic,
  the call as a whole need not be (on a Redis Cluster its keys live in different slots).
* Calls that take ``events`` write them in the same transaction (SQLite) or script (Redis) as
  the change, and only if the change happened.
* A *reported* method (``report_methods``: "This wasn't me") is out of use: ``list_methods``,
  ``get_method``, ``find_method_by_lookup``, the per-kind limit, ``update_method``,
  ``advance_counter`` and ``delete_method``'s ``if_methods`` see only methods in use, so every
  caller (MFA, password reset, app passwords, the wizard) leaves it out without knowing about it.
  ``list_reported_methods`` shows it; ``delete_method`` deletes it; ``restore_method`` takes it back.
* Anything ephemeral (sessions, challenges, windowed counters) expires by the store's clock.
* Any failure to reach the backend raises :class:`~oidc_combinedreg.exceptions.StoreUnavailable`.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from ..methods.kinds import MethodKind
from .json_documents import loads

__all__ = [
    "AuditEvent",
    "LimitCheckedAdvance",
    "MethodRecord",
    "Store",
    "STATE_COLUMNS",
    "UserState",
    "qualified",
    "state_from_row",
]


@dataclass(frozen=True, kw_only=True, slots=True)
class MethodRecord:
    """One registered method of one user."""

    #: random id, unique per store
    id: str
    user_id: str
    kind: MethodKind
    #: what the user sees: device name, key name ("" when the page derives it from ``data``)
    label: str
    created_at: float
    #: non-secret attributes: phone number (E.164), email, credential id, token serial, algorithm ...
    data: Mapping[str, Any] = field(default_factory=dict)
    #: secret material: encrypted (TOTP seed, push key) or hashed (app password, answers); never clear
    secret: bytes = b""
    #: monotonic counter: last TOTP time step used, HOTP counter, WebAuthn sign count
    counter: int = 0
    last_used_at: float | None = None
    #: a value unique across all users (WebAuthn credential id, token serial) or None
    lookup: str | None = None
    #: when "This wasn't me" suspended it (only on records of ``list_reported_methods``)
    reported_at: float | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class UserState:
    """Per-user registration state that is not a method."""

    user_id: str
    default_method_id: str | None = None
    #: how many times the user postponed enforced registration
    skips_used: int = 0
    #: registration interrupt postponed until this time
    snoozed_until: float | None = None
    #: last time the user registered or re-confirmed their security info
    confirmed_at: float | None = None
    #: an admin asked for re-registration (the wizard runs at the next sign-in)
    reregister: bool = False
    #: anything else (flags set by "this wasn't me", ...)
    extra: Mapping[str, Any] = field(default_factory=dict)


#: the ``user_state`` columns of the SQL stores in the order :func:`state_from_row` reads them
STATE_COLUMNS = (
    "user_id, default_method_id, skips_used, snoozed_until, confirmed_at, reregister, extra"
)


def qualified(alias: str, columns: str) -> str:
    """``columns`` (a comma-separated list) each prefixed with ``alias.``, for a join."""
    return ", ".join(f"{alias}.{name.strip()}" for name in columns.split(","))


def state_from_row(row: Sequence[Any]) -> UserState:
    """A ``user_state`` row of the SQL stores, its columns in the table's order (``user_id``,
    ``default_method_id``, ``skips_used``, ``snoozed_until``, ``confirmed_at``, ``reregister``,
    ``extra`` as JSON text). By position: every sign-in decision reads it, and sqlite3.Row finds a
    name by comparing it with each column's, case-insensitively."""
    user_id, default_method_id, skips_used, snoozed_until, confirmed_at, reregister, extra = row
    return UserState(
        user_id=user_id,
        default_method_id=default_method_id,
        skips_used=skips_used,
        snoozed_until=snoozed_until,
        confirmed_at=confirmed_at,
        reregister=bool(reregister),
        extra=loads(extra),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class AuditEvent:
    """One audit record. Never holds a secret, a code or an answer."""

    at: float
    #: dotted event type, e.g. ``method.added``, ``mfa.failed``, ``ca.blocked``
    event: str
    user_id: str | None
    #: ``success`` / ``failure`` / ``blocked`` / ``info``
    outcome: str
    ip: str | None = None
    correlation_id: str | None = None
    detail: Mapping[str, Any] = field(default_factory=dict)


class Store(Protocol):
    """Persistence for methods, user state, sessions, challenges, counters and the audit log."""

    # -- methods ------------------------------------------------------------------------------
    def list_methods(self, user_id: str) -> list[MethodRecord]:
        """All methods of ``user_id`` in use (not reported), oldest first."""
        ...

    def get_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        """The method ``method_id`` if it belongs to ``user_id`` (never another user's) and is
        in use (a reported method is None here)."""
        ...

    def find_method_by_lookup(self, lookup: str) -> MethodRecord | None:
        """The method in use whose globally unique ``lookup`` value is this, whoever owns it.
        (A reported method keeps its value taken, but is not found here.)"""
        ...

    def list_reported_methods(self, user_id: str) -> list[MethodRecord]:
        """The methods of ``user_id`` that :meth:`report_methods` suspended, oldest first, with
        ``reported_at`` set."""
        ...

    def report_methods(
        self,
        state: UserState,
        method_ids: Collection[str],
        *,
        at: float,
        events: Sequence[AuditEvent] = (),
    ) -> int:
        """ "This wasn't me", as one write: suspend those of ``method_ids`` that are methods in
        use of ``state.user_id`` (``reported_at = at``; ids that are gone or another user's are
        skipped), end every session of the user, store ``state`` and write ``events``. Returns
        how many live sessions ended.

        One transaction (SQLite) or script (one Redis server). On a Redis Cluster the sessions
        live in other slots: the methods, the state and the events are one script, and the
        sessions are ended right after it, in the same call."""
        ...

    def restore_method(
        self, user_id: str, method_id: str, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> bool:
        """Take a reported method of ``user_id`` back into use, with ``events``; False if the
        user has no such reported method. ``LimitReached`` (nothing changed) when the user has
        ``limit`` methods of its kind in use meanwhile."""
        ...

    def add_method(
        self, record: MethodRecord, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> None:
        """Insert ``record`` unless the user already has ``limit`` methods of its kind.

        Raises ``LimitReached`` (nothing stored) or ``InvalidInput("lookup", ...)`` when the
        ``lookup`` value is already taken. ``events`` are written in the same transaction.
        """
        ...

    def update_method(self, record: MethodRecord, *, events: Sequence[AuditEvent] = ()) -> bool:
        """Replace label, data and secret of a method in use; False if it no longer exists (or
        was reported)."""
        ...

    def delete_method(
        self,
        user_id: str,
        method_id: str,
        *,
        events: Sequence[AuditEvent] = (),
        if_methods: Collection[str] | None = None,
    ) -> bool:
        """Delete one method of ``user_id`` (in use or reported); False if there was none.

        ``if_methods``: only if the user's methods in use are exactly these ids when it runs,
        atomically with it; otherwise :class:`~oidc_combinedreg.exceptions.MethodsChanged` and
        nothing is deleted (a check made on the methods read before still holds)."""
        ...

    def advance_counter(
        self,
        user_id: str,
        method_id: str,
        value: int,
        used_at: float,
        *,
        events: Sequence[AuditEvent] = (),
        reset: Sequence[str] = (),
    ) -> bool:
        """Set the counter to ``value`` and ``last_used_at`` iff ``value`` > stored counter
        (and the method is in use: a reported method's code never passes, even one checked
        just before the report).

        Returns whether it did. ``events`` (the ``mfa.succeeded`` of the code that used this
        step) are written in the same transaction, and only when the counter moved: a replayed
        step leaves neither a new counter nor a success in the log, and a crash cannot leave one
        without the other. ``reset`` names counters (as in :meth:`counters`) deleted when the
        counter moves: the throttle's failure counts, which a success clears. They go in the same
        transaction too, except on a Redis Cluster (other slots), where they follow the change.
        """
        ...

    def record_use(
        self,
        user_id: str,
        method_id: str,
        used_at: float,
        *,
        events: Sequence[AuditEvent] = (),
        reset: Sequence[str] = (),
    ) -> bool:
        """Set ``last_used_at`` of a method in use, its counter untouched: the success of a
        method without a counter to advance (an approved push, a passkey whose counter stays 0,
        an email code or questions at a password reset). False, and nothing written, if the
        method is gone or reported. ``events`` and ``reset`` as in :meth:`advance_counter`."""
        ...

    # -- per-user state -----------------------------------------------------------------------
    def get_user_state(self, user_id: str) -> UserState:
        """The user's state (a default ``UserState`` when none was stored)."""
        ...

    def put_user_state(self, state: UserState, *, events: Sequence[AuditEvent] = ()) -> None: ...

    def list_user_ids(self) -> list[str]:
        """Every user with a method or state, sorted (reports)."""
        ...

    # -- sessions (the middleware's own, server side) -----------------------------------------
    def load_session(self, sid: str) -> dict[str, Any] | None: ...

    def save_session(
        self,
        sid: str,
        data: Mapping[str, Any],
        *,
        user_id: str | None,
        ttl: float,
        replaces: str | None = None,
        create: bool = True,
    ) -> bool:
        """Store ``data`` under ``sid`` for ``ttl`` seconds (replacing what ``sid`` held).

        ``replaces`` names the id this session was rotated from (after password, MFA, step-up):
        it is deleted with the save, in the same transaction (SQLite) or script (one Redis
        server). On a Redis Cluster the two ids live in different slots: the old one is deleted
        in the same round trip, after the save. Either way, once the call returns the old id
        loads nothing; if it raises, the old id may still load, but it never holds the new data.
        ``replaces == sid`` deletes nothing.

        ``create=False`` saves a session that was loaded from the store: only while the one it
        updates (``replaces``, else ``sid``) is still live. A session ended meanwhile (signed
        out everywhere, revoked at a password reset, expired) stays ended: the call writes
        nothing and returns False. Otherwise it returns True. (On a Redis Cluster the check is
        a round trip before the save, not atomic with it.)
        """
        ...

    def delete_session(self, sid: str) -> None: ...

    def delete_user_sessions(self, user_id: str) -> int:
        """Delete every session of ``user_id`` (sign out everywhere); returns how many."""
        ...

    # -- single-use challenges ----------------------------------------------------------------
    def put_challenge(self, key: str, data: Mapping[str, Any], *, ttl: float) -> None: ...

    def take_challenge(self, key: str) -> dict[str, Any] | None:
        """Atomically return and delete the challenge; None if absent or expired."""
        ...

    def peek_challenge(self, key: str) -> dict[str, Any] | None: ...

    # -- counters -----------------------------------------------------------------------------
    def incr(self, key: str, *, ttl: float | None) -> int:
        """Atomically add one and return the new value. The window starts at the first hit."""
        ...

    def get_count(self, key: str) -> int: ...

    def reset_count(self, key: str) -> None: ...

    def counters(
        self,
        *,
        incr: Sequence[tuple[str, float | None]] = (),
        read: Sequence[str] = (),
        reset: Sequence[str] = (),
    ) -> list[int]:
        """Several counter operations in one round trip (the throttle's per-attempt work).

        Each ``(key, ttl)`` of ``incr`` is :meth:`incr` (atomic, with the same window rules),
        each key of ``read`` is :meth:`get_count` and each key of ``reset`` is
        :meth:`reset_count`. Returns the new values of the incremented keys, in order, then the
        values of the read ones; resets return nothing. Resets happen first, then increments,
        then reads, so a key both incremented and read reads its new value. Each operation is
        atomic on its key; the call as a whole is not (one SQLite transaction, but on a Redis
        Cluster the keys live in different slots): if it raises
        :class:`~oidc_combinedreg.exceptions.StoreUnavailable`, some operations may have
        happened. An empty call returns ``[]`` without touching the backend.
        """
        ...

    # -- audit --------------------------------------------------------------------------------
    def append_audit(self, event: AuditEvent) -> None: ...

    def list_audit(
        self,
        *,
        user_id: str | None = None,
        event_prefix: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first."""
        ...

    def transaction(self) -> AbstractContextManager[None]:
        """The calls this thread makes inside the block, as one write transaction where the
        backend has them (SQLite: one commit and one writer-lock turn instead of one per call;
        the memory store: one lock). Elsewhere (Redis) each call stays atomic on its own, so
        callers must be correct either way; the block only saves work. What the calls wrote is
        committed even when the block raises, unless it raises ``StoreUnavailable``."""
        ...

    def serialized(self) -> bool:
        """Whether this thread is inside a :meth:`transaction` that the backend serializes
        (SQLite, the memory store): no other writer runs between its calls, so a read and a
        later write in it are atomic together. False on Redis and outside a block."""
        ...

    def close(self) -> None: ...


@runtime_checkable
class LimitCheckedAdvance(Protocol):
    """An optional store capability: a used code's :meth:`Store.advance_counter` behind the code
    throttle's limits in one atomic call, where the throttle's count first would cost a round
    trip of its own (Redis on one server, PostgreSQL). ``Throttle.limit_checks`` gives
    ``checks``; the counters a success clears (``reset``) are the first of them. The same call
    can save the session the success upgrades (:meth:`plan_session_save`)."""

    def checks_limits(self) -> bool:
        """Whether :meth:`advance_counter_checked` may be used (atomic) on this store."""
        ...

    def advance_counter_checked(
        self,
        user_id: str,
        method_id: str,
        value: int,
        used_at: float,
        *,
        checks: Sequence[tuple[str, int, str]],
        events: Sequence[AuditEvent] = (),
        reset: Sequence[str] = (),
    ) -> bool | str:
        """The scope of the first of ``checks`` (counter key, limit, scope) whose live value is
        at or past its limit, with nothing written; else :meth:`Store.advance_counter`'s answer."""
        ...

    def plan_session_save(
        self,
        sid: str,
        data: Mapping[str, Any],
        *,
        user_id: str,
        ttl: float,
        replaces: str | None = None,
        create: bool = True,
    ) -> None:
        """Inside :meth:`Store.transaction`: the :meth:`Store.save_session` the block will make
        once its code is accepted (the MFA step's upgraded session). The block's next
        :meth:`advance_counter_checked` of ``user_id`` that stores its step writes the session
        in the same atomic call, with save_session's rules (only while the session it updates
        is live); the block's save_session with exactly these arguments then answers as that
        write did, without writing again (one round trip fewer). Any other save_session is as
        without a plan; a plan no advance wrote ends with the block. Outside a block: ignored."""
        ...
