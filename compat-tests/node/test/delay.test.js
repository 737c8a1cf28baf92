'use strict'
// Sluice-only: delayed delivery (mq.delay.ms / mq.deliver.at) with kafkajs.
//
// A delayed record is acknowledged at once at an offset that stays a gap (a batch whose
// records are all delayed becomes an empty batch, as after compaction); when due the
// broker appends a copy to the same partition at a new offset, without the delay headers
// and with mq.delay.origin.offset = the acknowledged offset. Bad delay values fail the
// whole batch with INVALID_RECORD.
//
// Reading: kafkajs only reads through a consumer group. Each reader joins its group
// before the records it must see early are produced, so that the group's start-up time
// does not eat into the delays.

const assert = require('node:assert/strict')
const h = require('../lib/harness')

h.setup()

const skip = process.env.KAFKA_BOOTSTRAP
  ? 'Sluice-only (delayed delivery is a Sluice extension); KAFKA_BOOTSTRAP is set'
  : false

const DELAY_MS = 'mq.delay.ms'
const DELIVER_AT = 'mq.deliver.at'
const ORIGIN = 'mq.delay.origin.offset'

/** The value of header k as a string (the last one if repeated), or undefined. */
function header(m, k) {
  let v = m.headers && m.headers[k]
  if (Array.isArray(v)) v = v[v.length - 1]
  return v === undefined || v === null ? undefined : v.toString()
}

function describe(got) {
  return `[${got.map(x => `${x.m.offset}:${x.m.key}`).join(' ')}]`
}

/**
 * startReader joins a fresh group reading topic from the beginning and resolves once it
 * joined. got: [{m, at}] with the wall clock time eachBatch saw each message; batches:
 * what eachBatch was given; fetches(): how many fetches the consumer completed.
 */
async function startReader(k, topic) {
  const consumer = k.consumer({ groupId: h.uniqueName('g', 'delay'), maxWaitTimeInMs: 100, heartbeatInterval: 500 })
  const r = { consumer, got: [], batches: [], nFetches: 0, fetches: () => r.nFetches }
  consumer.on(consumer.events.FETCH, () => r.nFetches++)
  const joined = new Promise(resolve => consumer.on(consumer.events.GROUP_JOIN, resolve))
  const t0 = Date.now()
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachBatch: async ({ batch }) => {
      const at = Date.now()
      r.batches.push(`${batch.firstOffset()}..${batch.lastOffset()}(${batch.messages.length})`)
      for (const m of batch.messages) r.got.push({ m, at })
    },
  })
  let timer
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`group of ${topic} not joined within 30 s`)), 30000)
  })
  try {
    await Promise.race([joined, timeout])
  } finally {
    clearTimeout(timer)
  }
  r.joinMs = Date.now() - t0
  return r
}

async function endOffset(admin, topic) {
  const offs = await admin.fetchTopicOffsets(topic)
  return Number(offs.find(o => o.partition === 0).high)
}

/** A client, an admin and a producer around `fn`, with a fresh topic; readers `fn` pushes
 * to `readers` are disconnected after it. */
async function withClients(label, fn) {
  const k = h.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts())
  await producer.connect()
  const readers = []
  try {
    const topic = await h.createTopic(admin, { label })
    await fn({ k, admin, producer, topic, readers })
  } finally {
    for (const r of readers) await r.consumer.disconnect()
    await producer.disconnect()
    await admin.disconnect()
  }
}

