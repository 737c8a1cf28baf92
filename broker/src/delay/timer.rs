//! The timer: takes delayed records in at produce time, and appends each to its
//! partition, exactly once, when it comes due.
//!
//! - **Staging.** A second of the wheel is walked shortly before it starts
//!   ([`LOOKAHEAD_MS`]); its entries wait in memory, ordered by due time, and are
//!   released as they come due. Memory holds about one second of releases, whatever
//!   the backlog on disk. A record due in a second already staged is chained to the next
//!   unstaged second (so a restart finds it) and staged at once. Either way it is not
//!   released before its produce settles ([`Scheduled::settle`]): dropped if the batch
//!   it came in never reached the log.
//! - **Release.** Due records are re-encoded, per partition, into batches the broker
//!   produces under a producer id of its own. Each record is marked `Releasing` with its
//!   sequence number before the append, and `Released` after (or `Pending` again if the
//!   batch did not land). So only a crash leaves a record `Releasing`.
//! - **Exactly once across a crash.** After a restart a `Releasing` record whose sequence
//!   is at or below the last the partition held for the timer's producer id at start
//!   (its producer state is rebuilt from the log) was appended: it is marked released,
//!   not appended again. A record written to the store for a produce that never reached
//!   the partition (the broker died between the two writes) lies at or past the
//!   partition's log end at restart: it is dropped.
//! - **Checkpoint.** `timer.json` holds the timer's producer id and the first second not
//!   yet dealt with; segments of the store whose seconds are all before it are deleted.
//!   Both happen off the release path ([`Persister`]). A checkpoint that lags only
//!   means a longer walk after a restart: released records are marked so in the store.
//!   So it is written when segments are to be deleted (before they are), else once it
//!   lags [`CHECKPOINT_LAG_MAX_S`]: written every second, its two fsyncs were a device
//!   flush per second on every broker, delayed records or not.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use sluice_storage::record::{parse_one, BatchBuilder};
use sluice_storage::{deflate, durable};
use uuid::Uuid;

use super::split::Delayed;
use super::store::{reclaim, Entry, Head, NewEntry, Sealed, State, Store};
use super::{is_delay_header, retry, ORIGIN_OFFSET};
use crate::metrics::Metrics;
use crate::partitions::{Partition, ReplicaManager};
use crate::view::summary::summarise_appended;

/// A second is staged this long before it starts.
pub const LOOKAHEAD_MS: i64 = 1_000;
/// Staging pauses while this many records wait in memory (a burst due at once).
const MAX_STAGED: usize = 500_000;
/// At most this many records are released per tick.
const MAX_RELEASE_PER_TICK: usize = 50_000;
/// Released records are batched up to this size (or the topic's max.message.bytes).
const BATCH_BYTES: usize = 1 << 20;
/// A release that failed (its partition refused the append) is tried again this late.
const RETRY_MS: i64 = 1_000;
const CHECKPOINT_FILE: &str = "timer.json";
/// When each sealed segment of the store is next worth a reclaim pass.
const RECLAIM_FILE: &str = "reclaim.json";
/// The checkpoint on disk lags the timer by at most this many seconds (Kafka writes its
/// own recovery checkpoints once a minute): at most this much is walked again after a
/// restart.
pub const CHECKPOINT_LAG_MAX_S: i64 = 60;
/// A reclaim pass due (or a segment sealed) has the checkpoint written once it lags
/// this much: each such write costs fsyncs too.
const RECLAIM_LAG_S: i64 = 10;
/// Passes made per round of the checkpoint's writer, between checkpoint writes.
const RECLAIM_PASSES_PER_ROUND: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// The producer id the timer appends under (one for the life of the data directory).
    pub producer_id: i64,
    /// Every record chained to an earlier second has been released or dropped.
    pub done_through_s: i64,
}

impl Checkpoint {
    pub fn read(dir: &Path) -> io::Result<Option<Checkpoint>> {
        durable::read_optional(&dir.join(CHECKPOINT_FILE))?
            .map(|b| serde_json::from_slice(&b).map_err(io::Error::other))
            .transpose()
    }
    fn write(&self, dir: &Path) -> io::Result<()> {
        let json = serde_json::to_vec(self).map_err(io::Error::other)?;
        durable::write_atomically(&dir.join(CHECKPOINT_FILE), &json)
    }
}

/// Where the store and the partitions stood when the broker started.
#[derive(Debug)]
struct AtStart {
    /// Entries below this position were written before the start.
    store_end: u64,
    /// Each hosted partition's log end offset then.
    log_ends: HashMap<(Uuid, i32), i64>,
}

/// The partition a record is released to: its own, or its retry topic's dead-letter
/// topic's partition of the same number (modulo its count, so the choice survives a
/// restart). `Err(true)`: its own topic is gone; `Err(false)`: the dead-letter topic is.
fn target_of(replicas: &ReplicaManager, head: &Head, topic: &str) -> Result<Arc<Partition>, bool> {
    let origin = replicas
        .get(topic, head.partition)
        .filter(|p| p.topic_id == head.topic_id)
        .ok_or(true)?;
    if !head.dead_letter {
        return Ok(origin);
    }
    let dlq = retry::dead_letter_topic(topic);
    let n = replicas.partition_count(&dlq) as i32;
    (n > 0)
        .then(|| replicas.get(&dlq, head.partition % n))
        .flatten()
        .ok_or(false)
}

#[derive(Debug)]
struct Inner {
    store: Store,
    /// The first second not yet dealt with, as last handed to the persister.
    checkpointed_s: i64,
    /// Seconds up to this one have been walked into `staged`.
    staged_through_s: i64,
    /// Waiting records: (due ms, position) → chain second.
    staged: BTreeMap<(i64, u64), i64>,
    /// Records staged and not yet dealt with, per chain second.
    open_per_second: BTreeMap<i64, usize>,
    /// Records stored for a produce whose append has not finished: not released until
    /// it has (it may still fail, and a dead letter's target is another partition, whose
    /// lock does not wait for the produce).
    in_flight: HashSet<u64>,
    /// Those of them that came due meanwhile: position → (due ms, chain second).
    due_in_flight: HashMap<u64, (i64, i64)>,
    /// The last store write failed (a full disk): the next failure is not logged again,
    /// or every retry of every producer would add a line.
    writes_failing: bool,
}

