//! What a view's reader gets from a region of its source's log.
//!
//! Each batch of the region takes one of three paths, counted in the metrics:
//! - every record the reader still needs matches: the batch goes out as it is stored,
//!   by sendfile (records before the fetch offset ride along; clients drop them);
//! - none matches: nothing is sent for it;
//! - some match: the batch is rebuilt from the matching records, keeping their offsets
//!   and timestamps, uncompressed, with a fresh CRC.
//!
//! If the region ends in records the filter left out, an empty batch spanning them
//! closes the response (compaction leaves the same), so the reader's next fetch starts
//! after them instead of reading them again.

use std::io;
use std::os::unix::fs::FileExt;

use bytes::Bytes;
use sluice_storage::batch::{self, BatchHeader, HEADER_BYTES};
use sluice_storage::log::FileSlice;
use sluice_storage::record::{self, RawRecord};
use sluice_wire::fetch::Chunk;

use super::filter::{Filter, TAG_HEADER};
use super::summary::{Settled, SummaryCache, TagSummary};
use crate::dispatch::SendRegion;
use crate::partitions::Partition;

/// The chunks for one partition of a view, and the bytes of each path.
#[derive(Debug)]
pub struct FilteredRead {
    /// The last offset the chunks cover, and the last offset read (records after the
    /// first and up to the second were filtered out).
    emitted_through: i64,
    read_through: i64,
    /// Leader epoch and max timestamp of the last batch read, for the closing batch.
    last_epoch: i32,
    last_timestamp: i64,
    pub chunks: Vec<Chunk<SendRegion>>,
    /// Stored bytes of batches sent whole.
    pub whole_bytes: usize,
    /// Bytes of rebuilt batches (and of the closing empty batch).
    pub rebuilt_bytes: usize,
    /// Stored bytes of batches that matched nothing.
    pub skipped_bytes: usize,
    /// Batches settled by their tag summary, without decoding.
    pub settled_batches: usize,
    /// Batches decoded to judge their records.
    pub decoded_batches: usize,
    /// Bytes read from the segment file to decide (headers, and batches decoded).
    pub read_bytes: usize,
}

impl FilteredRead {
    /// An empty read for a reader at `fetch_offset`.
    pub fn new(fetch_offset: i64) -> Self {
        FilteredRead {
            emitted_through: fetch_offset - 1,
            read_through: fetch_offset - 1,
            last_epoch: -1,
            last_timestamp: -1,
            chunks: Vec::new(),
            whole_bytes: 0,
            rebuilt_bytes: 0,
            skipped_bytes: 0,
            settled_batches: 0,
            decoded_batches: 0,
            read_bytes: 0,
        }
    }

    /// The offset after the last one read: where the next region starts.
    pub fn next_offset(&self) -> i64 {
        self.read_through + 1
    }

    /// Ends the read: if it ends in records the filter left out, an empty batch over
    /// them moves the reader past them.
    pub fn close(&mut self) {
        if self.read_through > self.emitted_through {
            let base = self.emitted_through + 1;
            let closing = batch::empty_batch(
                base,
                (self.read_through - base) as i32,
                self.last_epoch,
                self.last_timestamp,
            );
            self.rebuilt_bytes += closing.len();
            self.chunks
                .push(Chunk::Bytes(Bytes::copy_from_slice(&closing)));
            self.emitted_through = self.read_through;
        }
    }

    /// Bytes this partition puts on the wire.
    pub fn bytes(&self) -> usize {
        self.whole_bytes + self.rebuilt_bytes
    }

    /// Nothing matched: the read is only the empty batch that moves readers past the
    /// filtered-out records.
    pub fn only_closing_batch(&self) -> bool {
        self.whole_bytes == 0 && self.rebuilt_bytes <= HEADER_BYTES
    }
}

enum Verdict {
    Whole,
    Rebuilt(Bytes),
    Skipped,
}

/// Reads a region through a window, so a batch its summary settles is read no further
/// than its header (a batch larger than the window not at all).
struct Window<'s> {
    slice: &'s FileSlice,
    start: usize,
    buf: Vec<u8>,
    read_bytes: usize,
}

const WINDOW: usize = 64 * 1024;

impl Window<'_> {
    fn get(&mut self, pos: usize, n: usize) -> io::Result<&[u8]> {
        debug_assert!(pos + n <= self.slice.len);
        if pos < self.start || pos + n > self.start + self.buf.len() {
            let len = n.max(WINDOW).min(self.slice.len - pos);
            self.buf.resize(len, 0);
            self.slice
                .file
                .read_exact_at(&mut self.buf, self.slice.position + pos as u64)?;
            self.start = pos;
            self.read_bytes += len;
        }
        Ok(&self.buf[pos - self.start..pos - self.start + n])
    }
}

