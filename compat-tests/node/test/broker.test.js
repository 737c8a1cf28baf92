'use strict'
// Tests that control the broker process (skipped under KAFKA_BOOTSTRAP).

const assert = require('node:assert/strict')
const { ConfigResourceTypes } = require('kafkajs')
const h = require('../lib/harness')

h.setup()

const skip = h.managedSkipReason()
// Clients used across a restart retry long enough to ride out the downtime.
const patient = { retry: { retries: 30, initialRetryTime: 200, maxRetryTime: 3000 } }

// Right after a restart the group coordinator may answer with a retriable
// "loading" error (Kafka does); kafkajs' admin.fetchOffsets does not retry it.
const RETRIABLE_COORDINATOR = ['GROUP_LOAD_IN_PROGRESS', 'GROUP_COORDINATOR_NOT_AVAILABLE', 'NOT_COORDINATOR_FOR_GROUP']

async function committed(admin, groupId, topic) {
  const deadline = Date.now() + 30000
  for (;;) {
    try {
      const fo = await admin.fetchOffsets({ groupId, topics: [topic] })
      return Object.fromEntries(fo[0].partitions.map(p => [p.partition, p.offset]))
    } catch (e) {
      const retriable = h.errTypes(e).some(t => RETRIABLE_COORDINATOR.includes(t))
      if (!retriable || Date.now() > deadline) throw e
      process.stderr.write(`# fetchOffsets after restart: ${e.message}; retrying\n`)
      await h.sleep(250)
    }
  }
}

h.test('graceful restart keeps messages, topic configs and committed offsets', { skip }, async () => {
  const k = h.kafka(patient)
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts({ idempotent: true, maxInFlightRequests: 1 }))
  await producer.connect()
  try {
    const topic = await h.createTopic(admin, {
      label: 'restart',
      partitions: 3,
      configEntries: [{ name: 'retention.ms', value: '86400000' }],
    })
    await h.sendAll(producer, topic, 0, 3000, { valueSize: 100 })

    // A group commits part of the data.
    const groupId = h.uniqueName('g', 'restart')
    const c = k.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
    let n = 0
    await c.connect()
    await c.subscribe({ topics: [topic], fromBeginning: true })
    await c.run({ autoCommit: false, eachMessage: async () => void n++ })
    await h.waitFor('the group to read some messages', 30000, () => n > 0)
    await c.commitOffsets([
      { topic, partition: 0, offset: '11' },
      { topic, partition: 1, offset: '22' },
      { topic, partition: 2, offset: '33' },
    ])
    await c.disconnect()
    const before = await committed(admin, groupId, topic)
    assert.deepEqual(before, { 0: '11', 1: '22', 2: '33' })
    const mdBefore = await admin.fetchTopicMetadata({ topics: [topic] })

    const r = await h.restart({ crash: false })
    process.stderr.write(`# graceful restart: stopped after ${r.stoppedAfterMs} ms, up after ${r.upAfterMs} ms\n`)

    // The connected producer carries on.
    await h.sendAll(producer, topic, 3000, 3100, { valueSize: 100 })

    const after = await committed(admin, groupId, topic)
    assert.deepEqual(after, before, 'committed offsets changed across the restart')
    const mdAfter = await admin.fetchTopicMetadata({ topics: [topic] })
    assert.equal(mdAfter.topics[0].partitions.length, mdBefore.topics[0].partitions.length)
    const cfg = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: ['retention.ms'] }],
    })
    assert.equal(cfg.resources[0].configEntries[0].configValue, '86400000', 'topic config lost across the restart')

    const got = await h.consumeN(k, topic, 3100, { timeoutMs: 60000 })
    const seqs = new Set(got.map(g => h.checkMessage(topic, g.partition, g.message, 100)))
    assert.equal(seqs.size, 3100)
    assert.equal(got.length, 3100, 'duplicates after a graceful restart')

    // The group resumes from its committed offsets.
    const resumed = []
    const c2 = k.consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
    await c2.connect()
    await c2.subscribe({ topics: [topic], fromBeginning: true })
    await c2.run({ eachMessage: async ({ partition, message }) => void resumed.push([partition, message.offset]) })
    await h.waitFor('the group to resume', 30000, () => new Set(resumed.map(x => x[0])).size === 3)
    await c2.disconnect()
    const first = {}
    for (const [p, o] of resumed) if (!(p in first)) first[p] = o
    assert.deepEqual(first, { 0: '11', 1: '22', 2: '33' })
  } finally {
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
  }
})

h.test('kill -9 keeps every acknowledged message', { skip }, async () => {
  const k = h.kafka(patient)
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts({ idempotent: true, maxInFlightRequests: 1 }))
  await producer.connect()
  try {
    const topic = await h.createTopic(admin, { label: 'crash', partitions: 3 })
    // Everything acknowledged with acks=-1 before the crash must survive it.
    await h.sendAll(producer, topic, 0, 5000, { valueSize: 100, chunk: 250 })
    const r = await h.restart({ crash: true })
    process.stderr.write(`# kill -9: up again after ${r.upAfterMs} ms\n`)
    await h.sendAll(producer, topic, 5000, 5100, { valueSize: 100 })
    const offs = await admin.fetchTopicOffsets(topic)
    const total = offs.reduce((s, o) => s + Number(o.high), 0)
    assert.ok(total >= 5100, `log holds ${total} messages, at least 5100 were acknowledged`)
    const got = await h.consumeN(k, topic, total, { timeoutMs: 60000 })
    const seqs = new Set(got.map(g => h.checkMessage(topic, g.partition, g.message, 100)))
    for (let s = 0; s < 5100; s++) assert.ok(seqs.has(s), `acknowledged seq ${s} lost after kill -9`)
  } finally {
    await producer.disconnect().catch(() => {})
    await admin.disconnect().catch(() => {})
  }
})
