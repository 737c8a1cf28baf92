//! Topic-level log configuration: Kafka's names, defaults and validation, in one table.
//!
//! Only configs that Sluice enforces are listed; any other name is refused with
//! INVALID_CONFIG rather than accepted and ignored.

use std::collections::BTreeMap;

use crate::deflate::{self, TopicCompression};

/// How a config value is checked.
#[derive(Debug, Clone, Copy)]
pub enum ConfigKind {
    Long {
        min: i64,
    },
    Int {
        min: i64,
    },
    /// An int in `min..=max`, or `also` (gzip's -1: the library's default level).
    IntBetween {
        min: i64,
        max: i64,
        also: Option<i64>,
    },
    OneOf(&'static [&'static str]),
    /// A comma-separated list (Kafka's LIST type) of these values; empty is a list too.
    ListOf(&'static [&'static str]),
}

/// The items of a list-type value: `""` is the empty list.
pub fn list_items(value: &str) -> Vec<&str> {
    if value.trim().is_empty() {
        return Vec::new();
    }
    value.split(',').map(str::trim).collect()
}

#[derive(Debug, Clone, Copy)]
pub struct TopicConfigDef {
    /// The topic-level name (`retention.ms`).
    pub name: &'static str,
    /// The broker-level name that sets its default (`log.retention.ms`).
    pub broker_name: &'static str,
    pub default: &'static str,
    pub kind: ConfigKind,
}

const fn long(
    name: &'static str,
    broker_name: &'static str,
    default: &'static str,
    min: i64,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_name,
        default,
        kind: ConfigKind::Long { min },
    }
}
const fn int(
    name: &'static str,
    broker_name: &'static str,
    default: &'static str,
    min: i64,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_name,
        default,
        kind: ConfigKind::Int { min },
    }
}

pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    TopicConfigDef {
        name: "cleanup.policy",
        broker_name: "log.cleanup.policy",
        default: "delete",
        // Kafka's "compact" is refused: Sluice does not compact. An empty list keeps
        // every segment (no retention), as in Kafka.
        kind: ConfigKind::ListOf(&["delete"]),
    },
    // A codec level applies to batches the broker rebuilds in that codec (KIP-390).
    TopicConfigDef {
        name: "compression.gzip.level",
        broker_name: "compression.gzip.level",
        default: "-1",
        kind: ConfigKind::IntBetween {
            min: 1,
            max: 9,
            also: Some(-1),
        },
    },
    TopicConfigDef {
        name: "compression.lz4.level",
        broker_name: "compression.lz4.level",
        default: "9",
        kind: ConfigKind::IntBetween {
            min: 1,
            max: 17,
            also: None,
        },
    },
    TopicConfigDef {
        name: "compression.type",
        broker_name: "compression.type",
        default: "producer",
        kind: ConfigKind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    },
    TopicConfigDef {
        name: "compression.zstd.level",
        broker_name: "compression.zstd.level",
        default: "3",
        kind: ConfigKind::IntBetween {
            min: -131072,
            max: 22,
            also: None,
        },
    },
    long(
        "flush.messages",
        "log.flush.interval.messages",
        "9223372036854775807",
        1,
    ),
    long(
        "flush.ms",
        "log.flush.interval.ms",
        "9223372036854775807",
        0,
    ),
    int(
        "index.interval.bytes",
        "log.index.interval.bytes",
        "4096",
        0,
    ),
    int("max.message.bytes", "message.max.bytes", "1048588", 0),
    TopicConfigDef {
        name: "message.timestamp.type",
        broker_name: "log.message.timestamp.type",
        default: "CreateTime",
        kind: ConfigKind::OneOf(&["CreateTime", "LogAppendTime"]),
    },
    int("min.insync.replicas", "min.insync.replicas", "1", 1),
    long("retention.bytes", "log.retention.bytes", "-1", i64::MIN),
    long("retention.ms", "log.retention.ms", "604800000", -1),
    int("segment.bytes", "log.segment.bytes", "1073741824", 14),
    int(
        "segment.index.bytes",
        "log.index.size.max.bytes",
        "10485760",
        4,
    ),
    long("segment.ms", "log.roll.ms", "604800000", 1),
];

pub fn topic_config_def(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("unknown or unsupported topic config {name}")]
    Unknown { name: String },
    #[error("invalid value {value} for config {name}: {reason}")]
    Invalid {
        name: String,
        value: String,
        reason: &'static str,
    },
}

