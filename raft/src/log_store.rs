//! The durable Raft log and vote (openraft's `RaftLogStorage` + `RaftLogReader`).
//!
//! On-disk contract, all under the quorum directory:
//! - `log/raft.log`: a sequence of records `[len: u32 LE][crc32c(payload): u32 LE][payload]`,
//!   where `payload` is one serde_json `openraft::Entry`. Log indexes in the file are strictly
//!   consecutive. The file is append-only, except that `truncate` cuts it at a record boundary
//!   and `purge` rewrites it without the purged prefix (write a temp file, fsync, rename).
//! - `log/purged.json`: the last purged log id, replaced atomically *before* the rewrite, so
//!   entries at or below it that survive a crash in between are dropped on open.
//! - `vote.json`, `committed.json`: replaced atomically (temp, fsync, rename, fsync dir).
//!
//! Recovery: the first record that is incomplete, oversized or fails its CRC ends the log and
//! the file is truncated there. Such a record was being written when the process died, and the
//! entries in it were never acknowledged: the `LogFlushed` callback fires only after fsync.
//!
//! Concurrency: `LogStore` is driven by the single openraft core task (so all writes are
//! serialized); `LogReader`s, used by replication tasks, share the in-memory entries under a
//! mutex. File I/O runs on the blocking pool.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::ops::RangeBounds;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{AnyError, ErrorSubject, ErrorVerb, RaftLogReader, StorageIOError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use sluice_storage::durable;

use crate::error::Error;
use crate::types::{Entry, LogId, StorageError, TypeConfig, Vote};

const LOG_DIR: &str = "log";
const LOG_FILE: &str = "raft.log";
/// Relative to the quorum directory, like the other files.
const PURGED_FILE: &str = "log/purged.json";
const VOTE_FILE: &str = "vote.json";
const COMMITTED_FILE: &str = "committed.json";

const RECORD_HEADER_BYTES: usize = 8;
/// No metadata entry comes near this; a larger length prefix is a torn or corrupt header.
const RECORD_PAYLOAD_BYTES_MAX: usize = 64 << 20;

#[derive(Debug, Default)]
struct LogMem {
    entries: BTreeMap<u64, Entry>,
    last_purged: Option<LogId>,
}

/// The log store handed to openraft.
#[derive(Debug)]
pub(crate) struct LogStore {
    dir: PathBuf,
    mem: Arc<Mutex<LogMem>>,
    file: Arc<Mutex<LogFile>>,
    vote: Option<Vote>,
    committed: Option<LogId>,
}

/// A cheap read handle on the in-memory entries, for replication tasks.
#[derive(Debug, Clone)]
pub(crate) struct LogReader {
    mem: Arc<Mutex<LogMem>>,
}

/// The segment file. Only touched from the blocking pool, under its mutex.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: File,
    len_bytes: u64,
    /// Byte offset of the record holding each log index.
    positions: BTreeMap<u64, u64>,
    /// Set after a failed write or fsync: the file's state is unknown, so every later write
    /// fails too instead of building on it (never retry an fsync).
    poisoned: bool,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().expect("log store mutex poisoned by a panic")
}

fn read_json<T: DeserializeOwned>(path: &Path) -> Result<Option<T>, Error> {
    match durable::read_optional(path).map_err(|e| Error::io(path, e))? {
        None => Ok(None),
        Some(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| Error::corrupt(path, e.to_string())),
    }
}

fn to_json<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("log types always serialize")
}

fn encode_record(entry: &Entry) -> Vec<u8> {
    let payload = to_json(entry);
    assert!(
        payload.len() <= RECORD_PAYLOAD_BYTES_MAX,
        "log entry too large"
    );
    let mut record = Vec::with_capacity(RECORD_HEADER_BYTES + payload.len());
    record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    record.extend_from_slice(&crc32c::crc32c(&payload).to_le_bytes());
    record.extend_from_slice(&payload);
    record
}

