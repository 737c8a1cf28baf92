//! End-to-end tests of `MetadataStore` through its public API only: a single voter across
//! restarts, and a three-voter cluster on loopback losing its leader.

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use sluice_raft::{
    CommandOutcome, Error, MetadataCommand, MetadataError, MetadataImage, MetadataStore, RaftConfig,
};
use uuid::Uuid;

const WAIT: Duration = Duration::from_secs(20);

async fn within<T>(what: &str, fut: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, fut)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

fn single_voter(dir: &Path, cluster_id: Option<&str>) -> RaftConfig {
    RaftConfig {
        node_id: 1,
        dir: dir.to_owned(),
        // A single voter never dials its peers, so any free port will do.
        raft_addr: "127.0.0.1:0".into(),
        voters: BTreeMap::from([(1, "127.0.0.1:0".to_owned())]),
        cluster_id: cluster_id.map(str::to_owned),
    }
}

fn register(node_id: i32) -> MetadataCommand {
    MetadataCommand::RegisterBroker {
        node_id,
        host: "127.0.0.1".into(),
        port: 9092 + node_id,
        rack: None,
    }
}

fn create_topic(name: &str, partitions: i32, replication_factor: i16) -> MetadataCommand {
    MetadataCommand::CreateTopic {
        name: name.into(),
        id: Uuid::new_v4(),
        partitions,
        replication_factor,
        configs: BTreeMap::new(),
    }
}