impl Inner {
    fn stage(&mut self, now_ms: i64) -> io::Result<()> {
        let mut walked = 0;
        while self.staged.len() < MAX_STAGED
            && (self.staged_through_s + 1) * 1_000 <= now_ms + LOOKAHEAD_MS
            && walked < 100_000
        {
            let second = self.staged_through_s + 1;
            for h in self.store.chain(second)? {
                if self.staged.insert((h.due_ms, h.pos), second).is_none() {
                    *self.open_per_second.entry(second).or_default() += 1;
                }
            }
            self.staged_through_s = second;
            walked += 1;
        }
        Ok(())
    }

    fn finish(&mut self, second: i64) {
        if let Some(n) = self.open_per_second.get_mut(&second) {
            *n -= 1;
            if *n == 0 {
                self.open_per_second.remove(&second);
            }
        }
    }

    /// The first second with records not yet dealt with.
    fn done_through(&self) -> i64 {
        let staged_end = self.staged_through_s + 1;
        self.open_per_second
            .keys()
            .next()
            .map_or(staged_end, |s| (*s).min(staged_end))
    }
}

/// Writes the checkpoint, deletes collected segments and punches done entries out of
/// the sealed ones ([`reclaim`]) on a thread of its own: an fsync or an unlink can wait
/// hundreds of milliseconds on the journal while the page cache is written back, and
/// releases must not wait with it.
#[derive(Debug)]
struct Persister {
    dir: PathBuf,
    producer_id: i64,
    latest: AtomicI64,
    /// The checkpoint on disk: only entries chained before it are punched.
    on_disk_s: AtomicI64,
    doomed: Mutex<Vec<PathBuf>>,
    /// Sealed segments to look at for the first time.
    sealed: Mutex<Vec<Sealed>>,
    /// Sealed segments by the checkpoint second at which a pass over them is next due
    /// (i64::MAX: none). Only the persister's thread uses it. Kept in [`RECLAIM_FILE`],
    /// so that a restart does not read every sealed segment again to learn it.
    reclaim_at: Mutex<HashMap<PathBuf, i64>>,
    /// The earliest of those seconds (i64::MAX: none), for the timer to ask at.
    next_reclaim_s: AtomicI64,
    /// Passes made over segments since the start.
    reclaim_passes: AtomicU64,
    busy: AtomicBool,
}

impl Persister {
    fn new(dir: &Path, checkpoint: &Checkpoint) -> Persister {
        let reclaim_at = read_reclaim_schedule(dir);
        let next = reclaim_at.values().copied().min().unwrap_or(i64::MAX);
        Persister {
            dir: dir.to_owned(),
            producer_id: checkpoint.producer_id,
            latest: AtomicI64::new(checkpoint.done_through_s),
            // `DelayTimer::open` writes it before this is made.
            on_disk_s: AtomicI64::new(checkpoint.done_through_s),
            doomed: Mutex::new(Vec::new()),
            sealed: Mutex::new(Vec::new()),
            reclaim_at: Mutex::new(reclaim_at),
            next_reclaim_s: AtomicI64::new(next),
            reclaim_passes: AtomicU64::new(0),
            busy: AtomicBool::new(false),
        }
    }

    fn request(self: &Arc<Self>, done_through_s: i64, doomed: Vec<PathBuf>, sealed: Vec<Sealed>) {
        self.latest.fetch_max(done_through_s, Ordering::AcqRel);
        lock(&self.doomed).extend(doomed);
        lock(&self.sealed).extend(sealed);
        if self.busy.swap(true, Ordering::AcqRel) {
            return; // the running writer picks this up
        }
        let me = self.clone();
        std::thread::spawn(move || me.run());
    }

