/**
 * The batch script's operations, defined once: the TypeScript encoder (encodeOperation) and
 * the Lua dispatcher (built from this table in run-batch.ts) both follow it, and a test checks
 * that every Lua function takes exactly these arguments after its three keys.
 */
export const OPERATIONS = {
  tryAcquire: { code: 'a', args: ['member', 'max', 'lease', 'maxWaiters', 'ticketTtl', 'fair', 'ahead', 'precedence'] },
  poll: { code: 'p', args: ['member', 'max', 'lease', 'maxWaiters', 'ticketTtl', 'fair', 'ahead', 'precedence'] },
  release: { code: 'r', args: ['member', 'lease', 'check'] },
  abandon: { code: 'x', args: ['member', 'lease'] },
  renew: { code: 'h', args: ['member', 'ttl'] },
  refreshTicket: { code: 't', args: ['member', 'ttl'] },
  countLive: { code: 'c', args: ['step'] }
} as const

export type OperationName = keyof typeof OPERATIONS
type ArgsOf<N extends OperationName> = typeof OPERATIONS[N]['args'][number]
export type OperationArgs<N extends OperationName> = { readonly [A in ArgsOf<N>]: string | number }

/** The operation's code followed by its arguments in the table's order. */
export function encodeOperation<N extends OperationName> (name: N, args: OperationArgs<N>): Array<string | number> {
  const operation = OPERATIONS[name]
  const encoded: Array<string | number> = [operation.code]
  for (const arg of operation.args) encoded.push((args as Record<string, string | number>)[arg])
  return encoded
}

/** Lua: `local operations = { a = { tryAcquire, 7 }, ... }`. */
export function luaOperationTable (): string {
  const rows = Object.entries(OPERATIONS).map(([name, op]) => `  ${op.code} = { ${name}, ${op.args.length} }`)
  return `local operations = {\n${rows.join(',\n')}\n}\n`
}
