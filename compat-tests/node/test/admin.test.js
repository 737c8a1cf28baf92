'use strict'
// kafkajs admin client against the broker under test.

const assert = require('node:assert/strict')
const { ConfigResourceTypes } = require('kafkajs')
const h = require('../lib/harness')

h.setup()

// DescribeConfigs v1+ config sources
const DYNAMIC_TOPIC_CONFIG = 1

// fn(admin, quick): quick does not retry, for calls expected to fail.
async function withAdmin(fn) {
  const admin = h.kafka().admin()
  const quick = h.kafka({ retry: { retries: 0 } }).admin()
  await admin.connect()
  await quick.connect()
  try {
    return await fn(admin, quick)
  } finally {
    await admin.disconnect()
    await quick.disconnect()
  }
}

async function topicConfigs(admin, topic, names) {
  const res = await admin.describeConfigs({
    includeSynonyms: false,
    resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configNames: names || [] }],
  })
  assert.equal(res.resources.length, 1)
  const r = res.resources[0]
  assert.equal(r.errorCode, 0, `describeConfigs ${topic}: error ${r.errorCode} ${r.errorMessage}`)
  const out = {}
  for (const c of r.configEntries) out[c.configName] = c
  return out
}

async function waitConfig(admin, topic, name, what, cond) {
  let last
  await h.waitFor(
    `${what}: ${name}`,
    10000,
    async () => {
      last = (await topicConfigs(admin, topic, [name]))[name]
      return last && cond(last)
    },
    () => `last ${JSON.stringify(last)}`
  )
}

h.test('createTopics: partitions, configs, validateOnly and errors', () =>
  withAdmin(async admin => {
    const topic = await h.createTopic(admin, {
      label: 'create',
      partitions: 3,
      configEntries: [
        { name: 'retention.ms', value: '3600000' },
        { name: 'cleanup.policy', value: 'delete' },
      ],
    })
    const md = await admin.fetchTopicMetadata({ topics: [topic] })
    assert.equal(md.topics[0].partitions.length, 3)
    const cfg = await topicConfigs(admin, topic, ['retention.ms'])
    assert.equal(cfg['retention.ms'].configValue, '3600000')
    assert.equal(cfg['retention.ms'].configSource, DYNAMIC_TOPIC_CONFIG)

    // Existing topic: kafkajs turns TOPIC_ALREADY_EXISTS into `false`.
    const again = await admin.createTopics({ topics: [{ topic, numPartitions: 3 }] })
    assert.equal(again, false, 'createTopics on an existing topic should report TOPIC_ALREADY_EXISTS (false)')

    // validateOnly: accepted, nothing created.
    const vtopic = h.uniqueName('t', 'validate-only')
    const ok = await admin.createTopics({ validateOnly: true, waitForLeaders: false, topics: [{ topic: vtopic, numPartitions: 2 }] })
    assert.equal(ok, true)
    await h.sleep(500)
    const names = await admin.listTopics()
    assert.ok(!names.includes(vtopic), 'validateOnly createTopics created the topic')

    // Invalid configs.
    await h.expectKafkaError(
      admin.createTopics({
        waitForLeaders: false,
        topics: [{ topic: h.uniqueName('t', 'bad-cfg'), configEntries: [{ name: 'cleanup.policy', value: 'no-such-policy' }] }],
      }),
      'INVALID_CONFIG',
      'createTopics with cleanup.policy=no-such-policy'
    )
    await h.expectKafkaError(
      admin.createTopics({
        waitForLeaders: false,
        topics: [{ topic: h.uniqueName('t', 'bad-num'), configEntries: [{ name: 'retention.ms', value: 'soon' }] }],
      }),
      'INVALID_CONFIG',
      'createTopics with retention.ms=soon'
    )
    await h.expectKafkaError(
      admin.createTopics({
        waitForLeaders: false,
        validateOnly: true,
        topics: [{ topic: h.uniqueName('t', 'bad-validate'), configEntries: [{ name: 'cleanup.policy', value: 'bogus' }] }],
      }),
      'INVALID_CONFIG',
      'validate-only createTopics with a bad config'
    )
  }))

