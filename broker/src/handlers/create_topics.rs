use std::collections::{BTreeMap, HashSet};
use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::{CreateTopicsRequest, CreateTopicsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::topics::{self, Refusal};

pub const VERSIONS: RangeInclusive<i16> = 2..=7;

pub async fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: CreateTopicsRequest,
) -> CreateTopicsResponse {
    let mut seen = HashSet::new();
    let duplicated: HashSet<String> = req
        .topics
        .iter()
        .filter(|t| !seen.insert(t.name.0.to_string()))
        .map(|t| t.name.0.to_string())
        .collect();
    let mut results = Vec::new();
    for t in req.topics {
        let name = t.name.0.to_string();
        let mut result = CreatableTopicResult::default().with_name(t.name.clone());
        let outcome = if duplicated.contains(&name) {
            Err(Refusal::new(
                E::InvalidRequest,
                format!("topic '{name}' appears more than once in the request"),
            ))
        } else if !t.assignments.is_empty() {
            Err(Refusal::new(
                E::InvalidRequest,
                "manual replica assignment is not supported by Sluice yet",
            ))
        } else {
            let mut configs = BTreeMap::new();
            let mut bad = None;
            for c in &t.configs {
                match &c.value {
                    Some(v) => {
                        configs.insert(c.name.to_string(), v.to_string());
                    }
                    None => {
                        bad = Some(Refusal::new(
                            E::InvalidConfig,
                            format!("null value for config {}", c.name),
                        ))
                    }
                }
            }
            match bad {
                Some(r) => Err(r),
                None => {
                    topics::create_topic(
                        b,
                        &name,
                        t.num_partitions,
                        t.replication_factor,
                        configs,
                        req.validate_only,
                    )
                    .await
                }
            }
        };
        match outcome {
            Ok((id, partitions, rf)) => {
                result.topic_id = id;
                if ctx.version >= 5 {
                    result.num_partitions = partitions;
                    result.replication_factor = rf;
                    result.configs = Some(describe_new(
                        b,
                        &name,
                        &t.configs
                            .iter()
                            .map(|c| {
                                (
                                    c.name.to_string(),
                                    c.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                                )
                            })
                            .collect(),
                    ));
                }
            }
            Err(r) => {
                result.error_code = r.error.code();
                result.error_message = Some(str_bytes(r.message));
                if ctx.version >= 5 {
                    result.num_partitions = -1;
                    result.replication_factor = -1;
                }
            }
        }
        results.push(result);
    }
    CreateTopicsResponse::default().with_topics(results)
}

/// The configs a created topic ends up with (CreateTopics v5+ returns them).
fn describe_new(
    b: &Broker,
    name: &str,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    let meta = sluice_raft::TopicMeta {
        name: name.to_owned(),
        id: uuid::Uuid::nil(),
        partitions: Vec::new(),
        configs: overrides.clone(),
        internal: false,
    };
    topics::effective_topic_configs(b, &meta)
        .into_iter()
        .map(|c| {
            CreatableTopicConfigs::default()
                .with_name(str_bytes(c.name))
                .with_value(Some(str_bytes(c.value)))
                .with_config_source(c.source)
        })
        .collect()
}
