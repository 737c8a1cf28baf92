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
    pub attributes: i8,
    pub timestamp_delta: i64,
    pub offset_delta: i32,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
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
        self.headers()
            .find(|(k, _)| *k == name.as_bytes())
            .and_then(|(_, v)| v)
            .and_then(|v| std::str::from_utf8(v).ok())
    }

    /// The headers in order, as (key, value) bytes; stops at the first that does not parse.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], Option<&'a [u8]>)> {
        let (b, mut pos, mut left) = (self.headers, 0, self.header_count);
        std::iter::from_fn(move || {
            left = left.checked_sub(1)?;
            let key = field(b, &mut pos)??;
            let value = field(b, &mut pos)?;
            Some((key, value))
        })
    }

    /// Parses the record starting at `b[*pos]` and moves past it.
    fn parse(b: &'a [u8], pos: &mut usize) -> Option<RawRecord<'a>> {
        let start = *pos;
        let len = varint(b, pos, 5)?;
        let body_start = *pos;
        let end = body_start.checked_add(usize::try_from(len).ok()?)?;
        let body = b.get(body_start..end)?;
        let attributes = *body.first()? as i8;
        let mut p = 1;
        let timestamp_delta = varint(body, &mut p, 10)?;
        let offset_delta = i32::try_from(varint(body, &mut p, 5)?).ok()?;
        let key = field(body, &mut p)?;
        let value = field(body, &mut p)?;
        let header_count = usize::try_from(varint(body, &mut p, 5)?).ok()?;
        let headers = body.get(p..)?;
        // Headers take at least two bytes each: a hostile count cannot make lookups loop long.
        if header_count > headers.len() / 2 {
            return None;
        }
        *pos = end;
        Some(RawRecord {
            bytes: &b[start..end],
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
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

/// Whether any record of a records section has a header whose key starts with
/// `prefix`. Skips keys and values by their lengths, so it reads a few bytes per record
/// (a byte search would read them all). False for a section that does not parse.
pub fn any_header_key_starts_with(b: &[u8], prefix: &[u8]) -> bool {
    let mut pos = 0;
    while pos < b.len() {
        let Some(len) = varint(b, &mut pos, 5).and_then(|l| usize::try_from(l).ok()) else {
            return false;
        };
        let Some(end) = pos.checked_add(len).filter(|e| *e <= b.len()) else {
            return false;
        };
        let body = &b[pos..end];
        let mut p = 1;
        let headers = varint(body, &mut p, 10)
            .and(varint(body, &mut p, 5))
            .and(field(body, &mut p))
            .and(field(body, &mut p))
            .and(varint(body, &mut p, 5));
        let Some(count) = headers else { return false };
        // As [`RawRecord::headers`]: a record's headers end at the first that does not parse.
        for _ in 0..count.max(0) {
            match (field(body, &mut p), field(body, &mut p)) {
                (Some(Some(key)), Some(_)) if key.starts_with(prefix) => return true,
                (Some(Some(_)), Some(_)) => {}
                _ => break,
            }
        }
        pos = end;
    }
    false
}

/// Parses one record that is alone in `b` (as the delay store keeps them).
pub fn parse_one(b: &[u8]) -> Option<RawRecord<'_>> {
    let mut pos = 0;
    let r = RawRecord::parse(b, &mut pos)?;
    (pos == b.len()).then_some(r)
}

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

fn put_field(out: &mut Vec<u8>, v: Option<&[u8]>) {
    match v {
        None => put_varint(out, -1),
        Some(v) => {
            put_varint(out, v.len() as i64);
            out.extend_from_slice(v);
        }
    }
}

/// Appends one record, length prefix included, to `out` (`scratch` is working space).
/// `deltas` are its timestamp and offset deltas.
pub fn encode_record<'h>(
    out: &mut Vec<u8>,
    scratch: &mut Vec<u8>,
    deltas: (i64, i32),
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
) {
    let body = scratch;
    body.clear();
    body.push(0); // attributes: unused in v2 records
    put_varint(body, deltas.0);
    put_varint(body, deltas.1 as i64);
    put_field(body, key);
    put_field(body, value);
    let mut headers_bytes = Vec::new();
    let mut n = 0i64;
    for (k, v) in headers {
        put_field(&mut headers_bytes, Some(k));
        put_field(&mut headers_bytes, v);
        n += 1;
    }
    put_varint(body, n);
    body.extend_from_slice(&headers_bytes);
    put_varint(out, body.len() as i64);
    out.extend_from_slice(body);
}

/// Builds a new uncompressed v2 batch, record by record: what the broker writes when it
/// is the producer (delayed records coming due).
#[derive(Debug)]
pub struct BatchBuilder {
    buf: Vec<u8>,
    count: i32,
    first_timestamp: i64,
    max_timestamp: i64,
    scratch: Vec<u8>,
}

impl BatchBuilder {
    /// Records are timestamped relative to `first_timestamp`, which must be at or below
    /// every timestamp pushed (deltas stay non-negative, as Kafka's producers write them).
    pub fn new(first_timestamp: i64, producer: (i64, i16, i32)) -> Self {
        let mut buf = vec![0u8; HEADER_BYTES];
        buf[16] = 2;
        buf[27..35].copy_from_slice(&first_timestamp.to_be_bytes());
        buf[43..51].copy_from_slice(&producer.0.to_be_bytes());
        buf[51..53].copy_from_slice(&producer.1.to_be_bytes());
        buf[53..57].copy_from_slice(&producer.2.to_be_bytes());
        BatchBuilder {
            buf,
            count: 0,
            first_timestamp,
            max_timestamp: first_timestamp,
            scratch: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.buf.len()
    }
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }
    pub fn count(&self) -> i32 {
        self.count
    }

    /// Appends a record at the next offset.
    pub fn push<'h>(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: impl IntoIterator<Item = (&'h [u8], Option<&'h [u8]>)>,
    ) {
        debug_assert!(timestamp >= self.first_timestamp);
        let deltas = (timestamp - self.first_timestamp, self.count);
        encode_record(
            &mut self.buf,
            &mut self.scratch,
            deltas,
            key,
            value,
            headers,
        );
        self.count += 1;
        self.max_timestamp = self.max_timestamp.max(timestamp);
    }

    /// The finished batch, at base offset 0 (the log assigns it), CRC sealed.
    pub fn finish(mut self) -> bytes::Bytes {
        debug_assert!(self.count > 0);
        let b = &mut self.buf;
        let batch_length = (b.len() - LOG_OVERHEAD) as i32;
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[23..27].copy_from_slice(&(self.count - 1).to_be_bytes());
        b[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        b[57..61].copy_from_slice(&self.count.to_be_bytes());
        crate::batch::reseal(b);
        bytes::Bytes::from(self.buf)
    }
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
    fn builds_a_batch_kafka_can_decode() {
        let mut b = BatchBuilder::new(1_000, (42, 0, 7));
        b.push(
            1_000,
            Some(b"k"),
            Some(b"v1"),
            [(&b"h"[..], Some(&b"x"[..]))],
        );
        b.push(1_005, None, None, []);
        let bytes = b.finish();
        let h = validate(&bytes).unwrap();
        assert_eq!(
            (h.records_count, h.last_offset_delta, h.max_timestamp),
            (2, 1, 1_005)
        );
        assert_eq!(
            (h.producer_id, h.base_sequence, h.last_sequence()),
            (42, 7, 8)
        );
        let recs = records(&bytes, &h).unwrap();
        assert_eq!(recs[0].header("h"), Some("x"));
        assert_eq!(
            (recs[0].key, recs[0].value),
            (Some(&b"k"[..]), Some(&b"v1"[..]))
        );
        assert_eq!((recs[1].timestamp_delta, recs[1].value), (5, None));
        assert!(parse_one(recs[0].bytes).is_some());
        let mut buf = bytes.clone();
        let decoded = kafka_protocol::records::RecordBatchDecoder::decode(&mut buf).unwrap();
        assert_eq!(decoded.records.len(), 2);
        assert_eq!(decoded.records[1].timestamp, 1_005);
        assert_eq!(decoded.records[0].headers.len(), 1);
    }

    #[test]
    fn finds_a_header_prefix_without_parsing_values() {
        let mut b = BatchBuilder::new(0, (-1, -1, -1));
        b.push(0, Some(b"mq.delay"), Some(b"mq.delay"), []);
        b.push(
            0,
            None,
            None,
            [(&b"x"[..], None), (&b"mq.delay.ms"[..], Some(&b"5"[..]))],
        );
        let batch = b.finish();
        let section = &batch[HEADER_BYTES..];
        assert!(any_header_key_starts_with(section, b"mq.del"));
        assert!(!any_header_key_starts_with(section, b"mq.tag"));
        let first = records(&batch, &BatchHeader::parse(&batch).unwrap()).unwrap()[0].bytes;
        assert!(
            !any_header_key_starts_with(first, b"mq.del"),
            "keys and values are not headers"
        );
        for cut in 0..section.len() {
            let _ = any_header_key_starts_with(&section[..cut], b"mq.del");
        }
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
