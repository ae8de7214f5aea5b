/**
 * Lua `release(holders, tickets, queue, member, lease, check)` and
 * `abandon(holders, tickets, queue, member, lease)`.
 *
 * release removes exactly this member's slot (never another's) and grants the freed capacity
 * to the oldest tickets in the same atomic step (see grantWaiting): a hand-off costs one
 * round trip. abandon is what a member that stopped waiting runs: its ticket goes with its
 * slot, so no grant can reach it afterwards, a slot granted to it just before goes straight
 * to the next waiter, and a head that was blocking the queue lets the tickets behind it
 * through.
 * Both return { 1 the slot was there (and, when `check` is 1, live), 0 (only when `check` is
 * 1) its lease had lapsed, -1 no slot (already released: a resent call; or lapsed and
 * purged), then the members of the caller's instance granted a slot }. The caller asks for
 * the check only when its own clock says the lease may have ended: the common release is
 * then one ZREM, without reading the clock.
 */
export const RELEASE = `
local function release (holders, tickets, queue, member, lease, check)
  local reply = { -1 }
  local weight = weightOf(member)
  if check == '1' then
    local expiry = redis.call('ZSCORE', holders, member)
    if expiry then
      clock()
      releaseUnits(holders, member, weight)
      reply[1] = tonumber(expiry) > now and 1 or 0
    end
  elseif releaseUnits(holders, member, weight) > 0 then
    reply[1] = 1
  end
  grantWaiting(holders, tickets, queue, member, tonumber(lease), reply, member)
  return reply
end

local function abandon (holders, tickets, queue, member, lease)
  zrem(tickets, member)
  zrem(queue, member)
  return release(holders, tickets, queue, member, lease, '0')
end
`
