//! Disk blocks reserved ahead of a busy segment's appends.
//!
//! ext4 allocates a file's blocks when the kernel writes dirty pages back (delayed
//! allocation), holding the inode's `i_data_sem` for writing while it does. An append
//! that reaches a page the file has no block for must take the same lock to note a
//! delayed block, so while writeback allocates for the segment being appended to, the
//! produce path waits: sampled stacks showed appends parked in `ext4_da_get_block_prep`
//! → `down_write` for seconds once a few GB were dirty (docs/performance.md §14).
//!
//! So once a segment is big enough to be a busy one, blocks ahead of its end are
//! reserved with `fallocate(FALLOC_FL_KEEP_SIZE)` on a background thread. An append into
//! reserved blocks finds them in the inode's extent cache without taking the lock, and
//! writeback has nothing left to allocate. The file's size does not change, so readers
//! and recovery see only what was appended. Redpanda reserves segments in steps for
//! the same reason (`segment_fallocation_step`). A reservation holds the inode's lock
//! while it allocates, as a write does, so appends can still wait for one that reads a
//! block bitmap from a busy disk; that is once per block group newly used, not once per
//! writeback pass.
//!
//! The reservation is at most a quarter of the segment and at most
//! [`MAX_STEP_BYTES`] ahead, so thousands of small partitions reserve nothing and a
//! big one holds 16 MiB more than it uses. A sealed segment gives back what it did not
//! use ([`release_unused`]), once every reservation queued for it has run.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use nix::errno::Errno;
use nix::fcntl::{fallocate, FallocateFlags};

use crate::background;

/// Segments smaller than this reserve nothing.
pub const FROM_BYTES: u64 = 4 << 20;
/// The most reserved ahead of a segment's end.
pub const MAX_STEP_BYTES: u64 = 16 << 20;
const MIB: u64 = 1 << 20;
const BLOCK: u64 = 4096;

/// Set once the filesystem refuses `fallocate`: nothing is asked for after that.
static UNSUPPORTED: AtomicBool = AtomicBool::new(false);
/// One warning for any other failure (a full disk, mostly), not one per step.
static WARNED: AtomicBool = AtomicBool::new(false);

/// The end of the next reservation for a segment of `size` bytes whose blocks are
/// reserved up to `reserved_to`, or None while it has enough ahead. Never past `limit`,
/// where the segment rolls.
pub fn next_end(size: u64, reserved_to: u64, limit: u64) -> Option<u64> {
    if size < FROM_BYTES || UNSUPPORTED.load(Ordering::Relaxed) {
        return None;
    }
    let step = (size / 4).clamp(MIB, MAX_STEP_BYTES) & !(MIB - 1);
    // Ask again once half of the last step is used, so the next one is in place before
    // appends reach it.
    if reserved_to >= size + step / 2 {
        return None;
    }
    let end = (size + step).min(limit);
    (end > reserved_to.max(size)).then_some(end)
}

/// Queues the reservation of `file`'s blocks from `from` to `to`.
pub fn reserve(file: Arc<File>, from: u64, to: u64) {
    // The block holding the end is left to delayed allocation: it is being written.
    let from = from.next_multiple_of(BLOCK);
    if from >= to {
        return;
    }
    background::run_reservation(move || {
        match fallocate(
            &*file,
            FallocateFlags::FALLOC_FL_KEEP_SIZE,
            from as i64,
            (to - from) as i64,
        ) {
            Ok(()) => {}
            Err(Errno::EOPNOTSUPP | Errno::ENOSYS) => {
                if !UNSUPPORTED.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        "the filesystem cannot reserve blocks: segments grow as written"
                    );
                }
            }
            Err(e) => {
                if !WARNED.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, "could not reserve blocks ahead of a segment");
                }
            }
        }
    });
}

/// Queues the release of the blocks a sealed segment of `len` bytes holds past its end,
/// after every reservation queued for it. Also frees what a segment reserved before a
/// restart. A file whose length is no longer `len` is left alone.
///
/// The release itself runs on `sluice-files`: freeing blocks waits for the device on a
/// `discard` mount, and the next segment's reservations must not wait behind it.
pub fn release_unused(file: Arc<File>, len: u64) {
    background::run_reservation(move || {
        background::run(move || {
            let Ok(meta) = file.metadata() else { return };
            if meta.len() != len || meta.blocks() * 512 <= len.div_ceil(BLOCK) * BLOCK {
                return;
            }
            // Cutting at the current size frees the blocks past it (ext4 truncates even
            // when the size does not change, for this reason).
            if let Err(e) = file.set_len(len) {
                tracing::warn!(error = %e, "could not release a sealed segment's reserved blocks");
            }
        })
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_segments_reserve_nothing_and_big_ones_a_bounded_step() {
        let limit = 1 << 30;
        assert_eq!(next_end(FROM_BYTES - 1, 0, limit), None);
        // A quarter of the segment, in whole MiB.
        assert_eq!(next_end(FROM_BYTES, 0, limit), Some(FROM_BYTES + MIB));
        assert_eq!(next_end(40 * MIB + 5, 0, limit), Some(50 * MIB + 5));
        // At most MAX_STEP_BYTES ahead, however big the segment.
        assert_eq!(
            next_end(800 * MIB, 0, limit),
            Some(800 * MIB + MAX_STEP_BYTES)
        );
        // Nothing while more than half a step is still reserved ahead...
        assert_eq!(next_end(800 * MIB, 809 * MIB, limit), None);
        // ...and the next step once less is.
        assert_eq!(
            next_end(800 * MIB, 807 * MIB, limit),
            Some(800 * MIB + MAX_STEP_BYTES)
        );
        // Never past the roll.
        assert_eq!(next_end(limit - MIB, 0, limit), Some(limit));
        assert_eq!(next_end(limit - MIB, limit, limit), None);
    }
}
