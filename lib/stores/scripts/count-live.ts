import { REDIS_NOW } from './redis-time'

/**
 * KEYS: holders zset, waiters (tickets) zset. Counts the live entries of each by Redis time,
 * without writing: what a scheduler reads to pick the least loaded subject.
 * Returns { held, waiting }.
 */
export const COUNT_LIVE = REDIS_NOW + `
return { redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf'), redis.call('ZCOUNT', KEYS[2], '(' .. now, '+inf') }
`
