use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{authorized_operations, str_bytes, AclResource};
use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

/// Kafka's endpoint types: 1 brokers, 2 controllers.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let image = b.image();
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(str_bytes(image.cluster_id.clone()))
        .with_controller_id(BrokerId(image.controller_id))
        .with_cluster_authorized_operations(if req.include_cluster_authorized_operations {
            authorized_operations(AclResource::Cluster)
        } else {
            i32::MIN
        });
    if ctx.version >= 1 {
        resp.endpoint_type = req.endpoint_type;
        if req.endpoint_type != ENDPOINT_BROKERS && req.endpoint_type != ENDPOINT_CONTROLLERS {
            return resp.with_error_code(E::UnsupportedEndpointType.code());
        }
    }
    // Every broker is also a metadata voter, so brokers and controllers are one list.
    resp.brokers = image
        .brokers
        .values()
        .map(|info| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(info.node_id))
                .with_host(str_bytes(info.host.clone()))
                .with_port(info.port)
                .with_rack(info.rack.clone().map(str_bytes))
        })
        .collect();
    resp
}
