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

-- A class above 0 rides in the counter's field: '<instance>:<counter>.<priority>:<max>:<claimMs>'.
local function priorityOf (member)
  return tonumber(string.match(member, '^[^:]*:[^:.]*%.(%d+):%d+:%d+$') or 0)
end
`
