/**
 * Lua `tryAcquire(...)` (a member's first try) and `poll(...)` (a waiting member's retry),
 * both with the arguments `member, max, lease, maxWaiters, ticketTtl, fair, ahead, precedence`.
 * holders: member → lease expiry; tickets: waiting member → ticket expiry; queue: waiting
 * member → arrival order (µs of Redis time) less its class's precedence (priority ×
 * priorityStepMs, in µs), the order grants follow: higher classes first, arrival order within
 * a class, and a lower class passed only by arrivals less than the difference after it.
 *
 * Both are safe to run twice: a member that already holds a live slot keeps it (full lease)
 * and one that already has a live ticket refreshes it, so a resent try never queues behind its
 * own slot or counts its own ticket against maxWaiters. A resent first try that queued and
 * then found room holds a slot and a stale ticket: grant passes drop a ticket whose member
 * already holds, and its release removes it.
 */
export const TRY_ACQUIRE = `
-- The member's live slot, if it has one, gets a full lease (every unit of it): true; else false.
local function keepHolding (holders, member, lease)
  local expiry = redis.call('ZSCORE', holders, member)
  if not expiry or tonumber(expiry) <= now then return false end
  holdUnits(holders, now + lease, member, weightOf(member))
  keepAlive(holders, lease)
  return true
end

-- A ticket's place: its arrival in µs of Redis time, strictly increasing even within one µs
-- (the last arrival is read once per call and queue, then counted on), less its precedence.
-- Precedences are never negative, so the queue's last score is never later than the last
-- arrival: class 0 keeps its order even if the clock steps back.
local function nextOrder (queue, precedence)
  local last = lastOrder[queue]
  if not last then
    local entry = redis.call('ZRANGE', queue, -1, -1, 'WITHSCORES')
    last = #entry > 0 and tonumber(entry[2]) or 0
  end
  local arrival = nowUs
  if last >= arrival then arrival = last + 1 end
  lastOrder[queue] = arrival
  return arrival - precedence
end

-- The units of the tickets a fair newcomer of this precedence would queue behind: all live
-- ones in class 0; above it, the queue entries placed before its place (lapsed ones not yet
-- purged count too, which can only make it wait). Each ticket is at least one unit, so once
-- there are max of them it cannot fit whatever they weigh: their weights are read only below.
local function unitsAhead (tickets, queue, precedence, max)
  local from, to, key = '(' .. now, '+inf', tickets
  if precedence > 0 then from, to, key = '-inf', '(' .. exact(nowUs - precedence), queue end
  local count = redis.call('ZCOUNT', key, from, to)
  if count == 0 or count >= max then return count end
  local units = 0
  for _, member in ipairs(redis.call('ZRANGEBYSCORE', key, from, to)) do units = units + weightOf(member) end
  return units
end

local function isLive (ticket)
  return ticket and tonumber(ticket) > now
end

-- maxWaiters other live tickets already wait: a lapsed ticket of the member's own goes too; -1.
local function refuseTicket (tickets, queue, member, ticket)
  if ticket then
    zrem(tickets, member)
    zrem(queue, member)
  end
  return -1
end

-- A poll's ticket: refreshed, or (new, or lapsed while this process stalled: re-queued at
-- the back of its class) taken: 0; or -1 when the queue is full.
local function queueTicket (tickets, queue, member, maxWaiters, ticketTtl, precedence)
  local ticket = redis.call('ZSCORE', tickets, member)
  if not isLive(ticket) then
    if redis.call('ZCOUNT', tickets, '(' .. now, '+inf') >= maxWaiters then
      return refuseTicket(tickets, queue, member, ticket)
    end
    redis.call('ZADD', queue, nextOrder(queue, precedence), member)
    keepAlive(queue, ticketTtl)
  end
  redis.call('ZADD', tickets, now + ticketTtl, member)
  keepAlive(tickets, ticketTtl)
  return 0
end

-- A first try's ticket, one command shorter than a poll's: a ticket it already has can only be
-- a resent try's own, which NX finds (and leaves in its place in the queue). Answers
-- { 0, tickets ahead of it } (in class 0, the live ones counted for maxWaiters are all ahead
-- of a new ticket), or -1.
local function firstTicket (tickets, queue, member, maxWaiters, ticketTtl, precedence)
  local live = redis.call('ZCOUNT', tickets, '(' .. now, '+inf')
  if live >= maxWaiters then
    -- Full, unless the live tickets counted include its own (a resent try).
    local ticket = redis.call('ZSCORE', tickets, member)
    if not isLive(ticket) then return refuseTicket(tickets, queue, member, ticket) end
  elseif redis.call('ZADD', tickets, 'NX', now + ticketTtl, member) == 1 then
    local order = nextOrder(queue, precedence)
    redis.call('ZADD', queue, order, member)
    keepAlive(queue, ticketTtl)
    keepAlive(tickets, ticketTtl)
    if precedence == 0 then return { 0, live } end
    return { 0, redis.call('ZCOUNT', queue, '-inf', '(' .. exact(order)) }
  end
  -- Its own ticket: refreshed, and queued again at the back if it had lapsed and left the queue.
  redis.call('ZADD', tickets, now + ticketTtl, member)
  redis.call('ZADD', queue, 'NX', nextOrder(queue, precedence), member)
  keepAlive(queue, ticketTtl)
  keepAlive(tickets, ticketTtl)
  -- A resend is rare: its place is read, lapsed entries ahead of it included.
  return { 0, redis.call('ZRANK', queue, member) }
end

-- Takes a slot when the units held + ahead + its weight fit in max (ahead: the units of the
-- earlier waiters of its own process, or in fair mode of every live ticket placed before it).
-- Answers 2 when room is left after it, 1 when it made the subject full, else queues
-- ({ 0, ahead } / -1) or, without ticketTtl, answers 0.
local function tryAcquire (holders, tickets, queue, member, max, lease, maxWaiters, ticketTtl, fair, ahead, precedence)
  clock()
  max, lease, maxWaiters, ticketTtl = tonumber(max), tonumber(lease), tonumber(maxWaiters), tonumber(ticketTtl)
  ahead, precedence = tonumber(ahead), tonumber(precedence)
  if fair == '1' then ahead = unitsAhead(tickets, queue, precedence, max) end
  local weight = weightOf(member)
  local held = redis.call('ZCARD', holders)
  -- Expired leases count until purged. Purging only when the answer is "full" or "now full"
  -- keeps the common path short and the room it reports exact.
  if held + ahead + weight >= max then held = held - purgeLapsed(holders) end
  if held + ahead + weight <= max then
    -- ZADD answers 0 for units already held (a resent try): they were counted in held.
    held = held + holdUnits(holders, now + lease, member, weight)
    keepAlive(holders, lease)
    if held + ahead < max then return 2 end
    return 1
  end
  -- Full, so lapsed holders were purged above: an entry of this member is a live slot (a
  -- resent try, whose own units were counted in held), kept with a full lease.
  if redis.call('ZSCORE', holders, member) then
    holdUnits(holders, now + lease, member, weight)
    keepAlive(holders, lease)
    return 1
  end
  if ticketTtl <= 0 then return 0 end
  return firstTicket(tickets, queue, member, maxWaiters, ticketTtl, precedence)
end

-- A waiting member's retry: { outcome, members of its instance granted a slot... }. Free
-- capacity goes to the oldest tickets first, this member's among them.
local function poll (holders, tickets, queue, member, max, lease, maxWaiters, ticketTtl, fair, ahead, precedence)
  clock()
  lease, maxWaiters, ticketTtl = tonumber(lease), tonumber(maxWaiters), tonumber(ticketTtl)
  if keepHolding(holders, member, lease) then return { 1 } end
  local reply = { 0 }
  if ticketTtl > 0 then
    reply[1] = queueTicket(tickets, queue, member, maxWaiters, ticketTtl, tonumber(precedence))
    if reply[1] < 0 then return reply end
  end
  grantWaiting(holders, tickets, queue, member, lease, reply)
  for i = 2, #reply do
    if reply[i] == member then reply[1] = 1 end
  end
  return reply
end
`
