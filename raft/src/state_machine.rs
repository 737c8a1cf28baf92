//! The state machine (openraft's `RaftStateMachine`): a [`MetadataImage`] in memory, made
//! durable by snapshots.
//!
//! On-disk contract: `snapshot.json` in the quorum directory holds `{ "meta": SnapshotMeta,
//! "image": MetadataImage }` and is replaced atomically. Applying an entry does not touch the
//! disk: on restart the image is rebuilt from the snapshot, and openraft re-applies the log
//! entries after it (up to the persisted committed index at startup, the rest once a leader
//! commits them). The snapshot bytes sent to followers are the JSON of the image alone; the
//! metadata travels separately in `InstallSnapshot`.
//!
//! Concurrency: `apply` runs on openraft's state-machine task; snapshot builds run on their own
//! task. Both go through `SmShared`: the applied state is under a std mutex (never held across
//! an await), and snapshot file writes are serialized by an async mutex.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    AnyError, EntryPayload, ErrorSubject, ErrorVerb, RaftSnapshotBuilder, StorageIOError,
};
use serde::{Deserialize, Serialize};
use sluice_storage::durable;
use tokio::sync::watch;

use crate::command::CommandOutcome;
use crate::error::Error;
use crate::image::MetadataImage;
use crate::types::{Entry, LogId, SnapshotMeta, StorageError, StoredMembership, TypeConfig};

const SNAPSHOT_FILE: &str = "snapshot.json";

#[derive(Debug, Serialize, Deserialize)]
struct SnapshotFile {
    meta: SnapshotMeta,
    image: MetadataImage,
}

#[derive(Debug, Clone)]
struct StoredSnapshot {
    meta: SnapshotMeta,
    /// JSON of the image, as sent to followers.
    data: Arc<Vec<u8>>,
}

#[derive(Debug)]
struct Applied {
    last_applied: Option<LogId>,
    membership: StoredMembership,
    image: Arc<MetadataImage>,
}

/// State shared between the state machine, its snapshot builders and `MetadataStore`.
#[derive(Debug)]
pub(crate) struct SmShared {
    dir: PathBuf,
    applied: Mutex<Applied>,
    image_tx: watch::Sender<Arc<MetadataImage>>,
    /// The current snapshot. Holding this lock also serializes writes of `snapshot.json`.
    snapshot: tokio::sync::Mutex<Option<StoredSnapshot>>,
    snapshot_seq: AtomicU64,
}

impl SmShared {
    pub(crate) fn image(&self) -> Arc<MetadataImage> {
        self.image_tx.borrow().clone()
    }

    pub(crate) fn subscribe(&self) -> watch::Receiver<Arc<MetadataImage>> {
        self.image_tx.subscribe()
    }

    fn applied(&self) -> MutexGuard<'_, Applied> {
        self.applied
            .lock()
            .expect("state machine mutex poisoned by a panic")
    }

    /// Makes `snapshot` the current one, persisting it first. A built snapshot (`replace_newer`
    /// false) is not stored when a newer one is already current (a concurrent install won);
    /// an installed one always is, since the state machine is being replaced by it.
    async fn store_snapshot(
        &self,
        snapshot: &StoredSnapshot,
        image: &MetadataImage,
        replace_newer: bool,
    ) -> Result<(), StorageError> {
        let mut current = self.snapshot.lock().await;
        let newer_is_current = current
            .as_ref()
            .is_some_and(|c| c.meta.last_log_id > snapshot.meta.last_log_id);
        if newer_is_current && !replace_newer {
            return Ok(());
        }
        let file = SnapshotFile {
            meta: snapshot.meta.clone(),
            image: image.clone(),
        };
        let bytes = serde_json::to_vec(&file).expect("snapshot types always serialize");
        let path = self.dir.join(SNAPSHOT_FILE);
        tokio::task::spawn_blocking(move || durable::write_atomically(&path, &bytes))
            .await
            .unwrap_or_else(|join_error| Err(std::io::Error::other(join_error)))
            .map_err(|e| snapshot_err(&snapshot.meta, &e))?;
        *current = Some(snapshot.clone());
        Ok(())
    }
}

fn snapshot_err(meta: &SnapshotMeta, e: &dyn std::error::Error) -> StorageError {
    StorageIOError::new(
        ErrorSubject::Snapshot(Some(meta.signature())),
        ErrorVerb::Write,
        AnyError::error(e),
    )
    .into()
}

/// The state machine handed to openraft.
#[derive(Debug)]
pub(crate) struct StateMachineStore {
    shared: Arc<SmShared>,
}