h.test('fetchTopicMetadata and listTopics', () =>
  withAdmin(async (admin, quick) => {
    const t1 = await h.createTopic(admin, { label: 'md1', partitions: 2 })
    const t2 = await h.createTopic(admin, { label: 'md2', partitions: 5 })
    const md = await admin.fetchTopicMetadata({ topics: [t1, t2] })
    const byName = Object.fromEntries(md.topics.map(t => [t.name, t]))
    for (const [topic, n] of [
      [t1, 2],
      [t2, 5],
    ]) {
      assert.ok(byName[topic], `metadata misses ${topic}`)
      const parts = byName[topic].partitions
      assert.equal(parts.length, n, `${topic} partitions`)
      assert.deepEqual(parts.map(p => p.partitionId).sort((a, b) => a - b), [...Array(n).keys()])
      for (const p of parts) {
        assert.equal(p.partitionErrorCode, 0)
        assert.ok(p.leader >= 0, `${topic}/${p.partitionId} has no leader`)
        assert.deepEqual(p.replicas, [p.leader])
        assert.deepEqual(p.isr, [p.leader])
      }
    }
    const all = await admin.listTopics()
    assert.ok(all.includes(t1) && all.includes(t2), 'listTopics misses the new topics')
    const allMd = await admin.fetchTopicMetadata()
    assert.ok(allMd.topics.some(t => t.name === t1), 'fetchTopicMetadata() without topics misses a topic')

    const missing = h.uniqueName('t', 'missing')
    await h.expectKafkaError(quick.fetchTopicMetadata({ topics: [missing] }), 'UNKNOWN_TOPIC_OR_PARTITION', 'metadata for an unknown topic')
    // The admin client asks without auto-creation: the topic must not appear.
    assert.ok(!(await admin.listTopics()).includes(missing), 'admin metadata request auto-created a topic')
  }))

h.test('deleteTopics', () =>
  withAdmin(async (admin, quick) => {
    const topic = await h.createTopic(admin, { label: 'delete', partitions: 2 })
    const producer = h.kafka().producer(h.producerOpts())
    await producer.connect()
    await h.sendAll(producer, topic, 0, 50)
    await producer.disconnect()

    await admin.deleteTopics({ topics: [topic], timeout: 15000 })
    await h.waitFor('deleted topic to disappear from listTopics', 20000, async () => !(await admin.listTopics()).includes(topic))
    await h.expectKafkaError(quick.deleteTopics({ topics: [topic], timeout: 5000 }), 'UNKNOWN_TOPIC_OR_PARTITION', 'deleting a deleted topic')

    // The name can be reused and starts empty.
    // (Kafka may still be finishing the deletion: retry while the name is taken.)
    await h.waitFor('the deleted name to be reusable', 20000, async () =>
      admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: false }).then(
        created => created === true,
        e => {
          if (h.errTypes(e).includes('TOPIC_ALREADY_EXISTS')) return false
          throw e
        }
      )
    )
    await h.waitTopicReady(admin, topic, 1)
    const offs = await admin.fetchTopicOffsets(topic)
    assert.deepEqual(offs.map(o => [o.partition, o.high]), [[0, '0']])
  }))

