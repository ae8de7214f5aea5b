/**
 * The official SDKs (@anthropic-ai/sdk, openai) against routes that imitate their APIs and
 * take slots with the matching protocol (test/fixtures/sdk-app.ts), through each SDK's
 * high-level stream helper and raw `create({ stream: true })` iteration:
 * - a request that waits with pings, then streams: the SDK returns the exact text;
 * - a wait that fails after the stream was committed: the SDK reports the product's message
 *   within a second (an APIError; for Responses a `failed` response, as the API reports one);
 * - a request that gets its slot at once;
 * - JSON 429 (wait timeout, queue full) and 503 (store failing): the SDK's own error classes,
 *   carrying the product's message, the API's error type/code, and a readable Retry-After.
 */
import t from 'tap'
import Anthropic from '@anthropic-ai/sdk'
import OpenAI from 'openai'
import { MemoryStore } from '../lib/stores/memory-store'
import { failingStore } from './helpers/wrapped-store'
import type fastifySlots from '../lib'
import { eventually } from './helpers/app'
import { buildSdkApp, TEXT, type SdkApp } from './fixtures/sdk-app'

type Test = tap.Test

const PING_MS = 40
const MODEL = 'model-test'
const PROMPT = 'Say hello.'

async function sdkApp (t: Test, slots: fastifySlots.FastifySlotsOptions = {}): Promise<SdkApp> {
  const fx = await buildSdkApp({ store: new MemoryStore(), ping: { intervalMs: PING_MS }, backoff: { initialMs: 20, maxMs: 50 }, ...slots })
  t.teardown(() => fx.app.close())
  return fx
}

let users = 0
/** A fresh subject per scenario. */
const newUser = (): string => `u${++users}`

interface Clients { anthropic: Anthropic, openai: OpenAI }

function clients (fx: SdkApp, user: string, headers: Record<string, string> = {}): Clients {
  const defaultHeaders = { 'x-user-id': user, ...headers }
  return {
    anthropic: new Anthropic({ apiKey: 'test-key', baseURL: fx.url, maxRetries: 0, defaultHeaders }),
    openai: new OpenAI({ apiKey: 'test-key', baseURL: `${fx.url}/v1`, maxRetries: 0, defaultHeaders })
  }
}

/** What a streaming call produced: the text, or the failure the SDK reported. */
type Outcome = { text: string } | { failure: { message: string, type?: unknown, code?: unknown, status?: unknown, kind: string } }

interface Way {
  name: string
  run: (c: Clients) => Promise<Outcome>
}

/** An SDK error as the outcome of a call. */
function failed (err: unknown): Outcome {
  const e = err as { message: string, type?: unknown, code?: unknown, status?: unknown, constructor: { name: string } }
  return { failure: { message: e.message, type: e.type, code: e.code, status: e.status, kind: e.constructor.name } }
}

async function outcome (call: () => Promise<string>): Promise<Outcome> {
  try {
    return { text: await call() }
  } catch (err) {
    return failed(err)
  }
}

const messages = { model: MODEL, max_tokens: 64, messages: [{ role: 'user' as const, content: PROMPT }] }
const chat = { model: MODEL, messages: [{ role: 'user' as const, content: PROMPT }] }
const responses = { model: MODEL, input: PROMPT }

/** The Responses API reports a response that failed as a `failed` response, not as an error. */
function responseFailure (response: { status?: string | null, error?: { code: string, message: string } | null }): Outcome | undefined {
  if (response.status !== 'failed') return undefined
  return { failure: { message: response.error?.message ?? '', code: response.error?.code, kind: 'response.failed' } }
}

