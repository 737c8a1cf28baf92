//! The API table and the one `match` that routes a decoded request to its handler.
//! ApiVersions is answered from the same table, so what is advertised is exactly what
//! is dispatched.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use sluice_storage::FileSlice;
use sluice_wire::fetch::{Chunk, RegionLen};
use sluice_wire::request::Request;

use crate::broker::Broker;
use crate::handlers::*;

/// A segment-file region on its way to a socket.
#[derive(Debug, Clone)]
pub struct SendRegion(pub FileSlice);

impl RegionLen for SendRegion {
    fn region_len(&self) -> usize {
        self.0.len
    }
}

/// What a handler gives the connection to send.
#[derive(Debug)]
pub enum Reply {
    Message(Box<ResponseKind>),
    /// A response already framed, with file regions (Fetch).
    Chunks(Vec<Chunk<SendRegion>>),
    /// No response at all (Produce with acks=0).
    Nothing,
    /// No response, and the connection is closed, for the reason given: an acks=0
    /// Produce that failed, whose producer learns of it only so (as from Kafka).
    Close(String),
}

/// Who sent a request: what handlers need beyond the body.
#[derive(Debug, Clone)]
pub struct RequestContext {
    pub version: i16,
    pub correlation_id: i32,
    pub client_id: String,
    pub client_host: String,
}

/// Every API this broker implements, with the versions it serves.
pub const SUPPORTED: &[(ApiKey, RangeInclusive<i16>)] = &[
    (ApiKey::Produce, produce::VERSIONS),
    (ApiKey::Fetch, fetch::VERSIONS),
    (ApiKey::ListOffsets, list_offsets::VERSIONS),
    (ApiKey::Metadata, metadata::VERSIONS),
    (ApiKey::OffsetCommit, offset_commit::VERSIONS),
    (ApiKey::OffsetFetch, offset_fetch::VERSIONS),
    (ApiKey::FindCoordinator, find_coordinator::VERSIONS),
    (ApiKey::JoinGroup, join_group::VERSIONS),
    (ApiKey::Heartbeat, heartbeat::VERSIONS),
    (ApiKey::LeaveGroup, leave_group::VERSIONS),
    (ApiKey::SyncGroup, sync_group::VERSIONS),
    (ApiKey::DescribeGroups, describe_groups::VERSIONS),
    (ApiKey::ListGroups, list_groups::VERSIONS),
    (ApiKey::ApiVersions, api_versions::VERSIONS),
    (ApiKey::CreateTopics, create_topics::VERSIONS),
    (ApiKey::DeleteTopics, delete_topics::VERSIONS),
    (ApiKey::DeleteRecords, delete_records::VERSIONS),
    (ApiKey::InitProducerId, init_producer_id::VERSIONS),
    (
        ApiKey::OffsetForLeaderEpoch,
        offset_for_leader_epoch::VERSIONS,
    ),
    (ApiKey::DescribeConfigs, describe_configs::VERSIONS),
    (ApiKey::AlterConfigs, alter_configs::VERSIONS),
    (ApiKey::DescribeLogDirs, describe_log_dirs::VERSIONS),
    (ApiKey::CreatePartitions, create_partitions::VERSIONS),
    (ApiKey::DeleteGroups, delete_groups::VERSIONS),
    (
        ApiKey::IncrementalAlterConfigs,
        incremental_alter_configs::VERSIONS,
    ),
    (ApiKey::OffsetDelete, offset_delete::VERSIONS),
    (ApiKey::DescribeCluster, describe_cluster::VERSIONS),
    (ApiKey::DescribeQuorum, describe_quorum::VERSIONS),
    (ApiKey::ElectLeaders, elect_leaders::VERSIONS),
    (ApiKey::DescribeProducers, describe_producers::VERSIONS),
];

pub fn versions(key: ApiKey) -> Option<&'static RangeInclusive<i16>> {
    SUPPORTED.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
}

pub fn is_supported(key: ApiKey, version: i16) -> bool {
    versions(key).is_some_and(|v| v.contains(&version))
}