h.test('createPartitions', () =>
  withAdmin(async (admin, quick) => {
    const topic = await h.createTopic(admin, { label: 'partitions', partitions: 2 })
    await admin.createPartitions({ topicPartitions: [{ topic, count: 5 }] })
    await h.waitTopicReady(admin, topic, 5)

    const producer = h.kafka().producer(h.producerOpts())
    await producer.connect()
    for (let p = 0; p < 5; p++) {
      await producer.send({ topic, messages: [{ partition: p, value: `p${p}` }] })
    }
    await producer.disconnect()
    const offs = await admin.fetchTopicOffsets(topic)
    assert.deepEqual(
      offs.map(o => [o.partition, o.high]).sort((a, b) => a[0] - b[0]),
      [0, 1, 2, 3, 4].map(p => [p, '1'])
    )

    await h.expectKafkaError(quick.createPartitions({ topicPartitions: [{ topic, count: 3 }] }), 'INVALID_PARTITIONS', 'shrinking partitions')
    await h.expectKafkaError(
      quick.createPartitions({ topicPartitions: [{ topic: h.uniqueName('t', 'missing'), count: 3 }] }),
      'UNKNOWN_TOPIC_OR_PARTITION',
      'createPartitions on an unknown topic'
    )
  }))

h.test('describeConfigs and alterConfigs', () =>
  withAdmin(async admin => {
    const topic = await h.createTopic(admin, {
      label: 'configs',
      configEntries: [{ name: 'retention.ms', value: '3600000' }],
    })
    const all = await topicConfigs(admin, topic, null)
    for (const k of ['cleanup.policy', 'retention.ms', 'retention.bytes', 'segment.bytes', 'max.message.bytes', 'compression.type']) {
      assert.ok(all[k], `config ${k} not described`)
    }
    assert.equal(all['cleanup.policy'].configValue, 'delete')
    assert.notEqual(all['cleanup.policy'].configSource, DYNAMIC_TOPIC_CONFIG)
    assert.equal(all['cleanup.policy'].isDefault, true)
    assert.equal(all['retention.ms'].isDefault, false)

    // Only the requested names come back.
    const some = await topicConfigs(admin, topic, ['retention.ms', 'segment.bytes'])
    assert.deepEqual(Object.keys(some).sort(), ['retention.ms', 'segment.bytes'])

    // Legacy AlterConfigs replaces the topic's whole dynamic config set.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [
        {
          type: ConfigResourceTypes.TOPIC,
          name: topic,
          configEntries: [
            { name: 'max.message.bytes', value: '2000000' },
            { name: 'segment.ms', value: '3600000' },
          ],
        },
      ],
    })
    await waitConfig(admin, topic, 'max.message.bytes', 'alterConfigs set', c => c.configValue === '2000000' && c.configSource === DYNAMIC_TOPIC_CONFIG)
    await waitConfig(admin, topic, 'segment.ms', 'alterConfigs set', c => c.configValue === '3600000')
    await waitConfig(admin, topic, 'retention.ms', 'alterConfigs replaces the full set', c => c.configSource !== DYNAMIC_TOPIC_CONFIG)

    // validateOnly does not apply.
    await admin.alterConfigs({
      validateOnly: true,
      resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'max.message.bytes', value: '3000000' }] }],
    })
    await h.sleep(500)
    assert.equal((await topicConfigs(admin, topic, ['max.message.bytes']))['max.message.bytes'].configValue, '2000000')

    await h.expectKafkaError(
      admin.alterConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic, configEntries: [{ name: 'cleanup.policy', value: 'bogus' }] }],
      }),
      'INVALID_CONFIG',
      'alterConfigs with a bad cleanup.policy'
    )
    const missing = h.uniqueName('t', 'missing')
    const res = await admin
      .describeConfigs({ resources: [{ type: ConfigResourceTypes.TOPIC, name: missing }] })
      .then(r => r.resources[0], e => ({ thrown: e }))
    if (res.thrown) {
      assert.ok(h.errTypes(res.thrown).includes('UNKNOWN_TOPIC_OR_PARTITION'), `describeConfigs on unknown topic: ${res.thrown.message}`)
    } else {
      assert.equal(res.errorCode, 3, `describeConfigs on unknown topic: error ${res.errorCode}, want 3 (UNKNOWN_TOPIC_OR_PARTITION)`)
    }
  }))

