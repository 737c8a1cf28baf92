//! The partitions this broker hosts: one [`Partition`] per topic-partition, each a
//! [`PartitionLog`] behind a mutex plus a watch channel that fires when the high
//! watermark moves (long-polling fetches wait on it).
//!
//! Directories are `{data_dir}/{topic}-{partition}`, each with a `partition.metadata`
//! file naming the topic id, so that a topic deleted and re-created under the same name
//! while the broker was down is recognised and its old data dropped.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use kafka_protocol::error::ResponseError;
use sluice_raft::{MetadataImage, TopicMeta};
use sluice_storage::config::LogConfig;
use sluice_storage::PartitionLog;
use tokio::sync::watch;
use uuid::Uuid;

use crate::clock::now_ms;
use crate::view::summary::SummaryCache;
use crate::view::{self, View};

#[derive(Debug)]
pub struct Partition {
    pub topic: String,
    pub index: i32,
    pub topic_id: Uuid,
    pub log: Mutex<PartitionLog>,
    leader_epoch: std::sync::atomic::AtomicI32,
    hw_tx: watch::Sender<i64>,
    /// Tag summaries of this partition's batches, for the views reading it.
    pub summaries: SummaryCache,
    /// Set while the topic has views: its appends are then tag-summarised.
    pub has_views: AtomicBool,
}

impl Partition {
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    /// KIP-320: a client names the leader epoch it believes current (-1: no check). A
    /// newer one than ours means our metadata lags; an older one means the client's does.
    pub fn check_leader_epoch(&self, requested: i32) -> Result<i32, ResponseError> {
        let epoch = self.leader_epoch();
        match requested {
            r if r < 0 || r == epoch => Ok(epoch),
            r if r > epoch => Err(ResponseError::UnknownLeaderEpoch),
            _ => Err(ResponseError::FencedLeaderEpoch),
        }
    }

    /// Subscribes to high-watermark changes (subscribe *before* reading, so an append
    /// between the read and the wait is not missed).
    pub fn watch_hw(&self) -> watch::Receiver<i64> {
        self.hw_tx.subscribe()
    }

    /// Advances the high watermark to the log end (the only replica) and wakes fetchers.
    pub fn advance_hw_to_leo(&self, log: &mut PartitionLog) {
        let leo = log.log_end_offset();
        log.set_high_watermark(leo);
        self.hw_tx.send_replace(leo);
    }

    pub fn lock(&self) -> std::sync::MutexGuard<'_, PartitionLog> {
        // A panic while holding the lock leaves a log whose in-memory view may be
        // behind its file; nothing is half-written in memory, so keep serving.
        self.log.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug)]
pub struct ReplicaManager {
    data_dir: PathBuf,
    node_id: i32,
    log_defaults: BTreeMap<String, String>,
    /// Partitions hosted here, by topic name and then index: looked up by `&str` on every
    /// Produce and Fetch, so the hot path neither allocates nor hashes a tuple key.
    partitions: RwLock<HashMap<String, HashMap<i32, Arc<Partition>>>>,
    /// Views by name: no log of their own, read through their source's partitions.
    views: RwLock<HashMap<String, Arc<View>>>,
    /// Serialises `sync` so two metadata updates never race on directories.
    sync_lock: Mutex<()>,
}

/// A partition to read from: the log's own, or its source's for a view (with the view's
/// filter).
#[derive(Debug, Clone)]
pub struct ReadTarget {
    pub partition: Arc<Partition>,
    pub view: Option<Arc<View>>,
}

const PARTITION_METADATA: &str = "partition.metadata";

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
}

/// Removes a partition directory already renamed for deletion (or, failing that, its own).
fn remove_deleted_dir(dir: &Path) {
    if let Err(e) = std::fs::remove_dir_all(dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(dir = %dir.display(), error = %e, "could not delete partition directory");
        }
    }
}

