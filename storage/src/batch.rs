//! The Kafka v2 record batch header (61 bytes), read and patched in place.
//!
//! ```text
//!  0 baseOffset i64 | 8 batchLength i32 | 12 partitionLeaderEpoch i32 | 16 magic i8
//! 17 crc u32 (CRC32C of bytes 21..end) | 21 attributes i16 | 23 lastOffsetDelta i32
//! 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64 | 51 producerEpoch i16
//! 53 baseSequence i32 | 57 recordsCount i32 | 61 records...
//! ```
//! `baseOffset` and `partitionLeaderEpoch` lie outside the CRC, so the broker assigns
//! them without touching the checksum: stored batches are the producer's bytes.

use crate::inflate::InflateError;
use crate::record::{self, SectionCheck};

pub const HEADER_BYTES: usize = 61;
/// Bytes before `batchLength`'s coverage starts: baseOffset + batchLength.
pub const LOG_OVERHEAD: usize = 12;
const CRC_START: usize = 21;

const ATTR_COMPRESSION_MASK: i16 = 0x07;
const ATTR_LOG_APPEND_TIME: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;

/// Why a batch was refused. Each maps to a Kafka error code in the broker.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("batch of {len} bytes is shorter than a v2 header")]
    Truncated { len: usize },
    #[error("batch length field {declared} does not match the {available} bytes present")]
    LengthMismatch { declared: i64, available: usize },
    #[error("unsupported magic {magic}")]
    BadMagic { magic: i8 },
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc { stored: u32, computed: u32 },
    #[error("record count {count} does not match last offset delta {last_offset_delta}")]
    BadCount { count: i32, last_offset_delta: i32 },
    #[error("unknown compression codec {codec}")]
    BadCompression { codec: i16 },
    #[error("control batches may not be produced by clients")]
    ControlBatch,
    #[error("transactional batches are not supported")]
    Transactional,
    #[error("batch with producer id {producer_id} has no base sequence")]
    NoSequence { producer_id: i64 },
    #[error("the {codec} codec's records section does not decompress")]
    BadCompressedRecords { codec: i16 },
    #[error("the records decompress to more than {limit} bytes")]
    InflatesTooLarge { limit: usize },
    #[error("malformed record at byte {at} of the records section")]
    MalformedRecord { at: usize },
    #[error("{count} batches for one partition: a Produce carries one")]
    SeveralBatches { count: usize },
    #[error("a produced batch starts at base offset 0, not {base_offset}")]
    BaseOffset { base_offset: i64 },
}

/// A parsed batch header. Plain data: copying it is cheap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// `batchLength`: the bytes that follow that field.
    pub batch_length: i32,
    pub partition_leader_epoch: i32,
    pub magic: i8,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub records_count: i32,
}

fn i16_at(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    i64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl BatchHeader {
    /// Parses the header fields; checks nothing but length.
    pub fn parse(b: &[u8]) -> Result<Self, BatchError> {
        if b.len() < HEADER_BYTES {
            return Err(BatchError::Truncated { len: b.len() });
        }
        Ok(BatchHeader {
            base_offset: i64_at(b, 0),
            batch_length: i32_at(b, 8),
            partition_leader_epoch: i32_at(b, 12),
            magic: b[16] as i8,
            crc: i32_at(b, 17) as u32,
            attributes: i16_at(b, 21),
            last_offset_delta: i32_at(b, 23),
            base_timestamp: i64_at(b, 27),
            max_timestamp: i64_at(b, 35),
            producer_id: i64_at(b, 43),
            producer_epoch: i16_at(b, 51),
            base_sequence: i32_at(b, 53),
            records_count: i32_at(b, 57),
        })
    }

    /// Bytes this batch occupies in the log, length fields included.
    pub fn total_bytes(&self) -> usize {
        LOG_OVERHEAD + self.batch_length.max(0) as usize
    }
    pub fn last_offset(&self) -> i64 {
        self.base_offset + self.last_offset_delta as i64
    }
    pub fn next_offset(&self) -> i64 {
        self.last_offset() + 1
    }
    pub fn compression(&self) -> i16 {
        self.attributes & ATTR_COMPRESSION_MASK
    }
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_LOG_APPEND_TIME != 0
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }
    pub fn has_producer_id(&self) -> bool {
        self.producer_id >= 0
    }
    /// Sequence of the last record, wrapping at i32::MAX as Kafka does.
    pub fn last_sequence(&self) -> i32 {
        if self.base_sequence < 0 {
            return self.base_sequence;
        }
        let last = self.base_sequence as i64 + self.last_offset_delta as i64;
        (last % (i32::MAX as i64 + 1)) as i32
    }
}

