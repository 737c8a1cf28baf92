'use strict'
// Shared harness for the kafkajs compatibility tests.
//
// Broker contract:
//  - KAFKA_BOOTSTRAP=host:port: use that broker; tests that restart/kill the
//    broker or read its metrics are skipped.
//  - otherwise start the Sluice broker ($SLUICE_BIN, default
//    <repo>/target/release/sluice) on free loopback ports with a fresh data
//    dir and a TOML config; stop it with SIGTERM.
//
// node --test runs every test file in its own process, so each file starts
// (and stops) its own broker through start()/stop().

const { spawn } = require('node:child_process')
const fs = require('node:fs')
const http = require('node:http')
const net = require('node:net')
const os = require('node:os')
const path = require('node:path')

const {
  Kafka,
  logLevel,
  Partitioners,
  CompressionTypes,
  CompressionCodecs,
} = require('kafkajs')

// Optional codecs: snappy is a pure-JS dependency, lz4 a native optional one.
const codecs = { gzip: true, snappy: false, lz4: false, zstd: false }
try {
  CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy')
  codecs.snappy = true
} catch (e) {
  codecs.snappyError = e.message
}
try {
  const LZ4 = require('kafkajs-lz4')
  CompressionCodecs[CompressionTypes.LZ4] = new LZ4().codec
  codecs.lz4 = true
} catch (e) {
  codecs.lz4Error = e.message
}

const BROKER_CONFIG = `# written by compat-tests/node
"group.initial.rebalance.delay.ms" = 0
"auto.create.topics.enable" = true
`

const REPO_ROOT = path.resolve(__dirname, '..', '..', '..')

const state = {
  bootstrap: null,
  external: false,
  bin: null,
  port: 0,
  metricsPort: 0,
  root: null,
  dataDir: null,
  configPath: null,
  logPath: null,
  child: null,
  exited: null,
  stopping: false,
  unexpectedExit: false,
  failed: false,
}

const sleep = ms => new Promise(resolve => setTimeout(resolve, ms))

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer()
    srv.unref()
    srv.on('error', reject)
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address()
      srv.close(() => resolve(port))
    })
  })
}

function canConnect(host, port) {
  return new Promise(resolve => {
    const sock = net.connect({ host, port })
    const done = ok => {
      sock.removeAllListeners()
      sock.destroy()
      resolve(ok)
    }
    sock.setTimeout(1000, () => done(false))
    sock.once('connect', () => done(true))
    sock.once('error', () => done(false))
  })
}

function splitHostPort(hp) {
  const i = hp.lastIndexOf(':')
  return { host: hp.slice(0, i), port: Number(hp.slice(i + 1)) }
}

async function waitTCP(hostport, timeoutMs, exited) {
  const { host, port } = splitHostPort(hostport)
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (exited && exited.done) throw new Error('broker process exited during startup')
    if (await canConnect(host, port)) return
    if (Date.now() > deadline) throw new Error(`${hostport} did not accept TCP within ${timeoutMs} ms`)
    await sleep(100)
  }
}

function logTail(lines = 80) {
  if (!state.logPath) return ''
  try {
    const all = fs.readFileSync(state.logPath, 'utf8').split('\n')
    return all.slice(-lines).join('\n')
  } catch (e) {
    return `(no broker log: ${e.message})`
  }
}

function spawnBroker() {
  const logFd = fs.openSync(state.logPath, 'a')
  fs.writeSync(logFd, `\n===== compat: starting broker at ${new Date().toISOString()} =====\n`)
  const child = spawn(
    state.bin,
    [
      '--listen', state.bootstrap,
      '--data-dir', state.dataDir,
      '--metrics-listen', `127.0.0.1:${state.metricsPort}`,
      '--config', state.configPath,
    ],
    { stdio: ['ignore', logFd, logFd], detached: true }
  )
  fs.closeSync(logFd)
  const exited = { done: false, code: null, signal: null }
  exited.promise = new Promise(resolve => {
    child.once('exit', (code, signal) => {
      exited.done = true
      exited.code = code
      exited.signal = signal
      if (!state.stopping && state.child === child) {
        state.unexpectedExit = true
        process.stderr.write(`compat: broker exited unexpectedly (code ${code}, signal ${signal})\n`)
      }
      resolve()
    })
    child.once('error', err => {
      exited.done = true
      exited.error = err
      resolve()
    })
  })
  state.child = child
  state.exited = exited
  state.stopping = false
}

