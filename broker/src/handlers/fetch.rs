//! Fetch: reads file regions from the hosted logs and long-polls until `min_bytes` are
//! available or `max_wait_ms` passes, woken by high-watermark changes (never by a
//! polling loop). A request in an incremental fetch session (KIP-227, `fetch_session`)
//! reads the session's partitions and is answered with those that changed.

use std::collections::HashMap;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::select_all;
use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{FetchRequest, TopicName};
use sluice_wire::fetch::{
    encode_fetch_response, Chunk, FetchPartition, FetchTop, FetchTopic, PartitionHead,
};
use tokio::sync::watch;
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::{Reply, RequestContext, SendRegion};
use crate::error_code;
use crate::fetch_session::{Requested, Sent};
use crate::metrics::Metrics;
use crate::partitions::{Partition, TopicReadTarget};
use crate::view::read::{read_view, FilteredRead};
use crate::view::View;
use sluice_raft::TopicMeta;

pub const VERSIONS: RangeInclusive<i16> = 4..=16;

const READ_COMMITTED: i8 = 1;
/// The first Fetch version answered KAFKA_STORAGE_ERROR (KIP-112).
const STORAGE_ERROR_FETCH_VERSION: i16 = 6;

/// One requested partition, resolved.
struct Wanted {
    /// The topic as the response names it.
    topic: TopicName,
    topic_id: Uuid,
    partition: i32,
    fetch_offset: i64,
    partition_max_bytes: i32,
    current_leader_epoch: i32,
    /// The topic's partitions to read from (a view's: its source's), shared by the
    /// topic's entries: a request naming thousands of partitions then writes no
    /// reference count of each, whose cache lines are cold by the time it is dropped.
    target: Option<Arc<TopicReadTarget>>,
    /// Error to report without reading (unknown topic, ...).
    error: Option<E>,
}

impl Wanted {
    /// The partition to read (`None` with `error` set).
    fn part(&self) -> Option<&Arc<Partition>> {
        self.target.as_ref()?.partitions.get(&self.partition)
    }

    /// The view being read, when the topic is one: `part` is then its source's.
    fn view(&self) -> Option<&Arc<View>> {
        self.target.as_ref()?.view.as_ref()
    }
}

