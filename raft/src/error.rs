//! The crate's error type. Like openraft's `RaftError`, it keeps "retry or go to the leader"
//! (`NotLeader`) apart from "this node's quorum membership is dead" (`Fatal`).

use std::io;
use std::path::PathBuf;
use std::sync::Arc;

/// Errors returned by [`MetadataStore`](crate::MetadataStore).
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// This node is not the Raft leader. `leader` is the leader this node knows of, if any;
    /// retry there (or here, after a moment, when `None`: an election is under way).
    #[error("not the metadata quorum leader (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("invalid raft config: {0}")]
    InvalidConfig(ConfigError),
    #[error("cannot bind raft listener on {addr}: {source}")]
    Bind {
        addr: String,
        source: Arc<io::Error>,
    },
    #[error("I/O error on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: Arc<io::Error>,
    },
    /// A quorum file exists but cannot be read back (not a torn log tail, which is repaired).
    #[error("corrupt quorum state in {}: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    /// `RaftConfig::cluster_id` differs from the id stored in the quorum state.
    #[error("cluster id mismatch: configured {configured}, stored {stored}")]
    ClusterIdMismatch { configured: String, stored: String },
    /// The Raft node stopped (shutdown, storage failure or panic); it will not recover in
    /// this process.
    #[error("metadata quorum failed: {0}")]
    Fatal(FatalError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("node {node_id} is not in the voter set")]
    NotAVoter { node_id: u64 },
    #[error("raft_addr is empty")]
    EmptyRaftAddr,
    #[error("openraft rejected the derived config: {reason}")]
    Raft { reason: String },
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum FatalError {
    #[error("raft node stopped")]
    Stopped,
    #[error("raft node panicked")]
    Panicked,
    /// A storage or protocol failure reported by the Raft library.
    #[error("{0}")]
    Raft(Arc<dyn std::error::Error + Send + Sync>),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source: Arc::new(source),
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl From<openraft::error::Fatal<u64>> for Error {
    fn from(fatal: openraft::error::Fatal<u64>) -> Self {
        use openraft::error::Fatal;
        Error::Fatal(match fatal {
            Fatal::Stopped => FatalError::Stopped,
            Fatal::Panicked => FatalError::Panicked,
            other => FatalError::Raft(Arc::new(other)),
        })
    }
}
