//! Produce-time split: the records of a Produce partition that are due now are stored as
//! usual; the delayed ones are taken out of their batches and handed to the timer.
//!
//! A batch with records taken out keeps its header (base offset, last offset delta,
//! producer id and sequences): its delayed records leave gaps at the offsets the producer
//! was told, exactly as compaction leaves them, and an idempotent producer's sequence
//! bookkeeping is unchanged. A batch whose records are all delayed is kept as an empty
//! batch, for the same reasons.

use bytes::Bytes;
use sluice_storage::batch::{self, HEADER_BYTES};
use sluice_storage::deflate::TopicCompression;
use sluice_storage::record::{self, parse_records};

use sluice_storage::record::RawRecord;

use super::retry::{self, RetryPolicy};
use super::{due_ms, is_delay_header, DelayError};

/// Every delay header's key starts so; a batch without such a header has no delayed record.
const HEADER_PREFIX: &[u8] = b"mq.del";

/// A record taken out of its batch until it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delayed {
    /// Which batch of the request it came from, and its offset delta there.
    pub batch: usize,
    pub offset_delta: i32,
    pub due_ms: i64,
    /// The record's own timestamp (CreateTime).
    pub timestamp: i64,
    /// The record as it was in the batch, length prefix included (on a retry topic,
    /// with the broker's headers).
    pub record: Vec<u8>,
    /// Bound for the dead-letter topic (a retry topic's record out of retries).
    pub dead_letter: bool,
}

/// What the partition stores in place of the produced records, and what waits.
#[derive(Debug)]
pub struct Split {
    pub stored: Bytes,
    pub delayed: Vec<Delayed>,
}

/// Why a Produce partition is refused; nothing of it is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A record with bad delay headers (INVALID_RECORD), by its index among the
    /// records of the request's partition.
    BadRecord { index: i32, error: DelayError },
    /// A batch claims the delay timer's producer id (INVALID_PRODUCER_ID_MAPPING): it
    /// would fence the timer's releases.
    ReservedProducerId(i64),
}

/// A Produce partition's records, validated by the log's rules (CRC included, every
/// record read), with the records of the batches the split must look into.
#[derive(Debug)]
pub struct Inspected<'a> {
    pub records: batch::Validated<'a>,
    /// Per batch, its records section if the split must look into it.
    look: Vec<Option<Bytes>>,
    /// Per batch, its records section decompressed, if it is to be rebuilt in the
    /// topic's codec: not decompressed twice.
    pub inflated: Vec<Option<Bytes>>,
}

/// Validates a Produce partition's records and, in the same pass while each batch is
/// in cache, finds the batches that may hold a delayed record: those with a delay
/// header, and every batch of a retry topic. Control and transactional batches never
/// hold one. A compressed batch that `compression` rebuilds keeps its decompressed
/// records section.
pub fn check(
    records: &[u8],
    retry: bool,
    compression: TopicCompression,
) -> Result<Inspected<'_>, batch::BatchError> {
    let (records, seen) = batch::check_inspecting(records, HEADER_PREFIX, |bytes, h, read| {
        let look = !h.is_control()
            && !h.is_transactional()
            && (retry || read.found.header_key_prefix_seen);
        let look = look.then(|| match &read.inflated {
            Some(section) => section.clone(),
            None => Bytes::copy_from_slice(&bytes[HEADER_BYTES..]),
        });
        (
            look,
            read.inflated.clone().filter(|_| compression.rebuilds(h)),
        )
    })?;
    let (look, inflated) = seen.into_iter().unzip();
    Ok(Inspected {
        records,
        look,
        inflated,
    })
}

