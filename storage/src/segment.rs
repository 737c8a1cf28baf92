//! One segment: `{base_offset:020}.log` holding record batches back to back, exactly as
//! Kafka stores them, with its `.index` and `.timeindex`. Not thread-safe: the owning
//! [`crate::log::PartitionLog`] serialises access. Readers get an `Arc<File>` and a byte
//! range, valid even if the segment is later deleted (the open descriptor keeps it).

use std::fs::{File, OpenOptions};
use std::io::{self, IoSlice};
use std::os::fd::AsFd;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::batch::{self, BatchHeader, HEADER_BYTES};
use crate::index::{OffsetIndex, TimeIndex};
use crate::recovery_point::SealedFiles;
use crate::reserve;

pub fn log_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}
fn index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.index"))
}
fn time_index_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.timeindex"))
}

/// A segment's three files.
fn file_paths(dir: &Path, base_offset: i64) -> [PathBuf; 3] {
    [
        log_path(dir, base_offset),
        index_path(dir, base_offset),
        time_index_path(dir, base_offset),
    ]
}

/// A batch found in a segment: where it starts and its header.
#[derive(Debug, Clone, Copy)]
pub struct Located {
    pub position: u64,
    pub header: BatchHeader,
}

/// What recovery found at the tail of a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recovered {
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
}

#[derive(Debug)]
pub struct Segment {
    pub base_offset: i64,
    dir: PathBuf,
    file: Arc<File>,
    size: u64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    index_interval_bytes: usize,
    bytes_since_index: usize,
    /// Offset after the last batch (the segment's own log end offset).
    next_offset: i64,
    pub max_timestamp: i64,
    /// Last offset of the batch that holds `max_timestamp`.
    pub max_timestamp_batch_offset: i64,
    /// When this segment got its first batch (broker clock), for `segment.ms`.
    pub first_append_ms: Option<i64>,
    /// Disk blocks are reserved, or queued to be, up to here ([`crate::reserve`]).
    reserved_to: u64,
}

