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
use sluice_raft::{MetadataImage, PartitionMeta, TopicMeta};
use sluice_storage::config::LogConfig;
use sluice_storage::durable;
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
    /// Set when the partition is deleted. Here, not only in its log: a Fetch naming
    /// thousands of partitions reads it beside the leader epoch, without one more
    /// pointer to follow per partition.
    retired: AtomicBool,
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

    /// Retires the log of a partition deleted, and wakes the fetches waiting on it: they
    /// answer at once, as Kafka completes a delayed fetch whose partition went away.
    fn retire(&self) {
        self.lock().retire();
        self.retired.store(true, Ordering::Release);
        self.hw_tx.send_modify(|_| {});
    }

    /// Whether the partition was deleted.
    pub fn is_retired(&self) -> bool {
        self.retired.load(Ordering::Acquire)
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

/// What a housekeeping pass does besides the time-based flushes every pass does.
#[derive(Debug, Clone, Copy, Default)]
pub struct Chores {
    /// Flush the logs whose `flush.ms` has passed.
    pub flush: bool,
    /// Delete what retention no longer keeps.
    pub retention: bool,
    /// Forget idempotent producers' state (`producer.id.expiration.ms`).
    pub expire_producers: Option<ProducerExpiry>,
}

#[derive(Debug, Clone, Copy)]
pub struct ProducerExpiry {
    /// How long after its last batch a producer's state is kept.
    pub max_idle_ms: i64,
    /// A producer never forgotten: the delay timer's. Its releases carry their records'
    /// own timestamps, which may be weeks old, and its state in each target partition
    /// is what settles a release a crash interrupted.
    pub keep: i64,
}

#[derive(Debug)]
pub struct ReplicaManager {
    data_dir: PathBuf,
    node_id: i32,
    log_defaults: BTreeMap<String, String>,
    /// Partitions hosted here, by topic name and then index: looked up by `&str` on every
    /// Produce and Fetch, so the hot path neither allocates nor hashes a tuple key. A
    /// topic's map is shared copy-on-write, so that a Fetch naming thousands of
    /// partitions takes it once per topic instead of a reference to each partition.
    partitions: RwLock<HashMap<String, Arc<TopicPartitions>>>,
    /// Views by name: no log of their own, read through their source's partitions.
    views: RwLock<HashMap<String, Arc<View>>>,
    /// Serialises `sync` so two metadata updates never race on directories, and holds
    /// the image the last sync applied: a topic unchanged since then is skipped.
    sync_lock: Mutex<Option<Arc<MetadataImage>>>,
    /// Set by `close_all`, under the sync lock: a log that a metadata change opens after
    /// it (the quorum runs until the broker leaves it) is closed as it opens, so that no
    /// log takes writes after the shutdown's close.
    closed: AtomicBool,
}

/// The partitions of one topic hosted here, by index.
pub type TopicPartitions = HashMap<i32, Arc<Partition>>;

/// A partition to read from: the log's own, or its source's for a view (with the view's
/// filter).
#[derive(Debug, Clone)]
pub struct ReadTarget {
    pub partition: Arc<Partition>,
    pub view: Option<Arc<View>>,
}

/// The partitions reads of a topic go to: its own, or for a view its source's (with the
/// view), as hosted when it was looked up.
#[derive(Debug, Clone)]
pub struct TopicReadTarget {
    pub partitions: Arc<TopicPartitions>,
    pub view: Option<Arc<View>>,
}

const PARTITION_METADATA: &str = "partition.metadata";

fn read_topic_id(dir: &Path) -> Option<Uuid> {
    let text = std::fs::read_to_string(dir.join(PARTITION_METADATA)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("topic_id: "))
        .and_then(|s| Uuid::parse_str(s.trim()).ok())
}

/// Ends the name of a partition directory being deleted, as in Kafka.
const DELETED_SUFFIX: &str = "-delete";

/// Ends the name of a partition directory that no topic here owns, set aside at start
/// and kept for an operator to look at, as in Kafka.
const STRAY_SUFFIX: &str = "-stray";

/// Renames a partition's directory out of the way of a topic re-created under the same
/// name, so that a crash mid-removal never leaves a half-deleted log under the live
/// name. `None`: there was no directory.
fn rename_for_deletion(dir: &Path) -> std::io::Result<Option<PathBuf>> {
    rename_aside(dir, DELETED_SUFFIX)
}

/// Renames `dir` to `<name>.<unique id><suffix>`, Kafka's naming: unique, so a topic
/// deleted twice under one name leaves two directories, not a clash.
fn rename_aside(dir: &Path, suffix: &str) -> std::io::Result<Option<PathBuf>> {
    // Appended, not `with_extension`: a topic name may hold dots ("orders.v1-0").
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{}{suffix}", Uuid::new_v4().simple()));
    let aside = dir.with_file_name(name);
    match std::fs::rename(dir, &aside) {
        Ok(()) => Ok(Some(aside)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The topic and partition a live partition directory's name (`<topic>-<index>`) names;
/// `None` for any other entry of the data directory (the metadata log, `-delete` and
/// `-stray` directories, files).
fn partition_of_dir_name(name: &str) -> Option<(&str, i32)> {
    let (topic, index) = name.rsplit_once('-')?;
    if topic.is_empty() || index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((topic, index.parse().ok()?))
}

/// Syncs the data directory after `what` changed its entries; a failure is logged (the
/// entries are only at risk from a power failure before the next sync).
fn sync_data_dir(data_dir: &Path, what: &str) {
    if let Err(e) = durable::sync_dir(data_dir) {
        tracing::warn!(error = %e, after = what, "could not sync the data directory");
    }
}

/// Whether topic `name` is in `image` as it was in `previous`. Images share the entries
/// of topics no command changed, so this is usually a pointer comparison.
fn unchanged_since(previous: Option<&MetadataImage>, name: &str, image: &MetadataImage) -> bool {
    let (Some(before), Some(now)) = (
        previous.and_then(|p| p.topics.get(name)),
        image.topics.get(name),
    ) else {
        return false;
    };
    Arc::ptr_eq(before, now) || before == now
}

/// Lets go of a deleted partition on the removal thread, so that its segments close
/// there: an unlinked file's blocks are freed when its last descriptor closes, and that
/// is the slow part. Jobs of the partition still queued on `sluice-files` (syncs of
/// sealed segments, segment deletions) hold its files too, so they go first. A Fetch
/// long-polling the partition holds a reference until its wait ends; that is waited for
/// a while, not forever.
fn release_deleted_partition(p: Arc<Partition>) {
    sluice_storage::background::wait_idle();
    let until = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while Arc::strong_count(&p) > 1 && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    drop(p);
}

/// Removes a partition directory renamed for deletion. Freeing its blocks takes 0.6 s
/// per GB on this machine's filesystem (mounted with `discard`), which is why this runs
/// on a background thread and not under the metadata sync that DeleteTopics waits for.
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
            sync_lock: Mutex::new(None),
            closed: AtomicBool::new(false),
        }
    }

    pub fn get(&self, topic: &str, partition: i32) -> Option<Arc<Partition>> {
        // Not through `topic_partitions`: that would count one more reference to the
        // topic's map, a line both cores write, on every Produce.
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .and_then(|t| t.get(&partition))
            .cloned()
    }

    /// The partitions of `topic` hosted here, as they are now.
    pub fn topic_partitions(&self, topic: &str) -> Option<Arc<TopicPartitions>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .cloned()
    }

    /// How many partitions of `topic` are hosted here.
    pub fn partition_count(&self, topic: &str) -> usize {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(topic)
            .map_or(0, |t| t.len())
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
        let t = self.topic_for_read(topic)?;
        Some(ReadTarget {
            partition: t.partitions.get(&partition)?.clone(),
            view: t.view,
        })
    }

    /// The partitions reads of `topic` go to: its own, or for a view its source's.
    pub fn topic_for_read(&self, topic: &str) -> Option<TopicReadTarget> {
        if let Some(partitions) = self.topic_partitions(topic) {
            return Some(TopicReadTarget {
                partitions,
                view: None,
            });
        }
        let view = self.view(topic)?;
        Some(TopicReadTarget {
            partitions: self.topic_partitions(&view.source)?,
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

    /// Each topic's partition map as it is now: one reference per topic, none per
    /// partition, and no sort (periodic work over 10,000 partitions spent 1.3% of a
    /// busy broker's samples sorting them).
    fn topic_maps(&self) -> Vec<Arc<TopicPartitions>> {
        self.partitions
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
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

    /// Brings the hosted partitions in line with the newest metadata image: opens logs
    /// for partitions led here, applies config changes, deletes partitions of topics
    /// that are gone (or were re-created with a new id).
    ///
    /// The image is read only once the sync lock is held. Syncs run from several tasks
    /// (a CreateTopics handler, the task following the metadata log); one that read its
    /// image before another applied a newer one would otherwise go back in time, and
    /// delete the partitions of a topic created in between, with whatever was written
    /// to them.
    pub fn sync_to_latest(
        &self,
        latest: impl FnOnce() -> Arc<MetadataImage>,
    ) -> Result<(), sluice_storage::Error> {
        let mut applied = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        let image = latest();
        let result = self.apply_image(&image, applied.as_deref());
        *applied = result.is_ok().then_some(image);
        result
    }

    /// [`Self::sync_to_latest`] with a given image, for tests that build their own.
    #[cfg(test)]
    pub fn sync(&self, image: &MetadataImage) -> Result<(), sluice_storage::Error> {
        let image = Arc::new(image.clone());
        self.sync_to_latest(|| image)
    }

    /// Applies `image` over `previous` (the image the last successful sync applied);
    /// the caller holds the sync lock.
    ///
    /// Runs on every metadata change (twice per topic created: once from the CreateTopics
    /// handler, once from the task following the log), so it costs one lookup per topic
    /// and, for a topic that changed, a few atomics per partition: no sort, no name
    /// hashed per partition. Creating 100 topics of 100 partitions spent 1.6 s sorting
    /// and comparing names when each sync listed every hosted partition in order.
    fn apply_image(
        &self,
        image: &MetadataImage,
        previous: Option<&MetadataImage>,
    ) -> Result<(), sluice_storage::Error> {
        self.drop_partitions_gone_from(image, previous);
        let mut views = HashMap::new();
        let mut opened = Ok(());
        for topic in image.topics.values() {
            if view::source_of(topic).is_some() {
                // A view hosts nothing; its reads go to its source's partitions.
                if let Some(v) = view::compile(topic) {
                    views.insert(topic.name.clone(), v);
                }
                continue;
            }
            if unchanged_since(previous, &topic.name, image) && self.hosts_all_of(topic) {
                continue;
            }
            opened = self.host_partitions_of(topic);
            if opened.is_err() {
                break;
            }
        }
        let sources: HashSet<&str> = views.values().map(|v| v.source.as_str()).collect();
        for t in self.topic_maps() {
            // A map holds one topic's partitions: its name is looked up once.
            let Some(first) = t.values().next() else {
                continue;
            };
            let has_views = sources.contains(first.topic.as_str());
            for p in t.values() {
                if p.has_views.load(Ordering::Relaxed) != has_views {
                    p.has_views.store(has_views, Ordering::Relaxed);
                }
            }
        }
        *self.views.write().unwrap_or_else(|e| e.into_inner()) = views;
        opened
    }

    /// Drops what the image no longer has (topics deleted, or re-created with a new id):
    /// renamed away now, removed in the background. A topic whose metadata is the same
    /// as in `previous` kept all its partitions then, and so does now.
    fn drop_partitions_gone_from(&self, image: &MetadataImage, previous: Option<&MetadataImage>) {
        let mut gone: Vec<Arc<Partition>> = Vec::new();
        for t in self.topic_maps() {
            let Some(first) = t.values().next() else {
                continue;
            };
            if unchanged_since(previous, &first.topic, image) {
                continue;
            }
            let meta = image.topic(&first.topic);
            gone.extend(
                t.values()
                    .filter(|p| {
                        !meta.is_some_and(|m| {
                            m.id == p.topic_id && (p.index as usize) < m.partitions.len()
                        })
                    })
                    .cloned(),
            );
        }
        if gone.is_empty() {
            return;
        }
        let mut renamed: Vec<(Arc<Partition>, PathBuf)> = Vec::new();
        for p in gone {
            let mut map = self.partitions.write().unwrap_or_else(|e| e.into_inner());
            if let Some(t) = map.get_mut(&p.topic) {
                Arc::make_mut(t).remove(&p.index);
                if t.is_empty() {
                    map.remove(&p.topic);
                }
            }
            drop(map);
            p.retire();
            let dir = self.partition_dir(&p.topic, p.index);
            match rename_for_deletion(&dir) {
                Ok(Some(doomed)) => renamed.push((p.clone(), doomed)),
                Ok(None) => {}
                Err(e) => {
                    // Left under its name: a topic re-created under that name then
                    // refuses to open it (below) rather than take its segments.
                    tracing::error!(dir = %dir.display(), error = %e, "could not rename a deleted partition's directory");
                }
            }
            tracing::info!(topic = %p.topic, partition = p.index, "deleted partition");
        }
        if renamed.is_empty() {
            return;
        }
        // One sync for all the renames: a rename lost in a power failure would bring the
        // directory back under a name no topic uses, never to be removed.
        sync_data_dir(&self.data_dir, "deleting partitions");
        for (p, doomed) in renamed {
            sluice_storage::background::run_removal(move || {
                release_deleted_partition(p);
                remove_deleted_dir(&doomed);
            });
        }
    }

    /// Whether every partition of `topic` placed here is open (one may not be, when its
    /// directory could not be moved out of the way).
    fn hosts_all_of(&self, topic: &TopicMeta) -> bool {
        let placed = topic
            .partitions
            .iter()
            .filter(|pm| pm.replicas.contains(&self.node_id))
            .count();
        self.partition_count(&topic.name) == placed
    }

    /// Opens the logs of `topic`'s partitions led here that are not open yet, and brings
    /// the open ones to the topic's config and leader epochs. What was opened is hosted
    /// even when a later partition fails to open.
    fn host_partitions_of(&self, topic: &TopicMeta) -> Result<(), sluice_storage::Error> {
        let config = self.log_config(topic);
        let hosted = self.topic_partitions(&topic.name);
        let mut new = Vec::new();
        // Directories given a `partition.metadata` (created, not reopened).
        let mut written = Vec::new();
        let mut result = Ok(());
        for pm in &topic.partitions {
            if !pm.replicas.contains(&self.node_id) {
                continue;
            }
            if let Some(p) = hosted.as_ref().and_then(|t| t.get(&pm.partition)) {
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
            match self.open_partition(topic, pm, &config, &mut written) {
                Ok(Some(p)) => new.push(p),
                Ok(None) => {}
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        // Not shared while it is changed: a shared map would be copied.
        drop(hosted);
        if !written.is_empty() {
            self.sync_created_dirs(written);
        }
        if !new.is_empty() {
            let mut map = self.partitions.write().unwrap_or_else(|e| e.into_inner());
            let t = Arc::make_mut(map.entry(topic.name.clone()).or_default());
            for p in new {
                t.insert(p.index, p);
            }
        }
        result
    }

    /// Makes new partitions' directories durable on `sluice-files`, not on the thread
    /// creating them: `partition.metadata`, each directory, then the data directory that
    /// names them. Two device flushes per partition took most of a CreateTopics' time
    /// (1.0 ms per partition on this machine). Until they run, a power failure can lose
    /// a new partition's directory, or leave it without its `partition.metadata`, which
    /// the next start writes again; Kafka writes that file in the background too.
    fn sync_created_dirs(&self, dirs: Vec<PathBuf>) {
        let data_dir = self.data_dir.clone();
        sluice_storage::background::run(move || {
            for dir in &dirs {
                if let Err(e) = durable::sync_written(&dir.join(PARTITION_METADATA)) {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not sync a new partition's directory");
                }
            }
            sync_data_dir(&data_dir, "creating partitions");
        });
    }

    /// Opens one partition's log, creating it if needed; a directory given its
    /// `partition.metadata` is added to `written`. `None`: its directory belongs to a
    /// deleted topic of the same name and could not be moved away.
    fn open_partition(
        &self,
        topic: &TopicMeta,
        pm: &PartitionMeta,
        config: &LogConfig,
        written: &mut Vec<PathBuf>,
    ) -> Result<Option<Arc<Partition>>, sluice_storage::Error> {
        let dir = self.partition_dir(&topic.name, pm.partition);
        if dir.exists() && read_topic_id(&dir).is_some_and(|id| id != topic.id) {
            match rename_for_deletion(&dir) {
                Ok(Some(doomed)) => {
                    sluice_storage::background::run_removal(move || remove_deleted_dir(&doomed))
                }
                Ok(None) => {}
                Err(e) => {
                    // Not opened: the new topic must not take the old segments. The other
                    // partitions still sync.
                    tracing::error!(dir = %dir.display(), error = %e, "could not rename a replaced partition's directory; not opening it");
                    return Ok(None);
                }
            }
        }
        let mut log = PartitionLog::open(&dir, config.clone(), now_ms())?;
        if self.closed.load(Ordering::Relaxed) {
            log.close(now_ms())?;
        }
        if read_topic_id(&dir).is_none() {
            let text = format!("version: 0\ntopic_id: {}\n", topic.id);
            durable::write_unsynced(&dir.join(PARTITION_METADATA), text.as_bytes()).map_err(
                |source| sluice_storage::Error::Io {
                    op: "writing partition.metadata",
                    source,
                },
            )?;
            written.push(dir);
        }
        log.assign_epoch(pm.leader_epoch);
        let hw = log.high_watermark();
        let (hw_tx, _) = watch::channel(hw);
        Ok(Some(Arc::new(Partition {
            topic: topic.name.clone(),
            index: pm.partition,
            topic_id: topic.id,
            log: Mutex::new(log),
            leader_epoch: pm.leader_epoch.into(),
            hw_tx,
            summaries: SummaryCache::default(),
            has_views: AtomicBool::new(false),
            retired: AtomicBool::new(false),
        })))
    }

    /// Sets aside the partition directories the metadata image does not place here, as
    /// Kafka marks stray logs at start: a topic deletion committed to the metadata log
    /// whose rename a kill cut short leaves its directory under the live name, where it
    /// would hold its disk forever. Renamed `-stray`, not removed (Kafka keeps them too),
    /// with a warning at every start until an operator deletes them.
    ///
    /// Run after the first sync at start, whose image holds every topic this node opened
    /// a directory for: a directory is created only after its topic's entry is applied
    /// here, and the committed index is saved before that apply, so a restarted node
    /// re-applies it before it opens its logs.
    pub fn set_aside_stray_dirs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        // Listed in full first: a directory renamed while the listing runs may be listed
        // again under its new name (POSIX leaves it open).
        let entries: Vec<std::fs::DirEntry> = entries.flatten().collect();
        let mut renamed = false;
        for e in entries {
            let name = e.file_name();
            let name = name.to_string_lossy();
            let dir = e.path();
            if name.ends_with(STRAY_SUFFIX) {
                tracing::warn!(dir = %dir.display(), "stray partition directory; delete it when it is not needed");
                continue;
            }
            let Some((topic, partition)) = partition_of_dir_name(&name) else {
                continue;
            };
            // Only what a partition's log holds: the consumer-offsets log has no
            // `partition.metadata`, nor has any directory an operator put here.
            if self.get(topic, partition).is_some() || !dir.join(PARTITION_METADATA).is_file() {
                continue;
            }
            match rename_aside(&dir, STRAY_SUFFIX) {
                Ok(Some(aside)) => {
                    renamed = true;
                    tracing::warn!(dir = %dir.display(), renamed = %aside.display(),
                        "partition directory of no topic placed here, set aside as stray");
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(dir = %dir.display(), error = %e, "could not set aside a stray partition directory");
                }
            }
        }
        if renamed {
            sync_data_dir(&self.data_dir, "setting aside stray partitions");
        }
    }

    /// Queues the removal of directories whose deletion a stop cut short.
    pub fn clean_deleted_dirs(&self) {
        let Ok(entries) = std::fs::read_dir(&self.data_dir) else {
            return;
        };
        for e in entries.flatten() {
            if e.file_name().to_string_lossy().ends_with(DELETED_SUFFIX) {
                let dir = e.path();
                sluice_storage::background::run_removal(move || remove_deleted_dir(&dir));
            }
        }
    }

    /// Periodic work: time-based flushes on every pass, and the chores that are due.
    pub fn housekeeping(&self, chores: Chores) {
        let now = now_ms();
        let mut expired = 0;
        for p in self.topic_maps().iter().flat_map(|t| t.values()) {
            let mut log = p.lock();
            if chores.flush {
                if let Err(e) = log.flush_if_due(now) {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "flush failed");
                }
            }
            if chores.retention {
                if let Err(e) = log.enforce_retention(now) {
                    tracing::error!(topic = %p.topic, partition = p.index, error = %e, "retention failed");
                }
            }
            if let Some(x) = chores.expire_producers {
                expired += log.expire_producers(now, x.max_idle_ms, |id| id == x.keep);
            }
        }
        if expired > 0 {
            tracing::debug!(expired, "forgot idle producers' state");
        }
    }

    /// Flushes and closes every log (clean shutdown); a log opened after it is closed at
    /// once.
    pub fn close_all(&self) {
        let _no_sync = self.sync_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.closed.store(true, Ordering::Relaxed);
        let now = now_ms();
        for p in self.all() {
            let mut log = p.lock();
            if let Err(e) = log.close(now) {
                tracing::error!(topic = %p.topic, partition = p.index, error = %e, "closing the log on shutdown failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_images;
    use sluice_raft::MetadataCommand;

    /// Each step of a topic's life reaches the hosted partitions through syncs that skip
    /// what did not change: a repeated image keeps the same logs, a grown topic opens
    /// only its new partitions, a config change reaches the open logs, a deleted topic's
    /// directories are renamed away, and a re-created one starts empty.
    #[test]
    fn syncs_apply_each_change_and_keep_what_did_not_change() {
        let dir = tempfile::tempdir().unwrap();
        let replicas = ReplicaManager::new(dir.path(), 1, BTreeMap::new());
        let apply = |image: &MetadataImage, cmd: MetadataCommand| {
            let mut next = image.clone();
            next.apply(&cmd);
            replicas.sync(&next).unwrap();
            next
        };
        let created =
            test_images::with_topic(&test_images::one_broker(), "t", 7, 2, BTreeMap::new());
        replicas.sync(&created).unwrap();
        let first = replicas.get("t", 0).expect("hosted");
        sluice_storage::background::wait_idle();
        assert_eq!(
            read_topic_id(&dir.path().join("t-1")),
            Some(Uuid::from_u128(7))
        );

        replicas.sync(&created).unwrap();
        assert!(Arc::ptr_eq(&first, &replicas.get("t", 0).unwrap()));

        let grown = apply(
            &created,
            MetadataCommand::CreatePartitions {
                name: "t".into(),
                new_total: 3,
            },
        );
        assert_eq!(replicas.partition_count("t"), 3);
        assert!(Arc::ptr_eq(&first, &replicas.get("t", 0).unwrap()));

        let set = BTreeMap::from([("retention.ms".to_string(), "1234".to_string())]);
        let altered = apply(
            &grown,
            MetadataCommand::AlterTopicConfigs {
                name: "t".into(),
                set,
                delete: vec![],
            },
        );
        for i in 0..3 {
            assert_eq!(
                replicas.get("t", i).unwrap().lock().config().retention_ms,
                1234
            );
        }

        let deleted = apply(&altered, MetadataCommand::DeleteTopic { name: "t".into() });
        assert_eq!(replicas.partition_count("t"), 0);
        assert!(!dir.path().join("t-0").exists(), "renamed for deletion");

        let recreated = test_images::with_topic(&deleted, "t", 8, 1, BTreeMap::new());
        replicas.sync(&recreated).unwrap();
        let again = replicas.get("t", 0).expect("hosted");
        assert!(!Arc::ptr_eq(&first, &again));
        assert_eq!(again.topic_id, Uuid::from_u128(8));
        assert_eq!(again.lock().log_end_offset(), 0);
    }

    /// At start, a directory named like a partition and holding a `partition.metadata`,
    /// but of no partition placed here, is renamed `-stray` with what it holds; hosted
    /// partitions, directories of no partition, and earlier strays stay as they are.
    #[test]
    fn directories_of_no_hosted_partition_are_set_aside_once() {
        let dir = tempfile::tempdir().unwrap();
        let replicas = ReplicaManager::new(dir.path(), 1, BTreeMap::new());
        let image =
            test_images::with_topic(&test_images::one_broker(), "t-x", 7, 2, BTreeMap::new());
        replicas.sync(&image).unwrap();
        sluice_storage::background::wait_idle();
        let metadata = std::fs::read(dir.path().join("t-x-0").join(PARTITION_METADATA)).unwrap();
        for stray in ["gone-0", "t-x-2"] {
            let d = dir.path().join(stray);
            std::fs::create_dir(&d).unwrap();
            std::fs::write(d.join(PARTITION_METADATA), &metadata).unwrap();
            std::fs::write(d.join("00000000000000000000.log"), b"records").unwrap();
        }
        for other in ["__consumer_offsets-0", "loose-3"] {
            std::fs::create_dir(dir.path().join(other)).unwrap();
        }

        replicas.set_aside_stray_dirs();
        let names = |d: &Path| {
            let mut v: Vec<String> = std::fs::read_dir(d)
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect();
            v.sort();
            v
        };
        let after = names(dir.path());
        for kept in ["t-x-0", "t-x-1", "__consumer_offsets-0", "loose-3"] {
            assert!(after.iter().any(|n| n == kept), "{kept}: {after:?}");
        }
        for stray in ["gone-0", "t-x-2"] {
            let aside: Vec<&String> = after
                .iter()
                .filter(|n| n.starts_with(&format!("{stray}.")) && n.ends_with(STRAY_SUFFIX))
                .collect();
            assert_eq!(aside.len(), 1, "{stray}: {after:?}");
            assert!(!after.iter().any(|n| n == stray), "{after:?}");
            assert_eq!(
                names(&dir.path().join(aside[0])),
                ["00000000000000000000.log", PARTITION_METADATA]
            );
        }
        assert!(replicas.get("t-x", 0).is_some());

        replicas.set_aside_stray_dirs();
        assert_eq!(names(dir.path()), after, "a second start renames nothing");
    }

    #[test]
    fn partition_directory_names_parse_as_kafka_names_them() {
        assert_eq!(partition_of_dir_name("orders-0"), Some(("orders", 0)));
        assert_eq!(
            partition_of_dir_name("my-topic.v1-12"),
            Some(("my-topic.v1", 12))
        );
        for other in [
            "__cluster_metadata",
            "__delay",
            "t-0.0123456789abcdef-delete",
            "t-0.0123456789abcdef-stray",
            "-0",
            "t-",
            "t-+1",
            "t-99999999999",
        ] {
            assert_eq!(partition_of_dir_name(other), None, "{other}");
        }
    }

    /// After `close_all` every log refuses writes, those a later metadata change opens
    /// included (the quorum still applies changes while the broker shuts down).
    #[test]
    fn no_log_takes_a_write_after_close_all() {
        let dir = tempfile::tempdir().unwrap();
        let replicas = ReplicaManager::new(dir.path(), 1, BTreeMap::new());
        let one = test_images::with_topic(&test_images::one_broker(), "t", 7, 1, BTreeMap::new());
        replicas.sync(&one).unwrap();
        replicas.close_all();
        let two = test_images::with_topic(&one, "u", 8, 1, BTreeMap::new());
        replicas.sync(&two).unwrap();
        let batch = sluice_storage::batch::build_batch(0, 0, &[b"v"], (-1, -1, -1));
        for topic in ["t", "u"] {
            let part = replicas.get(topic, 0).expect("hosted");
            let appended = part.lock().append_as_leader(&batch, 0, 0);
            assert!(
                matches!(appended, Err(sluice_storage::Error::Closed)),
                "{topic}: {appended:?}"
            );
        }
        sluice_storage::background::wait_idle();
    }

    /// Two tasks sync while topics are created. A sync that applied an image older than
    /// one already applied would delete the newest topic's partition (and open an empty
    /// one in its place on the next sync): every partition must stay the one first opened.
    #[test]
    fn concurrent_syncs_never_go_back_to_an_older_image() {
        let dir = tempfile::tempdir().unwrap();
        let replicas = Arc::new(ReplicaManager::new(dir.path(), 1, BTreeMap::new()));
        let latest = Arc::new(Mutex::new(Arc::new(test_images::one_broker())));
        let current = {
            let latest = latest.clone();
            move || latest.lock().unwrap().clone()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let followers: Vec<_> = (0..2)
            .map(|_| {
                let (replicas, current, stop) = (replicas.clone(), current.clone(), stop.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        replicas.sync_to_latest(current.clone()).unwrap();
                    }
                })
            })
            .collect();
        let mut opened = Vec::new();
        for i in 0..40u128 {
            let name = format!("t{i}");
            let next = test_images::with_topic(&current(), &name, i + 1, 1, BTreeMap::new());
            *latest.lock().unwrap() = Arc::new(next);
            replicas.sync_to_latest(current.clone()).unwrap();
            opened.push(replicas.get(&name, 0).expect("hosted once synced"));
        }
        stop.store(true, Ordering::Relaxed);
        for f in followers {
            f.join().unwrap();
        }
        for p in &opened {
            let now = replicas.get(&p.topic, 0).expect("still hosted");
            assert!(
                Arc::ptr_eq(p, &now),
                "{} was deleted and re-opened",
                p.topic
            );
        }
    }
}
