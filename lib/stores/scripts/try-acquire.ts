/**
 * KEYS[1] holders zset, KEYS[2] waiting-tickets zset (both carry the subject's hash tag).
 * ARGV member, max, leaseMs, maxWaiters, ticketTtlMs.
 * Scores are expiry times in ms from the Redis clock, so callers with different leases
 * coexist and no client clock is trusted. Returns 1 acquired, 0 waiting, -1 queue full.
 */
export const TRY_ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local member = ARGV[1]
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local maxWaiters = tonumber(ARGV[4])
local ticketTtl = tonumber(ARGV[5])

redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
if redis.call('ZSCORE', KEYS[1], member) or redis.call('ZCARD', KEYS[1]) < max then
  redis.call('ZADD', KEYS[1], now + lease, member)
  if redis.call('PTTL', KEYS[1]) < lease then
    redis.call('PEXPIRE', KEYS[1], lease)
  end
  redis.call('ZREM', KEYS[2], member)
  return 1
end

if ticketTtl <= 0 then
  return 0
end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if not redis.call('ZSCORE', KEYS[2], member) and redis.call('ZCARD', KEYS[2]) >= maxWaiters then
  return -1
end
redis.call('ZADD', KEYS[2], now + ticketTtl, member)
if redis.call('PTTL', KEYS[2]) < ticketTtl then
  redis.call('PEXPIRE', KEYS[2], ticketTtl)
end
return 0
`
