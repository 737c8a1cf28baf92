//! Delayed delivery: a record with `mq.deliver.at`, `mq.delay.ms` or `mq.delay.level`
//! is acknowledged and kept on disk, out of its partition, until it is due; then the
//! broker appends it to the same partition with a new offset.
//!
//! - [`split`]: a produced batch is split into the records stored now and the delayed
//!   ones (which leave gaps at their offsets, as compaction does).
//! - [`store`]: delayed records on disk, and a timing wheel chaining them by due second.
//! - [`timer`]: stages what is about to come due and releases it exactly once.
//! - [`retry`]: retry topics (`G.retry`), whose records are held by the same timer, and
//!   their dead-letter topics (`G.dlq`).

pub mod retry;
pub mod split;
pub mod store;
pub mod timer;

use sluice_storage::record::RawRecord;

/// Epoch milliseconds at which to deliver; wins over the other two.
pub const DELIVER_AT: &str = "mq.deliver.at";
/// Milliseconds after the broker accepts the record.
pub const DELAY_MS: &str = "mq.delay.ms";
/// RocketMQ's delay levels, 1 to 18 ([`LEVELS_MS`]).
pub const DELAY_LEVEL: &str = "mq.delay.level";
/// Added on release: the offset the producer was given for the record.
pub const ORIGIN_OFFSET: &str = "mq.delay.origin.offset";

/// RocketMQ's levels: 1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h.
pub const LEVELS_MS: [i64; 18] = {
    const S: i64 = 1_000;
    const M: i64 = 60 * S;
    [
        S,
        5 * S,
        10 * S,
        30 * S,
        M,
        2 * M,
        3 * M,
        4 * M,
        5 * M,
        6 * M,
        7 * M,
        8 * M,
        9 * M,
        10 * M,
        20 * M,
        30 * M,
        60 * M,
        120 * M,
    ]
};

/// Broker setting: the furthest a record may be delayed (Sluice's; 40 days).
pub const MAX_DELAY_SETTING: &str = "mq.delay.max.ms";
/// Broker setting: the length at which the delay store starts a new segment file.
pub const SEGMENT_BYTES_SETTING: &str = "mq.delay.segment.bytes";

/// Whether a header is one of the three delay headers (removed on release).
pub fn is_delay_header(key: &[u8]) -> bool {
    key == DELIVER_AT.as_bytes() || key == DELAY_MS.as_bytes() || key == DELAY_LEVEL.as_bytes()
}

