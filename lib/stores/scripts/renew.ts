/**
 * Lua `renew(holders, tickets, queue, member, ttl)`: extends a live slot (a lease, or a
 * granted slot's claim) and returns 1; returns 0 when it is gone or already expired, so a
 * process that was paused past its lease learns the slot is lost instead of silently
 * re-taking it (and over-admitting).
 * `refreshTicket(...)`, same arguments, does the same for a ticket and keeps the arrival order
 * alive with it (a wait may outlast the queue key's first TTL); a ticket found lapsed leaves
 * the queue too, so no grant goes to it.
 * `countLive(holders, tickets, queue)`: the live entries of each by Redis time, without
 * writing; what a scheduler reads to pick the least loaded subject. Returns { held, waiting,
 * oldest waiter's wait in ms (0: nobody waits; -1: unknown) }.
 */
export const RENEW = `
local function extend (key, member, ttl)
  local expiry = redis.call('ZSCORE', key, member)
  clock()
  if not expiry or tonumber(expiry) <= now then
    if expiry then zrem(key, member) end
    return 0
  end
  redis.call('ZADD', key, 'XX', now + ttl, member)
  keepAlive(key, ttl)
  return 1
end

local function renew (holders, tickets, queue, member, ttl)
  return extend(holders, member, tonumber(ttl))
end

local function refreshTicket (holders, tickets, queue, member, ttl)
  ttl = tonumber(ttl)
  if extend(tickets, member, ttl) == 1 then
    keepAlive(queue, ttl)
    return 1
  end
  zrem(queue, member)
  return 0
end

-- The oldest live waiter's wait, in ms: the first live ticket among the queue's head (a read
-- purges nothing, so lapsed ones may come first); -1 when GRANT_SCAN of them hide it.
local function oldestWait (tickets, queue)
  local head = redis.call('ZRANGE', queue, 0, GRANT_SCAN - 1, 'WITHSCORES')
  for i = 1, #head, 2 do
    if tonumber(redis.call('ZSCORE', tickets, head[i]) or 0) > now then
      return math.max(0, math.floor((nowUs - tonumber(head[i + 1])) / 1000))
    end
  end
  return -1
end

local function countLive (holders, tickets, queue)
  clock()
  local waiting = redis.call('ZCOUNT', tickets, '(' .. now, '+inf')
  return { redis.call('ZCOUNT', holders, '(' .. now, '+inf'), waiting, waiting > 0 and oldestWait(tickets, queue) or 0 }
end
`
