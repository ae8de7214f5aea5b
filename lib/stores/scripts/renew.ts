/**
 * Lua `renew(holders, tickets, queue, member, ttl)`: extends a live slot (a lease, or a
 * granted slot's claim) and returns 1; returns 0 when it is gone or already expired, so a
 * process that was paused past its lease learns the slot is lost instead of silently
 * re-taking it (and over-admitting).
 * `refreshTicket(...)`, same arguments, does the same for a ticket and keeps the arrival order
 * alive with it (a wait may outlast the queue key's first TTL); a ticket found lapsed leaves
 * the queue too, so no grant goes to it.
 * `countLive(holders, tickets, queue)`: the live entries of each by Redis time, without
 * writing; what a scheduler reads to pick the least loaded subject. Returns { held, waiting }.
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

local function countLive (holders, tickets, queue)
  clock()
  return { redis.call('ZCOUNT', holders, '(' .. now, '+inf'), redis.call('ZCOUNT', tickets, '(' .. now, '+inf') }
end
`