/// Checks one complete batch (exactly `b.len()` bytes) as it arrives from a client.
pub fn validate(b: &[u8]) -> Result<BatchHeader, BatchError> {
    checked(b, |count, last_offset_delta| count == last_offset_delta + 1)
}

/// Checks one complete batch read back from a segment: as [`validate`], except that a
/// batch may hold fewer records than its offsets (the broker took some out, leaving gaps
/// as compaction does: delayed records).
pub fn validate_stored(b: &[u8]) -> Result<BatchHeader, BatchError> {
    checked(b, |count, last_offset_delta| {
        (0..=last_offset_delta + 1).contains(&count)
    })
}

fn checked(b: &[u8], count_fits: impl Fn(i32, i32) -> bool) -> Result<BatchHeader, BatchError> {
    let h = BatchHeader::parse(b)?;
    if h.magic != 2 {
        return Err(BatchError::BadMagic { magic: h.magic });
    }
    if h.batch_length < (HEADER_BYTES - LOG_OVERHEAD) as i32 || h.total_bytes() != b.len() {
        return Err(BatchError::LengthMismatch {
            declared: h.batch_length as i64,
            available: b.len(),
        });
    }
    let computed = crc32c::crc32c(&b[CRC_START..]);
    if computed != h.crc {
        return Err(BatchError::BadCrc {
            stored: h.crc,
            computed,
        });
    }
    if h.last_offset_delta < 0 || !count_fits(h.records_count, h.last_offset_delta) {
        return Err(BatchError::BadCount {
            count: h.records_count,
            last_offset_delta: h.last_offset_delta,
        });
    }
    if h.compression() > 4 {
        return Err(BatchError::BadCompression {
            codec: h.compression(),
        });
    }
    Ok(h)
}

/// Splits a Produce request's records into batches, validating each.
pub fn split_batches(b: &[u8]) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    Ok(check(b)?.batches)
}

/// A Produce partition's records with every batch validated as Kafka validates a
/// client's: header, CRC, and every record read. Only [`check`] and [`check_inspecting`]
/// make one, so the log takes it without checking again.
#[derive(Debug)]
pub struct Validated<'a> {
    bytes: &'a [u8],
    batches: Vec<(usize, BatchHeader)>,
    /// Per batch, the largest timestamp of its records, which is what Kafka stores as
    /// the batch's max timestamp whatever the client wrote there.
    max_timestamps: Vec<i64>,
}

impl<'a> Validated<'a> {
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// Each batch's position in [`Self::bytes`] and its header.
    pub fn batches(&self) -> &[(usize, BatchHeader)] {
        &self.batches
    }
    /// Batch `i`'s largest record timestamp.
    pub fn max_timestamp(&self, i: usize) -> i64 {
        self.max_timestamps[i]
    }
}

/// What reading a batch's records found, handed to [`check_inspecting`]'s `inspect`.
#[derive(Debug)]
pub struct RecordsRead {
    pub found: SectionCheck,
    /// The records section, decompressed, for a compressed batch.
    pub inflated: Option<bytes::Bytes>,
}

/// Validates a Produce partition's records: every batch whole, CRC included, every
/// record read.
pub fn check(b: &[u8]) -> Result<Validated<'_>, BatchError> {
    Ok(check_inspecting(b, b"", |_, _, _| ())?.0)
}