/// Decodes the record at `bytes[pos..]`. `Ok(None)` means the record is torn (incomplete,
/// oversized or failing its CRC); `Err` means it is intact but does not hold an entry.
fn decode_record(bytes: &[u8], pos: usize) -> Result<Option<(Entry, usize)>, String> {
    let Some(header) = bytes.get(pos..pos + RECORD_HEADER_BYTES) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes(header[0..4].try_into().expect("4 bytes")) as usize;
    let crc = u32::from_le_bytes(header[4..8].try_into().expect("4 bytes"));
    if len > RECORD_PAYLOAD_BYTES_MAX {
        return Ok(None);
    }
    let start = pos + RECORD_HEADER_BYTES;
    let Some(payload) = bytes.get(start..start + len) else {
        return Ok(None);
    };
    if crc32c::crc32c(payload) != crc {
        return Ok(None);
    }
    let entry =
        serde_json::from_slice(payload).map_err(|e| format!("record at byte {pos}: {e}"))?;
    Ok(Some((entry, start + len)))
}

impl LogFile {
    /// Opens (creating if needed) the segment, truncating a torn tail. Returns the file and
    /// the entries it holds, in order.
    fn open(path: &Path) -> Result<(Self, Vec<Entry>), Error> {
        let io_err = |e| Error::io(path, e);
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_err)?;
        let bytes = fs::read(path).map_err(io_err)?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut positions = BTreeMap::new();
        let mut pos = 0;
        while pos < bytes.len() {
            let Some((entry, next)) =
                decode_record(&bytes, pos).map_err(|reason| Error::corrupt(path, reason))?
            else {
                break;
            };
            if let Some(prev) = entries.last() {
                if entry.log_id.index != prev.log_id.index + 1 {
                    let reason = format!(
                        "log index {} follows {}",
                        entry.log_id.index, prev.log_id.index
                    );
                    return Err(Error::corrupt(path, reason));
                }
            }
            positions.insert(entry.log_id.index, pos as u64);
            entries.push(entry);
            pos = next;
        }
        if pos < bytes.len() {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = pos,
                dropped_bytes = bytes.len() - pos,
                "truncating torn tail of the raft log"
            );
            file.set_len(pos as u64).map_err(io_err)?;
        }
        // Covers a just-created file (its directory entry) and a truncated tail alike.
        file.sync_all().map_err(io_err)?;
        durable::sync_parent(path).map_err(io_err)?;
        file.flush().map_err(io_err)?;
        let log_file = LogFile {
            path: path.to_owned(),
            file,
            len_bytes: pos as u64,
            positions,
            poisoned: false,
        };
        Ok((log_file, entries))
    }

    fn check_usable(&self) -> io::Result<()> {
        if self.poisoned {
            return Err(io::Error::other(format!(
                "{} is poisoned by an earlier failed write",
                self.path.display()
            )));
        }
        Ok(())
    }

    /// Appends encoded records (`(index, record)`) and fsyncs.
    fn append(&mut self, records: &[(u64, Vec<u8>)]) -> io::Result<()> {
        self.check_usable()?;
        let mut buf = Vec::with_capacity(records.iter().map(|(_, r)| r.len()).sum());
        let mut pos = self.len_bytes;
        let mut positions = Vec::with_capacity(records.len());
        for (index, record) in records {
            positions.push((*index, pos));
            pos += record.len() as u64;
            buf.extend_from_slice(record);
        }
        let result = self
            .file
            .write_all(&buf)
            .and_then(|()| self.file.sync_data());
        if result.is_err() {
            self.poisoned = true;
            return result;
        }
        self.len_bytes = pos;
        self.positions.extend(positions);
        Ok(())
    }

    /// Removes every record with index >= `index`.
    fn truncate(&mut self, index: u64) -> io::Result<()> {
        self.check_usable()?;
        let Some(&pos) = self.positions.get(&index) else {
            // Nothing at or after `index` is on disk (it can only be beyond the last entry).
            assert!(self.positions.range(index..).next().is_none());
            return Ok(());
        };
        let result = self.file.set_len(pos).and_then(|()| self.file.sync_all());
        if result.is_err() {
            self.poisoned = true;
            return result;
        }
        self.len_bytes = pos;
        self.positions.split_off(&index);
        Ok(())
    }

    /// Replaces the whole file with `records` (the entries that survive a purge).
    fn rewrite(&mut self, records: &[(u64, Vec<u8>)]) -> io::Result<()> {
        self.check_usable()?;
        let tmp = durable::tmp_path(&self.path);
        let result = (|| {
            let mut file = OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .open(&tmp)?;
            for (_, record) in records {
                file.write_all(record)?;
            }
            file.sync_all()?;
            fs::rename(&tmp, &self.path)?;
            durable::sync_parent(&self.path)?;
            OpenOptions::new().read(true).append(true).open(&self.path)
        })();
        match result {
            Ok(file) => {
                self.file = file;
                self.positions.clear();
                self.len_bytes = 0;
                for (index, record) in records {
                    self.positions.insert(*index, self.len_bytes);
                    self.len_bytes += record.len() as u64;
                }
                Ok(())
            }
            Err(e) => {
                self.poisoned = true;
                Err(e)
            }
        }
    }
}

