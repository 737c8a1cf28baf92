//! Per-batch tag summaries, so a view read can settle a batch without decoding it.
//!
//! RocketMQ keeps a tag hash per message in its ConsumeQueue for the same reason. Here a
//! batch's summary says whether its records carry no tag, one tag, or several (with a
//! 64-bit Bloom signature of them). With a tag filter, "no tag" and "one tag not in the
//! filter" skip the batch, "one tag in the filter" sends it whole by sendfile, and a
//! signature that none of the filter's tags can be in also skips it; only the rest is
//! decoded.
//!
//! Summaries are made when a batch is appended to a topic that has views, and when a
//! view read first decodes a batch. They live in memory with the partition, keyed by the
//! batch's base offset and bounded per partition; a batch without one (after a restart,
//! or evicted) is decoded and summarised again.

use std::collections::BTreeMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use sluice_storage::record;

use super::filter::{Filter, TAG_HEADER};

/// Summaries kept per partition; past this the oldest half is dropped.
const MAX_PER_PARTITION: usize = 100_000;

/// What the records of one batch carry in `mq.tag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TagSummary {
    /// No record has a tag.
    Untagged,
    /// Every record has this tag.
    Uniform(Arc<str>),
    /// Records have different tags, or some have none: the Bloom signature of the tags.
    Mixed(u64),
}

/// What a summary settles for a filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    /// Every record matches: send the batch as stored.
    All,
    /// No record matches: leave the batch out.
    None,
    /// The summary cannot tell: decode the batch.
    Unknown,
}

/// Two bits of a 64-bit signature per tag.
fn signature_of(tag: &str) -> u64 {
    let mut h = DefaultHasher::new();
    tag.hash(&mut h);
    let v = h.finish();
    (1u64 << (v & 63)) | (1u64 << ((v >> 6) & 63))
}

impl TagSummary {
    /// Summarises a batch from its records' tags (None: a record without one).
    pub fn of_tags<'a>(tags: impl Iterator<Item = Option<&'a str>>) -> TagSummary {
        let mut first: Option<&str> = None;
        let mut uniform = true;
        let mut untagged = 0;
        let mut signature = 0u64;
        for tag in tags {
            match tag {
                None => untagged += 1,
                Some(t) => {
                    signature |= signature_of(t);
                    match first {
                        None => first = Some(t),
                        Some(f) if f != t => uniform = false,
                        Some(_) => {}
                    }
                }
            }
        }
        match first {
            None => TagSummary::Untagged,
            Some(t) if uniform && untagged == 0 => TagSummary::Uniform(t.into()),
            Some(_) => TagSummary::Mixed(signature),
        }
    }

    /// What this summary settles for `filter` (tag lists only; SQL filters decode).
    pub fn settle(&self, filter: &Filter) -> Settled {
        let Some(tags) = filter.tags() else {
            return if filter.matches_all() {
                Settled::All
            } else {
                Settled::Unknown
            };
        };
        match self {
            TagSummary::Untagged => Settled::None,
            TagSummary::Uniform(t) if tags.iter().any(|f| f.as_str() == &**t) => Settled::All,
            TagSummary::Uniform(_) => Settled::None,
            TagSummary::Mixed(sig) => {
                if tags
                    .iter()
                    .any(|f| signature_of(f) & sig == signature_of(f))
                {
                    Settled::Unknown
                } else {
                    Settled::None
                }
            }
        }
    }
}

/// Summarises batches just appended at `base_offset` (they were validated on the way
/// in, and may have had delayed records taken out).
pub fn summarise_appended(cache: &SummaryCache, records: &[u8], base_offset: i64) {
    let Ok(batches) = sluice_storage::batch::split_built(records) else {
        return;
    };
    let mut next = base_offset;
    for (pos, h) in batches {
        let stored = Bytes::copy_from_slice(&records[pos..pos + h.total_bytes()]);
        if let Some(section) = record::records_section(&h, &stored) {
            if let Ok(recs) = record::parse_records(&section, h.records_count) {
                let tags = recs.iter().map(|r| r.header(TAG_HEADER));
                cache.insert(next, TagSummary::of_tags(tags));
            }
        }
        next += h.records_count as i64;
    }
}

/// The summaries of one partition's batches, by base offset.
#[derive(Debug, Default)]
pub struct SummaryCache {
    by_base: Mutex<BTreeMap<i64, TagSummary>>,
}

impl SummaryCache {
    pub fn get(&self, base_offset: i64) -> Option<TagSummary> {
        self.lock().get(&base_offset).cloned()
    }

    pub fn insert(&self, base_offset: i64, summary: TagSummary) {
        let mut map = self.lock();
        map.insert(base_offset, summary);
        if map.len() > MAX_PER_PARTITION {
            // Readers mostly follow the log's end: keep the newer half.
            let keep_from = *map
                .keys()
                .nth(map.len() / 2)
                .expect("more than MAX entries");
            *map = map.split_off(&keep_from);
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<i64, TagSummary>> {
        // Summaries are hints: a poisoned map is still a valid one.
        self.by_base.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(tags: &[Option<&str>]) -> TagSummary {
        TagSummary::of_tags(tags.iter().copied())
    }

    #[test]
    fn kinds() {
        assert_eq!(summary(&[None, None]), TagSummary::Untagged);
        assert_eq!(
            summary(&[Some("a"), Some("a")]),
            TagSummary::Uniform("a".into())
        );
        assert!(matches!(summary(&[Some("a"), None]), TagSummary::Mixed(_)));
        assert!(matches!(
            summary(&[Some("a"), Some("b")]),
            TagSummary::Mixed(_)
        ));
    }

    #[test]
    fn settles_tag_filters_without_decoding() {
        let ab = Filter::parse("a || b").unwrap();
        assert_eq!(summary(&[None]).settle(&ab), Settled::None);
        assert_eq!(summary(&[Some("a")]).settle(&ab), Settled::All);
        assert_eq!(summary(&[Some("c")]).settle(&ab), Settled::None);
        assert_eq!(
            summary(&[Some("a"), Some("c")]).settle(&ab),
            Settled::Unknown
        );
        // A signature without a filter tag's bits rules a mixed batch out undecoded.
        let ab_bits = signature_of("a") | signature_of("b");
        let other = (0..)
            .map(|i| format!("x{i}"))
            .find(|t| signature_of(t) & ab_bits == 0)
            .unwrap();
        assert_eq!(summary(&[Some(&other), None]).settle(&ab), Settled::None);
        assert_eq!(
            summary(&[Some(&other), Some("b")]).settle(&ab),
            Settled::Unknown
        );
    }

    #[test]
    fn sql_needs_decoding_and_star_needs_nothing() {
        let sql = Filter::parse("sql:tag = 'a'").unwrap();
        assert_eq!(summary(&[Some("a")]).settle(&sql), Settled::Unknown);
        let all = Filter::parse("*").unwrap();
        assert_eq!(summary(&[None]).settle(&all), Settled::All);
    }

    #[test]
    fn cache_is_bounded_and_keeps_the_newest() {
        let c = SummaryCache::default();
        for base in 0..(MAX_PER_PARTITION as i64 + 1) {
            c.insert(base, TagSummary::Untagged);
        }
        assert!(c.len() <= MAX_PER_PARTITION / 2 + 1);
        assert!(c.get(MAX_PER_PARTITION as i64).is_some());
        assert!(c.get(0).is_none());
    }
}
