/**
 * The one piece of Lua the Redis store runs: a batch of operations, each on one subject's
 * three keys (holders, tickets, queue; keys[3i-2..3i]), or on three per subject of a set
 * (acquireSet, code 'S', whose first argument is how many), executed in order, atomically, under
 * one Redis clock reading. Batching is what makes a busy process cheap: one call and one
 * round trip carry every operation its requests issued in the same turn of the event loop.
 *
 * Arguments: grant channel prefix, sharded (1/0), then per operation its code and its
 * arguments (see operations.ts). Returns one reply per operation; an operation that failed (a
 * key of the wrong type, say) answers its error message as a string and the others still run.
 *
 * It comes in two forms with the same code: a Redis Function library (loaded once, so its
 * helpers are defined once, not on every call) and a script for EVALSHA, for servers without
 * functions (before Redis 7) or where FUNCTION LOAD is not allowed.
 */
import { createHash } from 'node:crypto'
import { PRELUDE } from './prelude'
import { GRANT_WAITING } from './grant-waiting'
import { TRY_ACQUIRE } from './try-acquire'
import { RELEASE } from './release'
import { RENEW } from './renew'
import { ACQUIRE_SET } from './acquire-set'
import { luaOperationTable } from './operations'

const BODY = PRELUDE + GRANT_WAITING + TRY_ACQUIRE + RELEASE + RENEW + ACQUIRE_SET + luaOperationTable() + `
local function runBatch (keys, argv)
  now, nowUs, armed, lastOrder = nil, nil, {}, {}
  grantChannelPrefix, shardedPubSub = argv[1], argv[2] == '1'
  local replies = {}
  local i = 3
  local k = 0
  while i <= #argv do
    local ok, reply, argc, keyc
    if argv[i] == 'S' then
      local n = tonumber(argv[i + 1])
      argc, keyc = 7 + 3 * n, 3 * n
      ok, reply = pcall(acquireSet, { unpack(keys, k + 1, k + keyc) }, { unpack(argv, i + 1, i + argc) })
    else
      local operation = operations[argv[i]]
      if not operation then return redis.error_reply('fastify-slots: unknown batch operation ' .. tostring(argv[i])) end
      local run = operation[1]
      argc, keyc = operation[2], 3
      ok, reply = pcall(run, keys[k + 1], keys[k + 2], keys[k + 3], unpack(argv, i + 1, i + argc))
    end
    if not ok then
      reply = type(reply) == 'table' and (reply.err or reply.message) or tostring(reply)
    end
    replies[#replies + 1] = reply
    i = i + 1 + argc
    k = k + keyc
  end
  return replies
end
`

/** The EVALSHA form. */
export const RUN_BATCH = BODY + 'return runBatch(KEYS, ARGV)\n'

/**
 * Named after the code, so two versions of the plugin sharing a Redis (a rolling upgrade)
 * each call their own, and loading never has to replace a library someone else calls.
 */
const VERSION = createHash('sha1').update(BODY).digest('hex').slice(0, 16)
export const BATCH_FUNCTION = `fastify_slots_batch_${VERSION}`

/** The Redis Function library form: FUNCTION LOAD it, then FCALL BATCH_FUNCTION. */
export const BATCH_LIBRARY = `#!lua name=fastify_slots_${VERSION}\n${BODY}redis.register_function('${BATCH_FUNCTION}', runBatch)\n`
