/** A store that delegates to another, with some operations replaced: how tests bend a real store. */
import type { SlotStore } from '../../lib/stores/store'

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
