use super::*;
use crate::batch::build_batch;
use crate::config::LogConfig;
use std::os::unix::fs::FileExt;

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 1024,
        index_interval_bytes: 64,
        ..LogConfig::default()
    }
}

/// Lets go of a log without closing it, as a kill -9 would, before the test opens its
/// directory again. The jobs already queued for its sealed segments run first: in a
/// restart they die with the process, but here they would go on to trim index files
/// that the reopened log has mapped (SIGBUS), or write a recovery point over the one
/// the test sets.
fn stop(log: PartitionLog) {
    drop(log);
    background::wait_idle();
}

fn batch(ts: i64, values: &[&[u8]]) -> Vec<u8> {
    build_batch(0, ts, values, (-1, -1, -1)).to_vec()
}

/// Appends as the only replica: the high watermark follows the log end.
fn append(log: &mut PartitionLog, records: &[u8], epoch: i32, now_ms: i64) -> Result<AppendResult> {
    let r = log.append_as_leader(records, epoch, now_ms)?;
    log.set_high_watermark(log.log_end_offset());
    Ok(r)
}

fn read_all(log: &PartitionLog, from: i64) -> Vec<BatchHeader> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let r = log.read(offset, 1 << 20, true).unwrap();
        let Some(s) = r.slice else { break };
        let mut buf = vec![0; s.len];
        s.file.read_exact_at(&mut buf, s.position).unwrap();
        let mut at = 0;
        while at + batch::HEADER_BYTES <= buf.len() {
            let h = BatchHeader::parse(&buf[at..]).unwrap();
            if at + h.total_bytes() > buf.len() {
                break;
            }
            batch::validate(&buf[at..at + h.total_bytes()]).unwrap();
            if h.last_offset() >= offset {
                out.push(h);
            }
            at += h.total_bytes();
        }
        offset = out.last().unwrap().next_offset();
    }
    out
}

