"""The Redis store's scripts of sessions and the user's session index (store/redis_scripts.py:
the rules every script keeps)."""

from __future__ import annotations

from oidc_combinedreg.store.redis_scripts_lib import SESSION_LIB, WRITES

__all__ = ["DELETE_SESSION_OF", "INDEX_SESSION", "SAVE_SESSION", "SAVE_SESSION_ONE_SERVER"]

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
