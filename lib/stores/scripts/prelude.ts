/**
 * What every operation of a batch shares: the Redis clock, read once per batch (never the
 * client's), and the key-lifetime and purge helpers.
 */
export const PRELUDE = `
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowUs / 1000)

-- A subject's keys outlive their longest-lived entry; refreshed to twice the need so that a
-- busy key is re-armed once per period, not on every call.
local function keepAlive (key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, 2 * ms) end
end

-- Lapsed tickets leave both the tickets and the arrival order.
local function purgeTickets (tickets, queue)
  local expired = redis.call('ZRANGEBYSCORE', tickets, '-inf', now)
  if #expired > 0 then
    redis.call('ZREM', tickets, unpack(expired))
    redis.call('ZREM', queue, unpack(expired))
  end
end
`
