//! A partition's log: the segments, its offsets and the policies that act on them.
//! Not thread-safe: the broker holds it behind a lock and does the socket I/O for reads
//! outside that lock, from the [`FileSlice`] a read returns.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::records::RecordBatchDecoder;

use crate::background;
use crate::batch::{self, BatchError, BatchHeader};
use crate::config::{LogConfig, TimestampType};
use crate::durable;
use crate::error::{Error, IoContext, Result};
use crate::producer::{ProducerStateTable, SequenceCheck};
use crate::recovery_point::RecoveryPoint;
use crate::reserve;
use crate::segment::{self, Segment};

const LOG_START_FILE: &str = "log-start-offset";

/// A byte range of a segment file, to be sent as it is (sendfile).
#[derive(Debug, Clone)]
pub struct FileSlice {
    pub file: Arc<File>,
    pub position: u64,
    pub len: usize,
}

#[derive(Debug, Clone)]
pub struct ReadResult {
    /// None when there is nothing to return at that offset yet.
    pub slice: Option<FileSlice>,
    pub high_watermark: i64,
    pub log_start_offset: i64,
    /// Bytes from the offset read to the high watermark, whatever the read's limits let
    /// through: what Kafka's `DelayedFetch` counts against `min_bytes`. `usize::MAX`
    /// when the offset lies in a segment before the one the high watermark is in (a
    /// long poll ends there at once, as Kafka's does).
    pub readable_bytes: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppendResult {
    pub base_offset: i64,
    pub last_offset: i64,
    /// The broker's timestamp when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    pub log_start_offset: i64,
    /// The request was a retry of batches already stored: nothing was written.
    pub duplicate: bool,
    pub records: i64,
}

#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    config: LogConfig,
    segments: BTreeMap<i64, Segment>,
    log_start_offset: i64,
    high_watermark: i64,
    /// Where the high watermark falls: (segment base offset, byte position).
    hw_position: (i64, u64),
    /// (leader epoch, first offset written in it), epochs increasing.
    epochs: Vec<(i32, i64)>,
    producers: ProducerStateTable,
    unflushed_messages: i64,
    last_flush_ms: i64,
    poisoned: bool,
    /// Set by `close`: nothing is written after it, so what the close flushed and cut
    /// stays the log's last state until the next start.
    closed: bool,
    /// Offsets below it are on disk; moved by the background thread after a roll.
    recovery_point: Arc<RecoveryPoint>,
    /// Sealed segments ending at or below it have been handed to the background thread.
    flush_queued_upto: i64,
    /// Set when `open` created the directory, until a flush of written records has
    /// synced it and the directory holding it: before that, a power failure could lose
    /// the segment's name, or the whole directory, with what the flush made durable.
    /// (A roll's background job syncs the directory when it writes the recovery point.)
    dir_unsynced: bool,
}

/// Reads an offset checkpoint (`log-start-offset`, `recovery-point-offset`): None when
/// the file is missing or does not hold a number.
pub fn read_offset_file(dir: &Path, name: &str) -> std::io::Result<Option<i64>> {
    let Some(bytes) = durable::read_optional(&dir.join(name))? else {
        return Ok(None);
    };
    let text = String::from_utf8(bytes)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
    Ok(text.trim().parse().ok())
}

