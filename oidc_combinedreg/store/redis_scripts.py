"""The Lua scripts of the Redis store: every multi-step change runs as one script, so it is atomic.

Why scripts and not WATCH/MULTI: a script needs no retry loop under contention (fifty requests for
a sixth authenticator app queue up and each sees the count the previous one left), and it runs the
same way on one server and on a cluster node. Rules every script here keeps:

* **Every key it touches is in KEYS**, and all of them carry the same hash tag (one user's
  ``{u:...}`` keys, or a single global key), so the script runs on one cluster slot.
* **Checks first, writes after**: Redis does not roll back the writes of a script that fails
  half-way, so a script only starts writing once every check passed.
* **A shebang** (``#!lua``): a script that may write is refused as a whole when the server is out
  of memory (``maxmemory``), instead of failing at its first write. (Reads are plain commands.)
* **Numbers it stores come from Python as text** and are stored as given, never re-formatted by Lua
  (Lua numbers are doubles: a float would lose digits, a counter beyond 2**53 its last ones). The
  one number a script computes is a method's insertion sequence, a small integer.

The audit arguments (see :data:`AUDIT_LIB`) come last in ARGV, after the script's own arguments.
"""

from __future__ import annotations

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

#: ``audit(key, base)`` writes the change's audit events. From ARGV[base]: the target kind,
#: 'stream' (``key`` is the audit stream: standalone and Sentinel) or 'outbox' (``key`` is the
#: user's outbox list, in the user's slot: on a cluster the stream lives in another slot, and the
#: client moves the events over after the script); now in ms by the store clock; the MINID to trim
#: to ('' keeps everything); the MAXLEN cap ('' for none); the number of events n; then n JSON
#: events. Entry ids are ``<ms>-<seq>`` with ms from the store's clock, never below the stream's
#: last id, so ids follow write order even if the clock steps back.
AUDIT_LIB = """
local function audit(key, base)
  local n = tonumber(ARGV[base + 4])
  if n == 0 then return end
  if ARGV[base] == 'outbox' then
    redis.call('RPUSH', key, unpack(ARGV, base + 5, base + 4 + n))
    return
  end
  local ms = ARGV[base + 1]
  local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
  if #last > 0 then
    local last_ms = string.match(last[1][1], '^(%d+)-')
    if tonumber(last_ms) > tonumber(ms) then ms = last_ms end
  end
  for i = 1, n do
    if ARGV[base + 2] ~= '' then
      redis.call('XADD', key, 'MINID', '=', ARGV[base + 2], ms .. '-*', 'e', ARGV[base + 4 + i])
    else
      redis.call('XADD', key, ms .. '-*', 'e', ARGV[base + 4 + i])
    end
  end
  if ARGV[base + 3] ~= '' then redis.call('XTRIM', key, 'MAXLEN', '=', ARGV[base + 3]) end
end
"""

_WRITES = "#!lua\n"

#: The methods of one user are one hash (``RedisKeys.methods``): field = method id, value =
#: ``<kind>|<seq>|<counter>|<last used>|<created>|<lookup>\n<label and data JSON>\n<secret>``
#: (see ``redis.py``). The scripts read and rewrite the header up to the first newline; they
#: find its fields with plain ``string.find`` (no patterns: the secret is binary) and never turn
#: a stored number into a Lua number except ``seq`` (a small insertion sequence).
_METHODS_LIB = """
local function bars(v, n)
  local at, found = 0, {}
  for i = 1, n do
    at = string.find(v, '|', at + 1, true)
    found[i] = at
  end
  return found
end
"""

#: KEYS: methods hash, audit target. ARGV: id, kind, limit, the value after ``<kind>|<seq>|``,
#: then the audit args. Counts the user's methods of this kind and takes the next ``seq`` (one
#: more than the greatest stored) in one pass over the values. Returns 'ok', 'exists' (the id is
#: taken) or 'limit'.
ADD_METHOD = (
    _WRITES
    + AUDIT_LIB
    + _METHODS_LIB
    + """
if redis.call('HEXISTS', KEYS[1], ARGV[1]) == 1 then return 'exists' end
local prefix = ARGV[2] .. '|'
local count, seq = 0, 0
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  if string.sub(v, 1, #prefix) == prefix then count = count + 1 end
  local at = bars(v, 2)
  local n = tonumber(string.sub(v, at[1] + 1, at[2] - 1))
  if n > seq then seq = n end
end
if count >= tonumber(ARGV[3]) then return 'limit' end
redis.call('HSET', KEYS[1], ARGV[1], prefix .. string.format('%d', seq + 1) .. '|' .. ARGV[4])
audit(KEYS[2], 5)
return 'ok'
"""
)