const PROTOCOLS: Array<{ protocol: fastifySlots.ProtocolName, ways: Way[] }> = [
  {
    protocol: 'anthropic',
    ways: [
      {
        name: 'messages.stream().finalMessage()',
        run: c => outcome(async () => {
          const message = await c.anthropic.messages.stream(messages).finalMessage()
          return message.content.map(block => block.type === 'text' ? block.text : '').join('')
        })
      },
      {
        name: 'messages.create({ stream: true })',
        run: c => outcome(async () => {
          let text = ''
          for await (const event of await c.anthropic.messages.create({ ...messages, stream: true })) {
            if (event.type === 'content_block_delta' && event.delta.type === 'text_delta') text += event.delta.text
          }
          return text
        })
      }
    ]
  },
  {
    protocol: 'openai-chat',
    ways: [
      {
        name: 'chat.completions.stream().finalChatCompletion()',
        run: c => outcome(async () => {
          const completion = await c.openai.chat.completions.stream(chat).finalChatCompletion()
          return completion.choices[0].message.content ?? ''
        })
      },
      {
        name: 'chat.completions.create({ stream: true })',
        run: c => outcome(async () => {
          let text = ''
          for await (const chunk of await c.openai.chat.completions.create({ ...chat, stream: true })) {
            text += chunk.choices[0]?.delta?.content ?? ''
          }
          return text
        })
      }
    ]
  },
  {
    protocol: 'openai-responses',
    ways: [
      {
        name: 'responses.stream().finalResponse()',
        run: async c => {
          try {
            const response = await c.openai.responses.stream(responses).finalResponse()
            return responseFailure(response) ?? { text: response.output_text }
          } catch (err) {
            return failed(err)
          }
        }
      },
      {
        name: 'responses.create({ stream: true })',
        run: async c => {
          try {
            let text = ''
            const types: string[] = []
            for await (const event of await c.openai.responses.create({ ...responses, stream: true })) {
              types.push(event.type)
              if (event.type === 'response.output_text.delta') text += event.delta
              if (event.type === 'response.failed') {
                if (types[0] !== 'response.created') throw new Error(`response.failed came after ${types.join(', ')}`)
                return responseFailure(event.response)!
              }
            }
            return { text }
          } catch (err) {
            return failed(err)
          }
        }
      }
    ]
  }
]

/** The non-streaming calls, for the JSON errors. */
const nonStreaming: Record<fastifySlots.ProtocolName, ((c: Clients) => Promise<unknown>) | undefined> = {
  generic: undefined,
  anthropic: c => c.anthropic.messages.create(messages),
  'openai-chat': c => c.openai.chat.completions.create(chat),
  'openai-responses': c => c.openai.responses.create(responses)
}

/** The error the call rejects with (fails the test when it resolves). */
async function rejection (t: Test, call: Promise<unknown>): Promise<Record<string, unknown> & { headers: Headers, status: number, message: string }> {
  try {
    await call
  } catch (err) {
    return err as Record<string, unknown> & { headers: Headers, status: number, message: string }
  }
  t.fail('the call succeeded')
  return { headers: new Headers(), status: 0, message: '' }
}