async fn allocate(store: &MetadataStore, count: i64) -> i64 {
    match store
        .propose(MetadataCommand::AllocateProducerIds { count })
        .await
    {
        Ok(CommandOutcome::ProducerIdBlock { first, count: got }) => {
            assert_eq!(got, count);
            first
        }
        other => panic!("unexpected outcome {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_voter_state_survives_restart() {
    let dir = tempfile::tempdir().expect("tempdir");

    let store = within("open", MetadataStore::open(single_voter(dir.path(), None)))
        .await
        .expect("open");
    assert_eq!(store.leader(), Some(1));
    let cluster_id = store.image().cluster_id.clone();
    assert_eq!(cluster_id.len(), 22, "{cluster_id}");
    assert_eq!(store.image().controller_id, 1);

    assert_eq!(
        store.propose(register(1)).await.expect("register"),
        CommandOutcome::Ok
    );
    let created = store
        .propose(create_topic("orders", 3, 1))
        .await
        .expect("create");
    assert!(matches!(created, CommandOutcome::TopicCreated { .. }));
    let again = store
        .propose(create_topic("orders", 1, 1))
        .await
        .expect("create again");
    assert_eq!(
        again,
        CommandOutcome::Rejected(MetadataError::TopicAlreadyExists)
    );
    assert_eq!(allocate(&store, 1000).await, 0);
    assert_eq!(allocate(&store, 1000).await, 1000);
    let before: Arc<MetadataImage> = store.image();
    store.shutdown().await.expect("shutdown");
    store.shutdown().await.expect("second shutdown is a no-op");
    assert!(matches!(
        store.propose(register(2)).await,
        Err(Error::Fatal(_))
    ));

    let store = within(
        "reopen",
        MetadataStore::open(single_voter(dir.path(), None)),
    )
    .await
    .expect("reopen");
    let after = store.image();
    assert_eq!(after.cluster_id, cluster_id);
    assert_eq!(after.topics, before.topics);
    assert_eq!(after.brokers, before.brokers);
    assert_eq!(after.next_producer_id, 2000);
    assert_eq!(allocate(&store, 10).await, 2000);
    store.shutdown().await.expect("shutdown");

    // A configured cluster id must match the stored one.
    let mismatch =
        MetadataStore::open(single_voter(dir.path(), Some("someOtherClusterId0000"))).await;
    assert!(
        matches!(mismatch, Err(Error::ClusterIdMismatch { .. })),
        "{mismatch:?}"
    );
    let store = within(
        "reopen",
        MetadataStore::open(single_voter(dir.path(), Some(&cluster_id))),
    )
    .await
    .expect("reopen with matching cluster id");
    assert_eq!(allocate(&store, 1).await, 2010);
    store.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_cluster_id_is_used_at_bootstrap() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = within(
        "open",
        MetadataStore::open(single_voter(dir.path(), Some("MkU3OEVBNTcwNTJENDM2Qk"))),
    )
    .await
    .expect("open");
    assert_eq!(store.image().cluster_id, "MkU3OEVBNTcwNTJENDM2Qk");
    store.shutdown().await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribers_see_every_apply() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = within("open", MetadataStore::open(single_voter(dir.path(), None)))
        .await
        .expect("open");
    let mut images = store.subscribe();
    images.borrow_and_update();
    store.propose(register(7)).await.expect("register");
    within("image change", images.changed())
        .await
        .expect("sender alive");
    assert!(images.borrow().brokers.contains_key(&7));
    store.shutdown().await.expect("shutdown");
}

/// Reserves `n` distinct loopback ports (bind, read, release; a tiny reuse race is accepted).
fn free_addrs(n: usize) -> Vec<String> {
    let listeners: Vec<std::net::TcpListener> = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("addr").to_string())
        .collect()
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

async fn wait_for_image(store: &MetadataStore, what: &str, pred: impl Fn(&MetadataImage) -> bool) {
    let mut images = store.subscribe();
    within(what, async {
        loop {
            if pred(&images.borrow_and_update()) {
                return;
            }
            images.changed().await.expect("sender alive");
        }
    })
    .await;
}

async fn wait_for_new_leader(stores: &[&MetadataStore], old: u64) -> u64 {
    within("a new leader", async {
        loop {
            let leaders: Vec<Option<u64>> = stores.iter().map(|s| s.leader()).collect();
            if let Some(Some(leader)) = leaders.first() {
                if *leader != old && leaders.iter().all(|l| *l == Some(*leader)) {
                    return *leader;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_voters_survive_losing_the_leader() {
    let dir = tempfile::tempdir().expect("tempdir");
    let addrs = free_addrs(3);
    let voters: BTreeMap<u64, String> = (1..=3).zip(addrs).collect();

    // Every voter must be up for the first election, so open them concurrently.
    let (a, b, c) = within("cluster formation", async {
        tokio::join!(
            MetadataStore::open(member(1, dir.path(), &voters)),
            MetadataStore::open(member(2, dir.path(), &voters)),
            MetadataStore::open(member(3, dir.path(), &voters)),
        )
    })
    .await;
    let stores = [a.expect("open 1"), b.expect("open 2"), c.expect("open 3")];
    let cluster_id = stores[0].image().cluster_id.clone();
    assert!(!cluster_id.is_empty());
    assert!(stores.iter().all(|s| s.image().cluster_id == cluster_id));

    let old_leader = stores[0].leader().expect("leader known after open");
    let leader = &stores[(old_leader - 1) as usize];
    for id in 1..=3 {
        assert_eq!(
            leader.propose(register(id)).await.expect("register"),
            CommandOutcome::Ok
        );
    }
    let created = leader
        .propose(create_topic("events", 6, 3))
        .await
        .expect("create");
    assert!(matches!(created, CommandOutcome::TopicCreated { .. }));
    assert_eq!(allocate(leader, 1000).await, 0);

    let follower = stores
        .iter()
        .find(|s| s.node_id() != old_leader)
        .expect("a follower");
    let refused = follower.propose(register(9)).await;
    assert!(
        matches!(refused, Err(Error::NotLeader { leader: Some(l) }) if l == old_leader),
        "{refused:?}"
    );
    for store in &stores {
        wait_for_image(store, "replication of the topic", |image| {
            image.topics.contains_key("events") && image.next_producer_id == 1000
        })
        .await;
    }

    leader.shutdown().await.expect("shutdown leader");
    let survivors: Vec<&MetadataStore> = stores
        .iter()
        .filter(|s| s.node_id() != old_leader)
        .collect();
    let new_leader_id = wait_for_new_leader(&survivors, old_leader).await;
    let new_leader = survivors
        .iter()
        .find(|s| s.node_id() == new_leader_id)
        .expect("leader is a survivor");

    // Everything committed under the old leader is still there.
    let image = new_leader.image();
    assert_eq!(image.cluster_id, cluster_id);
    assert_eq!(image.brokers.len(), 3);
    assert_eq!(image.topics["events"].partitions.len(), 6);
    assert_eq!(allocate(new_leader, 1000).await, 1000);
    let created = new_leader
        .propose(create_topic("after-failover", 1, 2))
        .await
        .expect("create");
    assert!(matches!(created, CommandOutcome::TopicCreated { .. }));
    assert_eq!(new_leader.image().controller_id, new_leader_id as i32);

    // The old leader comes back as a follower and catches up.
    let rejoined = within(
        "rejoin",
        MetadataStore::open(member(old_leader, dir.path(), &voters)),
    )
    .await
    .expect("reopen old leader");
    wait_for_image(&rejoined, "catch-up", |image| {
        image.topics.contains_key("after-failover") && image.next_producer_id == 2000
    })
    .await;
    assert_eq!(rejoined.image().cluster_id, cluster_id);

    for store in survivors {
        store.shutdown().await.expect("shutdown");
    }
    rejoined.shutdown().await.expect("shutdown");
}
