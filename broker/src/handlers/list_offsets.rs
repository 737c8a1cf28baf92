use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};

use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::error_code;

pub const VERSIONS: RangeInclusive<i16> = 1..=8;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: ListOffsetsRequest,
) -> ListOffsetsResponse {
    // A partition named twice is answered INVALID_REQUEST each time, as Kafka does.
    let mut named = std::collections::HashMap::new();
    for t in &req.topics {
        for p in &t.partitions {
            *named
                .entry((t.name.0.as_str(), p.partition_index))
                .or_insert(0) += 1;
        }
    }
    let duplicated: std::collections::HashSet<(String, i32)> = named
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|((t, p), _)| (t.to_owned(), p))
        .collect();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut r = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if duplicated.contains(&(t.name.0.to_string(), p.partition_index)) {
                        r.error_code = E::InvalidRequest.code();
                        return r;
                    }
                    if !timestamp_supported(p.timestamp, ctx.version) {
                        r.error_code = E::UnsupportedVersion.code();
                        return r;
                    }
                    // A view answers with its source's offsets: they are the view's too.
                    let Some(part) = b
                        .replicas
                        .get_for_read(t.name.0.as_str(), p.partition_index)
                        .map(|t| t.partition)
                    else {
                        r.error_code = error_code::unhosted_partition(
                            &b.image(),
                            &t.name.0,
                            p.partition_index,
                        )
                        .code();
                        return r;
                    };
                    let epoch = match part.check_leader_epoch(p.current_leader_epoch) {
                        Ok(epoch) => epoch,
                        Err(e) => {
                            r.error_code = e.code();
                            return r;
                        }
                    };
                    let log = part.lock();
                    // No transactions: the last stable offset is the high watermark.
                    let found = match p.timestamp {
                        LATEST => Ok(Some((log.high_watermark(), -1))),
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        MAX_TIMESTAMP => log.max_timestamp_offset(),
                        ts => {
                            debug_assert!(ts >= 0, "special timestamps are checked above");
                            log.offset_for_timestamp(ts)
                        }
                    };
                    match found {
                        Ok(Some((offset, ts))) => {
                            r.offset = offset;
                            r.timestamp = ts;
                            if ctx.version >= 4 {
                                r.leader_epoch = if p.timestamp == LATEST {
                                    log.latest_epoch().unwrap_or(epoch)
                                } else {
                                    log.epoch_for_offset(offset)
                                };
                            }
                        }
                        Ok(None) => {}
                        Err(e) => r.error_code = error_code::storage(&e).code(),
                    }
                    r
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

/// Kafka's `ReplicaManager.isListOffsetsTimestampUnsupported`: each special (negative)
/// timestamp from the version that introduced it; others are not supported at all.
fn timestamp_supported(timestamp: i64, version: i16) -> bool {
    let since = match timestamp {
        0.. => return true,
        LATEST | EARLIEST => 1,
        MAX_TIMESTAMP => 7,
        EARLIEST_LOCAL => 8,
        _ => return false,
    };
    version >= since
}
