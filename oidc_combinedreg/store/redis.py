"""The Redis backend: one store shared by many workers and hosts (standalone, Cluster or Sentinel).

Choices, and why (``docs/redis.md`` has the whole key layout):

* **One user, one hash tag.** Every key of a user carries ``{u:<user id>}``, so the multi-key
  changes of one user (the user's methods and audit outbox) live in one cluster slot and run as
  one Lua script (``store/redis_scripts.py``): count-and-insert under a limit, delete-and-audit,
  compare-and-set of a counter and its audit. Keys addressed by something else (session id,
  challenge key, counter key, lookup value) are single keys, touched by single-key commands or
  scripts; several of them in one call (the throttle's ``counters``, a session save that deletes
  the id it replaces) go in one non-transactional pipeline, atomic per key. On one server (no
  slots) a session save is one script over the session, the user's session index and the
  replaced id.
* **A user's methods are one hash, one compact string per method.** ``creg:{u:<user>}:registered``
  maps each method id to
  ``<kind>|<seq>|<counter>|<last used>|<created>|<lookup>\\n<[label, data] as JSON>\\n<secret>``.
  One hash, so ``list_methods`` is one ``HGETALL`` and ``get_method`` one ``HGET`` (one round
  trip each), and a user is one key, not a key per method plus an index (Redis spends about 100
  bytes on each key; a user with three methods stays under 2 KB at default settings). One string
  per method, because a hash cannot nest. The header, up to the first newline, holds what the
  scripts read (the kind for the per-kind limit, ``seq`` for insertion order, the counter and last
  use for the compare-and-set) and what an update keeps (created, lookup); scripts find its ``|``
  with a plain ``string.find`` and compare counters as decimal text, exact beyond 2**53 (Lua's
  ``cjson`` and ``cmsgpack`` would turn numbers into doubles). The lookup (any text: a token
  serial) is JSON and last in the header, so a ``|`` or newline in it cannot shift the fields.
  JSON never holds a raw newline, so the secret follows the body's newline as exact bytes.
  ``seq`` is one above the greatest stored: ties of ``created_at`` list in insertion order. The
  key is not named ``methods`` (a zset index in development builds), so leftovers of those builds
  are ignored instead of failing with ``WRONGTYPE``.
* **Lookup values are claimed first.** A WebAuthn credential id or token serial is unique across
  all users, so its claim key lives in its own slot: ``add_method`` claims it with a create-if-absent
  script, then inserts the method, and releases the claim if the insert is refused. A process that
  dies between the two leaves a claim without a method; after ``lookup_grace`` seconds the next
  claimant takes it over (compare-and-set), so the value is never lost for good.
* **Expiry by the injected clock, cleanup by Redis.** Sessions, challenges and windowed counters
  hold their ``expires_at`` and are invisible once the store's clock passes it; the Redis TTL only
  frees the memory.
* **Audit in one stream, written by the same script as the change.** On one server (or behind
  Sentinel) the change script appends its events to the stream ``creg:audit`` itself. On a cluster
  the stream is in another slot, so the script appends them to the user's outbox list (same slot,
  same script) and the client then moves them to the stream and removes them from the outbox: a
  crash in between leaves them in the outbox, moved by the next change of that user or by the next
  :meth:`RedisStore.list_audit`; a move repeated after a crash is told apart by the event's
  ``eid``. One stream (not one per user) because a stream costs about 4 KB before its first event
  and because readers (``list_audit``, a SIEM tailing with ``XREAD``) want one log in write order.
  It is trimmed by age (``audit_retention``) and length (``audit_maxlen``). On a cluster the one
  stream must not gate sign-in: an event the stream's primary cannot take goes to the user's
  outbox, and inside ``transaction()`` a user's events wait there until the block ends (so a block
  that fails unwritten can take its ``mfa.succeeded`` back, with its used code).
* **Fail closed, quickly.** Every redis-py error becomes
  :class:`~oidc_combinedreg.exceptions.StoreUnavailable`. :meth:`RedisStore.from_url` bounds the
  connect and read timeouts and does not retry: a retried ``INCR`` or ``XADD`` whose first reply
  was lost would count twice, and the web layer answers 503 at once instead of after a backoff.
  The one exception: on a cluster, a call whose slot moved in a failover (its old primary refuses
  connections) is sent once more after the slot map is read again, if it is a read or was never
  sent.
"""

from __future__ import annotations

from oidc_combinedreg.store.redis_audit import AUDIT_CLOCK_SKEW as AUDIT_CLOCK_SKEW
from oidc_combinedreg.store.redis_connection import (
    DEFAULT_AUDIT_MAXLEN,
    DEFAULT_AUDIT_RETENTION,
    RedisClient,
)
from oidc_combinedreg.store.redis_layout import RedisKeys
from oidc_combinedreg.store.redis_methods import RedisMethods

__all__ = [
    "DEFAULT_AUDIT_MAXLEN",
    "DEFAULT_AUDIT_RETENTION",
    "RedisClient",
    "RedisKeys",
    "RedisStore",
]


class RedisStore(RedisMethods):
    """The :class:`~oidc_combinedreg.store.base.Store` on Redis.

    ``client`` is a ``redis.Redis`` (also from ``Sentinel.master_for``) or a
    ``redis.cluster.RedisCluster``, made with ``decode_responses=False`` (secrets are bytes); the
    store owns it and closes it in :meth:`close`. Prefer :meth:`from_url`, which bounds timeouts.
    ``key_prefix`` separates several deployments on one Redis. ``audit_retention`` (seconds) and
    ``audit_maxlen`` (events) bound the audit stream; ``None`` keeps everything.
    ``lookup_grace`` is how old (seconds) a lookup claim without its method must be before another
    add may take it over (see the module docstring).

    Its parts, one module each: redis_connection.py (the client, failing closed, a cluster's
    failover retries), redis_methods.py (methods, lookups, user state), redis_ephemeral.py
    (sessions, challenges, counters), redis_audit.py (the stream, the outbox, ``transaction()``),
    redis_layout.py (key names and value encodings), redis_scripts.py (the Lua).
    """
