//! Sluice's partition storage.
//!
//! ## On-disk contract
//! A partition lives in one directory (the broker names it `{topic}-{partition}`):
//! - `{base_offset:020}.log`: record batches back to back, byte for byte in Kafka's v2
//!   format, as the producer sent them except for `baseOffset` and
//!   `partitionLeaderEpoch`, which the leader assigns (both lie outside the CRC).
//! - `{base_offset:020}.index`: sparse offset index, 8-byte entries
//!   `relative_offset u32 ‖ position u32`, one per `index.interval.bytes` of log.
//! - `{base_offset:020}.timeindex`: sparse time index, 12-byte entries
//!   `max_timestamp i64 ‖ relative_offset u32`, timestamps strictly increasing.
//! - `log-start-offset`: the log start offset moved by DeleteRecords, written atomically.
//! - `recovery-point-offset`: every batch below it is on disk; written atomically by the
//!   background thread once a rolled segment is synced.
//!
//! Every segment holding offsets at or past the recovery point (all segments when the
//! file is missing) is re-validated on open: CRC of every batch; a torn or bad tail is
//! cut off, its indexes rebuilt, and later segments deleted. Segments below the point
//! were synced after their indexes were trimmed on roll, and are trusted when their
//! indexes point inside the file.
//!
//! ## Modules
//! - [`batch`]: the v2 batch header, validation, in-place offset assignment.
//! - [`index`]: memory-mapped offset and time indexes.
//! - [`segment`]: one log file and its indexes.
//! - [`log`]: a partition's log: append, read as file regions, roll, retention, recovery,
//!   flush policy, DeleteRecords.
//! - [`recovery_point`]: the offset below which the log is on disk.
//! - [`reserve`]: disk blocks reserved ahead of a busy segment's appends, so that the
//!   kernel's writeback does not allocate under them.
//! - [`background`]: the threads that sync rolled segments and remove deleted segments
//!   and partition directories, off the partition's lock and the request path.
//! - [`producer`]: idempotent-producer sequence state.
//! - [`inflate`]: decompressing a compressed batch's records, bounded.
//! - [`deflate`]: rebuilding a batch in its topic's codec (`compression.type`).
//! - [`record`]: the records of an uncompressed batch, read in place; rebuilding a
//!   batch from some of them.
//! - [`config`]: topic configs that shape a log, validated.

pub mod background;
pub mod batch;
pub mod config;
pub mod deflate;
pub mod durable;
mod error;
pub mod index;
pub mod inflate;
pub mod log;
pub mod producer;
pub mod record;
pub mod recovery_point;
pub mod reserve;
pub mod segment;

pub use error::{Error, Result};
pub use log::{AppendResult, FileSlice, PartitionLog, ReadResult};
