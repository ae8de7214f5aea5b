/**
 * Lua `countLive(holders, tickets)`: the live entries of each by Redis time, without writing;
 * what a scheduler reads to pick the least loaded subject. Returns { held, waiting }.
 */
export const COUNT_LIVE = `
local function countLive (holders, tickets)
  return { redis.call('ZCOUNT', holders, '(' .. now, '+inf'), redis.call('ZCOUNT', tickets, '(' .. now, '+inf') }
end
`
