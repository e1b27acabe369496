"""The Lua scripts of the Redis store: every multi-step change runs as one script, so it is atomic.

Why scripts and not WATCH/MULTI: a script needs no retry loop under contention (fifty requests for
a sixth authenticator app queue up and each sees the count the previous one left), and it runs the
same way on one server and on a cluster node. Rules every script here keeps:

* **Every key it touches is in KEYS**, and all of them carry the same hash tag (one user's
  ``{u:...}`` keys, or a single global key), so the script runs on one cluster slot. One
  exception, never sent to a cluster and flagged ``no-cluster``: :data:`LOAD_SESSION_READS`,
  a session's load with its user's methods and state (decision 216).
* **Checks first, writes after**: Redis does not roll back the writes of a script that fails
  half-way, so a script only starts writing once every check passed.
* **A shebang** (``#!lua``): a script that may write is refused as a whole when the server is out
  of memory (``maxmemory``), instead of failing at its first write. (Reads are plain commands,
  but for :data:`LOAD_SESSION_READS`, flagged ``no-writes``.)
* **Numbers it stores come from Python as text** and are stored as given, never re-formatted by Lua
  (Lua numbers are doubles: a float would lose digits, a counter beyond 2**53 its last ones). The
  one number a script computes is a method's insertion sequence, a small integer.

The audit arguments (see :data:`AUDIT_LIB`) come last in ARGV, after the script's own arguments.

The scripts live by topic: redis_scripts_methods.py (a user's methods, state, audit events,
lookup claims), redis_scripts_codes.py (a used code, the throttle's counters),
redis_scripts_sessions.py (sessions), on the shared Lua functions of redis_scripts_lib.py. This
module names them all, as the store loads them (:data:`__all__`).
"""

from __future__ import annotations

from oidc_combinedreg.store.redis_scripts_codes import (
    ADVANCE_COUNTER,
    ADVANCE_COUNTER_CHECKED,
    INCR,
    RECORD_USE,
    UNDO_ADVANCE,
)
from oidc_combinedreg.store.redis_scripts_lib import AUDIT_LIB
from oidc_combinedreg.store.redis_scripts_methods import (
    ADD_METHOD,
    CLAIM_CREATE,
    CLAIM_RELEASE,
    CLAIM_STEAL,
    DELETE_METHOD,
    PUT_USER_STATE,
    REPORT_METHODS,
    RESTORE_METHOD,
    UPDATE_METHOD,
    WRITE_AUDIT,
)
from oidc_combinedreg.store.redis_scripts_sessions import (
    DELETE_SESSION_OF,
    INDEX_SESSION,
    LOAD_SESSION_READS,
    SAVE_SESSION,
    SAVE_SESSION_ONE_SERVER,
)

__all__ = [
    "ADD_METHOD",
    "ADVANCE_COUNTER",
    "ADVANCE_COUNTER_CHECKED",
    "AUDIT_LIB",
    "CLAIM_CREATE",
    "CLAIM_RELEASE",
    "CLAIM_STEAL",
    "DELETE_METHOD",
    "DELETE_SESSION_OF",
    "INCR",
    "INDEX_SESSION",
    "LOAD_SESSION_READS",
    "PUT_USER_STATE",
    "RECORD_USE",
    "REPORT_METHODS",
    "RESTORE_METHOD",
    "SAVE_SESSION",
    "SAVE_SESSION_ONE_SERVER",
    "UNDO_ADVANCE",
    "UPDATE_METHOD",
    "WRITE_AUDIT",
]
