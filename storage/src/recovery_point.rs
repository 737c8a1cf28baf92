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
use std::sync::{Arc, Mutex, MutexGuard};

pub const RECOVERY_POINT_FILE: &str = "recovery-point-offset";

/// The files of a sealed segment, to be made durable.
#[derive(Debug)]
pub struct SealedFiles {
    pub log: Arc<File>,
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

#[derive(Debug)]
struct State {
    offset: i64,
    /// A sync failed: after a failed fsync the page cache cannot be trusted, so the log
    /// refuses writes until a restart recovers it.
    failed: bool,
    /// The partition is being deleted: its directory may be renamed or re-created, so
    /// nothing more is written to it.
    retired: bool,
}

/// One partition's recovery point, shared by its log and the background thread.
#[derive(Debug)]
pub struct RecoveryPoint {
    dir: PathBuf,
    state: Mutex<State>,
}

impl RecoveryPoint {
    /// The point stored in `dir`, if any.
    pub fn read(dir: &Path) -> io::Result<Option<i64>> {
        match std::fs::read_to_string(dir.join(RECOVERY_POINT_FILE)) {
            Ok(s) => Ok(s.trim().parse().ok()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn new(dir: &Path, offset: i64) -> Arc<Self> {
        Arc::new(RecoveryPoint {
            dir: dir.to_owned(),
            state: Mutex::new(State {
                offset,
                failed: false,
                retired: false,
            }),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Every update is a single assignment: a panic elsewhere leaves it consistent.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn offset(&self) -> i64 {
        self.lock().offset
    }

    pub fn failed(&self) -> bool {
        self.lock().failed
    }

    pub fn retired(&self) -> bool {
        self.lock().retired
    }

    /// Stops all later writes of the point (the partition is being deleted). Once this
    /// returns, no job writes into the directory.
    pub fn retire(&self) {
        self.lock().retired = true;
    }

    /// Syncs `files`, then moves the point to `upto`: the caller vouches that every
    /// offset below `upto` lies in `files` or was synced before.
    pub fn sync_and_advance(&self, files: &[SealedFiles], upto: i64) {
        if self.retired() {
            return;
        }
        // A panic is taken as a failed sync: were the point to move on at a later job,
        // it would vouch for a segment never synced.
        let synced = std::panic::catch_unwind(|| files.iter().try_for_each(SealedFiles::sync))
            .unwrap_or_else(|_| Err(io::Error::other("panic while syncing")));
        let mut state = self.lock();
        if state.retired || state.failed {
            return;
        }
        if let Err(e) = synced {
            state.failed = true;
            tracing::error!(dir = %self.dir.display(), error = %e, "flush of a rolled segment failed: log refuses writes until restart");
            return;
        }
        if upto <= state.offset {
            return;
        }
        // Written under the lock, so the file's value only ever grows.
        match crate::log::write_atomically(
            &self.dir,
            RECOVERY_POINT_FILE,
            upto.to_string().as_bytes(),
        ) {
            Ok(()) => state.offset = upto,
            // Only costs recovery work at the next start.
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "could not write the recovery point")
            }
        }
    }
}