async function startProcess() {
  spawnBroker()
  try {
    await waitTCP(state.bootstrap, 30000, state.exited)
  } catch (e) {
    const err = new Error(`cannot start broker ${state.bin}: ${e.message}\n--- broker log (${state.logPath}) ---\n${logTail(200)}`)
    await stopProcess('SIGKILL')
    throw err
  }
}

async function stopProcess(signal = 'SIGTERM', timeoutMs = 20000) {
  const child = state.child
  if (!child || state.exited.done) return
  state.stopping = true
  try {
    child.kill(signal)
  } catch (_) {}
  let timer
  const timeout = new Promise(resolve => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs)
  })
  const r = await Promise.race([state.exited.promise.then(() => 'exited'), timeout])
  clearTimeout(timer)
  if (r === 'timeout') {
    process.stderr.write(`compat: broker did not exit ${timeoutMs} ms after ${signal}; killing\n`)
    try {
      child.kill('SIGKILL')
    } catch (_) {}
    await state.exited.promise
  }
}

/** start() prepares the broker for this test file (or uses KAFKA_BOOTSTRAP). */
async function start() {
  const ext = (process.env.KAFKA_BOOTSTRAP || '').trim()
  if (ext) {
    state.bootstrap = ext
    state.external = true
    await waitTCP(ext, 30000)
    return
  }
  state.bin = process.env.SLUICE_BIN || path.join(REPO_ROOT, 'target', 'release', 'sluice')
  if (!fs.existsSync(state.bin)) {
    throw new Error(
      `sluice binary ${state.bin} not found: build it (cargo build --release), set SLUICE_BIN, or set KAFKA_BOOTSTRAP`
    )
  }
  state.root = fs.mkdtempSync(path.join(os.tmpdir(), 'sluice-node-compat-'))
  state.dataDir = path.join(state.root, 'data')
  state.configPath = path.join(state.root, 'sluice.toml')
  state.logPath = path.join(state.root, 'broker.log')
  fs.mkdirSync(state.dataDir, { recursive: true })
  fs.writeFileSync(state.configPath, BROKER_CONFIG)
  state.port = await freePort()
  state.metricsPort = await freePort()
  while (state.metricsPort === state.port) state.metricsPort = await freePort()
  state.bootstrap = `127.0.0.1:${state.port}`
  await startProcess()
}

/** stop() stops a broker we started; keeps its dir if anything failed. */
async function stop() {
  if (state.external) return
  await stopProcess('SIGTERM')
  if (state.unexpectedExit || state.failed || process.env.COMPAT_KEEP_DATA) {
    process.stderr.write(`compat: broker data, config and log kept in ${state.root}\n`)
    if (state.unexpectedExit || state.failed) {
      process.stderr.write(`--- last lines of the broker log ---\n${logTail(60)}\n`)
    }
  } else if (state.root) {
    fs.rmSync(state.root, { recursive: true, force: true })
  }
  if (state.unexpectedExit) {
    throw new Error('the broker process exited unexpectedly during the tests')
  }
}

/** restart({crash}) stops the broker (SIGTERM, or SIGKILL when crash) and starts it again on the same port and data dir. */
async function restart({ crash = false } = {}) {
  if (state.external) throw new Error('restart() needs a managed broker')
  const t0 = Date.now()
  await stopProcess(crash ? 'SIGKILL' : 'SIGTERM')
  const stoppedAfter = Date.now() - t0
  await startProcess()
  return { stoppedAfterMs: stoppedAfter, upAfterMs: Date.now() - t0 }
}

function metrics() {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port: state.metricsPort, path: '/metrics', timeout: 10000 }, res => {
      if (res.statusCode !== 200) {
        res.resume()
        reject(new Error(`GET /metrics: status ${res.statusCode}`))
        return
      }
      let body = ''
      res.setEncoding('utf8')
      res.on('data', d => (body += d))
      res.on('end', () => {
        const out = {}
        for (const raw of body.split('\n')) {
          const line = raw.trim()
          if (!line || line.startsWith('#')) continue
          const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)/.exec(line)
          if (!m) continue
          const v = Number(m[3])
          if (Number.isNaN(v)) continue
          out[m[1]] = (out[m[1]] || 0) + v
        }
        resolve(out)
      })
    })
    req.on('timeout', () => req.destroy(new Error('GET /metrics timed out')))
    req.on('error', reject)
  })
}

