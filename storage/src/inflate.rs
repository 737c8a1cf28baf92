//! Decompressing a batch's records section, with a bound on what it may grow to.
//!
//! Kafka reads a compressed batch as a stream, record by record, so a small batch that
//! inflates to gigabytes costs it time, not memory. Sluice checks and splits a batch
//! from its whole decompressed section, so it stops reading past [`MAX_INFLATED_BYTES`]:
//! without the bound, one zstd batch of a megabyte could ask for tens of gigabytes.
//! The codecs are the ones Kafka's clients write: gzip (members may be concatenated, as
//! Java's `GZIPInputStream` reads them), snappy in xerial's framing (or raw, as
//! snappy-java falls back to), LZ4 frames, zstd frames.

use std::io::Read;

/// The most a records section may inflate to. Producers cap a batch's size before or
/// near compression (1 MiB by default in librdkafka and franz-go, 16 KiB in Java), so a
/// real batch is far below this even at high compression ratios.
pub const MAX_INFLATED_BYTES: usize = 128 << 20;

/// Why a compressed records section was not inflated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum InflateError {
    #[error("the records do not decompress")]
    Corrupt,
    #[error("the records decompress to more than {limit} bytes")]
    TooLarge { limit: usize },
}

const SNAPPY_XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\x00";
const SNAPPY_XERIAL_HEADER_BYTES: usize = 16;

/// Decompresses `compressed` written with Kafka codec `codec` (1 gzip, 2 snappy, 3 lz4,
/// 4 zstd), refusing to grow past `limit` bytes.
pub fn inflate(codec: i16, compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    match codec {
        1 => read_bounded(flate2::read::MultiGzDecoder::new(compressed), limit),
        2 => snappy(compressed, limit),
        3 => {
            let mut frame = lz4::Decoder::new(compressed).map_err(|_| InflateError::Corrupt)?;
            let out = read_bounded(&mut frame, limit)?;
            // A cut frame reads as a short one: only `finish` tells it did not end.
            frame.finish().1.map_err(|_| InflateError::Corrupt)?;
            Ok(out)
        }
        4 => read_bounded(
            zstd::stream::read::Decoder::with_buffer(compressed)
                .map_err(|_| InflateError::Corrupt)?,
            limit,
        ),
        _ => Err(InflateError::Corrupt),
    }
}

fn read_bounded(reader: impl Read, limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    reader
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| InflateError::Corrupt)?;
    if out.len() > limit {
        return Err(InflateError::TooLarge { limit });
    }
    Ok(out)
}

/// xerial's framing: a 16-byte header, then blocks of `length u32 ‖ raw snappy`. Each
/// block states its inflated length up front, so the bound is checked before any
/// memory is taken for it.
fn snappy(compressed: &[u8], limit: usize) -> Result<Vec<u8>, InflateError> {
    let mut out = Vec::new();
    let raw_block = |block: &[u8], out: &mut Vec<u8>| {
        let len = snap::raw::decompress_len(block).map_err(|_| InflateError::Corrupt)?;
        let start = out.len();
        if start.saturating_add(len) > limit {
            return Err(InflateError::TooLarge { limit });
        }
        out.resize(start + len, 0);
        snap::raw::Decoder::new()
            .decompress(block, &mut out[start..])
            .map_err(|_| InflateError::Corrupt)?;
        Ok(())
    };
    if !compressed.starts_with(SNAPPY_XERIAL_MAGIC) {
        raw_block(compressed, &mut out)?;
        return Ok(out);
    }
    let mut rest = compressed
        .get(SNAPPY_XERIAL_HEADER_BYTES..)
        .ok_or(InflateError::Corrupt)?;
    while !rest.is_empty() {
        let (len, tail) = rest.split_first_chunk::<4>().ok_or(InflateError::Corrupt)?;
        let len = u32::from_be_bytes(*len) as usize;
        let block = tail.get(..len).ok_or(InflateError::Corrupt)?;
        raw_block(block, &mut out)?;
        rest = &tail[len..];
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{Buf, BufMut, BytesMut};
    use kafka_protocol::compression::{Compressor, Gzip, Lz4, Snappy, Zstd};

    /// `data` compressed by kafka-protocol's encoders, as clients write it.
    fn compressed(codec: i16, data: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        let fill = |b: &mut BytesMut| {
            b.put_slice(data);
            Ok(())
        };
        match codec {
            1 => Gzip::compress(&mut out, fill),
            2 => Snappy::compress(&mut out, fill),
            3 => Lz4::compress(&mut out, fill),
            4 => Zstd::compress(&mut out, fill),
            _ => unreachable!(),
        }
        .unwrap();
        out.chunk().to_vec()
    }

    #[test]
    fn every_codec_round_trips_and_stops_at_the_bound() {
        let data: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        for codec in 1..=4 {
            let c = compressed(codec, &data);
            assert_eq!(
                inflate(codec, &c, data.len()).unwrap(),
                data,
                "codec {codec}"
            );
            assert_eq!(
                inflate(codec, &c, data.len() - 1),
                Err(InflateError::TooLarge {
                    limit: data.len() - 1
                }),
                "codec {codec}"
            );
            let cut = &c[..c.len() / 2];
            assert!(
                inflate(codec, cut, usize::MAX / 2).is_err(),
                "codec {codec}"
            );
        }
        assert_eq!(inflate(0, b"", 10), Err(InflateError::Corrupt));
    }

    #[test]
    fn concatenated_gzip_members_and_raw_snappy_are_read() {
        let (a, b) = (compressed(1, b"hello "), compressed(1, b"world"));
        assert_eq!(inflate(1, &[a, b].concat(), 100).unwrap(), b"hello world");
        let raw = snap::raw::Encoder::new()
            .compress_vec(b"raw snappy")
            .unwrap();
        assert_eq!(inflate(2, &raw, 100).unwrap(), b"raw snappy");
    }

    #[test]
    fn a_bomb_is_refused_without_inflating_it() {
        let zeros = vec![0u8; 16 << 20];
        for codec in 1..=4 {
            let c = compressed(codec, &zeros);
            assert!(c.len() < 1 << 20, "codec {codec}: {} bytes", c.len());
            assert_eq!(
                inflate(codec, &c, 1 << 20),
                Err(InflateError::TooLarge { limit: 1 << 20 }),
                "codec {codec}"
            );
        }
    }
}
