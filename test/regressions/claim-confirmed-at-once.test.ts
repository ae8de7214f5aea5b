/**
 * Finding 2: a slot granted to another instance lasted the RELEASER's claim, while the
 * receiver confirmed it on its own tick (2 s by default): with a releaser on a short lease the
 * granted request's slot lapsed while it worked, and a newcomer was admitted. The receiver
 * now decides its claim (carried in its ticket) and confirms the grant as soon as it arrives.
 */
import t from 'tap'
import { client, holders, redisUrl, uniquePrefix } from '../helpers/redis'
import { sleep, slotsApp } from '../helpers/app'

t.test('a slot granted by an instance with a short lease stays held by a live receiver', async t => {
  const url = await redisUrl(t)
  const prefix = uniquePrefix('claim-short')
  const releaser = await slotsApp(t, { redis: client(t, url), prefix, leaseMs: 600, storeTimeoutMs: 100 })
  const receiver = await slotsApp(t, { redis: client(t, url), prefix })
  const newcomer = await slotsApp(t, { redis: client(t, url), prefix })
  await receiver.slots.ready // grants from other instances reach it from now on

  const held = await releaser.slots.acquire('user', 'claim', 1)
  const waiting = receiver.slots.acquire('user', 'claim', 1)
  await sleep(50)
  await held.release()
  const granted = await waiting
  await sleep(1200) // twice the releaser's lease, well past any claim it could give
  const late = await newcomer.slots.acquire('user', 'claim', 1, { maxWaitMs: 0 }).then(() => 'admitted', (err: { code: string }) => err.code)
  t.equal(late, 'SLOT_WAIT_TIMEOUT', 'a newcomer is not admitted: the granted slot is still held')
  t.equal(await holders(client(t, url), prefix, 'user:claim'), 1)
  t.same(receiver.slots.stats().lost, 0, 'the receiver never lost it')
  await granted.release()
})
