use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::{ApiVersionsRequest, ApiVersionsResponse};

use crate::broker::Broker;
use crate::dispatch::{RequestContext, SUPPORTED};

pub const VERSIONS: RangeInclusive<i16> = 0..=4;

pub fn handle(
    _b: &Arc<Broker>,
    _ctx: &RequestContext,
    _req: ApiVersionsRequest,
) -> ApiVersionsResponse {
    let api_keys = SUPPORTED
        .iter()
        .map(|(key, v)| {
            ApiVersion::default()
                .with_api_key(*key as i16)
                .with_min_version(*v.start())
                .with_max_version(*v.end())
        })
        .collect();
    // No supported/finalized features: Sluice has no feature flags to negotiate, and
    // leaving the tagged fields at their defaults keeps them off the wire (old
    // librdkafka mis-parses some of them).
    ApiVersionsResponse::default().with_api_keys(api_keys)
}
