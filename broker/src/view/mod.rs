//! Tag-filtered views (RocketMQ's tag and SQL92 filtering, as Kafka topics).
//!
//! A view is a topic created with `mq.view.source=<topic>` and `mq.view.filter=<expr>`.
//! It has its source's partitions, no log of its own, and its offsets are the source's:
//! a Fetch on a view reads the source partition and leaves out the records the filter
//! rejects, so consumers see gaps, as after compaction. Everything else a consumer does
//! (ListOffsets, OffsetForLeaderEpoch, group commits, lag) works on the view's name.
//!
//! - [`filter`]: the filter expressions.
//! - [`read`]: turning a region of the source log into what a view's reader gets.
//! - [`summary`]: per-batch tag summaries that settle batches without decoding them.
//!
//! Views are defined once: their configs cannot be altered (delete and re-create the
//! view), producing to a view is refused, and deleting a source deletes its views.

pub mod filter;
pub mod read;
pub mod summary;

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use sluice_raft::{MetadataImage, TopicMeta};

use crate::topics::Refusal;
use filter::Filter;

/// The topic config naming a view's source topic.
pub const SOURCE_CONFIG: &str = "mq.view.source";
/// The topic config holding a view's filter expression.
pub const FILTER_CONFIG: &str = "mq.view.filter";

/// A view as the broker serves it: its source and its compiled filter.
#[derive(Debug)]
pub struct View {
    pub source: String,
    pub filter: Filter,
}

/// The source topic, if this topic is a view.
pub fn source_of(topic: &TopicMeta) -> Option<&str> {
    topic.configs.get(SOURCE_CONFIG).map(String::as_str)
}

/// True if `configs` (of a topic being created) define a view.
pub fn defines_view(configs: &BTreeMap<String, String>) -> bool {
    configs.contains_key(SOURCE_CONFIG) || configs.contains_key(FILTER_CONFIG)
}

/// True for the configs only a view may have.
pub fn is_view_config(name: &str) -> bool {
    name == SOURCE_CONFIG || name == FILTER_CONFIG
}

/// Compiles a view from its topic metadata (None if the topic is not a view). The
/// filter was checked when the view was created, so a failure here means metadata
/// written by something else; the view then serves nothing rather than everything.
pub fn compile(topic: &TopicMeta) -> Option<Arc<View>> {
    let source = source_of(topic)?;
    let text = topic.configs.get(FILTER_CONFIG).map_or("*", String::as_str);
    match Filter::parse(text) {
        Ok(filter) => Some(Arc::new(View {
            source: source.to_owned(),
            filter,
        })),
        Err(e) => {
            tracing::error!(view = %topic.name, error = %e, "view filter in metadata does not parse");
            None
        }
    }
}

/// Checks a view definition at CreateTopics: the source exists and is not itself a
/// view or internal, the filter parses, no other config is given, and the partition
/// count (-1 for "the source's") matches the source. Returns the partition count.
pub fn validate_new(
    image: &MetadataImage,
    name: &str,
    partitions: i32,
    configs: &BTreeMap<String, String>,
) -> Result<i32, Refusal> {
    let invalid = |msg: String| Err(Refusal::new(E::InvalidConfig, msg));
    let Some(source) = configs.get(SOURCE_CONFIG) else {
        return invalid(format!(
            "view '{name}': {FILTER_CONFIG} needs {SOURCE_CONFIG} naming the source topic"
        ));
    };
    if let Some(other) = configs.keys().find(|k| !is_view_config(k)) {
        return invalid(format!(
            "view '{name}': config {other} cannot be set on a view (it reads {source}'s log)"
        ));
    }
    let filter = configs.get(FILTER_CONFIG).map_or("*", String::as_str);
    if let Err(e) = Filter::parse(filter) {
        return invalid(format!("view '{name}': {FILTER_CONFIG}: {e}"));
    }
    let Some(src) = image.topic(source) else {
        return invalid(format!(
            "view '{name}': source topic '{source}' does not exist"
        ));
    };
    if source_of(src).is_some() {
        return invalid(format!(
            "view '{name}': source '{source}' is itself a view; name its source instead"
        ));
    }
    if src.internal {
        return invalid(format!(
            "view '{name}': source '{source}' is an internal topic"
        ));
    }
    let source_partitions = src.partitions.len() as i32;
    if partitions != -1 && partitions != source_partitions {
        return Err(Refusal::new(
            E::InvalidPartitions,
            format!(
                "view '{name}' has its source's {source_partitions} partitions; \
                 leave the partition count unset or give {source_partitions}"
            ),
        ));
    }
    Ok(source_partitions)
}

/// Why a view cannot be altered, produced to, or given partitions.
pub fn read_only(name: &str, source: &str, what: &str) -> Refusal {
    Refusal::new(
        E::InvalidTopicException,
        format!("topic '{name}' is a view of '{source}' and cannot {what}; use '{source}'"),
    )
}

/// The views of `source` in the image (to delete them with it).
pub fn views_of<'a>(
    image: &'a MetadataImage,
    source: &'a str,
) -> impl Iterator<Item = &'a TopicMeta> {
    image
        .topics
        .values()
        .map(|t| &**t)
        .filter(move |t| source_of(t) == Some(source))
}

/// Test helper: a record at `offset` with an `mq.tag` header (None: no header).
#[cfg(test)]
fn tagged_record(offset: i64, tag: Option<&str>) -> kafka_protocol::records::Record {
    use bytes::Bytes;
    use kafka_protocol::indexmap::IndexMap;
    use kafka_protocol::protocol::StrBytes;
    let mut headers = IndexMap::new();
    if let Some(t) = tag {
        headers.insert(
            StrBytes::from_static_str(filter::TAG_HEADER),
            Some(Bytes::copy_from_slice(t.as_bytes())),
        );
    }
    kafka_protocol::records::Record {
        transactional: false,
        control: false,
        delete_horizon: false,
        partition_leader_epoch: 4,
        producer_id: -1,
        producer_epoch: -1,
        timestamp_type: kafka_protocol::records::TimestampType::Creation,
        offset,
        // Records without a producer count their sequence up from -1 with the offset.
        sequence: (offset as i32).wrapping_sub(1),
        timestamp: 1_000 + offset,
        key: None,
        value: Some(Bytes::from(format!("value-{offset}"))),
        headers,
    }
}