/// Splits a Produce partition's records. `Ok(None)`: nothing is delayed, store them as
/// they are. Batches the log will refuse anyway (transactional...) are left to it.
pub fn split(
    checked: &Inspected<'_>,
    accepted_ms: i64,
    max_delay_ms: i64,
    reserved_producer_id: i64,
    retry: Option<&RetryPolicy>,
) -> Result<Option<Split>, Refusal> {
    let records = checked.records.bytes();
    let batches = checked.records.batches();
    if batches
        .iter()
        .any(|(_, h)| h.producer_id == reserved_producer_id)
    {
        return Err(Refusal::ReservedProducerId(reserved_producer_id));
    }
    let mut delayed = Vec::new();
    // Per batch: the records section and which of its records stay (None: all stay).
    let mut rebuilt: Vec<Option<Bytes>> = Vec::with_capacity(batches.len());
    let mut index_base = 0i32;
    for (i, (pos, h)) in batches.iter().enumerate() {
        let bytes = &records[*pos..*pos + h.total_bytes()];
        rebuilt.push(None);
        let first_index = index_base;
        index_base = index_base.saturating_add(h.records_count);
        let Some(section) = &checked.look[i] else {
            continue;
        };
        let Ok(recs) = parse_records(section, h.records_count) else {
            debug_assert!(false, "records the check read do not parse");
            continue;
        };
        // A record's offset is its place in the batch: gaps are the broker's to make.
        if !recs
            .iter()
            .enumerate()
            .all(|(n, r)| r.offset_delta == n as i32)
        {
            continue;
        }
        let mut kept = Vec::with_capacity(recs.len());
        let before = delayed.len();
        for (n, r) in recs.iter().enumerate() {
            let bad = |error| Refusal::BadRecord {
                index: first_index + n as i32,
                error,
            };
            let timestamp = h.base_timestamp + r.timestamp_delta;
            if let Some(policy) = retry {
                let (due_ms, dead_letter, record) =
                    retried(r, policy, accepted_ms, max_delay_ms).map_err(bad)?;
                delayed.push(Delayed {
                    batch: i,
                    offset_delta: r.offset_delta,
                    due_ms,
                    timestamp,
                    record,
                    dead_letter,
                });
                continue;
            }
            match due_ms(r, accepted_ms, max_delay_ms).map_err(bad)? {
                None => kept.push(*r),
                Some(due) => delayed.push(Delayed {
                    batch: i,
                    offset_delta: r.offset_delta,
                    due_ms: due,
                    timestamp,
                    record: r.bytes.to_vec(),
                    dead_letter: false,
                }),
            }
        }
        if delayed.len() > before {
            // Its max timestamp is its kept records' largest, as Kafka would store it
            // for those records (-1 when none is kept: nothing of the batch is read).
            let max_timestamp = kept
                .iter()
                .map(|r| h.base_timestamp.saturating_add(r.timestamp_delta))
                .max()
                .unwrap_or(-1);
            let mut b = record::with_records(&bytes[..HEADER_BYTES], &kept);
            batch::set_create_time(&mut b, max_timestamp);
            rebuilt[i] = Some(Bytes::from(b));
        }
    }
    if delayed.is_empty() {
        return Ok(None);
    }
    let mut stored = Vec::with_capacity(records.len());
    for ((pos, h), new) in batches.iter().zip(&rebuilt) {
        match new {
            Some(b) => stored.extend_from_slice(b),
            None => stored.extend_from_slice(&records[*pos..*pos + h.total_bytes()]),
        }
    }
    Ok(Some(Split {
        stored: Bytes::from(stored),
        delayed,
    }))
}

