"""The Redis store's scripts of a used code or method (the counter's advance, alone or behind the
code throttle's limits, with the session it upgrades) and of the throttle's counters
(store/redis_scripts.py: the rules every script keeps)."""

from __future__ import annotations

from oidc_combinedreg.store.redis_scripts_lib import (
    AUDIT_LIB,
    GREATER,
    METHODS_LIB,
    SESSION_LIB,
    WRITES,
)

__all__ = ["ADVANCE_COUNTER", "ADVANCE_COUNTER_CHECKED", "INCR", "RECORD_USE", "UNDO_ADVANCE"]

#: KEYS: methods hash, audit target, then counters to delete with a success (one server only).
#: ARGV: id, value, used_at (decimal integer and float text), then the audit args. If stored
#: (and the events written, the counters deleted): the previous ``<counter>|<last used>`` text
#: (what :data:`UNDO_ADVANCE` puts back), else 0 (nothing written).
#: Compares decimal integers as text, so counters of any size compare exactly.
ADVANCE_COUNTER = (
    WRITES
    + AUDIT_LIB
    + METHODS_LIB
    + GREATER
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local at = bars(v, 4)
if not greater(ARGV[2], string.sub(v, at[2] + 1, at[3] - 1)) then return 0 end
redis.call('HSET', KEYS[1], ARGV[1],
           string.sub(v, 1, at[2]) .. ARGV[2] .. '|' .. ARGV[3] .. string.sub(v, at[4]))
audit(KEYS[2], 4)
if #KEYS > 2 then redis.call('DEL', unpack(KEYS, 3)) end
return string.sub(v, at[2] + 1, at[4] - 1)
"""
)


#: KEYS as ADVANCE_COUNTER's. ARGV: id, used_at (float text), then the audit args. Sets the
#: ``<last used>`` field alone (a use without a counter), writes the events, deletes the counters:
#: 1; or 0 (no such method in use: nothing written).
RECORD_USE = (
    WRITES
    + AUDIT_LIB
    + METHODS_LIB
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local at = bars(v, 4)
redis.call('HSET', KEYS[1], ARGV[1], string.sub(v, 1, at[3]) .. ARGV[2] .. string.sub(v, at[4]))
audit(KEYS[2], 3)
if #KEYS > 2 then redis.call('DEL', unpack(KEYS, 3)) end
return 1
"""
)


#: Cluster only: takes back an ``ADVANCE_COUNTER`` whose transaction failed afterwards (the
#: session save of the MFA step), as SQLite rolls back. KEYS: methods hash, the user's outbox.
#: ARGV: id, the ``<counter>|<last used>`` the advance wrote, the one it returned (before), n,
#: then the n outbox entries it wrote. The counter goes back only if it is still the advance's
#: (a later use stays); the entries are removed if still in the outbox. Returns 1.
UNDO_ADVANCE = (
    WRITES
    + METHODS_LIB
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  local at = bars(v, 4)
  if string.sub(v, at[2] + 1, at[4] - 1) == ARGV[2] then
    redis.call('HSET', KEYS[1], ARGV[1], string.sub(v, 1, at[2]) .. ARGV[3] .. string.sub(v, at[4]))
  end
end
for i = 1, tonumber(ARGV[4]) do redis.call('LREM', KEYS[2], 1, ARGV[4 + i]) end
return 1
"""
)


#: One server only (the counters and the session are in other slots): :data:`ADVANCE_COUNTER`
#: behind the code throttle's limits, so a verify's attempt is checked and its success written in
#: one round trip (``Throttle.limit_checks``), with the session that success upgrades (the MFA
#: step's save, planned ahead: store/session_plan.py). KEYS: methods hash, audit target, k
#: counter hashes (as :data:`INCR` writes them), of which the first r are deleted with a success,
#: then if the session part is given: the session hash, the user's session index, the replaced
#: session if its ARGV[s + 6] is '1'. ARGV: id, value, used_at, now (store clock), k, r, k limits,
#: k refusal scopes, then at s = 7 + 2k the session part's length m ('0', or '7': data JSON,
#: expires_at, ttl in ms, sid, user, '1' or '0' for the replaced id, '1' if the session it updates
#: must still be live, as :data:`SAVE_SESSION_ONE_SERVER`), then the audit args. A counter whose
#: live value is at its limit refuses: returns ``limit:<scope>`` of the first such, with nothing
#: written. Counts are small integers, safe as Lua numbers. Otherwise as ADVANCE_COUNTER; with a
#: session part, a success returns {before, 1 if the session was saved, else 0}: a session that
#: ended meanwhile stays ended (nothing of it written) while the code is used.
ADVANCE_COUNTER_CHECKED = (
    WRITES
    + AUDIT_LIB
    + METHODS_LIB
    + GREATER
    + SESSION_LIB
    + """
local k, r = tonumber(ARGV[5]), tonumber(ARGV[6])
local s = 7 + 2 * k
local m = tonumber(ARGV[s])
for i = 1, k do
  local held = redis.call('HMGET', KEYS[2 + i], 'v', 'e')
  local live = held[1] and not (held[2] and tonumber(held[2]) <= tonumber(ARGV[4]))
  if live and tonumber(held[1]) >= tonumber(ARGV[6 + i]) then
    return 'limit:' .. ARGV[6 + k + i]
  end
end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local at = bars(v, 4)
if not greater(ARGV[2], string.sub(v, at[2] + 1, at[3] - 1)) then return 0 end
local live = m > 0
if live and ARGV[s + 7] == '1' then
  local current = KEYS[3 + k]
  if ARGV[s + 6] == '1' then current = KEYS[5 + k] end
  local ends = redis.call('HGET', current, 'e')
  live = ends ~= false and tonumber(ends) > tonumber(ARGV[4])
end
redis.call('HSET', KEYS[1], ARGV[1],
           string.sub(v, 1, at[2]) .. ARGV[2] .. '|' .. ARGV[3] .. string.sub(v, at[4]))
audit(KEYS[2], s + 1 + m)
if r > 0 then redis.call('DEL', unpack(KEYS, 3, 2 + r)) end
local before = string.sub(v, at[2] + 1, at[4] - 1)
if m == 0 then return before end
if not live then return {before, 0} end
index_session(KEYS[4 + k], ARGV[4], ARGV[s + 4], ARGV[s + 2], ARGV[s + 3])
save_session(KEYS[3 + k], ARGV[s + 1], ARGV[s + 2], ARGV[s + 3], ARGV[s + 5])
if ARGV[s + 6] == '1' then redis.call('DEL', KEYS[5 + k]) end
return {before, 1}
"""
)


#: KEYS: counter hash (v = value, e = window end by the store clock). ARGV: now, window end
#: ('' for a durable counter), window in ms. A window ended by the store clock starts again at 1;
#: a later hit inside the window changes neither its end nor the key's TTL.
INCR = (
    WRITES
    + """
local ends = redis.call('HGET', KEYS[1], 'e')
if ends and tonumber(ends) <= tonumber(ARGV[1]) then redis.call('DEL', KEYS[1]) end
local value = redis.call('HINCRBY', KEYS[1], 'v', 1)
if value == 1 and ARGV[2] ~= '' then
  redis.call('HSET', KEYS[1], 'e', ARGV[2])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
end
return value
"""
)
