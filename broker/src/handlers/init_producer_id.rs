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
    // An id without an epoch, or an epoch without an id (`KafkaApis`).
    if (req.producer_id.0 == -1) != (req.producer_epoch == -1) {
        return resp.with_error_code(E::InvalidRequest.code());
    }
    // Without a transactional id Kafka always hands out a new id at epoch 0, whatever id
    // the client names (`TransactionCoordinator.handleInitProducerId`): it cannot tell
    // that this cluster ever gave the client that id (franz-go sends its last one when
    // it reloads), and bumping a stranger's epoch would fence its owner.
    match b.producer_ids.next(&b.metadata).await {
        Ok(id) => resp.with_producer_id(ProducerId(id)).with_producer_epoch(0),
        Err(e) => {
            tracing::warn!(error = %e, "producer id allocation failed");
            // Kafka's answer while its id manager has no block (`ProducerIdManager`):
            // retriable. COORDINATOR_NOT_AVAILABLE sends the Java producer to look up a
            // transaction coordinator for a transactional id it does not have.
            resp.with_error_code(E::CoordinatorLoadInProgress.code())
        }
    }
}