impl ReplicaManager {
    pub fn new(data_dir: &Path, node_id: i32, log_defaults: BTreeMap<String, String>) -> Self {
        ReplicaManager {
            data_dir: data_dir.to_owned(),
            node_id,
            log_defaults,
            partitions: RwLock::new(HashMap::new()),
            views: RwLock::new(HashMap::new()),
            sync_lock: Mutex::new(()),
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .and_then(|t| t.get(&partition))
            .cloned()
    }

    /// How many partitions of `topic` are hosted here.
    pub fn partition_count(&self, topic: &str) -> usize {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .map_or(0, HashMap::len)
    }

    /// The view of that name, if it is one.
    pub fn view(&self, topic: &str) -> Option<Arc<View>> {
        self.views
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
    }

    /// The partition reads of `topic` go to: its own, or for a view its source's.
    pub fn get_for_read(&self, topic: &str, partition: i32) -> Option<ReadTarget> {
        if let Some(p) = self.get(topic, partition) {
            return Some(ReadTarget {
                partition: p,
                view: None,
            });
        }
        let view = self.view(topic)?;
        let p = self.get(&view.source, partition)?;
        Some(ReadTarget {
            partition: p,
            view: Some(view),
        })
    }

    pub fn all(&self) -> Vec<Arc<Partition>> {
        let mut v: Vec<_> = self
            .partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .flat_map(|t| t.values().cloned())
            .collect();
        v.sort_by(|a, b| (&a.topic, a.index).cmp(&(&b.topic, b.index)));
        v
    }

    pub fn log_config(&self, topic: &TopicMeta) -> LogConfig {
        // Topic configs were validated before they reached the metadata log.
        LogConfig::resolve(&topic.configs, &self.log_defaults).unwrap_or_default()
    }

    pub fn log_defaults(&self) -> &BTreeMap<String, String> {
        &self.log_defaults
    }

    fn partition_dir(&self, topic: &str, partition: i32) -> PathBuf {
        self.data_dir.join(format!("{topic}-{partition}"))
    }

    /// Brings the hosted partitions in line with the metadata image: opens logs for
    /// partitions led here, applies config changes, deletes partitions of topics that
    /// are gone (or were re-created with a new id).
    pub fn sync(&self, image: &MetadataImage) -> Result<(), sluice_storage::Error> {
        let _serial = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let current: Vec<Arc<Partition>> = self.all();
        // Drop what the image no longer has.
        for p in &current {
            let keep = image
                .topic(&p.topic)
                .is_some_and(|t| t.id == p.topic_id && (p.index as usize) < t.partitions.len());
            if !keep {
                let mut map = self.partitions.write().unwrap_or_else(|e| e.into_inner());
                if let Some(t) = map.get_mut(&p.topic) {
                    t.remove(&p.index);
                    if t.is_empty() {
                        map.remove(&p.topic);
                    }
                }
                drop(map);
                p.lock().retire();
                self.delete_dir(&self.partition_dir(&p.topic, p.index));
                tracing::info!(topic = %p.topic, partition = p.index, "deleted partition");
            }
        }
        let mut views = HashMap::new();
        for topic in image.topics.values() {
            if view::source_of(topic).is_some() {
                // A view hosts nothing; its reads go to its source's partitions.
                if let Some(v) = view::compile(topic) {
                    views.insert(topic.name.clone(), v);
                }
                continue;
            }
            let config = self.log_config(topic);
            for pm in &topic.partitions {
                if !pm.replicas.contains(&self.node_id) {
                    continue;
                }
                if let Some(p) = self.get(&topic.name, pm.partition) {
                    let mut log = p.lock();
                    if log.config() != &config {
                        log.set_config(config.clone());
                    }
                    if pm.leader_epoch != p.leader_epoch() {
                        p.leader_epoch
                            .store(pm.leader_epoch, std::sync::atomic::Ordering::Release);
                        log.assign_epoch(pm.leader_epoch);
                    }
                    continue;
                }
                let dir = self.partition_dir(&topic.name, pm.partition);
                if dir.exists() && read_topic_id(&dir).is_some_and(|id| id != topic.id) {
                    self.delete_dir(&dir);
                }
                let mut log = PartitionLog::open(&dir, config.clone(), now_ms())?;
                if read_topic_id(&dir).is_none() {
                    let text = format!("version: 0\ntopic_id: {}\n", topic.id);
                    sluice_storage::log::write_atomically(
                        &dir,
                        PARTITION_METADATA,
                        text.as_bytes(),
                    )
                    .map_err(|source| sluice_storage::Error::Io {
                        op: "writing partition.metadata",
                        source,
                    })?;
                }
                log.assign_epoch(pm.leader_epoch);
                let hw = log.high_watermark();
                let (hw_tx, _) = watch::channel(hw);
                let p = Arc::new(Partition {
                    topic: topic.name.clone(),
                    index: pm.partition,
                    topic_id: topic.id,
                    log: Mutex::new(log),
                    leader_epoch: pm.leader_epoch.into(),
                    hw_tx,
                    summaries: SummaryCache::default(),
                    has_views: AtomicBool::new(false),
                });
                self.partitions
                    .write()
                    .unwrap_or_else(|e| e.into_inner())
                    .entry(topic.name.clone())
                    .or_default()
                    .insert(pm.partition, p);
            }
        }
        let sources: HashSet<&str> = views.values().map(|v| v.source.as_str()).collect();
        for p in self.all() {
            p.has_views
                .store(sources.contains(p.topic.as_str()), Ordering::Relaxed);
        }
        *self.views.write().unwrap_or_else(|e| e.into_inner()) = views;
        Ok(())
    }

    /// Deletes a partition directory. It is renamed at once, so a crash mid-delete never
    /// leaves a half-deleted log under the live name and a topic re-created under the same
    /// name starts empty; the files are then removed by the background thread. Freeing a
    /// partition's blocks takes 0.6 s per GB on this machine's filesystem (mounted with
    /// `discard`), and this runs under the metadata sync, which DeleteTopics waits for.
    fn delete_dir(&self, dir: &Path) {
        let doomed = dir.with_extension(format!("{}-delete", Uuid::new_v4().simple()));
        match std::fs::rename(dir, &doomed) {
            Ok(()) => sluice_storage::background::run(move || remove_deleted_dir(&doomed)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                // The live name cannot be handed to the background: a new topic may take it.
                tracing::warn!(dir = %dir.display(), error = %e, "could not rename partition directory; deleting it in place");
                remove_deleted_dir(dir);
            }
        }
    }

    /// Removes leftovers of deletions interrupted by a crash.
    pub fn clean_deleted_dirs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with("-delete") {
                remove_deleted_dir(&e.path());
            }
        }
    }

    /// Periodic work: retention and time-based flushes.
    pub fn housekeeping(&self, retention_due: bool) {
        let now = now_ms();
        for p in self.all() {
            let mut log = p.lock();
            if let Err(e) = log.flush_if_due(now) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
            }
            if retention_due {
                if let Err(e) = log.enforce_retention(now) {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed");
                }
            }
        }
    }

    /// Flushes and closes every log (clean shutdown).
    pub fn close_all(&self) {
        let now = now_ms();
        for p in self.all() {
            let mut log = p.lock();
            if let Err(e) = log.flush(now) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush on shutdown failed");
            }
        }
    }
}
