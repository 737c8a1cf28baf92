//! ElectLeaders (KIP-183, KIP-460): `kafka-leader-election`. Answered as Kafka's
//! controller answers it (`ReplicationControlManager.electLeaders`): a partition led by
//! its preferred replica (the first in its replica list), or for an unclean election by
//! any replica, needs no election. Sluice hosts every partition on its one node, which
//! leads each, so no election is ever needed; one that were would find no other replica
//! to elect, and is answered as Kafka answers a partition with no eligible leader.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};
use sluice_raft::PartitionMeta;

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::error_code;

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

const PREFERRED: i8 = 0;
const UNCLEAN: i8 = 1;

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: ElectLeadersRequest,
) -> ElectLeadersResponse {
    // v0 has no election type: always preferred.
    let unclean = match req.election_type {
        _ if ctx.version == 0 => false,
        PREFERRED => false,
        UNCLEAN => true,
        other => {
            // Kafka's controller throws InvalidRequestException; the request's error
            // response repeats the error for every partition named.
            let message = format!("Unknown election type {other}");
            tracing::debug!(election_type = other, "ElectLeaders refused");
            let results = req
                .topic_partitions
                .unwrap_or_default()
                .into_iter()
                .map(|t| {
                    let partitions = t
                        .partitions
                        .iter()
                        .map(|&p| result(p, E::InvalidRequest, Some(message.clone())))
                        .collect();
                    topic_result(t.topic, partitions)
                })
                .collect();
            return ElectLeadersResponse::default()
                .with_error_code(E::InvalidRequest.code())
                .with_replica_election_results(results);
        }
    };
    let image = b.image();
    let results = match req.topic_partitions {
        // Every partition, reporting only those that needed an election.
        None => image
            .topics
            .values()
            .map(|t| {
                let partitions = t
                    .partitions
                    .iter()
                    .filter_map(|p| match elect(p, unclean) {
                        E::ElectionNotNeeded => None,
                        error => Some(result(p.partition, error, None)),
                    })
                    .collect();
                topic_result(TopicName(str_bytes(t.name.clone())), partitions)
            })
            .collect(),
        Some(topics) => topics
            .into_iter()
            .map(|t| {
                let name = t.topic.0.as_str();
                let partitions = t
                    .partitions
                    .iter()
                    .map(|&p| match image.topic(name) {
                        None => result(
                            p,
                            E::UnknownTopicOrPartition,
                            Some(format!("No such topic as {name}")),
                        ),
                        Some(topic) => match usize::try_from(p)
                            .ok()
                            .and_then(|i| topic.partitions.get(i))
                        {
                            None => result(
                                p,
                                E::UnknownTopicOrPartition,
                                Some(format!("No such partition as {name}-{p}")),
                            ),
                            Some(meta) => result(p, elect(meta, unclean), None),
                        },
                    })
                    .collect();
                topic_result(t.topic, partitions)
            })
            .collect(),
    };
    ElectLeadersResponse::default().with_replica_election_results(results)
}

/// One partition's outcome (`ReplicationControlManager.electLeader`).
fn elect(p: &PartitionMeta, unclean: bool) -> E {
    let led = p.leader >= 0;
    let by_preferred = led && p.replicas.first() == Some(&p.leader);
    if (!unclean && by_preferred) || (unclean && led) {
        E::ElectionNotNeeded
    } else if unclean {
        // No other replica exists to take over.
        E::EligibleLeadersNotAvailable
    } else {
        E::PreferredLeaderNotAvailable
    }
}

/// A partition's result: its error, with the given message or Kafka's default one.
fn result(partition: i32, error: E, message: Option<String>) -> PartitionResult {
    PartitionResult::default()
        .with_partition_id(partition)
        .with_error_code(error.code())
        .with_error_message(
            message
                .or_else(|| error_code::default_message(error).map(str::to_owned))
                .map(str_bytes),
        )
}

fn topic_result(topic: TopicName, partitions: Vec<PartitionResult>) -> ReplicaElectionResult {
    ReplicaElectionResult::default()
        .with_topic(topic)
        .with_partition_result(partitions)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partition(leader: i32, replicas: &[i32]) -> PartitionMeta {
        PartitionMeta {
            partition: 0,
            leader,
            leader_epoch: 0,
            replicas: replicas.to_vec(),
            isr: replicas.to_vec(),
        }
    }

    #[test]
    fn an_election_is_needed_only_away_from_the_preferred_or_any_leader() {
        let by_preferred = partition(1, &[1, 2]);
        let by_other = partition(2, &[1, 2]);
        let leaderless = partition(-1, &[1]);
        assert_eq!(elect(&by_preferred, false), E::ElectionNotNeeded);
        assert_eq!(elect(&by_preferred, true), E::ElectionNotNeeded);
        assert_eq!(elect(&by_other, false), E::PreferredLeaderNotAvailable);
        assert_eq!(elect(&by_other, true), E::ElectionNotNeeded);
        assert_eq!(elect(&leaderless, false), E::PreferredLeaderNotAvailable);
        assert_eq!(elect(&leaderless, true), E::EligibleLeadersNotAvailable);
    }
}
