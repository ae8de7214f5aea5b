/**
 * A Map for entries that come and go with every operation (the acquisitions in flight, the
 * slots held, a busy subject's holders in the memory store), which keeps V8 from promoting
 * them all.
 *
 * A Map replaces its hash table whenever the entries it appended, deleted ones included, fill
 * it (and when it shrinks), so a Map that churns makes a new table every few dozen additions.
 * V8 allocates that table in old space when the table it replaces is there, and the replaced
 * table still points at every entry it held. Once a Map's table has been promoted (it
 * outlived two scavenges, or a mark-compact: a Map made at startup, or one idle for a while),
 * every later table of it is born in old space, and each of them, dead or not, keeps its
 * entries and all they reach alive through every scavenge until the next mark-compact. Under
 * load that promoted most per-operation objects and ran a mark-compact every ~100 ms; and
 * that survival, even for a few milliseconds, can make V8 pretenure the object literals of
 * every operation (born in old space from then on).
 *
 * So after REBUILD_AFTER calls of set (or as many as it has entries, if more) the entries
 * move to a new Map, which V8 allocates young, and whose tables stay young while it churns:
 * a promoted table lasts a few dozen operations, not until the next mark-compact. That
 * copies at most one entry per set. An iterator goes through the Map of the moment: deleting
 * while iterating is fine, adding is not (iterate a copy).
 */
const REBUILD_AFTER = 64

export class ChurnMap<K, V> {
  private map = new Map<K, V>()
  /** Calls of set since the entries last moved to a new Map. */
  private added = 0

  get size (): number {
    return this.map.size
  }

  get (key: K): V | undefined {
    return this.map.get(key)
  }

  has (key: K): boolean {
    return this.map.has(key)
  }

  set (key: K, value: V): void {
    if (++this.added > REBUILD_AFTER && this.added > this.map.size) {
      this.map = new Map(this.map)
      this.added = 0
    }
    this.map.set(key, value)
  }

  delete (key: K): boolean {
    return this.map.delete(key)
  }

  keys (): IterableIterator<K> {
    return this.map.keys()
  }

  values (): IterableIterator<V> {
    return this.map.values()
  }

  [Symbol.iterator] (): IterableIterator<[K, V]> {
    return this.map.entries()
  }
}