#[test]
fn append_assigns_offsets_and_reads_back_across_segments() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    for i in 0..100 {
        let r = append(&mut log, &batch(i, &[b"0123456789", b"abcdefghij"]), 3, 0).unwrap();
        assert_eq!(
            (r.base_offset, r.last_offset, r.records),
            (i * 2, i * 2 + 1, 2)
        );
    }
    assert!(log.segment_count() > 3, "segment.bytes=1024 rolls");
    assert_eq!((log.log_end_offset(), log.high_watermark()), (200, 200));
    let all = read_all(&log, 0);
    assert_eq!(all.len(), 100);
    assert!(all
        .iter()
        .enumerate()
        .all(|(i, h)| h.base_offset == i as i64 * 2 && h.partition_leader_epoch == 3));
    // from the middle of a batch
    assert_eq!(read_all(&log, 77)[0].base_offset, 76);
    // at the end: empty; past the end: out of range
    assert!(log.read(200, 100, true).unwrap().slice.is_none());
    assert!(matches!(
        log.read(201, 100, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
}

#[test]
fn max_bytes_and_min_one_batch() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let b = batch(1, &[&[7u8; 500]]);
    for _ in 0..4 {
        append(&mut log, &b, 0, 0).unwrap();
    }
    let s = log.read(0, 10, true).unwrap().slice.unwrap();
    assert_eq!(s.len, b.len(), "KIP-74: the whole first batch");
    assert!(
        log.read(0, 10, false).unwrap().slice.is_none(),
        "no partial first batch"
    );
    assert_eq!(
        log.read(0, b.len() * 2 - 1, false)
            .unwrap()
            .slice
            .unwrap()
            .len,
        b.len(),
        "no partial batch at the end"
    );
    assert_eq!(
        log.read(0, b.len() * 2, true).unwrap().slice.unwrap().len,
        b.len() * 2
    );
    assert_eq!(
        log.read(1, 1 << 20, true).unwrap().slice.unwrap().len,
        b.len() * 3
    );
}

/// Every read ends on a batch boundary and holds as many whole batches as fit, checked
/// against a walk of the batch sizes for many starts and limits, with batches from 70
/// bytes to over two index intervals and both a small and the default interval.
#[test]
fn reads_hold_whole_batches_only() {
    for interval in [64, 4096] {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            index_interval_bytes: interval,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
        let mut sizes = Vec::new();
        for i in 0..300usize {
            let b = batch(i as i64, &[&vec![b'x'; (i * 7919) % 9000]]);
            sizes.push(b.len());
            append(&mut log, &b, 0, 0).unwrap();
        }
        for start in (0..300).step_by(7) {
            for max in [1, 61, 100, 1000, 4097, 10_000, 50_000, 1 << 20] {
                let mut expected = 0;
                for s in &sizes[start..] {
                    if expected + s > max {
                        break;
                    }
                    expected += s;
                }
                let got = log.read(start as i64, max, false).unwrap().slice;
                assert_eq!(
                    got.map_or(0, |s| s.len),
                    expected,
                    "start {start}, max {max}, interval {interval}"
                );
            }
        }
    }
}

/// The end of a read is found only from the page cache, without waiting for the disk
/// under the lock: when the bytes near the limit are not cached, the read ends at the
/// last batch the offset index or the cached bytes show to be whole (the cut batch is
/// kept only when none is known past the first). Once cached, it ends on the last whole
/// batch that fits.
#[test]
fn whole_batch_end_is_found_only_in_the_page_cache() {
    use nix::fcntl::{posix_fadvise, PosixFadviseAdvice};
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let b = batch(1, &[&[7u8; 9000]]);
    for _ in 0..300 {
        append(&mut log, &b, 0, 0).unwrap();
    }
    let fitting = (1 << 20) / b.len() * b.len();
    let file = log.read(0, 1 << 20, false).unwrap().slice.unwrap().file;
    file.sync_all().unwrap();
    let evict = |from: usize| {
        posix_fadvise(
            &*file,
            from as i64,
            0,
            PosixFadviseAdvice::POSIX_FADV_DONTNEED,
        )
        .unwrap()
    };

    evict(0);
    let cold = log.read(0, 1 << 20, false).unwrap().slice.unwrap().len;
    assert!(
        cold.is_multiple_of(b.len()) && cold > 0 && cold <= fitting,
        "not cached: ends on an indexed batch ({cold})"
    );
    // Cached up to half the limit only: the index (every batch here) still ends it.
    let mut all = vec![0u8; b.len() * 300];
    file.read_exact_at(&mut all, 0).unwrap();
    evict(512 << 10);
    let half = log.read(0, 1 << 20, false).unwrap().slice.unwrap().len;
    assert!(
        half.is_multiple_of(b.len()) && half > 0 && half <= fitting,
        "{half}"
    );

    file.read_exact_at(&mut all, 0).unwrap();
    let warm = log.read(0, 1 << 20, false).unwrap().slice.unwrap().len;
    assert_eq!(warm, fitting, "cached: whole batches only");

    // No index entry past the first batch: the batches read from the cache end it.
    let sparse = PartitionLog::open(
        &dir.path().join("sparse"),
        LogConfig {
            index_interval_bytes: 1 << 30,
            ..LogConfig::default()
        },
        0,
    );
    let mut sparse = sparse.unwrap();
    for _ in 0..300 {
        append(&mut sparse, &b, 0, 0).unwrap();
    }
    let file = sparse.read(0, 1 << 20, false).unwrap().slice.unwrap().file;
    file.sync_all().unwrap();
    posix_fadvise(&*file, 0, 0, PosixFadviseAdvice::POSIX_FADV_DONTNEED).unwrap();
    let read = sparse.read(0, 1 << 20, false).unwrap().slice.unwrap().len;
    assert!(
        read.is_multiple_of(b.len()) && read > 0 && read <= fitting,
        "{read}"
    );
}

/// A log in a directory it created syncs that directory and its parent at its first
/// flush of records, and only then; a reopened log has nothing to sync.
#[test]
fn the_first_flush_of_records_syncs_a_new_directory() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("t-0");
    let mut log = PartitionLog::open(&path, LogConfig::default(), 0).unwrap();
    assert!(log.dir_unsynced);
    log.flush(1).unwrap();
    assert!(log.dir_unsynced, "nothing written: nothing synced");
    append(&mut log, &batch(1, &[b"a"]), 0, 0).unwrap();
    log.flush(2).unwrap();
    assert!(!log.dir_unsynced);
    stop(log);
    let reopened = PartitionLog::open(&path, LogConfig::default(), 0).unwrap();
    assert!(!reopened.dir_unsynced);
}

