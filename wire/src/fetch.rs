//! A Fetch response as a list of chunks: encoded bytes and file regions, in wire order.
//!
//! Written here by hand, field by field as `FetchResponse.json` lays them out, because
//! the library can only encode a response whose records are in memory. The test
//! `splice_matches_library_encoding` holds every version to the library's encoding.
//!
//! The partitions' fields are hand-written too: a response may name 10,000 partitions,
//! and the library's `PartitionData` costs a tagged-field map built and dropped per
//! partition (2.8% of a broker's samples in such reads, its encoding another 3.6%).

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, TopicName};

use crate::response::{put_response_header, EncodeError};

/// One piece of a response on the wire.
#[derive(Debug, Clone)]
pub enum Chunk<R> {
    Bytes(Bytes),
    /// A region of a file (or anything the connection knows how to send) of `len` bytes.
    Region(R),
}

/// What a region must tell the writer: how many bytes it will put on the wire.
pub trait RegionLen {
    fn region_len(&self) -> usize;
}

/// A partition's fields other than its records: those a broker without transactions,
/// follower fetching or tiered storage sets. The rest go out at their defaults (no
/// preferred read replica, no tagged fields).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PartitionHead {
    pub partition_index: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    /// Whether the aborted-transactions list is sent (empty: there are none) rather than
    /// null. Kafka sends it to `read_committed` fetches only.
    pub list_aborted_transactions: bool,
}

impl PartitionHead {
    /// A partition with no offsets known yet (-1s) and no error.
    pub fn new(partition_index: i32, list_aborted_transactions: bool) -> Self {
        PartitionHead {
            partition_index,
            error_code: 0,
            high_watermark: -1,
            last_stable_offset: -1,
            log_start_offset: -1,
            list_aborted_transactions,
        }
    }
}

/// Records of one partition, in order: regions of segment files and, where a region
/// could not be used, bytes.
#[derive(Debug)]
pub struct FetchPartition<R> {
    pub head: PartitionHead,
    pub records: Vec<Chunk<R>>,
}

#[derive(Debug)]
pub struct FetchTopic<R> {
    pub name: TopicName,
    pub topic_id: uuid::Uuid,
    pub partitions: Vec<FetchPartition<R>>,
}

/// The top-level fields of a Fetch response.
#[derive(Debug, Default, Clone, Copy)]
pub struct FetchTop {
    pub throttle_time_ms: i32,
    pub error_code: i16,
    pub session_id: i32,
}

fn chunk_len<R: RegionLen>(c: &Chunk<R>) -> usize {
    match c {
        Chunk::Bytes(b) => b.len(),
        Chunk::Region(r) => r.region_len(),
    }
}

fn put_uvarint(buf: &mut BytesMut, mut v: u32) {
    while v >= 0x80 {
        buf.put_u8((v as u8) | 0x80);
        v >>= 7;
    }
    buf.put_u8(v as u8);
}

fn put_array_len(buf: &mut BytesMut, flexible: bool, n: usize) {
    if flexible {
        put_uvarint(buf, n as u32 + 1);
    } else {
        buf.put_i32(n as i32);
    }
}

/// Collects chunks, merging adjacent bytes into one buffer.
struct ChunkList<R> {
    done: Vec<Chunk<R>>,
    cur: BytesMut,
}

impl<R> ChunkList<R> {
    fn flush(&mut self) {
        if !self.cur.is_empty() {
            self.done.push(Chunk::Bytes(self.cur.split().freeze()));
        }
    }
    fn push(&mut self, c: Chunk<R>) {
        match c {
            Chunk::Bytes(b) => self.cur.extend_from_slice(&b),
            region => {
                self.flush();
                self.done.push(region);
            }
        }
    }
}

/// Encodes a whole Fetch response frame (length prefix included) at `version` (4..=16).
pub fn encode_fetch_response<R: RegionLen>(
    version: i16,
    correlation_id: i32,
    top: FetchTop,
    topics: Vec<FetchTopic<R>>,
) -> Result<Vec<Chunk<R>>, EncodeError> {
    let err = |reason: String| EncodeError {
        api_key: ApiKey::Fetch,
        version,
        reason,
    };
    if !(4..=16).contains(&version) {
        return Err(err("fetch writer supports versions 4 to 16".into()));
    }
    let flexible = version >= 12;
    let mut body = ChunkList {
        done: Vec::new(),
        cur: BytesMut::with_capacity(1024),
    };
    body.cur.put_i32(top.throttle_time_ms);
    if version >= 7 {
        body.cur.put_i16(top.error_code);
        body.cur.put_i32(top.session_id);
    }
    put_array_len(&mut body.cur, flexible, topics.len());
    for topic in topics {
        if version <= 12 {
            let name = topic.name.0.as_str();
            if flexible {
                put_uvarint(&mut body.cur, name.len() as u32 + 1);
            } else {
                body.cur.put_i16(name.len() as i16);
            }
            body.cur.put_slice(name.as_bytes());
        } else {
            body.cur.put_slice(topic.topic_id.as_bytes());
        }
        put_array_len(&mut body.cur, flexible, topic.partitions.len());
        for p in topic.partitions {
            put_partition(&mut body, version, p);
        }
        if flexible {
            put_uvarint(&mut body.cur, 0);
        }
    }
    if flexible {
        put_uvarint(&mut body.cur, 0);
    }
    body.flush();

    let body_len: usize = body.done.iter().map(chunk_len).sum();
    let mut head = BytesMut::with_capacity(16);
    head.put_i32(0);
    put_response_header(&mut head, ApiKey::Fetch, version, correlation_id);
    let frame_len = head.len() - 4 + body_len;
    let frame_len =
        i32::try_from(frame_len).map_err(|_| err(format!("response of {frame_len} bytes")))?;
    head[..4].copy_from_slice(&frame_len.to_be_bytes());
    let mut out = Vec::with_capacity(body.done.len() + 1);
    out.push(Chunk::Bytes(head.freeze()));
    out.extend(body.done);
    Ok(out)
}