h.test('describeCluster', () =>
  withAdmin(async admin => {
    const c = await admin.describeCluster()
    assert.ok(c.clusterId, 'no cluster id')
    assert.equal(c.brokers.length, 1, `brokers ${JSON.stringify(c.brokers)}`)
    const b = c.brokers[0]
    const { host, port } = h.splitHostPort(h.state.bootstrap)
    assert.equal(b.port, port, 'advertised port differs from the bootstrap port')
    assert.ok(b.host === host || b.host === 'localhost' || host === 'localhost', `advertised host ${b.host}`)
    assert.equal(c.controller, b.nodeId)
  }))

h.test('deleteTopicRecords', () =>
  withAdmin(async admin => {
    const topic = await h.createTopic(admin, { label: 'delete-records', partitions: 1 })
    const producer = h.kafka().producer(h.producerOpts())
    await producer.connect()
    await h.sendAll(producer, topic, 0, 100, { chunk: 10 })
    await producer.disconnect()

    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '40' }] })
    let offs = await admin.fetchTopicOffsets(topic)
    assert.equal(offs[0].low, '40')
    assert.equal(offs[0].high, '100')

    const got = await h.consumeN(h.kafka(), topic, 60)
    assert.equal(got[0].message.offset, '40', 'consumption from the beginning should start at the new log start offset')
    assert.ok(got.every(g => Number(g.message.offset) >= 40))

    // -1 deletes up to the high watermark.
    await admin.deleteTopicRecords({ topic, partitions: [{ partition: 0, offset: '-1' }] })
    offs = await admin.fetchTopicOffsets(topic)
    assert.equal(offs[0].low, '100')
  }))

h.test('fetchTopicOffsets and fetchTopicOffsetsByTimestamp', () =>
  withAdmin(async admin => {
    const topic = await h.createTopic(admin, { label: 'offsets', partitions: 1 })
    const base = Math.floor(Date.now() / 1000) * 1000 - 3600 * 1000
    const producer = h.kafka().producer(h.producerOpts())
    await producer.connect()
    for (let i = 0; i < 10; i++) {
      await producer.send({ topic, messages: [{ value: `v${i}`, timestamp: String(base + i * 1000) }] })
    }
    await producer.disconnect()

    const offs = await admin.fetchTopicOffsets(topic)
    assert.deepEqual(offs, [{ partition: 0, offset: '10', high: '10', low: '0' }])

    const at = async ts => (await admin.fetchTopicOffsetsByTimestamp(topic, ts))[0].offset
    assert.equal(await at(base + 5500), '6')
    assert.equal(await at(base + 3000), '3')
    assert.equal(await at(base - 3600 * 1000), '0')
    // After the last record: the broker answers -1 and kafkajs substitutes the high watermark.
    assert.equal(await at(Date.now() + 3600 * 1000), '10')
  }))

