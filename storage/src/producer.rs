//! Idempotent-producer state of one partition: per producer id, its epoch and the last
//! five batches it appended (Kafka keeps five because a producer has at most five
//! requests in flight per connection when idempotence is on).

use std::collections::{HashMap, VecDeque};

use crate::batch::BatchHeader;

pub const BATCHES_KEPT: usize = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMeta {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<BatchMeta>,
}

impl ProducerEntry {
    pub fn last_seq(&self) -> Option<i32> {
        self.batches.back().map(|b| b.last_seq)
    }

    /// The max timestamp of the producer's last batch: what Kafka's
    /// `ProducerStateEntry.lastTimestamp` holds, and what its expiry is measured from.
    pub fn last_timestamp(&self) -> Option<i64> {
        self.batches.back().map(|b| b.max_timestamp)
    }
}

/// What the sequence check decided for a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SequenceCheck {
    /// A new batch: append it.
    Append,
    /// A retry of a batch already stored: acknowledge it again, store nothing.
    Duplicate(BatchMeta),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerError {
    #[error("producer {producer_id} epoch {epoch} is older than the current epoch {current}")]
    InvalidEpoch {
        producer_id: i64,
        epoch: i16,
        current: i16,
    },
    #[error("producer {producer_id}: expected sequence {expected}, got {got}")]
    OutOfOrder {
        producer_id: i64,
        expected: i32,
        got: i32,
    },
}

fn in_sequence(last: i32, next: i32) -> bool {
    next as i64 == last as i64 + 1 || (last == i32::MAX && next == 0)
}

#[derive(Debug, Default, Clone)]
pub struct ProducerStateTable {
    producers: HashMap<i64, ProducerEntry>,
}

impl ProducerStateTable {
    /// Starts a scratch table from an existing entry (to check a request before it is
    /// appended).
    pub fn seed(&mut self, producer_id: i64, entry: ProducerEntry) {
        self.producers.insert(producer_id, entry);
    }

    pub fn get(&self, producer_id: i64) -> Option<&ProducerEntry> {
        self.producers.get(&producer_id)
    }

    /// The last sequence number `producer_id` appended here, if it appended anything.
    pub fn last_seq(&self, producer_id: i64) -> Option<i32> {
        self.get(producer_id).and_then(ProducerEntry::last_seq)
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    /// Every producer with state here, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (i64, &ProducerEntry)> {
        self.producers.iter().map(|(&id, e)| (id, e))
    }

    /// Gives `now_ms` as the last time of each producer whose last batch has none (-1:
    /// a batch stored without its records, rebuilt from the log), so its expiration
    /// counts from now rather than from the epoch.
    pub fn date_unknown_times(&mut self, now_ms: i64) {
        for e in self.producers.values_mut() {
            if let Some(last) = e.batches.back_mut().filter(|b| b.max_timestamp < 0) {
                last.max_timestamp = now_ms;
            }
        }
    }

    /// Forgets producers whose last batch is `max_idle_ms` or more older than `now_ms`
    /// (Kafka's `producer.id.expiration.ms`, `ProducerStateManager.isProducerExpired`),
    /// except those `keep` holds on to. A forgotten producer's next batch is taken as a
    /// new producer's: it may start at any sequence, and a retry of a batch it appended
    /// before is stored again. Returns how many were forgotten.
    pub fn remove_expired(
        &mut self,
        now_ms: i64,
        max_idle_ms: i64,
        keep: impl Fn(i64) -> bool,
    ) -> usize {
        let before = self.producers.len();
        self.producers.retain(|&id, e| {
            keep(id)
                || e.last_timestamp()
                    .is_some_and(|ts| now_ms.saturating_sub(ts) < max_idle_ms)
        });
        before - self.producers.len()
    }
    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    /// Kafka's rules (ProducerAppendInfo): a retried batch is found among the last five;
    /// an older epoch is fenced; a newer epoch must start at sequence 0; the same epoch
    /// must continue the sequence; a producer with no state here may start anywhere
    /// (its earlier records may have been deleted by retention or DeleteRecords).
    pub fn check(&self, h: &BatchHeader) -> Result<SequenceCheck, ProducerError> {
        debug_assert!(h.has_producer_id());
        let Some(entry) = self.producers.get(&h.producer_id) else {
            return Ok(SequenceCheck::Append);
        };
        if h.producer_epoch < entry.epoch {
            return Err(ProducerError::InvalidEpoch {
                producer_id: h.producer_id,
                epoch: h.producer_epoch,
                current: entry.epoch,
            });
        }
        if h.producer_epoch == entry.epoch {
            if let Some(dup) = entry
                .batches
                .iter()
                .find(|b| b.first_seq == h.base_sequence && b.last_seq == h.last_sequence())
            {
                return Ok(SequenceCheck::Duplicate(*dup));
            }
            if let Some(last) = entry.last_seq() {
                if !in_sequence(last, h.base_sequence) {
                    let expected = if last == i32::MAX { 0 } else { last + 1 };
                    return Err(ProducerError::OutOfOrder {
                        producer_id: h.producer_id,
                        expected,
                        got: h.base_sequence,
                    });
                }
            }
            return Ok(SequenceCheck::Append);
        }
        // A bumped epoch starts its sequence again.
        if h.base_sequence != 0 {
            return Err(ProducerError::OutOfOrder {
                producer_id: h.producer_id,
                expected: 0,
                got: h.base_sequence,
            });
        }
        Ok(SequenceCheck::Append)
    }

