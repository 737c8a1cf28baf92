//! The broker's shared state and its lifecycle: open the metadata quorum, register,
//! open hosted partitions and the group coordinator, run background work, serve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_raft::{CommandOutcome, MetadataCommand, MetadataImage, MetadataStore, RaftConfig};
use tokio::sync::watch;

use crate::config::BrokerConfig;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::partitions::ReplicaManager;
use crate::producer_ids::ProducerIdManager;

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub node_id: i32,
    pub metadata: MetadataStore,
    pub replicas: ReplicaManager,
    pub groups: GroupCoordinator,
    pub producer_ids: ProducerIdManager,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<bool>,
    /// Bytes of requests being read or handled, across all connections
    /// (`queued.max.request.bytes`).
    pub request_memory: Arc<tokio::sync::Semaphore>,
    pub request_memory_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("cannot use data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("data directory {path} is in use by another broker")]
    Locked { path: String },
    #[error("metadata quorum: {0}")]
    Quorum(#[from] sluice_raft::Error),
    #[error("broker registration was rejected: {0}")]
    Registration(String),
    #[error("storage: {0}")]
    Storage(#[from] sluice_storage::Error),
}

impl Broker {
    pub async fn open(
        config: BrokerConfig,
        shutdown: watch::Receiver<bool>,
    ) -> Result<Arc<Broker>, StartError> {
        let data_dir = config.cli.data_dir.clone();
        let path = data_dir.display().to_string();
        std::fs::create_dir_all(&data_dir).map_err(|source| StartError::DataDir {
            path: path.clone(),
            source,
        })?;
        lock_data_dir(&data_dir)?;
        let node_id = config.cli.node_id;
        let raft_addr = config.cli.raft_listen.clone();
        let metadata = MetadataStore::open(RaftConfig {
            node_id: node_id as u64,
            dir: data_dir.join("__cluster_metadata"),
            raft_addr: raft_addr.clone(),
            voters: BTreeMap::from([(node_id as u64, raft_addr)]),
            cluster_id: None,
        })
        .await?;
        let (host, port) = config.advertised();
        let registered = metadata
            .image()
            .brokers
            .get(&node_id)
            .is_some_and(|b| b.host == host && b.port == port);
        if !registered {
            let cmd = MetadataCommand::RegisterBroker {
                node_id,
                host,
                port,
                rack: None,
            };
            if let CommandOutcome::Rejected(e) = metadata.propose(cmd).await? {
                return Err(StartError::Registration(e.to_string()));
            }
        }
        let replicas = ReplicaManager::new(&data_dir, node_id, config.log_defaults.clone());
        replicas.clean_deleted_dirs();
        replicas.sync(&metadata.image())?;
        let groups = GroupCoordinator::open(&data_dir.join("__consumer_offsets-0"), &config)?;
        let request_memory_bytes = config
            .int("queued.max.request.bytes")
            .clamp(1 << 20, u32::MAX as i64) as usize;
        let broker = Arc::new(Broker {
            request_memory: Arc::new(tokio::sync::Semaphore::new(request_memory_bytes)),
            request_memory_bytes,
            producer_ids: ProducerIdManager::default(),
            config,
            node_id,
            metadata,
            replicas,
            groups,
            metrics: Arc::new(Metrics::default()),
            shutdown,
        });
        broker.spawn_background();
        Ok(broker)
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.metadata.image()
    }

    fn spawn_background(self: &Arc<Self>) {
        // Follow the metadata log: host new partitions, drop deleted ones.
        let b = self.clone();
        let mut images = self.metadata.subscribe();
        tokio::spawn(async move {
            while images.changed().await.is_ok() {
                let image = images.borrow_and_update().clone();
                if let Err(e) = b.replicas.sync(&image) {
                    tracing::error!(error = %e, "applying metadata to hosted partitions failed");
                }
            }
        });
        // Flush policy (flush.ms) and retention.
        let b = self.clone();
        tokio::spawn(async move {
            let flush_every = Duration::from_millis(
                b.config.int("log.flush.scheduler.interval.ms").max(10) as u64,
            );
            let retention_every = Duration::from_millis(
                b.config.int("log.retention.check.interval.ms").max(10) as u64,
            );
            let mut last_retention = tokio::time::Instant::now();
            let mut shutdown = b.shutdown.clone();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(flush_every) => {}
                    _ = shutdown.changed() => return,
                }
                let retention_due = last_retention.elapsed() >= retention_every;
                if retention_due {
                    last_retention = tokio::time::Instant::now();
                }
                let b2 = b.clone();
                let _ =
                    tokio::task::spawn_blocking(move || b2.replicas.housekeeping(retention_due))
                        .await;
            }
        });
        // Group sessions and rebalance deadlines.
        let b = self.clone();
        tokio::spawn(async move { b.groups.run_timers(b.shutdown.clone()).await });
    }

    /// Flushes everything and leaves the quorum (clean shutdown).
    pub async fn close(&self) {
        self.replicas.close_all();
        self.groups.close();
        if let Err(e) = self.metadata.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum shutdown");
        }
    }
}

/// Holds an exclusive lock on `{data_dir}/.lock` for the life of the process, so two
/// brokers can never write one directory.
fn lock_data_dir(dir: &std::path::Path) -> Result<(), StartError> {
    let path = dir.join(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|source| StartError::DataDir {
            path: path.display().to_string(),
            source,
        })?;
    match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
        Ok(lock) => {
            // Keep the lock until exit.
            std::mem::forget(lock);
            Ok(())
        }
        Err(_) => Err(StartError::Locked {
            path: dir.display().to_string(),
        }),
    }
}