    fn run(&self) {
        loop {
            let done = self.latest.load(Ordering::Acquire);
            if done > self.on_disk_s.load(Ordering::Acquire) {
                let checkpoint = Checkpoint {
                    producer_id: self.producer_id,
                    done_through_s: done,
                };
                match checkpoint.write(&self.dir) {
                    Ok(()) => self.on_disk_s.store(done, Ordering::Release),
                    Err(e) => tracing::error!(error = %e, "writing the delay timer's checkpoint"),
                }
            }
            let mut reclaim_at = lock(&self.reclaim_at);
            let before = reclaim_at.clone();
            // A segment is first looked at once its first records are done; that pass
            // finds when half of the rest will be. (Before the deletions: a segment may
            // be sealed and collected in one request.)
            for s in std::mem::take(&mut *lock(&self.sealed)) {
                reclaim_at.entry(s.path).or_insert(s.first_pass_s);
            }
            for path in std::mem::take(&mut *lock(&self.doomed)) {
                reclaim_at.remove(&path);
                if let Err(e) = std::fs::remove_file(&path) {
                    tracing::error!(path = %path.display(), error = %e, "deleting a delay segment");
                }
            }
            // Only entries before the checkpoint on disk are punched: after a crash the
            // timer starts from that checkpoint and never walks back past it. (An older
            // one, if this write failed: a full disk is when holes matter most.)
            let on_disk = self.on_disk_s.load(Ordering::Acquire);
            let passes_left = self.reclaim_due(&mut reclaim_at, on_disk);
            let next = reclaim_at.values().copied().min().unwrap_or(i64::MAX);
            self.next_reclaim_s.store(next, Ordering::Release);
            if *reclaim_at != before {
                if let Err(e) = write_reclaim_schedule(&self.dir, &reclaim_at) {
                    // A restart then looks at the segments again: a cost, not a loss.
                    tracing::warn!(error = %e, "writing the delay store's reclaim schedule");
                }
            }
            drop(reclaim_at);
            self.busy.store(false, Ordering::Release);
            let more = passes_left
                || self.latest.load(Ordering::Acquire) > done
                || !lock(&self.doomed).is_empty()
                || !lock(&self.sealed).is_empty();
            if !more || self.busy.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }

    /// Makes up to [`RECLAIM_PASSES_PER_ROUND`] of the passes due by checkpoint second
    /// `done`; returns whether more are due.
    fn reclaim_due(&self, reclaim_at: &mut HashMap<PathBuf, i64>, done: i64) -> bool {
        let mut due: Vec<(i64, PathBuf)> = reclaim_at
            .iter()
            .filter(|(_, at)| **at <= done)
            .map(|(p, at)| (*at, p.clone()))
            .collect();
        due.sort();
        let more = due.len() > RECLAIM_PASSES_PER_ROUND;
        for (_, path) in due.into_iter().take(RECLAIM_PASSES_PER_ROUND) {
            self.reclaim_passes.fetch_add(1, Ordering::Relaxed);
            match reclaim(&path, done) {
                Ok(r) => {
                    if r.bytes > 0 {
                        tracing::info!(path = %path.display(), bytes = r.bytes, "reclaimed the done records of a delay segment");
                    }
                    let next = r.next_at_s.map_or(i64::MAX, |at| at.max(done + 1));
                    reclaim_at.insert(path, next);
                }
                Err(e) => {
                    // Left as it is: it is deleted once all of it is done, as before.
                    tracing::warn!(path = %path.display(), error = %e, "could not reclaim the done records of a delay segment");
                    reclaim_at.insert(path, i64::MAX);
                }
            }
        }
        more
    }

    /// Whether a pass over some sealed segment is due by checkpoint second `done`.
    fn reclaim_due_by(&self, done: i64) -> bool {
        self.next_reclaim_s.load(Ordering::Acquire) <= done
    }
}

/// The reclaim schedule of the segments that still exist; empty if unreadable (each
/// segment is then looked at again).
fn read_reclaim_schedule(dir: &Path) -> HashMap<PathBuf, i64> {
    let read = durable::read_optional(&dir.join(RECLAIM_FILE)).and_then(|b| {
        b.map(|b| serde_json::from_slice::<BTreeMap<String, i64>>(&b).map_err(io::Error::other))
            .transpose()
    });
    match read {
        Ok(schedule) => schedule
            .unwrap_or_default()
            .into_iter()
            .map(|(name, at)| (dir.join(name), at))
            .filter(|(path, _)| path.exists())
            .collect(),
        Err(e) => {
            tracing::warn!(error = %e, "reading the delay store's reclaim schedule");
            HashMap::new()
        }
    }
}

fn write_reclaim_schedule(dir: &Path, schedule: &HashMap<PathBuf, i64>) -> io::Result<()> {
    let by_name: BTreeMap<String, i64> = schedule
        .iter()
        .filter_map(|(path, at)| Some((path.file_name()?.to_str()?.to_owned(), *at)))
        .collect();
    let json = serde_json::to_vec(&by_name).map_err(io::Error::other)?;
    durable::write_atomically(&dir.join(RECLAIM_FILE), &json)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

#[derive(Debug)]
pub struct DelayTimer {
    persister: Arc<Persister>,
    producer_id: i64,
    pub max_delay_ms: i64,
    inner: Mutex<Inner>,
    at_start: AtStart,
    /// Woken when a record is staged at produce time.
    pub wake: tokio::sync::Notify,
    /// Retry topics (name and id) whose dead letters came due while their `G.dlq` did
    /// not exist: the broker creates it when auto-creation is on (else they wait for it).
    missing_dead_letter_topics: Mutex<BTreeSet<(String, Uuid)>>,
    /// Woken when one is added there.
    pub dead_letter_topic_missing: tokio::sync::Notify,
    metrics: Arc<Metrics>,
}

/// A record read back from the store to be released, with its chain second.
type Due = (Entry, i64);

/// What became of a record the timer tried to release.
enum Outcome {
    Done,
    Retry,
}

/// The delayed records one produce stored, held back from release until it settles
/// them. Dropped unsettled (its append panicked), it settles them by the partition's
/// log end, taking the partition's lock: so it must outlive that lock's guard.
#[must_use = "delayed records are held until settled"]
#[derive(Debug)]
pub struct Scheduled<'a> {
    timer: &'a DelayTimer,
    partition: &'a Partition,
    /// Where the produce's batch goes: it landed once the log end is past it.
    base_offset: i64,
    positions: Vec<u64>,
}

impl Scheduled<'_> {
    pub fn positions(&self) -> &[u64] {
        &self.positions
    }

    /// Settles by the partition's log end offset after the append, read under its lock.
    /// A failed append may still have written its batch (its fsync failed: the log
    /// refuses writes until a restart recovers it). The records then stand with it: a
    /// retry after the restart is answered as a duplicate, not stored again.
    pub fn settle(mut self, log_end: i64) {
        let positions = std::mem::take(&mut self.positions);
        self.timer.settle(&positions, log_end > self.base_offset);
    }
}

impl Drop for Scheduled<'_> {
    fn drop(&mut self) {
        if !self.positions.is_empty() {
            let log_end = self.partition.lock().log_end_offset();
            self.timer
                .settle(&self.positions, log_end > self.base_offset);
        }
    }
}

/// Whether sequence `seq` is at or below `last` (sequences wrap at i32::MAX).
fn at_or_below(seq: i32, last: i32) -> bool {
    let behind = (last as i64 - seq as i64).rem_euclid(1 << 31);
    behind < 1 << 30
}

fn seq_after(seq: i32, n: i64) -> i32 {
    ((seq as i64 + n) % (i32::MAX as i64 + 1)) as i32
}

/// Settles the records a crash left `Releasing`, before anything is released: each was
/// appended if its sequence is at or below the last its partition holds for the
/// timer's producer id (rebuilt from the log), else it is `Pending` again. Judged later,
/// releases since the start could have reused its sequence (another retry partition's
/// dead letters to the same dead-letter partition, records due earlier, a second crash)
/// and passed for it. They lie in seconds the timer had staged: from the checkpoint to
/// just past the time of the crash.
fn settle_releasing(
    store: &Store,
    checkpoint: &Checkpoint,
    replicas: &ReplicaManager,
    now_ms: i64,
) -> io::Result<()> {
    // Staged a second ahead, chained up to two past that; and a minute's margin for a
    // clock stepped back across the restart.
    let last_staged = now_ms.div_euclid(1_000) + (LOOKAHEAD_MS / 1_000) + 2 + 60;
    let (mut appended, mut again) = (0, 0);
    for second in checkpoint.done_through_s..=last_staged {
        for h in store.chain(second)? {
            if h.state != State::Releasing {
                continue;
            }
            let topic = match store.read(h.pos) {
                Ok(e) => e.topic,
                Err(e) => {
                    tracing::error!(pos = h.pos, error = %e, "unreadable delayed record skipped");
                    continue;
                }
            };
            let last = target_of(replicas, &h, &topic)
                .ok()
                .and_then(|p| p.lock().producers().last_seq(checkpoint.producer_id));
            if last.is_some_and(|l| at_or_below(h.release_seq, l)) {
                store.set_state(h.pos, State::Released, h.release_seq)?;
                appended += 1;
            } else {
                store.set_state(h.pos, State::Pending, -1)?;
                again += 1;
            }
        }
    }
    if appended + again > 0 {
        tracing::info!(
            appended,
            again,
            "settled delayed records a stop left releasing"
        );
    }
    Ok(())
}

