//! Commands proposed through the metadata quorum, and the state machine's answers.
//!
//! A command is validated inside [`MetadataImage::apply`](crate::MetadataImage::apply), on every
//! voter, so that a rejection is as deterministic as an acceptance: two voters can never disagree
//! about whether `CreateTopic { name: "a", .. }` created a topic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A change to the cluster metadata. Each variant is one Raft log entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MetadataCommand {
    /// Sets the cluster id. Proposed by [`MetadataStore::open`](crate::MetadataStore::open) on
    /// the first leader; the first one applied wins, later ones are rejected with
    /// [`MetadataError::ClusterIdAlreadySet`].
    InitializeCluster {
        cluster_id: String,
    },
    /// Adds a broker, or replaces the endpoint of an already registered one.
    RegisterBroker {
        node_id: i32,
        host: String,
        port: i32,
        rack: Option<String>,
    },
    /// Creates a topic. Replicas are assigned round-robin over the registered brokers (in id
    /// order, starting at an offset derived from `id`); the leader is the first replica.
    CreateTopic {
        name: String,
        /// Chosen by the proposer (random v4); must be non-nil and unused.
        id: Uuid,
        partitions: i32,
        replication_factor: i16,
        configs: BTreeMap<String, String>,
    },
    DeleteTopic {
        name: String,
    },
    /// Grows a topic to `new_total` partitions (Kafka's CreatePartitions).
    CreatePartitions {
        name: String,
        new_total: i32,
    },
    /// Incremental change: sets every key of `set`, then removes every key of `delete`.
    AlterTopicConfigs {
        name: String,
        set: BTreeMap<String, String>,
        delete: Vec<String>,
    },
    /// Replaces the whole config set of a topic (Kafka's legacy AlterConfigs).
    ReplaceTopicConfigs {
        name: String,
        configs: BTreeMap<String, String>,
    },
    /// Hands out the producer ids `first..first + count`; a block is never handed out twice.
    AllocateProducerIds {
        count: i64,
    },
}

/// The state machine's answer to one applied command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CommandOutcome {
    Ok,
    TopicCreated {
        id: Uuid,
    },
    ProducerIdBlock {
        first: i64,
        count: i64,
    },
    /// The command was committed but changed nothing, for the given reason.
    Rejected(MetadataError),
}

/// Why the state machine rejected a command. Each variant maps to one Kafka error code in the
/// broker (e.g. `TopicAlreadyExists` -> TOPIC_ALREADY_EXISTS, `UnknownTopic` ->
/// UNKNOWN_TOPIC_OR_PARTITION, `InvalidTopicName` -> INVALID_TOPIC_EXCEPTION).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum MetadataError {
    #[error("topic already exists")]
    TopicAlreadyExists,
    #[error("topic id {id} is already in use")]
    TopicIdAlreadyExists { id: Uuid },
    #[error("topic id must not be the nil uuid")]
    InvalidTopicId,
    #[error("invalid topic name: {reason}")]
    InvalidTopicName { reason: String },
    #[error("unknown topic")]
    UnknownTopic,
    #[error("invalid partitions: {reason}")]
    InvalidPartitions { reason: String },
    #[error("invalid replication factor: {reason}")]
    InvalidReplicationFactor { reason: String },
    #[error("invalid broker registration: {reason}")]
    InvalidBrokerRegistration { reason: String },
    #[error("invalid producer id block size {count}")]
    InvalidProducerIdCount { count: i64 },
    #[error("producer id space exhausted")]
    ProducerIdsExhausted,
    #[error("cluster id is already set to {cluster_id}")]
    ClusterIdAlreadySet { cluster_id: String },
    #[error("invalid cluster id: {reason}")]
    InvalidClusterId { reason: String },
}