/** skipUnlessManaged(t) skips a test when the broker is external. */
function managedSkipReason() {
  return process.env.KAFKA_BOOTSTRAP ? 'KAFKA_BOOTSTRAP is set: the broker is not controlled by this suite' : false
}

function compatLogLevel() {
  switch ((process.env.COMPAT_LOG || '').toLowerCase()) {
    case 'debug':
      return logLevel.DEBUG
    case 'info':
      return logLevel.INFO
    case 'warn':
      return logLevel.WARN
    case 'error':
      return logLevel.ERROR
    default:
      return logLevel.NOTHING
  }
}

/** kafka() returns a kafkajs client for the broker under test. */
function kafka(extra = {}) {
  return new Kafka({
    clientId: 'sluice-compat-node',
    brokers: [state.bootstrap],
    logLevel: compatLogLevel(),
    connectionTimeout: 5000,
    requestTimeout: 30000,
    retry: { initialRetryTime: 100, retries: 8 },
    ...extra,
  })
}

/** producer options every test uses (explicit partitioner: no v2 warning). */
function producerOpts(extra = {}) {
  return { createPartitioner: Partitioners.DefaultPartitioner, ...extra }
}

let nameSeq = 0
function uniqueName(kind, label) {
  const clean = String(label || 'x').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '').slice(-60)
  nameSeq += 1
  return `node-${kind}-${clean}-${process.pid}-${Date.now() % 1000000}-${nameSeq}`
}