h.test('listGroups, describeGroups and deleteGroups', () =>
  withAdmin(async (admin, quick) => {
    const topic = await h.createTopic(admin, { label: 'groups', partitions: 2 })
    const producer = h.kafka().producer(h.producerOpts())
    await producer.connect()
    await h.sendAll(producer, topic, 0, 20)
    await producer.disconnect()

    const groupId = h.uniqueName('g', 'admin-groups')
    const consumer = h.kafka().consumer({ groupId, heartbeatInterval: 500, maxWaitTimeInMs: 500 })
    let seen = 0
    await consumer.connect()
    try {
      await consumer.subscribe({ topics: [topic], fromBeginning: true })
      await consumer.run({ eachMessage: async () => void seen++ })
      await h.waitFor('20 messages', 30000, () => seen >= 20, () => `have ${seen}`)

      const { groups } = await admin.listGroups()
      const g = groups.find(x => x.groupId === groupId)
      assert.ok(g, 'listGroups misses the active group')
      assert.equal(g.protocolType, 'consumer')

      let d
      await h.waitFor(
        'group to be Stable',
        15000,
        async () => {
          d = (await admin.describeGroups([groupId])).groups[0]
          return d.state === 'Stable'
        },
        () => JSON.stringify(d && { state: d.state, errorCode: d.errorCode })
      )
      assert.equal(d.errorCode, 0)
      assert.equal(d.protocolType, 'consumer')
      assert.ok(d.protocol, 'no protocol (assignor) name')
      assert.equal(d.members.length, 1)
      const m = d.members[0]
      assert.ok(m.memberId)
      assert.equal(m.clientId, 'sluice-compat-node')
      assert.ok(m.clientHost)
      assert.ok(Buffer.isBuffer(m.memberMetadata) && m.memberMetadata.length > 0, 'empty member metadata')
      assert.ok(Buffer.isBuffer(m.memberAssignment) && m.memberAssignment.length > 0, 'empty member assignment')

      await h.expectKafkaError(quick.deleteGroups([groupId]), 'NON_EMPTY_GROUP', 'deleting an active group')
    } finally {
      await consumer.disconnect()
    }

    let d
    await h.waitFor(
      'group to be Empty after the consumer left',
      15000,
      async () => {
        d = (await admin.describeGroups([groupId])).groups[0]
        return d.state === 'Empty'
      },
      () => d && d.state
    )
    const res = await admin.deleteGroups([groupId])
    assert.deepEqual(res.map(r => [r.groupId, r.errorCode]), [[groupId, 0]])
    const after = (await admin.describeGroups([groupId])).groups[0]
    assert.ok(after.state === 'Dead' || after.errorCode === 69, `deleted group: state ${after.state} error ${after.errorCode}`)
    assert.ok(!(await admin.listGroups()).groups.some(x => x.groupId === groupId), 'deleted group still listed')
    await h.expectKafkaError(quick.deleteGroups([groupId]), 'GROUP_ID_NOT_FOUND', 'deleting a deleted group')
  }))

h.test('fetchOffsets, setOffsets and resetOffsets', () =>
  withAdmin(async admin => {
    const topic = await h.createTopic(admin, { label: 'group-offsets', partitions: 2 })
    const producer = h.kafka().producer(h.producerOpts())
    await producer.connect()
    for (let p = 0; p < 2; p++) {
      await producer.send({ topic, messages: Array.from({ length: 30 }, (_, i) => ({ partition: p, value: `m${i}` })) })
    }
    await producer.disconnect()

    const groupId = h.uniqueName('g', 'set-offsets')
    // No commits yet: offsets are -1.
    let fo = await admin.fetchOffsets({ groupId, topics: [topic] })
    assert.deepEqual(
      fo[0].partitions.map(p => [p.partition, p.offset]).sort((a, b) => a[0] - b[0]),
      [
        [0, '-1'],
        [1, '-1'],
      ]
    )

    await admin.setOffsets({ groupId, topic, partitions: [{ partition: 0, offset: '7' }, { partition: 1, offset: '12' }] })
    fo = await admin.fetchOffsets({ groupId, topics: [topic] })
    assert.equal(fo[0].topic, topic)
    assert.deepEqual(
      fo[0].partitions.map(p => [p.partition, p.offset]).sort((a, b) => a[0] - b[0]),
      [
        [0, '7'],
        [1, '12'],
      ]
    )

    // A consumer of the group resumes at the set offsets.
    const got = await h.consumeN(h.kafka(), topic, 41, { groupId })
    const first = {}
    for (const g of got) if (!(g.partition in first)) first[g.partition] = g.message.offset
    assert.deepEqual(first, { 0: '7', 1: '12' })

    // resetOffsets to the earliest: resolved offsets are the log start.
    // (kafkajs' setOffsets/resetOffsets/resolveOffsets each join the group
    // with a paused consumer and take ~5 s: its default maxWaitTimeInMs.)
    await admin.resetOffsets({ groupId, topic, earliest: true })
    fo = await admin.fetchOffsets({ groupId, topics: [topic], resolveOffsets: true })
    assert.deepEqual(
      fo[0].partitions.map(p => [p.partition, p.offset]).sort((a, b) => a[0] - b[0]),
      [
        [0, '0'],
        [1, '0'],
      ]
    )
  }))
