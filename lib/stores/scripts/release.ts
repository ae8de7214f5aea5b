/**
 * Lua `release(holders, tickets, queue, member, max, lease, claim)` and
 * `leaveQueue(tickets, queue, member)`.
 *
 * release removes exactly this member's slot (never another instance's) and hands the freed
 * capacity straight to the oldest live tickets, inside the same atomic step: the waiter does
 * not have to ask again, so a hand-off costs one round trip. A grant to a waiter of the
 * releasing instance gets the full lease and is reported in the reply (that instance is
 * alive: it is the one asking). A grant to another instance's waiter is published on that
 * instance's grant channel and gets only `claim` ms until the instance confirms it by renewing,
 * so a grant to a process that just died frees itself soon instead of after a full lease.
 * Returns { 1 if the slot was live, 0 if it was gone or its lease had already lapsed (the
 * process stalled: the slot may have been someone else's since), then the members granted to
 * the releasing instance }.
 * ARGV[1] is the prefix of the grant channels, ARGV[2] 1 for sharded pub/sub.
 */
export const RELEASE = `
-- Members are '<instance id>:<counter>' ('' for any other form).
local function instanceOf (member)
  return string.match(member, '^([^:]*):') or ''
end

local function notifyGrant (instance, member)
  local channel = ARGV[1] .. instance
  local sent = ARGV[2] == '1' and redis.pcall('SPUBLISH', channel, member)
  if not sent or (type(sent) == 'table' and sent.err) then redis.call('PUBLISH', channel, member) end
end

local function grantFreed (holders, tickets, queue, max, lease, claim, instance, reply)
  if redis.call('EXISTS', queue) == 0 then return end
  redis.call('ZREMRANGEBYSCORE', holders, '-inf', now)
  local room = max - redis.call('ZCARD', holders)
  if room <= 0 then return end
  purgeTickets(tickets, queue)
  local next = redis.call('ZRANGE', queue, 0, room - 1)
  if #next == 0 then return end
  for _, waiter in ipairs(next) do
    local owner = instanceOf(waiter)
    if owner == instance then
      redis.call('ZADD', holders, now + lease, waiter)
      reply[#reply + 1] = waiter
    else
      redis.call('ZADD', holders, now + claim, waiter)
      notifyGrant(owner, waiter)
    end
  end
  redis.call('ZREM', tickets, unpack(next))
  redis.call('ZREM', queue, unpack(next))
  keepAlive(holders, lease)
end

local function release (holders, tickets, queue, member, max, lease, claim)
  local expiry = redis.call('ZSCORE', holders, member)
  if not expiry then return { 0 } end
  redis.call('ZREM', holders, member)
  local reply = { tonumber(expiry) > now and 1 or 0 }
  if max > 0 then grantFreed(holders, tickets, queue, max, lease, claim, instanceOf(member), reply) end
  return reply
end

-- A waiter that stops waiting gives its place up.
local function leaveQueue (tickets, queue, member)
  redis.call('ZREM', queue, member)
  return redis.call('ZREM', tickets, member)
end
`
