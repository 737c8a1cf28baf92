use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::{OffsetCommitRequest, OffsetCommitResponse};

use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::group::commit_now;

/// v10 names topics by id; up to v9 by name.
pub const VERSIONS: RangeInclusive<i16> = 2..=9;

pub async fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let image = b.image();
    let mut accepted = Vec::new();
    // Per-partition verdicts that do not depend on the group: known partition, metadata
    // size. Kafka sets unknown partitions aside before the coordinator sees the request;
    // the group's own error then goes to every other partition, and only a commit the
    // group accepts is checked for its metadata's size (`OffsetMetadataManager`).
    let mut verdicts: Vec<Vec<Option<E>>> = Vec::new();
    let mut known_partitions = 0;
    for t in &req.topics {
        let topic = image.topic(t.name.0.as_str());
        let mut v = Vec::new();
        for p in &t.partitions {
            let metadata = p
                .committed_metadata
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default();
            let known = topic.is_some_and(|tm| {
                (p.partition_index as usize) < tm.partitions.len() && p.partition_index >= 0
            });
            if !known {
                v.push(Some(E::UnknownTopicOrPartition));
                continue;
            }
            known_partitions += 1;
            // Java's `String.length()`: UTF-16 code units, not bytes.
            if metadata.encode_utf16().count() > b.groups.metadata_max_bytes {
                v.push(Some(E::OffsetMetadataTooLarge));
            } else {
                v.push(None);
                let mut committed =
                    commit_now(p.committed_offset, p.committed_leader_epoch, metadata);
                // v2–v4 may set a retention for this commit; -1 (the default, which later
                // versions, without the field, decode to) leaves it to
                // `offsets.retention.minutes`.
                if req.retention_time_ms != -1 {
                    committed.expire_timestamp_ms = Some(
                        committed
                            .commit_timestamp_ms
                            .saturating_add(req.retention_time_ms),
                    );
                }
                accepted.push((t.name.0.to_string(), p.partition_index, committed));
            }
        }
        verdicts.push(v);
    }
    let group_result = if known_partitions == 0 {
        Ok(())
    } else {
        b.groups.commit(
            req.group_id.0.as_str(),
            req.generation_id_or_member_epoch,
            req.member_id.as_str(),
            req.group_instance_id.as_ref().map(|s| s.as_str()),
            accepted,
            ctx.version,
        )
    };
    let topics = req
        .topics
        .into_iter()
        .zip(verdicts)
        .map(|(t, v)| {
            let partitions = t
                .partitions
                .iter()
                .zip(v)
                .map(|(p, verdict)| {
                    let code = match (verdict, &group_result) {
                        (Some(E::UnknownTopicOrPartition), _) => E::UnknownTopicOrPartition.code(),
                        (_, Err(e)) => e.code(),
                        (Some(e), Ok(())) => e.code(),
                        (None, Ok(())) => 0,
                    };
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
