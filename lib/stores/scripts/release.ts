/**
 * Lua `release(holders, tickets, queue, member, lease)` and `abandon(...)`, same arguments.
 *
 * release removes exactly this member's slot (never another's) and grants the freed capacity
 * to the oldest tickets in the same atomic step (see grantWaiting): a hand-off costs one
 * round trip. abandon is what a member that stopped waiting runs: its ticket goes with its
 * slot, so no grant can reach it afterwards, a slot granted to it just before goes straight
 * to the next waiter, and a head that was blocking the queue lets the tickets behind it
 * through.
 * Both return { 1 the slot was live, 0 its lease had lapsed, -1 no slot (already released: a
 * resent call; or lapsed and purged), then the members of the caller's instance granted a slot }.
 */
export const RELEASE = `
local function release (holders, tickets, queue, member, lease)
  local reply = { -1 }
  local expiry = redis.call('ZSCORE', holders, member)
  if expiry then
    redis.call('ZREM', holders, member)
    reply[1] = tonumber(expiry) > now and 1 or 0
  end
  grantWaiting(holders, tickets, queue, parseMember(member), tonumber(lease), reply, member)
  return reply
end

local function abandon (holders, tickets, queue, member, lease)
  redis.call('ZREM', tickets, member)
  redis.call('ZREM', queue, member)
  return release(holders, tickets, queue, member, lease)
end
`