pub async fn handle(b: &Arc<Broker>, ctx: &RequestContext, req: FetchRequest) -> Reply {
    let top = FetchTop {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
    };
    let plan = match b.fetch_sessions.begin(&req, ctx.version, Instant::now()) {
        Ok(plan) => plan,
        Err(e) => {
            let top = FetchTop {
                error_code: e.code(),
                ..top
            };
            return encode(ctx, top, Vec::new());
        }
    };
    let wanted = resolve(b, ctx.version, &plan.partitions);
    let response_max_bytes =
        (req.max_bytes.max(0) as usize).min(b.config.int("fetch.max.bytes") as usize);
    let deadline =
        tokio::time::Instant::now() + Duration::from_millis(req.max_wait_ms.max(0) as u64);
    let mut shutdown = b.shutdown.clone();
    // Kafka caps `min_bytes` at the response's size (`KafkaApis.handleFetchRequest`):
    // a fetch never waits for more than it could return.
    let min_bytes = (req.min_bytes.max(0) as usize).min(response_max_bytes);
    let mut watchers: Option<Vec<watch::Receiver<i64>>> = None;
    let read = loop {
        let read = read_all(
            b,
            ctx.version,
            &wanted,
            response_max_bytes,
            req.isolation_level,
        );
        let enough = read.ready_bytes >= min_bytes || read.complete;
        if enough || tokio::time::Instant::now() >= deadline || *shutdown.borrow() {
            break read;
        }
        let Some(watchers) = watchers.as_mut() else {
            // About to wait: subscribe, then read once more, so that an append landing
            // between the read above and the subscription still counts.
            let subscribed: Vec<_> = wanted
                .iter()
                .filter_map(|w| w.part().map(|p| p.watch_hw()))
                .collect();
            if subscribed.is_empty() {
                break read;
            }
            watchers = Some(subscribed);
            continue;
        };
        let changed = select_all(watchers.iter_mut().map(|w| Box::pin(w.changed())));
        tokio::select! {
            _ = changed => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    };
    let sent: Vec<Sent> = read
        .partitions
        .iter()
        .map(|p| Sent {
            high_watermark: p.head.high_watermark,
            last_stable_offset: p.head.last_stable_offset,
            log_start_offset: p.head.log_start_offset,
            error_code: p.head.error_code,
            has_records: !p.records.is_empty(),
        })
        .collect();
    let (session_id, include) = b.fetch_sessions.finish(plan, &sent, Instant::now());
    let include = match include {
        Ok(include) => include,
        Err(e) => {
            tracing::debug!(session_id, error = ?e, "fetch overtaken by the next of its session");
            let top = FetchTop {
                error_code: e.code(),
                session_id,
                ..top
            };
            return encode(ctx, top, Vec::new());
        }
    };
    // Grouped by topic, in the order topics first appear (a session's order, after its
    // rotation, may interleave them).
    let mut topics: Vec<FetchTopic<SendRegion>> = Vec::new();
    let mut topic_index: HashMap<(Uuid, TopicName), usize> = HashMap::new();
    for ((w, p), included) in wanted.into_iter().zip(read.partitions).zip(include) {
        if !included {
            continue;
        }
        // Usually the same topic as the partition before: no hashing then.
        let i = match topics.last() {
            Some(t) if t.topic_id == w.topic_id && t.name == w.topic => topics.len() - 1,
            _ => *topic_index
                .entry((w.topic_id, w.topic.clone()))
                .or_insert_with(|| {
                    topics.push(FetchTopic {
                        name: w.topic,
                        topic_id: w.topic_id,
                        partitions: Vec::new(),
                    });
                    topics.len() - 1
                }),
        };
        topics[i].partitions.push(p);
    }
    encode(ctx, FetchTop { session_id, ..top }, topics)
}

/// Finds each requested partition's log (a view's: its source's), naming the topic as
/// the response will.
fn resolve(b: &Broker, version: i16, requested: &[Requested]) -> Vec<Wanted> {
    let image = b.image();
    let unknown = if version >= 13 {
        E::UnknownTopicId
    } else {
        E::UnknownTopicOrPartition
    };
    // Partitions of a topic come together: look each topic up once per run.
    struct Run<'a> {
        first: &'a Requested,
        meta: Option<&'a TopicMeta>,
        target: Option<Arc<TopicReadTarget>>,
        name: TopicName,
    }
    let mut last: Option<Run> = None;
    let mut out = Vec::with_capacity(requested.len());
    for r in requested {
        let same = last
            .as_ref()
            .is_some_and(|l| l.first.topic_id == r.topic_id && l.first.topic == r.topic);
        if !same {
            let meta: Option<&TopicMeta> = if version >= 13 {
                image.topic_by_id(&r.topic_id)
            } else {
                image.topic(r.topic.0.as_str())
            };
            let name = meta
                .map(|m| TopicName(str_bytes(m.name.clone())))
                .unwrap_or_else(|| r.topic.clone());
            let target = meta.and_then(|m| b.replicas.topic_for_read(&m.name));
            last = Some(Run {
                first: r,
                meta,
                target: target.map(Arc::new),
                name,
            });
        }
        let Run {
            meta, target, name, ..
        } = last.as_ref().expect("set above");
        let target = target
            .as_ref()
            .filter(|t| t.partitions.contains_key(&r.partition));
        out.push(Wanted {
            topic: name.clone(),
            topic_id: r.topic_id,
            partition: r.partition,
            fetch_offset: r.fetch_offset,
            partition_max_bytes: r.partition_max_bytes,
            current_leader_epoch: r.current_leader_epoch,
            error: match (meta, target) {
                (_, Some(_)) => None,
                (None, None) => Some(unknown),
                (Some(m), None) => {
                    Some(error_code::unhosted_partition(&image, &m.name, r.partition))
                }
            },
            target: target.cloned(),
        });
    }
    out
}

fn encode(ctx: &RequestContext, top: FetchTop, topics: Vec<FetchTopic<SendRegion>>) -> Reply {
    match encode_fetch_response(ctx.version, ctx.correlation_id, top, topics) {
        Ok(chunks) => Reply::Chunks(chunks),
        Err(e) => {
            tracing::error!(error = %e, "fetch response encoding failed");
            Reply::Chunks(Vec::new())
        }
    }
}

