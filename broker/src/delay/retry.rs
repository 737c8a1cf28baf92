//! Retry and dead-letter topics (RocketMQ's consumer retry): a consumer of group G that
//! fails on a record produces it to `G.retry`. The broker raises the record's
//! `mq.retry.count` and holds it for the backoff of that count before it shows in
//! `G.retry`; once the count passes `mq.retry.max` it goes to `G.dlq` instead, with
//! `mq.dlq.reason`. Both topics are ordinary topics: creating `G.retry` (explicitly or by
//! auto-creation) creates `G.dlq` beside it.

use std::collections::BTreeMap;

use super::DelayError;

pub const RETRY_SUFFIX: &str = ".retry";
pub const DLQ_SUFFIX: &str = ".dlq";
/// Maintained by the broker on retry topics: how many times the record was retried.
pub const COUNT_HEADER: &str = "mq.retry.count";
/// Added to a record sent to the dead-letter topic.
pub const REASON_HEADER: &str = "mq.dlq.reason";
/// Topic config of a retry topic: retries before the dead-letter topic (default 16).
pub const MAX_CONFIG: &str = "mq.retry.max";
/// Topic config of a retry topic: comma-separated backoffs in ms, by retry count; the
/// last one serves every count beyond the list.
pub const BACKOFF_CONFIG: &str = "mq.retry.backoff.ms";
pub const DEFAULT_MAX: i64 = 16;
/// RocketMQ's retry schedule: 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h.
pub const DEFAULT_BACKOFF_MS: &str = "10000,30000,60000,120000,180000,240000,300000,360000,\
420000,480000,540000,600000,1200000,1800000,3600000,7200000";
const MAX_BACKOFFS: usize = 64;

/// Whether `topic` is a retry topic (`G.retry`, with a non-empty G).
pub fn is_retry_topic(topic: &str) -> bool {
    topic.len() > RETRY_SUFFIX.len() && topic.ends_with(RETRY_SUFFIX)
}

/// The dead-letter topic of a retry topic.
pub fn dead_letter_topic(retry_topic: &str) -> String {
    debug_assert!(is_retry_topic(retry_topic));
    format!(
        "{}{DLQ_SUFFIX}",
        &retry_topic[..retry_topic.len() - RETRY_SUFFIX.len()]
    )
}

pub fn is_retry_config(key: &str) -> bool {
    key == MAX_CONFIG || key == BACKOFF_CONFIG
}

/// Why a retry config was refused (INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RetryConfigError {
    #[error("{key} applies only to retry topics (named <group>.retry), not '{topic}'")]
    NotARetryTopic { key: String, topic: String },
    #[error("{MAX_CONFIG} must be an integer from 0 to 1000, got {0:?}")]
    BadMax(String),
    #[error("{BACKOFF_CONFIG} must be 1 to {MAX_BACKOFFS} comma-separated non-negative integers, got {0:?}")]
    BadBackoff(String),
}

fn parse_backoffs(v: &str) -> Option<Vec<i64>> {
    let list: Option<Vec<i64>> = v
        .split(',')
        .map(|s| s.trim().parse::<i64>().ok().filter(|n| *n >= 0))
        .collect();
    list.filter(|l| (1..=MAX_BACKOFFS).contains(&l.len()))
}

/// Checks a retry config given to `topic`.
pub fn validate_config(topic: &str, key: &str, value: &str) -> Result<(), RetryConfigError> {
    debug_assert!(is_retry_config(key));
    if !is_retry_topic(topic) {
        return Err(RetryConfigError::NotARetryTopic {
            key: key.to_owned(),
            topic: topic.to_owned(),
        });
    }
    if key == MAX_CONFIG {
        match value.trim().parse::<i64>() {
            Ok(n) if (0..=1000).contains(&n) => Ok(()),
            _ => Err(RetryConfigError::BadMax(value.to_owned())),
        }
    } else {
        parse_backoffs(value)
            .map(|_| ())
            .ok_or_else(|| RetryConfigError::BadBackoff(value.to_owned()))
    }
}

/// A retry topic's policy, from its (validated) configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub max: i64,
    pub backoff_ms: Vec<i64>,
}

impl RetryPolicy {
    pub fn of(configs: &BTreeMap<String, String>) -> RetryPolicy {
        let max = configs
            .get(MAX_CONFIG)
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(DEFAULT_MAX);
        let backoff_ms = configs
            .get(BACKOFF_CONFIG)
            .and_then(|v| parse_backoffs(v))
            .unwrap_or_else(|| parse_backoffs(DEFAULT_BACKOFF_MS).expect("the default parses"));
        RetryPolicy { max, backoff_ms }
    }

    /// The backoff before retry number `count` (1 for the first).
    pub fn backoff(&self, count: i64) -> i64 {
        debug_assert!(count >= 1);
        let i = (count.max(1) as usize - 1).min(self.backoff_ms.len() - 1);
        self.backoff_ms[i]
    }
}

/// The retry count a record carries (absent: 0).
pub fn count_of(value: Option<Option<&[u8]>>) -> Result<i64, DelayError> {
    match value {
        None => Ok(0),
        Some(v) => super::number(COUNT_HEADER, v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_policy() {
        assert!(is_retry_topic("g1.retry"));
        assert!(!is_retry_topic(".retry"));
        assert!(!is_retry_topic("orders"));
        assert_eq!(dead_letter_topic("g1.retry"), "g1.dlq");
        let p = RetryPolicy::of(&BTreeMap::new());
        assert_eq!(
            (p.max, p.backoff(1), p.backoff(16), p.backoff(40)),
            (16, 10_000, 7_200_000, 7_200_000)
        );
        let p = RetryPolicy::of(&BTreeMap::from([
            (MAX_CONFIG.to_owned(), "3".to_owned()),
            (BACKOFF_CONFIG.to_owned(), "100, 200".to_owned()),
        ]));
        assert_eq!(
            (p.max, p.backoff(1), p.backoff(2), p.backoff(3)),
            (3, 100, 200, 200)
        );
    }

    #[test]
    fn configs_are_checked() {
        assert!(validate_config("g.retry", MAX_CONFIG, "3").is_ok());
        assert!(validate_config("g.retry", BACKOFF_CONFIG, "0,10").is_ok());
        assert!(matches!(
            validate_config("orders", MAX_CONFIG, "3"),
            Err(RetryConfigError::NotARetryTopic { .. })
        ));
        for bad in ["-1", "x", "1001"] {
            assert!(
                validate_config("g.retry", MAX_CONFIG, bad).is_err(),
                "{bad}"
            );
        }
        for bad in ["", "1,,2", "-5", "a"] {
            assert!(
                validate_config("g.retry", BACKOFF_CONFIG, bad).is_err(),
                "{bad}"
            );
        }
        assert_eq!(count_of(None), Ok(0));
        assert_eq!(count_of(Some(Some(b"2"))), Ok(2));
        assert!(count_of(Some(Some(b"two"))).is_err());
    }
}
