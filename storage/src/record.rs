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
use crate::inflate::InflateError;

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

/// What [`check_section`] found in a records section that reads as Kafka reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectionCheck {
    /// The largest timestamp delta of its records (None: it has none).
    pub max_timestamp_delta: Option<i64>,
    /// Whether a header key starts with the prefix asked about.
    pub header_key_prefix_seen: bool,
}

/// Reads all `count` records of a records section (decompressed if need be) and fails
/// where Kafka's `DefaultRecord.readFrom` fails when it validates a Produce: a length
/// that overruns the section, a field that overruns its record, a negative header count
/// or a null header key, a record whose fields do not end where its length says, or
/// bytes left over after the last record. Skips keys and values by their lengths.
pub fn check_section(
    b: &[u8],
    count: i32,
    header_key_prefix: &[u8],
) -> Result<SectionCheck, RecordError> {
    let mut found = SectionCheck {
        max_timestamp_delta: None,
        header_key_prefix_seen: false,
    };
    let mut pos = 0;
    for _ in 0..count.max(0) {
        let at = pos;
        let bad = || RecordError { at };
        let len = varint(b, &mut pos, 5)
            .and_then(|l| usize::try_from(l).ok())
            .ok_or_else(bad)?;
        let end = pos
            .checked_add(len)
            .filter(|e| *e <= b.len())
            .ok_or_else(bad)?;
        let body = &b[pos..end];
        // attributes, timestamp delta, offset delta, key, value, header count.
        let mut p = 1;
        let timestamp_delta = varint(body, &mut p, 10).ok_or_else(bad)?;
        varint(body, &mut p, 5)
            .and_then(|d| i32::try_from(d).ok())
            .ok_or_else(bad)?;
        field(body, &mut p).ok_or_else(bad)?;
        field(body, &mut p).ok_or_else(bad)?;
        let headers = varint(body, &mut p, 5)
            .filter(|n| *n >= 0)
            .ok_or_else(bad)?;
        // Each header takes at least two bytes, so a hostile count ends at the record's end.
        for _ in 0..headers {
            let key = field(body, &mut p).flatten().ok_or_else(bad)?;
            field(body, &mut p).ok_or_else(bad)?;
            found.header_key_prefix_seen |= key.starts_with(header_key_prefix);
        }
        if p != body.len() {
            return Err(bad());
        }
        found.max_timestamp_delta = Some(
            found
                .max_timestamp_delta
                .map_or(timestamp_delta, |m| m.max(timestamp_delta)),
        );
        pos = end;
    }
    if pos != b.len() {
        return Err(RecordError { at: pos });
    }
    Ok(found)
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
    match h.compression() {
        0 => Some(stored.slice(HEADER_BYTES..)),
        codec => inflate(codec, &stored[HEADER_BYTES..]).ok(),
    }
}

/// A compressed records section, decompressed, within [`crate::inflate`]'s bound.
pub fn inflate(codec: i16, compressed: &[u8]) -> Result<bytes::Bytes, InflateError> {
    crate::inflate::inflate(codec, compressed, crate::inflate::MAX_INFLATED_BYTES)
        .map(bytes::Bytes::from)
}

/// A batch like `header`'s (same base offset, last offset delta, timestamps, producer
/// fields, attributes) holding only `kept` of its records, uncompressed, with a fresh
/// CRC: what compaction leaves, so readers see the kept records at their own offsets.
pub fn with_records(header_bytes: &[u8], kept: &[RawRecord<'_>]) -> Vec<u8> {
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
    b
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

    /// Checks `section` as one record of `count`, returning where it failed.
    fn check_one(section: &[u8]) -> Result<SectionCheck, RecordError> {
        check_section(section, 1, b"")
    }

    /// One record with the fields given raw, behind its length.
    fn raw_record(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i64);
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn check_section_finds_a_header_prefix_and_the_max_timestamp() {
        let mut b = BatchBuilder::new(0, (-1, -1, -1));
        b.push(7, Some(b"mq.delay"), Some(b"mq.delay"), []);
        b.push(
            3,
            None,
            None,
            [(&b"x"[..], None), (&b"mq.delay.ms"[..], Some(&b"5"[..]))],
        );
        let batch = b.finish();
        let section = &batch[HEADER_BYTES..];
        let found = check_section(section, 2, b"mq.del").unwrap();
        assert_eq!(found.max_timestamp_delta, Some(7));
        assert!(found.header_key_prefix_seen);
        assert!(
            !check_section(section, 2, b"mq.tag")
                .unwrap()
                .header_key_prefix_seen
        );
        let first = records(&batch, &BatchHeader::parse(&batch).unwrap()).unwrap()[0].bytes;
        assert!(
            !check_one(first).unwrap().header_key_prefix_seen,
            "keys and values are not headers"
        );
        assert!(check_section(section, 1, b"").is_err(), "bytes left over");
        assert!(check_section(section, 3, b"").is_err(), "a record missing");
        for cut in 0..section.len() {
            assert!(check_section(&section[..cut], 2, b"").is_err());
        }
    }

    #[test]
    fn check_section_refuses_what_kafka_refuses() {
        // attributes, timestamp delta 0, offset delta 0, null key, null value, 0 headers.
        let good = [0, 0, 0, 1, 1, 0];
        assert!(check_one(&raw_record(&good)).is_ok());
        // A record whose fields end before its length does.
        assert!(check_one(&raw_record(&[0, 0, 0, 1, 1, 0, 9])).is_err());
        // A negative header count (zigzag 1 is -1).
        assert!(check_one(&raw_record(&[0, 0, 0, 1, 1, 1])).is_err());
        // One header with a null key, then with an empty key and a null value.
        assert!(check_one(&raw_record(&[0, 0, 0, 1, 1, 2, 1, 1])).is_err());
        assert!(check_one(&raw_record(&[0, 0, 0, 1, 1, 2, 0, 1])).is_ok());
        // A hostile header count ends at the record's end.
        assert!(check_one(&raw_record(&[0, 0, 0, 1, 1, 0xfe, 0xff, 0xff, 0xff, 0x0f])).is_err());
        // A negative record length.
        assert!(check_one(&[1, 0]).is_err());
        assert_eq!(
            check_section(&[], 0, b"").unwrap().max_timestamp_delta,
            None
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
