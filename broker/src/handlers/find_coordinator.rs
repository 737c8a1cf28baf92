use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::{BrokerId, FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;

use super::str_bytes;
use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=6;

const KEY_TYPE_GROUP: i8 = 0;

pub fn handle(
    b: &Arc<Broker>,
    ctx: &RequestContext,
    req: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let (host, port) = b.config.advertised();
    let answer = |key: StrBytes| -> Coordinator {
        let c = Coordinator::default()
            .with_key(key)
            .with_node_id(BrokerId(-1))
            .with_host(str_bytes(""))
            .with_port(-1);
        if req.key_type == KEY_TYPE_GROUP {
            c.with_node_id(BrokerId(b.node_id))
                .with_host(str_bytes(host.clone()))
                .with_port(port)
        } else {
            // No transaction coordinator: say so rather than send the client looking.
            c.with_error_code(E::TransactionalIdAuthorizationFailed.code())
                .with_error_message(Some(str_bytes("Sluice does not support transactions")))
        }
    };
    if ctx.version >= 4 {
        return FindCoordinatorResponse::default()
            .with_coordinators(req.coordinator_keys.into_iter().map(answer).collect());
    }
    let c = answer(req.key);
    FindCoordinatorResponse::default()
        .with_error_code(c.error_code)
        .with_error_message(c.error_message)
        .with_node_id(c.node_id)
        .with_host(c.host)
        .with_port(c.port)
}