/// Checks one topic config value.
pub fn validate_topic_config(name: &str, value: &str) -> Result<(), ConfigError> {
    let def = topic_config_def(name).ok_or_else(|| ConfigError::Unknown {
        name: name.to_owned(),
    })?;
    let invalid = |reason| ConfigError::Invalid {
        name: name.to_owned(),
        value: value.to_owned(),
        reason,
    };
    match def.kind {
        ConfigKind::Long { min } => {
            let v: i64 = value.trim().parse().map_err(|_| invalid("not a long"))?;
            if v < min {
                return Err(invalid("below the minimum"));
            }
        }
        ConfigKind::Int { min } => {
            let v: i32 = value.trim().parse().map_err(|_| invalid("not an int"))?;
            if (v as i64) < min {
                return Err(invalid("below the minimum"));
            }
        }
        ConfigKind::IntBetween { min, max, also } => {
            let v: i32 = value.trim().parse().map_err(|_| invalid("not an int"))?;
            let v = v as i64;
            if !(min..=max).contains(&v) && also != Some(v) {
                return Err(invalid("outside the codec's levels"));
            }
        }
        ConfigKind::OneOf(values) => {
            // Trimmed, as Kafka's `ConfigDef` parses a string.
            if !values.contains(&value.trim()) {
                return Err(invalid("not one of the supported values"));
            }
        }
        ConfigKind::ListOf(values) => {
            let items = list_items(value);
            if items.iter().any(|v| v.is_empty()) {
                return Err(invalid("a list item is empty"));
            }
            if !items.iter().all(|v| values.contains(v)) {
                return Err(invalid("a list item is not one of the supported values"));
            }
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

/// The effective configuration of one partition log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    pub segment_bytes: u64,
    pub segment_ms: i64,
    pub segment_index_bytes: usize,
    pub index_interval_bytes: usize,
    pub retention_ms: i64,
    pub retention_bytes: i64,
    /// `cleanup.policy` holds `delete`: `retention.ms` and `retention.bytes` apply.
    pub delete_policy: bool,
    pub flush_messages: i64,
    pub flush_ms: i64,
    pub max_message_bytes: usize,
    pub timestamp_type: TimestampType,
    pub min_insync_replicas: i32,
    /// `compression.type`, with its codec's level.
    pub compression: TopicCompression,
}

impl LogConfig {
    /// Resolves a topic's overrides over the broker defaults (which are keyed by the
    /// broker-level names) over Kafka's built-in defaults. Values must be valid.
    pub fn resolve(
        topic: &BTreeMap<String, String>,
        broker: &BTreeMap<String, String>,
    ) -> Result<LogConfig, ConfigError> {
        let get = |name: &str| -> Result<String, ConfigError> {
            let def = topic_config_def(name).expect("LogConfig reads only listed configs");
            let v = topic
                .get(name)
                .or_else(|| broker.get(def.broker_name))
                .map(String::as_str)
                .unwrap_or(def.default);
            validate_topic_config(name, v)?;
            Ok(v.trim().to_owned())
        };
        let num = |name: &str| -> Result<i64, ConfigError> {
            Ok(get(name)?.parse::<i64>().expect("validated"))
        };
        Ok(LogConfig {
            segment_bytes: num("segment.bytes")? as u64,
            segment_ms: num("segment.ms")?,
            segment_index_bytes: num("segment.index.bytes")? as usize,
            index_interval_bytes: num("index.interval.bytes")? as usize,
            retention_ms: num("retention.ms")?,
            retention_bytes: num("retention.bytes")?,
            delete_policy: list_items(&get("cleanup.policy")?).contains(&"delete"),
            flush_messages: num("flush.messages")?,
            flush_ms: num("flush.ms")?,
            max_message_bytes: num("max.message.bytes")? as usize,
            timestamp_type: if get("message.timestamp.type")? == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            min_insync_replicas: num("min.insync.replicas")? as i32,
            compression: match get("compression.type")?.as_str() {
                "producer" => TopicCompression::Producer,
                name => {
                    let &(_, codec, level_config) = deflate::CODECS
                        .iter()
                        .find(|(n, ..)| *n == name)
                        .expect("validated");
                    TopicCompression::Codec {
                        codec,
                        level: level_config.map_or(Ok(0), num)? as i32,
                    }
                }
            },
        })
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig::resolve(&BTreeMap::new(), &BTreeMap::new()).expect("defaults are valid")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_overrides() {
        let d = LogConfig::default();
        assert_eq!(d.segment_bytes, 1 << 30);
        assert_eq!(d.retention_ms, 7 * 24 * 3600 * 1000);
        let broker = BTreeMap::from([("log.retention.ms".to_owned(), "1000".to_owned())]);
        let topic = BTreeMap::from([("segment.bytes".to_owned(), "4096".to_owned())]);
        let c = LogConfig::resolve(&topic, &broker).unwrap();
        assert_eq!((c.retention_ms, c.segment_bytes), (1000, 4096));
        assert!(c.delete_policy);
        let keep = BTreeMap::from([("cleanup.policy".to_owned(), "".to_owned())]);
        assert!(!LogConfig::resolve(&keep, &broker).unwrap().delete_policy);
    }

    /// `cleanup.policy` is a list, as in Kafka: `delete` (said any number of times) or
    /// nothing; Kafka's `compact` is not supported here.
    #[test]
    fn list_values() {
        for ok in ["delete", "", " ", " delete , delete"] {
            assert!(
                validate_topic_config("cleanup.policy", ok).is_ok(),
                "{ok:?}"
            );
        }
        for bad in ["compact", "delete,compact", "delete,,", ",", "remove"] {
            assert!(
                matches!(
                    validate_topic_config("cleanup.policy", bad),
                    Err(ConfigError::Invalid { .. })
                ),
                "{bad:?}"
            );
        }
        assert_eq!(list_items(" a, b ,c"), ["a", "b", "c"]);
        assert!(list_items("").is_empty());
    }

    #[test]
    fn validation() {
        assert!(validate_topic_config("retention.ms", "-1").is_ok());
        assert!(matches!(
            validate_topic_config("retention.ms", "-2"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            validate_topic_config("retention.ms", "abc"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            validate_topic_config("segment.bytes", "99999999999"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(matches!(
            validate_topic_config("no.such", "1"),
            Err(ConfigError::Unknown { .. })
        ));
        assert!(matches!(
            validate_topic_config("cleanup.policy", "compact"),
            Err(ConfigError::Invalid { .. })
        ));
        assert!(validate_topic_config("message.timestamp.type", "LogAppendTime").is_ok());
    }

    /// `compression.type` names a codec or `producer`; each codec's level is bounded as
    /// Kafka bounds it, and applies only to its codec.
    #[test]
    fn compression_configs() {
        assert_eq!(LogConfig::default().compression, TopicCompression::Producer);
        let resolve = |pairs: &[(&str, &str)]| {
            let topic = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            LogConfig::resolve(&topic, &BTreeMap::new()).map(|c| c.compression)
        };
        let codec = |codec, level| Ok(TopicCompression::Codec { codec, level });
        assert_eq!(resolve(&[("compression.type", "gzip")]), codec(1, -1));
        // Trimmed, as Kafka's `ConfigDef` trims a string.
        assert_eq!(resolve(&[("compression.type", " gzip ")]), codec(1, -1));
        assert_eq!(resolve(&[("compression.type", "snappy")]), codec(2, 0));
        assert_eq!(resolve(&[("compression.type", "lz4")]), codec(3, 9));
        assert_eq!(resolve(&[("compression.type", "zstd")]), codec(4, 3));
        assert_eq!(
            resolve(&[("compression.type", "uncompressed")]),
            codec(0, 0)
        );
        assert_eq!(
            resolve(&[
                ("compression.type", "zstd"),
                ("compression.zstd.level", "-5"),
                ("compression.gzip.level", "2")
            ]),
            codec(4, -5)
        );
        for (name, ok, bad) in [
            (
                "compression.gzip.level",
                ["-1", "1", "9"],
                ["0", "10", "-2"],
            ),
            ("compression.lz4.level", ["1", "9", "17"], ["0", "18", "-1"]),
            (
                "compression.zstd.level",
                ["-131072", "0", "22"],
                ["23", "-131073", "x"],
            ),
        ] {
            for v in ok {
                assert!(validate_topic_config(name, v).is_ok(), "{name}={v}");
            }
            for v in bad {
                assert!(validate_topic_config(name, v).is_err(), "{name}={v}");
            }
        }
        for bad in ["none", "ZSTD", ""] {
            assert!(
                validate_topic_config("compression.type", bad).is_err(),
                "{bad:?}"
            );
        }
    }
}
