import { REDIS_NOW } from './redis-time'

/**
 * KEYS: holders zset, tickets zset. ARGV: member, wake-up channel, sharded (1/0).
 * Returns 1 when the member held a live slot; 0 when it was gone or its lease had already
 * lapsed (the process stalled: the slot may have been someone else's since), which the
 * caller reports as lost, not released.
 * Removes exactly this member (never another instance's) and, when someone waits, publishes
 * on the subject's channel so waiters in every process retry at once: sharded pub/sub when
 * asked and the server has it (Redis 7+), classic otherwise.
 */
export const RELEASE = REDIS_NOW + `
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry then return 0 end
redis.call('ZREM', KEYS[1], ARGV[1])
if tonumber(expiry) <= now then return 0 end
if redis.call('ZCARD', KEYS[2]) > 0 then
  local sent = ARGV[3] == '1' and redis.pcall('SPUBLISH', ARGV[2], '1')
  if not sent or (type(sent) == 'table' and sent.err) then redis.call('PUBLISH', ARGV[2], '1') end
end
return 1
`

/** KEYS: tickets zset, queue zset. ARGV: member. A waiter that stops waiting gives its place up. */
export const LEAVE_QUEUE = `
redis.call('ZREM', KEYS[2], ARGV[1])
return redis.call('ZREM', KEYS[1], ARGV[1])
`