/// As [`check`]; `inspect` sees each batch, with what reading its records found
/// (including whether a header key starts with `header_key_prefix`), right after the
/// batch passed, while its bytes are still in cache; what it returns comes back in
/// batch order. A second walk over the records of a megabyte batch that arrived in a
/// larger request would cost a cache miss per record once the request's later bytes
/// have pushed it out.
pub fn check_inspecting<'a, T>(
    b: &'a [u8],
    header_key_prefix: &[u8],
    mut inspect: impl FnMut(&[u8], &BatchHeader, &RecordsRead) -> T,
) -> Result<(Validated<'a>, Vec<T>), BatchError> {
    let mut seen = Vec::new();
    let mut max_timestamps = Vec::new();
    let batches = batches(b, |bytes| {
        let h = validate(bytes)?;
        // Kafka's `LogValidator.validateBatch`, for batches from clients.
        if h.has_producer_id() && h.base_sequence < 0 {
            return Err(BatchError::NoSequence {
                producer_id: h.producer_id,
            });
        }
        let inflated = match h.compression() {
            0 => None,
            codec => Some(
                record::inflate(codec, &bytes[HEADER_BYTES..]).map_err(|e| match e {
                    InflateError::Corrupt => BatchError::BadCompressedRecords { codec },
                    InflateError::TooLarge { limit } => BatchError::InflatesTooLarge { limit },
                })?,
            ),
        };
        let section = inflated.as_deref().unwrap_or(&bytes[HEADER_BYTES..]);
        let found = record::check_section(section, h.records_count, header_key_prefix)
            .map_err(|e| BatchError::MalformedRecord { at: e.at })?;
        max_timestamps.push(
            found
                .max_timestamp_delta
                .map_or(-1, |d| h.base_timestamp.saturating_add(d)),
        );
        seen.push(inspect(bytes, &h, &RecordsRead { found, inflated }));
        Ok(h)
    })?;
    Ok((
        Validated {
            bytes: b,
            batches,
            max_timestamps,
        },
        seen,
    ))
}

/// Splits batches the broker built itself, checking only their lengths (a batch with
/// records taken out keeps its last offset delta, which a client's may not).
pub fn split_built(b: &[u8]) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    batches(b, BatchHeader::parse)
}

fn batches(
    mut b: &[u8],
    mut check: impl FnMut(&[u8]) -> Result<BatchHeader, BatchError>,
) -> Result<Vec<(usize, BatchHeader)>, BatchError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while !b.is_empty() {
        if b.len() < LOG_OVERHEAD {
            return Err(BatchError::Truncated { len: b.len() });
        }
        let len = i32_at(b, 8);
        if len < 0 || LOG_OVERHEAD + len as usize > b.len() {
            return Err(BatchError::LengthMismatch {
                declared: len as i64,
                available: b.len() - LOG_OVERHEAD,
            });
        }
        let total = LOG_OVERHEAD + len as usize;
        let h = check(&b[..total])?;
        out.push((pos, h));
        pos += total;
        b = &b[total..];
    }
    Ok(out)
}

/// Assigns the offset and leader epoch of a batch in place (fields outside the CRC).
pub fn assign(b: &mut [u8], base_offset: i64, leader_epoch: i32) {
    debug_assert!(b.len() >= 16);
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
}

/// Marks a batch's records as uncompressed (the caller rewrote them so); reseal after.
pub fn set_uncompressed(b: &mut [u8]) {
    set_compression(b, 0);
}

/// Sets the codec a batch's attributes name (the CRC is the caller's to reseal).
pub fn set_compression(b: &mut [u8], codec: i16) {
    debug_assert!((0..=ATTR_COMPRESSION_MASK).contains(&codec));
    let attributes = (i16_at(b, 21) & !ATTR_COMPRESSION_MASK) | codec;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
}