    /// Records a batch that was appended (its header carries the assigned base offset).
    pub fn record(&mut self, h: &BatchHeader) {
        if !h.has_producer_id() {
            return;
        }
        let entry = self.producers.entry(h.producer_id).or_default();
        if h.producer_epoch != entry.epoch {
            entry.epoch = h.producer_epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(BatchMeta {
            first_seq: h.base_sequence,
            last_seq: h.last_sequence(),
            base_offset: h.base_offset,
            last_offset: h.last_offset(),
            max_timestamp: h.max_timestamp,
        });
        while entry.batches.len() > BATCHES_KEPT {
            entry.batches.pop_front();
        }
    }

    /// Forgets every batch at or above `offset` (log truncation).
    pub fn truncate_from(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{build_batch, BatchHeader};

    fn header(offset: i64, pid: i64, epoch: i16, seq: i32, n: usize) -> BatchHeader {
        let values: Vec<&[u8]> = (0..n).map(|_| &b"v"[..]).collect();
        let mut b = build_batch(offset, 0, &values, (pid, epoch, seq)).to_vec();
        crate::batch::assign(&mut b, offset, 0);
        BatchHeader::parse(&b).unwrap()
    }

    #[test]
    fn sequences() {
        let mut t = ProducerStateTable::default();
        let a = header(0, 1, 0, 0, 3);
        assert_eq!(t.check(&a), Ok(SequenceCheck::Append));
        t.record(&a);
        // retry of the same batch: duplicate, acknowledged with the original offsets
        assert!(
            matches!(t.check(&header(99, 1, 0, 0, 3)), Ok(SequenceCheck::Duplicate(m)) if m.base_offset == 0 && m.last_offset == 2)
        );
        // gap
        assert!(matches!(
            t.check(&header(3, 1, 0, 4, 1)),
            Err(ProducerError::OutOfOrder {
                expected: 3,
                got: 4,
                ..
            })
        ));
        // next in order
        let b = header(3, 1, 0, 3, 2);
        assert_eq!(t.check(&b), Ok(SequenceCheck::Append));
        t.record(&b);
        // fenced epoch
        assert!(matches!(
            t.check(&header(5, 1, -0, 5, 1)),
            Ok(SequenceCheck::Append)
        ));
        let mut t2 = t.clone();
        t2.record(&header(5, 1, 2, 0, 1));
        assert!(matches!(
            t2.check(&header(6, 1, 1, 1, 1)),
            Err(ProducerError::InvalidEpoch { .. })
        ));
        // new epoch must start at 0
        assert!(matches!(
            t.check(&header(5, 1, 1, 7, 1)),
            Err(ProducerError::OutOfOrder { expected: 0, .. })
        ));
        assert_eq!(t.check(&header(5, 1, 1, 0, 1)), Ok(SequenceCheck::Append));
        // unknown producer may start anywhere
        assert_eq!(t.check(&header(5, 2, 0, 42, 1)), Ok(SequenceCheck::Append));
    }

    #[test]
    fn idle_producers_expire_from_their_last_batch() {
        let at = |pid: i64, ts: i64| {
            BatchHeader::parse(&build_batch(0, ts, &[b"v", b"w"], (pid, 0, 0))).unwrap()
        };
        let mut t = ProducerStateTable::default();
        t.record(&at(1, 1_000));
        t.record(&at(2, 1_000));
        t.record(&at(2, 5_000)); // a later batch renews producer 2
        t.record(&at(3, 1_000));
        assert_eq!(t.get(2).unwrap().last_timestamp(), Some(5_001));
        // 4,000 ms after producer 1's last record (at 1,001): not yet idle long enough.
        assert_eq!(t.remove_expired(5_000, 4_000, |_| false), 0);
        assert_eq!(t.remove_expired(5_001, 4_000, |id| id == 3), 1);
        assert!(t.get(1).is_none(), "idle for the whole expiration");
        assert!(t.get(2).is_some() && t.get(3).is_some());
        // A forgotten producer is a new one again: any sequence is taken.
        assert_eq!(t.check(&header(9, 1, 0, 42, 1)), Ok(SequenceCheck::Append));
        assert_eq!(t.remove_expired(i64::MAX, 4_000, |_| false), 2);
        assert!(t.is_empty());
    }

    #[test]
    fn keeps_five_batches_and_truncates() {
        let mut t = ProducerStateTable::default();
        for i in 0..8 {
            t.record(&header(i, 1, 0, i as i32, 1));
        }
        assert_eq!(t.get(1).unwrap().batches.len(), BATCHES_KEPT);
        assert!(matches!(
            t.check(&header(0, 1, 0, 7, 1)),
            Ok(SequenceCheck::Duplicate(_))
        ));
        t.truncate_from(6);
        assert_eq!(t.get(1).unwrap().batches.back().unwrap().last_offset, 5);
        t.truncate_from(0);
        assert!(t.is_empty());
    }
}
