//! The replicated metadata image and the pure, deterministic function that applies a
//! [`MetadataCommand`] to it.
//!
//! Everything in [`MetadataImage::apply`] must depend only on the image and the command (no
//! clocks, no randomness, no I/O): every voter runs it on the same log and must reach the same
//! image.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::command::{CommandOutcome, MetadataCommand, MetadataError};

/// Upper bound on partitions per topic; a typo such as `partitions: 1_000_000_000` must not make
/// every voter allocate gigabytes.
pub const PARTITIONS_MAX: i32 = 100_000;
/// Upper bound on one producer-id block (Kafka hands out blocks of 1000).
pub const PRODUCER_ID_BLOCK_MAX: i64 = 1_000_000;
/// Kafka's limit on topic name length.
pub const TOPIC_NAME_LEN_MAX: usize = 249;
const CLUSTER_ID_LEN_MAX: usize = 64;

/// Topics Kafka treats as internal (`Topic.isInternal`).
const INTERNAL_TOPICS: [&str; 2] = ["__consumer_offsets", "__transaction_state"];

/// The cluster metadata after applying every committed command up to some log index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetadataImage {
    /// Empty until the `InitializeCluster` entry is applied; never changes afterwards.
    pub cluster_id: String,
    pub brokers: BTreeMap<i32, BrokerInfo>,
    /// Shared between images: applying a command copies the map's entries, not every
    /// partition of every topic (10,000 partitions made each metadata change copy as
    /// many partition entries, two allocations each).
    pub topics: BTreeMap<String, Arc<TopicMeta>>,
    pub topic_names_by_id: BTreeMap<Uuid, String>,
    /// The first producer id not yet handed out.
    pub next_producer_id: i64,
    /// The Raft leader that wrote the last applied entry (-1 before any), i.e. the active
    /// controller as far as this image knows.
    pub controller_id: i32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerInfo {
    pub node_id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopicMeta {
    pub name: String,
    pub id: Uuid,
    /// Indexed by partition number: `partitions[p].partition == p`.
    pub partitions: Vec<PartitionMeta>,
    pub configs: BTreeMap<String, String>,
    pub internal: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartitionMeta {
    pub partition: i32,
    pub leader: i32,
    pub leader_epoch: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
}

impl Default for MetadataImage {
    fn default() -> Self {
        Self {
            cluster_id: String::new(),
            brokers: BTreeMap::new(),
            topics: BTreeMap::new(),
            topic_names_by_id: BTreeMap::new(),
            next_producer_id: 0,
            controller_id: -1,
        }
    }
}

impl MetadataImage {
    pub fn topic(&self, name: &str) -> Option<&TopicMeta> {
        self.topics.get(name).map(|t| &**t)
    }

    pub fn topic_by_id(&self, id: &Uuid) -> Option<&TopicMeta> {
        self.topic_names_by_id
            .get(id)
            .and_then(|name| self.topic(name))
    }

    /// Applies one command. A rejected command leaves the image unchanged.
    pub fn apply(&mut self, cmd: &MetadataCommand) -> CommandOutcome {
        let result = match cmd {
            MetadataCommand::InitializeCluster { cluster_id } => {
                self.initialize_cluster(cluster_id)
            }
            MetadataCommand::RegisterBroker {
                node_id,
                host,
                port,
                rack,
            } => self.register_broker(*node_id, host, *port, rack),
            MetadataCommand::CreateTopic {
                name,
                id,
                partitions,
                replication_factor,
                configs,
            } => self.create_topic(name, *id, *partitions, *replication_factor, configs),
            MetadataCommand::DeleteTopic { name } => self.delete_topic(name),
            MetadataCommand::CreatePartitions { name, new_total } => {
                self.create_partitions(name, *new_total)
            }
            MetadataCommand::AlterTopicConfigs { name, set, delete } => {
                self.topic_mut(name).map(|topic| {
                    topic
                        .configs
                        .extend(set.iter().map(|(k, v)| (k.clone(), v.clone())));
                    for key in delete {
                        topic.configs.remove(key);
                    }
                    CommandOutcome::Ok
                })
            }
            MetadataCommand::ReplaceTopicConfigs { name, configs } => {
                self.topic_mut(name).map(|topic| {
                    topic.configs = configs.clone();
                    CommandOutcome::Ok
                })
            }
            MetadataCommand::AllocateProducerIds { count } => self.allocate_producer_ids(*count),
        };
        debug_assert_eq!(self.topics.len(), self.topic_names_by_id.len());
        result.unwrap_or_else(CommandOutcome::Rejected)
    }

    fn topic_mut(&mut self, name: &str) -> Result<&mut TopicMeta, MetadataError> {
        self.topics
            .get_mut(name)
            .map(Arc::make_mut)
            .ok_or(MetadataError::UnknownTopic)
    }

    fn initialize_cluster(&mut self, cluster_id: &str) -> Result<CommandOutcome, MetadataError> {
        if !self.cluster_id.is_empty() {
            return Err(MetadataError::ClusterIdAlreadySet {
                cluster_id: self.cluster_id.clone(),
            });
        }
        if cluster_id.is_empty() || cluster_id.len() > CLUSTER_ID_LEN_MAX {
            return Err(MetadataError::InvalidClusterId {
                reason: format!(
                    "length must be 1..={CLUSTER_ID_LEN_MAX}, got {}",
                    cluster_id.len()
                ),
            });
        }
        self.cluster_id = cluster_id.to_owned();
        Ok(CommandOutcome::Ok)
    }

    fn register_broker(
        &mut self,
        node_id: i32,
        host: &str,
        port: i32,
        rack: &Option<String>,
    ) -> Result<CommandOutcome, MetadataError> {
        let reason = if node_id < 0 {
            Some(format!("node id {node_id} is negative"))
        } else if host.is_empty() {
            Some("host is empty".to_owned())
        } else if !(1..=i32::from(u16::MAX)).contains(&port) {
            Some(format!("port {port} is out of range"))
        } else {
            None
        };
        if let Some(reason) = reason {
            return Err(MetadataError::InvalidBrokerRegistration { reason });
        }
        let info = BrokerInfo {
            node_id,
            host: host.to_owned(),
            port,
            rack: rack.clone(),
        };
        self.brokers.insert(node_id, info);
        Ok(CommandOutcome::Ok)
    }

    fn create_topic(
        &mut self,
        name: &str,
        id: Uuid,
        partitions: i32,
        replication_factor: i16,
        configs: &BTreeMap<String, String>,
    ) -> Result<CommandOutcome, MetadataError> {
        validate_topic_name(name)?;
        if id.is_nil() {
            return Err(MetadataError::InvalidTopicId);
        }
        if self.topics.contains_key(name) {
            return Err(MetadataError::TopicAlreadyExists);
        }
        if let Some(existing) = self.colliding_topic(name) {
            return Err(MetadataError::InvalidTopicName {
                reason: format!("topic '{name}' collides with existing topic '{existing}'"),
            });
        }
        if self.topic_names_by_id.contains_key(&id) {
            return Err(MetadataError::TopicIdAlreadyExists { id });
        }
        validate_partition_count(partitions)?;
        self.check_replication_factor(i32::from(replication_factor))?;
        let replication_factor = usize::try_from(replication_factor).expect("checked positive");

        let brokers: Vec<i32> = self.brokers.keys().copied().collect();
        let partitions = (0..partitions)
            .map(|p| Self::new_partition(&brokers, id, p, replication_factor))
            .collect();
        let topic = TopicMeta {
            name: name.to_owned(),
            id,
            partitions,
            configs: configs.clone(),
            internal: INTERNAL_TOPICS.contains(&name),
        };
        self.topics.insert(name.to_owned(), Arc::new(topic));
        self.topic_names_by_id.insert(id, name.to_owned());
        Ok(CommandOutcome::TopicCreated { id })
    }

    fn delete_topic(&mut self, name: &str) -> Result<CommandOutcome, MetadataError> {
        let topic = self
            .topics
            .remove(name)
            .ok_or(MetadataError::UnknownTopic)?;
        let removed = self.topic_names_by_id.remove(&topic.id);
        assert_eq!(removed.as_deref(), Some(name), "topic id index out of sync");
        Ok(CommandOutcome::Ok)
    }

    fn create_partitions(
        &mut self,
        name: &str,
        new_total: i32,
    ) -> Result<CommandOutcome, MetadataError> {
        let topic = self.topics.get(name).ok_or(MetadataError::UnknownTopic)?;
        let current = i32::try_from(topic.partitions.len()).expect("bounded by PARTITIONS_MAX");
        if new_total < current {
            return Err(MetadataError::InvalidPartitions {
                reason: format!("topic currently has {current} partitions, which is higher than the requested {new_total}"),
            });
        }
        if new_total == current {
            return Err(MetadataError::InvalidPartitions {
                reason: format!("topic already has {current} partitions"),
            });
        }
        validate_partition_count(new_total)?;
        let replication_factor = topic.partitions.first().map_or(1, |p| p.replicas.len());
        self.check_replication_factor(i32::try_from(replication_factor).unwrap_or(i32::MAX))?;

        let id = topic.id;
        let brokers: Vec<i32> = self.brokers.keys().copied().collect();
        let added: Vec<PartitionMeta> = (current..new_total)
            .map(|p| Self::new_partition(&brokers, id, p, replication_factor))
            .collect();
        let topic = Arc::make_mut(self.topics.get_mut(name).expect("looked up above"));
        topic.partitions.extend(added);
        debug_assert!(topic
            .partitions
            .iter()
            .enumerate()
            .all(|(i, p)| p.partition as usize == i));
        Ok(CommandOutcome::Ok)
    }

    fn allocate_producer_ids(&mut self, count: i64) -> Result<CommandOutcome, MetadataError> {
        if !(1..=PRODUCER_ID_BLOCK_MAX).contains(&count) {
            return Err(MetadataError::InvalidProducerIdCount { count });
        }
        let first = self.next_producer_id;
        let next = first
            .checked_add(count)
            .ok_or(MetadataError::ProducerIdsExhausted)?;
        assert!(next > first);
        self.next_producer_id = next;
        Ok(CommandOutcome::ProducerIdBlock { first, count })
    }

    fn check_replication_factor(&self, replication_factor: i32) -> Result<(), MetadataError> {
        if replication_factor < 1 {
            return Err(MetadataError::InvalidReplicationFactor {
                reason: format!("replication factor must be at least 1, got {replication_factor}"),
            });
        }
        let available = self.brokers.len();
        if usize::try_from(replication_factor).unwrap_or(usize::MAX) > available {
            return Err(MetadataError::InvalidReplicationFactor {
                reason: format!("replication factor {replication_factor} larger than available brokers {available}"),
            });
        }
        Ok(())
    }

    /// Replicas of partition `p`: `replication_factor` consecutive brokers (in id order) starting
    /// at `(start + p)`, where `start` comes from the topic id so that the leaders of different
    /// topics do not all land on the lowest broker id.
    fn new_partition(
        brokers: &[i32],
        topic_id: Uuid,
        partition: i32,
        replication_factor: usize,
    ) -> PartitionMeta {
        assert!(replication_factor >= 1 && replication_factor <= brokers.len());
        let start = usize::try_from(topic_id.as_u128() % brokers.len() as u128)
            .expect("below broker count");
        let first = start + usize::try_from(partition).expect("partition is non-negative");
        let replicas: Vec<i32> = (0..replication_factor)
            .map(|j| brokers[(first + j) % brokers.len()])
            .collect();
        PartitionMeta {
            partition,
            leader: replicas[0],
            leader_epoch: 0,
            isr: replicas.clone(),
            replicas,
        }
    }

    /// Kafka rejects a name that differs from an existing one only by '.' versus '_', because
    /// both map to the same metric name.
    pub fn colliding_topic(&self, name: &str) -> Option<&str> {
        if !name.contains(['.', '_']) {
            return None;
        }
        let normalized = name.replace('.', "_");
        self.topics
            .keys()
            .find(|existing| existing.replace('.', "_") == normalized)
            .map(String::as_str)
    }
}

fn validate_topic_name(name: &str) -> Result<(), MetadataError> {
    let reason = if name.is_empty() {
        Some("name is empty".to_owned())
    } else if name == "." || name == ".." {
        Some(format!("'{name}' is not allowed"))
    } else if name.len() > TOPIC_NAME_LEN_MAX {
        Some(format!(
            "name is longer than {TOPIC_NAME_LEN_MAX} characters"
        ))
    } else if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        Some(format!(
            "'{name}' contains characters other than ASCII alphanumerics, '.', '_' and '-'"
        ))
    } else {
        None
    };
    reason.map_or(Ok(()), |reason| {
        Err(MetadataError::InvalidTopicName { reason })
    })
}

fn validate_partition_count(partitions: i32) -> Result<(), MetadataError> {
    if partitions < 1 {
        return Err(MetadataError::InvalidPartitions {
            reason: format!("number of partitions must be at least 1, got {partitions}"),
        });
    }
    if partitions > PARTITIONS_MAX {
        return Err(MetadataError::InvalidPartitions {
            reason: format!("number of partitions {partitions} exceeds the limit {PARTITIONS_MAX}"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(node_id: i32) -> MetadataCommand {
        MetadataCommand::RegisterBroker {
            node_id,
            host: format!("host{node_id}"),
            port: 9092,
            rack: None,
        }
    }

    fn create(name: &str, partitions: i32, replication_factor: i16) -> MetadataCommand {
        MetadataCommand::CreateTopic {
            name: name.to_owned(),
            id: Uuid::new_v4(),
            partitions,
            replication_factor,
            configs: BTreeMap::new(),
        }
    }

    fn image_with_brokers(ids: &[i32]) -> MetadataImage {
        let mut image = MetadataImage::default();
        for &id in ids {
            assert_eq!(image.apply(&broker(id)), CommandOutcome::Ok);
        }
        image
    }

    fn rejected(outcome: CommandOutcome) -> MetadataError {
        match outcome {
            CommandOutcome::Rejected(e) => e,
            other => panic!("expected a rejection, got {other:?}"),
        }
    }

    #[test]
    fn create_topic_assigns_replicas_round_robin() {
        let mut image = image_with_brokers(&[1, 2, 3]);
        let id = Uuid::from_u128(1); // start offset 1 % 3 == 1
        let outcome = image.apply(&MetadataCommand::CreateTopic {
            name: "orders".into(),
            id,
            partitions: 4,
            replication_factor: 2,
            configs: BTreeMap::from([("cleanup.policy".into(), "compact".into())]),
        });
        assert_eq!(outcome, CommandOutcome::TopicCreated { id });
        let topic = image.topic("orders").expect("created");
        assert_eq!(
            image.topic_by_id(&id).map(|t| t.name.as_str()),
            Some("orders")
        );
        let replicas: Vec<Vec<i32>> = topic
            .partitions
            .iter()
            .map(|p| p.replicas.clone())
            .collect();
        assert_eq!(
            replicas,
            vec![vec![2, 3], vec![3, 1], vec![1, 2], vec![2, 3]]
        );
        for (i, p) in topic.partitions.iter().enumerate() {
            assert_eq!(p.partition as usize, i);
            assert_eq!(p.leader, p.replicas[0]);
            assert_eq!(p.leader_epoch, 0);
            assert_eq!(p.isr, p.replicas);
        }
        assert_eq!(
            topic.configs.get("cleanup.policy").map(String::as_str),
            Some("compact")
        );
        assert!(!topic.internal);
    }

    #[test]
    fn create_topic_rejections_leave_image_unchanged() {
        let mut image = image_with_brokers(&[1]);
        assert!(matches!(
            image.apply(&create("t", 1, 1)),
            CommandOutcome::TopicCreated { .. }
        ));
        let before = image.clone();

        assert_eq!(
            rejected(image.apply(&create("t", 1, 1))),
            MetadataError::TopicAlreadyExists
        );
        assert!(matches!(
            rejected(image.apply(&create("u", 0, 1))),
            MetadataError::InvalidPartitions { .. }
        ));
        assert!(matches!(
            rejected(image.apply(&create("u", PARTITIONS_MAX + 1, 1))),
            MetadataError::InvalidPartitions { .. }
        ));
        assert!(matches!(
            rejected(image.apply(&create("u", 1, 2))),
            MetadataError::InvalidReplicationFactor { .. }
        ));
        assert!(matches!(
            rejected(image.apply(&create("u", 1, 0))),
            MetadataError::InvalidReplicationFactor { .. }
        ));
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "ü",
            &"x".repeat(TOPIC_NAME_LEN_MAX + 1),
        ] {
            assert!(matches!(
                rejected(image.apply(&create(bad, 1, 1))),
                MetadataError::InvalidTopicName { .. }
            ));
        }
        let existing_id = image.topic("t").expect("exists").id;
        let same_id = MetadataCommand::CreateTopic {
            name: "u".into(),
            id: existing_id,
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        assert_eq!(
            rejected(image.apply(&same_id)),
            MetadataError::TopicIdAlreadyExists { id: existing_id }
        );
        let nil_id = MetadataCommand::CreateTopic {
            name: "u".into(),
            id: Uuid::nil(),
            partitions: 1,
            replication_factor: 1,
            configs: BTreeMap::new(),
        };
        assert_eq!(
            rejected(image.apply(&nil_id)),
            MetadataError::InvalidTopicId
        );
        assert_eq!(image, before);
    }

    #[test]
    fn create_topic_without_brokers_is_rejected() {
        let mut image = MetadataImage::default();
        assert!(matches!(
            rejected(image.apply(&create("t", 1, 1))),
            MetadataError::InvalidReplicationFactor { .. }
        ));
    }

    #[test]
    fn dot_underscore_collision_is_rejected() {
        let mut image = image_with_brokers(&[0]);
        assert!(matches!(
            image.apply(&create("a.b", 1, 1)),
            CommandOutcome::TopicCreated { .. }
        ));
        assert!(matches!(
            rejected(image.apply(&create("a_b", 1, 1))),
            MetadataError::InvalidTopicName { .. }
        ));
    }

    #[test]
    fn internal_topics_are_flagged() {
        let mut image = image_with_brokers(&[0]);
        image.apply(&create("__consumer_offsets", 50, 1));
        assert!(image.topic("__consumer_offsets").expect("created").internal);
    }

    #[test]
    fn delete_topic() {
        let mut image = image_with_brokers(&[0]);
        image.apply(&create("t", 3, 1));
        assert_eq!(
            image.apply(&MetadataCommand::DeleteTopic { name: "t".into() }),
            CommandOutcome::Ok
        );
        assert!(image.topics.is_empty());
        assert!(image.topic_names_by_id.is_empty());
        assert_eq!(
            rejected(image.apply(&MetadataCommand::DeleteTopic { name: "t".into() })),
            MetadataError::UnknownTopic
        );
        // The name can be reused, with a new id.
        assert!(matches!(
            image.apply(&create("t", 1, 1)),
            CommandOutcome::TopicCreated { .. }
        ));
    }

    #[test]
    fn create_partitions() {
        let mut image = image_with_brokers(&[0, 1]);
        image.apply(&create("t", 2, 2));
        let grow = |n| MetadataCommand::CreatePartitions {
            name: "t".into(),
            new_total: n,
        };
        assert_eq!(image.apply(&grow(5)), CommandOutcome::Ok);
        let topic = image.topic("t").expect("exists");
        assert_eq!(topic.partitions.len(), 5);
        assert!(topic.partitions.iter().all(|p| p.replicas.len() == 2));
        assert_eq!(topic.partitions[4].partition, 4);

        assert!(matches!(
            rejected(image.apply(&grow(5))),
            MetadataError::InvalidPartitions { .. }
        ));
        assert!(matches!(
            rejected(image.apply(&grow(3))),
            MetadataError::InvalidPartitions { .. }
        ));
        assert!(matches!(
            rejected(image.apply(&grow(PARTITIONS_MAX + 1))),
            MetadataError::InvalidPartitions { .. }
        ));
        let unknown = MetadataCommand::CreatePartitions {
            name: "nope".into(),
            new_total: 9,
        };
        assert_eq!(rejected(image.apply(&unknown)), MetadataError::UnknownTopic);
    }

    #[test]
    fn topic_configs() {
        let mut image = image_with_brokers(&[0]);
        image.apply(&create("t", 1, 1));
        let alter = MetadataCommand::AlterTopicConfigs {
            name: "t".into(),
            set: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
            delete: vec!["b".into(), "missing".into()],
        };
        assert_eq!(image.apply(&alter), CommandOutcome::Ok);
        let configs = &image.topic("t").expect("exists").configs;
        assert_eq!(configs, &BTreeMap::from([("a".to_owned(), "1".to_owned())]));

        let replace = MetadataCommand::ReplaceTopicConfigs {
            name: "t".into(),
            configs: BTreeMap::from([("c".into(), "3".into())]),
        };
        assert_eq!(image.apply(&replace), CommandOutcome::Ok);
        let configs = &image.topic("t").expect("exists").configs;
        assert_eq!(configs, &BTreeMap::from([("c".to_owned(), "3".to_owned())]));

        let unknown = MetadataCommand::ReplaceTopicConfigs {
            name: "nope".into(),
            configs: BTreeMap::new(),
        };
        assert_eq!(rejected(image.apply(&unknown)), MetadataError::UnknownTopic);
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let mut image = MetadataImage::default();
        let alloc = |count| MetadataCommand::AllocateProducerIds { count };
        assert_eq!(
            image.apply(&alloc(1000)),
            CommandOutcome::ProducerIdBlock {
                first: 0,
                count: 1000
            }
        );
        assert_eq!(
            image.apply(&alloc(10)),
            CommandOutcome::ProducerIdBlock {
                first: 1000,
                count: 10
            }
        );
        assert_eq!(image.next_producer_id, 1010);
        for bad in [0, -1, PRODUCER_ID_BLOCK_MAX + 1] {
            assert_eq!(
                rejected(image.apply(&alloc(bad))),
                MetadataError::InvalidProducerIdCount { count: bad }
            );
        }
        image.next_producer_id = i64::MAX - 5;
        assert_eq!(
            rejected(image.apply(&alloc(10))),
            MetadataError::ProducerIdsExhausted
        );
        assert_eq!(image.next_producer_id, i64::MAX - 5);
    }

    #[test]
    fn register_broker_upserts_and_validates() {
        let mut image = image_with_brokers(&[1]);
        let moved = MetadataCommand::RegisterBroker {
            node_id: 1,
            host: "elsewhere".into(),
            port: 19092,
            rack: Some("r1".into()),
        };
        assert_eq!(image.apply(&moved), CommandOutcome::Ok);
        assert_eq!(image.brokers.len(), 1);
        assert_eq!(image.brokers[&1].host, "elsewhere");
        assert_eq!(image.brokers[&1].rack.as_deref(), Some("r1"));
        for (node_id, host, port) in [(-1, "h", 1), (2, "", 1), (2, "h", 0), (2, "h", 65536)] {
            let cmd = MetadataCommand::RegisterBroker {
                node_id,
                host: host.into(),
                port,
                rack: None,
            };
            assert!(matches!(
                rejected(image.apply(&cmd)),
                MetadataError::InvalidBrokerRegistration { .. }
            ));
        }
    }

    #[test]
    fn cluster_id_is_set_once() {
        let mut image = MetadataImage::default();
        let init = |id: &str| MetadataCommand::InitializeCluster {
            cluster_id: id.into(),
        };
        assert!(matches!(
            rejected(image.apply(&init(""))),
            MetadataError::InvalidClusterId { .. }
        ));
        assert_eq!(image.apply(&init("abc")), CommandOutcome::Ok);
        assert_eq!(
            rejected(image.apply(&init("def"))),
            MetadataError::ClusterIdAlreadySet {
                cluster_id: "abc".into()
            }
        );
        assert_eq!(image.cluster_id, "abc");
    }

    #[test]
    fn image_round_trips_through_json() {
        let mut image = image_with_brokers(&[0, 1]);
        image.apply(&create("t", 3, 2));
        let json = serde_json::to_vec(&image).expect("serialize");
        let back: MetadataImage = serde_json::from_slice(&json).expect("deserialize");
        assert_eq!(back, image);
    }
}
