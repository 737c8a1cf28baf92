use std::ops::RangeInclusive;
use std::sync::Arc;

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};

use super::str_bytes;
use crate::broker::Broker;
use crate::clock::now_ms;
use crate::delay;
use crate::delay::retry::{self, RetryPolicy};
use crate::delay::split::Refusal;
use crate::dispatch::{Reply, RequestContext};
use crate::error_code;
use crate::metrics::Metrics;
use crate::view;
use crate::view::summary::summarise_appended;
use sluice_storage::batch::{self, BatchError};
use sluice_storage::deflate::{self, TopicCompression};

/// v13 names topics by id only; up to v12 by name.
pub const VERSIONS: RangeInclusive<i16> = 3..=12;

pub async fn handle(b: &Arc<Broker>, _ctx: &RequestContext, req: ProduceRequest) -> Reply {
    let acks = req.acks;
    let refuse_all = if req.transactional_id.is_some() {
        Some(E::TransactionalIdAuthorizationFailed)
    } else if !matches!(acks, -1..=1) {
        Some(E::InvalidRequiredAcks)
    } else {
        None
    };
    let mut responses = Vec::with_capacity(req.topic_data.len());
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let partition_responses = topic
            .partition_data
            .into_iter()
            .map(|pd| {
                let r = PartitionProduceResponse::default()
                    .with_index(pd.index)
                    .with_base_offset(-1);
                match refuse_all {
                    Some(e) => r.with_error_code(e.code()),
                    None => append(b, &name, pd.index, pd.records.as_deref(), acks, r),
                }
            })
            .collect();
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses),
        );
    }
    if acks == 0 {
        // No answer is expected, so a failure is told the way Kafka tells it: by closing
        // the connection, after which the producer refreshes its metadata.
        let failed: Vec<String> = responses
            .iter()
            .flat_map(|t| {
                t.partition_responses
                    .iter()
                    .filter(|p| p.error_code != 0)
                    .map(move |p| format!("{}-{}: error {}", t.name.0, p.index, p.error_code))
            })
            .collect();
        if failed.is_empty() {
            return Reply::Nothing;
        }
        return Reply::Close(format!("acks=0 produce failed ({})", failed.join(", ")));
    }
    let resp = ProduceResponse::default().with_responses(responses);
    Reply::Message(Box::new(ResponseKind::Produce(resp)))
}

