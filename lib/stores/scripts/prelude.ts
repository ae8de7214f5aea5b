/**
 * What every operation of a batch shares: the Redis clock (never the client's), read at most
 * once per call and only by an operation that needs it; the bounds on one call's work; key
 * lifetimes; and the member-name format.
 *
 * The code is loaded once as a Redis Function library where the server has them, so these
 * are upvalues of the library that `runBatch` resets at the start of every call.
 */
export const PRELUDE = `
local now, nowUs
local grantChannelPrefix, shardedPubSub
-- Keys whose lifetime this call already made long enough, and for how long (see keepAlive).
local armed = {}
-- Per queue, the arrival order this call gave last (see queueTicket).
local lastOrder = {}

-- Reads the Redis clock once per call, at the first operation that needs it: a release with
-- nobody waiting needs none.
local function clock ()
  if now then return end
  local t = redis.call('TIME')
  nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
  now = math.floor(nowUs / 1000)
end

-- No step is unbounded: a purge removes lapsed tickets PURGE_CHUNK at a time (well under
-- Lua's unpack limit), at most PURGE_CHUNKS chunks a call, and a grant pass looks at most
-- GRANT_SCAN queue entries, whatever the subject.
local PURGE_CHUNK = 1000
local PURGE_CHUNKS = 5
local GRANT_SCAN = 50

-- A subject's keys outlive their longest-lived entry; refreshed to twice the need so that a
-- busy key is re-armed once per period, not on every call, and checked once per call and key.
local function keepAlive (key, ms)
  if (armed[key] or 0) >= ms then return end
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, 2 * ms) end
  armed[key] = ms
end

-- Every removal goes through these two: a key they empty is deleted, and one re-created
-- later in the same call must be armed again.
local function zrem (key, ...)
  armed[key] = nil
  return redis.call('ZREM', key, ...)
end

local function purgeLapsed (key)
  armed[key] = nil
  return redis.call('ZREMRANGEBYSCORE', key, '-inf', now)
end

-- Members are '<instance>:<counter>:<max>:<claimMs>': a ticket carries its own limit and claim.
-- Any other form gives max 0, which no grant admits.
local function parseMember (member)
  local instance, max, claim = string.match(member, '^([^:]*):[^:]*:(%d+):(%d+)$')
  if not instance then return '', 0, 0 end
  return instance, tonumber(max), tonumber(claim)
end

-- A score as text, every digit kept: Lua's own number-to-string (in '..') keeps 14, and a
-- place in µs has 16.
local function exact (score)
  return string.format('%.17g', score)
end

-- A set's mark, a class above 0 and a weight above 1 ride in the counter's field:
-- '<instance>:<counter>[.s][.p<class>][.w<weight>]:<max>:<claimMs>'.
-- (A plain find first: most members carry neither, and a release should not pay a pattern.)
local function priorityOf (member)
  if not string.find(member, '.p', 1, true) then return 0 end
  return tonumber(string.match(member, '^[^:]*:[^:]-%.p(%d+)') or 0)
end

-- A set's member (see acquire-set.ts) carries '.s' first in its counter's field.
local function isSetMember (member)
  return string.find(member, '.s', 1, true) ~= nil
end

local function weightOf (member)
  if not string.find(member, '.w', 1, true) then return 1 end
  return tonumber(string.match(member, '^[^:]*:[^:]-%.w(%d+)') or 1)
end

-- A member of weight k holds k entries in holders: itself, then '<member>#2' to '<member>#k',
-- so the units held are a ZCARD and lapsed units go with a range purge. These write or remove
-- all of them at once.
local function unitArgs (member, weight, score)
  local args = {}
  for unit = 1, weight do
    if score then args[#args + 1] = score end
    args[#args + 1] = unit == 1 and member or (member .. '#' .. unit)
  end
  return args
end

local function holdUnits (key, expiry, member, weight, flag)
  if weight == 1 then
    if flag then return redis.call('ZADD', key, flag, expiry, member) end
    return redis.call('ZADD', key, expiry, member)
  end
  if flag then return redis.call('ZADD', key, flag, unpack(unitArgs(member, weight, expiry))) end
  return redis.call('ZADD', key, unpack(unitArgs(member, weight, expiry)))
end

-- Removes every unit entry of a member of this weight (one ZREM); answers how many there were.
local function releaseUnits (key, member, weight)
  if weight == 1 then return zrem(key, member) end
  return zrem(key, unpack(unitArgs(member, weight)))
end
`
