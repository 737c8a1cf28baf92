use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::broker::Broker;
use crate::dispatch::RequestContext;

pub const VERSIONS: RangeInclusive<i16> = 0..=5;

/// Idempotent producers only: a transactional id is refused, because Sluice has no
/// transaction coordinator (the transaction APIs are not advertised).
pub async fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req.transactional_id.is_some() {
        return resp.with_error_code(E::TransactionalIdAuthorizationFailed.code());
    }
    // KIP-360: a producer that knows its id asks for the next epoch of it; for an
    // idempotent producer without a coordinator, bumping the epoch is always safe
    // because sequences restart at 0 and older epochs are fenced by the partitions.
    // The delay timer's producer id is never bumped for a client: that would fence it.
    let reserved = req.producer_id.0 == b.delays.producer_id();
    if req.producer_id.0 >= 0
        && !reserved
        && req.producer_epoch >= 0
        && req.producer_epoch < i16::MAX - 1
    {
        return resp
            .with_producer_id(req.producer_id)
            .with_producer_epoch(req.producer_epoch + 1);
    }
    match b.producer_ids.next(&b.metadata).await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "producer id allocation failed");
            resp.with_error_code(E::CoordinatorNotAvailable.code())
        }
    }
}