fn append(
    b: &Broker,
    topic: &str,
    partition: i32,
    records: Option<&[u8]>,
    acks: i16,
    r: PartitionProduceResponse,
) -> PartitionProduceResponse {
    let Some(part) = b.replicas.get(topic, partition) else {
        if let Some(v) = b.replicas.view(topic) {
            // Kafka refuses appends to its internal topics the same way.
            let refusal = view::read_only(topic, &v.source, "be produced to");
            tracing::debug!(topic, "produce to a view refused");
            return r
                .with_error_code(refusal.error.code())
                .with_error_message(Some(str_bytes(refusal.message)));
        }
        return r
            .with_error_code(error_code::unhosted_partition(&b.image(), topic, partition).code());
    };
    let Some(records) = records else {
        // No batch at all, as Kafka answers a partition without one.
        return r.with_error_code(E::InvalidRecord.code());
    };
    // Kafka refuses a batch over `max.message.bytes` before it reads a record, so an
    // oversized batch is never decompressed. (One batch per partition: its size is the
    // records' size.)
    let (max_message_bytes, compression) = {
        let log = part.lock();
        (log.config().max_message_bytes, log.config().compression)
    };
    if records.len() > max_message_bytes {
        let e = sluice_storage::Error::RecordTooLarge {
            size: records.len(),
            max: max_message_bytes,
        };
        tracing::debug!(topic, partition, error = %e, "produce refused");
        return r
            .with_error_code(error_code::storage(&e).code())
            .with_error_message(Some(str_bytes(e.to_string())));
    }
    let accepted_ms = now_ms();
    let retry_policy = retry::is_retry_topic(topic)
        .then(|| b.image().topic(topic).map(|t| RetryPolicy::of(&t.configs)))
        .flatten();
    // A batch the log would refuse (bad CRC...) is answered below, after the same
    // checks as the log's own (replicas, then records).
    let checked = delay::split::check(records, retry_policy.is_some(), compression).and_then(|c| {
        // Kafka's `LogValidator` takes one v2 batch per partition and refuses more, and
        // `analyzeAndValidateRecords` a client's batch not at base offset 0.
        match c.records.batches() {
            [(_, h)] if h.base_offset != 0 => Err(BatchError::BaseOffset {
                base_offset: h.base_offset,
            }),
            [_] => Ok(c),
            batches => Err(BatchError::SeveralBatches {
                count: batches.len(),
            }),
        }
    });
    let split = match checked.as_ref().map(|c| {
        delay::split::split(
            c,
            accepted_ms,
            b.delays.max_delay_ms,
            b.delays.producer_id(),
            retry_policy.as_ref(),
        )
    }) {
        Err(_) => None,
        Ok(Ok(s)) => s,
        Ok(Err(Refusal::BadRecord { index, error })) => {
            tracing::debug!(topic, partition, index, error = %error,
                "produce refused: bad delay header");
            let message = format!("record {index}: {error}");
            return r
                .with_error_code(E::InvalidRecord.code())
                .with_error_message(Some(str_bytes(message.clone())))
                .with_record_errors(vec![BatchIndexAndErrorMessage::default()
                    .with_batch_index(index)
                    .with_batch_index_error_message(Some(str_bytes(message)))]);
        }
        Ok(Err(Refusal::ReservedProducerId(id))) => {
            tracing::debug!(
                topic,
                partition,
                id,
                "produce refused: the timer's producer id"
            );
            return r.with_error_code(E::InvalidProducerIdMapping.code());
        }
    };
    // The batch in the topic's codec, rebuilt here, outside the partition's lock.
    let recoded = match &checked {
        Ok(c) => {
            let kept = split.as_ref().map_or(c.records.bytes(), |s| &s.stored[..]);
            in_topic_codec(kept, c, split.is_some(), compression, max_message_bytes)
        }
        Err(_) => Ok(None),
    };
    // Declared before the partition's lock: dropped unsettled (a panic in the append),
    // it takes that lock to see whether the batch landed.
    let mut scheduled = None;
    let mut log = part.lock();
    if acks == -1 {
        let (isr, replicas) = b
            .image()
            .topic(topic)
            .and_then(|t| t.partitions.get(partition as usize))
            .map_or((0, usize::MAX), |p| (p.isr.len(), p.replicas.len()));
        // Kafka's `effectiveMinIsr` (KIP-966): min.insync.replicas, but never more than
        // the partition has replicas, so a topic set to 2 on one broker takes acks=all.
        let min_isr = (log.config().min_insync_replicas as usize).min(replicas);
        if isr < min_isr {
            return r.with_error_code(E::NotEnoughReplicas.code());
        }
    }
    // What the log stores in place of the produced batch, if anything: the batch without
    // its delayed records, and in the topic's codec.
    let (recoded, refusal) = match recoded {
        Ok(r) => (r, None),
        Err(e) => (None, Some(e)),
    };
    let replaced = recoded.as_deref().or(split.as_ref().map(|s| &s.stored[..]));
    let appended = match (&checked, refusal) {
        (Err(e), _) => Err(sluice_storage::Error::from(e.clone())),
        (Ok(_), Some(e)) => Err(e),
        (Ok(c), None) => log.append_as_leader_with(
            &c.records,
            replaced,
            part.leader_epoch(),
            accepted_ms,
            |bases| {
                if let Some(s) = &split {
                    scheduled = Some(b.delays.schedule(&part, bases, &s.delayed)?);
                }
                Ok(())
            },
        ),
    };
    if let Some(scheduled) = scheduled.take() {
        scheduled.settle(log.log_end_offset());
    }
    let stored = replaced.unwrap_or(records);
    match appended {
        Ok(a) => {
            part.advance_hw_to_leo(&mut log);
            drop(log);
            if !a.duplicate && part.has_views.load(std::sync::atomic::Ordering::Relaxed) {
                // Views read this topic: summarise its batches now, while they are in
                // memory, so view reads can settle them without reading them back.
                summarise_appended(&part.summaries, stored, a.base_offset);
            }
            Metrics::add(&b.metrics.produced_records, a.records as u64);
            Metrics::add(
                &b.metrics.produced_bytes,
                if a.duplicate { 0 } else { stored.len() as u64 },
            );
            r.with_base_offset(a.base_offset)
                .with_log_append_time_ms(a.log_append_time_ms)
                .with_log_start_offset(a.log_start_offset)
        }
        Err(e) => {
            let code = error_code::storage(&e);
            tracing::debug!(topic, partition, error = %e, "produce refused");
            // No record errors: they name records that are bad on their own, and the
            // Java producer answers the records they do not name with a generic error.
            // A refusal of the whole batch names none, as in Kafka.
            r.with_error_code(code.code())
                .with_error_message(Some(str_bytes(e.to_string())))
        }
    }
}

/// `kept` (the produced batch, or what the delay split left of it) rebuilt in the topic's
/// codec, as Kafka's `LogValidator` rebuilds a batch produced in another one, or `None`
/// when it is in that codec already (or the topic keeps the producer's). A rebuilt
/// batch is held to `max.message.bytes` again, as Kafka holds it after a rebuild.
fn in_topic_codec(
    kept: &[u8],
    checked: &delay::split::Inspected<'_>,
    split: bool,
    compression: TopicCompression,
    max_message_bytes: usize,
) -> Result<Option<Vec<u8>>, sluice_storage::Error> {
    // What the split kept is a batch it built: its records section is not the one
    // validated.
    let inflated = if split {
        &[][..]
    } else {
        &checked.inflated[..]
    };
    let Some(mut rebuilt) = deflate::recompress(kept, compression, inflated)? else {
        return Ok(None);
    };
    if !split {
        // Its max timestamp is its records' largest, as the log takes it from the records
        // of a batch stored as produced (the split sets it on what it keeps).
        batch::set_create_time(&mut rebuilt, checked.records.max_timestamp(0));
    }
    if rebuilt.len() > max_message_bytes {
        return Err(sluice_storage::Error::RecordTooLarge {
            size: rebuilt.len(),
            max: max_message_bytes,
        });
    }
    Ok(Some(rebuilt))
}
