//! Broker configuration: command-line flags (each also an environment variable) and an
//! optional TOML file of Kafka-named keys (`"auto.create.topics.enable" = false`).
//! Unknown keys are refused at startup rather than ignored.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

#[derive(Debug, Clone, Parser)]
#[command(name = "sluice", version, about = "A Kafka-compatible message broker")]
pub struct Cli {
    /// Address the Kafka listener binds.
    #[arg(long, env = "SLUICE_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: String,
    /// Address advertised to clients in Metadata (defaults to --listen).
    #[arg(long, env = "SLUICE_ADVERTISED")]
    pub advertised: Option<String>,
    /// Directory holding partition logs, group offsets and the metadata quorum.
    #[arg(long, env = "SLUICE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// This broker's node id (and metadata voter id).
    #[arg(long, env = "SLUICE_NODE_ID", default_value_t = 1)]
    pub node_id: i32,
    /// Address of the metadata quorum listener (voter-to-voter Raft traffic).
    #[arg(long, env = "SLUICE_RAFT_LISTEN", default_value = "127.0.0.1:0")]
    pub raft_listen: String,
    /// Optional TOML file with Kafka-named settings.
    #[arg(long, env = "SLUICE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Optional HTTP listener serving Prometheus metrics at /metrics.
    #[arg(long, env = "SLUICE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// What a broker setting's value is, as Kafka's `ConfigDef` types it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SettingType {
    Boolean,
    /// 32 bits, at least `min`.
    Int {
        min: i32,
    },
    Long {
        min: i64,
        max: i64,
    },
}

/// A broker-level setting: its Kafka name, default and type.
#[derive(Debug)]
struct Setting {
    name: &'static str,
    default: &'static str,
    kind: SettingType,
}

const fn flag(name: &'static str, default: &'static str) -> Setting {
    Setting {
        name,
        default,
        kind: SettingType::Boolean,
    }
}

const fn int(name: &'static str, default: &'static str, min: i32) -> Setting {
    Setting {
        name,
        default,
        kind: SettingType::Int { min },
    }
}

const fn long(name: &'static str, default: &'static str, min: i64) -> Setting {
    Setting {
        name,
        default,
        kind: SettingType::Long { min, max: i64::MAX },
    }
}

/// Broker-level settings, by Kafka's names, with Kafka's defaults, types and lower
/// bounds unless noted. (Intervals Kafka leaves unbounded must be at least 1 ms here:
/// a timer of no period would spin.)
const BROKER_SETTINGS: &[Setting] = &[
    flag("auto.create.topics.enable", "true"),
    int("num.partitions", "1", 1),
    int("default.replication.factor", "1", i32::MIN),
    flag("delete.topic.enable", "true"),
    int("group.initial.rebalance.delay.ms", "3000", i32::MIN),
    int("group.min.session.timeout.ms", "6000", i32::MIN),
    int("group.max.session.timeout.ms", "1800000", i32::MIN),
    int("group.max.size", "2147483647", 1),
    int("offset.metadata.max.bytes", "4096", i32::MIN),
    int("offsets.retention.minutes", "10080", 1),
    long("offsets.retention.check.interval.ms", "600000", 1),
    int("socket.request.max.bytes", "104857600", 1),
    // SO_SNDBUF and SO_RCVBUF of each connection; -1 (or 0) leaves a buffer to the
    // kernel, which sizes it to the connection as it goes (autotuning). Kafka's defaults
    // are 102400 for both. Sluice's send buffer is 256 KiB: a Fetch answered through the
    // kernel's autotuned buffer (4 MiB here) cost the broker twice the CPU per byte and
    // read slower (docs/performance.md §23). Its receive buffer is autotuned: a fixed
    // one did not help producers, and caps each one at the buffer per round trip.
    int("socket.send.buffer.bytes", "262144", -1),
    int("socket.receive.buffer.bytes", "-1", -1),
    // Kafka's default is unbounded (0 or less); Sluice bounds request memory by default.
    long("queued.max.request.bytes", "536870912", i64::MIN),
    // Sluice: connections accepted at once, and requests read ahead per connection.
    int("max.connections", "10000", 0),
    int("max.inflight.requests.per.connection", "16", 1),
    // Sluice: bytes copied through user space for one Fetch response (sendfile regions
    // are not counted: they are not held in memory).
    int("fetch.max.bytes", "57671680", 1024),
    // KIP-227 incremental fetch sessions kept at once, and how long one must be idle
    // before any new session may take its place (a constant in Kafka).
    int("max.incremental.fetch.session.cache.slots", "1000", 0),
    int("min.incremental.fetch.session.eviction.ms", "120000", 0),
    long("log.retention.check.interval.ms", "300000", 1),
    // How long an idempotent producer's state is kept after its last batch, and how
    // often that is checked.
    int("producer.id.expiration.ms", "86400000", 1),
    int("producer.id.expiration.check.interval.ms", "600000", 1),
    // Sluice: Kafka's default never checks `flush.ms`, so a topic's setting of it would
    // do nothing; here it is checked every second.
    long("log.flush.scheduler.interval.ms", "1000", 1),
    // Sluice: the furthest a record may be delayed (mq.deliver.at, mq.delay.ms): 40 days
    // by default, a year at most (the timer's wheel holds 8 bytes per second of it).
    Setting {
        name: "mq.delay.max.ms",
        default: "3456000000",
        kind: SettingType::Long {
            min: 1,
            max: 365 * 24 * 3_600_000,
        },
    },
    // Sluice: the length at which the delay store starts a new segment file. A hole's
    // length field is 32 bits; below 1 MiB a roll would come every few records.
    Setting {
        name: "mq.delay.segment.bytes",
        default: "67108864",
        kind: SettingType::Long {
            min: 1 << 20,
            max: 1 << 30,
        },
    },
];

