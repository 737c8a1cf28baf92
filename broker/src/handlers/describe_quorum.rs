//! DescribeQuorum (KIP-595, KIP-836, KIP-853): the metadata quorum's leader, epoch, high
//! watermark and each member's replication progress, which `kafka-metadata-quorum`
//! prints. Sluice's quorum is an openraft group rather than KRaft, but it is the same
//! kind of thing: a replicated log of metadata with a leader per term.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_quorum_response::{
    Listener, Node, PartitionData, ReplicaState, TopicData,
};
use kafka_protocol::messages::{
    BrokerId, DescribeQuorumRequest, DescribeQuorumResponse, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use sluice_raft::QuorumState;
use uuid::Uuid;

use super::str_bytes;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::dispatch::RequestContext;
use crate::error_code;

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

/// The quorum's log, by the name and partition KRaft gives it.
const METADATA_TOPIC: &str = "__cluster_metadata";
const METADATA_PARTITION: i32 = 0;

/// The listener name the voters' endpoints are given under: the one Kafka listener,
/// which answers DescribeQuorum and, as DescribeCluster tells controller clients, is the
/// controller endpoint too.
const LISTENER_NAME: &str = "PLAINTEXT";

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeQuorumRequest,
) -> DescribeQuorumResponse {
    let asks_for_the_log = matches!(&req.topics[..], [t]
        if t.topic_name.0.as_str() == METADATA_TOPIC
            && matches!(&t.partitions[..], [p] if p.partition_index == METADATA_PARTITION));
    if !asks_for_the_log {
        // As KRaft answers it: each partition asked for, unknown.
        let topics = req
            .topics
            .into_iter()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .map(|p| error_partition(p.partition_index, E::UnknownTopicOrPartition))
                    .collect();
                TopicData::default()
                    .with_topic_name(t.topic_name)
                    .with_partitions(partitions)
            })
            .collect();
        return DescribeQuorumResponse::default().with_topics(topics);
    }
    let q = b.metadata.quorum_state();
    let partition = if q.leader != Some(q.node_id) {
        // Only the leader knows its followers' progress; a KRaft controller that is not
        // the leader answers the same. (Kafka's brokers forward the request to the
        // active controller; with several voters this node would have to forward it to
        // the leader too. Sluice runs one voter today, which always leads.)
        error_partition(METADATA_PARTITION, E::NotLeaderOrFollower)
    } else {
        leader_partition(&q, ctx.version, now_ms())
    };
    let mut resp = DescribeQuorumResponse::default().with_topics(vec![TopicData::default()
        .with_topic_name(TopicName(StrBytes::from_static_str(METADATA_TOPIC)))
        .with_partitions(vec![partition])]);
    if ctx.version >= 2 && q.leader == Some(q.node_id) {
        let image = b.image();
        resp.nodes = q
            .voters
            .iter()
            .filter_map(|(id, _)| image.brokers.get(&(*id as i32)))
            .map(|info| {
                Node::default()
                    .with_node_id(BrokerId(info.node_id))
                    .with_listeners(vec![Listener::default()
                        .with_name(StrBytes::from_static_str(LISTENER_NAME))
                        .with_host(str_bytes(info.host.clone()))
                        .with_port(info.port as u16)])
            })
            .collect();
    }
    resp
}

fn error_partition(index: i32, error: E) -> PartitionData {
    PartitionData::default()
        .with_partition_index(index)
        .with_error_code(error.code())
        .with_error_message(error_code::default_message(error).map(StrBytes::from_static_str))
}

fn leader_partition(q: &QuorumState, version: i16, now_ms: i64) -> PartitionData {
    debug_assert_eq!(q.leader, Some(q.node_id));
    let replica = |(id, end): &(u64, i64)| {
        // KRaft reports the leader as fetching and caught up now; Sluice does not track
        // when a follower last fetched, so that is unknown (-1) for the others.
        let at = if *id == q.node_id { now_ms } else { -1 };
        let mut r = ReplicaState::default()
            .with_replica_id(BrokerId(*id as i32))
            .with_log_end_offset(*end)
            .with_last_fetch_timestamp(at)
            .with_last_caught_up_timestamp(at);
        if version >= 2 {
            // No directory ids: KRaft's "none".
            r.replica_directory_id = Uuid::nil();
        }
        r
    };
    PartitionData::default()
        .with_partition_index(METADATA_PARTITION)
        .with_leader_id(BrokerId(q.node_id as i32))
        .with_leader_epoch(q.epoch as i32)
        .with_high_watermark(q.high_watermark)
        .with_current_voters(q.voters.iter().map(replica).collect())
        .with_observers(q.observers.iter().map(replica).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leader_reports_itself_caught_up_and_others_as_replicated() {
        let q = QuorumState {
            node_id: 1,
            leader: Some(1),
            epoch: 3,
            high_watermark: 40,
            voters: vec![(1, 42), (2, 40), (3, -1)],
            observers: vec![],
        };
        let p = leader_partition(&q, 2, 1_000);
        assert_eq!(
            (p.leader_id.0, p.leader_epoch, p.high_watermark),
            (1, 3, 40)
        );
        let voters: Vec<_> = p
            .current_voters
            .iter()
            .map(|r| (r.replica_id.0, r.log_end_offset, r.last_fetch_timestamp))
            .collect();
        assert_eq!(voters, [(1, 42, 1_000), (2, 40, -1), (3, -1, -1)]);
        assert!(p.observers.is_empty());
    }
}