impl PartitionLog {
    /// Opens the log in `dir`, creating it if needed, and recovers every segment holding
    /// offsets at or past the recovery point (all of them if it was never written). A
    /// segment found torn or corrupt is cut there, and the segments after it are deleted:
    /// their batches would follow a hole.
    pub fn open(dir: &Path, config: LogConfig, now_ms: i64) -> Result<Self> {
        let created = !dir.exists();
        std::fs::create_dir_all(dir).during("creating the partition directory")?;
        let mut bases = Vec::new();
        for entry in std::fs::read_dir(dir).during("listing the partition directory")? {
            let name = entry.during("listing the partition directory")?.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(segment::DELETED_SUFFIX) {
                // Deleted before a stop, not yet removed.
                segment::remove_if_present(&dir.join(&*name))
                    .during("removing a deleted segment")?;
                continue;
            }
            if let Some(base) = name
                .strip_suffix(".log")
                .and_then(|b| b.parse::<i64>().ok())
            {
                bases.push(base);
            }
        }
        bases.sort_unstable();
        let checkpoint =
            read_offset_file(dir, LOG_START_FILE).during("reading the log start offset")?;
        let recovery_point = RecoveryPoint::read(dir).during("reading the recovery point")?;
        let mut log = PartitionLog {
            dir: dir.to_owned(),
            config,
            segments: BTreeMap::new(),
            log_start_offset: 0,
            high_watermark: 0,
            hw_position: (0, 0),
            epochs: Vec::new(),
            producers: ProducerStateTable::default(),
            unflushed_messages: 0,
            last_flush_ms: now_ms,
            poisoned: false,
            closed: false,
            recovery_point: RecoveryPoint::new(dir, i64::MIN),
            flush_queued_upto: i64::MIN,
            dir_unsynced: created,
        };
        for (i, &base) in bases.iter().enumerate() {
            let next_base = bases.get(i + 1).copied();
            if log
                .segments
                .values()
                .next_back()
                .is_some_and(|prev| base < prev.next_offset())
            {
                // Overlaps the segment before it. An empty one is a roll that failed
                // after creating its file: it alone goes. Any other is left by a cut
                // whose removals did not reach the disk: it and all after it go.
                let empty = std::fs::metadata(segment::log_path(dir, base))
                    .during("opening a segment")?
                    .len()
                    == 0;
                tracing::warn!(dir = %dir.display(), base, empty, "segment overlaps the one before it");
                if empty {
                    log.remove_segments_from(&[base])?;
                    continue;
                }
                log.remove_segments_from(&bases[i..])?;
                break;
            }
            let recover = match (recovery_point, next_base) {
                (Some(point), Some(next)) => next > point,
                _ => true,
            };
            let (producers, epochs) = (&mut log.producers, &mut log.epochs);
            let (seg, recovered) = Segment::open(
                dir,
                base,
                log.config.segment_index_bytes,
                log.config.index_interval_bytes,
                recover,
                |h| {
                    producers.record(h);
                    if epochs
                        .last()
                        .is_none_or(|&(e, _)| h.partition_leader_epoch > e)
                    {
                        epochs.push((h.partition_leader_epoch, h.base_offset));
                    }
                },
            )
            .during("opening a segment")?;
            let cut = recovered.truncated_bytes > 0;
            if cut {
                tracing::warn!(dir = %dir.display(), base, truncated = recovered.truncated_bytes, "recovered segment: cut an invalid tail");
                // The cut must be on disk before anything is appended after it.
                seg.sync_log().during("syncing a recovered segment")?;
            }
            log.segments.insert(base, seg);
            if cut && next_base.is_some() {
                log.remove_segments_from(&bases[i + 1..])?;
                break;
            }
        }
        if log.segments.is_empty() {
            let base = checkpoint.unwrap_or(0).max(0);
            log.segments.insert(base, log.new_segment(base)?);
        }
        let first_base = *log.segments.keys().next().expect("a segment");
        log.log_start_offset = checkpoint.unwrap_or(first_base).max(first_base);
        // Recovered segments may still be only in the page cache (a killed process), so
        // the next roll's flush starts from the point, not from the active segment.
        let point = recovery_point
            .unwrap_or(first_base)
            .clamp(first_base, log.active().base_offset);
        if recovery_point.is_some_and(|stored| stored > point) {
            // Recovery cut below the stored point: segments rolled after the cut must
            // not be trusted at a later start.
            RecoveryPoint::store(dir, point).during("writing the recovery point")?;
        }
        log.recovery_point = RecoveryPoint::new(dir, point);
        log.flush_queued_upto = point;
        // Batches stored without a timestamp (all their records delayed) leave their
        // producers' last time unknown: it counts from now, so a restart does not expire
        // them at once.
        log.producers.date_unknown_times(now_ms);
        let leo = log.log_end_offset();
        log.set_high_watermark(leo);
        Ok(log)
    }

    /// Removes segments recovery cannot keep (after a cut, their batches would follow a
    /// hole; or overlapping), and syncs the directory so they stay gone.
    fn remove_segments_from(&self, bases: &[i64]) -> Result<()> {
        for &base in bases {
            tracing::warn!(dir = %self.dir.display(), base, "recovery removes a segment");
            Segment::remove_files(&self.dir, base).during("deleting a segment")?;
        }
        durable::sync_dir(&self.dir).during("syncing the partition directory")
    }

