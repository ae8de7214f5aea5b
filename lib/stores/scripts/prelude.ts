/**
 * What every operation of a batch shares: the Redis clock, read once per batch (never the
 * client's), the bounds on one call's work, key lifetimes, and the member-name format.
 * ARGV[1] is the prefix of the grant channels, ARGV[2] 1 for sharded pub/sub.
 */
export const PRELUDE = `
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowUs / 1000)
local grantChannelPrefix = ARGV[1]
local shardedPubSub = ARGV[2] == '1'

-- No step is unbounded: a purge removes lapsed tickets PURGE_CHUNK at a time (well under
-- Lua's unpack limit), at most PURGE_CHUNKS chunks a call, and a grant pass looks at most
-- GRANT_SCAN queue entries, whatever the subject.
local PURGE_CHUNK = 1000
local PURGE_CHUNKS = 5
local GRANT_SCAN = 50

-- A subject's keys outlive their longest-lived entry; refreshed to twice the need so that a
-- busy key is re-armed once per period, not on every call.
local function keepAlive (key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, 2 * ms) end
end

-- Members are '<instance>:<counter>:<max>:<claimMs>': a ticket carries its own limit and claim.
-- Any other form gives max 0, which no grant admits.
local function parseMember (member)
  local instance, max, claim = string.match(member, '^([^:]*):[^:]*:(%d+):(%d+)$')
  if not instance then return '', 0, 0 end
  return instance, tonumber(max), tonumber(claim)
end
`