/// The most source bytes one view partition reads for one Fetch while looking for
/// records to send: a sparse view answers after this much, with an empty batch that
/// moves its reader on, rather than scanning its whole source in one request.
pub const SCAN_LIMIT: usize = 64 << 20;

/// Reads a view partition for a reader at `fetch_offset`, starting with `first` (the
/// source's region at that offset) and reading on through the source log until
/// `budget` bytes are to be sent, [`SCAN_LIMIT`] bytes were read, or the log ends.
pub fn read_view(
    part: &Partition,
    first: FileSlice,
    fetch_offset: i64,
    budget: usize,
    filter: &Filter,
) -> io::Result<FilteredRead> {
    let mut out = FilteredRead::new(fetch_offset);
    let mut slice = first;
    let mut scanned = 0;
    loop {
        scanned += slice.len;
        let offset = out.next_offset();
        filter_region(&slice, offset, filter, &part.summaries, &mut out)?;
        let remaining = budget.saturating_sub(out.bytes());
        if remaining == 0 || scanned >= SCAN_LIMIT || out.next_offset() <= offset {
            break;
        }
        // Source bytes at least what is left to send: a region yields at most its size.
        let next = part.lock().read(out.next_offset(), remaining, false);
        match next {
            Ok(r) => match r.slice {
                Some(s) => slice = s,
                None => break,
            },
            // Retention moved the log start past us, or similar: send what we have.
            Err(_) => break,
        }
    }
    out.close();
    Ok(out)
}

/// Filters `slice` (whole batches from the source log, possibly ending in part of one,
/// which is dropped) for a reader at `fetch_offset`, adding to `out`.
pub fn filter_region(
    slice: &FileSlice,
    fetch_offset: i64,
    filter: &Filter,
    summaries: &SummaryCache,
    out: &mut FilteredRead,
) -> io::Result<()> {
    let mut window = Window {
        slice,
        start: 0,
        buf: Vec::new(),
        read_bytes: 0,
    };
    let mut pos = 0;
    while pos + HEADER_BYTES <= slice.len {
        let Ok(h) = BatchHeader::parse(window.get(pos, HEADER_BYTES)?) else {
            break;
        };
        let total = h.total_bytes();
        if total < HEADER_BYTES || pos + total > slice.len {
            break;
        }
        if h.last_offset() >= fetch_offset {
            let mut stored = || window.get(pos, total).map(Bytes::copy_from_slice);
            match verdict(&h, &mut stored, fetch_offset, filter, summaries, out)? {
                Verdict::Whole => {
                    out.chunks.push(Chunk::Region(SendRegion(FileSlice {
                        file: slice.file.clone(),
                        position: slice.position + pos as u64,
                        len: total,
                    })));
                    out.whole_bytes += total;
                    out.emitted_through = h.last_offset();
                }
                Verdict::Rebuilt(bytes) => {
                    out.rebuilt_bytes += bytes.len();
                    out.chunks.push(Chunk::Bytes(bytes));
                    out.emitted_through = h.last_offset();
                }
                Verdict::Skipped => out.skipped_bytes += total,
            }
            out.read_through = h.last_offset();
            out.last_epoch = h.partition_leader_epoch;
            out.last_timestamp = h.max_timestamp;
        }
        pos += total;
    }
    out.read_bytes += window.read_bytes;
    Ok(())
}

fn verdict(
    h: &BatchHeader,
    stored: &mut dyn FnMut() -> io::Result<Bytes>,
    fetch_offset: i64,
    filter: &Filter,
    summaries: &SummaryCache,
    out: &mut FilteredRead,
) -> io::Result<Verdict> {
    if h.is_control() || h.records_count == 0 {
        // Not records a filter speaks about: pass them on as stored.
        return Ok(Verdict::Whole);
    }
    let settled = |s: &TagSummary| match s.settle(filter) {
        Settled::All => Some(Verdict::Whole),
        Settled::None => Some(Verdict::Skipped),
        Settled::Unknown => None,
    };
    if let Some(v) = summaries.get(h.base_offset).as_ref().and_then(settled) {
        out.settled_batches += 1;
        return Ok(v);
    }
    out.decoded_batches += 1;
    let stored = stored()?;
    let section = record::records_section(h, &stored);
    match section
        .as_deref()
        .map(|b| record::parse_records(b, h.records_count))
    {
        Some(Ok(records)) => Ok(judge_in_place(
            h,
            &stored,
            &records,
            fetch_offset,
            filter,
            summaries,
        )),
        _ => {
            // Stored batches were validated on produce; one whose records do not read
            // is handed on unchanged, and the client reports it, rather than hidden.
            tracing::warn!(
                offset = h.base_offset,
                "view: batch records do not read; sent as stored"
            );
            Ok(Verdict::Whole)
        }
    }
}

