//! Storing a topic's batches in the codec its `compression.type` names, as Kafka's
//! `LogValidator` rebuilds a batch produced in another codec.
//!
//! Each codec writes what Kafka's own broker writes, so that every client reads it:
//! gzip; snappy in xerial's framing (snappy-java's `SnappyOutputStream`: a 16-byte
//! header, then blocks of at most 32 KiB of input); LZ4 frames of independent 64 KiB
//! blocks without checksums, the fast compressor at the default level (Kafka's
//! `Lz4BlockOutputStream`: its reader refuses linked blocks); zstd frames.

use std::io::{self, Write};

use crate::batch::{self, BatchError, BatchHeader, HEADER_BYTES, LOG_OVERHEAD};
use crate::inflate::{inflate, InflateError, MAX_INFLATED_BYTES};
use crate::Error;

/// Kafka's codec ids (the low three bits of a batch's attributes).
pub const NONE: i16 = 0;
pub const GZIP: i16 = 1;
pub const SNAPPY: i16 = 2;
pub const LZ4: i16 = 3;
pub const ZSTD: i16 = 4;

/// Kafka's codec names (`compression.type`), each with its id and the topic config
/// that sets its level, if it has one.
pub const CODECS: [(&str, i16, Option<&str>); 5] = [
    ("uncompressed", NONE, None),
    ("gzip", GZIP, Some("compression.gzip.level")),
    ("snappy", SNAPPY, None),
    ("lz4", LZ4, Some("compression.lz4.level")),
    ("zstd", ZSTD, Some("compression.zstd.level")),
];

/// `compression.lz4.level`'s default.
const LZ4_DEFAULT_LEVEL: i32 = 9;

/// What snappy-java's `SnappyOutputStream` starts with: its magic, then version 1 and
/// the oldest version that reads it, 1.
const SNAPPY_XERIAL_HEADER: &[u8; 16] = b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// snappy-java's default block size.
const SNAPPY_XERIAL_BLOCK_BYTES: usize = 32 * 1024;

/// A topic's `compression.type`, with the level its codec's `compression.*.level` sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopicCompression {
    /// `producer`: every batch is stored as produced.
    Producer,
    /// A batch in another codec is stored rebuilt in this one (`NONE`: uncompressed).
    Codec { codec: i16, level: i32 },
}

/// `raw` compressed with Kafka codec `codec` (1 gzip, 2 snappy, 3 lz4, 4 zstd) at
/// `level` (gzip: -1 for the library's default).
pub fn compress(codec: i16, level: i32, raw: &[u8]) -> io::Result<Vec<u8>> {
    match codec {
        GZIP => {
            let level = match level {
                -1 => flate2::Compression::default(),
                l => flate2::Compression::new(l.clamp(0, 9) as u32),
            };
            let mut w = flate2::write::GzEncoder::new(Vec::with_capacity(raw.len() / 2), level);
            w.write_all(raw)?;
            w.finish()
        }
        SNAPPY => {
            let mut out = Vec::with_capacity(raw.len() / 2 + SNAPPY_XERIAL_HEADER.len());
            out.extend_from_slice(SNAPPY_XERIAL_HEADER);
            let mut encoder = snap::raw::Encoder::new();
            for block in raw.chunks(SNAPPY_XERIAL_BLOCK_BYTES) {
                let compressed = encoder.compress_vec(block).map_err(io::Error::other)?;
                out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
                out.extend_from_slice(&compressed);
            }
            Ok(out)
        }
        LZ4 => {
            // Kafka's default level (9) takes lz4's fast compressor, any other its
            // high-compression one at that level (`Lz4BlockOutputStream`): 0 is the
            // frame library's fast mode.
            let level = if level == LZ4_DEFAULT_LEVEL { 0 } else { level };
            let mut w = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .level(level.max(0) as u32)
                .build(Vec::with_capacity(raw.len() / 2))?;
            w.write_all(raw)?;
            let (out, finished) = w.finish();
            finished.map(|()| out)
        }
        ZSTD => zstd::bulk::compress(raw, level),
        other => Err(io::Error::other(format!("no codec {other}"))),
    }
}

