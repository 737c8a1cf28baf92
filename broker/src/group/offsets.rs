//! Durable committed offsets and group metadata: an internal log (`__consumer_offsets-0`
//! in the data directory) of record batches in Kafka's format, one record per commit,
//! group change or deletion, with JSON keys and values. Replayed on startup; rewritten
//! with only live entries when it holds mostly superseded records.

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
    /// When this offset expires, if its commit said (OffsetCommit v2–v4's
    /// `retention_time_ms`), in place of `offsets.retention.minutes`: Kafka's
    /// `expireTimestampMs`. Absent from records written without one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expire_timestamp_ms: Option<i64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Key {
    group: String,
    topic: String,
    partition: i32,
}

/// Offsets by group, then by (topic, partition).
pub type OffsetMap = BTreeMap<String, BTreeMap<(String, i32), Committed>>;

/// The key of a group's metadata record: a field name no offset key has, so neither
/// kind parses as the other (and a binary from before these records skips them).
#[derive(Debug, Serialize, Deserialize)]
struct GroupKey {
    group_metadata: String,
}

/// A group as Kafka's `GroupMetadataValue` keeps it: written when a rebalance completes
/// and when the group empties, so that a restarted coordinator knows its members and
/// generation, and they carry on without a rebalance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredGroup {
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    /// When this was written (ms since the epoch): for an empty group, since when it has
    /// been empty (Kafka's `currentStateTimestamp`).
    pub timestamp_ms: i64,
    /// In join order.
    pub members: Vec<StoredMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: u64,
    pub rebalance_timeout_ms: u64,
    /// Its metadata for the group's protocol.
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

/// Group metadata by group.
pub type GroupMap = BTreeMap<String, StoredGroup>;

