// devstack's Realtime through the official @supabase/supabase-js, as a JavaScript tester would use it.
//
// Run with `node --test` by tests/integration/realtime/test_supabase_js.py, which starts the stack, makes
// two users (alice and bob) and a chat of theirs, and passes their tokens in DEVSTACK_JS_CONFIG. The client
// speaks Phoenix's V2 serializer by default (vsn=2.0.0): array frames, and binary frames for broadcasts.

import assert from 'node:assert/strict'
import { after, test } from 'node:test'

import { createClient } from '@supabase/supabase-js'
import ws from 'ws'

const config = JSON.parse(process.env.DEVSTACK_JS_CONFIG ?? '{}')
const TIMEOUT = 10_000
const clients = []

// Node 20 has no WebSocket of its own: realtime-js takes the `ws` package as its transport.
function client(user, realtime = {}) {
  const supabase = createClient(config.apiUrl, config.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    global: user ? { headers: { Authorization: `Bearer ${user.token}` } } : {},
    realtime: { transport: ws, ...realtime },
  })
  if (user) supabase.realtime.setAuth(user.token)
  clients.push(supabase)
  return supabase
}

after(async () => {
  for (const supabase of clients) {
    await supabase.removeAllChannels()
    supabase.realtime.disconnect()
  }
})

function within(promise, what, ms = TIMEOUT) {
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms)
  })
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer))
}

// Resolves with the subscribe status once it is final (SUBSCRIBED, or an error).
function subscribed(channel) {
  return within(
    new Promise((resolve, reject) => {
      channel.subscribe((status, error) => {
        if (status === 'SUBSCRIBED') resolve(status)
        else if (status !== 'CLOSED') reject(new Error(`${status}: ${error?.message ?? error}`))
      })
    }),
    `${channel.topic} to subscribe`,
  )
}

// Collects events; `next(predicate)` waits for the first (new or past) one that matches.
class Inbox {
  constructor() {
    this.items = []
    this.waiters = []
  }
  push = (item) => {
    this.items.push(item)
    for (const waiter of [...this.waiters]) this.#offer(waiter)
  }
  next(predicate = () => true, what = 'an event') {
    return within(
      new Promise((resolve) => {
        const waiter = { predicate, resolve, seen: 0 }
        this.waiters.push(waiter)
        this.#offer(waiter)
      }),
      what,
    )
  }
  #offer(waiter) {
    for (; waiter.seen < this.items.length; waiter.seen++) {
      const item = this.items[waiter.seen]
      if (waiter.predicate(item)) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        waiter.resolve(item)
        return
      }
    }
  }
}

test('the client speaks the V2 serializer by default', () => {
  assert.equal(client(config.bob).realtime.vsn, '2.0.0')
})

test('postgres_changes: a member gets an insert made over REST, filtered, with RLS', async () => {
  const bob = client(config.bob)
  const inbox = new Inbox()
  const channel = bob
    .channel(`js-changes-${Date.now()}`)
    .on(
      'postgres_changes',
      { event: 'INSERT', schema: 'public', table: 'chat_messages', filter: `session_id=eq.${config.chat}` },
      inbox.push,
    )
  await subscribed(channel)
  const content = `from js ${Date.now()}`
  const alice = client(config.alice)
  const { error } = await alice.from('chat_messages').insert({ session_id: config.chat, content })
  assert.equal(error, null)
  const change = await inbox.next((item) => item.new.content === content, 'the insert')
  assert.equal(change.eventType, 'INSERT')
  assert.equal(change.schema, 'public')
  assert.equal(change.table, 'chat_messages')
  assert.equal(change.new.session_id, config.chat)
  assert.equal(change.new.sender_id, config.alice.id)
  assert.equal(typeof change.new.seq, 'number') // converted by the client from the column types
  assert.match(change.commit_timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/)
})

test('postgres_changes: a stranger gets nothing, shown by a change it may see arriving first', async () => {
  const stranger = client(config.carol)
  const inbox = new Inbox()
  const channel = stranger
    .channel(`js-stranger-${Date.now()}`)
    .on('postgres_changes', { event: 'INSERT', schema: 'public', table: 'chat_messages' }, inbox.push)
  await subscribed(channel)
  const alice = client(config.alice)
  const secret = `secret ${Date.now()}`
  assert.equal((await alice.from('chat_messages').insert({ session_id: config.chat, content: secret })).error, null)
  const visible = `for carol ${Date.now()}`
  assert.equal(
    (await alice.from('chat_messages').insert({ session_id: config.carolChat, content: visible })).error,
    null,
  )
  await inbox.next((item) => item.new.content === visible, 'the change carol may see')
  assert.deepEqual(
    inbox.items.map((item) => item.new.content),
    [visible],
  )
})

