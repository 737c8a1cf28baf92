//! A partition's recovery point, and how it moves.
//!
//! A roll used to fsync the sealed segment under the partition lock, on the thread that
//! served the produce: a stall of hundreds of milliseconds per roll. Kafka instead hands
//! the flush to a scheduler and keeps a *recovery point*, the offset below which every
//! batch is known to be on disk; at start it re-validates only the segments past it.
//! Sluice does the same:
//! - a roll queues the sealed segment's files to the [`crate::background`] thread;
//! - once they are synced, that thread writes the new segment's base offset to
//!   `recovery-point-offset` in the partition directory, atomically;
//! - [`crate::PartitionLog::open`] re-validates every segment holding offsets at or past
//!   the recovery point, or all of them when the file is missing.
//!
//! The point only ever moves up, and only after a sync; a stale point is always safe, it
//! only costs CRC work at the next start. Jobs run in the order they were queued, so when
//! a job for offset `n` finishes, every roll below `n` has been synced too. (A log that is
//! ever truncated below its recovery point, as a follower does, must lower it first.)

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset";

/// The files of a sealed segment, to be made durable.
#[derive(Debug)]
pub struct SealedFiles {
    pub log: Arc<File>,
    /// The log's length: blocks reserved past it are given back once a later segment
    /// takes the appends.
    pub log_len: u64,
    /// The index files, opened at sealing (indexes keep no descriptor), and the length
    /// of their entries, to cut their preallocated tails to.
    pub indexes: [(File, u64); 2],
}

impl SealedFiles {
    fn sync(&self) -> io::Result<()> {
        self.log.sync_data()?;
        self.indexes
            .iter()
            .try_for_each(|(file, len)| crate::index::trim_and_sync(file, *len))
    }
}

/// One partition's recovery point, shared by its log and the background thread. The log
/// reads it on every append and flush, under the partition's lock, so reads are atomics
/// and never wait on the background thread's file write.
#[derive(Debug)]
pub struct RecoveryPoint {
    dir: PathBuf,
    offset: AtomicI64,
    /// A sync failed: after a failed fsync the page cache cannot be trusted, so the log
    /// refuses writes until a restart recovers it.
    failed: AtomicBool,
    /// The partition is being deleted: its directory may be renamed or re-created, so
    /// nothing more is written to it.
    retired: AtomicBool,
    /// Held while the file is written, so that its value only grows and `retire` can
    /// wait out a write in progress.
    writing: Mutex<()>,
}

impl RecoveryPoint {
    /// The point stored in `dir`, if any.
    pub fn read(dir: &Path) -> io::Result<Option<i64>> {
        crate::log::read_offset_file(dir, RECOVERY_POINT_FILE)
    }

    /// Stores `offset` as the point in `dir` (open, when recovery cut below it).
    pub fn store(dir: &Path, offset: i64) -> io::Result<()> {
        crate::durable::write_atomically(
            &dir.join(RECOVERY_POINT_FILE),
            offset.to_string().as_bytes(),
        )
    }

    pub fn new(dir: &Path, offset: i64) -> Arc<Self> {
        Arc::new(RecoveryPoint {
            dir: dir.to_owned(),
            offset: AtomicI64::new(offset),
            failed: AtomicBool::new(false),
            retired: AtomicBool::new(false),
            writing: Mutex::new(()),
        })
    }

    fn writing(&self) -> MutexGuard<'_, ()> {
        self.writing.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn offset(&self) -> i64 {
        self.offset.load(Ordering::Acquire)
    }

    pub fn failed(&self) -> bool {
        self.failed.load(Ordering::Acquire)
    }

    pub fn retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
    }

    /// Stops all later writes of the point (the partition is being deleted). Once this
    /// returns, no job writes into the directory.
    pub fn retire(&self) {
        let _wait_for_a_write = self.writing();
        self.retired.store(true, Ordering::Release);
    }

    /// Syncs `files`, then moves the point to `upto`: the caller vouches that every
    /// offset below `upto` lies in `files` or was synced before.
    pub fn sync_and_advance(&self, files: &[SealedFiles], upto: i64) {
        if self.retired() || self.failed() {
            return;
        }
        // A panic is taken as a failed sync: were the point to move on at a later job,
        // it would vouch for a segment never synced.
        let synced = std::panic::catch_unwind(|| files.iter().try_for_each(SealedFiles::sync))
            .unwrap_or_else(|_| Err(io::Error::other("panic while syncing")));
        if let Err(e) = synced {
            self.failed.store(true, Ordering::Release);
            tracing::error!(dir = %self.dir.display(), error = %e, "flush of a rolled segment failed: log refuses writes until restart");
            return;
        }
        let _writing = self.writing();
        if self.retired() || upto <= self.offset() {
            return;
        }
        match Self::store(&self.dir, upto) {
            Ok(()) => self.offset.store(upto, Ordering::Release),
            // Only costs recovery work at the next start.
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the recovery point")
            }
        }
    }
}
