//! DescribeProducers (KIP-664): the idempotent producers a partition holds state for,
//! as `kafka-transactions describe-producers` and `Admin.describeProducers` show them.
//! Sluice has no transactions, so no producer has a coordinator epoch or an open
//! transaction.

use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::{DescribeProducersRequest, DescribeProducersResponse, ProducerId};
use kafka_protocol::protocol::StrBytes;

use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::error_code;
use crate::topics::legal_topic_name;

pub const VERSIONS: RangeInclusive<i16> = 0..=0;

pub fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let image = b.image();
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let name = t.name.0.as_str();
            // Kafka's order: an illegal name, then a topic the metadata does not have,
            // then per partition what the replica manager says.
            let topic_error = match legal_topic_name(name) {
                Err(r) => Some((r.error, Some(r.message))),
                Ok(()) if image.topic(name).is_none() => Some((
                    kafka_protocol::error::ResponseError::UnknownTopicOrPartition,
                    None,
                )),
                Ok(()) => None,
            };
            let partitions = t
                .partition_indexes
                .iter()
                .map(|&index| {
                    let r = PartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(error_code::NONE);
                    if let Some((e, message)) = &topic_error {
                        return r
                            .with_error_code(e.code())
                            .with_error_message(message.clone().map(StrBytes::from_string));
                    }
                    // A view has no producers of its own: those of its source write
                    // what it shows.
                    let Some(part) = b.replicas.get_for_read(name, index).map(|t| t.partition)
                    else {
                        return r.with_error_code(
                            error_code::unhosted_partition(&image, name, index).code(),
                        );
                    };
                    let log = part.lock();
                    let mut active: Vec<_> = log
                        .producers()
                        .iter()
                        .map(|(id, e)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(id))
                                .with_producer_epoch(e.epoch as i32)
                                .with_last_sequence(e.last_seq().unwrap_or(-1))
                                .with_last_timestamp(e.last_timestamp().unwrap_or(-1))
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(-1)
                        })
                        .collect();
                    drop(log);
                    active.sort_unstable_by_key(|p| p.producer_id.0);
                    r.with_active_producers(active)
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}
