'use strict'
// kafkajs reading a tag-filtered view (mq.view.source / mq.view.filter, a Sluice
// extension): filtered batches, compaction-style gaps, and the empty batch that closes
// a read ending in filtered-out records must not stall the consumer.

const assert = require('node:assert/strict')
const h = require('../lib/harness')

h.setup()

function tagged(i, tag) {
  const headers = { idx: String(i) }
  if (tag) headers['mq.tag'] = tag
  return { value: `v${i}`, partition: i % 2, headers }
}

h.test('a kafkajs group reads a view, past records the view leaves out', async () => {
  const k = h.kafka()
  const admin = k.admin()
  await admin.connect()
  const producer = k.producer(h.producerOpts())
  await producer.connect()
  const consumer = k.consumer({ groupId: h.uniqueName('g', 'view'), maxWaitTimeInMs: 500, heartbeatInterval: 500 })
  try {
    const source = await h.createTopic(admin, { label: 'view-src', partitions: 2 })
    const view = h.uniqueName('t', 'view')
    const created = await admin.createTopics({
      topics: [{
        topic: view,
        configEntries: [
          { name: 'mq.view.source', value: source },
          { name: 'mq.view.filter', value: 'vip' },
        ],
      }],
      waitForLeaders: true,
    })
    assert.equal(created, true)
    await h.waitTopicReady(admin, view, 2)

    // Tags mixed within each batch, then a run the view leaves out at the log's end.
    const tags = ['vip', 'plain', null]
    const mixed = []
    for (let i = 0; i < 300; i++) mixed.push(tagged(i, tags[i % 3]))
    await producer.send({ topic: source, messages: mixed })
    const tail = []
    for (let i = 300; i < 350; i++) tail.push(tagged(i, 'plain'))
    await producer.send({ topic: source, messages: tail })

    const got = []
    await consumer.connect()
    await consumer.subscribe({ topics: [view], fromBeginning: true })
    await consumer.run({
      eachMessage: async ({ partition, message }) => {
        got.push({ partition, offset: Number(message.offset), idx: Number(message.headers.idx.toString()),
          tag: message.headers['mq.tag'] && message.headers['mq.tag'].toString() })
      },
    })
    await h.waitFor('100 vip records', 30000, () => got.length >= 100, () => `have ${got.length}`)
    assert.equal(got.length, 100)
    assert.ok(got.every(m => m.tag === 'vip'), 'only vip records')
    assert.deepEqual(got.map(m => m.idx).sort((a, b) => a - b), [...Array(100).keys()].map(i => i * 3))

    // One more vip record after the filtered-out tail arrives: the reader moved on.
    await producer.send({ topic: source, messages: [tagged(999, 'vip')] })
    await h.waitFor('the record after the filtered tail', 30000, () => got.some(m => m.idx === 999),
      () => `have ${got.length}`)
    assert.equal(got.length, 101)
  } finally {
    await consumer.disconnect()
    await producer.disconnect()
    await admin.disconnect()
  }
})
