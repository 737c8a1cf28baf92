//! Metadata images for unit tests, built through `MetadataImage::apply` as the quorum
//! builds them.

use std::collections::BTreeMap;

use sluice_raft::{MetadataCommand, MetadataImage};
use uuid::Uuid;

/// An image with broker 1 registered and no topics.
pub fn one_broker() -> MetadataImage {
    let mut image = MetadataImage::default();
    image.apply(&MetadataCommand::RegisterBroker {
        node_id: 1,
        host: "h".into(),
        port: 1,
        rack: None,
    });
    image
}

/// `image` with one more topic (id `id`), its replicas on broker 1.
pub fn with_topic(
    image: &MetadataImage,
    name: &str,
    id: u128,
    partitions: i32,
    configs: BTreeMap<String, String>,
) -> MetadataImage {
    let mut next = image.clone();
    let outcome = next.apply(&MetadataCommand::CreateTopic {
        name: name.into(),
        id: Uuid::from_u128(id),
        partitions,
        replication_factor: 1,
        configs,
    });
    assert!(
        matches!(outcome, sluice_raft::CommandOutcome::TopicCreated { .. }),
        "{outcome:?}"
    );
    next
}