/// A record produced to a retry topic: its count raised, and when it is due (after the
/// backoff of that count, or at once for the dead-letter topic once it is out of retries).
/// Delay headers mean nothing on a retry topic and are dropped.
fn retried(
    r: &RawRecord<'_>,
    policy: &RetryPolicy,
    accepted_ms: i64,
    max_delay_ms: i64,
) -> Result<(i64, bool, Vec<u8>), DelayError> {
    let count = retry::count_of(
        r.headers()
            .find(|(k, _)| *k == retry::COUNT_HEADER.as_bytes())
            .map(|(_, v)| v),
    )?
    .saturating_add(1);
    let dead_letter = count > policy.max;
    let due_ms = if dead_letter {
        accepted_ms
    } else {
        accepted_ms + policy.backoff(count).min(max_delay_ms)
    };
    let count_text = count.to_string();
    let reason = format!(
        "retried {} times: over {}={}",
        count - 1,
        retry::MAX_CONFIG,
        policy.max
    );
    let mut added = vec![(retry::COUNT_HEADER.as_bytes(), Some(count_text.as_bytes()))];
    if dead_letter {
        added.push((retry::REASON_HEADER.as_bytes(), Some(reason.as_bytes())));
    }
    let headers = r
        .headers()
        .filter(|(k, _)| {
            !is_delay_header(k)
                && *k != retry::COUNT_HEADER.as_bytes()
                && *k != retry::REASON_HEADER.as_bytes()
        })
        .chain(added);
    let mut record = Vec::with_capacity(r.bytes.len() + 64);
    record::encode_record(
        &mut record,
        &mut Vec::new(),
        (0, 0),
        r.key,
        r.value,
        headers,
    );
    Ok((due_ms, dead_letter, record))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delay::DELAY_MS;
    use sluice_storage::batch::{split_built, BatchHeader};
    use sluice_storage::record::{records, BatchBuilder};

    /// Checks and splits as Produce does: accepted at 1,000 ms, delays up to 10 s, 99 the
    /// timer's producer id.
    fn looked(c: &Inspected<'_>) -> Vec<bool> {
        c.look.iter().map(Option::is_some).collect()
    }

    fn split_of(records: &[u8], retry: Option<&RetryPolicy>) -> Result<Option<Split>, Refusal> {
        let checked =
            check(records, retry.is_some(), TopicCompression::Producer).expect("valid batches");
        split(&checked, 1_000, 10_000, 99, retry)
    }

    /// A batch of records with optional `mq.delay.ms` values, producer fields given.
    pub fn batch_with_delays(delays: &[Option<&str>], producer: (i64, i16, i32)) -> Bytes {
        let mut b = BatchBuilder::new(100, producer);
        for (i, d) in delays.iter().enumerate() {
            let v = format!("v{i}");
            let headers: Vec<(&[u8], Option<&[u8]>)> = d
                .iter()
                .map(|d| (DELAY_MS.as_bytes(), Some(d.as_bytes())))
                .collect();
            b.push(100 + i as i64, None, Some(v.as_bytes()), headers);
        }
        b.finish()
    }

    #[test]
    fn nothing_delayed_is_left_alone() {
        let b = batch_with_delays(&[None, None], (-1, -1, -1));
        assert!(split_of(&b, None).unwrap().is_none());
        let b = batch_with_delays(&[Some("0")], (-1, -1, -1));
        assert!(split_of(&b, None).unwrap().is_none());
    }

    #[test]
    fn check_marks_the_batches_to_look_into() {
        let mut req = batch_with_delays(&[None, None], (-1, -1, -1)).to_vec();
        req.extend_from_slice(&batch_with_delays(&[None, Some("5")], (-1, -1, -1)));
        assert_eq!(
            looked(&check(&req, false, TopicCompression::Producer).unwrap()),
            [false, true]
        );
        assert_eq!(
            looked(&check(&req, true, TopicCompression::Producer).unwrap()),
            [true, true]
        );
        let last = req.len() - 1;
        req[last] ^= 1;
        assert!(
            check(&req, false, TopicCompression::Producer).is_err(),
            "a bad CRC fails the check"
        );
    }

    #[test]
    fn delayed_records_leave_gaps() {
        let mut req = batch_with_delays(&[None, Some("50"), None], (7, 0, 10)).to_vec();
        req.extend_from_slice(&batch_with_delays(&[Some("1"), Some("2")], (7, 0, 13)));
        let s = split_of(&req, None).unwrap().unwrap();
        let due: Vec<_> = s
            .delayed
            .iter()
            .map(|d| (d.batch, d.offset_delta, d.due_ms, d.timestamp))
            .collect();
        assert_eq!(
            due,
            [(0, 1, 1_050, 101), (1, 0, 1_001, 100), (1, 1, 1_002, 101)]
        );
        let built = split_built(&s.stored).unwrap();
        assert_eq!(built.len(), 2);
        let (pos, h) = built[0];
        assert_eq!(
            (h.records_count, h.last_offset_delta, h.base_sequence),
            (2, 2, 10)
        );
        assert_eq!(h.max_timestamp, 102, "the kept records' largest");
        let first = &s.stored[pos..pos + h.total_bytes()];
        let kept: Vec<_> = records(first, &BatchHeader::parse(first).unwrap())
            .unwrap()
            .iter()
            .map(|r| r.offset_delta)
            .collect();
        assert_eq!(kept, [0, 2]);
        let (_, h) = built[1];
        assert_eq!(
            (h.records_count, h.last_offset_delta, h.base_sequence),
            (0, 1, 13)
        );
        assert_eq!(h.max_timestamp, -1, "no record kept");
    }

    #[test]
    fn a_retry_topic_counts_and_holds_every_record() {
        let policy = RetryPolicy {
            max: 2,
            backoff_ms: vec![100, 200],
        };
        let mut b = BatchBuilder::new(100, (-1, -1, -1));
        let counts = [None, Some("1"), Some("2")];
        for c in counts {
            let h: Vec<(&[u8], Option<&[u8]>)> = c
                .iter()
                .map(|c| (retry::COUNT_HEADER.as_bytes(), Some(c.as_bytes())))
                .chain([(&b"keep"[..], Some(&b"me"[..]))])
                .collect();
            b.push(100, None, Some(b"v"), h);
        }
        let s = split_of(&b.finish(), Some(&policy)).unwrap().unwrap();
        let got: Vec<_> = s
            .delayed
            .iter()
            .map(|d| {
                let r = sluice_storage::record::parse_one(&d.record).unwrap();
                (
                    d.due_ms,
                    d.dead_letter,
                    r.header(retry::COUNT_HEADER).unwrap().to_owned(),
                    r.header("keep").is_some(),
                    r.header(retry::REASON_HEADER).is_some(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (1_100, false, "1".into(), true, false),
                (1_200, false, "2".into(), true, false),
                (1_000, true, "3".into(), true, true),
            ]
        );
        let (_, h) = split_built(&s.stored).unwrap()[0];
        assert_eq!((h.records_count, h.last_offset_delta), (0, 2));
        let mut bad = BatchBuilder::new(100, (-1, -1, -1));
        bad.push(
            100,
            None,
            None,
            [(retry::COUNT_HEADER.as_bytes(), Some(&b"x"[..]))],
        );
        assert!(split_of(&bad.finish(), Some(&policy)).is_err());
    }

    #[test]
    fn a_bad_header_names_its_record() {
        let mut req = batch_with_delays(&[None, None], (-1, -1, -1)).to_vec();
        req.extend_from_slice(&batch_with_delays(&[None, Some("soon")], (-1, -1, -1)));
        let r = split_of(&req, None).unwrap_err();
        assert!(matches!(
            r,
            Refusal::BadRecord {
                index: 3,
                error: DelayError::NotANumber { .. }
            }
        ));
        let b = batch_with_delays(&[None], (99, 0, 0));
        assert_eq!(
            split_of(&b, None).unwrap_err(),
            Refusal::ReservedProducerId(99)
        );
    }
}
