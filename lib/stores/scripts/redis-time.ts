/** Lua prelude: `now` in ms and `nowUs` in µs from the Redis clock (never the client's). */
export const REDIS_NOW = `
local t = redis.call('TIME')
local nowUs = tonumber(t[1]) * 1000000 + tonumber(t[2])
local now = math.floor(nowUs / 1000)
`

/** Lua helper: make a key live at least `ms` more (its TTL covers its longest-lived entry). */
export const KEEP_ALIVE = `
local function keepAlive (key, ms)
  if redis.call('PTTL', key) < ms then redis.call('PEXPIRE', key, ms) end
end
`
