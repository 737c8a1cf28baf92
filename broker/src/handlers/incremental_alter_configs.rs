use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig;
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse};
use sluice_raft::MetadataCommand;

use super::{repeated, str_bytes};
use crate::broker::Broker;
use crate::delay::retry;
use crate::dispatch::RequestContext;
use crate::topics::{self, Refusal, RESOURCE_TOPIC};
use sluice_storage::config::{topic_config_def, ConfigKind};

pub const VERSIONS: RangeInclusive<i16> = 0..=1;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub async fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let twice = repeated(
        req.resources
            .iter()
            .map(|r| (r.resource_type, r.resource_name.clone())),
    );
    let mut responses = Vec::new();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let screened = topics::screen_alterations(
            twice.contains(&(res.resource_type, res.resource_name.clone())),
            res.configs.iter().map(|c| {
                (
                    c.name.as_str(),
                    c.config_operation != OP_DELETE && c.value.is_none(),
                )
            }),
        );
        let outcome = match (res.resource_type, screened) {
            (_, Err(r)) => Err(r),
            (RESOURCE_TOPIC, Ok(())) => {
                alter_topic(b, &name, &res.configs, req.validate_only).await
            }
            (other, _) => Err(topics::refuse_config_alteration(other)),
        };
        let mut r = AlterConfigsResourceResponse::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name);
        if let Err(refusal) = outcome {
            r.error_code = refusal.error.code();
            r.error_message = Some(str_bytes(refusal.message));
        }
        responses.push(r);
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

async fn alter_topic(
    b: &Broker,
    name: &str,
    ops: &[AlterableConfig],
    validate_only: bool,
) -> Result<(), Refusal> {
    let image = b.image();
    topics::alterable_topic(&image, name)?;
    let current = image.topic(name).map(|t| &t.configs);
    let mut set = BTreeMap::new();
    let mut delete = Vec::new();
    for op in ops {
        let key = op.name.to_string();
        if !topics::is_known_topic_config(&key) && !retry::is_retry_config(&key) {
            if op.config_operation == OP_DELETE {
                // Deleting what the topic cannot set is a no-op, as Kafka's controller
                // writes no record for a key that is null before and after.
                continue;
            }
            return Err(Refusal::new(
                E::InvalidConfig,
                format!("unknown or unsupported topic config {key}"),
            ));
        }
        match op.config_operation {
            OP_SET => {
                // `screen_alterations` refused a SET without a value before this.
                let Some(value) = &op.value else {
                    debug_assert!(false, "an unscreened null value");
                    return Err(Refusal::new(
                        E::InvalidRequest,
                        format!("null value for {key}"),
                    ));
                };
                set.insert(key, value.to_string());
            }
            OP_DELETE => delete.push(key),
            OP_APPEND | OP_SUBTRACT => {
                let verb = if op.config_operation == OP_APPEND {
                    "APPEND"
                } else {
                    "SUBTRACT"
                };
                let is_list =
                    topic_config_def(&key).is_some_and(|d| matches!(d.kind, ConfigKind::ListOf(_)));
                if !is_list {
                    return Err(Refusal::new(
                        E::InvalidConfig,
                        format!("Can't {verb} to key {key} because its type is not LIST."),
                    ));
                }
                // Where the topic does not set it, Kafka's controller starts from the
                // built-in default, not the broker's setting.
                let old = current
                    .and_then(|c| c.get(&key).cloned())
                    .or_else(|| topic_config_def(&key).map(|d| d.default.to_owned()))
                    .unwrap_or_default();
                let given = op.value.as_ref().map_or("", |v| v.as_str());
                set.insert(
                    key,
                    list_operation(&old, given, op.config_operation == OP_APPEND),
                );
            }
            other => {
                return Err(Refusal::new(
                    E::InvalidRequest,
                    format!("unknown config operation {other}"),
                ))
            }
        }
    }
    topics::validate_configs(name, &set)?;
    if validate_only {
        return Ok(());
    }
    topics::propose_simple(
        b,
        MetadataCommand::AlterTopicConfigs {
            name: name.to_owned(),
            set,
            delete,
        },
    )
    .await
}

/// Kafka's APPEND and SUBTRACT on a list-type value, as its controller applies them
/// (`ConfigurationControlManager`): the old list without its empty items; each given
/// item (the value split as Java splits it: trailing empty items dropped) appended if
/// not in the list yet, or its first copy taken out.
fn list_operation(old: &str, given: &str, append: bool) -> String {
    let mut list: Vec<&str> = old.split(',').filter(|v| !v.is_empty()).collect();
    let mut items: Vec<&str> = given.split(',').collect();
    if items.len() > 1 {
        while items.last() == Some(&"") {
            items.pop();
        }
    }
    for item in items {
        match list.iter().position(|v| *v == item) {
            None if append => list.push(item),
            Some(i) if !append => {
                list.remove(i);
            }
            _ => {}
        }
    }
    list.join(",")
}

#[cfg(test)]
mod tests {
    use super::list_operation;

    #[test]
    fn append_and_subtract_as_kafka_does() {
        for (old, given, append, want) in [
            ("delete", "delete", true, "delete"),
            ("delete", "compact", true, "delete,compact"),
            ("delete,compact", "compact", false, "delete"),
            ("delete", "delete", false, ""),
            ("", "delete", true, "delete"),
            ("delete", "nope", false, "delete"),
            ("delete", "delete,delete", true, "delete"),
            ("", "a,b,a", true, "a,b"),
            ("delete,delete", "delete", false, "delete"),
            ("delete", "delete,", true, "delete"),
            ("delete", "delete,,", true, "delete"),
            ("", "delete,", true, "delete"),
            ("delete", ",", true, "delete"),
            ("delete", "", true, "delete,"),
            ("a,,b", "c", true, "a,b,c"),
        ] {
            assert_eq!(
                list_operation(old, given, append),
                want,
                "{old:?} {given:?} {append}"
            );
        }
    }
}