for (const { protocol, ways } of PROTOCOLS) {
  t.test(protocol, async t => {
    for (const way of ways) {
      t.test(`${way.name}: waits with pings behind a first request, then streams the exact text`, async t => {
        const fx = await sdkApp(t)
        const user = newUser()
        // The first request takes the only slot at once and holds it until released.
        const first = way.run(clients(fx, user, { 'x-hold': user }))
        await eventually(async () => (await fx.app.slots.usage('user', [user]))[0].held === 1)
        const second = way.run(clients(fx, user))
        await eventually(() => (fx.pings.get(user) ?? 0) >= 3)
        t.equal((await fx.app.slots.usage('user', [user]))[0].waiting, 1, 'the second request waits')
        fx.release(user)
        t.same(await first, { text: TEXT }, 'the first request streams')
        t.same(await second, { text: TEXT }, 'the waiting request streams after its pings')
        t.ok(fx.pings.get(user)! >= 3, `${fx.pings.get(user)} pings reached the SDK without breaking it`)
      })

      t.test(`${way.name}: a wait that fails after the stream started surfaces the product's message`, async t => {
        const maxWaitMs = 300
        const fx = await sdkApp(t, { maxWaitMs })
        const user = newUser()
        const held = await fx.app.slots.acquire('user', user, 1)
        t.teardown(() => held.release())
        const started = Date.now()
        const result = await way.run(clients(fx, user))
        const elapsed = Date.now() - started
        t.ok((fx.pings.get(user) ?? 0) >= 2, `the stream was committed and pinged (${fx.pings.get(user)} pings)`)
        t.ok(elapsed >= maxWaitMs && elapsed < maxWaitMs + 1000, `reported within a second of the failure (${elapsed} ms)`)
        const message = `concurrency limit reached for user: no slot freed within ${maxWaitMs} ms`
        if (!('failure' in result)) return t.fail(`the SDK returned ${JSON.stringify(result)}`)
        const { failure } = result
        t.match(failure.message, message, `the SDK's error carries the message: ${failure.message}`)
        if (protocol === 'anthropic') {
          t.equal(failure.kind, 'APIError')
          t.equal(failure.type, 'rate_limit_error', 'the Anthropic error type')
        } else if (protocol === 'openai-chat') {
          t.equal(failure.kind, 'APIError')
          t.equal(failure.code, 'rate_limit_exceeded')
          t.equal(failure.type, 'rate_limit_error')
        } else {
          t.equal(failure.kind, 'response.failed', 'a failed response, after response.created')
          t.equal(failure.code, 'rate_limit_exceeded')
          t.equal(failure.message, message)
        }
      })

      t.test(`${way.name}: a free slot is taken at once, without pings`, async t => {
        const fx = await sdkApp(t)
        const user = newUser()
        const started = Date.now()
        t.same(await way.run(clients(fx, user)), { text: TEXT })
        t.ok(Date.now() - started < PING_MS * 5, 'answered at once')
        t.equal(fx.pings.get(user), undefined, 'no ping')
        await eventually(async () => (await fx.app.slots.usage('user', [user]))[0].held === 0)
      })
    }

    const create = nonStreaming[protocol]!
    t.test('non-streaming, free: the exact text', async t => {
      const fx = await sdkApp(t)
      const result = await create(clients(fx, newUser())) as Record<string, unknown>
      const text = protocol === 'anthropic'
        ? (result as unknown as Anthropic.Message).content.map(b => b.type === 'text' ? b.text : '').join('')
        : protocol === 'openai-chat'
          ? (result as unknown as OpenAI.ChatCompletion).choices[0].message.content
          : (result as unknown as OpenAI.Responses.Response).output_text
      t.equal(text, TEXT)
    })

    t.test('429 as JSON: the SDK\'s RateLimitError with the message, type, code and Retry-After', async t => {
      const fx = await sdkApp(t, { maxWaitMs: 0 })
      const user = newUser()
      const held = await fx.app.slots.acquire('user', user, 1)
      t.teardown(() => held.release())
      const message = 'concurrency limit reached for user: no slot freed within 0 ms'
      const c = clients(fx, user)
      const err = await rejection(t, create(c))
      if (protocol === 'anthropic') {
        t.ok(err instanceof Anthropic.RateLimitError, `an Anthropic RateLimitError (${err.constructor.name})`)
        t.equal(err.type, 'rate_limit_error')
        t.same(err.error, { type: 'error', error: { type: 'rate_limit_error', message } })
      } else {
        t.ok(err instanceof OpenAI.RateLimitError, `an OpenAI RateLimitError (${err.constructor.name})`)
        t.equal(err.code, 'rate_limit_exceeded')
        t.equal(err.type, 'rate_limit_error')
        t.equal(err.param, null)
        t.same(err.error, { message, type: 'rate_limit_error', param: null, code: 'rate_limit_exceeded' })
      }
      t.equal(err.status, 429)
      t.match(err.message, message, `the SDK's message: ${err.message}`)
      t.equal(err.headers.get('retry-after'), '1', 'Retry-After (backoff.maxMs 50 ms: 1 s) is readable from the error')
    })

    t.test('429 before a stream was committed (queue full): the stream helper rejects with RateLimitError', async t => {
      const fx = await sdkApp(t, { maxWaiters: 0 })
      const user = newUser()
      const held = await fx.app.slots.acquire('user', user, 1)
      t.teardown(() => held.release())
      for (const way of ways) {
        const result = await way.run(clients(fx, user))
        t.match(result, { failure: { kind: 'RateLimitError', status: 429, message: /concurrency limit reached for user, and too many requests are already waiting/ } }, way.name)
      }
      t.equal(fx.pings.get(user), undefined, 'nothing was streamed')
    })

    t.test('503 as JSON (store failing): the SDK\'s server error with the message and type', async t => {
      const failing = failingStore('store exploded')
      const fx = await sdkApp(t, { store: failing })
      const err = await rejection(t, create(clients(fx, newUser())))
      t.equal(err.status, 503)
      t.match(err.message, /store exploded/, `the SDK's message: ${err.message}`)
      if (protocol === 'anthropic') {
        t.ok(err instanceof Anthropic.InternalServerError, `an Anthropic InternalServerError (${err.constructor.name})`)
        t.ok(err instanceof Anthropic.ServiceUnavailableError, 'the SDK\'s class for 503')
        t.equal(err.type, 'overloaded_error')
      } else {
        t.ok(err instanceof OpenAI.InternalServerError, `an OpenAI InternalServerError (${err.constructor.name})`)
        t.equal(err.code, 'server_is_overloaded')
        t.equal(err.type, 'server_error')
      }
      t.equal(err.headers.get('retry-after'), null, 'no Retry-After on a 503')
    })
  })
}
