import { KEEP_ALIVE, REDIS_NOW } from './redis-time'

/**
 * KEYS: holders zset (member → lease expiry), tickets zset (waiting member → ticket expiry),
 * queue zset (waiting member → arrival order, kept for fair mode); all under one hash tag.
 * ARGV: member, max, leaseMs, maxWaiters, ticketTtlMs, fair (1/0), ahead.
 *
 * Expired holders and tickets are purged first, so nothing dead ever counts. A member may
 * take a slot when `holders + ahead < max`, where `ahead` is, in fair mode, the number of live
 * tickets older than its own (every process's waiters), and otherwise what the caller says
 * (its own process's earlier waiters). Otherwise it takes or refreshes a ticket, unless
 * `maxWaiters` others already wait.
 * Returns 2 acquired with room left, 1 acquired (now full), 0 waiting, -1 queue full.
 */
export const TRY_ACQUIRE = REDIS_NOW + KEEP_ALIVE + `
local holders, tickets, queue = KEYS[1], KEYS[2], KEYS[3]
local member = ARGV[1]
local max = tonumber(ARGV[2])
local lease = tonumber(ARGV[3])
local maxWaiters = tonumber(ARGV[4])
local ticketTtl = tonumber(ARGV[5])
local fair = ARGV[6] == '1'
local ahead = tonumber(ARGV[7])

-- Lapsed tickets leave both the tickets and the arrival order. Needed before ranking (fair)
-- and before counting waiters; the uncontended path skips it.
local function purgeTickets ()
  local expired = redis.call('ZRANGEBYSCORE', tickets, '-inf', now)
  if #expired > 0 then
    redis.call('ZREM', tickets, unpack(expired))
    redis.call('ZREM', queue, unpack(expired))
  end
end

redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
local held = redis.call('ZCARD', holders)
local holding = redis.call('ZSCORE', holders, member)
if fair and not holding then
  purgeTickets()
  ahead = redis.call('ZRANK', queue, member) or redis.call('ZCARD', queue)
end
if holding or held + ahead < max then
  redis.call('ZADD', holders, now + lease, member)
  keepAlive(holders, lease)
  -- Only a member that waited has a ticket (and, in fair mode, a place in the queue).
  if redis.call('ZREM', tickets, member) == 1 then redis.call('ZREM', queue, member) end
  if holding then held = held - 1 end
  if held + 1 < max then return 2 end
  return 1
end

if ticketTtl <= 0 then return 0 end
if not fair then purgeTickets() end
if not redis.call('ZSCORE', tickets, member) then
  if redis.call('ZCARD', tickets) >= maxWaiters then return -1 end
  if fair then
    -- Arrival order in µs of Redis time, strictly increasing even within one µs.
    local last = redis.call('ZRANGE', queue, -1, -1, 'WITHSCORES')
    local order = nowUs
    if #last > 0 and tonumber(last[2]) >= order then order = tonumber(last[2]) + 1 end
    redis.call('ZADD', queue, order, member)
    keepAlive(queue, ticketTtl)
  end
end
redis.call('ZADD', tickets, now + ticketTtl, member)
keepAlive(tickets, ticketTtl)
return 0
`
