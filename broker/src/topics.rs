//! Topic administration shared by CreateTopics, Metadata auto-creation and the config
//! APIs: name rules, creation through the metadata quorum, effective configs.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError as E;
use sluice_raft::{CommandOutcome, MetadataCommand, TopicMeta};
use sluice_storage::config::{
    topic_config_def, validate_topic_config, ConfigError, ConfigKind, TOPIC_CONFIGS,
};
use uuid::Uuid;

use crate::broker::Broker;
use crate::config::SettingType;
use crate::delay::retry;
use crate::error_code;
use crate::view;

/// Names the broker keeps for itself.
pub const RESERVED_TOPICS: &[&str] = &[
    "__consumer_offsets",
    "__transaction_state",
    "__cluster_metadata",
];

/// A refusal with Kafka's code and a message for the client.
#[derive(Debug, Clone)]
pub struct Refusal {
    pub error: E,
    pub message: String,
}

impl Refusal {
    pub fn new(error: E, message: impl Into<String>) -> Self {
        Refusal {
            error,
            message: message.into(),
        }
    }
}

/// Names a topic may have: Kafka's rules, and not one the broker keeps for itself.
pub fn validate_topic_name(name: &str) -> Result<(), Refusal> {
    legal_topic_name(name)?;
    if RESERVED_TOPICS.contains(&name) {
        return Err(Refusal::new(
            E::InvalidTopicException,
            format!("topic name {name:?} is reserved for the broker's internal use"),
        ));
    }
    Ok(())
}

