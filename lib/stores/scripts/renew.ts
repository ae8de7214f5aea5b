/**
 * Lua `renew(key, member, ttl)`: extends a live entry of the holders (a lease, or a granted
 * slot's claim) or of the tickets and returns 1; returns 0 when the member is gone or already
 * expired, so a process that was paused past its lease learns the slot is lost instead of
 * silently re-taking it (and over-admitting).
 * `refreshTicket(tickets, queue, member, ttl)` renews a ticket and keeps the arrival order
 * alive with it: a wait may outlast the queue key's first TTL.
 */
export const RENEW = `
local function renew (key, member, ttl)
  local expiry = redis.call('ZSCORE', key, member)
  if not expiry or tonumber(expiry) <= now then
    if expiry then redis.call('ZREM', key, member) end
    return 0
  end
  redis.call('ZADD', key, 'XX', now + ttl, member)
  keepAlive(key, ttl)
  return 1
end

local function refreshTicket (tickets, queue, member, ttl)
  local live = renew(tickets, member, ttl)
  if live == 1 then keepAlive(queue, ttl) end
  return live
end
`
