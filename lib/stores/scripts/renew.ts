import { KEEP_ALIVE, REDIS_NOW } from './redis-time'

/**
 * KEYS[1] holders zset (or tickets zset); ARGV member, ttlMs. Extends a live entry and returns
 * 1; returns 0 when the member is gone or already expired, so a process that was paused past
 * its lease learns the slot is lost instead of silently re-taking it (and over-admitting).
 * Waiting tickets are refreshed with the same script.
 */
export const RENEW = REDIS_NOW + KEEP_ALIVE + `
local ttl = tonumber(ARGV[2])
local expiry = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not expiry or tonumber(expiry) <= now then
  redis.call('ZREM', KEYS[1], ARGV[1])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[1])
keepAlive(KEYS[1], ttl)
return 1
`