h.test('a batch of 20 with the odd records delayed: gaps first, then the copies at new offsets', { skip }, async () => {
  const n = 20
  const delay = 1500
  await withClients('delay-mixed', async ({ k, admin, producer, topic, readers }) => {
    const rd = await startReader(k, topic)
    readers.push(rd)

    const messages = []
    for (let i = 0; i < n; i++) {
      const headers = { trace: String(i) }
      if (i % 2 === 1) {
        headers[DELAY_MS] = String(delay)
        headers.after = 'delay'
      }
      messages.push({ key: `k${i}`, value: `v${i}`, partition: 0, timestamp: String(h.BASE_TS + i), headers })
    }
    const sentAt = Date.now()
    const res = await producer.send({ topic, messages })
    assert.equal(res.length, 1, 'one partition answered')
    assert.equal(res[0].errorCode, 0)
    const base = Number(res[0].baseOffset)
    assert.equal(base, 0, 'base offset of the batch')
    const acked = i => base + i // one batch: record i at base + i
    assert.equal(await endOffset(admin, topic), n, 'end offset counts the gaps of the delayed records')

    // Before they are due: the immediate records only, at their acknowledged offsets.
    await h.waitFor('the 10 immediate records', 10000, () => rd.got.length >= n / 2, () => describe(rd.got))
    await h.sleep(300)
    const earlyMs = Date.now() - sentAt
    const early = rd.got.slice()
    for (const x of early.slice(n / 2)) {
      assert.ok(x.at - sentAt >= delay,
        `delayed record ${x.m.key} at offset ${x.m.offset} read ${x.at - sentAt} ms after the send, before its ${delay} ms delay`)
    }
    const want = []
    for (let i = 0; i < n; i += 2) want.push(`${acked(i)}:k${i}`)
    assert.deepEqual(early.slice(0, n / 2).map(x => `${x.m.offset}:${x.m.key}`), want,
      'only the immediate records, at their acknowledged offsets')
    for (const { m } of early.slice(0, n / 2)) {
      const i = Number(m.key.toString().slice(1))
      assert.equal(m.value.toString(), `v${i}`)
      assert.equal(m.timestamp, String(h.BASE_TS + i))
      assert.equal(header(m, 'trace'), String(i))
      assert.equal(header(m, ORIGIN), undefined, 'an immediate record has no origin offset')
    }
    console.log(`delay: group joined in ${rd.joinMs} ms; before the delay (${earlyMs} ms after the send) ` +
      `${early.length} records; eachBatch batches ${rd.batches.join(' ')}; ${rd.fetches()} fetches`)

    // When due: each delayed record once, at a new offset.
    await h.waitFor('the 10 delayed records', 10000, () => rd.got.length >= n, () => describe(rd.got))
    await h.sleep(500) // no duplicates
    assert.equal(rd.got.length, n, `each record once: ${describe(rd.got)}`)
    const late = rd.got.slice(n / 2)
    const seen = new Set()
    let prev = -1
    let lateness = 0
    for (const { m, at } of late) {
      const key = m.key.toString()
      const i = Number(key.slice(1))
      const off = Number(m.offset)
      assert.ok(i % 2 === 1 && !seen.has(key), `unexpected or repeated record ${key} at ${off}`)
      seen.add(key)
      assert.ok(off >= n && off > prev, `${key} at offset ${off} (previous ${prev}): want a new increasing offset >= ${n}`)
      prev = off
      assert.ok(at - sentAt >= delay, `${key} read ${at - sentAt} ms after the send, before its ${delay} ms delay`)
      lateness = Math.max(lateness, at - sentAt - delay)
      assert.equal(m.value.toString(), `v${i}`, `value of ${key}`)
      assert.equal(m.timestamp, String(h.BASE_TS + i), `timestamp of ${key}`)
      assert.equal(header(m, ORIGIN), String(acked(i)), `${ORIGIN} of ${key}`)
      assert.equal(header(m, DELAY_MS), undefined, `${DELAY_MS} removed from ${key}`)
      assert.equal(header(m, 'trace'), String(i), `trace header of ${key}`)
      assert.equal(header(m, 'after'), 'delay', `header after the delay header kept on ${key}`)
      assert.deepEqual(Object.keys(m.headers).sort(), ['after', ORIGIN, 'trace'].sort(), `headers of ${key}`)
    }
    assert.equal(await endOffset(admin, topic), n + n / 2, 'end offset after delivery')
    console.log(`delay: delayed records at ${describe(late)}, at most ${lateness} ms after due; ` +
      `eachBatch batches ${rd.batches.join(' ')}`)

    // A fresh group from the start reads all 20 once, past the gaps.
    const rd2 = await startReader(k, topic)
    readers.push(rd2)
    await h.waitFor('all 20 records', 10000, () => rd2.got.length >= n, () => describe(rd2.got))
    await h.sleep(300)
    const keys = rd2.got.map(x => x.m.key.toString())
    assert.equal(new Set(keys).size, n, `fresh reader: 20 distinct keys ${describe(rd2.got)}`)
    assert.equal(rd2.got.length, n, `fresh reader: each once ${describe(rd2.got)}`)
    console.log(`delay: fresh reader (joined in ${rd2.joinMs} ms) eachBatch batches ${rd2.batches.join(' ')}`)
  })
})