/** waitFor polls cond() until it returns truthy, or throws with describe(). */
async function waitFor(what, timeoutMs, cond, describe = () => '') {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${await describe()}`)
    }
    await sleep(100)
  }
}

/**
 * createTopic creates a topic and waits until every partition has a leader
 * and answers ListOffsets (metadata can announce leaders first).
 */
async function createTopic(admin, { label, partitions = 1, configEntries = [] } = {}) {
  const topic = uniqueName('t', label)
  const created = await admin.createTopics({
    topics: [{ topic, numPartitions: partitions, replicationFactor: 1, configEntries }],
    waitForLeaders: true,
    timeout: 15000,
  })
  if (created !== true) throw new Error(`createTopics(${topic}) returned ${created}`)
  await waitTopicReady(admin, topic, partitions)
  return topic
}

async function waitTopicReady(admin, topic, partitions) {
  let last = ''
  await waitFor(
    `topic ${topic} to be ready`,
    20000,
    async () => {
      try {
        const md = await admin.fetchTopicMetadata({ topics: [topic] })
        const t = md.topics.find(x => x.name === topic)
        if (!t || t.partitions.length !== partitions) {
          last = `metadata: ${t ? t.partitions.length : 0} partitions`
          return false
        }
        if (t.partitions.some(p => p.leader < 0 || p.partitionErrorCode)) {
          last = 'partition without leader'
          return false
        }
        const offs = await admin.fetchTopicOffsets(topic)
        if (offs.length !== partitions) {
          last = `ListOffsets answered ${offs.length} partitions`
          return false
        }
        return true
      } catch (e) {
        last = e.message
        return false
      }
    },
    () => last
  )
}

/** message(seq) builds the deterministic test record number seq. */
const BASE_TS = 1700000000000
function message(seq, valueSize = 32) {
  const value = Buffer.alloc(8 + valueSize)
  value.writeBigUInt64BE(BigInt(seq), 0)
  for (let i = 0; i < valueSize; i++) value[8 + i] = 97 + ((seq + i) % 26)
  return {
    key: `key-${seq % 503}`,
    value,
    timestamp: String(BASE_TS + seq),
    headers: {
      seq: String(seq),
      'content-type': 'application/x-sluice-test',
      empty: '',
    },
  }
}

/** checkMessage verifies a consumed kafkajs message; returns seq or throws. */
function checkMessage(topic, partition, m, valueSize = 32) {
  if (!m.value || m.value.length < 8) throw new Error(`${topic}/${partition}@${m.offset}: value too short`)
  const seq = Number(m.value.readBigUInt64BE(0))
  const want = message(seq, valueSize)
  const where = `${topic}/${partition}@${m.offset} (seq ${seq})`
  if (!m.key || m.key.toString() !== want.key) throw new Error(`${where}: key ${m.key}, want ${want.key}`)
  if (!m.value.equals(want.value)) throw new Error(`${where}: value differs`)
  if (m.timestamp !== want.timestamp) throw new Error(`${where}: timestamp ${m.timestamp}, want ${want.timestamp}`)
  const hk = Object.keys(m.headers || {})
  if (hk.length !== 3) throw new Error(`${where}: headers ${JSON.stringify(hk)}`)
  for (const [k, v] of Object.entries(want.headers)) {
    const got = m.headers[k]
    if (!Buffer.isBuffer(got) || got.toString() !== v) throw new Error(`${where}: header ${k}=${got}, want ${v}`)
  }
  return seq
}

/** sendAll sends messages [from, to) in chunks and returns the send() results. */
async function sendAll(producer, topic, from, to, { valueSize = 32, chunk = 1000, acks = -1, compression } = {}) {
  const results = []
  for (let s = from; s < to; s += chunk) {
    const messages = []
    for (let seq = s; seq < Math.min(to, s + chunk); seq++) messages.push(message(seq, valueSize))
    const r = await producer.send({ topic, messages, acks, compression })
    results.push(r)
  }
  return results
}

/**
 * consumeN reads a topic from the beginning with a fresh consumer group
 * until n messages arrived; returns [{partition, message}].
 */
async function consumeN(k, topic, n, { timeoutMs = 60000, groupId, consumerOpts = {} } = {}) {
  const consumer = k.consumer({
    groupId: groupId || uniqueName('g', 'reader'),
    maxWaitTimeInMs: 500,
    heartbeatInterval: 500,
    ...consumerOpts,
  })
  const got = []
  await consumer.connect()
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true })
    await consumer.run({
      eachBatch: async ({ batch }) => {
        for (const m of batch.messages) got.push({ partition: batch.partition, message: m })
      },
    })
    await waitFor(`${n} messages from ${topic}`, timeoutMs, () => got.length >= n, () => `have ${got.length}`)
  } finally {
    await consumer.disconnect()
  }
  return got
}

module.exports = {
  state,
  codecs,
  start,
  stop,
  restart,
  metrics,
  managedSkipReason,
  kafka,
  producerOpts,
  uniqueName,
  waitFor,
  createTopic,
  waitTopicReady,
  message,
  checkMessage,
  sendAll,
  consumeN,
  sleep,
  logTail,
  splitHostPort,
  BASE_TS,
}

// ---------------------------------------------------------------------------
// node:test glue

const nodeTest = require('node:test')

/**
 * ensureRunning restarts a managed broker that died on its own, so one crash
 * does not fail every later test (stop() still fails the file afterwards).
 */
async function ensureRunning() {
  if (state.external || !state.exited || !state.exited.done || state.stopping) return
  process.stderr.write(
    `compat: NOTE the broker had exited unexpectedly; restarting it for the next test. Broker log tail:\n${logTail(60)}\n`
  )
  await startProcess()
}

/** setup() registers the per-file broker start/stop hooks. */
function setup() {
  nodeTest.before(start, { timeout: 60000 })
  nodeTest.beforeEach(ensureRunning, { timeout: 60000 })
  nodeTest.after(stop, { timeout: 60000 })
}

/** test() is node:test's test() with a default timeout that records failures. */
function test(name, opts, fn) {
  if (typeof opts === 'function') {
    fn = opts
    opts = {}
  }
  return nodeTest.test(name, { timeout: 120000, ...opts }, async t => {
    try {
      return await fn(t)
    } catch (e) {
      state.failed = true
      throw e
    }
  })
}

/** errType digs the Kafka error type (e.g. 'INVALID_CONFIG') out of a kafkajs error. */
function errTypes(e) {
  const out = new Set()
  const walk = (x, depth) => {
    if (!x || depth > 5) return
    if (x.type) out.add(x.type)
    if (Array.isArray(x.errors)) x.errors.forEach(y => walk(y, depth + 1))
    if (Array.isArray(x.groups)) x.groups.forEach(g => walk(g.error, depth + 1))
    if (x.cause) walk(x.cause, depth + 1)
    if (x.originalError) walk(x.originalError, depth + 1)
  }
  walk(e, 0)
  return [...out]
}

/** expectKafkaError awaits p and asserts it rejects with the given Kafka error type. */
async function expectKafkaError(p, type, what) {
  let err = null
  try {
    await p
  } catch (e) {
    err = e
  }
  if (!err) throw new Error(`${what}: succeeded, want ${type}`)
  const types = errTypes(err)
  if (!types.includes(type)) {
    throw new Error(`${what}: got ${err.name}: ${err.message} (types ${JSON.stringify(types)}), want ${type}`)
  }
  return err
}

Object.assign(module.exports, { setup, test, errTypes, expectKafkaError })