pub async fn dispatch(b: &Arc<Broker>, request: Request, client_host: &str) -> Reply {
    let ctx = RequestContext {
        version: request.header.request_api_version,
        correlation_id: request.header.correlation_id,
        client_id: request
            .header
            .client_id
            .as_ref()
            .map(|s| s.to_string())
            .unwrap_or_default(),
        client_host: client_host.to_owned(),
    };
    use RequestKind as Q;
    use ResponseKind as R;
    let m = |r: ResponseKind| Reply::Message(Box::new(r));
    match request.body {
        Q::Produce(r) => produce::handle(b, &ctx, r).await,
        Q::Fetch(r) => fetch::handle(b, &ctx, r).await,
        Q::ListOffsets(r) => m(R::ListOffsets(list_offsets::handle(b, &ctx, r))),
        Q::Metadata(r) => m(R::Metadata(metadata::handle(b, &ctx, r).await)),
        Q::OffsetCommit(r) => m(R::OffsetCommit(offset_commit::handle(b, &ctx, r).await)),
        Q::OffsetFetch(r) => m(R::OffsetFetch(offset_fetch::handle(b, &ctx, r))),
        Q::FindCoordinator(r) => m(R::FindCoordinator(find_coordinator::handle(b, &ctx, r))),
        Q::JoinGroup(r) => m(R::JoinGroup(join_group::handle(b, &ctx, r).await)),
        Q::Heartbeat(r) => m(R::Heartbeat(heartbeat::handle(b, &ctx, r))),
        Q::LeaveGroup(r) => m(R::LeaveGroup(leave_group::handle(b, &ctx, r))),
        Q::SyncGroup(r) => m(R::SyncGroup(sync_group::handle(b, &ctx, r).await)),
        Q::DescribeGroups(r) => m(R::DescribeGroups(describe_groups::handle(b, &ctx, r))),
        Q::ListGroups(r) => m(R::ListGroups(list_groups::handle(b, &ctx, r))),
        Q::ApiVersions(r) => m(R::ApiVersions(api_versions::handle(b, &ctx, r))),
        Q::CreateTopics(r) => m(R::CreateTopics(create_topics::handle(b, &ctx, r).await)),
        Q::DeleteTopics(r) => m(R::DeleteTopics(delete_topics::handle(b, &ctx, r).await)),
        Q::DeleteRecords(r) => m(R::DeleteRecords(delete_records::handle(b, &ctx, r))),
        Q::InitProducerId(r) => m(R::InitProducerId(
            init_producer_id::handle(b, &ctx, r).await,
        )),
        Q::OffsetForLeaderEpoch(r) => m(R::OffsetForLeaderEpoch(offset_for_leader_epoch::handle(
            b, &ctx, r,
        ))),
        Q::DescribeConfigs(r) => m(R::DescribeConfigs(describe_configs::handle(b, &ctx, r))),
        Q::AlterConfigs(r) => m(R::AlterConfigs(alter_configs::handle(b, &ctx, r).await)),
        Q::DescribeLogDirs(r) => m(R::DescribeLogDirs(describe_log_dirs::handle(b, &ctx, r))),
        Q::CreatePartitions(r) => m(R::CreatePartitions(
            create_partitions::handle(b, &ctx, r).await,
        )),
        Q::DeleteGroups(r) => m(R::DeleteGroups(delete_groups::handle(b, &ctx, r))),
        Q::IncrementalAlterConfigs(r) => m(R::IncrementalAlterConfigs(
            incremental_alter_configs::handle(b, &ctx, r).await,
        )),
        Q::OffsetDelete(r) => m(R::OffsetDelete(offset_delete::handle(b, &ctx, r))),
        Q::DescribeCluster(r) => m(R::DescribeCluster(describe_cluster::handle(b, &ctx, r))),
        Q::DescribeQuorum(r) => m(R::DescribeQuorum(describe_quorum::handle(b, &ctx, r))),
        Q::ElectLeaders(r) => m(R::ElectLeaders(elect_leaders::handle(b, &ctx, r))),
        Q::DescribeProducers(r) => m(R::DescribeProducers(describe_producers::handle(b, &ctx, r))),
        // The decoder refuses every key that is not in SUPPORTED, so nothing else can
        // arrive here; a test checks that SUPPORTED and this match agree.
        other => unreachable!(
            "request for an api not in the table: {:?}",
            std::mem::discriminant(&other)
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every advertised range lies within what kafka-protocol can decode, and no key is
    /// listed twice.
    #[test]
    fn table_is_consistent() {
        let mut seen = std::collections::HashSet::new();
        for (key, range) in SUPPORTED {
            assert!(seen.insert(*key as i16), "{key:?} listed twice");
            let lib = key.valid_versions();
            assert!(
                *range.start() >= lib.min && *range.end() <= lib.max,
                "{key:?} {range:?} outside {lib:?}"
            );
        }
    }
}
