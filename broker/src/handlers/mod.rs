//! One module per Kafka API, named as in the Kafka protocol spec. Each declares the
//! versions it serves next to its code; `dispatch::SUPPORTED` lists them.

pub mod alter_configs;
pub mod api_versions;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_log_dirs;
pub mod describe_producers;
pub mod describe_quorum;
pub mod elect_leaders;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod produce;
pub mod sync_group;

use std::collections::HashSet;
use std::future::Future;
use std::hash::Hash;

use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;

pub fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

/// Waits for `wait`, unless the broker shuts down first (`None`). A JoinGroup or
/// SyncGroup waiting for its rebalance would otherwise hold up the shutdown until the
/// connections' grace runs out: the group timers that end a rebalance have stopped.
pub async fn unless_shutting_down<T>(b: &Broker, wait: impl Future<Output = T>) -> Option<T> {
    let mut shutdown = b.shutdown.clone();
    tokio::select! {
        biased;
        done = wait => Some(done),
        _ = shutdown.wait_for(|&stop| stop) => None,
    }
}

/// The keys that appear more than once, each once, in the order of its first repeat.
/// Kafka's admin APIs refuse a name repeated in one request (INVALID_REQUEST) and act on
/// none of its occurrences, since which one would win is not defined.
pub fn repeated<K: Eq + Hash + Clone>(keys: impl IntoIterator<Item = K>) -> Repeated<K> {
    let mut seen = HashSet::new();
    let mut twice = Repeated {
        in_order: Vec::new(),
        set: HashSet::new(),
    };
    for k in keys {
        if !seen.insert(k.clone()) && twice.set.insert(k.clone()) {
            twice.in_order.push(k);
        }
    }
    twice
}

/// What [`repeated`] found: a set (a request may name millions of keys) that remembers
/// its order.
#[derive(Debug)]
pub struct Repeated<K> {
    in_order: Vec<K>,
    set: HashSet<K>,
}

impl<K: Eq + Hash> Repeated<K> {
    pub fn contains(&self, k: &K) -> bool {
        self.set.contains(k)
    }

    pub fn is_empty(&self) -> bool {
        self.in_order.is_empty()
    }

    pub fn iter(&self) -> std::slice::Iter<'_, K> {
        self.in_order.iter()
    }
}

impl<K> IntoIterator for Repeated<K> {
    type Item = K;
    type IntoIter = std::vec::IntoIter<K>;

    fn into_iter(self) -> Self::IntoIter {
        self.in_order.into_iter()
    }
}

/// A resource type whose authorized operations a client may ask for.
#[derive(Debug, Clone, Copy)]
pub enum AclResource {
    Topic,
    Group,
    Cluster,
}

/// What Kafka's `AuthHelper.authorizedOperations` reports when no authorizer is set,
/// which is Sluice's case (no ACLs): every operation the resource type supports
/// (`AclEntry.supportedOperations`), one bit per `AclOperation` code.
pub fn authorized_operations(resource: AclResource) -> i32 {
    const READ: u8 = 3;
    const WRITE: u8 = 4;
    const CREATE: u8 = 5;
    const DELETE: u8 = 6;
    const ALTER: u8 = 7;
    const DESCRIBE: u8 = 8;
    const CLUSTER_ACTION: u8 = 9;
    const DESCRIBE_CONFIGS: u8 = 10;
    const ALTER_CONFIGS: u8 = 11;
    const IDEMPOTENT_WRITE: u8 = 12;
    let ops: &[u8] = match resource {
        AclResource::Topic => &[
            READ,
            WRITE,
            CREATE,
            DESCRIBE,
            DELETE,
            ALTER,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
        ],
        AclResource::Group => &[READ, DESCRIBE, DELETE, DESCRIBE_CONFIGS, ALTER_CONFIGS],
        AclResource::Cluster => &[
            CREATE,
            CLUSTER_ACTION,
            DESCRIBE_CONFIGS,
            ALTER_CONFIGS,
            IDEMPOTENT_WRITE,
            ALTER,
            DESCRIBE,
        ],
    };
    ops.iter().fold(0, |bits, op| bits | 1 << op)
}