#[test]
fn high_watermark_bounds_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let b = batch(1, &[b"x"]);
    for _ in 0..3 {
        append(&mut log, &b, 0, 0).unwrap();
    }
    log.set_high_watermark(1);
    assert_eq!(
        log.read(0, 1 << 20, true).unwrap().slice.unwrap().len,
        b.len()
    );
    assert!(log.read(1, 1 << 20, true).unwrap().slice.is_none());
}

#[test]
fn reopen_recovers_torn_tail_and_producer_state() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    for seq in 0..20 {
        let b = build_batch(0, 5, &[b"v"], (42, 0, seq)).to_vec();
        append(&mut log, &b, 0, 0).unwrap();
    }
    let active = *log.segment_bases().last().unwrap();
    let path = log.segment_log_path(active);
    stop(log); // like kill -9: no close
    let len = std::fs::metadata(&path).unwrap().len();
    let f = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    f.write_all_at(&[0xAB; 30], len).unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.log_end_offset(), 20);
    assert_eq!(std::fs::metadata(&path).unwrap().len(), len);
    // the producer's last batch is known after restart: a retry is a duplicate
    let retry = build_batch(0, 5, &[b"v"], (42, 0, 19)).to_vec();
    let r = append(&mut log, &retry, 0, 0).unwrap();
    assert!(r.duplicate && r.base_offset == 19);
    assert_eq!(log.log_end_offset(), 20);
    let gap = build_batch(0, 5, &[b"v"], (42, 0, 25)).to_vec();
    assert!(matches!(
        append(&mut log, &gap, 0, 0),
        Err(Error::Producer(_))
    ));
    assert_eq!(log.log_end_offset(), 20, "a refused batch stores nothing");
}

#[test]
fn corrupt_batches_are_refused_whole() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    let good = batch(1, &[b"a"]);
    let mut bad = good.clone();
    *bad.last_mut().unwrap() ^= 0x40;
    let both = [good.clone(), bad].concat();
    assert!(matches!(
        append(&mut log, &both, 0, 0),
        Err(Error::Batch(BatchError::BadCrc { .. }))
    ));
    assert!(matches!(append(&mut log, &[], 0, 0), Err(Error::NoBatches)));
    assert_eq!(log.log_end_offset(), 0);
    // max.message.bytes is the Produce handler's to enforce: the broker's own writes
    // (a delayed record coming due) may be larger.
    let cfg = LogConfig {
        max_message_bytes: 10,
        ..LogConfig::default()
    };
    log.set_config(cfg);
    assert_eq!(append(&mut log, &good, 0, 0).unwrap().base_offset, 0);
}

