'use strict'
// kafkajs consumer groups: splitting partitions, rebalancing, commits.

const assert = require('node:assert/strict')
const h = require('../lib/harness')

h.setup()

/** member starts a group consumer that records its assignment and messages. */
async function member(k, name, groupId, topic, extra = {}) {
  const consumer = k.consumer({
    groupId,
    heartbeatInterval: 500,
    sessionTimeout: 30000,
    maxWaitTimeInMs: 500,
    ...extra,
  })
  const m = { name, consumer, assigned: [], joins: 0, seqs: new Map(), offsets: new Map(), stopped: false }
  consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
    m.joins++
    m.assigned = (payload.memberAssignment[topic] || []).slice().sort((a, b) => a - b)
  })
  await consumer.connect()
  await consumer.subscribe({ topics: [topic], fromBeginning: true })
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      const seq = Number(message.value.readBigUInt64BE(0))
      m.seqs.set(seq, (m.seqs.get(seq) || 0) + 1)
      if (!m.offsets.has(partition)) m.offsets.set(partition, [])
      m.offsets.get(partition).push(message.offset)
    },
  })
  m.stop = async () => {
    if (m.stopped) return
    m.stopped = true
    await consumer.disconnect()
  }
  return m
}

function countIn(from, to, ...members) {
  let n = 0
  for (let s = from; s < to; s++) if (members.some(m => m.seqs.has(s))) n++
  return n
}

h.test('two consumers split 6 partitions and rebalance when one disconnects', async () => {
  const k = h.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts())
  await producer.connect()
  const members = []
  try {
    const topic = await h.createTopic(admin, { label: 'split', partitions: 6 })
    const groupId = h.uniqueName('g', 'split')
    await h.sendAll(producer, topic, 0, 600)

    const a = await member(k, 'A', groupId, topic)
    members.push(a)
    await h.waitFor('A to own all 6 partitions', 30000, () => a.assigned.length === 6, () => `A=${a.assigned}`)

    const b = await member(k, 'B', groupId, topic)
    members.push(b)
    await h.waitFor(
      'A and B to split the partitions 3/3',
      30000,
      () => a.assigned.length === 3 && b.assigned.length === 3 && new Set([...a.assigned, ...b.assigned]).size === 6,
      () => `A=${a.assigned} B=${b.assigned}`
    )
    const d = (await admin.describeGroups([groupId])).groups[0]
    assert.equal(d.members.length, 2, `describeGroups lists ${d.members.length} members`)

    await h.sendAll(producer, topic, 600, 1200)
    await h.waitFor('all 1200 messages consumed by A and B', 30000, () => countIn(0, 1200, a, b) === 1200, () => `have ${countIn(0, 1200, a, b)}`)
    const na = countIn(600, 1200, a)
    const nb = countIn(600, 1200, b)
    assert.ok(na > 0 && nb > 0, `messages produced after the split should reach both: A=${na} B=${nb}`)

    const left = Date.now()
    await b.stop()
    await h.waitFor('A to own all 6 partitions after B left', 30000, () => a.assigned.length === 6, () => `A=${a.assigned}`)
    process.stderr.write(`# rebalance after B disconnected took ${Date.now() - left} ms\n`)

    await h.sendAll(producer, topic, 1200, 1800)
    await h.waitFor('A alone to consume the 600 new messages', 30000, () => countIn(1200, 1800, a) === 600, () => `have ${countIn(1200, 1800, a)}`)

    // Offsets per partition arrive in increasing order at each member.
    for (const m of members) {
      for (const [p, offs] of m.offsets) {
        for (let i = 1; i < offs.length; i++) {
          // after a rebalance a member may re-read from the last commit, but never goes backwards within one assignment run
          if (BigInt(offs[i]) <= BigInt(offs[i - 1])) {
            assert.ok(m.joins > 1, `${m.name} partition ${p}: offset ${offs[i]} after ${offs[i - 1]}`)
          }
        }
      }
    }

    await a.stop()
    // Committed offsets cover everything consumed (auto-commit on leave).
    let fo
    await h.waitFor(
      'committed offsets to reach the end offsets',
      15000,
      async () => {
        fo = await admin.fetchOffsets({ groupId, topics: [topic] })
        const ends = await admin.fetchTopicOffsets(topic)
        return ends.every(e => fo[0].partitions.find(p => p.partition === e.partition).offset === e.high)
      },
      () => JSON.stringify(fo)
    )
  } finally {
    for (const m of members) await m.stop().catch(() => {})
    await producer.disconnect()
    await admin.disconnect()
  }
})