test('broadcast: self and ack between V2 clients, and to a V1 client', async () => {
  const topic = `js-room-${Date.now()}`
  const sender = client(config.alice).channel(topic, { config: { broadcast: { self: true, ack: true } } })
  const v2 = client(config.bob).channel(topic)
  const v1 = client(config.bob, { vsn: '1.0.0' }).channel(topic)
  const got = { sender: new Inbox(), v2: new Inbox(), v1: new Inbox() }
  sender.on('broadcast', { event: 'ping' }, got.sender.push)
  v2.on('broadcast', { event: 'ping' }, got.v2.push)
  v1.on('broadcast', { event: 'ping' }, got.v1.push)
  for (const channel of [sender, v2, v1]) await subscribed(channel)
  assert.equal(v1.socket.vsn, '1.0.0')

  // The client sends a broadcast as a binary user broadcast push; with ack the server replies.
  assert.equal(await sender.send({ type: 'broadcast', event: 'ping', payload: { n: 1, text: 'ünïcode ✓' } }), 'ok')
  for (const [name, inbox] of Object.entries(got)) {
    const message = await inbox.next(() => true, `the broadcast at ${name}`)
    assert.equal(message.event, 'ping')
    assert.deepEqual(message.payload, { n: 1, text: 'ünïcode ✓' }, name)
  }
  // A V1 client's broadcast (JSON) reaches the V2 clients as a text frame.
  assert.equal(await v1.send({ type: 'broadcast', event: 'ping', payload: { n: 2 } }), 'ok')
  assert.deepEqual((await got.v2.next((m) => m.payload.n === 2, 'the V1 broadcast')).payload, { n: 2 })
  assert.deepEqual((await got.sender.next((m) => m.payload.n === 2, 'the V1 broadcast')).payload, { n: 2 })
})

test('broadcast: a binary payload reaches the other V2 clients as bytes', async () => {
  const topic = `js-binary-${Date.now()}`
  const sender = client(config.alice).channel(topic, { config: { broadcast: { ack: true } } })
  const receiver = client(config.bob).channel(topic)
  const inbox = new Inbox()
  receiver.on('broadcast', { event: 'blob' }, inbox.push)
  await subscribed(sender)
  await subscribed(receiver)
  const bytes = new Uint8Array([0, 1, 2, 250, 255])
  assert.equal(await sender.send({ type: 'broadcast', event: 'blob', payload: bytes.buffer }), 'ok')
  const message = await inbox.next(() => true, 'the binary broadcast')
  assert.deepEqual(new Uint8Array(message.payload), bytes)
})

test('broadcast: from the HTTP API to a V2 client', async () => {
  const topic = `js-http-${Date.now()}`
  const listener = client(config.bob).channel(topic)
  const inbox = new Inbox()
  listener.on('broadcast', { event: 'news' }, inbox.push)
  await subscribed(listener)
  const response = await fetch(`${config.apiUrl}/realtime/v1/api/broadcast`, {
    method: 'POST',
    headers: { apikey: config.anonKey, 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ topic, event: 'news', payload: { headline: 'hello' } }] }),
  })
  assert.equal(response.status, 202)
  assert.deepEqual((await inbox.next(() => true, 'the HTTP broadcast')).payload, { headline: 'hello' })
})

test('presence: track, sync and leave between two clients', async () => {
  const topic = `js-presence-${Date.now()}`
  const alice = client(config.alice).channel(topic, { config: { presence: { key: 'alice' } } })
  const bob = client(config.bob).channel(topic, { config: { presence: { key: 'bob' } } })
  const joins = new Inbox()
  const leaves = new Inbox()
  bob.on('presence', { event: 'join' }, joins.push).on('presence', { event: 'leave' }, leaves.push)
  await subscribed(alice)
  await subscribed(bob)
  assert.equal(await alice.track({ status: 'online' }), 'ok')
  const joined = await joins.next((event) => event.key === 'alice', "alice's join")
  assert.equal(joined.newPresences[0].status, 'online')
  assert.ok(joined.newPresences[0].presence_ref)
  assert.deepEqual(Object.keys(bob.presenceState()), ['alice'])
  assert.equal(await alice.untrack(), 'ok')
  await leaves.next((event) => event.key === 'alice', "alice's leave")
  assert.deepEqual(bob.presenceState(), {})
})