#[test]
fn timestamps_and_epochs() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    log.assign_epoch(0);
    for i in 0..30 {
        let epoch = if i < 10 {
            0
        } else if i < 20 {
            2
        } else {
            5
        };
        log.assign_epoch(epoch);
        append(&mut log, &batch(1000 + i * 10, &[b"a", b"b"]), epoch, 0).unwrap();
    }
    // batch i holds offsets 2i, 2i+1 with timestamps 1000+10i, 1000+10i+1
    assert_eq!(
        log.offset_for_timestamp(1000 + 10 * 7 + 1).unwrap(),
        Some((15, 1071))
    );
    assert_eq!(
        log.offset_for_timestamp(1000 + 10 * 7 + 2).unwrap(),
        Some((16, 1080))
    );
    assert_eq!(log.offset_for_timestamp(0).unwrap(), Some((0, 1000)));
    assert_eq!(log.offset_for_timestamp(99_999).unwrap(), None);
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((59, 1291)));
    assert_eq!(log.end_offset_for_epoch(0), (0, 20));
    assert_eq!(log.end_offset_for_epoch(1), (0, 20));
    assert_eq!(log.end_offset_for_epoch(2), (2, 40));
    assert_eq!(log.end_offset_for_epoch(5), (5, 60));
    assert_eq!(log.end_offset_for_epoch(6), (-1, -1));
}

/// The time index holds the largest timestamp so far, so a lookup finds batches written
/// before an indexed one: with equal timestamps, or with timestamps that go back.
#[test]
fn timestamp_lookups_find_batches_before_the_indexed_one() {
    for (timestamps, target, hit) in [
        ([100, 100, 100], 100, (0, 100)),
        ([100, 50, 50], 60, (0, 100)),
        ([10, 100, 50], 60, (2, 100)),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let one = batch(0, &[b"a", b"b"]).len();
        // Every second batch is indexed.
        let cfg = LogConfig {
            index_interval_bytes: one + 1,
            ..LogConfig::default()
        };
        let mut log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
        for ts in timestamps {
            append(&mut log, &batch(ts, &[b"a", b"b"]), 0, 0).unwrap();
        }
        assert_eq!(
            log.offset_for_timestamp(target).unwrap(),
            Some(hit),
            "{timestamps:?} at {target}"
        );
    }
}

#[test]
fn delete_records_and_retention() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    for i in 0..50 {
        append(&mut log, &batch(i * 1000, &[&[1u8; 100]]), 0, 0).unwrap();
    }
    let segments = log.segment_count();
    assert_eq!(log.delete_records_before(25).unwrap(), 25);
    assert!(log.segment_count() < segments);
    assert!(matches!(
        log.read(24, 100, true),
        Err(Error::OffsetOutOfRange { .. })
    ));
    assert!(read_all(&log, 25)[0].last_offset() >= 25);
    assert!(matches!(
        log.delete_records_before(51),
        Err(Error::OffsetOutOfRange { .. })
    ));
    stop(log);
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(
        log.log_start_offset(),
        25,
        "the log start offset survives restart"
    );

    // An empty cleanup.policy keeps every segment, whatever the retention settings.
    let segments = log.segment_count();
    log.set_config(LogConfig {
        retention_bytes: 1500,
        retention_ms: 1000,
        delete_policy: false,
        ..small_config()
    });
    assert_eq!(log.enforce_retention(10_000_000).unwrap(), 0);
    assert_eq!(log.segment_count(), segments);
    // retention.bytes keeps the newest segments under the limit
    log.set_config(LogConfig {
        retention_bytes: 1500,
        ..small_config()
    });
    log.enforce_retention(0).unwrap();
    assert!(log.size_bytes() <= 1500 + 1024);
    // retention.ms: everything older than now - 1000 goes, active segment included
    log.set_config(LogConfig {
        retention_ms: 1000,
        ..small_config()
    });
    log.enforce_retention(10_000_000).unwrap();
    assert_eq!(log.segment_count(), 1);
    assert_eq!(log.log_start_offset(), 50);
    assert_eq!(log.log_end_offset(), 50);
    let r = append(&mut log, &batch(1, &[b"z"]), 0, 0).unwrap();
    assert_eq!(r.base_offset, 50);
}

