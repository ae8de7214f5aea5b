/**
 * Lua `grantWaiting(holders, tickets, queue, caller, lease, reply, leaving)`: hands free
 * capacity to the oldest live tickets, inside the atomic step that freed it (a release) or looked for it
 * (a poll), so a waiter never has to race for a slot. Each ticket is admitted only while the
 * units held plus its weight fit in its OWN max (both carried in its name), and the pass
 * stops at the first live ticket that does not fit: nobody overtakes a waiter, a heavy one
 * included (the ones behind it wait until enough units free at once). `leaving`, when given, is the
 * member that just released: a stale ticket of its own is dropped, never granted back to it.
 * A grant to a member of the caller's instance (alive, since it is asking) gets `lease` and is
 * appended to `reply`; any other grant gets the ticket's own claim and is published on its
 * instance's channel, so a grant to a process that died frees itself after that claim.
 * A holder's stale ticket (a resent first try that queued, then found room) at the head of a
 * full subject holds the queue back like a live one, until room frees or the holder releases.
 * `purgeTickets(tickets, queue)` drops lapsed tickets from both sets, at most PURGE_CHUNKS
 * chunks a call; answers whether none is left, and how many it dropped.
 */
export const GRANT_WAITING = `
local function purgeTickets (tickets, queue)
  local removed = 0
  for _ = 1, PURGE_CHUNKS do
    local expired = redis.call('ZRANGEBYSCORE', tickets, '-inf', now, 'LIMIT', 0, PURGE_CHUNK)
    if #expired > 0 then
      zrem(tickets, unpack(expired))
      zrem(queue, unpack(expired))
      removed = removed + #expired
    end
    if #expired < PURGE_CHUNK then return true, removed end
  end
  return false, removed
end

-- The message is the member, a newline and the tag (read back from the key's hash tag), so
-- receiver can give back a grant that reached a member nobody waits for any more.
local function notifyGrant (instance, member, holders)
  local channel = grantChannelPrefix .. instance
  local message = member .. string.char(10) .. string.match(holders, '{([^}]*)}')
  local sent = shardedPubSub and redis.pcall('SPUBLISH', channel, message)
  if not sent or (type(sent) == 'table' and sent.err) then redis.call('PUBLISH', channel, message) end
end

local function grantWaiting (holders, tickets, queue, caller, lease, reply, leaving)
  -- The queue's head doubles as the check that anyone waits at all.
  local waiting = redis.call('ZRANGE', queue, 0, GRANT_SCAN - 1)
  if #waiting == 0 then return end
  clock()
  local instance = parseMember(caller)
  -- Once every lapsed ticket is purged, a queue entry has a live ticket: no need to look. The
  -- rare pass that purged some reads the head again, so it still looks at GRANT_SCAN live ones.
  local complete, removed = purgeTickets(tickets, queue)
  if removed > 0 then waiting = redis.call('ZRANGE', queue, 0, GRANT_SCAN - 1) end
  -- Lapsed holders go too: a process that closed without reaching the store (or died)
  -- leaves nothing behind once its subject is busy again.
  purgeLapsed(holders)
  local held = redis.call('ZCARD', holders)
  local done = {}
  local longest = 0
  for _, waiter in ipairs(waiting) do
    local owner, max, claim = parseMember(waiter)
    local weight = weightOf(waiter)
    local live = complete or tonumber(redis.call('ZSCORE', tickets, waiter) or 0) > now
    if live and max >= weight and waiter ~= leaving then
      if held + weight > max then break end
      local own = owner == instance and lease > 0
      local ttl = own and lease or claim
      -- NX: a member that already holds has a stale ticket (a resent first try that queued,
      -- then found room); it only loses the ticket.
      if holdUnits(holders, now + ttl, waiter, weight, 'NX') > 0 then
        if own then
          reply[#reply + 1] = waiter
        else
          notifyGrant(owner, waiter, holders)
        end
        if ttl > longest then longest = ttl end
        held = held + weight
      end
    end
    -- Granted, or a lapsed, malformed (no max, or heavier than it) or leaving ticket, or a
    -- holder's stale one: it leaves the queue.
    done[#done + 1] = waiter
  end
  if #done > 0 then
    zrem(tickets, unpack(done))
    zrem(queue, unpack(done))
  end
  if longest > 0 then keepAlive(holders, longest) end
end
`