/// Recomputes a batch's CRC after the broker changed bytes it covers.
pub fn reseal(b: &mut [u8]) {
    let crc = crc32c::crc32c(&b[CRC_START..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Sets a CreateTime batch's max timestamp to `max_timestamp` and clears the
/// LogAppendTime flag, re-sealing the CRC: Kafka's `setMaxTimestamp` on a batch whose
/// client wrote something else there.
pub fn set_create_time(b: &mut [u8], max_timestamp: i64) {
    let attributes = i16_at(b, 21) & !ATTR_LOG_APPEND_TIME;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    b[35..43].copy_from_slice(&max_timestamp.to_be_bytes());
    reseal(b);
}

/// Switches a batch to LogAppendTime with `now_ms` as its max timestamp, re-sealing the CRC
/// (the only case where the broker changes bytes under the checksum, as Kafka does).
pub fn set_log_append_time(b: &mut [u8], now_ms: i64) {
    let attributes = i16_at(b, 21) | ATTR_LOG_APPEND_TIME;
    b[21..23].copy_from_slice(&attributes.to_be_bytes());
    b[35..43].copy_from_slice(&now_ms.to_be_bytes());
    reseal(b);
}

/// A batch with no records covering offsets `base_offset..=base_offset + last_offset_delta`:
/// what compaction leaves when it removes every record of a batch. Clients read past it
/// (v2 keeps a batch's last offset), so a filtered read ends with one to move its reader
/// beyond records it left out.
pub fn empty_batch(
    base_offset: i64,
    last_offset_delta: i32,
    leader_epoch: i32,
    timestamp_ms: i64,
) -> [u8; HEADER_BYTES] {
    debug_assert!(last_offset_delta >= 0);
    let mut b = [0u8; HEADER_BYTES];
    b[0..8].copy_from_slice(&base_offset.to_be_bytes());
    b[8..12].copy_from_slice(&((HEADER_BYTES - LOG_OVERHEAD) as i32).to_be_bytes());
    b[12..16].copy_from_slice(&leader_epoch.to_be_bytes());
    b[16] = 2;
    b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
    b[27..35].copy_from_slice(&timestamp_ms.to_be_bytes());
    b[35..43].copy_from_slice(&timestamp_ms.to_be_bytes());
    b[43..51].copy_from_slice(&(-1i64).to_be_bytes());
    b[51..53].copy_from_slice(&(-1i16).to_be_bytes());
    b[53..57].copy_from_slice(&(-1i32).to_be_bytes());
    // recordsCount stays 0.
    reseal(&mut b);
    b
}

/// Test and tooling helper: builds an uncompressed batch of `values` with the given
/// producer fields, using kafka-protocol's encoder. Record `i` is timestamped
/// `timestamp_ms + i`.
pub fn build_batch(
    base_offset: i64,
    timestamp_ms: i64,
    values: &[&[u8]],
    producer: (i64, i16, i32),
) -> bytes::Bytes {
    let timestamps: Vec<i64> = (0..values.len() as i64).map(|i| timestamp_ms + i).collect();
    encode_batch(
        base_offset,
        &timestamps,
        values,
        producer,
        kafka_protocol::records::Compression::None,
    )
}

/// As [`build_batch`], with each record's timestamp given and the batch compressed.
pub fn encode_batch(
    base_offset: i64,
    timestamps: &[i64],
    values: &[&[u8]],
    producer: (i64, i16, i32),
    compression: kafka_protocol::records::Compression,
) -> bytes::Bytes {
    use kafka_protocol::records::{Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType};
    debug_assert_eq!(timestamps.len(), values.len());
    let records: Vec<Record> = values
        .iter()
        .zip(timestamps)
        .enumerate()
        .map(|(i, (v, ts))| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: 0,
            producer_id: producer.0,
            producer_epoch: producer.1,
            timestamp_type: TimestampType::Creation,
            offset: base_offset + i as i64,
            // kafka-protocol's encoder starts a new batch where offset - sequence changes,
            // so records without a producer also count up from -1.
            sequence: producer.2 + i as i32,
            timestamp: *ts,
            key: None,
            value: Some(bytes::Bytes::copy_from_slice(v)),
            headers: Default::default(),
        })
        .collect();
    let mut buf = bytes::BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        &records,
        &RecordEncodeOptions {
            version: 2,
            compression,
        },
    )
    .expect("encode batch");
    buf.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_validate_roundtrip() {
        let b = build_batch(0, 1_000, &[b"a", b"bb", b"ccc"], (7, 1, 10));
        let h = validate(&b).unwrap();
        assert_eq!(h.records_count, 3);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(
            (h.producer_id, h.producer_epoch, h.base_sequence),
            (7, 1, 10)
        );
        assert_eq!(h.last_sequence(), 12);
        assert_eq!(h.total_bytes(), b.len());
    }

    #[test]
    fn assign_keeps_crc_valid() {
        let mut b = build_batch(0, 1, &[b"x"], (-1, -1, -1)).to_vec();
        assign(&mut b, 12345, 7);
        let h = validate(&b).unwrap();
        assert_eq!((h.base_offset, h.partition_leader_epoch), (12345, 7));
    }

    #[test]
    fn log_append_time_reseals_crc() {
        let mut b = build_batch(0, 1, &[b"x"], (-1, -1, -1)).to_vec();
        set_log_append_time(&mut b, 99);
        let h = validate(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 99);
    }

    #[test]
    fn corruption_is_detected() {
        let good = build_batch(0, 1, &[b"hello"], (-1, -1, -1)).to_vec();
        let mut bad = good.clone();
        *bad.last_mut().unwrap() ^= 1;
        assert!(matches!(validate(&bad), Err(BatchError::BadCrc { .. })));
        let mut bad = good.clone();
        bad[16] = 1;
        assert!(matches!(
            validate(&bad),
            Err(BatchError::BadMagic { magic: 1 })
        ));
        assert!(matches!(
            validate(&good[..40]),
            Err(BatchError::Truncated { .. })
        ));
        assert!(matches!(
            split_batches(&good[..good.len() - 1]),
            Err(BatchError::LengthMismatch { .. })
        ));
        let two = [good.clone(), good].concat();
        assert_eq!(split_batches(&two).unwrap().len(), 2);
    }

    #[test]
    fn check_reads_every_record() {
        let good = build_batch(0, 1_000, &[b"a", b"bb"], (-1, -1, -1)).to_vec();
        let v = check(&good).unwrap();
        assert_eq!(v.max_timestamp(0), 1_001);
        // The last record's header count made negative, under a good CRC.
        let mut bad = good.clone();
        *bad.last_mut().unwrap() = 1;
        reseal(&mut bad);
        assert!(validate(&bad).is_ok(), "the header alone is fine");
        assert!(matches!(
            check(&bad),
            Err(BatchError::MalformedRecord { .. })
        ));
        // Marked gzip, records not gzip.
        let mut bad = good.clone();
        bad[22] |= 1;
        reseal(&mut bad);
        assert_eq!(
            check(&bad).unwrap_err(),
            BatchError::BadCompressedRecords { codec: 1 }
        );
        let no_sequence = build_batch(0, 1, &[b"a"], (7, 0, -1));
        assert_eq!(
            check(&no_sequence).unwrap_err(),
            BatchError::NoSequence { producer_id: 7 }
        );
    }

    #[test]
    fn check_reads_compressed_records() {
        use kafka_protocol::records::Compression;
        for compression in [
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let values: [&[u8]; 3] = [b"x", b"y", b"z"];
            let b = encode_batch(0, &[50, 49, 48], &values, (-1, -1, -1), compression);
            let v = check(&b).unwrap();
            assert_eq!(v.max_timestamp(0), 50, "{compression:?}");
        }
    }

    #[test]
    fn empty_batch_spans_offsets_with_a_valid_crc() {
        let b = empty_batch(100, 9, 3, 1_234);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(
            (h.base_offset, h.last_offset(), h.records_count),
            (100, 109, 0)
        );
        assert_eq!((h.partition_leader_epoch, h.max_timestamp), (3, 1_234));
        assert_eq!(h.total_bytes(), HEADER_BYTES);
        assert_eq!(h.crc, crc32c::crc32c(&b[CRC_START..]));
        assert!(!h.has_producer_id());
    }

    #[test]
    fn sequence_wraps() {
        let mut h = BatchHeader::parse(&build_batch(0, 1, &[b"a", b"b"], (1, 0, 5))).unwrap();
        h.base_sequence = i32::MAX;
        assert_eq!(h.last_sequence(), 0);
        h.base_sequence = -1;
        assert_eq!(h.last_sequence(), -1);
    }
}
