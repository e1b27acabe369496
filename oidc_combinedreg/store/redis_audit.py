"""The Redis store's audit log, and the changes that write their events with them.

A change script writes its events itself: to the stream on one server, to the user's outbox
(the user's slot) on a cluster, moved to the stream after it (:meth:`RedisAudit._change`,
:meth:`RedisAudit._move_outbox`). A cluster's ``transaction()`` keeps a block's used codes and
events until it ends, to take them back if it fails unwritten. Why: store/redis.py's docstring
("Audit in one stream").
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

from redis.exceptions import RedisError, ResponseError

from oidc_combinedreg.crypto import random_id
from oidc_combinedreg.exceptions import StoreUnavailable
from oidc_combinedreg.store.base import AuditEvent
from oidc_combinedreg.store.redis_connection import CHUNK, RedisConnection
from oidc_combinedreg.store.redis_layout import event_from_json, event_json

_log = logging.getLogger("oidc_combinedreg.store")

#: ``list_audit(since=...)`` stops reading entries written this long (s) before ``since``: events
#: are assumed to be stamped (``at``) no later than this after the store's clock when written
AUDIT_CLOCK_SKEW = 3600.0


@dataclass(frozen=True, slots=True)
class Advanced:
    """A committed ``advance_counter`` on a cluster, kept until its transaction ends."""

    user_id: str
    method_id: str
    #: ``<counter>|<last used>`` as the advance wrote it, and as it was before
    written: str
    before: bytes
    entries: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Block:
    """What a cluster's ``transaction()`` block may take back when it fails (see there)."""

    advances: list[Advanced] = field(default_factory=list)
    #: (user id, outbox entry) of the block's ``append_audit`` calls
    events: list[tuple[str, str]] = field(default_factory=list)

    def users(self) -> list[str]:
        named = [a.user_id for a in self.advances] + [user for user, _ in self.events]
        return list(dict.fromkeys(named))


def _surely_unwritten(exc: BaseException) -> bool:
    """Whether the ``StoreUnavailable`` that ended a transaction wrote nothing: a Redis error
    reply (``CLUSTERDOWN``, ``OOM``, ...) is a command refused; a connection that could not be
    made never carried one. A timeout or a connection lost mid-command may have applied."""
    cause = exc.__cause__
    if isinstance(cause, ResponseError):
        return True
    return isinstance(cause, RedisError) and "connecting to" in str(cause)


def _stream_position(entry_id: bytes) -> tuple[int, int]:
    ms, _, seq = entry_id.partition(b"-")
    return int(ms), int(seq)


def _matches(
    event: AuditEvent,
    user_id: str | None,
    event_prefix: str | None,
    since: float | None,
    until: float | None,
) -> bool:
    return (
        (user_id is None or event.user_id == user_id)
        and (event_prefix is None or event.event.startswith(event_prefix))
        and (since is None or event.at >= since)
        and (until is None or event.at < until)
    )


def _best(
    found: list[tuple[float, tuple[int, int], AuditEvent]], limit: int
) -> list[tuple[float, tuple[int, int], AuditEvent]]:
    return sorted(found, key=lambda item: (item[0], item[1]), reverse=True)[:limit]


