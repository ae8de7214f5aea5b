/**
 * Lua `renew(holders, tickets, queue, member, ttl)`: extends a live slot (a lease, or a
 * granted slot's claim; every unit of a weighted one) and returns 1; returns 0 when it is
 * gone or already expired, so a process that was paused past its lease learns the slot is
 * lost instead of silently re-taking it (and over-admitting).
 * `refreshTicket(...)`, same arguments, does the same for a ticket and keeps the arrival order
 * alive with it (a wait may outlast the queue key's first TTL); a ticket found lapsed leaves
 * the queue too, so no grant goes to it.
 * `countLive(holders, tickets, queue, step)`: the live entries of each by Redis time, without
 * writing; what a scheduler reads to pick the least loaded subject. Returns { held, waiting,
 * oldest waiter's wait in ms (0: nobody waits; -1: unknown), then class, count pairs of the
 * waiters above class 0, or -1 when there are too many to count }; `step` is priorityStepMs,
 * to tell a ticket's arrival from its place.
 */
export const RENEW = `
-- Extends a live entry (every unit of a slot of weight k: they lapse together); a lapsed one
-- is removed.
local function extend (key, member, ttl, weight)
  local expiry = redis.call('ZSCORE', key, member)
  clock()
  if not expiry or tonumber(expiry) <= now then
    if expiry then releaseUnits(key, member, weight) end
    return 0
  end
  holdUnits(key, now + ttl, member, weight, 'XX')
  keepAlive(key, ttl)
  return 1
end

local function renew (holders, tickets, queue, member, ttl)
  return extend(holders, member, tonumber(ttl), weightOf(member))
end

local function refreshTicket (holders, tickets, queue, member, ttl)
  ttl = tonumber(ttl)
  if extend(tickets, member, ttl, 1) == 1 then
    keepAlive(queue, ttl)
    return 1
  end
  zrem(queue, member)
  return 0
end

-- The longest wait among the first live tickets in line, in ms: arrival = place + precedence
-- (priority × step µs, the class read from the name). A read purges nothing, so lapsed
-- tickets may come first; -1 when GRANT_SCAN of them hide every live one.
local function oldestWait (tickets, queue, step)
  local head = redis.call('ZRANGE', queue, 0, GRANT_SCAN - 1, 'WITHSCORES')
  local oldest = -1
  for i = 1, #head, 2 do
    if tonumber(redis.call('ZSCORE', tickets, head[i]) or 0) > now then
      local class = priorityOf(head[i])
      local arrival = tonumber(head[i + 1]) + class * step * 1000
      oldest = math.max(oldest, math.floor((nowUs - arrival) / 1000), 0)
      -- Everything placed after a class-0 ticket arrived after it.
      if class == 0 then break end
    end
  end
  return oldest
end

-- Live waiters by class, as { class, count, ... } for the classes above 0 (class 0 is the
-- rest); { -1 } when there are more than PURGE_CHUNK of them, rather than a partial count.
local function waitingByClass (tickets)
  local live = redis.call('ZRANGEBYSCORE', tickets, '(' .. now, '+inf', 'LIMIT', 0, PURGE_CHUNK + 1)
  if #live > PURGE_CHUNK then return { -1 } end
  local counts, classes = {}, {}
  for _, member in ipairs(live) do
    local class = priorityOf(member)
    if class > 0 then
      if not counts[class] then classes[#classes + 1] = class end
      counts[class] = (counts[class] or 0) + 1
    end
  end
  local flat = {}
  for _, class in ipairs(classes) do
    flat[#flat + 1] = class
    flat[#flat + 1] = counts[class]
  end
  return flat
end

local function countLive (holders, tickets, queue, step)
  clock()
  local waiting = redis.call('ZCOUNT', tickets, '(' .. now, '+inf')
  local reply = { redis.call('ZCOUNT', holders, '(' .. now, '+inf'), waiting, 0 }
  if waiting > 0 then
    reply[3] = oldestWait(tickets, queue, tonumber(step))
    local classes = waitingByClass(tickets)
    for i = 1, #classes do reply[#reply + 1] = classes[i] end
  end
  return reply
end
`
