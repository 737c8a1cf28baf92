use std::collections::BTreeMap;
use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::{AlterConfigsRequest, AlterConfigsResponse};
use sluice_raft::MetadataCommand;

use super::{repeated, str_bytes};
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
            res.configs
                .iter()
                .map(|c| (c.name.as_str(), c.value.is_none())),
        );
        let outcome = match (res.resource_type, screened) {
            (_, Err(r)) => Err(r),
            (RESOURCE_TOPIC, Ok(())) => {
                let configs = res
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
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
