//! Tests that need the crate's internals: openraft's storage conformance suite over our log
//! store and state machine, and snapshot paths driven through the openraft handle.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::time::Duration;

use openraft::testing::{StoreBuilder, Suite};
use tempfile::TempDir;

use crate::command::{CommandOutcome, MetadataCommand};
use crate::log_store::LogStore;
use crate::state_machine::StateMachineStore;
use crate::store::{MetadataStore, RaftConfig};
use crate::types::{StorageError, TypeConfig};

struct DiskStoreBuilder;

impl StoreBuilder<TypeConfig, LogStore, StateMachineStore, TempDir> for DiskStoreBuilder {
    async fn build(&self) -> Result<(TempDir, LogStore, StateMachineStore), StorageError> {
        let dir = tempfile::tempdir().expect("tempdir");
        let log_store = LogStore::open(dir.path()).expect("open log store");
        let sm = StateMachineStore::open(dir.path()).expect("open state machine");
        Ok((dir, log_store, sm))
    }
}

#[test]
fn openraft_storage_suite() {
    Suite::test_all(DiskStoreBuilder).expect("storage suite");
}

const WAIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

async fn allocate(store: &MetadataStore, count: i64) -> i64 {
    match store
        .propose(MetadataCommand::AllocateProducerIds { count })
        .await
    {
        Ok(CommandOutcome::ProducerIdBlock { first, .. }) => first,
        other => panic!("unexpected outcome {other:?}"),
    }
}

/// Triggers a snapshot on `store` and waits until it covers `index`.
async fn snapshot_at_least(store: &MetadataStore, index: u64) {
    store
        .raft()
        .trigger()
        .snapshot()
        .await
        .expect("trigger snapshot");
    let mut metrics = store.raft().metrics();
    within("snapshot", async {
        loop {
            if metrics
                .borrow_and_update()
                .snapshot
                .is_some_and(|s| s.index >= index)
            {
                return;
            }
            metrics.changed().await.expect("raft alive");
        }
    })
    .await;
}

fn last_applied_index(store: &MetadataStore) -> u64 {
    store
        .raft()
        .metrics()
        .borrow()
        .last_applied
        .expect("something applied")
        .index
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_from_snapshot_plus_log_tail() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = RaftConfig {
        node_id: 1,
        dir: dir.path().to_owned(),
        raft_addr: "127.0.0.1:0".into(),
        voters: BTreeMap::from([(1, "127.0.0.1:0".to_owned())]),
        cluster_id: None,
    };
    let store = within("open", MetadataStore::open(config.clone()))
        .await
        .expect("open");
    for _ in 0..10 {
        allocate(&store, 7).await;
    }
    let applied = last_applied_index(&store);
    snapshot_at_least(&store, applied).await;
    store
        .raft()
        .trigger()
        .purge_log(applied)
        .await
        .expect("purge");
    for _ in 0..5 {
        allocate(&store, 7).await;
    }
    let before = store.image();
    store.shutdown().await.expect("shutdown");
    assert!(dir.path().join("snapshot.json").exists());

    let store = within("reopen", MetadataStore::open(config))
        .await
        .expect("reopen");
    assert_eq!(*store.image(), *before);
    assert_eq!(allocate(&store, 1).await, 15 * 7);
    store.shutdown().await.expect("shutdown");
}

fn member(node_id: u64, dir: &Path, voters: &BTreeMap<u64, String>) -> RaftConfig {
    RaftConfig {
        node_id,
        dir: dir.join(format!("node{node_id}")),
        raft_addr: voters[&node_id].clone(),
        voters: voters.clone(),
        cluster_id: None,
    }
}

/// A follower that was down while the leader snapshotted and purged its log can only catch up
/// through `install_snapshot` over the network.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lagging_follower_catches_up_by_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    let voters: BTreeMap<u64, String> = (1..=3)
        .zip(
            listeners
                .iter()
                .map(|l| l.local_addr().expect("addr").to_string()),
        )
        .collect();
    drop(listeners);

    let (a, b, c) = within("cluster formation", async {
        tokio::join!(
            MetadataStore::open(member(1, dir.path(), &voters)),
            MetadataStore::open(member(2, dir.path(), &voters)),
            MetadataStore::open(member(3, dir.path(), &voters)),
        )
    })
    .await;
    let stores = [a.expect("open 1"), b.expect("open 2"), c.expect("open 3")];
    let leader_id = stores[0].leader().expect("leader");
    let leader = &stores[(leader_id - 1) as usize];
    let lagging = stores
        .iter()
        .find(|s| s.node_id() != leader_id)
        .expect("a follower");
    let lagging_id = lagging.node_id();
    lagging.shutdown().await.expect("shutdown follower");

    for _ in 0..20 {
        allocate(leader, 3).await;
    }
    // DescribeQuorum's view: every voter, the stopped one behind the leader.
    let q = leader.quorum_state();
    assert_eq!((q.node_id, q.leader), (leader_id, Some(leader_id)));
    assert_eq!(q.voters.iter().map(|v| v.0).collect::<Vec<_>>(), [1, 2, 3]);
    assert!(q.observers.is_empty());
    let end_of =
        |q: &crate::QuorumState, id| q.voters.iter().find(|v| v.0 == id).expect("a voter").1;
    let leader_end = end_of(&q, leader_id);
    assert!(end_of(&q, lagging_id) < leader_end, "{q:?}");
    assert!(
        q.high_watermark > end_of(&q, lagging_id) && q.high_watermark <= leader_end,
        "{q:?}"
    );
    let applied = last_applied_index(leader);
    snapshot_at_least(leader, applied).await;
    leader
        .raft()
        .trigger()
        .purge_log(applied)
        .await
        .expect("purge");
    let mut metrics = leader.raft().metrics();
    within("purge", async {
        loop {
            if metrics
                .borrow_and_update()
                .purged
                .is_some_and(|p| p.index >= applied)
            {
                return;
            }
            metrics.changed().await.expect("raft alive");
        }
    })
    .await;

    let rejoined = within(
        "rejoin",
        MetadataStore::open(member(lagging_id, dir.path(), &voters)),
    )
    .await
    .expect("reopen follower");
    let expected = leader.image();
    let mut images = rejoined.subscribe();
    within("snapshot install", async {
        loop {
            if images.borrow_and_update().next_producer_id == expected.next_producer_id {
                return;
            }
            images.changed().await.expect("sender alive");
        }
    })
    .await;
    assert_eq!(rejoined.image().cluster_id, expected.cluster_id);
    within("the leader sees the follower caught up", async {
        loop {
            let q = leader.quorum_state();
            if q.voters.iter().all(|v| v.1 == end_of(&q, leader_id)) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert_eq!(rejoined.quorum_state().leader, Some(leader_id));
    assert!(dir
        .path()
        .join(format!("node{lagging_id}"))
        .join("snapshot.json")
        .exists());

    rejoined.shutdown().await.expect("shutdown");
    for store in stores.iter().filter(|s| s.node_id() != lagging_id) {
        store.shutdown().await.expect("shutdown");
    }
}
