"""The Redis store's scripts of a user's methods, state and audit events, and of lookup claims
(store/redis_scripts.py: the rules every script keeps)."""

from __future__ import annotations

from oidc_combinedreg.store.redis_scripts_lib import AUDIT_LIB, METHODS_LIB, WRITES

__all__ = [
    "ADD_METHOD",
    "CLAIM_CREATE",
    "CLAIM_RELEASE",
    "CLAIM_STEAL",
    "DELETE_METHOD",
    "PUT_USER_STATE",
    "REPORT_METHODS",
    "RESTORE_METHOD",
    "UPDATE_METHOD",
    "WRITE_AUDIT",
]

#: KEYS: methods hash, audit target. ARGV: id, kind, limit, the value after ``<kind>|<seq>|``,
#: then the audit args. Counts the user's methods of this kind and takes the next ``seq`` (one
#: more than the greatest stored) in one pass over the values. Returns 'ok', 'exists' (the id is
#: taken) or 'limit'.
ADD_METHOD = (
    WRITES
    + AUDIT_LIB
    + METHODS_LIB
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
    WRITES
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
    WRITES
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
    WRITES
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
    WRITES
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


#: KEYS: state key, audit target. ARGV: the state as JSON, then the audit args.
PUT_USER_STATE = (
    WRITES
    + AUDIT_LIB
    + """
redis.call('SET', KEYS[1], ARGV[1])
audit(KEYS[2], 2)
return 1
"""
)


#: KEYS: the audit stream. ARGV: the audit args (target kind 'stream').
WRITE_AUDIT = (
    WRITES
    + AUDIT_LIB
    + """
audit(KEYS[1], 1)
return 1
"""
)


#: KEYS: lookup claim. ARGV: user, method id, claimed_at. 1 if claimed, 0 if someone holds it.
CLAIM_CREATE = (
    WRITES
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[1], 'm', ARGV[2], 'at', ARGV[3])
return 1
"""
)


#: KEYS: lookup claim. ARGV: expected user, method id, claimed_at, then the new user, method id,
#: claimed_at. Replaces a stale claim only if it is still the one the caller judged stale.
CLAIM_STEAL = (
    WRITES
    + """
local held = redis.call('HMGET', KEYS[1], 'u', 'm', 'at')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] or held[3] ~= ARGV[3] then return 0 end
redis.call('HSET', KEYS[1], 'u', ARGV[4], 'm', ARGV[5], 'at', ARGV[6])
return 1
"""
)


#: KEYS: lookup claim. ARGV: user, method id. Deletes the claim only if it is theirs. 1 or 0.
CLAIM_RELEASE = (
    WRITES
    + """
local held = redis.call('HMGET', KEYS[1], 'u', 'm')
if held[1] ~= ARGV[1] or held[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"""
)