impl LogStore {
    /// Opens the log under `dir` (blocking I/O: call from the blocking pool or at startup).
    pub(crate) fn open(dir: &Path) -> Result<Self, Error> {
        let log_dir = dir.join(LOG_DIR);
        fs::create_dir_all(&log_dir).map_err(|e| Error::io(&log_dir, e))?;
        // Make the directories themselves durable before anything in them is relied on.
        for d in [dir, log_dir.as_path()] {
            durable::sync_dir(d).map_err(|e| Error::io(d, e))?;
        }
        let last_purged: Option<LogId> = read_json(&dir.join(PURGED_FILE))?;
        let vote: Option<Vote> = read_json(&dir.join(VOTE_FILE))?;
        let committed: Option<LogId> = read_json(&dir.join(COMMITTED_FILE))?;
        let (mut file, recovered) = LogFile::open(&log_dir.join(LOG_FILE))?;

        let purged_index = last_purged.map(|id| id.index);
        let recovered_count = recovered.len();
        let entries: BTreeMap<u64, Entry> = recovered
            .into_iter()
            .filter(|e| purged_index.is_none_or(|p| e.log_id.index > p))
            .map(|e| (e.log_id.index, e))
            .collect();
        if entries.len() != recovered_count {
            // A purge was interrupted between writing purged.json and rewriting the file.
            let records: Vec<(u64, Vec<u8>)> = entries
                .values()
                .map(|e| (e.log_id.index, encode_record(e)))
                .collect();
            file.rewrite(&records)
                .map_err(|e| Error::io(&file.path, e))?;
        }
        tracing::info!(
            dir = %dir.display(),
            entries = entries.len(),
            last_purged = ?last_purged,
            vote = ?vote,
            "opened raft log"
        );
        let mem = LogMem {
            entries,
            last_purged,
        };
        Ok(LogStore {
            dir: dir.to_owned(),
            mem: Arc::new(Mutex::new(mem)),
            file: Arc::new(Mutex::new(file)),
            vote,
            committed,
        })
    }

    /// Runs blocking file I/O on the blocking pool and waits for it.
    async fn blocking<T, F>(f: F) -> io::Result<T>
    where
        F: FnOnce() -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        tokio::task::spawn_blocking(f)
            .await
            .unwrap_or_else(|join_error| Err(io::Error::other(join_error)))
    }

    async fn write_json_atomic<T: Serialize>(&self, name: &str, value: &T) -> io::Result<()> {
        let path = self.dir.join(name);
        let bytes = to_json(value);
        Self::blocking(move || durable::write_atomically(&path, &bytes)).await
    }
}