fn put_partition<R: RegionLen>(out: &mut ChunkList<R>, version: i16, p: FetchPartition<R>) {
    let flexible = version >= 12;
    let h = p.head;
    let enc = &mut out.cur;
    enc.put_i32(h.partition_index);
    enc.put_i16(h.error_code);
    enc.put_i64(h.high_watermark);
    // Versions 4 and up (the writer's range) carry both.
    enc.put_i64(h.last_stable_offset);
    if version >= 5 {
        enc.put_i64(h.log_start_offset);
    }
    // Aborted transactions: a nullable array, null or empty.
    match (flexible, h.list_aborted_transactions) {
        (true, listed) => put_uvarint(enc, listed as u32),
        (false, true) => enc.put_i32(0),
        (false, false) => enc.put_i32(-1),
    }
    if version >= 11 {
        enc.put_i32(-1); // preferred read replica: none
    }
    let records_len: usize = p.records.iter().map(chunk_len).sum();
    if flexible {
        put_uvarint(enc, records_len as u32 + 1);
    } else {
        enc.put_i32(records_len as i32);
    }
    for c in p.records {
        out.push(c);
    }
    if flexible {
        out.cur.put_u8(0); // no tagged fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_response::{FetchableTopicResponse, PartitionData};
    use kafka_protocol::messages::{FetchResponse, ResponseKind};
    use kafka_protocol::protocol::StrBytes;

    /// A region stood in for by the bytes it would send.
    #[derive(Debug, Clone)]
    struct Mem(Bytes);
    impl RegionLen for Mem {
        fn region_len(&self) -> usize {
            self.0.len()
        }
    }

    fn flatten(chunks: Vec<Chunk<Mem>>) -> Vec<u8> {
        let mut v = Vec::new();
        for c in chunks {
            match c {
                Chunk::Bytes(b) | Chunk::Region(Mem(b)) => v.extend_from_slice(&b),
            }
        }
        v
    }

    /// The spliced encoding must equal the library's own encoding of the same response
    /// with the records in memory, for every version the writer supports.
    #[test]
    fn splice_matches_library_encoding() {
        let id = uuid::Uuid::from_u128(0x1234_5678);
        for version in 4..=16 {
            // (partition, records, error code, aborted transactions listed)
            let parts = [
                (0, &b"abcdef"[..], 0, false),
                (1, &b""[..], 0, true),
                (2, &[7u8; 300][..], 0, true),
                (3, &b""[..], 6, false),
                (4, &[1u8; 200][..], 0, false),
            ];
            let mut lib_parts = Vec::new();
            let mut ours = Vec::new();
            for (i, rec, error_code, listed) in parts {
                let head = PartitionHead {
                    error_code,
                    high_watermark: 100 + i as i64,
                    last_stable_offset: 100,
                    log_start_offset: 3,
                    ..PartitionHead::new(i, listed)
                };
                lib_parts.push(
                    PartitionData::default()
                        .with_partition_index(i)
                        .with_error_code(error_code)
                        .with_high_watermark(head.high_watermark)
                        .with_last_stable_offset(100)
                        .with_log_start_offset(3)
                        .with_aborted_transactions(listed.then(Vec::new))
                        .with_records(Some(Bytes::copy_from_slice(rec))),
                );
                let (a, b) = rec.split_at(rec.len() / 2);
                ours.push(FetchPartition {
                    head,
                    records: vec![
                        Chunk::Region(Mem(Bytes::copy_from_slice(a))),
                        Chunk::Bytes(Bytes::copy_from_slice(b)),
                    ],
                });
            }
            let name = TopicName(StrBytes::from_static_str("orders"));
            let mut topic = FetchableTopicResponse::default().with_partitions(lib_parts);
            if version <= 12 {
                topic = topic.with_topic(name.clone());
            } else {
                topic = topic.with_topic_id(id);
            }
            let mut resp = FetchResponse::default()
                .with_throttle_time_ms(5)
                .with_responses(vec![topic]);
            if version >= 7 {
                resp = resp.with_session_id(9).with_error_code(0);
            }
            let expected = crate::response::encode_response(
                ApiKey::Fetch,
                version,
                42,
                &ResponseKind::Fetch(resp),
            )
            .unwrap();
            let top = FetchTop {
                throttle_time_ms: 5,
                error_code: 0,
                session_id: if version >= 7 { 9 } else { 0 },
            };
            let got = encode_fetch_response(
                version,
                42,
                top,
                vec![FetchTopic {
                    name,
                    topic_id: id,
                    partitions: ours,
                }],
            )
            .unwrap();
            assert_eq!(flatten(got), expected.to_vec(), "version {version}");
        }
    }
}
