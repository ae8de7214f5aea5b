/**
 * Lua `tryAcquire(holders, tickets, queue, member, max, lease, maxWaiters, ticketTtl, fair, ahead, queued)`.
 * holders: member → lease expiry; tickets: waiting member → ticket expiry; queue: waiting
 * member → arrival order (µs of Redis time), the order grants follow.
 *
 * A member takes a slot when `holders + ahead < max`, where `ahead` is, in fair mode, the
 * number of live tickets older than its own (every process's waiters), and otherwise what the
 * caller says (its own process's earlier waiters). A member that already holds (a slot was
 * granted to it) just gets its full lease. Otherwise it takes or refreshes a ticket, unless
 * `maxWaiters` others already wait.
 * Returns 2 acquired with room left, 1 acquired (now full), 0 waiting, -1 queue full.
 */
export const TRY_ACQUIRE = `
local function tryAcquire (holders, tickets, queue, member, max, lease, maxWaiters, ticketTtl, fair, ahead, queued)
  -- A first try is a fresh member: it holds nothing and has no ticket yet.
  local holding = queued and redis.call('ZSCORE', holders, member)
  if holding and tonumber(holding) <= now then holding = false end
  local held = redis.call('ZCARD', holders)
  if fair and not holding then
    purgeTickets(tickets, queue)
    ahead = (queued and redis.call('ZRANK', queue, member)) or redis.call('ZCARD', queue)
  end
  -- Expired leases count until purged; purging only when they would matter keeps the
  -- uncontended path short.
  if not holding and held + ahead >= max then
    held = held - redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
  end
  if holding or held + ahead < max then
    redis.call('ZADD', holders, now + lease, member)
    keepAlive(holders, lease)
    if queued then
      redis.call('ZREM', tickets, member)
      redis.call('ZREM', queue, member)
    end
    if holding then held = held - 1 end
    if held + 1 < max then return 2 end
    return 1
  end

  if ticketTtl <= 0 then return 0 end
  local ticket = queued and redis.call('ZSCORE', tickets, member)
  -- A lapsed ticket lost its place: the member queues anew, at the back.
  if not ticket or tonumber(ticket) <= now then
    -- Lapsed tickets do not count (a release purges them before it grants).
    if redis.call('ZCOUNT', tickets, '(' .. now, '+inf') >= maxWaiters then return -1 end
    -- Arrival order in µs of Redis time, strictly increasing even within one µs.
    local last = redis.call('ZRANGE', queue, -1, -1, 'WITHSCORES')
    local order = nowUs
    if #last > 0 and tonumber(last[2]) >= order then order = tonumber(last[2]) + 1 end
    redis.call('ZADD', queue, order, member)
    keepAlive(queue, ticketTtl)
  end
  redis.call('ZADD', tickets, now + ticketTtl, member)
  keepAlive(tickets, ticketTtl)
  return 0
end
`
