//! [`MetadataStore`]: the broker-facing handle on the quorum. It wires the log store, state
//! machine and network into an openraft node, bootstraps the cluster, and translates openraft's
//! errors into [`Error`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use openraft::error::{ClientWriteError, InitializeError, RaftError};
use openraft::{BasicNode, Config, SnapshotPolicy};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::command::{CommandOutcome, MetadataCommand};
use crate::error::{ConfigError, Error, FatalError};
use crate::image::MetadataImage;
use crate::log_store::LogStore;
use crate::network::{NetworkFactory, RaftServer};
use crate::state_machine::{SmShared, StateMachineStore};
use crate::types::Raft;

/// How often `open` logs that it is still waiting for a leader.
const WAIT_LOG_INTERVAL: Duration = Duration::from_secs(5);

/// Where and how to run this node's share of the quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RaftConfig {
    /// This node's id; must be a key of `voters`.
    pub node_id: u64,
    /// Quorum state directory (`log/`, `vote.json`, `committed.json`, `snapshot.json`).
    pub dir: PathBuf,
    /// `host:port` the voter RPC server binds.
    pub raft_addr: String,
    /// Every voter's id and the `host:port` peers dial. Used only to bootstrap a fresh cluster;
    /// afterwards the membership stored in the log is authoritative.
    pub voters: BTreeMap<u64, String>,
    /// The cluster id to use at bootstrap; generated (22 chars, base64url) when `None`. On
    /// restart, a `Some` that differs from the stored id is an error.
    pub cluster_id: Option<String>,
}

/// The quorum as this node sees it, in KRaft's terms (what DescribeQuorum reports).
/// Offsets are openraft log indexes plus one: a log end offset is the next entry's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumState {
    pub node_id: u64,
    pub leader: Option<u64>,
    /// The current term: KRaft's leader epoch.
    pub epoch: u64,
    /// The offset after the last entry applied here. Entries are applied once committed,
    /// so this is at most one apply behind KRaft's high watermark.
    pub high_watermark: i64,
    /// Voters, then learners (KRaft's observers), each with its log end offset: this
    /// node's own, and on the leader its followers' as far as they have replicated; -1
    /// when this node does not know.
    pub voters: Vec<(u64, i64)>,
    pub observers: Vec<(u64, i64)>,
}

/// A handle on this node's metadata quorum member. Cheap to clone.
#[derive(Clone)]
pub struct MetadataStore {
    inner: Arc<Inner>,
}

struct Inner {
    node_id: u64,
    raft: Raft,
    sm: Arc<SmShared>,
    server: tokio::sync::Mutex<Option<RaftServer>>,
}

impl fmt::Debug for MetadataStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MetadataStore")
            .field("node_id", &self.inner.node_id)
            .field("leader", &self.leader())
            .finish_non_exhaustive()
    }
}

fn openraft_config() -> Result<Config, Error> {
    let config = Config {
        cluster_name: "sluice-metadata".to_owned(),
        // openraft uses the heartbeat interval as the timeout of every AppendEntries RPC, which
        // includes the follower's fsync. Its 50 ms default (150-300 ms elections) would stall
        // replication whenever an fsync is slow on a busy disk, so: 200 ms, and elections after
        // 0.8-1.6 s of silence (Kafka's KRaft default election timeout is 1 s).
        heartbeat_interval: 200,
        election_timeout_min: 800,
        election_timeout_max: 1600,
        // Snapshot chunks travel as JSON number arrays (~4x their size): keep them small, and
        // give the last one time to be parsed and fsync'd by the follower.
        snapshot_max_chunk_size: 512 << 10,
        install_snapshot_timeout: 2_000,
        snapshot_policy: SnapshotPolicy::LogsSinceLast(5000),
        ..Config::default()
    };
    config.validate().map_err(|e| {
        Error::InvalidConfig(ConfigError::Raft {
            reason: e.to_string(),
        })
    })
}

fn validate(config: &RaftConfig) -> Result<(), Error> {
    if config.raft_addr.is_empty() {
        return Err(Error::InvalidConfig(ConfigError::EmptyRaftAddr));
    }
    if !config.voters.contains_key(&config.node_id) {
        return Err(Error::InvalidConfig(ConfigError::NotAVoter {
            node_id: config.node_id,
        }));
    }
    Ok(())
}