impl SettingType {
    /// The value as stored (a boolean in lower case), or None when it is not one of
    /// this type's.
    fn parse(self, value: &str) -> Option<String> {
        let value = value.trim();
        match self {
            // Kafka's `ConfigDef` reads booleans ignoring case.
            SettingType::Boolean => ["true", "false"]
                .into_iter()
                .find(|b| value.eq_ignore_ascii_case(b))
                .map(str::to_owned),
            SettingType::Int { min } => value
                .parse::<i32>()
                .ok()
                .filter(|n| *n >= min)
                .map(|n| n.to_string()),
            SettingType::Long { min, max } => value
                .parse::<i64>()
                .ok()
                .filter(|n| (min..=max).contains(n))
                .map(|n| n.to_string()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub cli: Cli,
    /// Every setting by its Kafka name: file values over defaults, log.* included.
    pub settings: BTreeMap<String, String>,
    /// The log-related broker settings (`log.retention.ms`, `message.max.bytes`, ...)
    /// that give topic configs their defaults.
    pub log_defaults: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path} is not valid TOML: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("unknown config key {key}")]
    UnknownKey { key: String },
    #[error("invalid value {value:?} for {key}")]
    InvalidValue { key: String, value: String },
}

fn is_log_setting(key: &str) -> bool {
    sluice_storage::config::TOPIC_CONFIGS
        .iter()
        .any(|d| d.broker_name == key)
}

impl BrokerConfig {
    pub fn load(cli: Cli) -> Result<Self, ConfigError> {
        let mut settings: BTreeMap<String, String> = BROKER_SETTINGS
            .iter()
            .map(|s| (s.name.to_owned(), s.default.to_owned()))
            .collect();
        let mut log_defaults = BTreeMap::new();
        if let Some(path) = &cli.config {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let table: toml::Table = text.parse().map_err(|source| ConfigError::Parse {
                path: path.clone(),
                source,
            })?;
            for (key, value) in table {
                let value = match value {
                    toml::Value::String(s) => s,
                    toml::Value::Integer(i) => i.to_string(),
                    toml::Value::Boolean(b) => b.to_string(),
                    other => {
                        return Err(ConfigError::InvalidValue {
                            key,
                            value: other.to_string(),
                        })
                    }
                };
                if is_log_setting(&key) {
                    let def = sluice_storage::config::TOPIC_CONFIGS
                        .iter()
                        .find(|d| d.broker_name == key)
                        .expect("log setting");
                    sluice_storage::config::validate_topic_config(def.name, &value).map_err(
                        |_| ConfigError::InvalidValue {
                            key: key.clone(),
                            value: value.clone(),
                        },
                    )?;
                    log_defaults.insert(key, value);
                } else if let Some(setting) = BROKER_SETTINGS.iter().find(|s| s.name == key) {
                    let Some(parsed) = setting.kind.parse(&value) else {
                        return Err(ConfigError::InvalidValue { key, value });
                    };
                    settings.insert(key, parsed);
                } else {
                    return Err(ConfigError::UnknownKey { key });
                }
            }
        }
        let cfg = BrokerConfig {
            cli,
            settings,
            log_defaults,
        };
        // As Kafka requires: a bound on queued requests holds at least the largest one.
        let queued = cfg.int("queued.max.request.bytes");
        if queued > 0 && queued < cfg.int("socket.request.max.bytes") {
            return Err(ConfigError::InvalidValue {
                key: "queued.max.request.bytes".to_owned(),
                value: format!("{queued} (below socket.request.max.bytes)"),
            });
        }
        Ok(cfg)
    }

    /// Bytes of requests held at once (`queued.max.request.bytes`; 0 or less: no bound).
    pub fn request_memory_bytes(&self) -> usize {
        match self.int("queued.max.request.bytes") {
            n if n <= 0 => u32::MAX as usize,
            n => n.min(u32::MAX as i64) as usize,
        }
    }

    pub fn int(&self, key: &str) -> i64 {
        self.settings
            .get(key)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("setting {key} is a number"))
    }
    /// A broker setting's type; None for a log setting (its topic config's type) or an
    /// unknown key.
    pub fn setting_type(key: &str) -> Option<SettingType> {
        BROKER_SETTINGS
            .iter()
            .find(|s| s.name == key)
            .map(|s| s.kind)
    }

