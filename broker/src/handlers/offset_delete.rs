use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::{OffsetDeleteRequest, OffsetDeleteResponse};

use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

pub fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let image = b.image();
    // As `KafkaApis.handleOffsetDeleteRequest`: a partition the metadata does not have is
    // answered UNKNOWN_TOPIC_OR_PARTITION here, and only the others reach the group.
    let known = |topic: &str, partition: i32| {
        image
            .topic(topic)
            .is_some_and(|t| usize::try_from(partition).is_ok_and(|p| p < t.partitions.len()))
    };
    let mut wanted = Vec::new();
    for t in &req.topics {
        for p in &t.partitions {
            if known(t.name.0.as_str(), p.partition_index) {
                wanted.push((t.name.0.to_string(), p.partition_index));
            }
        }
    }
    let results = match b.groups.delete_offsets(req.group_id.0.as_str(), &wanted) {
        Ok(r) => r,
        Err(e) => return OffsetDeleteResponse::default().with_error_code(e.code()),
    };
    let mut results = results.into_iter();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let code = if known(t.name.0.as_str(), p.partition_index) {
                        results.next().flatten().map_or(0, |e| e.code())
                    } else {
                        E::UnknownTopicOrPartition.code()
                    };
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(code)
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