impl Segment {
    pub fn create(
        dir: &Path,
        base_offset: i64,
        index_bytes: usize,
        index_interval_bytes: usize,
    ) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(log_path(dir, base_offset))?;
        for p in [
            index_path(dir, base_offset),
            time_index_path(dir, base_offset),
        ] {
            let _ = std::fs::remove_file(p);
        }
        let mut seg = Self::with_file(dir, base_offset, file, index_bytes, index_interval_bytes)?;
        seg.offset_index.0.preallocate()?;
        seg.time_index.0.preallocate()?;
        Ok(seg)
    }

    fn with_file(
        dir: &Path,
        base_offset: i64,
        file: File,
        index_bytes: usize,
        index_interval_bytes: usize,
    ) -> io::Result<Self> {
        let size = file.metadata()?.len();
        Ok(Segment {
            base_offset,
            dir: dir.to_owned(),
            file: Arc::new(file),
            size,
            offset_index: OffsetIndex::open(&index_path(dir, base_offset), index_bytes)?,
            time_index: TimeIndex::open(&time_index_path(dir, base_offset), index_bytes)?,
            index_interval_bytes,
            bytes_since_index: 0,
            next_offset: base_offset,
            max_timestamp: -1,
            max_timestamp_batch_offset: -1,
            first_append_ms: None,
            reserved_to: 0,
        })
    }

    /// Opens an existing segment. With `recover`, every batch is re-read and CRC-checked,
    /// the file is cut at the first bad or torn batch and the indexes are rebuilt;
    /// without it, only the headers are walked (to learn the end offset and timestamps)
    /// and the indexes are trusted if they point inside the file.
    pub fn open(
        dir: &Path,
        base_offset: i64,
        index_bytes: usize,
        index_interval_bytes: usize,
        recover: bool,
        mut on_batch: impl FnMut(&BatchHeader),
    ) -> io::Result<(Self, Recovered)> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .open(log_path(dir, base_offset))?;
        let mut seg = Self::with_file(dir, base_offset, file, index_bytes, index_interval_bytes)?;
        let index_ok = seg
            .offset_index
            .last()
            .is_none_or(|(_, pos)| (pos as u64) < seg.size)
            && seg
                .time_index
                .last()
                .is_none_or(|(_, rel)| seg.base_offset + rel as i64 >= seg.base_offset);
        let rebuild = recover || !index_ok;
        if rebuild {
            seg.offset_index.0.truncate_entries(0);
            seg.time_index.0.truncate_entries(0);
        }
        let mut pos = 0u64;
        let mut buf = Vec::new();
        let file = seg.file.clone();
        while pos < seg.size {
            let h = match seg.read_header(pos) {
                Ok(Some(h))
                    if h.total_bytes() as u64 + pos <= seg.size
                        && h.batch_length >= (HEADER_BYTES - 12) as i32 =>
                {
                    h
                }
                Ok(_) => break,
                Err(e) => return Err(e),
            };
            if recover {
                buf.resize(h.total_bytes(), 0);
                file.read_exact_at(&mut buf, pos)?;
                match batch::validate_stored(&buf) {
                    Ok(v) if v.base_offset >= seg.next_offset => {}
                    _ => break,
                }
            }
            seg.note_batch(&h);
            if rebuild {
                seg.index_batch(&h, pos)?;
            }
            on_batch(&h);
            pos += h.total_bytes() as u64;
        }
        let truncated = seg.size - pos;
        if truncated > 0 {
            seg.file.set_len(pos)?;
            seg.size = pos;
        }
        Ok((
            seg,
            Recovered {
                valid_bytes: pos,
                truncated_bytes: truncated,
            },
        ))
    }

    fn note_batch(&mut self, h: &BatchHeader) {
        if h.max_timestamp > self.max_timestamp {
            self.max_timestamp = h.max_timestamp;
            self.max_timestamp_batch_offset = h.last_offset();
        }
        self.next_offset = h.next_offset();
    }

    /// Indexes batch `h` (at `position`, already noted) if enough bytes came since the
    /// last entry. The time index gets the segment's largest timestamp so far with the
    /// batch that first reached it, as Kafka's `LogSegment.append` writes it: so every
    /// batch before an entry's offset has a smaller timestamp, and a lookup that starts
    /// there skips none that reaches the target (timestamps need not grow batch by batch).
    fn index_batch(&mut self, h: &BatchHeader, position: u64) -> io::Result<()> {
        self.bytes_since_index += h.total_bytes();
        if self.bytes_since_index > self.index_interval_bytes {
            let rel = (h.last_offset() - self.base_offset) as u32;
            if self.offset_index.last().is_none_or(|(last, _)| rel > last) {
                self.offset_index.append(rel, position as u32)?;
            }
            // None while no batch has had a timestamp above -1.
            let max_rel = u32::try_from(self.max_timestamp_batch_offset - self.base_offset).ok();
            debug_assert!(
                max_rel.is_none_or(|m| m <= rel),
                "the max is at or before here"
            );
            if let Some(max_rel) = max_rel.filter(|_| {
                self.time_index
                    .last()
                    .is_none_or(|(ts, _)| self.max_timestamp > ts)
            }) {
                self.time_index.append(self.max_timestamp, max_rel)?;
            }
            self.bytes_since_index = 0;
        }
        Ok(())
    }

    pub fn read_header(&self, position: u64) -> io::Result<Option<BatchHeader>> {
        if position + HEADER_BYTES as u64 > self.size {
            return Ok(None);
        }
        let mut b = [0u8; HEADER_BYTES];
        self.file.read_exact_at(&mut b, position)?;
        Ok(BatchHeader::parse(&b).ok())
    }

    /// Appends one batch whose offsets are already assigned; `head` replaces its first
    /// bytes (base offset, length, leader epoch) so the body is written from the
    /// producer's buffer without a copy.
    pub fn append(
        &mut self,
        head: &[u8],
        body: &[u8],
        h: &BatchHeader,
        now_ms: i64,
    ) -> io::Result<()> {
        debug_assert!(
            h.base_offset >= self.next_offset,
            "offsets strictly increase within a segment"
        );
        debug_assert!(h.last_offset() - self.base_offset <= u32::MAX as i64);
        let position = self.size;
        write_all_vectored_at(
            &self.file,
            &[IoSlice::new(head), IoSlice::new(body)],
            position,
        )?;
        self.size += (head.len() + body.len()) as u64;
        self.note_batch(h);
        self.index_batch(h, position)?;
        self.first_append_ms.get_or_insert(now_ms);
        Ok(())
    }

    /// Reserves disk blocks ahead of the end once the segment is a busy one, never past
    /// `limit` (where it rolls).
    pub fn reserve_ahead(&mut self, limit: u64) {
        if let Some(end) = reserve::next_end(self.size, self.reserved_to, limit) {
            reserve::reserve(self.file.clone(), self.reserved_to.max(self.size), end);
            self.reserved_to = end;
        }
    }

    /// The first batch holding an offset at or above `offset`, scanning from the index.
    pub fn find_offset(&self, offset: i64, end_position: u64) -> io::Result<Option<Located>> {
        let rel = (offset - self.base_offset).clamp(0, u32::MAX as i64) as u32;
        let (_, start) = self.offset_index.lookup(rel);
        self.scan_from(start as u64, end_position, |h| h.last_offset() >= offset)
    }

    /// The first batch whose max timestamp is at least `timestamp`.
    pub fn find_timestamp(&self, timestamp: i64, end_position: u64) -> io::Result<Option<Located>> {
        let rel = self.time_index.lookup(timestamp);
        let (_, start) = self.offset_index.lookup(rel);
        self.scan_from(start as u64, end_position, |h| h.max_timestamp >= timestamp)
    }

    fn scan_from(
        &self,
        mut pos: u64,
        end: u64,
        hit: impl Fn(&BatchHeader) -> bool,
    ) -> io::Result<Option<Located>> {
        while pos < end {
            let Some(h) = self.read_header(pos)? else {
                return Ok(None);
            };
            if hit(&h) {
                return Ok(Some(Located {
                    position: pos,
                    header: h,
                }));
            }
            pos += h.total_bytes() as u64;
        }
        Ok(None)
    }

    /// Where a read starting at the batch at `from` must end so that it holds only whole
    /// batches and no more than `limit - from` bytes: the end of the last batch that
    /// ends at or before `limit` (`from` itself when none does). `None` when the headers
    /// to read are not all in the page cache: the read then keeps its cut batch.
    ///
    /// Kafka sends the bytes up to the limit, and the consumer drops the batch cut at
    /// the end, then fetches it again: with batches near the partition limit that is up
    /// to half of what goes on the wire. The walk starts at the last indexed batch at or
    /// before the limit, so it reads the headers of at most `index.interval.bytes` of
    /// batches after it, usually with one or two reads. Those reads never wait for the
    /// disk: this runs under the partition's lock on a request thread, and the bytes near
    /// the end of a cold region are not yet read ahead (a waiting read there cost a
    /// many-partition read of cold data two thirds of its speed, and appends seconds).
    pub fn whole_batches_end(&self, from: u64, limit: u64) -> io::Result<Option<u64>> {
        const WINDOW: usize = 4096 + HEADER_BYTES;
        // A batch's total size is its length field (bytes 8..12) plus those 12 bytes.
        const LENGTH_END: usize = 12;
        debug_assert!(from <= limit && limit <= self.size);
        let (_, indexed) = self
            .offset_index
            .lookup_position(limit.min(u32::MAX as u64) as u32);
        let mut pos = from.max(indexed as u64);
        let mut buf = [0u8; WINDOW];
        loop {
            let want = ((limit - pos) as usize).min(WINDOW);
            if want < HEADER_BYTES {
                return Ok(Some(pos));
            }
            let got = read_cached(&self.file, &mut buf[..want], pos)?;
            if got < LENGTH_END {
                // Not cached from here: end at the last boundary known (an indexed
                // batch, or the end of those read), unless none is past `from`.
                return Ok((pos > from).then_some(pos));
            }
            let mut at = 0;
            while at + LENGTH_END <= got {
                let length = i32::from_be_bytes(buf[at + 8..at + 12].try_into().expect("4 bytes"));
                let total = LENGTH_END as u64 + length.max(0) as u64;
                if total < HEADER_BYTES as u64 || pos + at as u64 + total > limit {
                    // The batch does not fit (a length this short is damage, which the
                    // client's CRC check reports; it is not stepped over here).
                    return Ok(Some(pos + at as u64));
                }
                at += total as usize;
            }
            pos += at as u64;
        }
    }

    /// Reads `len` bytes at `position` into memory (for record-level lookups).
    pub fn read_bytes(&self, position: u64, len: usize) -> io::Result<Vec<u8>> {
        let mut b = vec![0u8; len];
        self.file.read_exact_at(&mut b, position)?;
        Ok(b)
    }

    pub fn file(&self) -> &Arc<File> {
        &self.file
    }
    pub fn size(&self) -> u64 {
        self.size
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }
    pub fn indexes_full(&self) -> bool {
        self.offset_index.0.is_full() || self.time_index.0.is_full()
    }

    pub fn flush(&self) -> io::Result<()> {
        self.file.sync_data()?;
        self.offset_index.0.flush()?;
        self.time_index.0.flush()
    }

    /// Cuts the indexes' preallocated tails (a clean shutdown), after the last time
    /// index entry Kafka gives a segment it closes.
    pub fn trim_indexes(&mut self) -> io::Result<()> {
        self.index_max_timestamp()?;
        self.offset_index.0.trim_to_entries()?;
        self.time_index.0.trim_to_entries()
    }

    /// Indexes the segment's largest timestamp if the time index does not hold it yet,
    /// as Kafka does for a segment it rolls or closes ("a normally closed segment
    /// always appends the biggest timestamp ever seen"): Kafka takes a segment's largest
    /// timestamp from its time index's last entry (time retention, MAX_TIMESTAMP).
    fn index_max_timestamp(&mut self) -> io::Result<()> {
        let Ok(max_rel) = u32::try_from(self.max_timestamp_batch_offset - self.base_offset) else {
            return Ok(());
        };
        if self
            .time_index
            .last()
            .is_none_or(|(ts, _)| self.max_timestamp > ts)
        {
            // A full index keeps what it has: lookups stay right, only longer.
            self.time_index.append(self.max_timestamp, max_rel)?;
        }
        Ok(())
    }

    /// Called when the segment stops being the active one (and again, harmlessly, for
    /// segments found unsynced at start). Returns the files for the background thread to
    /// trim and sync, off the produce path.
    pub fn seal(&mut self) -> io::Result<SealedFiles> {
        self.index_max_timestamp()?;
        Ok(SealedFiles {
            log: self.file.clone(),
            log_len: self.size,
            indexes: [self.offset_index.0.seal()?, self.time_index.0.seal()?],
        })
    }

    /// Syncs the log file only: a flush of a sealed segment whose background sync may
    /// not have run yet (its indexes are rebuilt on recovery if it has not).
    pub fn sync_log(&self) -> io::Result<()> {
        self.file.sync_data()
    }

    /// Deletes the segment. Its files are renamed to `*.deleted` at once, which is cheap
    /// and means a restart removes them rather than loading them; the background thread
    /// then drops the segment and removes the files, so that freeing their blocks, a wait
    /// on the device, happens there and not under the partition's lock.
    pub fn delete(self) -> io::Result<()> {
        let mut doomed = Vec::with_capacity(3);
        for path in file_paths(&self.dir, self.base_offset) {
            let mut to = path.clone().into_os_string();
            to.push(DELETED_SUFFIX);
            match std::fs::rename(&path, &to) {
                Ok(()) => doomed.push(PathBuf::from(to)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        crate::background::run(move || {
            drop(self);
            for path in doomed {
                remove_if_present(&path).unwrap_or_else(|e| {
                    tracing::warn!(path = %path.display(), error = %e, "could not remove a deleted segment file")
                });
            }
        });
        Ok(())
    }

    /// Removes a segment's files, those that exist.
    pub fn remove_files(dir: &Path, base: i64) -> io::Result<()> {
        file_paths(dir, base)
            .iter()
            .try_for_each(|p| remove_if_present(p))
    }
}

/// What a deleted segment's files are renamed to end with, until they are removed.
pub const DELETED_SUFFIX: &str = ".deleted";

/// Removes a file; one already gone is fine.
pub fn remove_if_present(path: &Path) -> io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// pwritev(2) until every slice is written.
fn write_all_vectored_at(file: &File, slices: &[IoSlice<'_>], mut offset: u64) -> io::Result<()> {
    let mut storage: Vec<IoSlice<'_>> = slices.iter().filter(|s| !s.is_empty()).copied().collect();
    let mut bufs = &mut storage[..];
    while !bufs.is_empty() {
        let n =
            nix::sys::uio::pwritev(file.as_fd(), bufs, offset as i64).map_err(io::Error::from)?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::WriteZero,
                "pwritev wrote nothing",
            ));
        }
        offset += n as u64;
        IoSlice::advance_slices(&mut bufs, n);
    }
    Ok(())
}

