use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};

use super::str_bytes;
use crate::broker::Broker;
use crate::config::BrokerConfig;
use crate::dispatch::RequestContext;
use crate::topics::{self, source, RESOURCE_BROKER, RESOURCE_TOPIC};

pub const VERSIONS: RangeInclusive<i16> = 1..=4;

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let mut results = Vec::new();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let mut result = DescribeConfigsResult::default()
            .with_resource_type(res.resource_type)
            .with_resource_name(res.resource_name.clone());
        // No keys, or an empty list of them, asks for every config (`ConfigHelper`).
        let wanted = |k: &str| {
            res.configuration_keys
                .as_ref()
                .is_none_or(|keys| keys.is_empty() || keys.iter().any(|w| w.as_str() == k))
        };
        match res.resource_type {
            RESOURCE_TOPIC => {
                let image = b.image();
                let Some(topic) = image.topic(&name) else {
                    // As `ConfigHelper.describeConfigs`: an illegal name is invalid
                    // before it is unknown.
                    let r = topics::legal_topic_name(&name)
                        .err()
                        .unwrap_or_else(|| topics::unknown_topic(&name));
                    result.error_code = r.error.code();
                    result.error_message = Some(str_bytes(r.message));
                    results.push(result);
                    continue;
                };
                for c in topics::effective_topic_configs(b, topic) {
                    if !wanted(c.name) {
                        continue;
                    }
                    // No documentation (null, as Kafka answers unless asked for it).
                    let mut entry = DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(c.name))
                        .with_value(Some(str_bytes(c.value)))
                        .with_config_source(c.source)
                        .with_documentation(None);
                    if req.include_synonyms {
                        entry.synonyms = c
                            .synonyms
                            .into_iter()
                            .map(|(n, v, s)| {
                                DescribeConfigsSynonym::default()
                                    .with_name(str_bytes(n))
                                    .with_value(Some(str_bytes(v)))
                                    .with_source(s)
                            })
                            .collect();
                    }
                    if ctx.version >= 3 {
                        entry.config_type = c.config_type;
                    }
                    result.configs.push(entry);
                }
            }
            RESOURCE_BROKER => {
                if !name.is_empty() && name != b.node_id.to_string() {
                    result.error_code = E::InvalidRequest.code();
                    result.error_message = Some(str_bytes(format!(
                        "unexpected broker id {name}, this is broker {}",
                        b.node_id
                    )));
                    results.push(result);
                    continue;
                }
                for (key, value, default) in b.config.describe() {
                    if !wanted(&key) {
                        continue;
                    }
                    let src = if default {
                        source::DEFAULT_CONFIG
                    } else {
                        source::STATIC_BROKER_CONFIG
                    };
                    // The log settings' types are their topic configs'.
                    let config_type = BrokerConfig::setting_type(&key)
                        .map(topics::setting_type)
                        .or_else(|| {
                            sluice_storage::config::TOPIC_CONFIGS
                                .iter()
                                .find(|d| d.broker_name == key)
                                .map(|d| topics::config_type(d.kind))
                        });
                    debug_assert!(config_type.is_some(), "{key} has a type");
                    let mut entry = DescribeConfigsResourceResult::default()
                        .with_name(str_bytes(key))
                        .with_value(Some(str_bytes(value)))
                        .with_read_only(true)
                        .with_config_source(src)
                        .with_documentation(None);
                    if ctx.version >= 3 {
                        entry.config_type = config_type.unwrap_or(2);
                    }
                    result.configs.push(entry);
                }
            }
            other => {
                let r = topics::unsupported_resource(other);
                result.error_code = r.error.code();
                result.error_message = Some(str_bytes(r.message));
            }
        }
        results.push(result);
    }
    DescribeConfigsResponse::default().with_results(results)
}
