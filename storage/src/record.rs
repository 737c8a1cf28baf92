//! The records of an uncompressed v2 batch, read in place: no allocation, no copy.
//!
//! ```text
//! length varint | attributes i8 | timestampDelta varlong | offsetDelta varint
//! keyLength varint | key | valueLength varint | value
//! headerCount varint | (keyLength varint | key | valueLength varint | value)*
//! ```
//! Varints are zigzag-encoded, as in Kafka. Each record is `length` bytes after its
//! length prefix, so a filter can keep a record by copying its bytes: its offset and
//! timestamp are deltas from the batch header, which a rebuilt batch keeps.

use crate::batch::{BatchHeader, HEADER_BYTES, LOG_OVERHEAD};

/// A record that does not parse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("malformed record at byte {at} of the batch's records")]
pub struct RecordError {
    pub at: usize,
}

/// One record, borrowed from its batch.
#[derive(Debug, Clone, Copy)]
pub struct RawRecord<'a> {
    /// The record as stored, length prefix included.
    pub bytes: &'a [u8],
    pub offset_delta: i32,
    header_count: usize,
    headers: &'a [u8],
}

/// Reads a zigzag varint of at most `max_bytes` bytes at `*pos`.
fn varint(b: &[u8], pos: &mut usize, max_bytes: usize) -> Option<i64> {
    let mut raw: u64 = 0;
    for i in 0..max_bytes {
        let byte = *b.get(*pos)?;
        *pos += 1;
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((raw >> 1) as i64 ^ -((raw & 1) as i64));
        }
    }
    None
}

/// A length-prefixed field (-1: null), returning its bytes.
fn field<'a>(b: &'a [u8], pos: &mut usize) -> Option<Option<&'a [u8]>> {
    let len = varint(b, pos, 5)?;
    if len < 0 {
        return Some(None);
    }
    let end = pos.checked_add(len as usize)?;
    let v = b.get(*pos..end)?;
    *pos = end;
    Some(Some(v))
}

impl<'a> RawRecord<'a> {
    /// The value of header `name` as UTF-8 (None if absent, null or not UTF-8). With
    /// repeated names, the first wins.
    pub fn header(&self, name: &str) -> Option<&'a str> {
        let mut pos = 0;
        for _ in 0..self.header_count {
            let key = field(self.headers, &mut pos)??;
            let value = field(self.headers, &mut pos)?;
            if key == name.as_bytes() {
                return value.and_then(|v| std::str::from_utf8(v).ok());
            }
        }
        None
    }

    /// Parses the record starting at `b[*pos]` and moves past it.
    fn parse(b: &'a [u8], pos: &mut usize) -> Option<RawRecord<'a>> {
        let start = *pos;
        let len = varint(b, pos, 5)?;
        let body_start = *pos;
        let end = body_start.checked_add(usize::try_from(len).ok()?)?;
        let body = b.get(body_start..end)?;
        let mut p = 1; // attributes
        varint(body, &mut p, 10)?; // timestampDelta
        let offset_delta = i32::try_from(varint(body, &mut p, 5)?).ok()?;
        field(body, &mut p)?; // key
        field(body, &mut p)?; // value
        let header_count = usize::try_from(varint(body, &mut p, 5)?).ok()?;
        let headers = body.get(p..)?;
        // Headers take at least two bytes each: a hostile count cannot make lookups loop long.
        if header_count > headers.len() / 2 {
            return None;
        }
        *pos = end;
        Some(RawRecord {
            bytes: &b[start..end],
            offset_delta,
            header_count,
            headers,
        })
    }
}

/// The records of an uncompressed batch (`batch` is the whole stored batch). Fails on
/// the first record that does not parse, or if the count does not match the header.
pub fn records<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
) -> Result<Vec<RawRecord<'a>>, RecordError> {
    debug_assert_eq!(header.compression(), 0);
    let b = batch.get(HEADER_BYTES..).ok_or(RecordError { at: 0 })?;
    parse_records(b, header.records_count)
}