class RedisAudit(RedisConnection):
    """The audit stream, the outbox, and the changes that write events (see the module doc)."""

    def _audit_args(self, entries: Sequence[str | bytes], *, target: str = "stream") -> list[Any]:
        now = self._clock.now()
        minid = "" if self._retention is None else str(max(0, int((now - self._retention) * 1000)))
        maxlen = "" if self._maxlen is None else str(self._maxlen)
        return [target, str(int(now * 1000)), minid, maxlen, str(len(entries)), *entries]

    def _change(
        self,
        script: str,
        user_id: str,
        keys: Sequence[str],
        args: Sequence[str | bytes],
        events: Sequence[AuditEvent],
        *,
        extra_keys: Sequence[str] = (),
    ) -> Any:
        """Run a change script of ``user_id`` that also writes ``events`` (see the module doc).

        KEYS are ``keys``, the audit target, then ``extra_keys`` (one server only: any slot)."""
        if not self._cluster:
            audit = self._audit_args([event_json(e, None) for e in events])
            return self._run(script, [*keys, self._keys.audit(), *extra_keys], [*args, *audit])
        assert not extra_keys, "a cluster script touches one slot"
        outbox = self._keys.user(user_id, "outbox")
        entries = [event_json(e, random_id()) for e in events]
        result = self._run(
            script, [*keys, outbox], [*args, *self._audit_args(entries, target="outbox")]
        )
        if events:
            try:
                self._move_outbox(outbox)
            except StoreUnavailable:
                pass  # the change and its events are stored; the next change or list_audit moves them
        return result

    def _move_outbox(self, outbox: str) -> None:
        """Cluster: copy the outbox's events to the stream, then remove exactly those from it."""
        with self._guard():
            pending = cast("list[bytes]", self._client.lrange(outbox, 0, -1))
        if not pending:
            return
        self._run("WRITE_AUDIT", [self._keys.audit()], self._audit_args(pending))
        with self._guard():
            pipe = self._client.pipeline(transaction=False)
            for entry in pending:
                pipe.lrem(outbox, 1, entry.decode())  # JSON text: ASCII, as written
            pipe.execute()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Each call is one atomic command or script already (the keys of one block live in
        different cluster slots), so nothing is grouped, with one exception on a cluster.

        There, the block's ``advance_counter`` calls (a used code) and ``append_audit`` calls of
        a user (the ``mfa.succeeded`` of the MFA step) are taken back if the block raises a
        ``StoreUnavailable`` that surely wrote nothing (the upgraded session's save refused: its
        node down), as SQLite rolls the whole block back on ``StoreUnavailable``: the counter
        returns to its value before (if still the advance's), and the events, which wait in the
        user's outbox until the block ends, are removed from it. Any other end of the block
        keeps them (as SQLite commits a block that raises anything else) and moves them to the
        stream. Other writes stay (each was atomic on its own): a code sent by text stays
        taken, the throttle's counters a success cleared stay cleared.

        On one server the block holds the session save planned ahead of a code check
        (``plan_session_save``), written by the check's script."""
        if not self._cluster:
            if not self._plans.open():
                yield  # nested: joins the open block
                return
            try:
                yield
            finally:
                self._plans.close()
            return
        if getattr(self._tx, "block", None) is not None:
            yield
            return
        block = Block()
        self._tx.block = block
        try:
            yield
        except StoreUnavailable as exc:
            self._tx.block = None
            if _surely_unwritten(exc):
                self._take_back(block)
            else:
                self._keep(block)
            raise
        except BaseException:
            self._tx.block = None
            self._keep(block)
            raise
        self._tx.block = None
        self._keep(block)

    def _keep(self, block: Block) -> None:
        """The block's events to the stream; best effort: they wait in the outbox otherwise,
        moved by the user's next change or ``list_audit``."""
        for user in block.users():
            try:
                self._move_outbox(self._keys.user(user, "outbox"))
            except StoreUnavailable:
                pass

    def _take_back(self, block: Block) -> None:
        for advanced in reversed(block.advances):
            keys = [self._keys.methods(advanced.user_id),
                    self._keys.user(advanced.user_id, "outbox")]  # fmt: skip
            args: list[str | bytes] = [advanced.method_id, advanced.written, advanced.before,
                    str(len(advanced.entries)), *advanced.entries]  # fmt: skip
            try:
                self._run("UNDO_ADVANCE", keys, args)
            except StoreUnavailable as exc:
                # The user's own node is gone too: the code stays used, its events are kept.
                _log.warning("a used code could not be taken back after its block failed: %s",
                             exc)  # fmt: skip
        try:
            with self._guard():
                pipe = self._client.pipeline(transaction=False)
                for user, entry in block.events:
                    pipe.lrem(self._keys.user(user, "outbox"), 1, entry)
                if block.events:
                    pipe.execute()
        except StoreUnavailable as exc:
            _log.warning("the events of a failed block could not be taken back: %s", exc)
        self._keep(block)  # whatever could not be taken back

    # -- audit --------------------------------------------------------------------------------

    def append_audit(self, event: AuditEvent) -> None:
        entry = event_json(event, random_id() if self._cluster else None)
        if not self._cluster or event.user_id is None:
            self._run("WRITE_AUDIT", [self._keys.audit()], self._audit_args([entry]))
            return
        block: Block | None = getattr(self._tx, "block", None)
        if block is not None:
            # Inside a block: in the user's outbox until the block ends (see transaction()).
            outbox = self._keys.user(event.user_id, "outbox")
            self._run("WRITE_AUDIT", [outbox], self._audit_args([entry], target="outbox"))
            block.events.append((event.user_id, entry))
            return
        try:
            self._run("WRITE_AUDIT", [self._keys.audit()], self._audit_args([entry]))
        except StoreUnavailable:
            # The stream's node is down: a sign-in is not refused for it. The event waits in the
            # user's outbox (the user's own slot) until moved; if the first write did reach the
            # stream, the copy has the same eid and is listed once.
            outbox = self._keys.user(event.user_id, "outbox")
            self._run("WRITE_AUDIT", [outbox], self._audit_args([entry], target="outbox"))

    def list_audit(
        self,
        *,
        user_id: str | None = None,
        event_prefix: str | None = None,
        since: float | None = None,
        until: float | None = None,
        limit: int = 100,
    ) -> list[AuditEvent]:
        """Newest first (by ``at``, ties: the later write); ``since <= at < until``.

        Reads the stream newest first and stops at entries written more than
        :data:`AUDIT_CLOCK_SKEW` before ``since`` (or before the ``limit``-th best ``at`` found):
        a report over recent events reads recent entries only.
        """
        if limit <= 0:
            return []
        if self._cluster:
            for user in self._scan_users("outbox", "list"):
                self._move_outbox(self._keys.user(user, "outbox"))
        found: list[tuple[float, tuple[int, int], AuditEvent]] = []
        seen: set[str] = set()
        floor = since
        for entry_id, raw in self._newest_first(self._keys.audit()):
            position = _stream_position(entry_id)
            if floor is not None and position[0] < (floor - AUDIT_CLOCK_SKEW) * 1000:
                break  # written too long before ``floor`` to be stamped at or after it
            event, eid = event_from_json(raw)
            if eid is not None and eid in seen:
                continue  # a cluster outbox moved twice (crash between copy and removal)
            seen.add(eid or "")
            if _matches(event, user_id, event_prefix, since, until):
                found.append((event.at, position, event))
            if len(found) >= 2 * limit:
                found = _best(found, limit)
                floor = found[-1][0] if floor is None else max(floor, found[-1][0])
        return [event for _, _, event in _best(found, limit)]

    def _newest_first(self, stream: str) -> Iterator[tuple[bytes, bytes]]:
        end = "+"
        while True:
            chunk = cast(
                "list[tuple[bytes, dict[bytes, bytes]]]",
                self._read(stream, lambda top=end: self._client.xrevrange(  # type: ignore[misc]
                    stream, max=top, min="-", count=CHUNK)),
            )  # fmt: skip
            for entry_id, fields in chunk:
                yield entry_id, fields[b"e"]
            if len(chunk) < CHUNK:
                return
            end = "(" + chunk[-1][0].decode()
