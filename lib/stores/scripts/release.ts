/**
 * Lua `release(holders, tickets, queue, member, lease)` and `abandon(...)`, same arguments.
 *
 * release removes exactly this member's slot (never another's) and grants the freed capacity
 * to the oldest tickets in the same atomic step (see grantWaiting): a hand-off costs one
 * round trip. abandon is what a member that stopped waiting runs: it also drops its ticket,
 * in the same step, so no grant can reach it afterwards and a slot granted to it just before
 * goes straight to the next waiter.
 * Both return { 1 the slot was live, 0 its lease had lapsed, -1 no slot (already released: a
 * resent call; or lapsed and purged), then the members of the caller's instance granted a slot }.
 */
export const RELEASE = `
local function giveBack (holders, tickets, queue, member, lease)
  local expiry = redis.call('ZSCORE', holders, member)
  if not expiry then return { -1 } end
  redis.call('ZREM', holders, member)
  local reply = { tonumber(expiry) > now and 1 or 0 }
  grantWaiting(holders, tickets, queue, parseMember(member), tonumber(lease), reply)
  return reply
end

local function release (holders, tickets, queue, member, lease)
  return giveBack(holders, tickets, queue, member, lease)
end

local function abandon (holders, tickets, queue, member, lease)
  redis.call('ZREM', tickets, member)
  redis.call('ZREM', queue, member)
  return giveBack(holders, tickets, queue, member, lease)
end
`