fn read_range<RB: RangeBounds<u64>>(mem: &Mutex<LogMem>, range: RB) -> Vec<Entry> {
    lock(mem)
        .entries
        .range(range)
        .map(|(_, e)| e.clone())
        .collect()
}

fn storage_err(subject: ErrorSubject<u64>, verb: ErrorVerb, e: &io::Error) -> StorageError {
    StorageIOError::new(subject, verb, AnyError::new(e)).into()
}

impl RaftLogReader<TypeConfig> for LogReader {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.mem, range))
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + Send>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry>, StorageError> {
        Ok(read_range(&self.mem, range))
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogReader;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError> {
        let mem = lock(&self.mem);
        let last_log_id = mem
            .entries
            .values()
            .next_back()
            .map(|e| e.log_id)
            .or(mem.last_purged);
        Ok(LogState {
            last_purged_log_id: mem.last_purged,
            last_log_id,
        })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        LogReader {
            mem: self.mem.clone(),
        }
    }

    async fn save_vote(&mut self, vote: &Vote) -> Result<(), StorageError> {
        self.write_json_atomic(VOTE_FILE, vote)
            .await
            .map_err(|e| storage_err(ErrorSubject::Vote, ErrorVerb::Write, &e))?;
        self.vote = Some(*vote);
        Ok(())
    }

    async fn read_vote(&mut self) -> Result<Option<Vote>, StorageError> {
        Ok(self.vote)
    }

    /// Persisting `committed` lets a restarted node re-apply its committed entries at startup,
    /// before any leader is elected, so `MetadataStore::open` returns an up-to-date image.
    async fn save_committed(&mut self, committed: Option<LogId>) -> Result<(), StorageError> {
        if committed == self.committed {
            return Ok(());
        }
        self.write_json_atomic(COMMITTED_FILE, &committed)
            .await
            .map_err(|e| storage_err(ErrorSubject::Store, ErrorVerb::Write, &e))?;
        self.committed = committed;
        Ok(())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId>, StorageError> {
        Ok(self.committed)
    }

    async fn append<I>(
        &mut self,
        entries: I,
        callback: LogFlushed<TypeConfig>,
    ) -> Result<(), StorageError>
    where
        I: IntoIterator<Item = Entry> + Send,
        I::IntoIter: Send,
    {
        let entries: Vec<Entry> = entries.into_iter().collect();
        let mut expected = lock(&self.mem).entries.keys().next_back().map(|i| i + 1);
        for entry in &entries {
            if expected.is_some_and(|want| want != entry.log_id.index) {
                let e = io::Error::other(format!(
                    "append of {} would leave a hole in the log",
                    entry.log_id
                ));
                callback.log_io_completed(Err(io::Error::other(e.to_string())));
                return Err(storage_err(ErrorSubject::Logs, ErrorVerb::Write, &e));
            }
            expected = Some(entry.log_id.index + 1);
        }
        let records: Vec<(u64, Vec<u8>)> = entries
            .iter()
            .map(|e| (e.log_id.index, encode_record(e)))
            .collect();
        let file = self.file.clone();
        let result = Self::blocking(move || lock(&file).append(&records)).await;
        match result {
            Ok(()) => {
                let mut mem = lock(&self.mem);
                mem.entries
                    .extend(entries.into_iter().map(|e| (e.log_id.index, e)));
                drop(mem);
                callback.log_io_completed(Ok(()));
                Ok(())
            }
            Err(e) => {
                callback.log_io_completed(Err(io::Error::new(e.kind(), e.to_string())));
                Err(storage_err(ErrorSubject::Logs, ErrorVerb::Write, &e))
            }
        }
    }

    async fn truncate(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "truncating raft log");
        let file = self.file.clone();
        let index = log_id.index;
        Self::blocking(move || lock(&file).truncate(index))
            .await
            .map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Delete, &e))?;
        lock(&self.mem).entries.split_off(&index);
        Ok(())
    }

    async fn purge(&mut self, log_id: LogId) -> Result<(), StorageError> {
        tracing::debug!(%log_id, "purging raft log");
        {
            let mem = lock(&self.mem);
            assert!(
                mem.last_purged.is_none_or(|p| p <= log_id),
                "purge went backwards"
            );
        }
        self.write_json_atomic(PURGED_FILE, &log_id)
            .await
            .map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Delete, &e))?;
        let records: Vec<(u64, Vec<u8>)> = {
            let mut mem = lock(&self.mem);
            mem.last_purged = Some(log_id);
            mem.entries = mem.entries.split_off(&(log_id.index + 1));
            mem.entries
                .values()
                .map(|e| (e.log_id.index, encode_record(e)))
                .collect()
        };
        let file = self.file.clone();
        Self::blocking(move || lock(&file).rewrite(&records))
            .await
            .map_err(|e| storage_err(ErrorSubject::Logs, ErrorVerb::Delete, &e))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::io::Seek;

    use openraft::storage::RaftLogStorageExt;
    use openraft::testing::log_id;
    use openraft::{EntryPayload, RaftLogReader};

    use super::*;
    use crate::command::MetadataCommand;

    fn entry(term: u64, index: u64) -> Entry {
        openraft::Entry {
            log_id: log_id(term, 1, index),
            payload: EntryPayload::Normal(MetadataCommand::AllocateProducerIds {
                count: index as i64 + 1,
            }),
        }
    }

    async fn all(store: &mut LogStore) -> Vec<u64> {
        let entries = store.try_get_log_entries(..).await.expect("read");
        entries.iter().map(|e| e.log_id.index).collect()
    }

    fn log_path(dir: &Path) -> PathBuf {
        dir.join(LOG_DIR).join(LOG_FILE)
    }

    #[tokio::test]
    async fn entries_vote_and_committed_survive_reopen() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append((1..=5).map(|i| entry(1, i)))
                .await
                .expect("append");
            store.save_vote(&Vote::new(3, 1)).await.expect("vote");
            store
                .save_committed(Some(log_id(1, 1, 4)))
                .await
                .expect("committed");
        }
        let mut store = LogStore::open(dir.path()).expect("reopen");
        assert_eq!(all(&mut store).await, vec![1, 2, 3, 4, 5]);
        assert_eq!(
            store.read_vote().await.expect("vote"),
            Some(Vote::new(3, 1))
        );
        assert_eq!(
            store.read_committed().await.expect("committed"),
            Some(log_id(1, 1, 4))
        );
        let reread = store.try_get_log_entries(3..4).await.expect("read");
        assert_eq!(reread, vec![entry(1, 3)]);
    }

    #[tokio::test]
    async fn torn_tail_is_truncated_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append((1..=3).map(|i| entry(1, i)))
                .await
                .expect("append");
        }
        let path = log_path(dir.path());
        let intact_len = fs::metadata(&path).expect("stat").len();

        // 1. A record cut short in its payload.
        let record = encode_record(&entry(1, 4));
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open log");
        file.write_all(&record[..record.len() - 3])
            .expect("write torn record");
        drop(file);
        let mut store = LogStore::open(dir.path()).expect("reopen after torn payload");
        assert_eq!(all(&mut store).await, vec![1, 2, 3]);
        assert_eq!(fs::metadata(&path).expect("stat").len(), intact_len);

        // The store keeps working after recovery, and the new record lands where the torn one was.
        store
            .blocking_append([entry(2, 4)])
            .await
            .expect("append after recovery");
        drop(store);
        let intact_len = fs::metadata(&path).expect("stat").len();

        // 2. A complete record with a bad CRC, followed by a half header.
        let mut record = encode_record(&entry(2, 5));
        let last = record.len() - 1;
        record[last] ^= 0xff;
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open log");
        file.write_all(&record).expect("write corrupt record");
        file.write_all(&[7, 0, 0]).expect("write half header");
        drop(file);
        let mut store = LogStore::open(dir.path()).expect("reopen after bad crc");
        assert_eq!(all(&mut store).await, vec![1, 2, 3, 4]);
        assert_eq!(
            store.try_get_log_entries(4..5).await.expect("read"),
            vec![entry(2, 4)]
        );
        assert_eq!(fs::metadata(&path).expect("stat").len(), intact_len);

        // 3. A length prefix far beyond the limit (e.g. garbage after a crash).
        drop(store);
        let mut file = OpenOptions::new()
            .append(true)
            .open(&path)
            .expect("open log");
        file.write_all(&u32::MAX.to_le_bytes()).expect("write");
        file.write_all(&[0; 16]).expect("write");
        drop(file);
        let mut store = LogStore::open(dir.path()).expect("reopen after huge length");
        assert_eq!(all(&mut store).await, vec![1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn intact_but_undecodable_record_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        drop(LogStore::open(dir.path()).expect("open"));
        let payload = b"{not an entry}";
        let mut record = Vec::new();
        record.extend_from_slice(&(payload.len() as u32).to_le_bytes());
        record.extend_from_slice(&crc32c::crc32c(payload).to_le_bytes());
        record.extend_from_slice(payload);
        fs::write(log_path(dir.path()), &record).expect("write");
        assert!(matches!(
            LogStore::open(dir.path()),
            Err(Error::Corrupt { .. })
        ));
    }

    #[tokio::test]
    async fn truncate_and_purge_persist() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append((1..=10).map(|i| entry(1, i)))
                .await
                .expect("append");
            store.truncate(log_id(1, 1, 8)).await.expect("truncate");
            assert_eq!(all(&mut store).await, (1..=7).collect::<Vec<_>>());
            store.purge(log_id(1, 1, 3)).await.expect("purge");
            assert_eq!(all(&mut store).await, vec![4, 5, 6, 7]);
            store.blocking_append([entry(2, 8)]).await.expect("append");
            let state = store.get_log_state().await.expect("state");
            assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 3)));
            assert_eq!(state.last_log_id, Some(log_id(2, 1, 8)));
        }
        let mut store = LogStore::open(dir.path()).expect("reopen");
        assert_eq!(all(&mut store).await, vec![4, 5, 6, 7, 8]);
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_purged_log_id, Some(log_id(1, 1, 3)));

        // Purging past the end empties the log; the last log id becomes the purged one.
        store.purge(log_id(2, 1, 20)).await.expect("purge all");
        drop(store);
        let mut store = LogStore::open(dir.path()).expect("reopen");
        assert!(all(&mut store).await.is_empty());
        let state = store.get_log_state().await.expect("state");
        assert_eq!(state.last_log_id, Some(log_id(2, 1, 20)));
    }

    #[tokio::test]
    async fn interrupted_purge_is_completed_on_open() {
        let dir = tempfile::tempdir().expect("tempdir");
        {
            let mut store = LogStore::open(dir.path()).expect("open");
            store
                .blocking_append((1..=5).map(|i| entry(1, i)))
                .await
                .expect("append");
        }
        // Simulate a crash after purged.json was written but before the rewrite.
        let purged = to_json(&log_id(1, 1, 2));
        durable::write_atomically(&dir.path().join(PURGED_FILE), &purged).expect("write purged");
        let mut store = LogStore::open(dir.path()).expect("reopen");
        assert_eq!(all(&mut store).await, vec![3, 4, 5]);
        drop(store);
        let mut file = File::open(log_path(dir.path())).expect("open log");
        let len = file.seek(io::SeekFrom::End(0)).expect("seek");
        let expected: u64 = (3..=5)
            .map(|i| encode_record(&entry(1, i)).len() as u64)
            .sum();
        assert_eq!(len, expected);
    }

    #[tokio::test]
    async fn append_with_a_hole_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut store = LogStore::open(dir.path()).expect("open");
        store.blocking_append([entry(1, 1)]).await.expect("append");
        assert!(store.blocking_append([entry(1, 3)]).await.is_err());
    }
}