/// Reads into `buf` at `position` what the page cache holds of it, without waiting for
/// the disk (`preadv2` with `RWF_NOWAIT`); 0 when none of it is cached, or when the
/// kernel cannot tell without waiting.
fn read_cached(file: &File, buf: &mut [u8], position: u64) -> io::Result<usize> {
    use std::os::fd::AsRawFd;
    let iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    // SAFETY: `iov` describes `buf`, which is live and writable for the whole call; the
    // descriptor is owned by `file`.
    let n = unsafe {
        libc::preadv2(
            file.as_raw_fd(),
            &iov,
            1,
            position as libc::off_t,
            libc::RWF_NOWAIT,
        )
    };
    if n >= 0 {
        return Ok(n as usize);
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        Some(libc::EAGAIN) | Some(libc::EOPNOTSUPP) => Ok(0),
        _ => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::build_batch;

    fn append(seg: &mut Segment, offset: i64, values: &[&[u8]]) -> BatchHeader {
        let mut b = build_batch(0, 1000 + offset, values, (-1, -1, -1)).to_vec();
        batch::assign(&mut b, offset, 0);
        let h = BatchHeader::parse(&b).unwrap();
        seg.append(&b[..16], &b[16..], &h, 0).unwrap();
        h
    }

    #[test]
    fn append_find_and_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 100, 1 << 16, 64).unwrap();
        for i in 0..50 {
            append(&mut seg, 100 + i * 2, &[b"aaaaaaaaaaaaaaaaaaa", b"b"]);
        }
        assert_eq!(seg.next_offset(), 200);
        let found = seg.find_offset(151, seg.size()).unwrap().unwrap();
        assert_eq!(found.header.base_offset, 150);
        let found = seg.find_timestamp(1000 + 161, seg.size()).unwrap().unwrap();
        assert_eq!(found.header.base_offset, 160);
        assert!(seg.find_offset(200, seg.size()).unwrap().is_none());
        let size = seg.size();
        drop(seg);

        let mut count = 0;
        let (seg, rec) =
            Segment::open(dir.path(), 100, 1 << 16, 64, false, |_| count += 1).unwrap();
        assert_eq!(
            (count, rec.truncated_bytes, seg.size(), seg.next_offset()),
            (50, 0, size, 200)
        );
        assert_eq!(
            seg.find_offset(151, size)
                .unwrap()
                .unwrap()
                .header
                .base_offset,
            150
        );
    }

    #[test]
    fn only_a_new_segment_allocates_its_indexes_ahead() {
        let dir = tempfile::tempdir().unwrap();
        let len = |p: PathBuf| std::fs::metadata(p).unwrap().len();
        let mut seg = Segment::create(dir.path(), 0, 1 << 20, 1 << 20).unwrap();
        assert!(len(index_path(dir.path(), 0)) > 0, "allocated when created");
        seg.trim_indexes().unwrap();
        assert_eq!(len(index_path(dir.path(), 0)), 0, "no entries");
        drop(seg);
        let (seg, _) = Segment::open(dir.path(), 0, 1 << 20, 1 << 20, false, |_| {}).unwrap();
        assert_eq!(len(index_path(dir.path(), 0)), 0, "opened as it is");
        assert_eq!(len(time_index_path(dir.path(), 0)), 0);
        drop(seg);
    }

    #[test]
    fn a_rolled_or_closed_segment_indexes_its_largest_timestamp() {
        let dir = tempfile::tempdir().unwrap();
        // An index interval no batch reaches: only the closing entry is written.
        let mut seg = Segment::create(dir.path(), 10, 1 << 20, 1 << 20).unwrap();
        append(&mut seg, 10, &[b"a"]);
        append(&mut seg, 11, &[b"b", b"c"]);
        assert_eq!(seg.time_index.last(), None);
        seg.trim_indexes().unwrap();
        // Batch 11-12 has the largest timestamp (its second record's, 1012): its last
        // offset, relative to the segment.
        assert_eq!(seg.time_index.last(), Some((1012, 2)));
        seg.seal().unwrap();
        assert_eq!(seg.time_index.0.len(), 1, "written once");
    }

    #[test]
    fn recovery_keeps_batches_with_records_taken_out() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, 1 << 16, 64).unwrap();
        append(&mut seg, 0, &[b"a"]);
        // Records 1 and 2 of a three-record batch taken out (delayed), as produce does.
        let full = build_batch(1, 1000, &[b"x", b"y", b"z"], (-1, -1, -1));
        let h = BatchHeader::parse(&full).unwrap();
        let recs = crate::record::records(&full, &h).unwrap();
        let gapped = crate::record::with_records(&full, &recs[..1]);
        let gh = BatchHeader::parse(&gapped).unwrap();
        seg.append(&gapped[..16], &gapped[16..], &gh, 0).unwrap();
        append(&mut seg, 4, &[b"b"]);
        let size = seg.size();
        drop(seg);
        let (seg, rec) = Segment::open(dir.path(), 0, 1 << 16, 64, true, |_| {}).unwrap();
        assert_eq!((rec.truncated_bytes, seg.size()), (0, size));
        assert_eq!(seg.next_offset(), 5);
    }

    #[test]
    fn recovery_truncates_torn_and_corrupt_tail() {
        let dir = tempfile::tempdir().unwrap();
        let mut seg = Segment::create(dir.path(), 0, 1 << 16, 64).unwrap();
        for i in 0..10 {
            append(&mut seg, i, &[b"hello"]);
        }
        let good = seg.size();
        let one = good / 10;
        drop(seg);
        // A torn write: half a batch at the end.
        let path = log_path(dir.path(), 0);
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.write_all_at(&vec![0x11; (one / 2) as usize], good)
            .unwrap();
        let (seg, rec) = Segment::open(dir.path(), 0, 1 << 16, 64, true, |_| {}).unwrap();
        assert_eq!(
            rec,
            Recovered {
                valid_bytes: good,
                truncated_bytes: one / 2
            }
        );
        assert_eq!(seg.next_offset(), 10);
        drop(seg);
        // A flipped bit in the 8th batch: batches 8 and 9 go.
        f.write_all_at(&[0xff], one * 7 + 70).unwrap();
        let (seg, rec) = Segment::open(dir.path(), 0, 1 << 16, 64, true, |_| {}).unwrap();
        assert_eq!(rec.valid_bytes, one * 7);
        assert_eq!(seg.next_offset(), 7);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), one * 7);
    }
}