/// Why a record's delay headers were refused (INVALID_RECORD).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DelayError {
    #[error("header {header} must be a non-negative integer, got {value:?}")]
    NotANumber { header: &'static str, value: String },
    #[error("header {header} is null or not UTF-8")]
    Unreadable { header: &'static str },
    #[error("{header}={value} is more than {max_ms} ms away (mq.delay.max.ms)")]
    TooFar {
        header: &'static str,
        value: i64,
        max_ms: i64,
    },
    #[error("header mq.delay.level must be 1 to 18, got {0}")]
    BadLevel(i64),
}

fn number(header: &'static str, value: Option<&[u8]>) -> Result<i64, DelayError> {
    let text = value
        .and_then(|v| std::str::from_utf8(v).ok())
        .ok_or(DelayError::Unreadable { header })?;
    match text.parse::<i64>() {
        Ok(n) if n >= 0 && text.bytes().all(|b| b.is_ascii_digit()) => Ok(n),
        _ => Err(DelayError::NotANumber {
            header,
            value: text.chars().take(64).collect(),
        }),
    }
}

/// When `record`, accepted at `accepted_ms`, is due: None when it carries no delay
/// header or is due already. Every delay header present must be valid, even one that a
/// higher-ranked header overrides.
pub fn due_ms(
    record: &RawRecord<'_>,
    accepted_ms: i64,
    max_delay_ms: i64,
) -> Result<Option<i64>, DelayError> {
    let (mut at, mut after, mut level) = (None, None, None);
    for (key, value) in record.headers() {
        if key == DELIVER_AT.as_bytes() {
            at.get_or_insert(number(DELIVER_AT, value)?);
        } else if key == DELAY_MS.as_bytes() {
            after.get_or_insert(number(DELAY_MS, value)?);
        } else if key == DELAY_LEVEL.as_bytes() {
            level.get_or_insert(number(DELAY_LEVEL, value)?);
        }
    }
    let too_far = |header, value| DelayError::TooFar {
        header,
        value,
        max_ms: max_delay_ms,
    };
    if let Some(l) = level {
        if !(1..=18).contains(&l) {
            return Err(DelayError::BadLevel(l));
        }
    }
    if let Some(ms) = after {
        if ms > max_delay_ms {
            return Err(too_far(DELAY_MS, ms));
        }
    }
    if let Some(t) = at {
        if t.saturating_sub(accepted_ms) > max_delay_ms {
            return Err(too_far(DELIVER_AT, t));
        }
    }
    let due = at
        .or(after.map(|ms| accepted_ms + ms))
        .or(level.map(|l| accepted_ms + LEVELS_MS[l as usize - 1]));
    Ok(due.filter(|&d| d > accepted_ms))
}

#[cfg(test)]
mod tests {
    use super::*;
    use sluice_storage::record::{parse_one, BatchBuilder};

    /// Runs `due_ms` on a record with these headers.
    fn due(headers: &[(&str, Option<&str>)]) -> Result<Option<i64>, DelayError> {
        let mut b = BatchBuilder::new(0, (-1, -1, -1));
        b.push(
            0,
            None,
            Some(b"v"),
            headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.map(str::as_bytes))),
        );
        let batch = b.finish();
        let r = parse_one(&batch[sluice_storage::batch::HEADER_BYTES..]).unwrap();
        due_ms(&r, 1_000, 10_000_000)
    }

    #[test]
    fn precedence_and_levels() {
        assert_eq!(due(&[]), Ok(None));
        assert_eq!(due(&[(DELAY_MS, Some("500"))]), Ok(Some(1_500)));
        assert_eq!(due(&[(DELAY_LEVEL, Some("2"))]), Ok(Some(6_000)));
        assert_eq!(due(&[(DELAY_LEVEL, Some("18"))]), Ok(Some(7_201_000)));
        assert_eq!(
            due(&[(DELAY_MS, Some("500")), (DELIVER_AT, Some("9000"))]),
            Ok(Some(9_000))
        );
        assert_eq!(
            due(&[(DELAY_LEVEL, Some("1")), (DELAY_MS, Some("7"))]),
            Ok(Some(1_007))
        );
        // Due already: delivered at once, like any record.
        assert_eq!(due(&[(DELAY_MS, Some("0"))]), Ok(None));
        assert_eq!(due(&[(DELIVER_AT, Some("5"))]), Ok(None));
    }

    #[test]
    fn bad_values_are_refused() {
        for bad in ["", "-1", "+5", "1.5", "ten", " 5", "99999999999999999999"] {
            assert!(
                matches!(
                    due(&[(DELAY_MS, Some(bad))]),
                    Err(DelayError::NotANumber { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(
            due(&[(DELAY_MS, None)]),
            Err(DelayError::Unreadable { header: DELAY_MS })
        );
        assert_eq!(
            due(&[(DELAY_LEVEL, Some("0"))]),
            Err(DelayError::BadLevel(0))
        );
        assert_eq!(
            due(&[(DELAY_LEVEL, Some("19"))]),
            Err(DelayError::BadLevel(19))
        );
        assert!(matches!(
            due(&[(DELAY_MS, Some("10000001"))]),
            Err(DelayError::TooFar { .. })
        ));
        assert!(matches!(
            due(&[(DELIVER_AT, Some("10001001"))]),
            Err(DelayError::TooFar { .. })
        ));
        // An overridden header is still checked.
        assert!(due(&[(DELIVER_AT, Some("9000")), (DELAY_MS, Some("x"))]).is_err());
    }
}
