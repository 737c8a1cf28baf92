//! `sluice-raft`: the cluster-metadata quorum, a Raft group (openraft 0.9) whose state machine
//! is the [`MetadataImage`]: brokers, topics, partition assignments, topic configs, producer-id
//! blocks and the cluster id.
//!
//! The broker uses only [`MetadataStore`] and the domain types re-exported here; no openraft
//! type crosses this crate's boundary.
//!
//! Modules:
//! - [`command`]: [`MetadataCommand`] (what can be proposed) and [`CommandOutcome`] /
//!   [`MetadataError`] (what the state machine answers).
//! - [`image`]: [`MetadataImage`] and the pure, deterministic `apply`.
//! - `store`: [`MetadataStore`] and [`RaftConfig`]: open, propose, read, subscribe, shutdown.
//! - `log_store`: the durable Raft log (`log/raft.log`, CRC-checked JSON records) and vote.
//! - `state_machine`: applies entries to the image; snapshots to `snapshot.json`.
//! - `network`: length-prefixed JSON RPC between voters over TCP, client and server.
//! - `error`: [`Error`], split into "go to the leader" (`NotLeader`) and `Fatal`.
//!
//! Every file under the quorum directory is written with fsync before it is relied on; see
//! `log_store` and `state_machine` for the on-disk contracts.

pub mod command;
mod error;
pub mod image;
mod log_store;
mod network;
mod state_machine;
mod store;
mod types;

#[cfg(test)]
mod tests;

pub use command::{CommandOutcome, MetadataCommand, MetadataError};
pub use error::{ConfigError, Error, FatalError};
pub use image::{BrokerInfo, MetadataImage, PartitionMeta, TopicMeta};
pub use store::{MetadataStore, QuorumState, RaftConfig};
