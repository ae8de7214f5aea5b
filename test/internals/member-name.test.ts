/**
 * Member names carry what a grant needs: instance, max, claim, and (when not the default) the
 * set's mark, the priority class and the weight, in the counter's field, which earlier versions never read.
 */
import t from 'tap'
import { memberName, parseMember, unitEntries, weightOf } from '../../lib/stores/store'

t.test('a name round-trips its parts; defaults leave the counter field alone', async t => {
  t.equal(memberName('abc', 35, 3, 24_000), 'abc:z:3:24000')
  t.same(parseMember('abc:z:3:24000'), { instance: 'abc', max: 3, claimMs: 24_000, priority: 0, weight: 1, set: false })
  t.equal(memberName('abc', 35, 8, 24_000, 2, 4), 'abc:z.p2.w4:8:24000')
  t.same(parseMember('abc:z.p2.w4:8:24000'), { instance: 'abc', max: 8, claimMs: 24_000, priority: 2, weight: 4, set: false })
  t.same(parseMember(memberName('abc', 1, 8, 100, 0, 5)), { instance: 'abc', max: 8, claimMs: 100, priority: 0, weight: 5, set: false })
  t.equal(memberName('abc', 35, 8, 24_000, 2, 4, true), 'abc:z.s.p2.w4:8:24000', 'a set\'s member is marked first')
  t.same(parseMember('abc:z.s.p2.w4:8:24000'), { instance: 'abc', max: 8, claimMs: 24_000, priority: 2, weight: 4, set: true })
  t.same(parseMember('nobody'), { instance: '', max: 0, claimMs: 0, priority: 0, weight: 1, set: false }, 'another form: max 0, never granted')
})

t.test('a slot of weight k is k holder entries', async t => {
  t.same(unitEntries('m', 1), ['m'])
  t.same(unitEntries('m', 3), ['m', 'm#2', 'm#3'])
  t.equal(weightOf('abc:z:3:24000'), 1)
  t.equal(weightOf('abc:z.w3:3:24000'), 3)
})
