/**
 * The one script the Redis store runs: a batch of operations, each on one subject's three keys
 * (holders, tickets, queue; KEYS[3i-2..3i]), executed in order, atomically, under one Redis
 * clock reading. Batching is what makes a busy process cheap: one EVALSHA, one round trip and
 * one script call carry every operation its requests issued in the same tick.
 *
 * ARGV: grant channel prefix, sharded (1/0), then per operation its code and arguments:
 *   a member max lease maxWaiters ticketTtl fair ahead queued   tryAcquire  → integer
 *   r member max lease claim                                     release     → { live, granted... }
 *   l member                                                     leaveQueue  → integer
 *   h member ttl                                                 renew holder → 1/0
 *   t member ttl                                                 refresh ticket → 1/0
 *   c                                                            countLive   → { held, waiting }
 * Returns one reply per operation; an operation that failed (a key of the wrong type, say)
 * answers its error message as a string and the others still run.
 */
import { PRELUDE } from './prelude'
import { TRY_ACQUIRE } from './try-acquire'
import { RELEASE } from './release'
import { RENEW } from './renew'
import { COUNT_LIVE } from './count-live'

export const RUN_BATCH = PRELUDE + TRY_ACQUIRE + RELEASE + RENEW + COUNT_LIVE + `
local replies = {}
local i = 3
local k = 0
while i <= #ARGV do
  local op = ARGV[i]
  local holders, tickets, queue = KEYS[k + 1], KEYS[k + 2], KEYS[k + 3]
  local ok, reply
  if op == 'a' then
    ok, reply = pcall(tryAcquire, holders, tickets, queue, ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]),
      tonumber(ARGV[i + 4]), tonumber(ARGV[i + 5]), ARGV[i + 6] == '1', tonumber(ARGV[i + 7]), ARGV[i + 8] == '1')
    i = i + 9
  elseif op == 'r' then
    ok, reply = pcall(release, holders, tickets, queue, ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3]), tonumber(ARGV[i + 4]))
    i = i + 5
  elseif op == 'l' then
    ok, reply = pcall(leaveQueue, tickets, queue, ARGV[i + 1])
    i = i + 2
  elseif op == 'h' then
    ok, reply = pcall(renew, holders, ARGV[i + 1], tonumber(ARGV[i + 2]))
    i = i + 3
  elseif op == 't' then
    ok, reply = pcall(refreshTicket, tickets, queue, ARGV[i + 1], tonumber(ARGV[i + 2]))
    i = i + 3
  elseif op == 'c' then
    ok, reply = pcall(countLive, holders, tickets)
    i = i + 1
  else
    return redis.error_reply('fastify-slots: unknown batch operation ' .. tostring(op))
  end
  if not ok then
    reply = type(reply) == 'table' and (reply.err or reply.message) or tostring(reply)
  end
  replies[#replies + 1] = reply
  k = k + 3
end
return replies
`