impl DelayTimer {
    /// Opens the timer's store in `dir`, with `replicas` as the broker found them,
    /// before any produce is served.
    pub fn open(
        dir: &Path,
        checkpoint: Checkpoint,
        max_delay_ms: i64,
        segment_bytes: u64,
        replicas: &ReplicaManager,
        now_ms: i64,
        metrics: Arc<Metrics>,
    ) -> io::Result<DelayTimer> {
        // Chain seconds run up to two past the due second; the wheel must be longer
        // than any delay, so that a slot never holds two rounds of pending records.
        let slots = (max_delay_ms.max(0) as u64).div_ceil(1_000) + 3;
        let store = Store::open(dir, slots, segment_bytes)?;
        settle_releasing(&store, &checkpoint, replicas, now_ms)?;
        checkpoint.write(dir)?;
        let at_start = AtStart {
            store_end: store.end(),
            log_ends: replicas
                .all()
                .iter()
                .map(|p| ((p.topic_id, p.index), p.lock().log_end_offset()))
                .collect(),
        };
        Ok(DelayTimer {
            persister: Arc::new(Persister::new(dir, &checkpoint)),
            producer_id: checkpoint.producer_id,
            max_delay_ms,
            inner: Mutex::new(Inner {
                store,
                checkpointed_s: checkpoint.done_through_s,
                staged_through_s: checkpoint.done_through_s - 1,
                staged: BTreeMap::new(),
                open_per_second: BTreeMap::new(),
                in_flight: HashSet::new(),
                due_in_flight: HashMap::new(),
                writes_failing: false,
            }),
            at_start,
            wake: tokio::sync::Notify::new(),
            missing_dead_letter_topics: Mutex::new(BTreeSet::new()),
            dead_letter_topic_missing: tokio::sync::Notify::new(),
            metrics,
        })
    }

    /// The retry topics (name and id) found without their dead-letter topic since this
    /// was last asked.
    pub fn take_missing_dead_letter_topics(&self) -> BTreeSet<(String, Uuid)> {
        std::mem::take(
            &mut self
                .missing_dead_letter_topics
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        )
    }