impl MetadataStore {
    /// Opens (or creates) the quorum state in `config.dir`, starts the voter RPC server on
    /// `config.raft_addr`, bootstraps a fresh cluster (every voter proposes the same initial
    /// membership; on restart that is refused and ignored), and returns once a leader is known
    /// and the cluster id is set. With peers down this waits for them; wrap it in a timeout if
    /// that is not wanted.
    pub async fn open(config: RaftConfig) -> Result<Self, Error> {
        validate(&config)?;
        let raft_config = Arc::new(openraft_config()?);
        let dir = config.dir.clone();
        let (log_store, sm) = tokio::task::spawn_blocking(move || -> Result<_, Error> {
            std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
            Ok((LogStore::open(&dir)?, StateMachineStore::open(&dir)?))
        })
        .await
        .map_err(|_| Error::Fatal(FatalError::Panicked))??;
        let sm_shared = sm.shared();

        let bind_error = |e| Error::Bind {
            addr: config.raft_addr.clone(),
            source: Arc::new(e),
        };
        let listener = TcpListener::bind(&config.raft_addr)
            .await
            .map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        let node_id = config.node_id;
        let raft = Raft::new(
            node_id,
            raft_config,
            NetworkFactory::new(node_id),
            log_store,
            sm,
        )
        .await?;
        let server = RaftServer::spawn(listener, local_addr, node_id, raft.clone());
        let store = MetadataStore {
            inner: Arc::new(Inner {
                node_id,
                raft,
                sm: sm_shared,
                server: tokio::sync::Mutex::new(Some(server)),
            }),
        };
        if let Err(e) = store.bootstrap(&config).await {
            if let Err(shutdown_error) = store.shutdown().await {
                tracing::warn!(error = %shutdown_error, "shutdown after a failed open also failed");
            }
            return Err(e);
        }
        tracing::info!(
            node_id,
            leader = ?store.leader(),
            cluster_id = %store.image().cluster_id,
            "metadata quorum member is up"
        );
        Ok(store)
    }

    async fn bootstrap(&self, config: &RaftConfig) -> Result<(), Error> {
        let members: BTreeMap<u64, BasicNode> = config
            .voters
            .iter()
            .map(|(id, addr)| (*id, BasicNode { addr: addr.clone() }))
            .collect();
        // A restarted node already has a membership; asking openraft to initialize it
        // again would only be refused (and logged as an error by openraft).
        let initialized = self.inner.raft.is_initialized().await?;
        let outcome = if initialized {
            Ok(())
        } else {
            self.inner.raft.initialize(members).await
        };
        match outcome {
            Ok(()) if initialized => {}
            Ok(()) => tracing::info!(voters = ?config.voters, "initialized a new metadata quorum"),
            Err(RaftError::APIError(InitializeError::NotAllowed(_))) => {}
            Err(RaftError::APIError(InitializeError::NotInMembers(_))) => {
                return Err(Error::InvalidConfig(ConfigError::NotAVoter {
                    node_id: config.node_id,
                }))
            }
            Err(RaftError::Fatal(fatal)) => return Err(fatal.into()),
        }
        self.wait_for_leader_and_cluster_id(config.cluster_id.as_deref())
            .await
    }

    /// Loops until a leader is known and the image carries a cluster id. When this node is the
    /// leader and no cluster id is applied yet it proposes one (once per term); if several
    /// leaders in turn do so, the first entry applied wins everywhere.
    async fn wait_for_leader_and_cluster_id(&self, configured: Option<&str>) -> Result<(), Error> {
        let mut metrics = self.inner.raft.metrics();
        let mut images = self.subscribe();
        let mut proposed_in_term = None;
        let mut log_tick = tokio::time::interval(WAIT_LOG_INTERVAL);
        log_tick.tick().await;
        loop {
            let (leader, term) = {
                let m = metrics.borrow_and_update();
                m.running_state.clone()?;
                (m.current_leader, m.current_term)
            };
            let cluster_id = images.borrow_and_update().cluster_id.clone();
            if leader.is_some() && !cluster_id.is_empty() {
                return match configured {
                    Some(configured) if configured != cluster_id => Err(Error::ClusterIdMismatch {
                        configured: configured.to_owned(),
                        stored: cluster_id,
                    }),
                    _ => Ok(()),
                };
            }
            if leader == Some(self.inner.node_id)
                && cluster_id.is_empty()
                && proposed_in_term != Some(term)
            {
                proposed_in_term = Some(term);
                let cluster_id = configured.map_or_else(generate_cluster_id, str::to_owned);
                match self
                    .propose(MetadataCommand::InitializeCluster { cluster_id })
                    .await
                {
                    // Applied (ours or an earlier one): the image now has an id.
                    Ok(_) | Err(Error::NotLeader { .. }) => {}
                    Err(e) => return Err(e),
                }
                continue;
            }
            tokio::select! {
                changed = metrics.changed() => changed.map_err(|_| Error::Fatal(FatalError::Stopped))?,
                changed = images.changed() => changed.map_err(|_| Error::Fatal(FatalError::Stopped))?,
                _ = log_tick.tick() => tracing::warn!(
                    node_id = self.inner.node_id,
                    ?leader,
                    "still waiting for a metadata quorum leader and cluster id"
                ),
            }
        }
    }

