//! Durable committed offsets: an internal log (`__consumer_offsets-0` in the data
//! directory) of record batches in Kafka's format, one record per commit or deletion,
//! with JSON keys and values. Replayed on startup; rewritten with only live entries
//! when it holds mostly superseded records.

use std::collections::BTreeMap;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::records::{
    Compression, Record, RecordBatchDecoder, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use serde::{Deserialize, Serialize};
use sluice_storage::batch::{BatchHeader, HEADER_BYTES};
use sluice_storage::config::LogConfig;
use sluice_storage::durable;
use sluice_storage::PartitionLog;

use crate::clock::now_ms;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Committed {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct Key {
    group: String,
    topic: String,
    partition: i32,
}

/// Offsets by group, then by (topic, partition).
pub type OffsetMap = BTreeMap<String, BTreeMap<(String, i32), Committed>>;

#[derive(Debug)]
pub struct OffsetStore {
    log: PartitionLog,
}

/// Where a rewrite moves the old offsets log while it installs the new one.
fn retired(dir: &Path) -> PathBuf {
    dir.with_extension("old-delete")
}

/// A crash between a rewrite's two renames leaves no log under `dir` and the old,
/// complete one retired: put it back (the rewrite runs again on this start). Once the
/// new log is in place, a retired one left over is only garbage.
fn finish_interrupted_rewrite(dir: &Path) -> Result<(), sluice_storage::Error> {
    let doomed = retired(dir);
    if !doomed.exists() {
        return Ok(());
    }
    let io = |op| move |source| sluice_storage::Error::Io { op, source };
    if dir.exists() {
        let _ = std::fs::remove_dir_all(&doomed);
        return Ok(());
    }
    tracing::warn!(dir = %dir.display(), "restoring the offsets log a rewrite had retired");
    std::fs::rename(&doomed, dir).map_err(io("restoring the retired offsets log"))?;
    durable::sync_parent(dir).map_err(io("syncing the offsets log's directory"))
}

/// One change: a commit (`Some`) or a deletion (`None`).
pub type OffsetChange = (String, String, i32, Option<Committed>);

impl OffsetStore {
    pub fn open(dir: &Path) -> Result<(Self, OffsetMap), sluice_storage::Error> {
        let config = LogConfig {
            segment_bytes: 64 << 20,
            ..LogConfig::default()
        };
        finish_interrupted_rewrite(dir)?;
        let log = PartitionLog::open(dir, config.clone(), now_ms())?;
        let (offsets, records) = replay(&log)?;
        let live: usize = offsets.values().map(BTreeMap::len).sum();
        let mut store = OffsetStore { log };
        if records > 10_000 && records > 4 * live {
            store = Self::rewrite(store, dir, config, &offsets)?;
            tracing::info!(
                records,
                live,
                "rewrote the group offsets log with live entries only"
            );
        }
        Ok((store, offsets))
    }

    fn rewrite(
        old: OffsetStore,
        dir: &Path,
        config: LogConfig,
        offsets: &OffsetMap,
    ) -> Result<Self, sluice_storage::Error> {
        let io = |op| move |source| sluice_storage::Error::Io { op, source };
        let fresh_dir = dir.with_extension("rewrite");
        let _ = std::fs::remove_dir_all(&fresh_dir);
        let mut fresh = OffsetStore {
            log: PartitionLog::open(&fresh_dir, config.clone(), now_ms())?,
        };
        let changes: Vec<OffsetChange> = offsets
            .iter()
            .flat_map(|(g, m)| {
                m.iter()
                    .map(move |((t, p), c)| (g.clone(), t.clone(), *p, Some(c.clone())))
            })
            .collect();
        for chunk in changes.chunks(1000) {
            fresh.append(chunk)?;
        }
        fresh.log.flush(now_ms())?;
        drop(fresh);
        drop(old);
        let doomed = retired(dir);
        std::fs::rename(dir, &doomed).map_err(io("retiring the old offsets log"))?;
        std::fs::rename(&fresh_dir, dir).map_err(io("installing the rewritten offsets log"))?;
        // Both renames durable before the old log goes: until then a crash must find one
        // of the two logs under a name `finish_interrupted_rewrite` knows.
        durable::sync_parent(dir).map_err(io("syncing the offsets log's directory"))?;
        let _ = std::fs::remove_dir_all(&doomed);
        Ok(OffsetStore {
            log: PartitionLog::open(dir, config, now_ms())?,
        })
    }

    /// Appends changes as one batch; durable in the page cache when this returns.
    pub fn append(&mut self, changes: &[OffsetChange]) -> Result<(), sluice_storage::Error> {
        if changes.is_empty() {
            return Ok(());
        }
        let now = now_ms();
        let records: Vec<Record> = changes
            .iter()
            .enumerate()
            .map(|(i, (group, topic, partition, value))| {
                let key = serde_json::to_vec(&Key {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                })
                .expect("json");
                Record {
                    transactional: false,
                    control: false,
                    delete_horizon: false,
                    partition_leader_epoch: 0,
                    producer_id: -1,
                    producer_epoch: -1,
                    timestamp_type: TimestampType::Creation,
                    offset: i as i64,
                    sequence: i as i32 - 1,
                    timestamp: now,
                    key: Some(Bytes::from(key)),
                    value: value
                        .as_ref()
                        .map(|c| Bytes::from(serde_json::to_vec(c).expect("json"))),
                    headers: Default::default(),
                }
            })
            .collect();
        let mut buf = BytesMut::new();
        RecordBatchEncoder::encode(
            &mut buf,
            &records,
            &RecordEncodeOptions {
                version: 2,
                compression: Compression::None,
            },
        )
        .expect("encoding offset records");
        self.log.append_as_leader(&buf, 0, now)?;
        let leo = self.log.log_end_offset();
        self.log.set_high_watermark(leo);
        Ok(())
    }

    pub fn flush(&mut self) -> Result<(), sluice_storage::Error> {
        self.log.flush(now_ms())
    }
}

/// Reads the whole log into the latest state; returns it and the number of records.
fn replay(log: &PartitionLog) -> Result<(OffsetMap, usize), sluice_storage::Error> {
    let mut offsets = OffsetMap::new();
    let mut records = 0;
    let mut next = log.log_start_offset();
    while next < log.high_watermark() {
        let r = log.read(next, 8 << 20, true)?;
        let Some(slice) = r.slice else { break };
        let mut buf = vec![0u8; slice.len];
        slice
            .file
            .read_exact_at(&mut buf, slice.position)
            .map_err(|source| sluice_storage::Error::Io {
                op: "replaying offsets",
                source,
            })?;
        let mut at = 0;
        let before = next;
        while at + HEADER_BYTES <= buf.len() {
            let Ok(h) = BatchHeader::parse(&buf[at..]) else {
                break;
            };
            if at + h.total_bytes() > buf.len() {
                break;
            }
            let mut bytes = Bytes::copy_from_slice(&buf[at..at + h.total_bytes()]);
            at += h.total_bytes();
            next = h.next_offset();
            let Ok(set) = RecordBatchDecoder::decode(&mut bytes) else {
                tracing::warn!(
                    offset = h.base_offset,
                    "skipping an undecodable offsets batch"
                );
                continue;
            };
            for rec in set.records {
                records += 1;
                let Some(key) = rec
                    .key
                    .as_ref()
                    .and_then(|k| serde_json::from_slice::<Key>(k).ok())
                else {
                    continue;
                };
                let group = offsets.entry(key.group).or_default();
                match rec
                    .value
                    .as_ref()
                    .and_then(|v| serde_json::from_slice::<Committed>(v).ok())
                {
                    Some(c) => {
                        group.insert((key.topic, key.partition), c);
                    }
                    None => {
                        group.remove(&(key.topic, key.partition));
                    }
                }
            }
        }
        if next == before {
            break;
        }
    }
    offsets.retain(|_, m| !m.is_empty());
    Ok((offsets, records))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(offset: i64) -> Option<Committed> {
        Some(Committed {
            offset,
            leader_epoch: 0,
            metadata: "m".into(),
            commit_timestamp_ms: 1,
        })
    }

    #[test]
    fn commits_survive_reopen_and_deletions_stick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        {
            let (mut s, m) = OffsetStore::open(&path).unwrap();
            assert!(m.is_empty());
            s.append(&[
                ("g".into(), "t".into(), 0, c(5)),
                ("g".into(), "t".into(), 1, c(7)),
            ])
            .unwrap();
            s.append(&[
                ("g".into(), "t".into(), 0, c(9)),
                ("h".into(), "t".into(), 0, c(1)),
            ])
            .unwrap();
            s.append(&[("h".into(), "t".into(), 0, None)]).unwrap();
        }
        let (_, m) = OffsetStore::open(&path).unwrap();
        assert_eq!(m["g"][&("t".to_string(), 0)].offset, 9);
        assert_eq!(m["g"][&("t".to_string(), 1)].offset, 7);
        assert!(!m.contains_key("h"));
    }

    #[test]
    fn rewrite_keeps_live_entries() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        {
            let (mut s, _) = OffsetStore::open(&path).unwrap();
            for i in 0..12_000 {
                s.append(&[("g".into(), "t".into(), (i % 3) as i32, c(i))])
                    .unwrap();
            }
        }
        let (_, m) = OffsetStore::open(&path).unwrap();
        assert_eq!(m["g"].len(), 3);
        let (_, m2) = OffsetStore::open(&path).unwrap();
        assert_eq!(m, m2);
        assert_eq!(m2["g"][&("t".to_string(), 2)].offset, 11_999);
    }

    #[test]
    fn a_rewrite_cut_between_its_renames_loses_no_commit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        {
            let (mut s, _) = OffsetStore::open(&path).unwrap();
            s.append(&[("g".into(), "t".into(), 0, c(42))]).unwrap();
        }
        // As a crash after the first rename leaves it: the old log retired, no new one.
        std::fs::rename(&path, retired(&path)).unwrap();
        let (_, m) = OffsetStore::open(&path).unwrap();
        assert_eq!(m["g"][&("t".to_string(), 0)].offset, 42);
        assert!(!retired(&path).exists());

        // As a crash after both renames leaves it: the retired log is only garbage.
        std::fs::create_dir(retired(&path)).unwrap();
        let (_, m) = OffsetStore::open(&path).unwrap();
        assert_eq!(m["g"][&("t".to_string(), 0)].offset, 42);
        assert!(!retired(&path).exists());
    }
}
