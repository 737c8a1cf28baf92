'use strict'
// kafkajs producer: acks, compression codecs, idempotence, round trips.

const assert = require('node:assert/strict')
const { CompressionTypes } = require('kafkajs')
const h = require('../lib/harness')

h.setup()

/**
 * verify checks consumed [{partition, message}] against seqs [from, to):
 * each exactly once, intact, offsets and seqs increasing per partition,
 * each key always in the same partition.
 */
function verify(topic, got, from, to, valueSize) {
  const seen = new Map()
  const byPart = new Map()
  const keyPart = new Map()
  const problems = []
  for (const { partition, message } of got) {
    let seq
    try {
      seq = h.checkMessage(topic, partition, message, valueSize)
    } catch (e) {
      problems.push(e.message)
      continue
    }
    if (seq < from || seq >= to) problems.push(`unexpected seq ${seq}`)
    if (seen.has(seq)) problems.push(`seq ${seq} consumed twice (${seen.get(seq)} and ${partition}@${message.offset})`)
    seen.set(seq, `${partition}@${message.offset}`)
    const key = message.key.toString()
    if (keyPart.has(key) && keyPart.get(key) !== partition) problems.push(`key ${key} in partitions ${keyPart.get(key)} and ${partition}`)
    keyPart.set(key, partition)
    if (!byPart.has(partition)) byPart.set(partition, [])
    byPart.get(partition).push({ offset: BigInt(message.offset), seq })
  }
  for (let seq = from; seq < to && problems.length < 20; seq++) {
    if (!seen.has(seq)) problems.push(`seq ${seq} never consumed`)
  }
  for (const [partition, list] of byPart) {
    for (let i = 1; i < list.length; i++) {
      if (list[i].offset <= list[i - 1].offset) {
        problems.push(`partition ${partition}: offset ${list[i].offset} delivered after ${list[i - 1].offset}`)
        break
      }
      if (list[i].seq <= list[i - 1].seq) {
        problems.push(`partition ${partition}: seq ${list[i].seq} stored after ${list[i - 1].seq} (produce order broken)`)
        break
      }
    }
  }
  assert.deepEqual(problems.slice(0, 20), [], `${problems.length} problems`)
  return byPart
}

async function endOffsetSum(admin, topic) {
  const offs = await admin.fetchTopicOffsets(topic)
  return offs.reduce((s, o) => s + Number(o.high) - Number(o.low), 0)
}

async function withAdmin(fn) {
  const admin = h.kafka().admin()
  await admin.connect()
  try {
    return await fn(admin)
  } finally {
    await admin.disconnect()
  }
}

for (const acks of [0, 1, -1]) {
  h.test(`produce with acks=${acks}`, () =>
    withAdmin(async admin => {
      const topic = await h.createTopic(admin, { label: `acks${acks}`, partitions: 3 })
      const k = h.kafka()
      const producer = k.producer(h.producerOpts())
      await producer.connect()
      let results
      try {
        results = await h.sendAll(producer, topic, 0, 1000, { acks, chunk: 200, valueSize: 100 })
      } finally {
        await producer.disconnect()
      }
      if (acks !== 0) {
        const parts = new Set()
        for (const r of results) {
          for (const md of r) {
            assert.equal(md.topicName, topic)
            assert.equal(md.errorCode, 0)
            assert.ok(Number(md.baseOffset) >= 0, `baseOffset ${md.baseOffset}`)
            parts.add(md.partition)
          }
        }
        assert.equal(parts.size, 3, 'records should land on all 3 partitions')
      }
      const got = await h.consumeN(k, topic, 1000)
      assert.equal(got.length, 1000)
      verify(topic, got, 0, 1000, 100)
      assert.equal(await endOffsetSum(admin, topic), 1000)
    }))
}

const codecList = [
  { name: 'none', type: CompressionTypes.None, available: true },
  { name: 'gzip', type: CompressionTypes.GZIP, available: h.codecs.gzip },
  { name: 'snappy', type: CompressionTypes.Snappy, available: h.codecs.snappy, why: h.codecs.snappyError },
  { name: 'lz4', type: CompressionTypes.LZ4, available: h.codecs.lz4, why: h.codecs.lz4Error },
  {
    name: 'zstd',
    type: CompressionTypes.ZSTD,
    available: h.codecs.zstd,
    why: 'no zstd codec for kafkajs installs cleanly on Node 20 (@kafkajs/zstd needs a native build that fails)',
  },
]

for (const c of codecList) {
  const skip = c.available ? false : `codec ${c.name} not available: ${c.why || 'not installed'}`
  h.test(`idempotent round trip of 20,000 keyed records with headers over 6 partitions, compression ${c.name}`, { skip }, () =>
    withAdmin(async admin => {
      const n = 20000
      const valueSize = 64
      const topic = await h.createTopic(admin, { label: `codec-${c.name}`, partitions: 6 })
      const k = h.kafka()
      const producer = k.producer(h.producerOpts({ idempotent: true, maxInFlightRequests: 1 }))
      await producer.connect()
      const t0 = Date.now()
      let results
      try {
        results = await h.sendAll(producer, topic, 0, n, { acks: -1, chunk: 1000, valueSize, compression: c.type })
      } finally {
        await producer.disconnect()
      }
      const produceMs = Date.now() - t0
      let acked = 0
      for (const r of results) for (const md of r) assert.equal(md.errorCode, 0)
      acked = n
      const t1 = Date.now()
      const got = await h.consumeN(k, topic, n, { timeoutMs: 90000 })
      const consumeMs = Date.now() - t1
      assert.equal(got.length, n, `consumed ${got.length}, want exactly ${n}`)
      const byPart = verify(topic, got, 0, n, valueSize)
      assert.equal(byPart.size, 6, `records landed on ${byPart.size} partitions, want 6`)
      assert.equal(await endOffsetSum(admin, topic), acked, 'log holds a different number of records than acknowledged')
      process.stderr.write(`# compression ${c.name}: produced ${n} in ${produceMs} ms, consumed in ${consumeMs} ms\n`)
    }))
}

h.test('null keys, null values and empty values', () =>
  withAdmin(async admin => {
    const topic = await h.createTopic(admin, { label: 'nulls', partitions: 1 })
    const k = h.kafka()
    const producer = k.producer(h.producerOpts())
    await producer.connect()
    const big = Buffer.alloc(900 * 1024, 'x')
    try {
      await producer.send({
        topic,
        messages: [
          { key: null, value: null },
          { key: 'k', value: null },
          { key: '', value: '' },
          { key: 'big', value: big },
        ],
      })
    } finally {
      await producer.disconnect()
    }
    const got = await h.consumeN(k, topic, 4)
    const m = got.map(g => g.message)
    assert.equal(m[0].key, null)
    assert.equal(m[0].value, null)
    assert.equal(m[1].key.toString(), 'k')
    assert.equal(m[1].value, null)
    assert.equal(m[2].key.length, 0)
    assert.ok(Buffer.isBuffer(m[2].value) && m[2].value.length === 0, 'empty value should stay empty, not null')
    assert.ok(m[3].value.equals(big), '900 KiB value corrupted')
  }))