#[test]
fn log_append_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        timestamp_type: crate::config::TimestampType::LogAppendTime,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    let r = append(&mut log, &batch(5, &[b"a"]), 0, 777).unwrap();
    assert_eq!(r.log_append_time_ms, 777);
    let h = read_all(&log, 0)[0];
    assert!(h.is_log_append_time() && h.max_timestamp == 777);
    // An idempotent producer's retry is answered with the time of the original append.
    let idempotent = build_batch(0, 5, &[b"b"], (42, 0, 0)).to_vec();
    let r = append(&mut log, &idempotent, 0, 800).unwrap();
    assert_eq!((r.base_offset, r.log_append_time_ms), (1, 800));
    let r = append(&mut log, &idempotent, 0, 900).unwrap();
    assert!(r.duplicate);
    assert_eq!((r.base_offset, r.log_append_time_ms), (1, 800));
}

#[test]
fn a_create_time_batch_is_stored_with_its_records_largest_timestamp() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), LogConfig::default(), 0).unwrap();
    // Records at 5 and 6; the client claims 10^12 and LogAppendTime.
    let mut lying = batch(5, &[b"a", b"b"]);
    lying[35..43].copy_from_slice(&1_000_000_000_000i64.to_be_bytes());
    lying[22] |= 0x08;
    batch::reseal(&mut lying);
    let truthful = batch(7, &[b"c"]);
    append(&mut log, &lying, 0, 0).unwrap();
    append(&mut log, &truthful, 0, 0).unwrap();
    let stored = read_all(&log, 0);
    assert_eq!(stored[0].max_timestamp, 6);
    assert!(!stored[0].is_log_append_time());
    assert_eq!(stored[1].max_timestamp, 7);
    // The time index went by the records' timestamps, not the claim.
    assert_eq!(log.offset_for_timestamp(7).unwrap(), Some((2, 7)));
    assert_eq!(log.max_timestamp_offset().unwrap(), Some((2, 7)));
}

#[test]
fn flush_policy_counts_messages() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = LogConfig {
        flush_messages: 3,
        flush_ms: 50,
        ..LogConfig::default()
    };
    let mut log = PartitionLog::open(dir.path(), cfg, 0).unwrap();
    append(&mut log, &batch(1, &[b"a", b"b"]), 0, 0).unwrap();
    assert_eq!(log.unflushed_messages, 2);
    append(&mut log, &batch(1, &[b"c"]), 0, 0).unwrap();
    assert_eq!(log.unflushed_messages, 0);
    append(&mut log, &batch(1, &[b"d"]), 0, 10).unwrap();
    log.flush_if_due(20).unwrap();
    assert_eq!(log.unflushed_messages, 1);
    log.flush_if_due(60).unwrap();
    assert_eq!(log.unflushed_messages, 0);
}

/// A log of 100 two-record batches over several 1 KiB segments, every roll synced.
fn rolled_log(dir: &Path) -> PartitionLog {
    let mut log = PartitionLog::open(dir, small_config(), 0).unwrap();
    for i in 0..100 {
        append(&mut log, &batch(i, &[b"0123456789", b"abcdefghij"]), 0, 0).unwrap();
    }
    assert!(log.segment_count() >= 4, "segment.bytes=1024 rolls");
    background::wait_idle();
    log
}

/// Flips a byte inside the second batch of a segment (its records, under the CRC).
fn corrupt_second_batch(log: &PartitionLog, base: i64) -> (u64, i64) {
    let path = log.segment_log_path(base);
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&path)
        .unwrap();
    let mut head = [0u8; batch::HEADER_BYTES];
    f.read_exact_at(&mut head, 0).unwrap();
    let first = BatchHeader::parse(&head).unwrap();
    let at = first.total_bytes() as u64;
    f.read_exact_at(&mut head, at).unwrap();
    let second = BatchHeader::parse(&head).unwrap();
    let mut byte = [0u8];
    let target = at + second.total_bytes() as u64 - 2;
    f.read_exact_at(&mut byte, target).unwrap();
    f.write_all_at(&[byte[0] ^ 0xFF], target).unwrap();
    (at, second.base_offset)
}