#: KEYS: methods hash, audit target. ARGV: id, the new ``<label and data JSON>\n<secret>``, then
#: the audit args. Keeps the header (kind, seq, counter, last used, created, lookup). 1 or 0.
UPDATE_METHOD = (
    _WRITES
    + AUDIT_LIB
    + """
local v = redis.call('HGET', KEYS[1], ARGV[1])
if not v then return 0 end
local newline = string.find(v, '\\n', 1, true)
redis.call('HSET', KEYS[1], ARGV[1], string.sub(v, 1, newline) .. ARGV[2])
audit(KEYS[2], 3)
return 1
"""
)

#: KEYS: methods hash, reported hash, audit target. ARGV: id, the expected method ids ('' for
#: any: else 'ids' and the sorted ids in use, space-separated), then the audit args. Deletes a
#: method in use or a reported one. Returns -1 (the methods are not the expected ones), false
#: (no such method) or the deleted value (as stored in the methods hash), whose lookup the
#: caller then releases.
DELETE_METHOD = (
    _WRITES
    + AUDIT_LIB
    + """
if ARGV[2] ~= '' then
  local ids = redis.call('HKEYS', KEYS[1])
  table.sort(ids)
  table.insert(ids, 1, 'ids')
  if table.concat(ids, ' ') ~= ARGV[2] then return -1 end
end
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v then
  redis.call('HDEL', KEYS[1], ARGV[1])
else
  v = redis.call('HGET', KEYS[2], ARGV[1])
  if not v then return false end
  redis.call('HDEL', KEYS[2], ARGV[1])
  v = string.sub(v, string.find(v, '|', 1, true) + 1)
end
audit(KEYS[3], 3)
return v
"""
)

#: "This wasn't me" (store/base.py ``report_methods``). A reported method moves from the methods
#: hash to the reported hash as ``<reported_at>|<its value>``, so every script and read of
#: methods in use leaves it out. KEYS: methods hash, reported hash, state key, the user's
#: session index, audit target, then (one server: ARGV[5] is '1') every session hash the index
#: held when the caller read it. ARGV: user, state JSON, reported_at, now, '1' or '0', the
#: session key prefix, n ids, the n ids, then the audit args. Returns {-1} when the index holds
#: other sessions than the KEYS named (read it again), else {live sessions ended}. With '0'
#: (a cluster: the sessions are in other slots) no session is touched: the caller ends them.
REPORT_METHODS = (
    _WRITES
    + AUDIT_LIB
    + """
local here, n = ARGV[5] == '1', tonumber(ARGV[7])
if here then
  local sids = redis.call('ZRANGE', KEYS[4], 0, -1)
  if #sids ~= #KEYS - 5 then return {-1} end
  local named = {}
  for i = 6, #KEYS do named[KEYS[i]] = true end
  for _, sid in ipairs(sids) do
    if not named[ARGV[6] .. sid] then return {-1} end
  end
end
for i = 1, n do
  local id = ARGV[7 + i]
  local v = redis.call('HGET', KEYS[1], id)
  if v then
    redis.call('HDEL', KEYS[1], id)
    redis.call('HSET', KEYS[2], id, ARGV[3] .. '|' .. v)
  end
end
redis.call('SET', KEYS[3], ARGV[2])
local live = 0
if here then
  for i = 6, #KEYS do
    local held = redis.call('HMGET', KEYS[i], 'u', 'e')
    if held[1] == ARGV[1] then
      redis.call('DEL', KEYS[i])
      if tonumber(held[2]) > tonumber(ARGV[4]) then live = live + 1 end
    end
  end
  redis.call('DEL', KEYS[4])
end
audit(KEYS[5], 8 + n)
return {live}
"""
)

#: KEYS: methods hash, reported hash, audit target. ARGV: id, limit, then the audit args. Moves
#: a reported method back into the methods hash unless its kind is at the limit there. Returns
#: 1, 0 (no such reported method) or 'limit'.
RESTORE_METHOD = (
    _WRITES
    + AUDIT_LIB
    + """
local r = redis.call('HGET', KEYS[2], ARGV[1])
if not r then return 0 end
local v = string.sub(r, string.find(r, '|', 1, true) + 1)
local prefix = string.sub(v, 1, string.find(v, '|', 1, true))
local count = 0
for _, other in ipairs(redis.call('HVALS', KEYS[1])) do
  if string.sub(other, 1, #prefix) == prefix then count = count + 1 end
end
if count >= tonumber(ARGV[2]) then return 'limit' end
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], v)
audit(KEYS[3], 3)
return 1
"""
)

#: ``greater(a, b)``: decimal integer texts compared exactly, at any size.
_GREATER = """
local function greater(a, b)
  local a_neg, b_neg = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if a_neg ~= b_neg then return b_neg end
  if a_neg then return greater(string.sub(b, 2), string.sub(a, 2)) end
  if #a ~= #b then return #a > #b end
  return a > b
end
"""

