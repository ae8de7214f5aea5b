/**
 * KEYS: holders zset, tickets zset. ARGV: member, wake-up channel, sharded (1/0).
 * Removes exactly this member (never another instance's) and, when someone waits, publishes
 * on the subject's channel so waiters in every process retry at once: sharded pub/sub when
 * asked and the server has it (Redis 7+), classic otherwise. Returns 1 when it was held.
 */
export const RELEASE = `
local removed = redis.call('ZREM', KEYS[1], ARGV[1])
if removed == 1 and redis.call('ZCARD', KEYS[2]) > 0 then
  local sent = ARGV[3] == '1' and redis.pcall('SPUBLISH', ARGV[2], '1')
  if not sent or (type(sent) == 'table' and sent.err) then redis.call('PUBLISH', ARGV[2], '1') end
end
return removed
`

/** KEYS: tickets zset, queue zset. ARGV: member. A waiter that stops waiting gives its place up. */
export const LEAVE_QUEUE = `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
`