fn stored_recovery_point(dir: &Path) -> Option<i64> {
    RecoveryPoint::read(dir).unwrap()
}

#[test]
fn a_roll_is_synced_in_the_background_and_moves_the_recovery_point() {
    let dir = tempfile::tempdir().unwrap();
    let log = rolled_log(dir.path());
    let active = *log.segment_bases().last().unwrap();
    assert_eq!(log.recovery_point(), active);
    assert_eq!(stored_recovery_point(dir.path()), Some(active));
    // Reopened, the point is where it was and the next roll moves it on.
    stop(log);
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.recovery_point(), active);
    log.roll().unwrap();
    background::wait_idle();
    assert_eq!(
        stored_recovery_point(dir.path()),
        Some(log.log_end_offset())
    );
}

#[test]
fn open_checks_the_segments_past_the_recovery_point_and_trusts_those_below() {
    let dir = tempfile::tempdir().unwrap();
    let log = rolled_log(dir.path());
    let bases = log.segment_bases();
    let (below, past) = (bases[0], bases[1]);
    let below_len = std::fs::metadata(log.segment_log_path(below))
        .unwrap()
        .len();
    corrupt_second_batch(&log, below);
    let (cut_at, cut_offset) = corrupt_second_batch(&log, past);
    stop(log); // like kill -9: the rolls after `past` never reached the disk
    crate::durable::write_atomically(
        &dir.path().join(crate::recovery_point::RECOVERY_POINT_FILE),
        past.to_string().as_bytes(),
    )
    .unwrap();

    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(
        std::fs::metadata(log.segment_log_path(below))
            .unwrap()
            .len(),
        below_len,
        "a segment below the recovery point is not re-read"
    );
    assert_eq!(
        log.segment_bases(),
        vec![below, past],
        "later segments deleted"
    );
    for &later in &bases[2..] {
        assert!(!log.segment_log_path(later).exists());
    }
    assert_eq!(
        std::fs::metadata(log.segment_log_path(past)).unwrap().len(),
        cut_at
    );
    assert_eq!(log.log_end_offset(), cut_offset);
    assert_eq!(log.recovery_point(), past);
    // The log goes on from the cut, and the next roll syncs from the point on.
    let r = append(&mut log, &batch(7, &[b"after"]), 0, 0).unwrap();
    assert_eq!(r.base_offset, cut_offset);
    assert_eq!(read_all(&log, past).last().unwrap().base_offset, cut_offset);
    log.roll().unwrap();
    background::wait_idle();
    assert_eq!(stored_recovery_point(dir.path()), Some(cut_offset + 1));
}

#[test]
fn without_a_recovery_point_every_segment_is_checked() {
    let dir = tempfile::tempdir().unwrap();
    let log = rolled_log(dir.path());
    let first = log.segment_bases()[0];
    let (cut_at, cut_offset) = corrupt_second_batch(&log, first);
    stop(log);
    std::fs::remove_file(dir.path().join(crate::recovery_point::RECOVERY_POINT_FILE)).unwrap();
    let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.segment_bases(), vec![first]);
    assert_eq!(
        std::fs::metadata(log.segment_log_path(first))
            .unwrap()
            .len(),
        cut_at
    );
    assert_eq!(log.log_end_offset(), cut_offset);
}

#[test]
fn a_retired_log_writes_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    append(&mut log, &batch(1, &[b"v"]), 0, 0).unwrap();
    log.roll().unwrap();
    log.retire();
    background::wait_idle();
    assert_eq!(
        stored_recovery_point(dir.path()),
        None,
        "queued before, run after"
    );
    assert!(matches!(
        append(&mut log, &batch(2, &[b"w"]), 0, 0),
        Err(Error::Poisoned)
    ));
    assert_eq!(log.log_end_offset(), 1);
    log.set_config(LogConfig {
        retention_ms: 0,
        ..small_config()
    });
    assert_eq!(log.enforce_retention(i64::MAX / 2).unwrap(), 0);
    assert!(matches!(log.delete_records_before(1), Err(Error::Poisoned)));
    assert_eq!(log.segment_count(), 2);
}

