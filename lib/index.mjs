// The ESM entry of fastify-slots (package.json "exports" → "import"). The plugin is built as
// CommonJS (dist/index.js, `module.exports = fastifySlots` with its names attached by
// Object.assign), which Node's ESM loader can only see as `default`. This wrapper imports that
// one build and re-exports each name, so ESM and CommonJS consumers share the same instances.
// `npm run build` copies it to dist/; test/package/consumers.ts checks that its names match the
// CommonJS exports.
import fastifySlots from './index.js'

export default fastifySlots
export { fastifySlots }
export const {
  SlotError,
  MemoryStore,
  RedisStore,
  AcquireOutcome,
  ReleaseOutcome,
  memberName,
  parseMember,
  pingFrames,
  protocols
} = fastifySlots