    /// The producer id the timer appends under; clients may not use it.
    pub fn producer_id(&self) -> i64 {
        self.producer_id
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Stores the delayed records of one Produce partition, whose batches get the base
    /// offsets `bases`. Called under the partition's lock, just before its append.
    /// The records are not released until the produce settles them
    /// ([`Scheduled::settle`]).
    pub fn schedule<'a>(
        &'a self,
        partition: &'a Partition,
        bases: &[i64],
        delayed: &[Delayed],
    ) -> io::Result<Scheduled<'a>> {
        let mut inner = self.lock();
        let next_unstaged = inner.staged_through_s + 1;
        let entries: Vec<NewEntry<'_>> = delayed
            .iter()
            .map(|d| NewEntry {
                due_ms: d.due_ms,
                chain_s: d.due_ms.div_euclid(1_000).max(next_unstaged),
                topic_id: partition.topic_id,
                topic: &partition.topic,
                partition: partition.index,
                origin_offset: bases[d.batch] + d.offset_delta as i64,
                timestamp: d.timestamp,
                dead_letter: d.dead_letter,
                record: &d.record,
            })
            .collect();
        let positions = match inner.store.append_all(&entries) {
            Ok(positions) => {
                if std::mem::take(&mut inner.writes_failing) {
                    tracing::info!("delay store: writes succeed again");
                }
                positions
            }
            Err(e) => {
                if !std::mem::replace(&mut inner.writes_failing, true) {
                    tracing::error!(error = %e,
                        "delay store: a write failed; produces of delayed records are refused while it fails");
                }
                return Err(e);
            }
        };
        inner.in_flight.extend(positions.iter().copied());
        let mut staged_now = false;
        for (e, pos) in entries.iter().zip(&positions) {
            // Due in a second already staged: chained to the next one (for a restart to
            // find it) and staged now.
            if e.due_ms.div_euclid(1_000) < next_unstaged {
                inner.staged.insert((e.due_ms, *pos), e.chain_s);
                *inner.open_per_second.entry(e.chain_s).or_default() += 1;
                staged_now = true;
            }
        }
        drop(inner);
        Metrics::add(&self.metrics.delay_scheduled, delayed.len() as u64);
        if staged_now {
            self.wake.notify_one();
        }
        Ok(Scheduled {
            timer: self,
            partition,
            base_offset: bases.first().copied().unwrap_or(i64::MAX),
            positions,
        })
    }

    /// Ends the produce that stored `positions`: their batch `landed` in the log, or
    /// they are dropped. Those that came due meanwhile are staged again.
    fn settle(&self, positions: &[u64], landed: bool) {
        let mut inner = self.lock();
        let mut due_now = false;
        for pos in positions {
            if !landed {
                if let Err(e) = inner.store.set_state(*pos, State::Dropped, -1) {
                    tracing::error!(error = %e, "could not drop a delayed record of a failed produce");
                }
            }
            inner.in_flight.remove(pos);
            if let Some((due_ms, second)) = inner.due_in_flight.remove(pos) {
                if landed {
                    // Each staging of a record is finished once (here, a copy the walk
                    // of its chain second staged meanwhile).
                    if inner.staged.insert((due_ms, *pos), second).is_some() {
                        inner.finish(second);
                    }
                    due_now = true;
                } else {
                    inner.finish(second);
                }
            }
        }
        drop(inner);
        if due_now {
            self.wake.notify_one();
        }
    }

    /// Stages and releases what is due at `now_ms`; returns when to tick next.
    pub fn tick(&self, replicas: &ReplicaManager, now_ms: i64) -> io::Result<i64> {
        let mut due: Vec<Due> = Vec::new();
        {
            let mut inner = self.lock();
            inner.stage(now_ms)?;
            // A record held back for a retry can be staged a second time by the walk of
            // its chain second: take each position once.
            let mut taken = HashSet::new();
            while due.len() < MAX_RELEASE_PER_TICK {
                let Some(entry) = inner.staged.first_entry() else {
                    break;
                };
                if entry.key().0 > now_ms {
                    break;
                }
                let ((due_ms, pos), second) = entry.remove_entry();
                if inner.in_flight.contains(&pos) {
                    // Its produce is still appending: staged again when it settles.
                    if let Some((_, copy)) = inner.due_in_flight.insert(pos, (due_ms, second)) {
                        inner.finish(copy);
                    }
                    continue;
                }
                if !taken.insert(pos) {
                    inner.finish(second);
                    continue;
                }
                match inner.store.read(pos) {
                    Ok(e) => due.push((e, second)),
                    Err(e) => {
                        tracing::error!(pos, error = %e, "unreadable delayed record skipped");
                        inner.finish(second);
                    }
                }
            }
        }
        let mut groups: Vec<((Uuid, i32, bool), Vec<Due>)> = Vec::new();
        let mut index: HashMap<(Uuid, i32, bool), usize> = HashMap::new();
        for (e, second) in due {
            let key = (e.head.topic_id, e.head.partition, e.head.dead_letter);
            let i = *index.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push((e, second));
        }
        let mut outcomes = Vec::new();
        for (_, group) in groups {
            outcomes.extend(self.release_group(replicas, group, now_ms));
        }
        let mut inner = self.lock();
        for (entry, second, outcome) in outcomes {
            match outcome {
                Outcome::Done => inner.finish(second),
                Outcome::Retry => {
                    inner
                        .staged
                        .insert((now_ms + RETRY_MS, entry.head.pos), second);
                }
            }
        }
        let done = inner.done_through();
        let next_stage = (inner.staged_through_s + 1) * 1_000 - LOOKAHEAD_MS;
        let next_due = inner.staged.keys().next().map_or(i64::MAX, |k| k.0);
        if done > inner.checkpointed_s {
            let collected = inner.store.collect(done);
            let lag = done - inner.checkpointed_s;
            let reclaim = inner.store.has_newly_sealed() || self.persister.reclaim_due_by(done);
            if !collected.is_empty()
                || lag >= CHECKPOINT_LAG_MAX_S
                || (reclaim && lag >= RECLAIM_LAG_S)
            {
                inner.checkpointed_s = done;
                let sealed = inner.store.take_newly_sealed();
                drop(inner);
                self.persister.request(done, collected, sealed);
            }
        }
        Ok(next_stage.min(next_due))
    }

    /// Waits until the checkpoint asked for last is on disk (tests).
    pub fn wait_persisted(&self) {
        while self.persister.busy.load(Ordering::Acquire) {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// Releases one partition's due records, in order.
    fn release_group(
        &self,
        replicas: &ReplicaManager,
        group: Vec<Due>,
        now_ms: i64,
    ) -> Vec<(Entry, i64, Outcome)> {
        let first = &group[0].0;
        let (topic_id, index) = (first.head.topic_id, first.head.partition);
        let mut out = Vec::with_capacity(group.len());
        let part = match target_of(replicas, &first.head, &first.topic) {
            Ok(part) => part,
            Err(true) => {
                tracing::info!(topic = %first.topic, partition = index, records = group.len(),
                    "dropping delayed records of a deleted topic");
                self.mark(&group, State::Dropped, |_| -1);
                Metrics::add(&self.metrics.delay_dropped, group.len() as u64);
                return group
                    .into_iter()
                    .map(|(e, s)| (e, s, Outcome::Done))
                    .collect();
            }
            Err(false) => {
                tracing::warn!(topic = %first.topic, partition = index, records = group.len(),
                    "the dead-letter topic is missing: holding its records until it exists");
                self.missing_dead_letter_topics
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert((first.topic.clone(), topic_id));
                self.dead_letter_topic_missing.notify_one();
                return group
                    .into_iter()
                    .map(|(e, s)| (e, s, Outcome::Retry))
                    .collect();
            }
        };
        let mut log = part.lock();
        let last = log.producers().last_seq(self.producer_id);
        let mut todo = Vec::with_capacity(group.len());
        for (e, second) in group {
            let h = &e.head;
            let never_acked = h.pos < self.at_start.store_end
                && self
                    .at_start
                    .log_ends
                    .get(&(topic_id, index))
                    .is_none_or(|end| h.origin_offset >= *end);
            // Only a crash leaves a record `Releasing`, and those were settled at open.
            debug_assert!(h.state != State::Releasing, "a release left unsettled");
            let parsed = parse_one(&e.record).is_some();
            if !h.state.is_live() {
                // Released or dropped while a second copy of it was staged.
                out.push((e, second, Outcome::Done));
            } else if never_acked || !parsed {
                if !parsed {
                    tracing::error!(pos = h.pos, "a delayed record does not parse: dropped");
                }
                self.mark(&[(e.clone(), second)], State::Dropped, |_| -1);
                Metrics::add(&self.metrics.delay_dropped, 1);
                out.push((e, second, Outcome::Done));
            } else {
                todo.push((e, second));
            }
        }
        let max_bytes = BATCH_BYTES.min(log.config().max_message_bytes);
        let mut next_seq = last.map_or(0, |l| seq_after(l, 1));
        let mut rest = todo.into_iter().peekable();
        while rest.peek().is_some() {
            let mut chunk = Vec::new();
            let mut bytes = 0;
            while let Some((e, _)) = rest.peek() {
                let size = e.record.len() + 64;
                if !chunk.is_empty() && bytes + size > max_bytes {
                    break;
                }
                bytes += size;
                chunk.push(rest.next().expect("peeked"));
            }
            let first_ts = chunk.iter().map(|(e, _)| e.head.timestamp).min();
            let mut batch =
                BatchBuilder::new(first_ts.expect("a record"), (self.producer_id, 0, next_seq));
            for (e, _) in &chunk {
                let r = parse_one(&e.record).expect("checked above");
                let origin = e.head.origin_offset.to_string();
                let headers = r
                    .headers()
                    .filter(|(k, _)| !is_delay_header(k) && *k != ORIGIN_OFFSET.as_bytes())
                    .chain([(ORIGIN_OFFSET.as_bytes(), Some(origin.as_bytes()))]);
                batch.push(e.head.timestamp, r.key, r.value, headers);
            }
            let built = batch.finish();
            // Stored in the topic's codec, as a produced batch is (compressed here,
            // under the lock that orders the timer's sequence numbers).
            let recoded = match deflate::recompress(&built, log.config().compression, &[]) {
                Ok(recoded) => recoded,
                Err(e) => {
                    // Only a compressor failing in memory: stored uncompressed instead.
                    tracing::warn!(topic = %part.topic, partition = index, error = %e,
                        "could not compress released records in the topic's codec");
                    None
                }
            };
            let base_seq = next_seq;
            self.mark(&chunk, State::Releasing, |i| seq_after(base_seq, i as i64));
            let log_end_before = log.log_end_offset();
            // Checked as built (not read back from its codec); the log stores `recoded`.
            let appended = sluice_storage::batch::check(&built)
                .map_err(sluice_storage::Error::from)
                .and_then(|checked| {
                    let epoch = part.leader_epoch();
                    log.append_as_leader_with(&checked, recoded.as_deref(), epoch, now_ms, |_| {
                        Ok(())
                    })
                });
            let batch = recoded.map_or(built, bytes::Bytes::from);
            match appended {
                Ok(a) => {
                    part.advance_hw_to_leo(&mut log);
                    if part.has_views.load(std::sync::atomic::Ordering::Relaxed) {
                        summarise_appended(&part.summaries, &batch, a.base_offset);
                    }
                    self.mark(&chunk, State::Released, |i| seq_after(base_seq, i as i64));
                    Metrics::add(&self.metrics.delay_released, chunk.len() as u64);
                    next_seq = seq_after(base_seq, chunk.len() as i64);
                    out.extend(chunk.into_iter().map(|(e, s)| (e, s, Outcome::Done)));
                }
                Err(err) => {
                    if matches!(err, sluice_storage::Error::Closed) {
                        // Shutting down: released after the restart.
                        tracing::debug!(topic = %part.topic, partition = index,
                            "delayed records due at shutdown wait for the restart");
                    } else {
                        tracing::warn!(topic = %part.topic, partition = index, error = %err,
                            "releasing delayed records failed; trying again later");
                    }
                    // The batch may be in the log though the append failed (its fsync
                    // did, and the log now refuses writes until a restart recovers it):
                    // then it is released, or a retry would append it twice.
                    let landed = log.log_end_offset() > log_end_before;
                    let left: Vec<_> = if landed {
                        self.mark(&chunk, State::Released, |i| seq_after(base_seq, i as i64));
                        Metrics::add(&self.metrics.delay_released, chunk.len() as u64);
                        out.extend(chunk.into_iter().map(|(e, s)| (e, s, Outcome::Done)));
                        rest.collect()
                    } else {
                        chunk.into_iter().chain(rest).collect()
                    };
                    self.mark(&left, State::Pending, |_| -1);
                    out.extend(left.into_iter().map(|(e, s)| (e, s, Outcome::Retry)));
                    break;
                }
            }
        }
        out
    }

    fn mark(&self, entries: &[Due], state: State, seq: impl Fn(usize) -> i32) {
        let inner = self.lock();
        for (i, (e, _)) in entries.iter().enumerate() {
            if let Err(err) = inner.store.set_state(e.head.pos, state, seq(i)) {
                tracing::error!(pos = e.head.pos, error = %err, "could not mark a delayed record");
            }
        }
    }

    /// Records waiting in memory (staged), for tests and metrics.
    pub fn staged(&self) -> usize {
        self.lock().staged.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap() {
        assert!(at_or_below(5, 5));
        assert!(at_or_below(4, 5));
        assert!(!at_or_below(6, 5));
        assert!(at_or_below(i32::MAX, 3));
        assert!(!at_or_below(3, i32::MAX));
        assert_eq!(seq_after(i32::MAX, 1), 0);
        assert_eq!(seq_after(i32::MAX - 1, 3), 1);
    }
}

#[cfg(test)]
mod recovery_tests {
    use super::*;
    use crate::delay::store::DEFAULT_SEGMENT_BYTES;
    use crate::delay::{DELAY_MS, DELIVER_AT};
    use crate::test_images;
    use sluice_raft::MetadataImage;
    use sluice_storage::batch::{split_built, HEADER_BYTES};
    use sluice_storage::record::records;

    const NOW: i64 = 1_000_000;

    fn replicas(dir: &Path) -> (ReplicaManager, Arc<Partition>) {
        let image = image_with(&["t"]);
        let r = ReplicaManager::new(dir, 1, Default::default());
        r.sync(&image).unwrap();
        let p = r.get("t", 0).expect("hosted");
        (r, p)
    }

    /// A one-broker image with these one-partition topics (ids 1, 2, ...).
    fn image_with(topics: &[&str]) -> MetadataImage {
        topics
            .iter()
            .enumerate()
            .fold(test_images::one_broker(), |image, (i, name)| {
                test_images::with_topic(&image, name, i as u128 + 1, 1, Default::default())
            })
    }

    fn delayed(n: usize, due_ms: i64) -> Vec<Delayed> {
        (0..n)
            .map(|i| {
                let mut b = BatchBuilder::new(5, (-1, -1, -1));
                let v = format!("v{i}");
                let due = due_ms.to_string();
                b.push(
                    5,
                    Some(b"k"),
                    Some(v.as_bytes()),
                    [
                        (DELIVER_AT.as_bytes(), Some(due.as_bytes())),
                        (&b"x"[..], Some(&b"y"[..])),
                    ],
                );
                Delayed {
                    batch: 0,
                    offset_delta: i as i32,
                    due_ms,
                    timestamp: 5,
                    record: b.finish()[HEADER_BYTES..].to_vec(),
                    dead_letter: false,
                }
            })
            .collect()
    }

    /// A tick, then its checkpoint written (tests rewrite the checkpoint themselves).
    fn tick(timer: &DelayTimer, r: &ReplicaManager, now: i64) {
        timer.tick(r, now).unwrap();
        timer.wait_persisted();
    }

    /// Opens (or reopens, as a restart does) the timer, with `r` as it stands.
    fn open(dir: &Path, r: &ReplicaManager) -> DelayTimer {
        open_at(dir, r, NOW)
    }

    fn open_at(dir: &Path, r: &ReplicaManager, now: i64) -> DelayTimer {
        open_with(dir, r, now, DEFAULT_SEGMENT_BYTES)
    }

    fn open_with(dir: &Path, r: &ReplicaManager, now: i64, segment_bytes: u64) -> DelayTimer {
        let checkpoint = Checkpoint::read(dir).unwrap().unwrap_or(Checkpoint {
            producer_id: 500,
            done_through_s: NOW / 1_000,
        });
        DelayTimer::open(
            dir,
            checkpoint,
            60_000,
            segment_bytes,
            r,
            now,
            Arc::default(),
        )
        .unwrap()
    }

    /// (value, origin offset) of every record in the partition, in offset order.
    fn released(p: &Partition) -> Vec<(String, String)> {
        let log = p.lock();
        let slice = log.read(0, 1 << 20, true).unwrap().slice;
        let Some(slice) = slice else {
            return Vec::new();
        };
        let mut buf = vec![0u8; slice.len];
        std::os::unix::fs::FileExt::read_exact_at(&*slice.file, &mut buf, slice.position).unwrap();
        let mut out = Vec::new();
        for (pos, h) in split_built(&buf).unwrap() {
            let b = &buf[pos..pos + h.total_bytes()];
            for r in records(b, &h).unwrap() {
                assert_eq!(r.header(DELIVER_AT), None, "delay headers are removed");
                assert_eq!(r.header(DELAY_MS), None);
                assert_eq!(r.header("x"), Some("y"), "other headers are kept");
                out.push((
                    String::from_utf8(r.value.unwrap().to_vec()).unwrap(),
                    r.header(ORIGIN_OFFSET).unwrap().to_owned(),
                ));
            }
        }
        out
    }

    /// Stores `n` records due at `due`, as a produce at offset 0 would (with an empty
    /// batch in the partition where they were).
    fn produce(timer: &DelayTimer, p: &Partition, n: usize, due: i64) -> Vec<u64> {
        let d = delayed(n, due);
        let mut produced = BatchBuilder::new(5, (-1, -1, -1));
        for _ in 0..n {
            produced.push(5, None, None, []);
        }
        let gap = sluice_storage::batch::empty_batch(0, n as i32 - 1, 0, 5);
        let mut scheduled = None;
        let mut log = p.lock();
        let produced = produced.finish();
        let produced = sluice_storage::batch::check(&produced).unwrap();
        log.append_as_leader_with(&produced, Some(&gap), 0, NOW, |bases| {
            scheduled = Some(timer.schedule(p, bases, &d)?);
            Ok(())
        })
        .unwrap();
        let scheduled = scheduled.unwrap();
        let positions = scheduled.positions().to_vec();
        scheduled.settle(log.log_end_offset());
        positions
    }

    /// Once the checkpoint is past them, released records are punched out of the sealed
    /// segments a longer delay keeps; when each segment is next worth a pass outlives a
    /// restart, which then reads none of them again.
    #[test]
    fn released_records_give_their_disk_back_and_the_schedule_is_kept() {
        use std::os::unix::fs::MetadataExt;
        let dir = tempfile::tempdir().unwrap();
        let (r, p) = replicas(dir.path());
        let d = dir.path().join("d");
        let timer = open_with(&d, &r, NOW, 16 << 10);
        produce(&timer, &p, 150, NOW + 1_000);
        produce(&timer, &p, 1, NOW + 30_000);
        produce(&timer, &p, 300, NOW + 1_000);
        let sealed = || -> Vec<PathBuf> {
            let mut v: Vec<PathBuf> = std::fs::read_dir(&d)
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.to_string_lossy().ends_with(".delay"))
                .filter(|p| p.file_name().unwrap().to_string_lossy().contains('-'))
                .collect();
            v.sort();
            v
        };
        let bytes = || -> (u64, u64) {
            let meta: Vec<_> = sealed().iter().map(|p| p.metadata().unwrap()).collect();
            (
                meta.iter().map(|m| m.len()).sum(),
                meta.iter().map(|m| m.blocks() * 512).sum(),
            )
        };
        assert!(bytes().0 >= 32 << 10, "{:?}", bytes());
        for now in [NOW + 1_000, NOW + 2_000, NOW + 3_000] {
            tick(&timer, &r, now);
        }
        assert_eq!(released(&p).len(), 450);
        // The segment holding the long one stays, mostly holes.
        let (apparent, allocated) = bytes();
        assert!(apparent >= 16 << 10, "{apparent}");
        assert!(allocated < apparent / 2, "{allocated} of {apparent}");
        let schedule = read_reclaim_schedule(&d);
        assert_eq!(
            schedule.keys().cloned().collect::<BTreeSet<_>>(),
            sealed().into_iter().collect()
        );
        assert!(schedule.values().all(|at| *at == i64::MAX), "{schedule:?}");
        drop(timer);
        let timer = open_with(&d, &r, NOW + 3_000, 16 << 10);
        tick(&timer, &r, NOW + 4_000);
        assert_eq!(timer.persister.reclaim_passes.load(Ordering::Relaxed), 0);
        for now in [NOW + 30_000, NOW + 31_000] {
            tick(&timer, &r, now);
        }
        assert_eq!(released(&p).len(), 451);
        assert!(sealed().is_empty(), "all done: deleted");
        assert!(read_reclaim_schedule(&d).is_empty());
    }

    /// An accepted record is released even when its release batch is larger than the
    /// topic's max.message.bytes (lowered since, or grown by the broker's header): a
    /// refusal would hold it, and every later one of its partition, forever.
    #[test]
    fn a_record_larger_than_max_message_bytes_is_still_released() {
        let dir = tempfile::tempdir().unwrap();
        let (r, p) = replicas(dir.path());
        let timer = open(&dir.path().join("d"), &r);
        produce(&timer, &p, 2, NOW + 1_000);
        {
            let mut log = p.lock();
            let mut config = log.config().clone();
            config.max_message_bytes = 10;
            log.set_config(config);
        }
        tick(&timer, &r, NOW + 1_000);
        assert_eq!(released(&p).len(), 2);
    }

    #[test]
    fn releases_when_due_and_not_before() {
        let dir = tempfile::tempdir().unwrap();
        let (r, p) = replicas(dir.path());
        let timer = open(&dir.path().join("d"), &r);
        produce(&timer, &p, 3, NOW + 2_500);
        tick(&timer, &r, NOW + 2_000);
        assert_eq!(timer.staged(), 3, "staged a second ahead");
        assert!(released(&p).is_empty());
        tick(&timer, &r, NOW + 2_499);
        assert!(released(&p).is_empty());
        tick(&timer, &r, NOW + 2_500);
        let got = released(&p);
        assert_eq!(
            got,
            [("v0", "0"), ("v1", "1"), ("v2", "2")].map(|(a, b)| (a.into(), b.into()))
        );
        assert_eq!(p.lock().log_end_offset(), 6);
        // Nothing is released twice. The checkpoint is not rewritten each second, but
        // lags by at most CHECKPOINT_LAG_MAX_S.
        let checkpointed = || {
            Checkpoint::read(&dir.path().join("d"))
                .unwrap()
                .unwrap()
                .done_through_s
        };
        tick(&timer, &r, NOW + 5_000);
        assert_eq!(released(&p).len(), 3);
        assert_eq!(checkpointed(), NOW / 1_000);
        let later = NOW + (CHECKPOINT_LAG_MAX_S + 5) * 1_000;
        tick(&timer, &r, later);
        assert_eq!(released(&p).len(), 3);
        assert!(checkpointed() > (NOW + 2_500) / 1_000);
        assert!(checkpointed() >= later / 1_000 - CHECKPOINT_LAG_MAX_S);
    }

    #[test]
    fn a_crash_around_the_append_releases_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        let ddir = dir.path().join("d");
        let (r, p) = replicas(dir.path());
        let timer = open(&ddir, &r);
        let positions = produce(&timer, &p, 4, NOW + 1_500);
        tick(&timer, &r, NOW + 1_600);
        assert_eq!(released(&p).len(), 4);
        // As if the broker died after the append, before the records were marked
        // released and before the checkpoint moved: they are found again as Releasing.
        {
            let inner = timer.lock();
            for (i, pos) in positions.iter().enumerate() {
                inner
                    .store
                    .set_state(*pos, State::Releasing, i as i32)
                    .unwrap();
            }
        }
        Checkpoint {
            producer_id: 500,
            done_through_s: NOW / 1_000,
        }
        .write(&ddir)
        .unwrap();
        drop(timer);
        let timer = open(&ddir, &r);
        tick(&timer, &r, NOW + 3_000);
        assert_eq!(
            released(&p).len(),
            4,
            "appended before the crash: not again"
        );

        // Now a crash after the mark, before the append: released once, after restart.
        let more = produce(&timer, &p, 2, NOW + 4_200);
        {
            let inner = timer.lock();
            for (i, pos) in more.iter().enumerate() {
                inner
                    .store
                    .set_state(*pos, State::Releasing, 4 + i as i32)
                    .unwrap();
            }
        }
        drop(timer);
        let timer = open_at(&ddir, &r, NOW + 4_250);
        tick(&timer, &r, NOW + 4_300);
        let got = released(&p);
        assert_eq!(got.len(), 6);
        assert_eq!(got[4].0, "v0");
        assert_eq!(got[5].0, "v1");
    }

    #[test]
    fn a_dead_letter_held_for_its_missing_topic_is_released_once() {
        let dir = tempfile::tempdir().unwrap();
        let r = ReplicaManager::new(dir.path(), 1, Default::default());
        r.sync(&image_with(&["g.retry"])).unwrap();
        let retry_part = r.get("g.retry", 0).unwrap();
        let timer = open(&dir.path().join("d"), &r);
        tick(&timer, &r, NOW); // stages a second ahead: what is due now comes in late
        let mut d = delayed(1, NOW);
        d[0].dead_letter = true;
        let mut scheduled = None;
        let mut log = retry_part.lock();
        let mut produced = BatchBuilder::new(5, (-1, -1, -1));
        produced.push(5, None, None, []);
        let gap = sluice_storage::batch::empty_batch(0, 0, 0, 5);
        let produced = produced.finish();
        let produced = sluice_storage::batch::check(&produced).unwrap();
        log.append_as_leader_with(&produced, Some(&gap), 0, NOW, |bases| {
            scheduled = Some(timer.schedule(&retry_part, bases, &d)?);
            Ok(())
        })
        .unwrap();
        scheduled.unwrap().settle(log.log_end_offset());
        drop(log);
        tick(&timer, &r, NOW + 5); // g.dlq is missing: held back
        r.sync(&image_with(&["g.retry", "g.dlq"])).unwrap();
        // Its chain second is walked (a second copy staged) as the held one comes due.
        tick(&timer, &r, NOW + 1_010);
        tick(&timer, &r, NOW + 1_100);
        tick(&timer, &r, NOW + 4_000);
        let dlq = r.get("g.dlq", 0).unwrap();
        assert_eq!(released(&dlq).len(), 1, "released once");
        assert_eq!(timer.staged(), 0);
    }

    /// A record due at once is staged as it is stored, but not released until its
    /// produce has settled: a produce that then fails must not have released it.
    #[test]
    fn a_record_waits_for_its_produce_to_settle() {
        let dir = tempfile::tempdir().unwrap();
        let (r, p) = replicas(dir.path());
        let timer = open(&dir.path().join("d"), &r);
        tick(&timer, &r, NOW); // stages a second ahead: what is due now is staged at once
                               // The partition's log end stays 0 here: settling at 0 is a batch that never
                               // landed, at 1 one that did.
        let failed = timer.schedule(&p, &[0], &delayed(2, NOW)).unwrap();
        tick(&timer, &r, NOW + 5);
        assert!(released(&p).is_empty(), "its produce is still appending");
        failed.settle(0);
        tick(&timer, &r, NOW + 10);
        assert!(released(&p).is_empty(), "its produce failed");
        // Dropped unsettled (its append panicked), it settles by the log end it finds.
        drop(timer.schedule(&p, &[0], &delayed(1, NOW)).unwrap());
        tick(&timer, &r, NOW + 12);
        assert!(released(&p).is_empty(), "its batch is not in the log");
        let landed = timer.schedule(&p, &[0], &delayed(1, NOW + 10)).unwrap();
        tick(&timer, &r, NOW + 15);
        assert!(released(&p).is_empty());
        landed.settle(1);
        tick(&timer, &r, NOW + 20);
        assert_eq!(released(&p).len(), 1);
        assert_eq!(timer.staged(), 0);
        // Every second it staged is dealt with: the checkpoint can move past them.
        let inner = timer.lock();
        assert_eq!(inner.done_through(), inner.staged_through_s + 1);
    }

    /// A record left `Releasing` by a crash, whose append never happened, is settled
    /// at start: releases since then (here, of a record due earlier) reuse its
    /// sequence and must not pass for it, even across a second crash.
    #[test]
    fn a_record_left_releasing_is_settled_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let ddir = dir.path().join("d");
        let (r, p) = replicas(dir.path());
        let timer = open(&ddir, &r);
        let later = produce(&timer, &p, 1, NOW + 3_500);
        produce(&timer, &p, 1, NOW + 1_500);
        // The broker died after marking `later` for sequence 0, before appending it.
        timer
            .lock()
            .store
            .set_state(later[0], State::Releasing, 0)
            .unwrap();
        drop(timer);
        let timer = open(&ddir, &r);
        tick(&timer, &r, NOW + 1_600);
        assert_eq!(released(&p).len(), 1, "the earlier one, as sequence 0");
        drop(timer); // and died again
        let timer = open_at(&ddir, &r, NOW + 1_700);
        tick(&timer, &r, NOW + 3_600);
        assert_eq!(
            released(&p).len(),
            2,
            "the one left releasing was never appended"
        );
    }

    #[test]
    fn records_of_a_produce_that_never_landed_are_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let ddir = dir.path().join("d");
        let (r, p) = replicas(dir.path());
        let timer = open(&ddir, &r);
        let d = delayed(2, NOW + 1_200);
        // Stored, then the broker "dies" before the partition append.
        std::mem::forget(timer.schedule(&p, &[0], &d).unwrap());
        drop(timer);
        let timer = open(&ddir, &r);
        tick(&timer, &r, NOW + 2_000);
        assert!(released(&p).is_empty());
        assert_eq!(timer.staged(), 0);
    }
}