impl TopicCompression {
    /// Whether a batch with `header` is stored rebuilt in this codec: one in another
    /// codec, with records.
    pub fn rebuilds(self, header: &BatchHeader) -> bool {
        match self {
            TopicCompression::Producer => false,
            TopicCompression::Codec { codec, .. } => {
                header.compression() != codec && header.records_count > 0
            }
        }
    }
}

/// `batches` (validated: as produced, or as the broker rebuilt them) with each batch in
/// the topic's codec, or `None` when they all are already (or the topic keeps what the
/// producer sent). A rebuilt batch keeps its header but for its length, codec and CRC,
/// and its records' bytes as they were: the same records at the same offsets, with the
/// same timestamps. A batch without records is left as it is.
///
/// `inflated[i]`, when there, is batch `i`'s records section already decompressed (as
/// validating the batch left it), so it is not decompressed a second time.
pub fn recompress(
    batches: &[u8],
    target: TopicCompression,
    inflated: &[Option<bytes::Bytes>],
) -> Result<Option<Vec<u8>>, Error> {
    let TopicCompression::Codec { codec, level } = target else {
        return Ok(None);
    };
    let split = batch::split_built(batches)?;
    if !split.iter().any(|(_, h)| target.rebuilds(h)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(batches.len());
    for (i, (pos, h)) in split.iter().enumerate() {
        let bytes = &batches[*pos..*pos + h.total_bytes()];
        if !target.rebuilds(h) {
            out.extend_from_slice(bytes);
            continue;
        }
        let section = &bytes[HEADER_BYTES..];
        let decompressed;
        let raw = match (h.compression(), inflated.get(i).and_then(Option::as_ref)) {
            (NONE, _) => section,
            (_, Some(section)) => &section[..],
            (from, None) => {
                decompressed = inflate(from, section, MAX_INFLATED_BYTES).map_err(|e| match e {
                    InflateError::Corrupt => BatchError::BadCompressedRecords { codec: from },
                    InflateError::TooLarge { limit } => BatchError::InflatesTooLarge { limit },
                })?;
                &decompressed[..]
            }
        };
        let start = out.len();
        out.extend_from_slice(&bytes[..HEADER_BYTES]);
        if codec == NONE {
            out.extend_from_slice(raw);
        } else {
            let compressed = compress(codec, level, raw).map_err(|source| Error::Io {
                op: "compressing a batch in the topic's codec",
                source,
            })?;
            out.extend_from_slice(&compressed);
        }
        let rebuilt = &mut out[start..];
        let batch_length = (rebuilt.len() - LOG_OVERHEAD) as i32;
        rebuilt[8..12].copy_from_slice(&batch_length.to_be_bytes());
        batch::set_compression(rebuilt, codec);
        batch::reseal(rebuilt);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{build_batch, validate};
    use crate::record;
    use bytes::Bytes;

    /// A batch's records section, decompressed.
    fn records_section(batch: &[u8]) -> Vec<u8> {
        match validate(batch).unwrap().compression() {
            NONE => batch[HEADER_BYTES..].to_vec(),
            c => inflate(c, &batch[HEADER_BYTES..], 1 << 30).unwrap(),
        }
    }

    fn values(batch: &[u8]) -> Vec<Vec<u8>> {
        let h = validate(batch).unwrap();
        record::parse_records(&records_section(batch), h.records_count)
            .unwrap()
            .iter()
            .map(|r| r.value.unwrap().to_vec())
            .collect()
    }

    /// Every codec to every other: the rebuilt batch is valid (CRC, length), in the
    /// target codec, holds the same records, and keeps every other header field.
    #[test]
    fn every_codec_to_every_other_keeps_the_records() {
        let vals: Vec<Vec<u8>> = (0..300u32)
            .map(|i| format!("value {i} {}", "x".repeat((i % 97) as usize)).into_bytes())
            .collect();
        let refs: Vec<&[u8]> = vals.iter().map(|v| &v[..]).collect();
        let plain = build_batch(0, 1_000, &refs, (7, 1, 40)).to_vec();
        let levels = [(NONE, 0), (GZIP, -1), (SNAPPY, 0), (LZ4, 9), (ZSTD, 3)];
        for (from, from_level) in levels {
            let source = recompress(
                &plain,
                TopicCompression::Codec {
                    codec: from,
                    level: from_level,
                },
                &[],
            )
            .unwrap()
            .unwrap_or_else(|| plain.clone());
            for (to, level) in levels {
                let target = TopicCompression::Codec { codec: to, level };
                let Some(rebuilt) = recompress(&source, target, &[]).unwrap() else {
                    assert_eq!(from, to, "left alone only in its own codec");
                    continue;
                };
                // Given its records section decompressed already, the same batch.
                let section = Bytes::from(records_section(&source));
                let given = recompress(&source, target, &[Some(section)]).unwrap();
                assert_eq!(
                    given.as_ref(),
                    Some(&rebuilt),
                    "{from} -> {to}, inflated given"
                );
                assert_ne!(from, to);
                let (a, b) = (validate(&source).unwrap(), validate(&rebuilt).unwrap());
                assert_eq!(b.compression(), to, "{from} -> {to}");
                assert_eq!(b.total_bytes(), rebuilt.len());
                let fields = |h: &BatchHeader| {
                    (
                        h.base_timestamp,
                        h.max_timestamp,
                        h.last_offset_delta,
                        h.producer_id,
                        h.producer_epoch,
                        h.base_sequence,
                        h.records_count,
                        h.attributes & !0x07,
                    )
                };
                assert_eq!(fields(&a), fields(&b), "{from} -> {to}");
                assert_eq!(values(&rebuilt), vals, "{from} -> {to}");
            }
        }
        assert_eq!(
            recompress(&plain, TopicCompression::Producer, &[]).unwrap(),
            None
        );
    }

    /// LZ4 frames as Kafka's `Lz4BlockOutputStream` writes them, at every level: version
    /// 1, independent blocks, no block or content checksum, no content size (FLG 0x60),
    /// 64 KiB blocks (BD 0x40). Kafka's Java reader refuses linked blocks.
    #[test]
    fn lz4_frames_are_kafkas() {
        for level in [1, 9, 17] {
            let out = compress(LZ4, level, &vec![7u8; 200_000]).unwrap();
            assert_eq!(
                &out[..6],
                &[0x04, 0x22, 0x4d, 0x18, 0x60, 0x40],
                "level {level}"
            );
        }
    }

    /// snappy in snappy-java's framing: its 16-byte header, then blocks of at most
    /// 32 KiB of input, each after its compressed length.
    #[test]
    fn snappy_is_xerial_framed() {
        let raw: Vec<u8> = (0..100_000u32).map(|i| (i % 7) as u8).collect();
        let out = compress(SNAPPY, 0, &raw).unwrap();
        assert_eq!(
            &out[..16],
            b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01"
        );
        let (mut rest, mut blocks) = (&out[16..], 0);
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let block = snap::raw::decompress_len(&rest[4..4 + len]).unwrap();
            assert!(block <= 32 * 1024);
            rest = &rest[4 + len..];
            blocks += 1;
        }
        assert_eq!(blocks, 4);
    }

    /// A batch whose records were all taken out (delayed) stays uncompressed; the
    /// others are rebuilt.
    #[test]
    fn a_batch_without_records_is_left_alone() {
        let empty = batch::empty_batch(0, 0, 0, 0).to_vec();
        let target = TopicCompression::Codec {
            codec: ZSTD,
            level: 3,
        };
        assert_eq!(recompress(&empty, target, &[]).unwrap(), None);
        let full = build_batch(1, 0, &[b"a"], (-1, -1, -1));
        let both = [&empty[..], &full[..]].concat();
        let rebuilt = recompress(&both, target, &[]).unwrap().unwrap();
        assert_eq!(&rebuilt[..empty.len()], &empty[..]);
        assert_eq!(
            validate(&rebuilt[empty.len()..]).unwrap().compression(),
            ZSTD
        );
    }
}
