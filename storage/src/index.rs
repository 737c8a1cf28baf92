//! Sparse, memory-mapped index files, in Kafka's on-disk layout (big-endian):
//! - `.index`: `relative_offset u32 ‖ position u32` (8 bytes per entry)
//! - `.timeindex`: `timestamp i64 ‖ relative_offset u32` (12 bytes per entry)
//!
//! Entries are appended in increasing key order. The file grows in chunks that are
//! allocated on disk first (fallocate), so a write through the map never lands on a
//! hole that the filesystem could fail to fill (SIGBUS on ENOSPC). Once its segment is
//! sealed the file is trimmed to its entries, as Kafka does, by the background thread
//! ([`trim_and_sync`]): freeing blocks can wait on the device.
//!
//! No file descriptor is kept: the map is all that is needed to read and write entries,
//! and the file is reopened only to grow or trim it. With two indexes per partition,
//! held descriptors would triple a broker's count (10,000 partitions: 30,000 instead of
//! 10,000), as Kafka avoids by closing its index files once mapped.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;

const GROW_STEP_BYTES: usize = 64 * 1024;

/// One index file with fixed-size entries.
#[derive(Debug)]
pub struct IndexFile {
    path: PathBuf,
    map: Option<MmapMut>,
    entry_bytes: usize,
    entries: usize,
    /// Bytes allocated and mapped.
    capacity_bytes: usize,
    max_bytes: usize,
}

impl IndexFile {
    /// Opens or creates an index. Existing entries are taken as they are: whoever opens
    /// it must check them ([`IndexFile::truncate_entries`]) or rebuild the index.
    pub fn open(path: &Path, entry_bytes: usize, max_bytes: usize) -> io::Result<Self> {
        let len = open_rw(path)?.metadata()?.len() as usize;
        let entries = len / entry_bytes;
        let max_bytes = max_bytes.max(entry_bytes) / entry_bytes * entry_bytes;
        let mut idx = IndexFile {
            path: path.to_owned(),
            map: None,
            entry_bytes,
            entries,
            capacity_bytes: 0,
            max_bytes,
        };
        // The file opens as it is: a sealed segment's index never grows again, and
        // extending it would give it back the zero tail its seal cut (which Kafka's
        // tools read as a corrupt index). An active one grows on its next append; a new
        // segment's is allocated when it is created ([`IndexFile::preallocate`]).
        if len > 0 {
            idx.remap(0)?;
        }
        // A preallocated tail left by an unclean stop reads as zero entries: an entry of
        // all zeros after the first can never be valid (keys strictly increase).
        while idx.entries > 1 && idx.entry(idx.entries - 1).iter().all(|&b| b == 0) {
            idx.entries -= 1;
        }
        Ok(idx)
    }

