"""An in-process :class:`~oidc_combinedreg.store.base.Store` for unit tests of hosts and core code.

It passes the same contract tests as the real backends: one lock makes every operation atomic, and
payloads go through JSON on the way in and out, so a value the real stores would refuse is refused
here too and callers never share mutable state with the store. It is per process and lost on exit:
never serve with it (a store that forgets counters would reopen TOTP replay and lift lockouts).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from oidc_combinedreg.clock import Clock
from oidc_combinedreg.exceptions import (
    InvalidInput,
    LimitReached,
    MethodsChanged,
    StoreUnavailable,
)
from oidc_combinedreg.store.base import AuditEvent, MethodRecord, UserState
from oidc_combinedreg.store.json_documents import dumps, loads

__all__ = ["MemoryStore"]


def _copy(value: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy through JSON, so only what the real stores can hold is accepted."""
    return loads(dumps(value))


def _copy_method(record: MethodRecord) -> MethodRecord:
    return dataclasses.replace(record, data=_copy(record.data))


def _copy_event(event: AuditEvent) -> AuditEvent:
    return dataclasses.replace(event, detail=_copy(event.detail))


class MemoryStore:
    """The Store contract in dictionaries, expiring by ``clock``."""

    def __init__(self, *, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        #: per thread: how many transaction() blocks it is inside
        self._blocks = threading.local()
        self._closed = False
        self._methods: dict[str, MethodRecord] = {}
        self._states: dict[str, UserState] = {}
        self._sessions: dict[str, tuple[dict[str, Any], str | None, float]] = {}
        self._challenges: dict[str, tuple[dict[str, Any], float]] = {}
        self._counters: dict[str, tuple[int, float | None]] = {}
        self._audit: list[AuditEvent] = []

    def _check_open(self) -> None:
        if self._closed:
            raise StoreUnavailable("MemoryStore is closed")

    def _live(self, expires_at: float | None) -> bool:
        return expires_at is None or expires_at > self._clock.now()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:  # re-entrant: the calls inside take it again
            depth = getattr(self._blocks, "depth", 0)
            self._blocks.depth = depth + 1
            try:
                yield
            finally:
                self._blocks.depth = depth

    def serialized(self) -> bool:
        return bool(getattr(self._blocks, "depth", 0))

    def close(self) -> None:
        with self._lock:
            self._closed = True

    # -- methods ------------------------------------------------------------------------------

    def list_methods(self, user_id: str) -> list[MethodRecord]:
        with self._lock:
            self._check_open()
            mine = [m for m in self._in_use() if m.user_id == user_id]
        # sorted() is stable: insertion order on equal created_at, like the SQLite rowid tiebreak
        return [_copy_method(m) for m in sorted(mine, key=lambda m: m.created_at)]

    def get_method(self, user_id: str, method_id: str) -> MethodRecord | None:
        with self._lock:
            self._check_open()
            record = self._methods.get(method_id)
        if record is None or record.user_id != user_id or record.reported_at is not None:
            return None
        return _copy_method(record)

    def find_method_by_lookup(self, lookup: str) -> MethodRecord | None:
        with self._lock:
            self._check_open()
            found = next((m for m in self._methods.values() if m.lookup == lookup), None)
        return None if found is None or found.reported_at is not None else _copy_method(found)

    def _in_use(self) -> list[MethodRecord]:
        return [m for m in self._methods.values() if m.reported_at is None]

    def list_reported_methods(self, user_id: str) -> list[MethodRecord]:
        with self._lock:
            self._check_open()
            mine = [
                m
                for m in self._methods.values()
                if m.user_id == user_id and m.reported_at is not None
            ]
        return [_copy_method(m) for m in sorted(mine, key=lambda m: m.created_at)]

    def report_methods(
        self,
        state: UserState,
        method_ids: Collection[str],
        *,
        at: float,
        events: Sequence[AuditEvent] = (),
    ) -> int:
        with self._lock:  # re-entrant: one atomic change
            self._check_open()
            for method_id in method_ids:
                current = self.get_method(state.user_id, method_id)
                if current is not None:
                    self._methods[method_id] = dataclasses.replace(current, reported_at=at)
            live = self.delete_user_sessions(state.user_id)
            self.put_user_state(state, events=events)
        return live

    def restore_method(
        self, user_id: str, method_id: str, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> bool:
        copies = [_copy_event(event) for event in events]
        with self._lock:
            self._check_open()
            record = self._methods.get(method_id)
            if record is None or record.user_id != user_id or record.reported_at is None:
                return False
            mine = [m for m in self._in_use() if m.user_id == user_id]
            if sum(m.kind == record.kind for m in mine) >= limit:
                raise LimitReached(str(record.kind), limit)
            self._methods[method_id] = dataclasses.replace(record, reported_at=None)
            self._audit.extend(copies)
        return True

    def add_method(
        self, record: MethodRecord, *, limit: int, events: Sequence[AuditEvent] = ()
    ) -> None:
        stored = _copy_method(record)
        copies = [_copy_event(event) for event in events]
        with self._lock:
            self._check_open()
            mine = [m for m in self._in_use() if m.user_id == record.user_id]
            if sum(m.kind == record.kind for m in mine) >= limit:
                raise LimitReached(str(record.kind), limit)
            taken = any(m.lookup == record.lookup for m in self._methods.values())
            if record.lookup is not None and taken:
                raise InvalidInput("lookup", "already registered")
            if record.id in self._methods:
                raise InvalidInput("id", "a method with this id exists")
            self._methods[record.id] = stored
            self._audit.extend(copies)

    def update_method(self, record: MethodRecord, *, events: Sequence[AuditEvent] = ()) -> bool:
        data, copies = _copy(record.data), [_copy_event(event) for event in events]
        with self._lock:
            current = self.get_method(record.user_id, record.id)
            if current is None:
                return False
            self._methods[record.id] = dataclasses.replace(
                current, label=record.label, data=data, secret=record.secret
            )
            self._audit.extend(copies)
        return True

    def delete_method(
        self,
        user_id: str,
        method_id: str,
        *,
        events: Sequence[AuditEvent] = (),
        if_methods: Collection[str] | None = None,
    ) -> bool:
        copies = [_copy_event(event) for event in events]
        with self._lock:
            if if_methods is not None:
                ids = {m.id for m in self._in_use() if m.user_id == user_id}
                if ids != set(if_methods):
                    raise MethodsChanged(f"the methods of {user_id!r} changed")
            found = self._methods.get(method_id)
            if found is None or found.user_id != user_id:
                return False
            del self._methods[method_id]
            self._audit.extend(copies)
        return True

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
        return self._use(user_id, method_id, used_at, value, events, reset)

    def record_use(
        self,
        user_id: str,
        method_id: str,
        used_at: float,
        *,
        events: Sequence[AuditEvent] = (),
        reset: Sequence[str] = (),
    ) -> bool:
        return self._use(user_id, method_id, used_at, None, events, reset)

    def _use(
        self,
        user_id: str,
        method_id: str,
        used_at: float,
        counter: int | None,
        events: Sequence[AuditEvent],
        reset: Sequence[str],
    ) -> bool:
        """A use of the method, its events and the counters it clears, at once; with
        ``counter``, only if it moves the method's counter forward (advance_counter)."""
        copies = [_copy_event(event) for event in events]
        with self._lock:
            current = self.get_method(user_id, method_id)
            if current is None or (counter is not None and counter <= current.counter):
                return False
            moved = current.counter if counter is None else counter
            self._methods[method_id] = dataclasses.replace(
                current, counter=moved, last_used_at=used_at
            )
            self._audit.extend(copies)
            for key in reset:
                self._counters.pop(key, None)
        return True

    # -- per-user state -----------------------------------------------------------------------

    def get_user_state(self, user_id: str) -> UserState:
        with self._lock:
            self._check_open()
            state = self._states.get(user_id)
        return UserState(user_id=user_id) if state is None else state

    def put_user_state(self, state: UserState, *, events: Sequence[AuditEvent] = ()) -> None:
        stored = dataclasses.replace(state, extra=_copy(state.extra))
        copies = [_copy_event(event) for event in events]
        with self._lock:
            self._check_open()
            self._states[state.user_id] = stored
            self._audit.extend(copies)

    def list_user_ids(self) -> list[str]:
        with self._lock:
            self._check_open()
            return sorted({m.user_id for m in self._methods.values()} | set(self._states))

    # -- sessions -----------------------------------------------------------------------------

    def load_session(self, sid: str) -> dict[str, Any] | None:
        with self._lock:
            self._check_open()
            entry = self._sessions.get(sid)
        return _copy(entry[0]) if entry is not None and self._live(entry[2]) else None

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
        entry = (_copy(data), user_id, self._clock.now() + ttl)
        with self._lock:
            self._check_open()
            if not create:
                current = self._sessions.get(replaces or sid)
                if current is None or not self._live(current[2]):
                    return False
            self._sessions[sid] = entry
            if replaces is not None and replaces != sid:
                self._sessions.pop(replaces, None)
        return True

    def delete_session(self, sid: str) -> None:
        with self._lock:
            self._check_open()
            self._sessions.pop(sid, None)

    def delete_user_sessions(self, user_id: str) -> int:
        with self._lock:
            self._check_open()
            mine = [sid for sid, entry in self._sessions.items() if entry[1] == user_id]
            live = sum(self._live(self._sessions[sid][2]) for sid in mine)
            for sid in mine:
                del self._sessions[sid]
        return live

    # -- single-use challenges ----------------------------------------------------------------

    def put_challenge(self, key: str, data: Mapping[str, Any], *, ttl: float) -> None:
        entry = (_copy(data), self._clock.now() + ttl)
        with self._lock:
            self._check_open()
            self._challenges[key] = entry

    def take_challenge(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            self._check_open()
            entry = self._challenges.pop(key, None)
        return entry[0] if entry is not None and self._live(entry[1]) else None

    def peek_challenge(self, key: str) -> dict[str, Any] | None:
        with self._lock:
            self._check_open()
            entry = self._challenges.get(key)
        return _copy(entry[0]) if entry is not None and self._live(entry[1]) else None

    # -- counters -----------------------------------------------------------------------------

    def incr(self, key: str, *, ttl: float | None) -> int:
        now = self._clock.now()
        with self._lock:
            self._check_open()
            value, expires_at = self._counters.get(key, (0, now + ttl if ttl is not None else None))
            if not self._live(expires_at):
                value, expires_at = 0, None if ttl is None else now + ttl
            self._counters[key] = (value + 1, expires_at)
        return value + 1

    def get_count(self, key: str) -> int:
        with self._lock:
            self._check_open()
            value, expires_at = self._counters.get(key, (0, None))
        return value if self._live(expires_at) else 0

    def reset_count(self, key: str) -> None:
        with self._lock:
            self._check_open()
            self._counters.pop(key, None)

    def counters(
        self,
        *,
        incr: Sequence[tuple[str, float | None]] = (),
        read: Sequence[str] = (),
        reset: Sequence[str] = (),
    ) -> list[int]:
        if not (incr or read or reset):
            return []
        with self._lock:  # re-entrant: the single-key methods take it again
            for key in reset:
                self.reset_count(key)
            values = [self.incr(key, ttl=ttl) for key, ttl in incr]
            return values + [self.get_count(key) for key in read]

    # -- audit --------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        copy = _copy_event(event)
        with self._lock:
            self._check_open()
            self._audit.append(copy)

    def list_audit(
        self,
        *,
        user_id: str | None = None,
        event_prefix: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first; ``since <= at < until``; ``event_prefix`` starts ``event``."""
        with self._lock:
            self._check_open()
            indexed = list(enumerate(self._audit))
        matches = [
            (index, event)
            for index, event in indexed
            if (user_id is None or event.user_id == user_id)
            and (event_prefix is None or event.event.startswith(event_prefix))
            and (since is None or event.at >= since)
            and (until is None or event.at < until)
        ]
        matches.sort(key=lambda pair: (pair[1].at, pair[0]), reverse=True)
        return [event for _, event in matches[: max(limit, 0)]]
