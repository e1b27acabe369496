"""The Lua functions the Redis store's scripts share (store/redis_scripts.py: the rules every
script keeps): the shebang of a script that may write, the audit write, the methods hash's
header fields, exact comparison of decimal integers, a session's save and its index entry."""

from __future__ import annotations

__all__ = ["AUDIT_LIB", "GREATER", "METHODS_LIB", "SESSION_LIB", "WRITES"]

#: ``audit(key, base)`` writes the change's audit events. From ARGV[base]: the target kind,
#: 'stream' (``key`` is the audit stream: standalone and Sentinel) or 'outbox' (``key`` is the
#: user's outbox list, in the user's slot: on a cluster the stream lives in another slot, and the
#: client moves the events over after the script); now in ms by the store clock; the MINID to trim
#: to ('' keeps everything); the MAXLEN cap ('' for none); the number of events n; then n JSON
#: events. Entry ids are ``<ms>-<seq>`` with ms from the store's clock, never below the stream's
#: last id, so ids follow write order even if the clock steps back. The first event is added at
#: the clock's ms as is (``pcall``: XADD refuses an id below the stream's last, and then writes
#: and trims nothing); only when refused is the last id read (XREVRANGE) and its ms taken: the
#: usual write costs no read of the stream (about a tenth of the verify's script, measured).
AUDIT_LIB = """
local function xadd(key, minid, ms, entry)
  if minid ~= '' then
    return redis.pcall('XADD', key, 'MINID', '=', minid, ms .. '-*', 'e', entry)
  end
  return redis.pcall('XADD', key, ms .. '-*', 'e', entry)
end
local function audit(key, base)
  local n = tonumber(ARGV[base + 4])
  if n == 0 then return end
  if ARGV[base] == 'outbox' then
    redis.call('RPUSH', key, unpack(ARGV, base + 5, base + 4 + n))
    return
  end
  local ms, minid = ARGV[base + 1], ARGV[base + 2]
  local added = xadd(key, minid, ms, ARGV[base + 5])
  if type(added) == 'table' and added.err then
    local last = redis.call('XREVRANGE', key, '+', '-', 'COUNT', 1)
    local last_ms = #last > 0 and string.match(last[1][1], '^(%d+)-')
    if not last_ms or tonumber(last_ms) <= tonumber(ms) then error(added) end
    ms = last_ms
    added = xadd(key, minid, ms, ARGV[base + 5])
    if type(added) == 'table' and added.err then error(added) end
  end
  for i = 2, n do
    local again = xadd(key, minid, ms, ARGV[base + 4 + i])
    if type(again) == 'table' and again.err then error(again) end
  end
  if ARGV[base + 3] ~= '' then redis.call('XTRIM', key, 'MAXLEN', '=', ARGV[base + 3]) end
end
"""


WRITES = "#!lua\n"


#: The methods of one user are one hash (``RedisKeys.methods``): field = method id, value =
#: ``<kind>|<seq>|<counter>|<last used>|<created>|<lookup>\n<label and data JSON>\n<secret>``
#: (see ``redis.py``). The scripts read and rewrite the header up to the first newline; they
#: find its fields with plain ``string.find`` (no patterns: the secret is binary) and never turn
#: a stored number into a Lua number except ``seq`` (a small insertion sequence).
METHODS_LIB = """
local function bars(v, n)
  local at, found = 0, {}
  for i = 1, n do
    at = string.find(v, '|', at + 1, true)
    found[i] = at
  end
  return found
end
"""


#: ``greater(a, b)``: decimal integer texts compared exactly, at any size.
GREATER = """
local function greater(a, b)
  local a_neg, b_neg = string.sub(a, 1, 1) == '-', string.sub(b, 1, 1) == '-'
  if a_neg ~= b_neg then return b_neg end
  if a_neg then return greater(string.sub(b, 2), string.sub(a, 2)) end
  if #a ~= #b then return #a > #b end
  return a > b
end
"""


#: ``save_session(key, data, expires_at, ttl_ms, user)``: replaces the whole hash, so a session
#: saved again without a user (``user`` false) loses the old one.
#: ``index_session(index, now, sid, expires_at, ttl_ms)``: the user's session index is a zset
#: sid -> expires_at; drops members expired by the store clock and keeps the index alive as long
#: as its newest member.
SESSION_LIB = """
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
