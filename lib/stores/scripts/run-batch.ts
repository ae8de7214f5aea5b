/**
 * The one script the Redis store runs: a batch of operations, each on one subject's three keys
 * (holders, tickets, queue; KEYS[3i-2..3i]), executed in order, atomically, under one Redis
 * clock reading. Batching is what makes a busy process cheap: one EVALSHA, one round trip and
 * one script call carry every operation its requests issued in the same tick.
 *
 * ARGV: grant channel prefix, sharded (1/0), then per operation its code and its arguments
 * (see operations.ts). Returns one reply per operation; an operation that failed (a key of the
 * wrong type, say) answers its error message as a string and the others still run.
 */
import { PRELUDE } from './prelude'
import { GRANT_WAITING } from './grant-waiting'
import { TRY_ACQUIRE } from './try-acquire'
import { RELEASE } from './release'
import { RENEW } from './renew'
import { luaOperationTable } from './operations'

export const RUN_BATCH = PRELUDE + GRANT_WAITING + TRY_ACQUIRE + RELEASE + RENEW + luaOperationTable() + `
local replies = {}
local i = 3
local k = 0
while i <= #ARGV do
  local operation = operations[ARGV[i]]
  if not operation then return redis.error_reply('fastify-slots: unknown batch operation ' .. tostring(ARGV[i])) end
  local run, argc = operation[1], operation[2]
  local ok, reply = pcall(run, KEYS[k + 1], KEYS[k + 2], KEYS[k + 3], unpack(ARGV, i + 1, i + argc))
  if not ok then
    reply = type(reply) == 'table' and (reply.err or reply.message) or tostring(reply)
  end
  replies[#replies + 1] = reply
  i = i + 1 + argc
  k = k + 3
end
return replies
`
