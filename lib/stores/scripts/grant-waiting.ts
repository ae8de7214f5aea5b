/**
 * Lua `grantWaiting(holders, tickets, queue, caller, lease, reply, leaving, mine)`: hands free
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
 * A set's ticket (see acquire-set.ts) is never granted here: this pass cannot see the set's
 * other subjects. One that fits keeps its room through the rest of the pass, and its process
 * is told (like a grant, on its channel or in `reply`) to check the whole set, one round trip;
 * `mine`, when given, is the set ticket of the caller, and the pass answers whether it fits.
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

-- The message is the member, a newline and the tag (read back from the key: after the hash
-- tag when the store gives subjects a shared one, else the hash tag itself), so a receiver
-- can give back a grant that reached a member nobody waits for any more.
local function notifyGrant (instance, member, holders)
  local channel = grantChannelPrefix .. instance
  local tag = string.match(holders, '}:(.+):holders$') or string.match(holders, '{([^}]*)}')
  local message = member .. string.char(10) .. tag
  local sent = shardedPubSub and redis.pcall('SPUBLISH', channel, message)
  if not sent or (type(sent) == 'table' and sent.err) then redis.call('PUBLISH', channel, message) end
end

local function grantWaiting (holders, tickets, queue, caller, lease, reply, leaving, mine)
  -- The queue's head doubles as the check that anyone waits at all.
  local waiting = redis.call('ZRANGE', queue, 0, GRANT_SCAN - 1)
  if #waiting == 0 then return false end
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
  local fits = false
  for _, waiter in ipairs(waiting) do
    local owner, max, claim = parseMember(waiter)
    local weight = weightOf(waiter)
    local live = complete or tonumber(redis.call('ZSCORE', tickets, waiter) or 0) > now
    local waits = false
    if live and max >= weight and waiter ~= leaving then
      if held + weight > max then break end
      if isSetMember(waiter) then
        -- Its room is kept through this pass; a set that holds already has a stale ticket.
        if waiter == mine then
          fits, waits = true, true
        elseif not redis.call('ZSCORE', holders, waiter) then
          waits = true
          if owner == instance then reply[#reply + 1] = waiter else notifyGrant(owner, waiter, holders) end
        end
        if waits then held = held + weight end
      else
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
    end
    -- Granted, or a lapsed, malformed (no max, or heavier than it) or leaving ticket, or a
    -- holder's stale one: it leaves the queue (a set's that fits stays: it was only told).
    if not waits then done[#done + 1] = waiter end
  end
  if #done > 0 then
    zrem(tickets, unpack(done))
    zrem(queue, unpack(done))
  end
  if longest > 0 then keepAlive(holders, longest) end
  return fits
end
`