/// After `close` (shutdown) nothing is written: appends, record deletion and retention
/// are refused or do nothing, the indexes keep the length the close cut them to, reads
/// go on; a second close changes nothing; the next open appends again.
#[test]
fn a_closed_log_writes_nothing_more() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    for i in 0..3 {
        append(&mut log, &batch(i, &[&[b'x'; 100]]), 0, 0).unwrap();
    }
    let active = *log.segment_bases().last().unwrap();
    let index_lengths = |dir: &Path| {
        ["index", "timeindex"].map(|ext| {
            std::fs::metadata(dir.join(format!("{active:020}.{ext}")))
                .unwrap()
                .len()
        })
    };
    log.close(0).unwrap();
    let closed = index_lengths(dir.path());
    assert!(closed.iter().all(|&len| len < 1024), "cut: {closed:?}");
    assert!(matches!(
        append(&mut log, &batch(9, &[&[b'y'; 100]]), 0, 0),
        Err(Error::Closed)
    ));
    assert!(matches!(log.delete_records_before(1), Err(Error::Closed)));
    log.set_config(LogConfig {
        retention_ms: 0,
        ..small_config()
    });
    assert_eq!(log.enforce_retention(i64::MAX / 2).unwrap(), 0);
    log.close(0).unwrap();
    assert_eq!(index_lengths(dir.path()), closed);
    assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 3));
    assert_eq!(read_all(&log, 0).len(), 3);
    stop(log);
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(
        append(&mut log, &batch(9, &[b"z"]), 0, 0)
            .unwrap()
            .base_offset,
        3
    );
}

#[test]
fn a_segment_overlapping_the_one_before_goes_with_those_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let log = rolled_log(dir.path());
    let bases = log.segment_bases();
    // As a cut whose removal of later segments never reached the disk could leave.
    let stray = bases[1] + 1;
    std::fs::copy(log.segment_log_path(bases[2]), log.segment_log_path(stray)).unwrap();
    stop(log);
    assert_eq!(stored_recovery_point(dir.path()), bases.last().copied());
    let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.segment_bases(), bases[..2].to_vec());
    assert_eq!(log.log_end_offset(), bases[2]);
    assert!(!log.segment_log_path(stray).exists());
    assert!(!log.segment_log_path(bases[2]).exists());
    assert_eq!(
        stored_recovery_point(dir.path()),
        Some(bases[1]),
        "lowered with the log: segments rolled from here on are checked at a later start"
    );
}

#[test]
fn an_empty_overlapping_segment_goes_alone() {
    let dir = tempfile::tempdir().unwrap();
    let log = rolled_log(dir.path());
    let bases = log.segment_bases();
    let end = log.log_end_offset();
    // A roll that failed after creating its file, before later batches went on.
    let stray = bases[1] + 1;
    std::fs::write(log.segment_log_path(stray), b"").unwrap();
    stop(log);
    let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert_eq!(log.segment_bases(), bases);
    assert_eq!(log.log_end_offset(), end);
    assert!(!log.segment_log_path(stray).exists());
}

fn deleted_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(segment::DELETED_SUFFIX))
        .collect()
}

#[test]
fn deleted_segments_are_renamed_at_once_and_removed_in_the_background() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = rolled_log(dir.path());
    let bases = log.segment_bases();
    log.delete_records_before(bases[2]).unwrap();
    assert_eq!(log.segment_bases(), bases[2..].to_vec());
    for &gone in &bases[..2] {
        assert!(!log.segment_log_path(gone).exists(), "renamed at once");
    }
    background::wait_idle();
    assert_eq!(deleted_files(dir.path()), Vec::<String>::new());

    // A stop before the removal leaves renamed files: the next open removes them and
    // loads nothing from them.
    stop(log);
    let leftover = dir.path().join(format!("{:020}.log.deleted", bases[0]));
    std::fs::write(&leftover, b"old batches").unwrap();
    let log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    assert!(!leftover.exists());
    assert_eq!(log.segment_bases(), bases[2..].to_vec());
    assert_eq!(log.log_start_offset(), bases[2]);
}

