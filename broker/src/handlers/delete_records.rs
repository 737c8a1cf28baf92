use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;

use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::{DeleteRecordsRequest, DeleteRecordsResponse};

use crate::broker::Broker;
use crate::dispatch::RequestContext;
use crate::error_code;

pub const VERSIONS: RangeInclusive<i16> = 0..=2;

pub fn handle(
    b: &Arc<Broker>,
    _ctx: &RequestContext,
    req: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = req
        .topics
        .into_iter()
        .map(|t| {
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let mut r = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index)
                        .with_low_watermark(-1);
                    match b.replicas.get(t.name.0.as_str(), p.partition_index) {
                        // A view's records are its source's: refused for good, as a
                        // produce to it is, not as a partition led elsewhere.
                        None if b.replicas.view(t.name.0.as_str()).is_some() => {
                            tracing::debug!(topic = %t.name.0, "delete records of a view refused");
                            r.error_code = E::InvalidTopicException.code();
                        }
                        None => {
                            r.error_code = error_code::unhosted_partition(
                                &b.image(),
                                &t.name.0,
                                p.partition_index,
                            )
                            .code()
                        }
                        Some(part) => match part.lock().delete_records_before(p.offset) {
                            Ok(low) => r.low_watermark = low,
                            Err(e) => r.error_code = error_code::storage(&e).code(),
                        },
                    }
                    r
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}