struct ReadAll {
    partitions: Vec<FetchPartition<SendRegion>>,
    bytes: usize,
    /// What `min_bytes` counts, as Kafka's `DelayedFetch` does: per partition, the bytes
    /// readable up to its high watermark, at most its `partition_max_bytes` (or what a
    /// view returned). A read that found only empty batches (gaps left by delayed or
    /// filtered-out records) counts nothing, so a client that does not step past an
    /// empty batch at the end of a log (kafkajs) polls once per `max_wait_ms` instead of
    /// in a tight loop.
    ready_bytes: usize,
    /// Answer now whatever `min_bytes` says: a partition failed to read (Kafka's
    /// `errorReadingData`; a topic the metadata does not know is not such an error, so
    /// the others still wait), or one is being read from a segment before the latest.
    complete: bool,
}

/// Whether a region holds nothing but empty batches (only small regions are looked at:
/// a run of empty batches is 61 bytes each).
fn only_empty_batches(slice: &sluice_storage::FileSlice) -> bool {
    use sluice_storage::batch::{BatchHeader, HEADER_BYTES};
    if slice.len == 0 || !slice.len.is_multiple_of(HEADER_BYTES) || slice.len > 64 * HEADER_BYTES {
        return false;
    }
    let mut buf = vec![0u8; slice.len];
    if std::os::unix::fs::FileExt::read_exact_at(&*slice.file, &mut buf, slice.position).is_err() {
        return false;
    }
    buf.chunks(HEADER_BYTES).all(|b| {
        BatchHeader::parse(b).is_ok_and(|h| h.records_count == 0 && h.total_bytes() == HEADER_BYTES)
    })
}

/// After this many partitions in a row have had records but none that fit what is left
/// of the response (less than their own limit), the response counts as full: the
/// partitions after them are not read (their offsets are still reported). Each such
/// read costs an index lookup and a read of a batch header, and a consumer of thousands
/// of partitions would otherwise pay that for every partition in every response once
/// the first few have filled it. A session puts the partitions not read first in its
/// next request.
const MISSES_BEFORE_FULL: usize = 8;