    /// Proposes `cmd`, waits until it is committed and applied here, and returns the state
    /// machine's answer. A rejection by validation is `Ok(CommandOutcome::Rejected(..))`.
    ///
    /// Errors: `NotLeader` (nothing was appended; retry on the leader), `Fatal` (this node's Raft
    /// is gone). There is no built-in timeout: a leader that lost its quorum waits until it
    /// learns of a new leader (then `NotLeader`) or until the caller gives up.
    pub async fn propose(&self, cmd: MetadataCommand) -> Result<CommandOutcome, Error> {
        match self.inner.raft.client_write(cmd).await {
            Ok(response) => Ok(response.data),
            Err(RaftError::APIError(ClientWriteError::ForwardToLeader(forward))) => {
                Err(Error::NotLeader {
                    leader: forward.leader_id,
                })
            }
            Err(RaftError::APIError(e @ ClientWriteError::ChangeMembershipError(_))) => {
                // Only membership-change entries can fail this way, and we never propose one.
                Err(Error::Fatal(FatalError::Raft(Arc::new(e))))
            }
            Err(RaftError::Fatal(fatal)) => Err(fatal.into()),
        }
    }

    /// The image as of the last entry applied on this node. On a follower it may trail the
    /// leader by the entries not yet replicated.
    pub fn image(&self) -> Arc<MetadataImage> {
        self.inner.sm.image()
    }

    /// Yields the new image after every apply (and after a snapshot install).
    pub fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.inner.sm.subscribe()
    }

    pub fn node_id(&self) -> u64 {
        self.inner.node_id
    }

    /// The leader this node currently knows of.
    pub fn leader(&self) -> Option<u64> {
        self.inner.raft.metrics().borrow().current_leader
    }

    /// The quorum's leader, epoch and replication progress, as of the latest metrics.
    pub fn quorum_state(&self) -> QuorumState {
        let m = self.inner.raft.metrics().borrow().clone();
        let next_offset = |log_id: &openraft::LogId<u64>| log_id.index as i64 + 1;
        let end_offset = |id: u64| {
            if id == m.id {
                m.last_log_index.map_or(0, |i| i as i64 + 1)
            } else {
                m.replication
                    .as_ref()
                    .and_then(|r| r.get(&id))
                    .and_then(Option::as_ref)
                    .map_or(-1, next_offset)
            }
        };
        let membership = m.membership_config.membership();
        QuorumState {
            node_id: m.id,
            leader: m.current_leader,
            epoch: m.current_term,
            high_watermark: m.last_applied.as_ref().map_or(0, next_offset),
            voters: membership
                .voter_ids()
                .map(|id| (id, end_offset(id)))
                .collect(),
            observers: membership
                .learner_ids()
                .map(|id| (id, end_offset(id)))
                .collect(),
        }
    }

    /// Stops the Raft node and the RPC server. Idempotent. Handles cloned from this one stop
    /// working too (`propose` returns `Fatal(Stopped)`).
    pub async fn shutdown(&self) -> Result<(), Error> {
        let raft_result = self.inner.raft.shutdown().await;
        if let Some(server) = self.inner.server.lock().await.take() {
            server.stop().await;
        }
        raft_result.map_err(|_| Error::Fatal(FatalError::Panicked))
    }

    #[cfg(test)]
    pub(crate) fn raft(&self) -> &Raft {
        &self.inner.raft
    }
}

/// A random cluster id in Kafka's format: 16 random bytes as unpadded base64url (22 chars),
/// never starting with '-' (Kafka's `Uuid.randomUuid` avoids that so ids are not taken for
/// command-line flags).
pub(crate) fn generate_cluster_id() -> String {
    loop {
        let id = base64url(uuid::Uuid::new_v4().as_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let sextet = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[sextet as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(b""), "");
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
        // Kafka's Uuid.toString of 0x..01 is "AAAAAAAAAAAAAAAAAAAAAQ".
        assert_eq!(base64url(&1u128.to_be_bytes()), "AAAAAAAAAAAAAAAAAAAAAQ");
    }

    #[test]
    fn cluster_ids_look_like_kafkas() {
        for _ in 0..100 {
            let id = generate_cluster_id();
            assert_eq!(id.len(), 22);
            assert!(!id.starts_with('-'));
            assert!(id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        }
    }

    #[test]
    fn config_validation() {
        let config = RaftConfig {
            node_id: 2,
            dir: PathBuf::from("/nonexistent"),
            raft_addr: "127.0.0.1:0".into(),
            voters: BTreeMap::from([(1, "127.0.0.1:1".to_owned())]),
            cluster_id: None,
        };
        assert!(matches!(
            validate(&config),
            Err(Error::InvalidConfig(ConfigError::NotAVoter { node_id: 2 }))
        ));
        let empty_addr = RaftConfig {
            raft_addr: String::new(),
            ..config
        };
        assert!(matches!(
            validate(&empty_addr),
            Err(Error::InvalidConfig(ConfigError::EmptyRaftAddr))
        ));
        assert!(openraft_config().is_ok());
    }
}