h.test('an all-delayed (empty) batch, then an immediate record: read the immediate one first', { skip }, async () => {
  const delay = 1000
  await withClients('delay-empty', async ({ k, admin, producer, topic, readers }) => {
    const rd = await startReader(k, topic)
    readers.push(rd)

    // Five delayed records in one batch; the last by mq.deliver.at, which wins over its
    // 10-minute mq.delay.ms.
    const sentAt = Date.now()
    const delayed = []
    for (let i = 0; i < 5; i++) {
      delayed.push({ key: `d${i}`, value: `delayed ${i}`, partition: 0, headers: { [DELAY_MS]: String(delay) } })
    }
    delayed[4].headers = { [DELAY_MS]: '600000', [DELIVER_AT]: String(sentAt + delay) }
    const r1 = await producer.send({ topic, messages: delayed })
    assert.equal(Number(r1[0].baseOffset), 0)

    // The reader sits on the empty batch 0..4 (the log holds nothing else yet). kafkajs
    // 2.2.4 does not step past a fetch whose only batch has no records (runner.js returns
    // on batch.isEmpty() without resolving an offset unless it saw raw records), so it
    // fetches offset 0 again. The broker does not count empty batches toward min_bytes:
    // such a fetch waits its max wait, as one that found nothing, instead of coming back
    // at once (it did, about 600 times in these 300 ms, before the broker changed).
    const f0 = rd.fetches()
    await h.sleep(300)
    const stuckFetches = rd.fetches() - f0
    assert.ok(stuckFetches <= 10, `${stuckFetches} fetches in 300 ms: the broker answers empty-only reads at once`)
    assert.deepEqual(rd.got, [], 'nothing to read while only the empty batch is in the log')
    assert.equal(await endOffset(admin, topic), 5, 'end offset past the gaps')

    const r2 = await producer.send({ topic, messages: [{ key: 'now', value: 'immediate', partition: 0 }] })
    const immOffset = Number(r2[0].baseOffset)
    assert.equal(immOffset, 5, 'immediate record after the 5 gaps')
    await h.waitFor('the immediate record', 10000, () => rd.got.length >= 1, () => describe(rd.got))
    const first = rd.got[0]
    console.log(`delay: group joined in ${rd.joinMs} ms; ${stuckFetches} fetches in 300 ms with only the empty ` +
      `batch in the log; first record ${first.m.key}@${first.m.offset} read ${first.at - sentAt} ms after the ` +
      `delayed send; eachBatch batches ${rd.batches.join(' ')}`)
    assert.equal(`${first.m.offset}:${first.m.key}`, `${immOffset}:now`, 'the immediate record comes first')
    assert.ok(first.at - sentAt < delay, `the immediate record read ${first.at - sentAt} ms after the send, ` +
      'when the delayed ones were due already')

    await h.waitFor('the 5 delayed records', 10000, () => rd.got.length >= 6, () => describe(rd.got))
    await h.sleep(300)
    assert.equal(rd.got.length, 6, `each record once: ${describe(rd.got)}`)
    const seen = new Set()
    for (const { m, at } of rd.got.slice(1)) {
      const key = m.key.toString()
      const i = Number(key.slice(1))
      assert.ok(key.startsWith('d') && !seen.has(key), `unexpected or repeated ${key}`)
      seen.add(key)
      assert.ok(Number(m.offset) > immOffset, `${key} at ${m.offset}: want a new offset after ${immOffset}`)
      assert.ok(at - sentAt >= delay, `${key} read ${at - sentAt} ms after the send, before its delay`)
      assert.equal(header(m, ORIGIN), String(i), `${ORIGIN} of ${key}`)
      assert.equal(header(m, DELAY_MS), undefined, `${DELAY_MS} removed from ${key}`)
      assert.equal(header(m, DELIVER_AT), undefined, `${DELIVER_AT} removed from ${key}`)
      assert.equal(m.value.toString(), `delayed ${i}`)
    }
    assert.equal(await endOffset(admin, topic), 11)
    console.log(`delay: delayed records at ${describe(rd.got.slice(1))}`)

    // A fresh group from the start: the empty batch, then 5..10.
    const rd2 = await startReader(k, topic)
    readers.push(rd2)
    await h.waitFor('6 records', 10000, () => rd2.got.length >= 6, () => describe(rd2.got))
    await h.sleep(300)
    assert.deepEqual(rd2.got.map(x => Number(x.m.offset)), [5, 6, 7, 8, 9, 10], `fresh reader ${describe(rd2.got)}`)
    console.log(`delay: fresh reader eachBatch batches ${rd2.batches.join(' ')}`)
  })
})

h.test('a bad delay value fails the whole batch with INVALID_RECORD and stores nothing', { skip }, async () => {
  await withClients('delay-bad', async ({ k, admin, producer, topic, readers }) => {
    await producer.send({ topic, messages: [{ value: 'before', partition: 0 }] })
    for (const [hk, hv] of [[DELAY_MS, 'abc'], [DELAY_MS, '-1'], [DELIVER_AT, 'soon']]) {
      const what = `${hk}=${hv}`
      const err = await h.expectKafkaError(producer.send({
        topic,
        messages: [
          { key: 'good', value: 'immediate', partition: 0 },
          { key: 'good-delayed', value: 'x', partition: 0, headers: { [DELAY_MS]: '300' } },
          { key: 'bad', value: 'x', partition: 0, headers: { [hk]: hv } },
        ],
      }), 'INVALID_RECORD', what)
      console.log(`delay: ${what} -> ${err.name}: ${err.message}`)
      assert.equal(await endOffset(admin, topic), 1, `${what}: end offset unchanged`)
    }
    // Nothing of the refused batches shows up later; the producer goes on.
    await h.sleep(700)
    const r = await producer.send({ topic, messages: [{ value: 'after', partition: 0 }] })
    assert.equal(Number(r[0].baseOffset), 1, 'the next record right after the first')
    const rd = await startReader(k, topic)
    readers.push(rd)
    await h.waitFor('2 records', 10000, () => rd.got.length >= 2, () => describe(rd.got))
    await h.sleep(300)
    assert.deepEqual(rd.got.map(x => `${x.m.offset}:${x.m.value}`), ['0:before', '1:after'])
  })
})
