/**
 * Lua `acquireSet(keys, args)`: all-or-nothing slots of several subjects (a user's, an
 * account's), in one atomic step over every subject's three keys. Its arguments are
 * `count, first, lease, maxWaiters, ticketTtl, fair, precedence`, then `member, max, ahead`
 * per subject. Each subject's member is a set's member ('.s' in its name): grant passes never
 * grant one, since they see only their own subject.
 *
 * A first try (`first` 1) takes every slot when each subject admits it by the rule of a
 * single first try (its own max, `ahead`, fair mode), and answers 2 or 1 as tryAcquire does.
 * Otherwise it holds none and takes a ticket in every subject, all at one place (so two sets
 * are in the same order in every queue they share), or none when one queue already has
 * maxWaiters: { 0, most tickets ahead of it in one queue } or -1.
 *
 * A set's ticket waits in line only where it does not fit. Where it fits it is parked: out of
 * the queue (its ticket kept), so it keeps no room from anyone while another of its subjects
 * is full. A grant pass that reaches a set ticket with room for it keeps that room through
 * the pass and tells its process, which polls (`first` 0): the ticket goes back to its place
 * everywhere, each subject's pass grants the waiters before it and says whether it fits
 * after them, and it takes every slot if it fits in all; if not, it is parked again where it
 * fits and those passes run again without it. Room is kept for a set only between a pass and
 * its poll: one round trip. A poll answers { outcome, then subject index, member of each
 * waiter of the caller's instance granted a slot or told to check its set }.
 *
 * Safe to run twice: a set whose first member holds a live slot was admitted (every slot of
 * it was written at once), and only renews them.
 */