/// Records judged where they lie (decompressed first if need be), and a mixed batch rebuilt by
/// copying the matching records' bytes under the original header (base offset, last
/// offset delta and timestamps kept, as compaction leaves a batch).
fn judge_in_place(
    h: &BatchHeader,
    stored: &[u8],
    records: &[RawRecord<'_>],
    fetch_offset: i64,
    filter: &Filter,
    summaries: &SummaryCache,
) -> Verdict {
    let summary = TagSummary::of_tags(records.iter().map(|r| r.header(TAG_HEADER)));
    let settled = summary.settle(filter);
    summaries.insert(h.base_offset, summary);
    match settled {
        Settled::All => return Verdict::Whole,
        Settled::None => return Verdict::Skipped,
        Settled::Unknown => {}
    }
    let mut needed = 0;
    let kept: Vec<RawRecord<'_>> = records
        .iter()
        .filter(|r| h.base_offset + i64::from(r.offset_delta) >= fetch_offset)
        .inspect(|_| needed += 1)
        .filter(|r| filter.matches(|name| r.header(name)))
        .copied()
        .collect();
    if kept.is_empty() {
        Verdict::Skipped
    } else if kept.len() == needed {
        Verdict::Whole
    } else {
        Verdict::Rebuilt(record::with_records(stored, &kept).into())
    }
}

#[cfg(test)]
mod tests {
    use std::fs::File;
    use std::io::Write;
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::records::{
        Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions,
    };

    use super::super::tagged_record;
    use super::*;

    /// One stored batch of records at `base`, each tagged as given (None: no tag).
    fn batch(base: i64, tags: &[Option<&str>], compression: Compression) -> Vec<u8> {
        let records: Vec<Record> = tags
            .iter()
            .enumerate()
            .map(|(i, tag)| tagged_record(base + i as i64, *tag))
            .collect();
        let mut out = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut out,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression,
            },
        )
        .unwrap();
        out.to_vec()
    }

    /// One region, filtered and closed.
    fn filtered(slice: &FileSlice, offset: i64, f: &Filter, s: &SummaryCache) -> FilteredRead {
        let mut out = FilteredRead::new(offset);
        filter_region(slice, offset, f, s, &mut out).unwrap();
        out.close();
        out
    }

    /// Writes the batches to a file and returns a slice over all of them.
    fn log_of(batches: &[Vec<u8>]) -> (tempfile::TempDir, FileSlice) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("seg.log");
        let mut f = File::create(&path).unwrap();
        let bytes: Vec<u8> = batches.concat();
        f.write_all(&bytes).unwrap();
        let slice = FileSlice {
            file: Arc::new(File::open(&path).unwrap()),
            position: 0,
            len: bytes.len(),
        };
        (dir, slice)
    }

    /// The offsets a client reads from the chunks, and the offset it fetches next.
    fn read_back(fr: &FilteredRead, slice: &FileSlice) -> (Vec<i64>, i64) {
        let mut offsets = Vec::new();
        let mut next = -1;
        for chunk in &fr.chunks {
            let mut bytes = match chunk {
                Chunk::Bytes(b) => b.clone(),
                Chunk::Region(SendRegion(r)) => {
                    let mut buf = vec![0u8; r.len];
                    slice.file.read_exact_at(&mut buf, r.position).unwrap();
                    Bytes::from(buf)
                }
            };
            let h = BatchHeader::parse(&bytes).unwrap();
            assert_eq!(
                h.crc,
                crc32c::crc32c(&bytes[21..]),
                "every batch sent has a valid CRC"
            );
            next = h.last_offset() + 1;
            let set = RecordBatchDecoder::decode(&mut bytes).unwrap();
            offsets.extend(set.records.iter().map(|r| r.offset));
        }
        (offsets, next)
    }

    #[test]
    fn whole_skipped_and_rebuilt_batches() {
        let f = Filter::parse("a").unwrap();
        let batches = [
            batch(0, &[Some("a"), Some("a")], Compression::None), // whole
            batch(2, &[Some("b"), None], Compression::None),      // skipped
            batch(4, &[Some("b"), Some("a"), None], Compression::Lz4), // rebuilt
            batch(7, &[Some("b")], Compression::None),            // trailing, skipped
        ];
        let (_dir, slice) = log_of(&batches);
        let fr = filtered(&slice, 0, &f, &SummaryCache::default());
        assert_eq!(fr.whole_bytes, batches[0].len());
        assert_eq!(fr.skipped_bytes, batches[1].len() + batches[3].len());
        let (offsets, next) = read_back(&fr, &slice);
        assert_eq!(offsets, vec![0, 1, 5]);
        // The closing empty batch moves the reader past offsets 6 and 7.
        assert_eq!(next, 8);
        assert_eq!(fr.bytes(), fr.chunks.iter().map(chunk_len).sum::<usize>());
    }

    #[test]
    fn summarised_batches_are_settled_without_reading_them() {
        let f = Filter::parse("a").unwrap();
        let big: Vec<Option<&str>> = vec![Some("b"); 5_000];
        let batches = [
            batch(0, &big, Compression::None),
            batch(5_000, &[Some("a"); 3], Compression::None),
        ];
        assert!(batches[0].len() > WINDOW);
        let (_dir, slice) = log_of(&batches);
        let summaries = SummaryCache::default();
        let first = filtered(&slice, 0, &f, &summaries);
        assert_eq!((first.decoded_batches, first.settled_batches), (2, 0));
        assert_eq!(summaries.len(), 2);
        let again = filtered(&slice, 0, &f, &summaries);
        assert_eq!((again.decoded_batches, again.settled_batches), (0, 2));
        // Two windows of headers; the large skipped batch's body is never read.
        assert!(
            again.read_bytes < batches[0].len(),
            "read {} bytes",
            again.read_bytes
        );
        assert_eq!(read_back(&again, &slice), read_back(&first, &slice));
        assert_eq!(again.whole_bytes, batches[1].len());
        assert_eq!(again.skipped_bytes, batches[0].len());
    }

    #[test]
    fn uncompressed_mixed_batches_keep_their_header() {
        let f = Filter::parse("sql:tag = 'a' OR tag IS NULL").unwrap();
        let batches = [batch(
            10,
            &[Some("b"), Some("a"), None, Some("b")],
            Compression::None,
        )];
        let (_dir, slice) = log_of(&batches);
        let fr = filtered(&slice, 11, &f, &SummaryCache::default());
        assert_eq!(
            fr.chunks.len(),
            1,
            "no closing batch: the rebuilt one spans 10..=13"
        );
        let (offsets, next) = read_back(&fr, &slice);
        assert_eq!((offsets, next), (vec![11, 12], 14));
        let Chunk::Bytes(b) = &fr.chunks[0] else {
            panic!("a rebuilt batch is bytes")
        };
        let h = BatchHeader::parse(b).unwrap();
        assert_eq!(
            (h.base_offset, h.records_count, h.base_timestamp),
            (10, 2, 1_010)
        );
    }

    #[test]
    fn records_before_the_fetch_offset_are_not_judged() {
        let f = Filter::parse("a").unwrap();
        // Offset 0 does not match but lies before the fetch offset: the batch is whole.
        let batches = [batch(0, &[Some("b"), Some("a")], Compression::None)];
        let (_dir, slice) = log_of(&batches);
        let fr = filtered(&slice, 1, &f, &SummaryCache::default());
        assert_eq!(fr.whole_bytes, batches[0].len());
        assert_eq!(fr.chunks.len(), 1);
    }

    #[test]
    fn nothing_matching_still_moves_the_reader() {
        let f = Filter::parse("zzz").unwrap();
        let batches = [
            batch(10, &[Some("a"), None], Compression::Gzip),
            batch(12, &[Some("b")], Compression::None),
        ];
        let (_dir, slice) = log_of(&batches);
        let fr = filtered(&slice, 11, &f, &SummaryCache::default());
        let (offsets, next) = read_back(&fr, &slice);
        assert!(offsets.is_empty());
        assert_eq!(next, 13);
        let closing = BatchHeader::parse(match &fr.chunks[0] {
            Chunk::Bytes(b) => b,
            Chunk::Region(_) => panic!("closing batch is bytes"),
        })
        .unwrap();
        assert_eq!(closing.base_offset, 11);
    }

    #[test]
    fn a_partial_trailing_batch_is_dropped() {
        let f = Filter::parse("a").unwrap();
        let batches = [
            batch(0, &[Some("a")], Compression::None),
            batch(1, &[Some("a")], Compression::None),
        ];
        let (_dir, mut slice) = log_of(&batches);
        slice.len -= 3;
        let fr = filtered(&slice, 0, &f, &SummaryCache::default());
        let (offsets, next) = read_back(&fr, &slice);
        assert_eq!((offsets, next), (vec![0], 1));
    }

    fn chunk_len(c: &Chunk<SendRegion>) -> usize {
        match c {
            Chunk::Bytes(b) => b.len(),
            Chunk::Region(SendRegion(r)) => r.len,
        }
    }
}