    pub fn flag(&self, key: &str) -> bool {
        self.settings
            .get(key)
            .map(|v| v == "true")
            .unwrap_or_else(|| panic!("setting {key} is a flag"))
    }

    /// Host and port advertised to clients.
    pub fn advertised(&self) -> (String, i32) {
        let addr = self.cli.advertised.as_deref().unwrap_or(&self.cli.listen);
        split_host_port(addr).unwrap_or_else(|| ("127.0.0.1".into(), 9092))
    }

    /// All broker settings for DescribeConfigs (log defaults included).
    pub fn describe(&self) -> Vec<(String, String, bool)> {
        let mut out: Vec<(String, String, bool)> = self
            .settings
            .iter()
            .map(|(k, v)| {
                let default = BROKER_SETTINGS
                    .iter()
                    .any(|s| s.name == k && s.default == v);
                (k.clone(), v.clone(), default)
            })
            .collect();
        for def in sluice_storage::config::TOPIC_CONFIGS {
            let (v, default) = match self.log_defaults.get(def.broker_name) {
                Some(v) => (v.clone(), false),
                None => (def.default.to_owned(), true),
            };
            out.push((def.broker_name.to_owned(), v, default));
        }
        out.sort();
        out.dedup_by(|a, b| a.0 == b.0);
        out
    }
}

pub fn split_host_port(addr: &str) -> Option<(String, i32)> {
    let (host, port) = addr.rsplit_once(':')?;
    Some((
        host.trim_matches(|c| c == '[' || c == ']').to_owned(),
        port.parse().ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(config: Option<PathBuf>) -> Cli {
        Cli::parse_from(
            ["sluice"]
                .into_iter()
                .chain(config.as_ref().map(|_| "--config"))
                .chain(config.as_ref().and_then(|p| p.to_str())),
        )
    }

    #[test]
    fn defaults() {
        let c = BrokerConfig::load(cli(None)).unwrap();
        assert!(c.flag("auto.create.topics.enable"));
        assert_eq!(c.advertised(), ("127.0.0.1".into(), 9092));
        assert_eq!(c.cli.data_dir, PathBuf::from("./data"));
    }

    #[test]
    fn every_default_is_a_value_of_its_type() {
        for s in BROKER_SETTINGS {
            assert_eq!(
                s.kind.parse(s.default).as_deref(),
                Some(s.default),
                "{}",
                s.name
            );
        }
    }

    #[test]
    fn file_values_and_refusals() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(
            &p,
            "\"auto.create.topics.enable\" = false\n\"log.retention.ms\" = 1000\n",
        )
        .unwrap();
        let c = BrokerConfig::load(cli(Some(p.clone()))).unwrap();
        assert!(!c.flag("auto.create.topics.enable"));
        assert_eq!(c.log_defaults["log.retention.ms"], "1000");
        std::fs::write(&p, "\"no.such.key\" = 1\n").unwrap();
        assert!(matches!(
            BrokerConfig::load(cli(Some(p.clone()))),
            Err(ConfigError::UnknownKey { .. })
        ));
        std::fs::write(&p, "\"log.retention.ms\" = \"soon\"\n").unwrap();
        assert!(matches!(
            BrokerConfig::load(cli(Some(p.clone()))),
            Err(ConfigError::InvalidValue { .. })
        ));
        // A type's values only: a boolean for a number once passed, and the first read
        // of it panicked.
        for (line, ok) in [
            ("\"num.partitions\" = true", false),
            ("\"num.partitions\" = 0", false),
            ("\"num.partitions\" = 2147483648", false),
            ("\"num.partitions\" = \" 3\"", true),
            ("\"auto.create.topics.enable\" = 1", false),
            ("\"auto.create.topics.enable\" = \"FALSE\"", true),
            ("\"queued.max.request.bytes\" = -1", true),
            ("\"queued.max.request.bytes\" = 1000", false),
            ("\"mq.delay.max.ms\" = 31536000001", false),
            ("\"log.flush.scheduler.interval.ms\" = 0", false),
        ] {
            std::fs::write(&p, format!("{line}\n")).unwrap();
            assert_eq!(
                BrokerConfig::load(cli(Some(p.clone()))).is_ok(),
                ok,
                "{line}"
            );
        }
        std::fs::write(&p, "\"auto.create.topics.enable\" = \"FALSE\"\n").unwrap();
        assert!(!BrokerConfig::load(cli(Some(p.clone())))
            .unwrap()
            .flag("auto.create.topics.enable"));
        for (value, ok) in [(1 << 20, true), ((1 << 20) - 1, false), (1 << 31, false)] {
            std::fs::write(&p, format!("\"mq.delay.segment.bytes\" = {value}\n")).unwrap();
            assert_eq!(
                BrokerConfig::load(cli(Some(p.clone()))).is_ok(),
                ok,
                "{value}"
            );
        }
    }
}