/// Kafka's topic name rules (`Topic.validate`): 1..=249 characters of `[a-zA-Z0-9._-]`,
/// not `.` or `..`. A lookup of a name that breaks them is INVALID_TOPIC_EXCEPTION
/// rather than UNKNOWN_TOPIC_OR_PARTITION.
pub fn legal_topic_name(name: &str) -> Result<(), Refusal> {
    let bad = |why: &str| {
        Err(Refusal::new(
            E::InvalidTopicException,
            format!("topic name {name:?} is illegal: {why}"),
        ))
    };
    if name.is_empty() {
        return bad("it is empty");
    }
    if name == "." || name == ".." {
        return bad("'.' and '..' are not allowed");
    }
    if name.len() > 249 {
        return bad("it is longer than 249 characters");
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_' || c == '-')
    {
        return bad("it contains characters other than ASCII alphanumerics, '.', '_' and '-'");
    }
    Ok(())
}

pub fn unknown_topic(name: &str) -> Refusal {
    Refusal::new(
        E::UnknownTopicOrPartition,
        format!("topic '{name}' does not exist"),
    )
}

/// Config resource types DescribeConfigs, AlterConfigs and IncrementalAlterConfigs share.
pub const RESOURCE_TOPIC: i8 = 2;
pub const RESOURCE_BROKER: i8 = 4;

/// What `ConfigAdminManager.preprocess` refuses in one resource of an alter request
/// before anything else: a resource named more than once in the request (each
/// occurrence is refused), a config named twice, and a null value where a value is
/// needed. Takes each config's name and whether it lacks a value it needs.
pub fn screen_alterations<'a>(
    repeated_resource: bool,
    configs: impl Iterator<Item = (&'a str, bool)> + Clone,
) -> Result<(), Refusal> {
    if repeated_resource {
        return Err(Refusal::new(
            E::InvalidRequest,
            "Each resource must appear at most once.",
        ));
    }
    if !crate::handlers::repeated(configs.clone().map(|(name, _)| name)).is_empty() {
        return Err(Refusal::new(
            E::InvalidRequest,
            "Error due to duplicate config keys",
        ));
    }
    let nulls: Vec<&str> = configs
        .filter(|&(_, null)| null)
        .map(|(name, _)| name)
        .collect();
    if !nulls.is_empty() {
        return Err(Refusal::new(
            E::InvalidRequest,
            format!("Null value not supported for : {}", nulls.join(", ")),
        ));
    }
    Ok(())
}

/// Why a non-topic config resource cannot be altered.
pub fn refuse_config_alteration(resource_type: i8) -> Refusal {
    if resource_type == RESOURCE_BROKER {
        Refusal::new(
            E::InvalidRequest,
            "broker configs are static in Sluice: set them in the config file and restart",
        )
    } else {
        unsupported_resource(resource_type)
    }
}

pub fn unsupported_resource(resource_type: i8) -> Refusal {
    Refusal::new(
        E::InvalidRequest,
        format!("resource type {resource_type} is not supported"),
    )
}

pub fn config_refusal(e: &ConfigError) -> Refusal {
    Refusal::new(E::InvalidConfig, e.to_string())
}

/// Checks configs given to topic `name`: Kafka's log configs, and on a retry topic its
/// retry policy.
pub fn validate_configs(name: &str, configs: &BTreeMap<String, String>) -> Result<(), Refusal> {
    for (k, v) in configs {
        if retry::is_retry_config(k) {
            retry::validate_config(name, k, v)
                .map_err(|e| Refusal::new(E::InvalidConfig, e.to_string()))?;
        } else {
            validate_topic_config(k, v).map_err(|e| config_refusal(&e))?;
        }
    }
    Ok(())
}

/// Checks and (unless `validate_only`) creates a topic. `partitions`/`replication_factor`
/// of -1 take the broker defaults.
pub async fn create_topic(
    b: &Broker,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(Uuid, i32, i16), Refusal> {
    validate_topic_name(name)?;
    let image = b.image();
    // Kafka's `ReplicationControlManager.createTopics` answers these before it looks
    // at partitions, replication or configs, so `--if-not-exists` style callers get
    // TOPIC_ALREADY_EXISTS whatever else they asked; validate-only requests too.
    if image.topic(name).is_some() {
        return Err(Refusal::new(
            E::TopicAlreadyExists,
            format!("topic '{name}' already exists"),
        ));
    }
    if let Some(existing) = image.colliding_topic(name) {
        return Err(Refusal::new(
            E::InvalidTopicException,
            format!("topic '{name}' collides with existing topic '{existing}'"),
        ));
    }
    let view = view::defines_view(&configs);
    // Configs before counts, in Kafka's order (`ReplicationControlManager.createTopic`).
    if !view {
        validate_configs(name, &configs)?;
    }
    let partitions = if view {
        view::validate_new(&image, name, partitions, &configs)?
    } else if partitions == -1 {
        b.config.int("num.partitions") as i32
    } else {
        partitions
    };
    let replication_factor = if replication_factor == -1 {
        b.config.int("default.replication.factor") as i16
    } else {
        replication_factor
    };
    if partitions <= 0 {
        return Err(Refusal::new(
            E::InvalidPartitions,
            "number of partitions must be larger than 0",
        ));
    }
    if replication_factor <= 0 {
        return Err(Refusal::new(
            E::InvalidReplicationFactor,
            "replication factor must be larger than 0",
        ));
    }
    let brokers = image.brokers.len();
    if replication_factor as usize > brokers {
        return Err(Refusal::new(
            E::InvalidReplicationFactor,
            format!("replication factor {replication_factor} is larger than the {brokers} available brokers"),
        ));
    }
    if validate_only {
        return Ok((Uuid::nil(), partitions, replication_factor));
    }
    let created = propose_create(b, name, partitions, replication_factor, configs).await?;
    // A retry topic's records go to its dead-letter topic once out of retries: it is
    // created with it (and kept if it exists already).
    if retry::is_retry_topic(name) {
        let dlq = retry::dead_letter_topic(name);
        if b.image().topic(&dlq).is_none() {
            match propose_create(b, &dlq, partitions, replication_factor, BTreeMap::new()).await {
                Ok(_) => {}
                Err(r) if r.error == E::TopicAlreadyExists => {}
                Err(r) => tracing::warn!(topic = %dlq, error = %r.message,
                    "could not create the dead-letter topic of a retry topic"),
            }
        }
    }
    Ok(created)
}

async fn propose_create(
    b: &Broker,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: BTreeMap<String, String>,
) -> Result<(Uuid, i32, i16), Refusal> {
    let id = Uuid::new_v4();
    let cmd = MetadataCommand::CreateTopic {
        name: name.to_owned(),
        id,
        partitions,
        replication_factor,
        configs,
    };
    match b.metadata.propose(cmd).await {
        Ok(CommandOutcome::TopicCreated { id }) => {
            // Host the new partitions before answering, so the client can use them at once.
            b.replicas
                .sync_to_latest(|| b.image())
                .map_err(|e| Refusal::new(error_code::storage(&e), e.to_string()))?;
            tracing::info!(
                topic = name,
                partitions,
                replication_factor,
                "created topic"
            );
            Ok((id, partitions, replication_factor))
        }
        Ok(CommandOutcome::Rejected(e)) => {
            Err(Refusal::new(error_code::metadata(&e), e.to_string()))
        }
        Ok(other) => Err(Refusal::new(
            E::UnknownServerError,
            format!("unexpected outcome {other:?}"),
        )),
        Err(e) => Err(Refusal::new(error_code::quorum(&e), e.to_string())),
    }
}

/// Runs a metadata command whose success outcome is `Ok` and re-syncs hosted partitions.
pub async fn propose_simple(b: &Broker, cmd: MetadataCommand) -> Result<(), Refusal> {
    match b.metadata.propose(cmd).await {
        Ok(CommandOutcome::Rejected(e)) => {
            Err(Refusal::new(error_code::metadata(&e), e.to_string()))
        }
        Ok(_) => b
            .replicas
            .sync_to_latest(|| b.image())
            .map_err(|e| Refusal::new(error_code::storage(&e), e.to_string())),
        Err(e) => Err(Refusal::new(error_code::quorum(&e), e.to_string())),
    }
}

/// Kafka's ConfigSource values.
pub mod source {
    pub const DYNAMIC_TOPIC_CONFIG: i8 = 1;
    pub const STATIC_BROKER_CONFIG: i8 = 4;
    pub const DEFAULT_CONFIG: i8 = 5;
}

/// Kafka's ConfigType values (DescribeConfigs v3+).
pub fn config_type(kind: ConfigKind) -> i8 {
    match kind {
        ConfigKind::Long { .. } => 5,
        ConfigKind::Int { .. } | ConfigKind::IntBetween { .. } => 3,
        ConfigKind::OneOf(_) => 2,
        ConfigKind::ListOf(_) => 7,
    }
}

/// Kafka's ConfigType of a broker setting.
pub fn setting_type(kind: SettingType) -> i8 {
    match kind {
        SettingType::Boolean => 1,
        SettingType::Int { .. } => 3,
        SettingType::Long { .. } => 5,
    }
}

/// One effective config of a topic.
#[derive(Debug, Clone)]
pub struct EffectiveConfig {
    pub name: &'static str,
    pub value: String,
    pub source: i8,
    pub config_type: i8,
    /// The value from the layer below, as a synonym (broker setting or default).
    pub synonyms: Vec<(String, String, i8)>,
}

pub fn effective_topic_configs(b: &Broker, topic: &TopicMeta) -> Vec<EffectiveConfig> {
    if view::source_of(topic).is_some() {
        // A view has no log, so no log configs: only its definition.
        return [view::SOURCE_CONFIG, view::FILTER_CONFIG]
            .into_iter()
            .map(|name| {
                let value = topic
                    .configs
                    .get(name)
                    .cloned()
                    .unwrap_or_else(|| "*".into());
                EffectiveConfig {
                    name,
                    value: value.clone(),
                    source: source::DYNAMIC_TOPIC_CONFIG,
                    config_type: config_type(ConfigKind::OneOf(&[])),
                    synonyms: vec![(name.to_owned(), value, source::DYNAMIC_TOPIC_CONFIG)],
                }
            })
            .collect();
    }
    let retry_configs = retry::is_retry_topic(&topic.name).then(|| {
        let policy = retry::RetryPolicy::of(&topic.configs);
        let backoffs = policy
            .backoff_ms
            .iter()
            .map(i64::to_string)
            .collect::<Vec<_>>()
            .join(",");
        [
            (retry::MAX_CONFIG, policy.max.to_string()),
            (retry::BACKOFF_CONFIG, backoffs),
        ]
        .map(|(name, value)| {
            let source = if topic.configs.contains_key(name) {
                source::DYNAMIC_TOPIC_CONFIG
            } else {
                source::DEFAULT_CONFIG
            };
            EffectiveConfig {
                name,
                value: value.clone(),
                source,
                config_type: config_type(ConfigKind::OneOf(&[])),
                synonyms: vec![(name.to_owned(), value, source)],
            }
        })
    });
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = topic.configs.get(def.name) {
                synonyms.push((def.name.to_owned(), v.clone(), source::DYNAMIC_TOPIC_CONFIG));
            }
            if let Some(v) = b.config.log_defaults.get(def.broker_name) {
                synonyms.push((
                    def.broker_name.to_owned(),
                    v.clone(),
                    source::STATIC_BROKER_CONFIG,
                ));
            }
            synonyms.push((
                def.broker_name.to_owned(),
                def.default.to_owned(),
                source::DEFAULT_CONFIG,
            ));
            let (_, value, source) = synonyms[0].clone();
            EffectiveConfig {
                name: def.name,
                value,
                source,
                config_type: config_type(def.kind),
                synonyms,
            }
        })
        .chain(retry_configs.into_iter().flatten())
        .collect()
}

/// The topic to alter the configs of: it must exist and must not be a view.
pub fn alterable_topic(image: &sluice_raft::MetadataImage, name: &str) -> Result<(), Refusal> {
    let Some(topic) = image.topic(name) else {
        return Err(unknown_topic(name));
    };
    match view::source_of(topic) {
        Some(source) => Err(Refusal::new(
            E::InvalidConfig,
            format!("topic '{name}' is a view of '{source}': its definition cannot be altered (delete and re-create it)"),
        )),
        None => Ok(()),
    }
}

pub fn is_known_topic_config(name: &str) -> bool {
    topic_config_def(name).is_some()
}