/// Builds a snapshot of the state at the time it was created.
#[derive(Debug)]
pub(crate) struct SnapshotBuilder {
    shared: Arc<SmShared>,
}

impl StateMachineStore {
    /// Loads `snapshot.json` from `dir`, if any (blocking I/O).
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(SNAPSHOT_FILE);
        let stored: Option<SnapshotFile> = match durable::read_optional(&path)
            .map_err(|e| Error::io(&path, e))?
        {
            None => None,
            Some(bytes) => Some(
                serde_json::from_slice(&bytes).map_err(|e| Error::corrupt(&path, e.to_string()))?,
            ),
        };
        let (applied, snapshot) = match stored {
            None => (
                Applied {
                    last_applied: None,
                    membership: StoredMembership::default(),
                    image: Arc::new(MetadataImage::default()),
                },
                None,
            ),
            Some(SnapshotFile { meta, image }) => {
                tracing::info!(last_log_id = ?meta.last_log_id, "loaded metadata snapshot");
                let data = Arc::new(serde_json::to_vec(&image).expect("image always serializes"));
                let applied = Applied {
                    last_applied: meta.last_log_id,
                    membership: meta.last_membership.clone(),
                    image: Arc::new(image),
                };
                (applied, Some(StoredSnapshot { meta, data }))
            }
        };
        let (image_tx, _) = watch::channel(applied.image.clone());
        let shared = SmShared {
            dir: dir.to_owned(),
            applied: Mutex::new(applied),
            image_tx,
            snapshot: tokio::sync::Mutex::new(snapshot),
            snapshot_seq: AtomicU64::new(0),
        };
        Ok(StateMachineStore {
            shared: Arc::new(shared),
        })
    }

    pub(crate) fn shared(&self) -> Arc<SmShared> {
        self.shared.clone()
    }
}