    fn new_segment(&self, base: i64) -> Result<Segment> {
        Segment::create(
            &self.dir,
            base,
            self.config.segment_index_bytes,
            self.config.index_interval_bytes,
        )
        .during("creating a segment")
    }

    fn active(&self) -> &Segment {
        self.segments
            .values()
            .next_back()
            .expect("a log always has a segment")
    }
    fn active_mut(&mut self) -> &mut Segment {
        self.segments
            .values_mut()
            .next_back()
            .expect("a log always has a segment")
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn set_config(&mut self, config: LogConfig) {
        self.config = config;
    }
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn size_bytes(&self) -> u64 {
        self.segments.values().map(Segment::size).sum()
    }
    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
    pub fn producers(&self) -> &ProducerStateTable {
        &self.producers
    }
    /// Forgets producers idle for `max_idle_ms` (see [`ProducerStateTable::remove_expired`]).
    pub fn expire_producers(
        &mut self,
        now_ms: i64,
        max_idle_ms: i64,
        keep: impl Fn(i64) -> bool,
    ) -> usize {
        self.producers.remove_expired(now_ms, max_idle_ms, keep)
    }
    pub fn latest_epoch(&self) -> Option<i32> {
        self.epochs.last().map(|&(e, _)| e)
    }

    /// Moves the high watermark (at most the log end offset).
    pub fn set_high_watermark(&mut self, hw: i64) {
        let hw = hw.min(self.log_end_offset()).max(self.log_start_offset);
        debug_assert!(hw <= self.log_end_offset());
        self.high_watermark = hw;
        let (&base, seg) = self
            .segments
            .range(..=hw)
            .next_back()
            .unwrap_or_else(|| self.segments.iter().next().expect("segment"));
        let pos = if hw >= seg.next_offset() {
            seg.size()
        } else {
            seg.find_offset(hw, seg.size())
                .ok()
                .flatten()
                .map_or(seg.size(), |l| l.position)
        };
        self.hw_position = (base, pos);
    }

    /// Records that this replica leads from `epoch` on (Kafka assigns the epoch's start
    /// offset when a leader is elected, before it has written anything).
    pub fn assign_epoch(&mut self, epoch: i32) {
        if self.latest_epoch().is_none_or(|e| epoch > e) {
            self.epochs.push((epoch, self.log_end_offset()));
        }
    }

    /// Validates and appends the batches of one Produce partition as leader.
    pub fn append_as_leader(
        &mut self,
        records: &[u8],
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendResult> {
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        let records = batch::check(records)?;
        self.append_as_leader_with(&records, None, leader_epoch, now_ms, |_| Ok(()))
    }

    /// As [`Self::append_as_leader`], with two additions for the broker's own rewrites.
    /// `stored`, if given, is written in place of `records` once `records` has passed
    /// every check: the same batches with records taken out (same count of batches, same
    /// offsets and producer fields). `before_write` is called with the offset each batch
    /// will get, once every check has passed and just before anything is written (never
    /// for a retry found to be a duplicate); if it fails, nothing is written.
    pub fn append_as_leader_with(
        &mut self,
        records: &batch::Validated<'_>,
        stored: Option<&[u8]>,
        leader_epoch: i32,
        now_ms: i64,
        before_write: impl FnOnce(&[i64]) -> std::io::Result<()>,
    ) -> Result<AppendResult> {
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        let validated = records;
        let batches = validated.batches();
        let records = validated.bytes();
        if batches.is_empty() {
            return Err(Error::NoBatches);
        }
        // Check everything before writing anything: a refused request stores nothing.
        let mut scratch = ProducerStateTable::default();
        let mut duplicate = None;
        let mut next = self.log_end_offset();
        // `max.message.bytes` bounds what clients produce, and the Produce handler
        // checks it before reading a record; the broker's own writes (delayed records
        // coming due, which it accepted at their compressed size; committed offsets)
        // are not refused for it, or an accepted record could never be released.
        for (_, h) in batches {
            if h.is_control() {
                return Err(BatchError::ControlBatch.into());
            }
            if h.is_transactional() {
                return Err(BatchError::Transactional.into());
            }
            if h.has_producer_id() {
                if scratch.get(h.producer_id).is_none() {
                    if let Some(e) = self.producers.get(h.producer_id) {
                        scratch.seed(h.producer_id, e.clone());
                    }
                }
                match scratch.check(h)? {
                    SequenceCheck::Duplicate(meta) => duplicate = Some(meta),
                    SequenceCheck::Append => {
                        let mut assigned = *h;
                        assigned.base_offset = next;
                        scratch.record(&assigned);
                    }
                }
            }
            next += h.last_offset_delta as i64 + 1;
        }
        if let Some(meta) = duplicate {
            if batches.len() > 1 {
                return Err(Error::DuplicateSequence);
            }
            // A retry is answered as the original was: on a LogAppendTime topic with the
            // time the broker stamped on it (its max timestamp), as Kafka's
            // `UnifiedLog.append` answers a duplicate; a client reports that time as
            // its records' timestamp.
            let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
            return Ok(AppendResult {
                base_offset: meta.base_offset,
                last_offset: meta.last_offset,
                log_append_time_ms: if log_append { meta.max_timestamp } else { -1 },
                log_start_offset: self.log_start_offset,
                duplicate: true,
                records: 0,
            });
        }

        let base_offset = self.log_end_offset();
        let mut bases = Vec::with_capacity(batches.len());
        let mut at = base_offset;
        for (_, h) in batches {
            bases.push(at);
            at += h.last_offset_delta as i64 + 1;
        }
        before_write(&bases).during("preparing the append")?;
        let log_append = self.config.timestamp_type == TimestampType::LogAppendTime;
        let built;
        let (source, batches) = match stored {
            None => (records, batches),
            Some(stored) => {
                built = batch::split_built(stored)?;
                debug_assert_eq!(built.len(), batches.len());
                debug_assert!(built.iter().zip(batches).all(|((_, b), (_, c))| {
                    (b.last_offset_delta, b.producer_id, b.base_sequence)
                        == (c.last_offset_delta, c.producer_id, c.base_sequence)
                }));
                (stored, &built[..])
            }
        };
        let mut records_appended = 0i64;
        for (i, (pos, h)) in batches.iter().enumerate() {
            let bytes = &source[*pos..*pos + h.total_bytes()];
            self.maybe_roll(h, now_ms)?;
            let offset = self.log_end_offset();
            let mut assigned = *h;
            assigned.base_offset = offset;
            assigned.partition_leader_epoch = leader_epoch;
            // Kafka stores the records' own largest timestamp as a CreateTime batch's max
            // timestamp, whatever the client wrote there; retention and the time index
            // go by it. Clients write the same, so this copy is for the odd one out. A
            // batch the broker rebuilt (`stored`) carries its kept records' largest.
            let max_timestamp = match stored {
                None => validated.max_timestamp(i),
                Some(_) => h.max_timestamp,
            };
            let create_time_fix =
                !log_append && (h.max_timestamp != max_timestamp || h.is_log_append_time());
            // The batch as stored: copied whole when the broker sets a timestamp in it,
            // else only its first 16 bytes (base offset, leader epoch) differ.
            let mut owned = Vec::new();
            let mut assigned_head = [0u8; 16];
            let (head, body): (&[u8], &[u8]) = if log_append || create_time_fix {
                owned.extend_from_slice(bytes);
                batch::assign(&mut owned, offset, leader_epoch);
                if log_append {
                    batch::set_log_append_time(&mut owned, now_ms);
                    assigned.max_timestamp = now_ms;
                    assigned.attributes |= 0x08;
                } else {
                    batch::set_create_time(&mut owned, max_timestamp);
                    assigned.max_timestamp = max_timestamp;
                    assigned.attributes &= !0x08;
                }
                owned.split_at(16)
            } else {
                assigned_head.copy_from_slice(&bytes[..16]);
                batch::assign(&mut assigned_head, offset, leader_epoch);
                (&assigned_head, &bytes[16..])
            };
            if let Err(e) = self.active_mut().append(head, body, &assigned, now_ms) {
                // It may have written the batch, and moved the log end, before its index
                // write failed, with the producer state not knowing it.
                self.poison("append", &e);
                return Err(Error::Io {
                    op: "appending",
                    source: e,
                });
            }
            let mut producer_batch = assigned;
            if stored.is_some() && !log_append {
                // A batch the broker stored without (some of) its records keeps its
                // producer's state by the time of what the producer sent: one whose
                // records were all delayed has no timestamp in the log, and would let its
                // producer expire at once. Kafka keeps an emptied batch's max timestamp.
                producer_batch.max_timestamp = validated.max_timestamp(i);
            }
            self.producers.record(&producer_batch);
            if self.latest_epoch().is_none_or(|e| leader_epoch > e) {
                self.epochs.push((leader_epoch, offset));
            }
            records_appended += h.records_count as i64;
        }
        let roll_at = self.config.segment_bytes;
        self.active_mut().reserve_ahead(roll_at);
        self.unflushed_messages += records_appended;
        if self.unflushed_messages >= self.config.flush_messages {
            self.flush(now_ms)?;
        }
        Ok(AppendResult {
            base_offset,
            last_offset: self.log_end_offset() - 1,
            log_append_time_ms: if log_append { now_ms } else { -1 },
            log_start_offset: self.log_start_offset,
            duplicate: false,
            records: records_appended,
        })
    }

    fn maybe_roll(&mut self, next: &BatchHeader, now_ms: i64) -> Result<()> {
        let seg = self.active();
        if seg.is_empty() {
            return Ok(());
        }
        let full = seg.size() + next.total_bytes() as u64 > self.config.segment_bytes;
        let aged = seg
            .first_append_ms
            .is_some_and(|t| now_ms - t >= self.config.segment_ms);
        let overflow = self.log_end_offset() + next.last_offset_delta as i64 - seg.base_offset
            > u32::MAX as i64;
        if full || aged || overflow || seg.indexes_full() {
            self.roll()?;
        }
        Ok(())
    }

    /// Seals the active segment, starts a new one at the log end offset and hands the
    /// sealed segment to the background thread, which then moves the recovery point to `base`.
    pub fn roll(&mut self) -> Result<()> {
        let base = self.log_end_offset();
        if self.active().base_offset == base {
            return Ok(());
        }
        let queued = self.flush_queued_upto;
        let unsynced = self
            .segments
            .values_mut()
            .filter(|s| s.next_offset() > queued)
            .map(Segment::seal)
            .collect::<std::io::Result<Vec<_>>>()
            .during("sealing a segment")?;
        let seg = self.new_segment(base)?;
        self.segments.insert(base, seg);
        // Only now is no sealed segment appended to again.
        for sealed in &unsynced {
            reserve::release_unused(sealed.log.clone(), sealed.log_len);
        }
        let point = self.recovery_point.clone();
        background::run(move || point.sync_and_advance(&unsynced, base));
        self.flush_queued_upto = base;
        Ok(())
    }

    /// An I/O error left the files in doubt (a flush or an append failed): the log
    /// refuses writes until a restart recovers it from the files, as Kafka takes a log
    /// directory offline on an I/O error.
    fn poison(&mut self, op: &str, e: &std::io::Error) {
        self.poisoned = true;
        tracing::error!(dir = %self.dir.display(), error = %e, "{op} failed: log refuses writes until restart");
    }

    /// A flush failed, here or in the background thread: the page cache can no longer be trusted.
    /// Also once retired: the directory may be another topic's by now.
    fn refuses_writes(&self) -> bool {
        self.poisoned || self.recovery_point.failed() || self.recovery_point.retired()
    }

    /// Why a write is refused, if it is: the log is closed, or it is in doubt.
    fn write_refusal(&self) -> Option<Error> {
        if self.closed {
            Some(Error::Closed)
        } else if self.refuses_writes() {
            Some(Error::Poisoned)
        } else {
            None
        }
    }

    /// The offset below which every batch is known to be on disk.
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point.offset()
    }

    /// Stops the background thread from writing into the directory (the partition is being deleted
    /// and its directory may be renamed, or re-created by a new topic of the same name).
    pub fn retire(&self) {
        self.recovery_point.retire();
    }

    /// Flushes the active segment (`flush.messages` / `flush.ms` / shutdown). A failure
    /// poisons the log.
    /// Sealed segments whose background sync may not have run yet are synced too, so
    /// that what a flush covers does not depend on where the segments roll.
    pub fn flush(&mut self, now_ms: i64) -> Result<()> {
        if self.recovery_point.retired() {
            return Ok(());
        }
        let point = self.recovery_point.offset();
        let active = self.active().base_offset;
        let synced = self
            .segments
            .range(..active)
            .filter(|(_, s)| s.next_offset() > point)
            .try_for_each(|(_, s)| s.sync_log())
            .and_then(|()| self.active().flush())
            .and_then(|()| self.sync_new_dir());
        if let Err(e) = synced {
            self.poison("flush", &e);
            return Err(Error::Poisoned);
        }
        self.unflushed_messages = 0;
        self.last_flush_ms = now_ms;
        Ok(())
    }

    /// Flushes, then cuts the active segment's indexes to their entries, as Kafka leaves
    /// a log it closes (clean shutdown). From then on every write is refused with
    /// [`Error::Closed`] (an append would grow the indexes' tails back) and retention
    /// deletes nothing; reads go on.
    pub fn close(&mut self, now_ms: i64) -> Result<()> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        self.flush(now_ms)?;
        if self.refuses_writes() {
            return Ok(());
        }
        self.active_mut()
            .trim_indexes()
            .during("trimming the indexes")
    }