export const ACQUIRE_SET = `
-- One place for the set in every queue: the latest arrival any of them would give.
local function setPlace (queues, precedence)
  local arrival = nowUs
  for _, queue in ipairs(queues) do
    local order = nextOrder(queue, 0)
    if order > arrival then arrival = order end
  end
  for _, queue in ipairs(queues) do lastOrder[queue] = arrival end
  return arrival - precedence
end

-- Every ticket of the set goes (refused a place, or admitted).
local function dropSetTickets (set)
  for i = 1, set.n do
    zrem(set.tickets[i], set.members[i])
    zrem(set.queues[i], set.members[i])
  end
end

local function holdSet (set, lease)
  for i = 1, set.n do
    holdUnits(set.holders[i], now + lease, set.members[i], set.weights[i])
    keepAlive(set.holders[i], lease)
  end
end

-- A place in every queue, or -1 when one has maxWaiters live tickets besides its own.
local function claimPlaces (set, maxWaiters)
  for i = 1, set.n do
    local live = redis.call('ZCOUNT', set.tickets[i], '(' .. now, '+inf')
    if isLive(redis.call('ZSCORE', set.tickets[i], set.members[i])) then live = live - 1 end
    if live >= maxWaiters then
      dropSetTickets(set)
      return -1
    end
  end
  return 0
end

-- Its tickets, refreshed; in line at place where it does not fit, parked where it does.
local function placeSet (set, place, ticketTtl, fits)
  for i = 1, set.n do
    redis.call('ZADD', set.tickets[i], now + ticketTtl, set.members[i])
    keepAlive(set.tickets[i], ticketTtl)
    if fits[i] then
      zrem(set.queues[i], set.members[i])
    else
      redis.call('ZADD', set.queues[i], place, set.members[i])
      keepAlive(set.queues[i], ticketTtl)
    end
  end
end

-- Where a waiting set stands: the place it has in a queue, if it is in one.
local function placeOf (set)
  for i = 1, set.n do
    local score = redis.call('ZSCORE', set.queues[i], set.members[i])
    if score then return tonumber(score) end
  end
  return nil
end

local function firstSetTry (set, lease, maxWaiters, ticketTtl, fair, precedence)
  local fits, all, room = {}, true, true
  for i = 1, set.n do
    local max, weight = set.maxes[i], set.weights[i]
    local ahead = set.aheads[i]
    if fair then ahead = unitsAhead(set.tickets[i], set.queues[i], precedence, max) end
    local held = redis.call('ZCARD', set.holders[i])
    if held + ahead + weight >= max then held = held - purgeLapsed(set.holders[i]) end
    fits[i] = held + ahead + weight <= max
    if not fits[i] then all = false elseif held + ahead + weight == max then room = false end
  end
  if all then
    holdSet(set, lease)
    return room and 2 or 1
  end
  if ticketTtl <= 0 then return 0 end
  if claimPlaces(set, maxWaiters) < 0 then return -1 end
  local place = placeOf(set) or setPlace(set.queues, precedence)
  placeSet(set, place, ticketTtl, fits)
  local ahead = 0
  for i = 1, set.n do
    if not fits[i] then ahead = math.max(ahead, redis.call('ZCOUNT', set.queues[i], '-inf', '(' .. exact(place))) end
  end
  return { 0, ahead }
end

local function pollSet (set, lease, maxWaiters, ticketTtl, precedence)
  local lapsed = false
  for i = 1, set.n do
    if not isLive(redis.call('ZSCORE', set.tickets[i], set.members[i])) then lapsed = true end
  end
  local place
  if lapsed then
    -- The process stalled past its tickets: the set queues again, at the back, everywhere.
    if claimPlaces(set, maxWaiters) < 0 then return { -1 } end
    for i = 1, set.n do zrem(set.queues[i], set.members[i]) end
    place = setPlace(set.queues, precedence)
  else
    place = placeOf(set) or setPlace(set.queues, precedence)
  end
  placeSet(set, place, ticketTtl, {})
  local reply = { 0 }
  local fits, all = {}, true
  local granted = {}
  for i = 1, set.n do
    granted[i] = {}
    fits[i] = grantWaiting(set.holders[i], set.tickets[i], set.queues[i], set.members[i], lease, granted[i], nil, set.members[i])
    all = all and fits[i]
  end
  if all then
    dropSetTickets(set)
    holdSet(set, lease)
    reply[1] = 1
  else
    for i = 1, set.n do
      if fits[i] then
        zrem(set.queues[i], set.members[i])
        grantWaiting(set.holders[i], set.tickets[i], set.queues[i], set.members[i], lease, granted[i])
      end
    end
  end
  for i = 1, set.n do
    for _, member in ipairs(granted[i]) do
      reply[#reply + 1] = i
      reply[#reply + 1] = member
    end
  end
  return reply
end

local function acquireSet (keys, args)
  clock()
  local n = tonumber(args[1])
  local set = { n = n, holders = {}, tickets = {}, queues = {}, members = {}, maxes = {}, aheads = {}, weights = {} }
  for i = 1, n do
    set.holders[i], set.tickets[i], set.queues[i] = keys[3 * i - 2], keys[3 * i - 1], keys[3 * i]
    set.members[i], set.maxes[i], set.aheads[i] = args[3 * i + 5], tonumber(args[3 * i + 6]), tonumber(args[3 * i + 7])
    set.weights[i] = weightOf(set.members[i])
  end
  local lease, maxWaiters, ticketTtl = tonumber(args[3]), tonumber(args[4]), tonumber(args[5])
  local precedence = tonumber(args[7])
  if isLive(redis.call('ZSCORE', set.holders[1], set.members[1])) then
    for i = 1, n do
      holdUnits(set.holders[i], now + lease, set.members[i], set.weights[i], 'XX')
      keepAlive(set.holders[i], lease)
    end
    return args[2] == '1' and 1 or { 1 }
  end
  if args[2] == '1' then return firstSetTry(set, lease, maxWaiters, ticketTtl, args[6] == '1', precedence) end
  return pollSet(set, lease, maxWaiters, ticketTtl, precedence)
end
`