/// The records of a batch's records section (after the header, decompressed if the
/// batch was compressed), which must hold exactly `count` records.
pub fn parse_records(b: &[u8], count: i32) -> Result<Vec<RawRecord<'_>>, RecordError> {
    let mut out = Vec::with_capacity(count.clamp(0, 4096) as usize);
    let mut pos = 0;
    while pos < b.len() {
        out.push(RawRecord::parse(b, &mut pos).ok_or(RecordError { at: pos })?);
    }
    if out.len() != count.max(0) as usize {
        return Err(RecordError { at: pos });
    }
    Ok(out)
}

/// A batch's records section, decompressed if need be (None if it does not decompress).
pub fn records_section(h: &BatchHeader, stored: &bytes::Bytes) -> Option<bytes::Bytes> {
    use kafka_protocol::compression::{Decompressor, Gzip, Lz4, Snappy, Zstd};
    let mut section = stored.slice(HEADER_BYTES..);
    let keep = |out: &mut bytes::Bytes| Ok(std::mem::take(out));
    match h.compression() {
        0 => Some(section),
        1 => Gzip::decompress(&mut section, keep).ok(),
        2 => Snappy::decompress(&mut section, keep).ok(),
        3 => Lz4::decompress(&mut section, keep).ok(),
        4 => Zstd::decompress(&mut section, keep).ok(),
        _ => None,
    }
}

/// A batch like `header`'s (same base offset, last offset delta, timestamps, producer
/// fields, attributes) holding only `kept` of its records, uncompressed, with a fresh
/// CRC: what compaction leaves, so readers see the kept records at their own offsets.
pub fn with_records(header_bytes: &[u8], kept: &[RawRecord<'_>]) -> bytes::Bytes {
    debug_assert!(header_bytes.len() >= HEADER_BYTES);
    let len: usize = kept.iter().map(|r| r.bytes.len()).sum();
    let mut b = Vec::with_capacity(HEADER_BYTES + len);
    b.extend_from_slice(&header_bytes[..HEADER_BYTES]);
    for r in kept {
        b.extend_from_slice(r.bytes);
    }
    let batch_length = (HEADER_BYTES - LOG_OVERHEAD + len) as i32;
    b[8..12].copy_from_slice(&batch_length.to_be_bytes());
    b[57..61].copy_from_slice(&(kept.len() as i32).to_be_bytes());
    crate::batch::set_uncompressed(&mut b);
    crate::batch::reseal(&mut b);
    bytes::Bytes::from(b)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{build_batch, validate};

    #[test]
    fn walks_and_rebuilds_a_batch() {
        let b = build_batch(100, 5, &[b"a", b"bb", b"ccc"], (-1, -1, -1));
        let h = validate(&b).unwrap();
        let recs = records(&b, &h).unwrap();
        assert_eq!(
            recs.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(recs[0].header("x"), None);
        let kept = with_records(&b, &[recs[0], recs[2]]);
        let k = BatchHeader::parse(&kept).unwrap();
        assert_eq!(
            (k.base_offset, k.last_offset(), k.records_count),
            (100, 102, 2)
        );
        assert_eq!(k.total_bytes(), kept.len());
        let again = records(&kept, &k).unwrap();
        assert_eq!(
            again.iter().map(|r| r.offset_delta).collect::<Vec<_>>(),
            [0, 2]
        );
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let b = build_batch(0, 5, &[b"a"], (-1, -1, -1));
        let h = validate(&b).unwrap();
        for cut in HEADER_BYTES..b.len() {
            assert!(records(&b[..cut], &h).is_err());
        }
        let mut bad = b.to_vec();
        bad[HEADER_BYTES] = 0xff; // length varint that never ends within 5 bytes
        bad[HEADER_BYTES + 1] = 0xff;
        assert!(records(&bad, &h).is_err());
    }
}