    /// The first flush of records written to a directory `open` created also syncs the
    /// directory and its parent, as Kafka syncs a log's directory before relying on a
    /// new segment. Without records nothing depends on it (and a shutdown flushing
    /// thousands of new, empty logs does not pay two device flushes for each).
    fn sync_new_dir(&mut self) -> std::io::Result<()> {
        if !self.dir_unsynced || self.unflushed_messages == 0 {
            return Ok(());
        }
        durable::sync_dir(&self.dir)?;
        durable::sync_parent(&self.dir)?;
        self.dir_unsynced = false;
        Ok(())
    }

    /// Flushes if `flush.ms` has passed since the last flush and something is unflushed.
    pub fn flush_if_due(&mut self, now_ms: i64) -> Result<()> {
        if self.unflushed_messages > 0 && now_ms - self.last_flush_ms >= self.config.flush_ms {
            self.flush(now_ms)?;
        }
        Ok(())
    }

    /// Reads from `offset` up to the high watermark: at most `max_bytes`, but the whole
    /// first batch when `min_one_batch` (KIP-74), and nothing when the first batch does
    /// not fit otherwise. Like Kafka, the slice may end inside a later batch; clients drop
    /// a partial trailing batch.
    pub fn read(&self, offset: i64, max_bytes: usize, min_one_batch: bool) -> Result<ReadResult> {
        debug_assert!(self.high_watermark <= self.log_end_offset());
        // The log end is only needed past the high watermark: finding it walks the
        // segment map, cache misses a Fetch of thousands of partitions pays for each.
        let past_end = offset > self.high_watermark && offset > self.log_end_offset();
        if offset < self.log_start_offset || past_end {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.log_end_offset(),
            });
        }
        let mut result = ReadResult {
            slice: None,
            high_watermark: self.high_watermark,
            log_start_offset: self.log_start_offset,
            readable_bytes: 0,
        };
        if offset >= self.high_watermark || (max_bytes == 0 && !min_one_batch) {
            return Ok(result);
        }
        let start_base = self
            .segments
            .range(..=offset)
            .next_back()
            .map_or(i64::MIN, |(&b, _)| b);
        for (&base, seg) in self.segments.range(start_base..) {
            let end = match base.cmp(&self.hw_position.0) {
                std::cmp::Ordering::Less => seg.size(),
                std::cmp::Ordering::Equal => self.hw_position.1,
                std::cmp::Ordering::Greater => break,
            };
            let Some(found) = seg.find_offset(offset, end).during("reading")? else {
                continue;
            };
            let available = (end - found.position) as usize;
            result.readable_bytes = if base < self.hw_position.0 {
                usize::MAX
            } else {
                available
            };
            let mut len = available.min(max_bytes);
            if len < found.header.total_bytes() {
                // The first batch does not fit: with min_one_batch it is returned whole
                // (KIP-74); without, nothing is, because a partition holding only part of
                // a batch looks to clients like a record they can never read (Kafka
                // drops such a "first entry incomplete" read the same way).
                len = if min_one_batch {
                    found.header.total_bytes().min(available)
                } else {
                    0
                };
            } else if len < available {
                // Whole batches only: a batch cut at the end would be sent, dropped by
                // the client and sent again by the next read.
                let limit = found.position + len as u64;
                if let Some(whole) = seg
                    .whole_batches_end(found.position, limit)
                    .during("reading")?
                {
                    len = (whole - found.position) as usize;
                    debug_assert!(len >= found.header.total_bytes());
                }
            }
            if len > 0 {
                result.slice = Some(FileSlice {
                    file: seg.file().clone(),
                    position: found.position,
                    len,
                });
            }
            break;
        }
        Ok(result)
    }

    /// The first record at or after `timestamp`: (offset, its timestamp).
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>> {
        for seg in self.segments.values() {
            if seg.max_timestamp < timestamp {
                continue;
            }
            let end = if seg.base_offset == self.hw_position.0 {
                self.hw_position.1
            } else {
                seg.size()
            };
            let mut pos = match seg
                .find_timestamp(timestamp, end)
                .during("searching by timestamp")?
            {
                Some(l) => l.position,
                None => continue,
            };
            // Several batches may qualify by max timestamp without a qualifying record
            // at or above the log start; walk until one is found.
            while pos < end {
                let Some(h) = seg.read_header(pos).during("searching by timestamp")? else {
                    break;
                };
                if h.max_timestamp >= timestamp && h.last_offset() >= self.log_start_offset {
                    if let Some(hit) = self.first_record_at(seg, pos, &h, |off, ts| {
                        off >= self.log_start_offset && ts >= timestamp
                    })? {
                        return Ok(Some(hit));
                    }
                }
                pos += h.total_bytes() as u64;
            }
        }
        Ok(None)
    }

    /// The record with the greatest timestamp (the first such, if several): (offset, ts).
    pub fn max_timestamp_offset(&self) -> Result<Option<(i64, i64)>> {
        let Some(seg) = self
            .segments
            .values()
            .filter(|s| {
                s.max_timestamp >= 0 && s.max_timestamp_batch_offset >= self.log_start_offset
            })
            .max_by_key(|s| (s.max_timestamp, std::cmp::Reverse(s.base_offset)))
        else {
            return Ok(None);
        };
        let max = seg.max_timestamp;
        let Some(found) = seg
            .find_offset(seg.max_timestamp_batch_offset, seg.size())
            .during("searching by timestamp")?
        else {
            return Ok(None);
        };
        self.first_record_at(seg, found.position, &found.header, |_, ts| ts == max)
    }

    fn first_record_at(
        &self,
        seg: &Segment,
        position: u64,
        h: &BatchHeader,
        hit: impl Fn(i64, i64) -> bool,
    ) -> Result<Option<(i64, i64)>> {
        if h.is_log_append_time() {
            let first = h.base_offset.max(self.log_start_offset);
            return Ok(hit(first, h.max_timestamp).then_some((first, h.max_timestamp)));
        }
        let raw = seg
            .read_bytes(position, h.total_bytes())
            .during("reading a batch")?;
        let mut buf = Bytes::from(raw);
        let set = RecordBatchDecoder::decode(&mut buf).map_err(|_| {
            Error::Batch(BatchError::BadCrc {
                stored: h.crc,
                computed: 0,
            })
        })?;
        Ok(set
            .records
            .iter()
            .find(|r| hit(r.offset, r.timestamp))
            .map(|r| (r.offset, r.timestamp)))
    }

    /// Kafka's end offset for a leader epoch (OffsetForLeaderEpoch): the epoch asked for
    /// (or the greatest below it) and the first offset of the epoch after it.
    pub fn end_offset_for_epoch(&self, requested: i32) -> (i32, i64) {
        const UNDEFINED: (i32, i64) = (-1, -1);
        if requested < 0 {
            return UNDEFINED;
        }
        match self.epochs.last() {
            None => UNDEFINED,
            Some(&(latest, _)) if latest == requested => (latest, self.log_end_offset()),
            Some(_) => {
                let Some(&(_, higher_start)) = self.epochs.iter().find(|&&(e, _)| e > requested)
                else {
                    return UNDEFINED;
                };
                match self.epochs.iter().rev().find(|&&(e, _)| e <= requested) {
                    Some(&(floor, _)) => (floor, higher_start),
                    None => (requested, higher_start),
                }
            }
        }
    }

    /// The leader epoch in which `offset` was written (the latest epoch that started at
    /// or before it), or -1 when unknown.
    pub fn epoch_for_offset(&self, offset: i64) -> i32 {
        self.epochs
            .iter()
            .rev()
            .find(|&&(_, start)| start <= offset)
            .map_or(-1, |&(e, _)| e)
    }

    /// DeleteRecords: moves the log start offset up to `offset` (at most the high
    /// watermark) and drops segments wholly below it. Returns the new log start offset.
    pub fn delete_records_before(&mut self, offset: i64) -> Result<i64> {
        if let Some(refusal) = self.write_refusal() {
            return Err(refusal);
        }
        let offset = if offset == -1 {
            self.high_watermark
        } else {
            offset
        };
        if offset < 0 || offset > self.high_watermark {
            return Err(Error::OffsetOutOfRange {
                offset,
                log_start: self.log_start_offset,
                log_end: self.high_watermark,
            });
        }
        if offset > self.log_start_offset {
            durable::write_atomically(
                &self.dir.join(LOG_START_FILE),
                offset.to_string().as_bytes(),
            )
            .during("writing the log start offset")?;
            self.log_start_offset = offset;
            self.delete_segments_below_start()?;
        }
        Ok(self.log_start_offset)
    }

    fn delete_segments_below_start(&mut self) -> Result<usize> {
        let mut deleted = 0;
        while self.segments.len() > 1 {
            let mut keys = self.segments.keys();
            let (_first, second) = (keys.next().copied(), keys.next().copied());
            match second {
                Some(next_base) if next_base <= self.log_start_offset => {
                    self.delete_oldest()?;
                    deleted += 1;
                }
                _ => break,
            }
        }
        Ok(deleted)
    }

    fn delete_oldest(&mut self) -> Result<()> {
        let (_, seg) = self.segments.pop_first().expect("a segment to delete");
        seg.delete().during("deleting a segment")?;
        let first = *self.segments.keys().next().expect("a segment remains");
        self.log_start_offset = self.log_start_offset.max(first);
        Ok(())
    }

    /// Applies `retention.ms` and `retention.bytes` (with `cleanup.policy` `delete`, as
    /// Kafka does) and drops segments below the log start offset; returns how many
    /// segments went.
    pub fn enforce_retention(&mut self, now_ms: i64) -> Result<usize> {
        if self.recovery_point.retired() || self.closed {
            return Ok(0);
        }
        let mut deleted = self.delete_segments_below_start()?;
        if self.config.delete_policy && self.config.retention_ms >= 0 {
            let cutoff = now_ms - self.config.retention_ms;
            let expired = |s: &Segment| !s.is_empty() && s.max_timestamp < cutoff;
            loop {
                let first = self.segments.values().next().expect("segment");
                if !expired(first) || first.next_offset() > self.high_watermark {
                    break;
                }
                if self.segments.len() == 1 {
                    // Kafka rolls an expired active segment so that it can go too.
                    self.roll()?;
                }
                self.delete_oldest()?;
                deleted += 1;
            }
        }
        if self.config.delete_policy && self.config.retention_bytes >= 0 {
            let mut excess = self.size_bytes() as i64 - self.config.retention_bytes;
            while self.segments.len() > 1 {
                let first = self.segments.values().next().expect("segment");
                if (first.size() as i64) > excess || first.next_offset() > self.high_watermark {
                    break;
                }
                excess -= first.size() as i64;
                self.delete_oldest()?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            tracing::info!(dir = %self.dir.display(), deleted, log_start = self.log_start_offset, "retention deleted segments");
        }
        Ok(deleted)
    }

    pub fn segment_bases(&self) -> Vec<i64> {
        self.segments.keys().copied().collect()
    }

    pub fn segment_log_path(&self, base: i64) -> PathBuf {
        segment::log_path(&self.dir, base)
    }
}

#[cfg(test)]
mod tests;
