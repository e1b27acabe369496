"""The Redis store's scripts of sessions and the user's session index (store/redis_scripts.py:
the rules every script keeps)."""

from __future__ import annotations

from oidc_combinedreg.store.redis_scripts_lib import SESSION_LIB, WRITES

__all__ = [
    "DELETE_SESSION_OF",
    "INDEX_SESSION",
    "LOAD_SESSION_READS",
    "SAVE_SESSION",
    "SAVE_SESSION_ONE_SERVER",
]

#: KEYS: session hash. ARGV: data JSON, expires_at, ttl in ms, then the user (absent for none).
SAVE_SESSION = (
    WRITES
    + SESSION_LIB
    + """
save_session(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""
)


#: KEYS: the user's session index. ARGV: now, sid, expires_at, ttl ms.
INDEX_SESSION = (
    WRITES
    + SESSION_LIB
    + """
index_session(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""
)


#: One server (standalone or Sentinel) only, since its keys are in different slots: a session's
#: whole save in one script. KEYS: session hash, then the user's session index if ARGV[6] is a
#: user, then the replaced session if ARGV[7] is '1'. ARGV: data JSON, expires_at, ttl in ms,
#: sid, now, user ('' for none), '1' or '0', then '1' if the session it updates (the replaced
#: one, else the session itself) must still be live: 0 and nothing written if it is not.
SAVE_SESSION_ONE_SERVER = (
    WRITES
    + SESSION_LIB
    + """
local user, replaced = ARGV[6], 2
if user ~= '' then replaced = 3 end
if ARGV[8] == '1' then
  local current = KEYS[1]
  if ARGV[7] == '1' then current = KEYS[replaced] end
  local ends = redis.call('HGET', current, 'e')
  if not ends or tonumber(ends) <= tonumber(ARGV[5]) then return 0 end
end
if user ~= '' then
  index_session(KEYS[2], ARGV[5], ARGV[4], ARGV[2], ARGV[3])
  replaced = 3
else
  user = false
end
save_session(KEYS[1], ARGV[1], ARGV[2], ARGV[3], user)
if ARGV[7] == '1' then redis.call('DEL', KEYS[replaced]) end
return 1
"""
)


#: KEYS: session hash. ARGV: user. Deletes the session if that user owns it; returns its
#: expires_at text, or false.
DELETE_SESSION_OF = (
    WRITES
    + """
local held = redis.call('HMGET', KEYS[1], 'u', 'e')
if held[1] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return held[2]
"""
)


#: One server only, and the one script that reaches keys it is not given (decision 216): a
#: session's load inside a request of the middleware (store/request_reads.py) with its user's
#: methods hash and state, whose key names hold the user id that only the session knows.
#: ``no-cluster`` says so to the server (a cluster refuses the script instead of running it in a
#: slot that may not hold the keys); ``no-writes``: it reads. KEYS: the session hash. ARGV: the
#: text before the user id in a user's keys, after it in the methods hash's, in the state's.
#: Returns HMGET's d, e, u; with a user also the methods hash's fields and values in turn and the
#: state (or false).
LOAD_SESSION_READS = """#!lua flags=no-writes,no-cluster
local s = redis.call('HMGET', KEYS[1], 'd', 'e', 'u')
if not s[3] then return s end
local methods = redis.call('HGETALL', ARGV[1] .. s[3] .. ARGV[2])
return {s[1], s[2], s[3], methods, redis.call('GET', ARGV[1] .. s[3] .. ARGV[3])}
"""
