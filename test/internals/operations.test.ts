/**
 * The batch script's operations are defined once (lib/stores/scripts/operations.ts): the Lua
 * dispatcher is built from the table, and every Lua function must take exactly the table's
 * arguments after its three keys, in order, or the encoder and the script disagree.
 */
import t from 'tap'
import { encodeOperation, OPERATIONS } from '../../lib/stores/scripts/operations'
import { RUN_BATCH } from '../../lib/stores/scripts/run-batch'

t.test('every Lua operation takes the keys, then exactly the arguments of its table row', async t => {
  for (const [name, operation] of Object.entries(OPERATIONS)) {
    const match = new RegExp(`local function ${name} \\(([^)]*)\\)`).exec(RUN_BATCH)
    t.ok(match, `${name} is defined in the script`)
    const params = match![1].split(',').map(p => p.trim())
    t.same(params, ['holders', 'tickets', 'queue', ...operation.args], `${name} (${operation.code})`)
    t.match(RUN_BATCH, `  ${operation.code} = { ${name}, ${operation.args.length} }`, `${name} is dispatched by its code with its argument count`)
  }
  t.equal(new Set(Object.values(OPERATIONS).map(o => o.code)).size, Object.keys(OPERATIONS).length, 'codes are unique')
})

t.test('the encoder writes the code, then the arguments in the table order', async t => {
  t.same(encodeOperation('tryAcquire', { precedence: 8, ahead: 7, fair: 6, ticketTtl: 5, maxWaiters: 4, lease: 3, max: 2, member: 'm' }), ['a', 'm', 2, 3, 4, 5, 6, 7, 8])
  t.same(encodeOperation('release', { check: 1, lease: 9, member: 'm' }), ['r', 'm', 9, 1])
  t.same(encodeOperation('countLive', { step: 1000 }), ['c', 1000])
})