/// Applies one entry to `applied`, returning the outcome for the proposer.
fn apply_entry(applied: &mut Applied, entry: &Entry) -> CommandOutcome {
    assert!(
        applied
            .last_applied
            .is_none_or(|last| last.index < entry.log_id.index),
        "entries applied out of order: {:?} after {:?}",
        entry.log_id,
        applied.last_applied
    );
    applied.last_applied = Some(entry.log_id);
    let image = Arc::make_mut(&mut applied.image);
    // The initializing membership entry (term 0) was written by no leader.
    if entry.log_id.leader_id.term > 0 {
        image.controller_id = i32::try_from(entry.log_id.leader_id.node_id).unwrap_or(-1);
    }
    match &entry.payload {
        EntryPayload::Blank => CommandOutcome::Ok,
        EntryPayload::Normal(cmd) => image.apply(cmd),
        EntryPayload::Membership(membership) => {
            applied.membership = StoredMembership::new(Some(entry.log_id), membership.clone());
            CommandOutcome::Ok
        }
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId>, StoredMembership), StorageError> {
        let applied = self.shared.applied();
        Ok((applied.last_applied, applied.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<CommandOutcome>, StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let mut applied = self.shared.applied();
        let outcomes: Vec<CommandOutcome> = entries
            .into_iter()
            .map(|e| apply_entry(&mut applied, &e))
            .collect();
        self.shared.image_tx.send_replace(applied.image.clone());
        Ok(outcomes)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        SnapshotBuilder {
            shared: self.shared.clone(),
        }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &SnapshotMeta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError> {
        tracing::info!(last_log_id = ?meta.last_log_id, "installing metadata snapshot from the leader");
        let data = snapshot.into_inner();
        let image: MetadataImage = serde_json::from_slice(&data).map_err(|e| {
            StorageError::from(StorageIOError::new(
                ErrorSubject::Snapshot(Some(meta.signature())),
                ErrorVerb::Read,
                AnyError::new(&e),
            ))
        })?;
        let stored = StoredSnapshot {
            meta: meta.clone(),
            data: Arc::new(data),
        };
        self.shared.store_snapshot(&stored, &image, true).await?;
        let mut applied = self.shared.applied();
        applied.last_applied = meta.last_log_id;
        applied.membership = meta.last_membership.clone();
        applied.image = Arc::new(image);
        self.shared.image_tx.send_replace(applied.image.clone());
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError> {
        let current = self.shared.snapshot.lock().await;
        Ok(current.as_ref().map(|s| Snapshot {
            meta: s.meta.clone(),
            snapshot: Box::new(Cursor::new(s.data.as_ref().clone())),
        }))
    }
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError> {
        let (last_applied, membership, image) = {
            let applied = self.shared.applied();
            (
                applied.last_applied,
                applied.membership.clone(),
                applied.image.clone(),
            )
        };
        let seq = self.shared.snapshot_seq.fetch_add(1, Ordering::Relaxed);
        let snapshot_id = match last_applied {
            Some(id) => format!(
                "{}-{}-{}-{seq}",
                id.leader_id.term, id.leader_id.node_id, id.index
            ),
            None => format!("empty-{seq}"),
        };
        let meta = SnapshotMeta {
            last_log_id: last_applied,
            last_membership: membership,
            snapshot_id,
        };
        let data = Arc::new(serde_json::to_vec(&*image).expect("image always serializes"));
        let stored = StoredSnapshot { meta, data };
        self.shared.store_snapshot(&stored, &image, false).await?;
        tracing::info!(last_log_id = ?stored.meta.last_log_id, bytes = stored.data.len(), "built metadata snapshot");
        Ok(Snapshot {
            meta: stored.meta,
            snapshot: Box::new(Cursor::new(stored.data.as_ref().clone())),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use openraft::testing::log_id;
    use openraft::{Membership, RaftSnapshotBuilder};

    use super::*;
    use crate::command::MetadataCommand;

    fn normal(index: u64, cmd: MetadataCommand) -> Entry {
        openraft::Entry {
            log_id: log_id(2, 7, index),
            payload: EntryPayload::Normal(cmd),
        }
    }

    #[tokio::test]
    async fn apply_publishes_image_and_snapshot_survives_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut sm = StateMachineStore::open(dir.path()).expect("open");
        let mut images = sm.shared().subscribe();
        let membership = Membership::new(vec![[7u64].into()], None);
        let entries = vec![
            openraft::Entry {
                log_id: log_id(0, 0, 0),
                payload: EntryPayload::Membership(membership.clone()),
            },
            normal(
                1,
                MetadataCommand::InitializeCluster {
                    cluster_id: "abc".into(),
                },
            ),
            normal(2, MetadataCommand::AllocateProducerIds { count: 5 }),
            normal(
                3,
                MetadataCommand::DeleteTopic {
                    name: "missing".into(),
                },
            ),
        ];
        let outcomes = sm.apply(entries).await.expect("apply");
        assert_eq!(outcomes.len(), 4);
        assert_eq!(
            outcomes[2],
            CommandOutcome::ProducerIdBlock { first: 0, count: 5 }
        );
        assert!(matches!(outcomes[3], CommandOutcome::Rejected(_)));
        assert!(images.has_changed().expect("sender alive"));
        let image = images.borrow_and_update().clone();
        assert_eq!(image.cluster_id, "abc");
        assert_eq!(image.controller_id, 7);
        assert_eq!(image.next_producer_id, 5);

        let snapshot = sm
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");
        assert_eq!(snapshot.meta.last_log_id, Some(log_id(2, 7, 3)));
        drop(sm);

        let mut sm = StateMachineStore::open(dir.path()).expect("reopen");
        let (last_applied, stored_membership) = sm.applied_state().await.expect("applied");
        assert_eq!(last_applied, Some(log_id(2, 7, 3)));
        assert_eq!(stored_membership.membership(), &membership);
        assert_eq!(*sm.shared().image(), *image);
        let current = sm
            .get_current_snapshot()
            .await
            .expect("current")
            .expect("present");
        assert_eq!(current.meta, snapshot.meta);
    }

    #[tokio::test]
    async fn install_snapshot_replaces_state() {
        let leader_dir = tempfile::tempdir().expect("tempdir");
        let mut leader = StateMachineStore::open(leader_dir.path()).expect("open");
        let register = MetadataCommand::RegisterBroker {
            node_id: 1,
            host: "h".into(),
            port: 9092,
            rack: None,
        };
        let create = MetadataCommand::CreateTopic {
            name: "t".into(),
            id: uuid::Uuid::new_v4(),
            partitions: 2,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        leader
            .apply([normal(1, register), normal(2, create)])
            .await
            .expect("apply");
        let snapshot = leader
            .get_snapshot_builder()
            .await
            .build_snapshot()
            .await
            .expect("build");

        let follower_dir = tempfile::tempdir().expect("tempdir");
        let mut follower = StateMachineStore::open(follower_dir.path()).expect("open");
        let mut receiving = follower.begin_receiving_snapshot().await.expect("begin");
        *receiving = *snapshot.snapshot;
        follower
            .install_snapshot(&snapshot.meta, receiving)
            .await
            .expect("install");
        assert_eq!(*follower.shared().image(), *leader.shared().image());
        drop(follower);
        let follower = StateMachineStore::open(follower_dir.path()).expect("reopen");
        assert_eq!(*follower.shared().image(), *leader.shared().image());
    }
}
