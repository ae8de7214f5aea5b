/** A store that delegates to another, with some operations replaced: how tests bend a real store. */
import { ReleaseOutcome, type SlotStore } from '../../lib/stores/store'

export function wrapStore (inner: SlotStore, overrides: Partial<SlotStore> = {}): SlotStore {
  return {
    tryAcquire: args => inner.tryAcquire(args),
    poll: args => inner.poll(args),
    release: args => inner.release(args),
    abandon: args => inner.abandon(args),
    renew: (refs, leaseMs) => inner.renew(refs, leaseMs),
    refreshTickets: (refs, ttlMs) => inner.refreshTickets(refs, ttlMs),
    usage: inner.usage === undefined ? undefined : tags => inner.usage!(tags),
    onGrant: inner.onGrant === undefined ? undefined : (instanceId, listener) => inner.onGrant!(instanceId, listener),
    close: () => inner.close?.(),
    ...overrides
  }
}

/** A store that is down: every try and poll rejects with `message`; the rest do nothing. */
export function failingStore (message = 'store exploded'): SlotStore {
  const fail = async (): Promise<never> => { throw new Error(message) }
  return {
    tryAcquire: fail,
    poll: fail,
    release: async () => ReleaseOutcome.Gone,
    abandon: async () => {},
    renew: async (refs) => refs.map(() => false),
    refreshTickets: async (refs) => refs.map(() => false)
  }
}