#: KEYS: methods hash, audit target, then counters to delete with a success (one server only).
#: ARGV: id, value, used_at (decimal integer and float text), then the audit args. If stored
#: (and the events written, the counters deleted): the previous ``<counter>|<last used>`` text
#: (what :data:`UNDO_ADVANCE` puts back), else 0 (nothing written).
#: Compares decimal integers as text, so counters of any size compare exactly.
ADVANCE_COUNTER = (
    _WRITES
    + AUDIT_LIB
    + _METHODS_LIB
    + _GREATER
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
    _WRITES
    + AUDIT_LIB
    + _METHODS_LIB
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
    _WRITES
    + _METHODS_LIB
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

#: KEYS: state key, audit target. ARGV: the state as JSON, then the audit args.
PUT_USER_STATE = (
    _WRITES
    + AUDIT_LIB
    + """
redis.call('SET', KEYS[1], ARGV[1])
audit(KEYS[2], 2)
return 1
"""
)

#: KEYS: the audit stream. ARGV: the audit args (target kind 'stream').
WRITE_AUDIT = (
    _WRITES
    + AUDIT_LIB
    + """
audit(KEYS[1], 1)
return 1
"""
)

#: KEYS: lookup claim. ARGV: user, method id, claimed_at. 1 if claimed, 0 if someone holds it.
CLAIM_CREATE = (
    _WRITES
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'm', ARGV[2], 'at', ARGV[3])
return 1
"""
)

#: KEYS: lookup claim. ARGV: expected user, method id, claimed_at, then the new user, method id,
#: claimed_at. Replaces a stale claim only if it is still the one the caller judged stale.
CLAIM_STEAL = (
    _WRITES
    + """
local held = redis.call('HMGET', KEYS[1], 'u', 'm', 'at')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] or held[3] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[4], 'm', ARGV[5], 'at', ARGV[6])
return 1
"""
)

#: KEYS: lookup claim. ARGV: user, method id. Deletes the claim only if it is theirs. 1 or 0.
CLAIM_RELEASE = (
    _WRITES
    + """
local held = redis.call('HMGET', KEYS[1], 'u', 'm')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
)

#: ``save_session(key, data, expires_at, ttl_ms, user)``: replaces the whole hash, so a session
#: saved again without a user (``user`` false) loses the old one.
#: ``index_session(index, now, sid, expires_at, ttl_ms)``: the user's session index is a zset
#: sid -> expires_at; drops members expired by the store clock and keeps the index alive as long
#: as its newest member.
_SESSION_LIB = """
local function save_session(key, data, expires_at, ttl_ms, user)
  redis.call('DEL', key)
  if user then
    redis.call('HSET', key, 'd', data, 'e', expires_at, 'u', user)
  else
    redis.call('HSET', key, 'd', data, 'e', expires_at)
  end
  redis.call('PEXPIRE', key, ttl_ms)
end
local function index_session(index, now, sid, expires_at, ttl_ms)
  redis.call('ZREMRANGEBYSCORE', index, '-inf', now)
  redis.call('ZADD', index, expires_at, sid)
  if redis.call('PTTL', index) < tonumber(ttl_ms) then redis.call('PEXPIRE', index, ttl_ms) end
end
"""

#: KEYS: session hash. ARGV: data JSON, expires_at, ttl in ms, then the user (absent for none).
SAVE_SESSION = (
    _WRITES
    + _SESSION_LIB
    + """
save_session(KEYS[1], ARGV[1], ARGV[2], ARGV[3], ARGV[4])
return 1
"""
)

#: KEYS: the user's session index. ARGV: now, sid, expires_at, ttl ms.
INDEX_SESSION = (
    _WRITES
    + _SESSION_LIB
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
    _WRITES
    + _SESSION_LIB
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
    _WRITES
    + AUDIT_LIB
    + _METHODS_LIB
    + _GREATER
    + _SESSION_LIB
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

#: KEYS: session hash. ARGV: user. Deletes the session if that user owns it; returns its
#: expires_at text, or false.
DELETE_SESSION_OF = (
    _WRITES
    + """
local held = redis.call('HMGET', KEYS[1], 'u', 'e')
if held[1] ~= ARGV[1] then return false end
redis.call('DEL', KEYS[1])
return held[2]
"""
)

#: KEYS: counter hash (v = value, e = window end by the store clock). ARGV: now, window end
#: ('' for a durable counter), window in ms. A window ended by the store clock starts again at 1;
#: a later hit inside the window changes neither its end nor the key's TTL.
INCR = (
    _WRITES
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