/// What replaying the log found.
#[derive(Debug, Default)]
pub struct Replayed {
    pub offsets: OffsetMap,
    pub groups: GroupMap,
}

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
    pub fn open(dir: &Path) -> Result<(Self, Replayed), sluice_storage::Error> {
        let config = LogConfig {
            segment_bytes: 64 << 20,
            ..LogConfig::default()
        };
        finish_interrupted_rewrite(dir)?;
        let log = PartitionLog::open(dir, config.clone(), now_ms())?;
        let (replayed, records) = replay(&log)?;
        let live =
            replayed.offsets.values().map(BTreeMap::len).sum::<usize>() + replayed.groups.len();
        let mut store = OffsetStore { log };
        // Mostly dead records, and enough of them (by count, or by bytes: a group's
        // record holds every member's subscription and assignment) to be worth it.
        let big = records > 10_000 || store.log.size_bytes() > 64 << 20;
        if big && records > 4 * live {
            store = Self::rewrite(store, dir, config, &replayed)?;
            tracing::info!(
                records,
                live,
                "rewrote the group offsets log with live entries only"
            );
        }
        Ok((store, replayed))
    }

    fn rewrite(
        old: OffsetStore,
        dir: &Path,
        config: LogConfig,
        live: &Replayed,
    ) -> Result<Self, sluice_storage::Error> {
        let io = |op| move |source| sluice_storage::Error::Io { op, source };
        let fresh_dir = dir.with_extension("rewrite");
        let _ = std::fs::remove_dir_all(&fresh_dir);
        let mut fresh = OffsetStore {
            log: PartitionLog::open(&fresh_dir, config.clone(), now_ms())?,
        };
        let changes: Vec<OffsetChange> = live
            .offsets
            .iter()
            .flat_map(|(g, m)| {
                m.iter()
                    .map(move |((t, p), c)| (g.clone(), t.clone(), *p, Some(c.clone())))
            })
            .collect();
        for chunk in changes.chunks(1000) {
            fresh.append(chunk)?;
        }
        for (id, group) in &live.groups {
            fresh.append_group(id, Some(group))?;
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
        self.append_records(changes.iter().map(|(group, topic, partition, value)| {
            let key = json(&Key {
                group: group.clone(),
                topic: topic.clone(),
                partition: *partition,
            });
            (key, value.as_ref().map(json))
        }))
    }

    /// Writes a group's metadata (`None`: the group is gone), as one batch.
    pub fn append_group(
        &mut self,
        group: &str,
        value: Option<&StoredGroup>,
    ) -> Result<(), sluice_storage::Error> {
        let key = json(&GroupKey {
            group_metadata: group.to_owned(),
        });
        self.append_records([(key, value.map(json))])
    }

    /// Appends keys and values (`None`: a tombstone) as one batch.
    fn append_records(
        &mut self,
        kvs: impl IntoIterator<Item = (Vec<u8>, Option<Vec<u8>>)>,
    ) -> Result<(), sluice_storage::Error> {
        let now = now_ms();
        let records: Vec<Record> = kvs
            .into_iter()
            .enumerate()
            .map(|(i, (key, value))| Record {
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
                value: value.map(Bytes::from),
                headers: Default::default(),
            })
            .collect();
        if records.is_empty() {
            return Ok(());
        }
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

    /// Flushes and leaves the log as Kafka closes one (clean shutdown).
    pub fn close(&mut self) -> Result<(), sluice_storage::Error> {
        self.log.close(now_ms())
    }
}

/// A key or value as stored: plain structs, which always serialize.
fn json(v: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(v).expect("a plain struct serializes")
}

/// Reads the whole log into the latest state; returns it and the number of records.
fn replay(log: &PartitionLog) -> Result<(Replayed, usize), sluice_storage::Error> {
    let mut offsets = OffsetMap::new();
    let mut groups = GroupMap::new();
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
                let Some(key) = rec.key.as_ref() else {
                    continue;
                };
                let Ok(key) = serde_json::from_slice::<Key>(key) else {
                    if let Ok(g) = serde_json::from_slice::<GroupKey>(key) {
                        match rec.value.as_ref().map(|v| serde_json::from_slice(v)) {
                            Some(Ok(value)) => {
                                groups.insert(g.group_metadata, value);
                            }
                            None => {
                                groups.remove(&g.group_metadata);
                            }
                            Some(Err(e)) => {
                                tracing::warn!(group = %g.group_metadata, error = %e,
                                    "skipping group metadata that does not parse");
                            }
                        }
                    }
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
    Ok((Replayed { offsets, groups }, records))
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
            expire_timestamp_ms: None,
        })
    }

    #[test]
    fn commits_survive_reopen_and_deletions_stick() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        {
            let (mut s, m) = OffsetStore::open(&path).unwrap();
            assert!(m.offsets.is_empty() && m.groups.is_empty());
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
        let m = OffsetStore::open(&path).unwrap().1.offsets;
        assert_eq!(m["g"][&("t".to_string(), 0)].offset, 9);
        assert_eq!(m["g"][&("t".to_string(), 1)].offset, 7);
        assert!(!m.contains_key("h"));
    }

    /// A commit's own expiry moment is stored with it; records written without one (all
    /// before the field existed) read back as having none.
    #[test]
    fn an_expiry_moment_survives_reopen_and_old_records_have_none() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        let expiring = Committed {
            expire_timestamp_ms: Some(42),
            ..c(3).unwrap()
        };
        {
            let (mut s, _) = OffsetStore::open(&path).unwrap();
            s.append(&[
                ("g".into(), "t".into(), 0, Some(expiring.clone())),
                ("g".into(), "t".into(), 1, c(4)),
            ])
            .unwrap();
        }
        let m = OffsetStore::open(&path).unwrap().1.offsets;
        assert_eq!(m["g"][&("t".to_string(), 0)], expiring);
        assert_eq!(m["g"][&("t".to_string(), 1)].expire_timestamp_ms, None);
        let old: Committed = serde_json::from_str(
            r#"{"offset":1,"leader_epoch":0,"metadata":"","commit_timestamp_ms":2}"#,
        )
        .unwrap();
        assert_eq!(old.expire_timestamp_ms, None);
        assert!(!serde_json::to_string(&c(1).unwrap())
            .unwrap()
            .contains("expire"));
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
        let m = OffsetStore::open(&path).unwrap().1.offsets;
        assert_eq!(m["g"].len(), 3);
        let m2 = OffsetStore::open(&path).unwrap().1.offsets;
        assert_eq!(m, m2);
        assert_eq!(m2["g"][&("t".to_string(), 2)].offset, 11_999);
    }

    fn group(generation: i32, members: &[&str]) -> StoredGroup {
        StoredGroup {
            protocol_type: Some("consumer".into()),
            protocol: Some("range".into()),
            generation,
            leader: members.first().map(|m| m.to_string()),
            timestamp_ms: 5,
            members: members
                .iter()
                .map(|id| StoredMember {
                    id: id.to_string(),
                    instance_id: None,
                    client_id: "c".into(),
                    client_host: "/127.0.0.1".into(),
                    session_timeout_ms: 45_000,
                    rebalance_timeout_ms: 300_000,
                    subscription: vec![0, 1, 2],
                    assignment: vec![3, 4],
                })
                .collect(),
        }
    }

    /// The latest metadata of each group survives a reopen and a rewrite, beside the
    /// offsets; a deleted group stays deleted.
    #[test]
    fn group_metadata_survives_reopen_and_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("__consumer_offsets-0");
        {
            let (mut s, _) = OffsetStore::open(&path).unwrap();
            s.append_group("g", Some(&group(1, &["a", "b"]))).unwrap();
            s.append(&[("g".into(), "t".into(), 0, c(3))]).unwrap();
            s.append_group("g", Some(&group(2, &["b"]))).unwrap();
            s.append_group("gone", Some(&group(1, &["x"]))).unwrap();
            s.append_group("gone", None).unwrap();
        }
        let (_, m) = OffsetStore::open(&path).unwrap();
        assert_eq!(m.groups, GroupMap::from([("g".into(), group(2, &["b"]))]));
        assert_eq!(m.offsets["g"][&("t".to_string(), 0)].offset, 3);
        {
            let (mut s, _) = OffsetStore::open(&path).unwrap();
            for i in 0..12_000 {
                s.append(&[("h".into(), "t".into(), 0, c(i))]).unwrap();
            }
        }
        let (_, before) = OffsetStore::open(&path).unwrap(); // rewrites
        let (_, after) = OffsetStore::open(&path).unwrap();
        assert_eq!(after.groups, before.groups);
        assert_eq!(after.groups["g"], group(2, &["b"]));
        assert_eq!(after.offsets, before.offsets);
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
        let m = OffsetStore::open(&path).unwrap().1.offsets;
        assert_eq!(m["g"][&("t".to_string(), 0)].offset, 42);
        assert!(!retired(&path).exists());

        // As a crash after both renames leaves it: the retired log is only garbage.
        std::fs::create_dir(retired(&path)).unwrap();
        let m = OffsetStore::open(&path).unwrap().1.offsets;
        assert_eq!(m["g"][&("t".to_string(), 0)].offset, 42);
        assert!(!retired(&path).exists());
    }
}
