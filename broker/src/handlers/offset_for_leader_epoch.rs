use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};

use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::error_code;

pub const VERSIONS: RangeInclusive<i16> = 2..=4;

pub fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut r = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    // A view answers with its source's offsets: they are the view's too.
                    let Some(part) = b
                        .replicas
                        .get_for_read(t.topic.0.as_str(), p.partition)
                        .map(|t| t.partition)
                    else {
                        r.error_code =
                            error_code::unhosted_partition(&b.image(), &t.topic.0, p.partition)
                                .code();
                        return r;
                    };
                    if let Err(e) = part.check_leader_epoch(p.current_leader_epoch) {
                        r.error_code = e.code();
                        return r;
                    }
                    let (leader_epoch, end_offset) =
                        part.lock().end_offset_for_epoch(p.leader_epoch);
                    r.with_leader_epoch(leader_epoch)
                        .with_end_offset(end_offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}
