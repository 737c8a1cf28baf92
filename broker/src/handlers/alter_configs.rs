use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use sluice_raft::MetadataCommand;

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::topics::{self, Refusal, RESOURCE_TOPIC};

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

/// Legacy AlterConfigs: the request's configs replace the topic's whole override set.
pub async fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::new();
    for res in req.resources {
        let name = res.resource_name.to_string();
        let configs: Result<BTreeMap<String, String>, Refusal> = res
            .configs
            .iter()
            .map(|c| match &c.value {
                Some(v) => Ok((c.name.to_string(), v.to_string())),
                None => Err(Refusal::new(
                    E::InvalidConfig,
                    format!("null value for config {}", c.name),
                )),
            })
            .collect();
        let outcome = match (res.resource_type, configs) {
            (_, Err(r)) => Err(r),
            (RESOURCE_TOPIC, Ok(configs)) => {
                alter_topic(b, &name, configs, req.validate_only).await
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
    AlterConfigsResponse::default().with_responses(responses)
}

async fn alter_topic(
    b: &Broker,
    name: &str,
    configs: BTreeMap<String, String>,
    validate_only: bool,
) -> Result<(), Refusal> {
    topics::alterable_topic(&b.image(), name)?;
    topics::validate_configs(name, &configs)?;
    if validate_only {
        return Ok(());
    }
    topics::propose_simple(
        b,
        MetadataCommand::ReplaceTopicConfigs {
            name: name.to_owned(),
            configs,
        },
    )
    .await
}