/// Bytes of disk the file holds, and its length.
fn held_and_len(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path).unwrap();
    (m.blocks() * 512, m.len())
}

#[test]
fn a_busy_segment_reserves_blocks_ahead_and_gives_back_the_rest_when_sealed() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        segment_bytes: 64 << 20,
        ..LogConfig::default()
    };
    let probe = std::fs::File::create(dir.path().join("probe")).unwrap();
    let flags = nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
    if nix::fcntl::fallocate(&probe, flags, 0, 1 << 20).is_err() {
        eprintln!("skipped: the filesystem under the temp dir cannot reserve blocks");
        return;
    }
    let mut log = PartitionLog::open(dir.path(), config, 0).unwrap();
    let value = vec![7u8; 64 << 10];
    let first = log.segment_log_path(0);
    while held_and_len(&first).1 < crate::reserve::FROM_BYTES - (64 << 10) {
        append(&mut log, &batch(0, &[&value]), 0, 0).unwrap();
    }
    background::wait_idle();
    let (held, len) = held_and_len(&first);
    assert!(
        held <= len.next_multiple_of(4096) + (64 << 10),
        "a small segment reserves nothing: {held} held for {len}"
    );
    // Past the threshold, blocks are reserved ahead of the end; the length does not move.
    for _ in 0..4 {
        append(&mut log, &batch(0, &[&value]), 0, 0).unwrap();
    }
    background::wait_idle();
    let (held, len) = held_and_len(&first);
    assert!(held >= len + (512 << 10), "{held} held for {len}");
    assert_eq!(read_all(&log, 0).len() as i64, log.log_end_offset());
    // Sealed: what was not used is given back.
    log.roll().unwrap();
    background::wait_idle();
    let (held, sealed_len) = held_and_len(&first);
    assert_eq!(sealed_len, len);
    // (A block or two of the file's extent tree may count too.)
    assert!(
        held <= len.next_multiple_of(4096) + (64 << 10),
        "a sealed segment holds {held} for {len}"
    );
    // Every record is still there, and the log takes appends in the new segment.
    append(&mut log, &batch(0, &[&value]), 0, 0).unwrap();
    assert_eq!(read_all(&log, 0).len() as i64, log.log_end_offset());
}

/// A batch the broker stores without its records (all delayed: no timestamp in the log)
/// dates its producer's state by the records' own time, and after a restart, which
/// cannot see that time, by the restart; so neither expires the producer at once.
#[test]
fn a_batch_stored_without_its_records_still_dates_its_producer() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = PartitionLog::open(dir.path(), small_config(), 0).unwrap();
    let produced = build_batch(0, 7_000, &[b"a", b"b"], (9, 0, 0)).to_vec();
    let mut emptied = crate::record::with_records(&produced[..crate::batch::HEADER_BYTES], &[]);
    crate::batch::set_create_time(&mut emptied, -1);
    let validated = batch::check(&produced).unwrap();
    log.append_as_leader_with(&validated, Some(&emptied), 0, 8_000, |_| Ok(()))
        .unwrap();
    assert_eq!(log.log_end_offset(), 2);
    let last = |log: &PartitionLog| log.producers().get(9).and_then(|e| e.last_timestamp());
    assert_eq!(last(&log), Some(7_001));
    stop(log);
    let log = PartitionLog::open(dir.path(), small_config(), 50_000).unwrap();
    assert_eq!(last(&log), Some(50_000));
    assert_eq!(log.producers().last_seq(9), Some(1));
}