    fn remap(&mut self, capacity_bytes: usize) -> io::Result<()> {
        self.map = None;
        let file = open_rw(&self.path)?;
        let current = file.metadata()?.len() as usize;
        if capacity_bytes > current {
            nix::fcntl::posix_fallocate(file.as_fd(), 0, capacity_bytes as i64)
                .map_err(io::Error::from)?;
        }
        self.map = Some(map_random(&file)?);
        self.capacity_bytes = capacity_bytes.max(current);
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.entries
    }
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }
    pub fn is_full(&self) -> bool {
        self.entries * self.entry_bytes >= self.max_bytes
    }

    pub fn entry(&self, i: usize) -> &[u8] {
        debug_assert!(i < self.entries);
        let at = i * self.entry_bytes;
        &self.map.as_ref().expect("index is mapped")[at..at + self.entry_bytes]
    }

    /// Appends one entry; returns false (and writes nothing) when the index is full.
    pub fn append(&mut self, entry: &[u8]) -> io::Result<bool> {
        debug_assert_eq!(entry.len(), self.entry_bytes);
        if self.is_full() {
            return Ok(false);
        }
        let at = self.entries * self.entry_bytes;
        if at + self.entry_bytes > self.capacity_bytes {
            let grown = (self.capacity_bytes * 2)
                .max(GROW_STEP_BYTES)
                .min(self.max_bytes);
            self.remap(grown)?;
        }
        self.map.as_mut().expect("index is mapped")[at..at + self.entry_bytes]
            .copy_from_slice(entry);
        self.entries += 1;
        Ok(true)
    }

    /// Forgets entries from `n` on (used when the log is truncated or found corrupt).
    pub fn truncate_entries(&mut self, n: usize) {
        if n < self.entries {
            let start = n * self.entry_bytes;
            let end = self.entries * self.entry_bytes;
            self.map.as_mut().expect("index is mapped")[start..end].fill(0);
            self.entries = n;
        }
    }

    /// Index of the last entry whose key (`key_of`) is at most `target`.
    pub fn floor<K: Ord>(&self, target: K, key_of: impl Fn(&[u8]) -> K) -> Option<usize> {
        // Binary search for the partition point of keys <= target.
        let (mut lo, mut hi) = (0, self.entries);
        while lo < hi {
            let mid = (lo + hi) / 2;
            if key_of(self.entry(mid)) <= target {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo.checked_sub(1)
    }

    pub fn flush(&self) -> io::Result<()> {
        if let Some(m) = &self.map {
            m.flush()?;
        }
        Ok(())
    }

    /// Allocates a new index's first stretch, so that the append that fills it first
    /// does not pay for it.
    pub fn preallocate(&mut self) -> io::Result<()> {
        if self.capacity_bytes == 0 {
            self.remap(GROW_STEP_BYTES.min(self.max_bytes))?;
        }
        Ok(())
    }

    /// Cuts the file to its entries, as Kafka's `trimToValidSize` does when a log
    /// closes: Kafka's tools (`kafka-dump-log --index-sanity-check`) take a file's length
    /// for its entries, so a preallocated tail of zeros reads as a corrupt index. An
    /// append after this grows the file again. Not synced: a shutdown closes thousands of
    /// logs, and a cut lost to a crash leaves the zero tail that `open` ignores.
    pub fn trim_to_entries(&mut self) -> io::Result<()> {
        let len = self.entries * self.entry_bytes;
        let file = open_rw(&self.path)?;
        // No map may reach past the cut.
        self.map = None;
        self.capacity_bytes = 0;
        let cut = file.set_len(len as u64);
        // Cut or not, map what the file holds now, so that its entries stay readable.
        if file.metadata()?.len() > 0 {
            self.remap(0)?;
        }
        cut
    }

    /// Stops the index growing (its segment is sealed) and returns its file, opened now
    /// so that a later trim acts on this index even if the path has since been reused
    /// (a topic deleted and re-created), with the length of its entries, to which
    /// [`trim_and_sync`] cuts it. The map keeps its length: lookups read entries only,
    /// and those lie inside the cut file, so the pages the cut unmaps are never touched.
    pub fn seal(&mut self) -> io::Result<(File, u64)> {
        self.max_bytes = self.entries * self.entry_bytes;
        Ok((open_rw(&self.path)?, self.max_bytes as u64))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Maps an index for random access. Lookups touch a page or two of it (a binary search),
/// so the kernel's readahead on a fault would only fill the page cache, and the broker's
/// resident set, with neighbouring pages: zero-filled ones for the allocated tail. With
/// thousands of partitions that is gigabytes.
fn map_random(file: &File) -> io::Result<MmapMut> {
    // SAFETY: the file belongs to this index (its segment's), is allocated up to the
    // length mapped, and is only shrunk (`trim`) after the map is dropped.
    let map = unsafe { MmapMut::map_mut(file)? };
    if !map.is_empty() {
        map.advise(memmap2::Advice::Random)?;
    }
    Ok(map)
}

/// Cuts a sealed index file to `len` bytes, its entries ([`IndexFile::seal`]), and syncs
/// it, pages written through the map included. On a filesystem mounted with `discard`,
/// freeing the preallocated tail waits for the device: tens of milliseconds, which is
/// why this is the background thread's work and not the roll's.
pub fn trim_and_sync(file: &File, len: u64) -> io::Result<()> {
    if file.metadata()?.len() > len {
        file.set_len(len)?;
    }
    file.sync_all()
}

fn open_rw(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
}

/// `.index`: maps offsets (relative to the segment's base) to file positions.
#[derive(Debug)]
pub struct OffsetIndex(pub IndexFile);

pub const OFFSET_ENTRY_BYTES: usize = 8;
pub const TIME_ENTRY_BYTES: usize = 12;

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

impl OffsetIndex {
    pub fn open(path: &Path, max_bytes: usize) -> io::Result<Self> {
        IndexFile::open(path, OFFSET_ENTRY_BYTES, max_bytes).map(OffsetIndex)
    }
    pub fn append(&mut self, relative_offset: u32, position: u32) -> io::Result<bool> {
        if let Some((last, _)) = self.last() {
            debug_assert!(
                relative_offset > last,
                "offset index keys strictly increase"
            );
        }
        let mut e = [0u8; OFFSET_ENTRY_BYTES];
        e[..4].copy_from_slice(&relative_offset.to_be_bytes());
        e[4..].copy_from_slice(&position.to_be_bytes());
        self.0.append(&e)
    }
    pub fn get(&self, i: usize) -> (u32, u32) {
        let e = self.0.entry(i);
        (u32_at(e, 0), u32_at(e, 4))
    }
    pub fn last(&self) -> Option<(u32, u32)> {
        self.0.len().checked_sub(1).map(|i| self.get(i))
    }
    /// The greatest entry at or below `relative_offset`, or the segment start.
    pub fn lookup(&self, relative_offset: u32) -> (u32, u32) {
        self.0
            .floor(relative_offset, |e| u32_at(e, 0))
            .map(|i| self.get(i))
            .unwrap_or((0, 0))
    }
    /// The greatest entry whose position is at most `position`, or the segment start.
    /// (Positions grow with offsets, so the entries are sorted by either.)
    pub fn lookup_position(&self, position: u32) -> (u32, u32) {
        self.0
            .floor(position, |e| u32_at(e, 4))
            .map(|i| self.get(i))
            .unwrap_or((0, 0))
    }
}

/// `.timeindex`: maps timestamps to offsets (relative to the segment's base).
#[derive(Debug)]
pub struct TimeIndex(pub IndexFile);

impl TimeIndex {
    pub fn open(path: &Path, max_bytes: usize) -> io::Result<Self> {
        IndexFile::open(path, TIME_ENTRY_BYTES, max_bytes).map(TimeIndex)
    }
    pub fn append(&mut self, timestamp: i64, relative_offset: u32) -> io::Result<bool> {
        let mut e = [0u8; TIME_ENTRY_BYTES];
        e[..8].copy_from_slice(&timestamp.to_be_bytes());
        e[8..].copy_from_slice(&relative_offset.to_be_bytes());
        self.0.append(&e)
    }
    pub fn get(&self, i: usize) -> (i64, u32) {
        let e = self.0.entry(i);
        (
            i64::from_be_bytes(e[..8].try_into().expect("8 bytes")),
            u32_at(e, 8),
        )
    }
    pub fn last(&self) -> Option<(i64, u32)> {
        self.0.len().checked_sub(1).map(|i| self.get(i))
    }
    /// The greatest entry whose timestamp is at most `timestamp`, or the segment start.
    pub fn lookup(&self, timestamp: i64) -> u32 {
        self.0
            .floor(timestamp, |e| {
                i64::from_be_bytes(e[..8].try_into().expect("8 bytes"))
            })
            .map(|i| self.get(i).1)
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_lookup_grow_seal_trim_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&path, 1 << 20).unwrap();
        assert_eq!(idx.lookup(5), (0, 0));
        for i in 1..20_000u32 {
            assert!(idx.append(i * 10, i * 100).unwrap());
        }
        assert_eq!(idx.lookup(9), (0, 0));
        assert_eq!(idx.lookup(10), (10, 100));
        assert_eq!(idx.lookup(15), (10, 100));
        assert_eq!(idx.lookup(1_000_000), (199_990, 1_999_900));
        assert_eq!(idx.lookup_position(99), (0, 0));
        assert_eq!(idx.lookup_position(100), (10, 100));
        assert_eq!(idx.lookup_position(1_050), (100, 1_000));
        assert_eq!(idx.lookup_position(u32::MAX), (199_990, 1_999_900));
        let (file, len) = idx.0.seal().unwrap();
        assert!(
            !idx.append(300_000, 0).unwrap(),
            "a sealed index does not grow"
        );
        trim_and_sync(&file, len).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 19_999 * 8);
        assert_eq!(
            idx.lookup(1_000_000),
            (199_990, 1_999_900),
            "still readable"
        );
        drop(idx);
        let idx = OffsetIndex::open(&path, 1 << 20).unwrap();
        assert_eq!(idx.0.len(), 19_999);
        assert_eq!(idx.lookup(25), (20, 200));
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            19_999 * 8,
            "opening a sealed index leaves its file as it is"
        );
    }

    #[test]
    fn a_trimmed_active_index_has_no_tail_and_grows_again() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.timeindex");
        let mut idx = TimeIndex::open(&path, 1 << 20).unwrap();
        idx.0.trim_to_entries().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0, "empty");
        for i in 1..=3u32 {
            assert!(idx.append(i64::from(i) * 1_000, i * 10).unwrap());
        }
        assert!(
            std::fs::metadata(&path).unwrap().len() > 3 * 12,
            "preallocated again"
        );
        idx.0.trim_to_entries().unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 3 * 12);
        assert_eq!(idx.lookup(2_500), 20);
        assert!(idx.append(4_000, 40).unwrap(), "appends after a trim");
        assert_eq!(idx.lookup(5_000), 40);
        drop(idx);
        let idx = TimeIndex::open(&path, 1 << 20).unwrap();
        assert_eq!((idx.0.len(), idx.lookup(3_500)), (4, 30));
    }

    #[test]
    fn a_trim_acts_on_the_sealed_index_not_on_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        let mut idx = OffsetIndex::open(&path, 1 << 20).unwrap();
        idx.append(1, 10).unwrap();
        let (file, len) = idx.0.seal().unwrap();
        // The partition is deleted (its directory renamed) and re-created at once.
        std::fs::rename(&path, dir.path().join("gone.index")).unwrap();
        let fresh = OffsetIndex::open(&path, 1 << 20).unwrap();
        let fresh_len = std::fs::metadata(&path).unwrap().len();
        trim_and_sync(&file, len).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().len(), fresh_len);
        assert_eq!(
            std::fs::metadata(dir.path().join("gone.index"))
                .unwrap()
                .len(),
            8
        );
        drop(fresh);
    }

    #[test]
    fn full_index_refuses() {
        let dir = tempfile::tempdir().unwrap();
        let mut idx = TimeIndex::open(&dir.path().join("0.timeindex"), 24).unwrap();
        assert!(idx.append(1, 1).unwrap());
        assert!(idx.append(2, 2).unwrap());
        assert!(!idx.append(3, 3).unwrap());
        assert_eq!(idx.lookup(2), 2);
        assert_eq!(idx.lookup(0), 0);
    }

    #[test]
    fn zero_tail_from_unclean_stop_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("0.index");
        {
            let mut idx = OffsetIndex::open(&path, 1 << 20).unwrap();
            idx.append(3, 30).unwrap();
            idx.append(4, 40).unwrap();
            idx.0.flush().unwrap();
            // dropped unsealed: the file keeps its preallocated zeros
        }
        let idx = OffsetIndex::open(&path, 1 << 20).unwrap();
        assert_eq!(idx.0.len(), 2);
        assert_eq!(idx.last(), Some((4, 40)));
    }
}