fn read_all(
    b: &Broker,
    version: i16,
    wanted: &[Wanted],
    response_max_bytes: usize,
    isolation_level: i8,
) -> ReadAll {
    // Partitions in a row whose first batch did not fit what is left of the response.
    let mut misses = 0;
    let mut out = ReadAll {
        partitions: Vec::with_capacity(wanted.len()),
        bytes: 0,
        ready_bytes: 0,
        complete: false,
    };
    for w in wanted {
        // Aborted transactions are listed only for read_committed; there are none.
        let mut head = PartitionHead::new(w.partition, isolation_level == READ_COMMITTED);
        let mut records = Vec::new();
        let error = w.error.or_else(|| {
            let part = w.part().expect("resolved partition");
            if part.is_retired() {
                // Deleted while this fetch waited: answered now (Kafka's `DelayedFetch`
                // completes on an unknown partition).
                out.complete = true;
                return Some(E::UnknownTopicOrPartition);
            }
            if let Err(e) = part.check_leader_epoch(w.current_leader_epoch) {
                return Some(e);
            }
            // Kafka's `Partition.checkCurrentLeaderEpoch` and topic-id check: a request
            // naming a topic's id (v13+) must be read from that topic, not from a
            // deleted one of the same name whose log is not dropped yet.
            if w.view().is_none() && !w.topic_id.is_nil() && w.topic_id != part.topic_id {
                return Some(E::InconsistentTopicId);
            }
            let response_left = response_max_bytes.saturating_sub(out.bytes);
            let partition_max = w.partition_max_bytes.max(0) as usize;
            let budget = if misses >= MISSES_BEFORE_FULL {
                0
            } else {
                partition_max.min(response_left)
            };
            // KIP-74: the first partition with data returns at least one whole batch.
            let min_one = out.bytes == 0;
            let read = {
                let log = part.lock();
                // On an error the offsets stay unknown (-1), as Kafka's
                // `createLogReadResult` leaves them, out of range included.
                log.read(w.fetch_offset, budget, min_one)
                    .map_err(|e| error_code::storage(&e))
            };
            match read {
                Ok(r) => {
                    if r.slice.is_some() {
                        misses = 0;
                    } else if budget > 0
                        && response_left < partition_max
                        && w.fetch_offset < r.high_watermark
                    {
                        // Records that did not fit what is left of the response (not
                        // a batch larger than the partition's own limit).
                        misses += 1;
                    }
                    head.high_watermark = r.high_watermark;
                    head.last_stable_offset = r.high_watermark;
                    head.log_start_offset = r.log_start_offset;
                    let filter = w.view().map(|v| &v.filter);
                    match (r.slice, filter) {
                        (None, _) => {
                            // Readable, but past what this response could hold.
                            out.ready_bytes = out
                                .ready_bytes
                                .saturating_add(r.readable_bytes.min(partition_max));
                            None
                        }
                        (Some(slice), Some(f)) if !f.matches_all() => {
                            // Outside the partition lock: this reads and decodes.
                            match read_view(part, slice, w.fetch_offset, budget, f) {
                                Ok(fr) => {
                                    count_view_paths(b, &fr);
                                    out.bytes += fr.bytes();
                                    if !fr.only_closing_batch() {
                                        out.ready_bytes += fr.bytes();
                                    }
                                    records = fr.chunks;
                                    None
                                }
                                Err(e) => {
                                    tracing::error!(topic = %part.topic, partition = part.index, error = %e, "view read failed");
                                    Some(E::KafkaStorageError)
                                }
                            }
                        }
                        (Some(slice), _) => {
                            out.bytes += slice.len;
                            if !only_empty_batches(&slice) {
                                let ready = slice.len.max(r.readable_bytes.min(partition_max));
                                out.ready_bytes = out.ready_bytes.saturating_add(ready);
                                out.complete |= r.readable_bytes == usize::MAX;
                            }
                            records.push(Chunk::Region(SendRegion(slice)));
                            None
                        }
                    }
                }
                Err(e) => Some(e),
            }
        });
        if let Some(e) = error {
            out.complete |= !unknown_to_metadata(e);
            head.error_code = answered(e, version).code();
        }
        out.partitions.push(FetchPartition { head, records });
    }
    out
}

/// A partition's error as a client of `version` is answered it: before v6,
/// KAFKA_STORAGE_ERROR is NOT_LEADER_OR_FOLLOWER, which those clients retry elsewhere
/// (Kafka's `maybeDownConvertStorageError`).
fn answered(e: E, version: i16) -> E {
    match e {
        E::KafkaStorageError if version < STORAGE_ERROR_FETCH_VERSION => E::NotLeaderOrFollower,
        e => e,
    }
}

/// The errors `resolve` gives a topic the metadata does not know. Kafka sets them aside
/// before it reads (`KafkaApis.handleFetchRequest`), so they do not end a long poll.
fn unknown_to_metadata(e: E) -> bool {
    matches!(e, E::UnknownTopicId | E::UnknownTopicOrPartition)
}

fn count_view_paths(b: &Broker, fr: &FilteredRead) {
    let m = &b.metrics;
    Metrics::add(&m.view_whole_bytes, fr.whole_bytes as u64);
    Metrics::add(&m.view_rebuilt_bytes, fr.rebuilt_bytes as u64);
    Metrics::add(&m.fetch_copied_bytes, fr.rebuilt_bytes as u64);
    Metrics::add(&m.view_skipped_bytes, fr.skipped_bytes as u64);
    Metrics::add(&m.view_settled_batches, fr.settled_batches as u64);
    Metrics::add(&m.view_decoded_batches, fr.decoded_batches as u64);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_storage_error_is_not_leader_before_v6() {
        assert_eq!(answered(E::KafkaStorageError, 5), E::NotLeaderOrFollower);
        assert_eq!(answered(E::KafkaStorageError, 6), E::KafkaStorageError);
        assert_eq!(answered(E::OffsetOutOfRange, 4), E::OffsetOutOfRange);
    }
}
