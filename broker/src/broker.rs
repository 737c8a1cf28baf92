//! The broker's shared state and its lifecycle: open the metadata quorum, register,
//! open hosted partitions and the group coordinator, run background work, serve.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_raft::{CommandOutcome, MetadataCommand, MetadataImage, MetadataStore, RaftConfig};
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::delay::timer::{Checkpoint, DelayTimer};
use crate::fetch_session::FetchSessions;
use crate::group::GroupCoordinator;
use crate::metrics::Metrics;
use crate::partitions::{Chores, ProducerExpiry, ReplicaManager};
use crate::producer_ids::ProducerIdManager;

#[derive(Debug)]
pub struct Broker {
    pub config: BrokerConfig,
    pub node_id: i32,
    pub metadata: MetadataStore,
    pub replicas: ReplicaManager,
    pub groups: GroupCoordinator,
    pub producer_ids: ProducerIdManager,
    /// Delayed records, held until due.
    pub delays: DelayTimer,
    pub metrics: Arc<Metrics>,
    pub shutdown: watch::Receiver<bool>,
    /// Bytes of requests being read or handled, across all connections
    /// (`queued.max.request.bytes`).
    pub request_memory: Arc<tokio::sync::Semaphore>,
    pub request_memory_bytes: usize,
    /// Incremental fetch sessions (KIP-227).
    pub fetch_sessions: FetchSessions,
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
    #[error("delayed-delivery store: {0}")]
    Delays(std::io::Error),
    #[error("producer id for the delay timer: {0}")]
    ProducerId(#[from] crate::producer_ids::ProducerIdError),
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
        replicas.sync_to_latest(|| metadata.image())?;
        replicas.set_aside_stray_dirs();
        let groups = GroupCoordinator::open(&data_dir.join("__consumer_offsets-0"), &config)?;
        let metrics = Arc::new(Metrics::default());
        let producer_ids = ProducerIdManager::default();
        let delays = open_delays(
            &data_dir,
            &config,
            &replicas,
            &producer_ids,
            &metadata,
            &metrics,
        )
        .await?;
        let request_memory_bytes = config.request_memory_bytes();
        let fetch_sessions = FetchSessions::new(
            config
                .int("max.incremental.fetch.session.cache.slots")
                .max(0) as usize,
            Duration::from_millis(
                config
                    .int("min.incremental.fetch.session.eviction.ms")
                    .max(0) as u64,
            ),
        );
        let broker = Arc::new(Broker {
            fetch_sessions,
            request_memory: Arc::new(tokio::sync::Semaphore::new(request_memory_bytes)),
            request_memory_bytes,
            producer_ids,
            delays,
            config,
            node_id,
            metadata,
            replicas,
            groups,
            metrics,
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
                images.borrow_and_update();
                if let Err(e) = b.replicas.sync_to_latest(|| b.image()) {
                    tracing::error!(error = %e, "applying metadata to hosted partitions failed");
                }
            }
        });
        // Flush policy (flush.ms) and retention.
        let b = self.clone();
        tokio::spawn(async move {
            let period = |key: &str| Duration::from_millis(b.config.int(key).max(10) as u64);
            let start = tokio::time::Instant::now();
            let mut flush = Every::new(period("log.flush.scheduler.interval.ms"), Some(start));
            let mut retention = Every::new(period("log.retention.check.interval.ms"), Some(start));
            // Due on the first pass: the state rebuilt from the log at start may hold
            // producers long idle, which Kafka does not load from its snapshots.
            let mut producer_expiry =
                Every::new(period("producer.id.expiration.check.interval.ms"), None);
            let expiry = ProducerExpiry {
                max_idle_ms: b.config.int("producer.id.expiration.ms").max(1),
                keep: b.delays.producer_id(),
            };
            // Each chore keeps its own period (Kafka schedules them apart), so the loop
            // wakes for the shortest; an hour at most, for periods set to "never".
            let tick = [flush.period, retention.period, producer_expiry.period]
                .into_iter()
                .chain([Duration::from_secs(3600)])
                .min()
                .expect("periods");
            let mut shutdown = b.shutdown.clone();
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(tick) => {}
                    _ = shutdown.changed() => return,
                }
                let now = tokio::time::Instant::now();
                let chores = Chores {
                    flush: flush.due(now),
                    retention: retention.due(now),
                    expire_producers: producer_expiry.due(now).then_some(expiry),
                };
                let b2 = b.clone();
                let _ = tokio::task::spawn_blocking(move || b2.replicas.housekeeping(chores)).await;
            }
        });
        // Delayed records coming due.
        let b = self.clone();
        tokio::spawn(async move {
            let mut shutdown = b.shutdown.clone();
            loop {
                let b2 = b.clone();
                let next =
                    tokio::task::spawn_blocking(move || b2.delays.tick(&b2.replicas, now_ms()))
                        .await;
                let wait_ms = match next {
                    Ok(Ok(at)) => (at.saturating_sub(now_ms())).clamp(1, 500),
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "delay timer");
                        1_000
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "delay timer panicked");
                        1_000
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
                    _ = b.delays.wake.notified() => {}
                    _ = shutdown.changed() => return,
                }
            }
        });
        // Dead letters whose `G.dlq` is gone: with auto-creation on, the broker creates
        // it again, as a producer's Metadata request would; else they wait for it.
        let b = self.clone();
        tokio::spawn(async move {
            let mut shutdown = b.shutdown.clone();
            // Those whose creation failed: warned about once, not each second.
            let mut failing = std::collections::HashSet::new();
            loop {
                tokio::select! {
                    _ = b.delays.dead_letter_topic_missing.notified() => {}
                    _ = shutdown.changed() => return,
                }
                if b.config.flag("auto.create.topics.enable") {
                    for (retry_topic, id) in b.delays.take_missing_dead_letter_topics() {
                        recreate_dead_letter_topic(&b, &retry_topic, id, &mut failing).await;
                    }
                }
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
        // Rolled segments still queued are synced, so the next start has less to recover.
        sluice_storage::background::wait_idle();
        if let Err(e) = self.metadata.shutdown().await {
            tracing::warn!(error = %e, "metadata quorum shutdown");
        }
    }
}

/// Creates `retry_topic`'s dead-letter topic with its partition count, as creating the
/// retry topic does, if the retry topic is still the one (by id) whose record found it
/// missing, and it is still missing.
async fn recreate_dead_letter_topic(
    b: &Broker,
    retry_topic: &str,
    id: uuid::Uuid,
    failing: &mut std::collections::HashSet<String>,
) {
    let dlq = crate::delay::retry::dead_letter_topic(retry_topic);
    let image = b.image();
    let Some(retry) = image.topic(retry_topic).filter(|t| t.id == id) else {
        return;
    };
    if image.topic(&dlq).is_some() {
        return;
    }
    let partitions = retry.partitions.len() as i32;
    match crate::topics::create_topic(b, &dlq, partitions, -1, BTreeMap::new(), false).await {
        Ok(_) => {
            failing.remove(&dlq);
            tracing::info!(topic = %dlq, partitions, "created the missing dead-letter topic");
        }
        Err(r) if r.error == kafka_protocol::error::ResponseError::TopicAlreadyExists => {}
        Err(r) if failing.insert(dlq.clone()) => tracing::warn!(topic = %dlq, error = %r.message,
            "could not create the missing dead-letter topic: its records wait for it"),
        Err(_) => {}
    }
}

/// Opens the delay timer's store in `{data_dir}/__delay`, taking a producer id for it from
/// the quorum the first time.
async fn open_delays(
    data_dir: &std::path::Path,
    config: &BrokerConfig,
    replicas: &ReplicaManager,
    producer_ids: &ProducerIdManager,
    metadata: &MetadataStore,
    metrics: &Arc<Metrics>,
) -> Result<DelayTimer, StartError> {
    let dir = data_dir.join("__delay");
    std::fs::create_dir_all(&dir).map_err(StartError::Delays)?;
    let checkpoint = match Checkpoint::read(&dir).map_err(StartError::Delays)? {
        Some(c) => c,
        None => Checkpoint {
            producer_id: producer_ids.next(metadata).await?,
            done_through_s: now_ms() / 1_000,
        },
    };
    DelayTimer::open(
        &dir,
        checkpoint,
        config.int(crate::delay::MAX_DELAY_SETTING),
        config.int(crate::delay::SEGMENT_BYTES_SETTING) as u64,
        replicas,
        now_ms(),
        metrics.clone(),
    )
    .map_err(StartError::Delays)
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

/// A periodic chore: due once `period` has passed since it last was (at once if it
/// never was).
struct Every {
    period: Duration,
    last: Option<tokio::time::Instant>,
}

impl Every {
    fn new(period: Duration, last: Option<tokio::time::Instant>) -> Self {
        Every { period, last }
    }

    fn due(&mut self, now: tokio::time::Instant) -> bool {
        let due = self
            .last
            .is_none_or(|last| now.saturating_duration_since(last) >= self.period);
        if due {
            self.last = Some(now);
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chore_is_due_once_per_period_and_at_once_if_it_never_ran() {
        let start = tokio::time::Instant::now();
        let period = Duration::from_secs(10);
        let mut never = Every::new(period, None);
        let mut started = Every::new(period, Some(start));
        assert!(never.due(start));
        assert!(!never.due(start + Duration::from_secs(9)));
        assert!(!started.due(start + Duration::from_secs(9)));
        assert!(started.due(start + period));
        assert!(!started.due(start + period + Duration::from_secs(1)));
        assert!(never.due(start + period));
    }
}