h.test('commitOffsets, then a new consumer resumes from the committed offsets', async () => {
  const k = h.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts())
  await producer.connect()
  try {
    const topic = await h.createTopic(admin, { label: 'commit', partitions: 2 })
    const groupId = h.uniqueName('g', 'commit')
    for (let p = 0; p < 2; p++) {
      await producer.send({ topic, messages: Array.from({ length: 50 }, (_, i) => ({ partition: p, key: `k${i}`, value: `p${p}-${i}` })) })
    }

    const c1 = k.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
    const got1 = []
    await c1.connect()
    try {
      await c1.subscribe({ topics: [topic], fromBeginning: true })
      await c1.run({ autoCommit: false, eachMessage: async ({ partition, message }) => void got1.push([partition, message.offset]) })
      await h.waitFor('c1 to read 100 messages', 30000, () => got1.length >= 100, () => `have ${got1.length}`)
      await c1.commitOffsets([
        { topic, partition: 0, offset: '30' },
        { topic, partition: 1, offset: '50' },
      ])
      const fo = await admin.fetchOffsets({ groupId, topics: [topic] })
      assert.deepEqual(
        fo[0].partitions.map(p => [p.partition, p.offset]).sort((x, y) => x[0] - y[0]),
        [
          [0, '30'],
          [1, '50'],
        ]
      )
    } finally {
      await c1.disconnect()
    }
    // Disconnecting without auto-commit leaves the manual commits unchanged.
    let fo = await admin.fetchOffsets({ groupId, topics: [topic] })
    assert.deepEqual(fo[0].partitions.map(p => p.offset).sort(), ['30', '50'])

    await producer.send({ topic, messages: [{ partition: 1, value: 'late' }] })
    const c2 = k.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
    const got2 = []
    await c2.connect()
    try {
      await c2.subscribe({ topics: [topic], fromBeginning: true })
      await c2.run({ eachMessage: async ({ partition, message }) => void got2.push([partition, message.offset]) })
      await h.waitFor('c2 to read the 21 uncommitted messages', 30000, () => got2.length >= 21, () => `have ${got2.length}`)
      await h.sleep(500)
      const first = {}
      for (const [p, o] of got2) if (!(p in first)) first[p] = o
      assert.deepEqual(first, { 0: '30', 1: '50' }, 'the new consumer should start at the committed offsets')
      assert.equal(got2.length, 21, 'the new consumer re-read committed messages')
    } finally {
      await c2.disconnect()
    }
    // c2 auto-committed what it read.
    fo = await admin.fetchOffsets({ groupId, topics: [topic] })
    assert.deepEqual(
      fo[0].partitions.map(p => [p.partition, p.offset]).sort((x, y) => x[0] - y[0]),
      [
        [0, '50'],
        [1, '51'],
      ]
    )
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
})

h.test('small maxBytes / maxBytesPerPartition still consume everything', async () => {
  const k = h.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts())
  await producer.connect()
  try {
    const topic = await h.createTopic(admin, { label: 'small-fetch', partitions: 3 })
    await h.sendAll(producer, topic, 0, 600, { valueSize: 1000, chunk: 100 })
    const got = await h.consumeN(k, topic, 600, { consumerOpts: { maxBytes: 1024, maxBytesPerPartition: 512 } })
    const seqs = new Set(got.map(g => h.checkMessage(topic, g.partition, g.message, 1000)))
    assert.equal(seqs.size, 600)
    assert.equal(got.length, 600)
  } finally {
    await producer.disconnect()
    await admin.disconnect()
  }
})

h.test('a long-polling consumer wakes promptly on a new message', async () => {
  const k = h.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts())
  await producer.connect()
  const consumer = k.consumer({ groupId: h.uniqueName('g', 'long-poll'), maxWaitTimeInMs: 5000, heartbeatInterval: 500 })
  try {
    const topic = await h.createTopic(admin, { label: 'long-poll', partitions: 1 })
    await producer.send({ topic, messages: [{ value: 'warm-up' }] })
    let gotAt = 0
    let joined = false
    consumer.on(consumer.events.GROUP_JOIN, () => (joined = true))
    await consumer.connect()
    await consumer.subscribe({ topics: [topic], fromBeginning: false })
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (message.value.toString() === 'wake up') gotAt = Date.now()
      },
    })
    await h.waitFor('consumer to join', 30000, () => joined)
    await h.sleep(2000) // let the first fetch park on the broker
    const sent = Date.now()
    await producer.send({ topic, messages: [{ value: 'wake up' }] })
    await h.waitFor('the message to arrive', 15000, () => gotAt > 0)
    const lat = gotAt - sent
    process.stderr.write(`# long poll: delivered ${lat} ms after produce\n`)
    assert.ok(lat < 4000, `delivered after ${lat} ms; a parked fetch should wake well before maxWaitTimeInMs (5000)`)
  } finally {
    await consumer.disconnect()
    await producer.disconnect()
    await admin.disconnect()
  }
})
