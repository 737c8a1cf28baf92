//! Delayed records on disk (RocketMQ 5's TimerLog and TimerWheel): append-only segment
//! files of entries, and a memory-mapped timing wheel with one slot per second. A slot
//! holds the position of the newest entry chained to it; each entry holds the position
//! of the one before it in the same slot. Pending records cost disk, not memory: only
//! the wheel pages of seconds that have entries are ever touched.
//!
//! Entry layout (big-endian):
//! ```text
//!  0 len u32 (bytes after this field)
//!  4 state u8 | 5 release sequence i32 | 9 prev u64 (position + 1, 0: end of chain)
//! 17 crc32c u32 of bytes 21.. | 21 due ms i64 | 29 chain second i64 | 37 topic id [16]
//! 53 partition i32 | 57 origin offset i64 | 65 timestamp i64
//! 73 target u8 (0: its own partition, 1: its retry topic's dead-letter topic)
//! 74 topic name len u16 | 76 topic name | record (length prefix included)
//! ```
//! State, sequence and prev lie outside the CRC: they are written in place later.
//!
//! **Holes.** A sealed segment is deleted once every entry in it is done, so one long
//! delay would keep a whole segment of short ones on disk. [`reclaim`] turns runs of
//! done entries (chained before the durable checkpoint) into holes: the run's first
//! entry is marked [`HOLE`] and given the run's length (see [`scan`]), and the rest is
//! punched out of the file (`FALLOC_FL_PUNCH_HOLE`), so positions do not move. A chain
//! walk that meets a hole has met an older round, and stops, as it would have.
//!
//! An entry is chained to the slot of its *chain second*, which is its due second unless
//! that second was already staged by the timer (then the next unstaged one). A slot
//! serves every round of the wheel: a walk for second X takes entries chained to X, skips
//! newer rounds, and stops at the first entry of an older round, since every entry of a
//! round is written after every entry of the round before it (delays are shorter than
//! the wheel).

use std::collections::{BTreeMap, HashMap};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use memmap2::MmapMut;
use uuid::Uuid;

/// Sealed segments are at most this long (one entry may make one longer), unless the
/// broker sets another length (`mq.delay.segment.bytes`).
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;
const WHEEL_FILE: &str = "wheel";
const WHEEL_MAGIC: &[u8; 8] = b"SLWHEEL1";
const WHEEL_HEADER: usize = 16;
const FIXED: usize = 76;
const CRC_FROM: usize = 21;
const SUFFIX: &str = ".delay";
/// The state byte of a hole: its length field spans a run of done entries.
const HOLE: u8 = 0xFF;
/// A run of done entries shorter than this is left as it is (it frees no block).
const HOLE_MIN_BYTES: u64 = 8 << 10;
/// A pass over a sealed segment is scheduled again only if it would free this much (or
/// an eighth of the segment, if that is less).
const RECLAIM_MIN_BYTES: u64 = 1 << 20;

/// Where an entry stands. Only the timer moves it on, except Dropped on a failed append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum State {
    Pending = 0,
    /// Being appended under `release_seq`: after a crash, the partition's producer
    /// state tells whether that append happened.
    Releasing = 1,
    Released = 2,
    /// Never to be released: its produce failed, or its topic is gone.
    Dropped = 3,
}

impl State {
    fn from_u8(b: u8) -> State {
        match b {
            0 => State::Pending,
            1 => State::Releasing,
            2 => State::Released,
            _ => State::Dropped,
        }
    }
    pub fn is_live(self) -> bool {
        matches!(self, State::Pending | State::Releasing)
    }
}

/// A delayed record to store.
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    pub due_ms: i64,
    pub chain_s: i64,
    pub topic_id: Uuid,
    pub topic: &'a str,
    pub partition: i32,
    pub origin_offset: i64,
    pub timestamp: i64,
    pub dead_letter: bool,
    pub record: &'a [u8],
}

/// An entry's fixed fields, as a chain walk reads them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub pos: u64,
    pub len: u32,
    pub state: State,
    pub release_seq: i32,
    pub prev: u64,
    pub due_ms: i64,
    pub chain_s: i64,
    pub topic_id: Uuid,
    pub partition: i32,
    pub origin_offset: i64,
    pub timestamp: i64,
    /// To the dead-letter topic of its (retry) topic, not to its own partition.
    pub dead_letter: bool,
}

/// A whole entry, CRC checked.
#[derive(Debug, Clone)]
pub struct Entry {
    pub head: Head,
    pub topic: String,
    pub record: Vec<u8>,
}

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    size: u64,
    /// The largest chain second of its entries (-1: none).
    max_chain_s: i64,
    /// The smallest (i64::MAX: none, or not known: a segment found sealed at open).
    min_chain_s: i64,
    sealed: bool,
}

impl Segment {
    /// A new, empty active segment starting at position `base`.
    fn create(dir: &Path, base: u64) -> io::Result<Segment> {
        let path = dir.join(segment_name(base, None));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)?;
        Ok(Segment {
            path,
            file,
            size: 0,
            max_chain_s: -1,
            min_chain_s: i64::MAX,
            sealed: false,
        })
    }
}

#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    /// By base position: a position is its segment's base plus its place in the file.
    segments: BTreeMap<u64, Segment>,
    wheel: MmapMut,
    slots: u64,
    segment_bytes: u64,
    /// Sealed segments not yet handed to [`Store::take_newly_sealed`].
    newly_sealed: Vec<Sealed>,
    /// Failure injection: writes at or past this position fail.
    #[cfg(test)]
    fail_writes_from: Option<u64>,
}

fn invalid(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, what.to_owned())
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}
fn i32_at(b: &[u8], at: usize) -> i32 {
    u32_at(b, at) as i32
}
fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_be_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}
fn i64_at(b: &[u8], at: usize) -> i64 {
    u64_at(b, at) as i64
}

fn parse_head(pos: u64, b: &[u8]) -> Head {
    debug_assert!(b.len() >= FIXED);
    Head {
        pos,
        len: u32_at(b, 0),
        state: State::from_u8(b[4]),
        release_seq: i32_at(b, 5),
        prev: u64_at(b, 9),
        due_ms: i64_at(b, 21),
        chain_s: i64_at(b, 29),
        topic_id: Uuid::from_bytes(b[37..53].try_into().expect("16 bytes")),
        partition: i32_at(b, 53),
        origin_offset: i64_at(b, 57),
        timestamp: i64_at(b, 65),
        dead_letter: b[73] == 1,
    }
}

fn encode(e: &NewEntry<'_>, prev: u64) -> Vec<u8> {
    let name = e.topic.as_bytes();
    let total = FIXED + name.len() + e.record.len();
    let mut b = Vec::with_capacity(total);
    b.extend_from_slice(&((total - 4) as u32).to_be_bytes());
    b.push(State::Pending as u8);
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&prev.to_be_bytes());
    b.extend_from_slice(&[0; 4]); // crc, below
    b.extend_from_slice(&e.due_ms.to_be_bytes());
    b.extend_from_slice(&e.chain_s.to_be_bytes());
    b.extend_from_slice(e.topic_id.as_bytes());
    b.extend_from_slice(&e.partition.to_be_bytes());
    b.extend_from_slice(&e.origin_offset.to_be_bytes());
    b.extend_from_slice(&e.timestamp.to_be_bytes());
    b.push(u8::from(e.dead_letter));
    b.extend_from_slice(&(name.len() as u16).to_be_bytes());
    b.extend_from_slice(name);
    b.extend_from_slice(e.record);
    let crc = crc32c::crc32c(&b[CRC_FROM..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    debug_assert_eq!(b.len(), total);
    b
}

fn segment_name(base: u64, sealed_max_chain: Option<i64>) -> String {
    match sealed_max_chain {
        None => format!("{base:020}{SUFFIX}"),
        Some(m) => format!("{base:020}-{m}{SUFFIX}"),
    }
}

/// What a walk over a segment's bytes meets.
enum Item<'a> {
    Entry(&'a Head),
    Hole,
}

/// The check of a hole's length: a torn write of the length fails it.
fn hole_check(hole_bytes: u64) -> u32 {
    crc32c::crc32c_append(
        crc32c::crc32c(b"sluice delay hole"),
        &hole_bytes.to_be_bytes(),
    )
}

/// Reads the entries of a file from its start, calling `each` with what it meets, and
/// returns where the last whole entry with a good CRC ends (a torn tail starts there).
/// Holes are stepped over where `holes` allows them (sealed segments only: in the active
/// segment such bytes are a torn tail).
///
/// A hole is an entry whose state is [`HOLE`]. Bytes 9..17 (where `prev` was) hold the
/// hole's whole length, 17..21 (the CRC) [`hole_check`] of it; the length field and
/// bytes 0..21 are never punched. Until that length is written whole, which
/// [`reclaim`] does before it punches anything, the hole is the entry alone.
fn scan(
    file: &File,
    base: u64,
    size: u64,
    holes: bool,
    mut each: impl FnMut(u64, Item<'_>),
) -> io::Result<u64> {
    let mut at = 0u64;
    let mut fixed = [0u8; CRC_FROM];
    while at + FIXED as u64 <= size {
        file.read_exact_at(&mut fixed, at)?;
        let len = u32_at(&fixed, 0) as u64;
        if len < (FIXED - 4) as u64 || at + 4 + len > size {
            break;
        }
        if holes && fixed[4] == HOLE {
            let widened = u64_at(&fixed, 9);
            let whole = u32_at(&fixed, 17) == hole_check(widened)
                && widened >= 4 + len
                && at + widened <= size;
            each(at, Item::Hole);
            at += if whole { widened } else { 4 + len };
            continue;
        }
        let mut b = vec![0u8; 4 + len as usize];
        file.read_exact_at(&mut b, at)?;
        if crc32c::crc32c(&b[CRC_FROM..]) != u32_at(&b, 17) {
            break;
        }
        each(at, Item::Entry(&parse_head(base + at, &b)));
        at += 4 + len;
    }
    Ok(at)
}

/// Set once the filesystem refuses to punch a hole: no pass is made after that.
static PUNCH_UNSUPPORTED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// A segment just sealed, for the checkpoint's writer to schedule passes over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub path: PathBuf,
    /// The first checkpoint second at which a pass could find anything done in it
    /// (i64::MIN: not known, for a segment found sealed at open).
    pub first_pass_s: i64,
}

impl Sealed {
    fn of(seg: &Segment) -> Sealed {
        Sealed {
            path: seg.path.clone(),
            first_pass_s: match seg.min_chain_s {
                i64::MAX => i64::MIN,
                min => min + 1,
            },
        }
    }
}

/// What a pass of [`reclaim`] over a sealed segment did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reclaimed {
    /// Bytes of done entries it turned into holes.
    pub bytes: u64,
    /// The checkpoint second by which half of the bytes still live in the segment will
    /// be done: the next pass is worth making then. `None`: too little is left for one.
    pub next_at_s: Option<i64>,
}

/// Punches the runs of done entries (chained before `done_through_s`, a checkpoint
/// already on disk) out of the sealed segment at `path`. Run off the release path: the
/// timer never reads or writes an entry chained before its checkpoint again, except the
/// first of an older round, where a chain walk stops, as it stops at a hole (whose
/// chain second reads 0 once punched).
pub fn reclaim(path: &Path, done_through_s: i64) -> io::Result<Reclaimed> {
    const NOTHING: Reclaimed = Reclaimed {
        bytes: 0,
        next_at_s: None,
    };
    if PUNCH_UNSUPPORTED.load(std::sync::atomic::Ordering::Relaxed) {
        return Ok(NOTHING);
    }
    let file = OpenOptions::new().read(true).write(true).open(path)?;
    let size = file.metadata()?.len();
    // Runs of done entries, (start, end): a hole already made ends a run, and is never
    // written again (a torn rewrite of its length could not fall back to its entry).
    let mut runs: Vec<(u64, u64)> = Vec::new();
    let mut run: Option<(u64, u64)> = None;
    let mut close = |run: &mut Option<(u64, u64)>| {
        if let Some((start, end)) = run.take() {
            if end - start >= HOLE_MIN_BYTES {
                runs.push((start, end));
            }
        }
    };
    // Bytes still live, by chain second.
    let mut live: BTreeMap<i64, u64> = BTreeMap::new();
    // Entries are CRC-checked: the walk stops at bytes that are not whole entries (a
    // sealed segment not yet written back when the machine stopped).
    scan(&file, 0, size, true, |at, item| match item {
        Item::Entry(h) if h.chain_s < done_through_s => {
            let end = at + 4 + h.len as u64;
            match &mut run {
                Some((_, e)) => *e = end,
                None => run = Some((at, end)),
            }
        }
        Item::Entry(h) => {
            close(&mut run);
            *live.entry(h.chain_s).or_default() += 4 + h.len as u64;
        }
        Item::Hole => close(&mut run),
    })?;
    close(&mut run);

    // Each run's first entry becomes its hole: its state first, then (once that is on
    // disk) its whole length and that length's check, then (once those are) the punch.
    // A crash between any two steps leaves what a scan reads correctly.
    let mut bytes = 0;
    if !runs.is_empty() {
        // The rename that sealed the segment must be on disk before its first hole: a
        // segment that came back unsealed would be cut at its first hole as a torn tail.
        sluice_storage::durable::sync_parent(path)?;
        for (start, _) in &runs {
            file.write_all_at(&[HOLE], start + 4)?;
        }
        file.sync_data()?;
        for (start, end) in &runs {
            let mut widened = [0u8; 12];
            widened[..8].copy_from_slice(&(end - start).to_be_bytes());
            widened[8..].copy_from_slice(&hole_check(end - start).to_be_bytes());
            file.write_all_at(&widened, start + 9)?;
        }
        file.sync_data()?;
        for (start, end) in &runs {
            let from = start + CRC_FROM as u64;
            let punched = nix::fcntl::fallocate(
                &file,
                nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                    | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE,
                from as i64,
                (end - from) as i64,
            );
            match punched {
                Ok(()) => bytes += end - start,
                // The holes stand (scans step over them); their bytes stay until the
                // segment is deleted, as before holes.
                Err(nix::errno::Errno::EOPNOTSUPP | nix::errno::Errno::ENOSYS) => {
                    if !PUNCH_UNSUPPORTED.swap(true, std::sync::atomic::Ordering::Relaxed) {
                        tracing::info!("the filesystem cannot punch holes: delay segments are kept whole until all of each is done");
                    }
                    return Ok(NOTHING);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    let live_bytes: u64 = live.values().sum();
    let worth = RECLAIM_MIN_BYTES.min(size / 8).max(1);
    let mut next_at_s = None;
    if live_bytes / 2 >= worth {
        let mut seen = 0;
        for (second, b) in &live {
            seen += b;
            if seen * 2 >= live_bytes {
                // Done once the checkpoint is past it.
                next_at_s = Some(second + 1);
                break;
            }
        }
    }
    Ok(Reclaimed { bytes, next_at_s })
}

impl Store {
    /// Opens the store in `dir` with a wheel of `slots` seconds, creating it if needed.
    /// The newest segment's torn tail, if any, is cut. A wheel of another size (the
    /// maximum delay changed) is rebuilt from the segments.
    pub fn open(dir: &Path, slots: u64, segment_bytes: u64) -> io::Result<Store> {
        assert!(slots > 0 && segment_bytes > 0);
        std::fs::create_dir_all(dir)?;
        let mut segments = BTreeMap::new();
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            let Some(stem) = name.strip_suffix(SUFFIX) else {
                continue;
            };
            let (base, max) = match stem.split_once('-') {
                Some((b, m)) => (b.parse::<u64>(), m.parse::<i64>().ok()),
                None => (stem.parse::<u64>(), None),
            };
            let Ok(base) = base else { continue };
            let path = dir.join(&name);
            let file = OpenOptions::new().read(true).write(true).open(&path)?;
            let size = file.metadata()?.len();
            segments.insert(
                base,
                Segment {
                    path,
                    file,
                    size,
                    max_chain_s: max.unwrap_or(-1),
                    min_chain_s: i64::MAX,
                    sealed: max.is_some(),
                },
            );
        }
        // Unsealed segments (the newest, or one left by a crash while rolling) are
        // checked entry by entry.
        let mut torn = false;
        for (base, seg) in segments.iter_mut().filter(|(_, s)| !s.sealed) {
            let (mut max, mut min) = (-1, i64::MAX);
            let end = scan(&seg.file, *base, seg.size, false, |_, item| {
                if let Item::Entry(h) = item {
                    max = max.max(h.chain_s);
                    min = min.min(h.chain_s);
                }
            })?;
            if end < seg.size {
                tracing::warn!(path = %seg.path.display(), from = end, "cutting a torn tail");
                seg.file.set_len(end)?;
                seg.size = end;
                torn = true;
            }
            seg.max_chain_s = max;
            seg.min_chain_s = min;
        }
        if segments.is_empty() {
            segments.insert(0, Segment::create(dir, 0)?);
        }
        // A cut entry may have been linked: its chain would end there, so chain again.
        let (wheel, slots, fresh) = open_wheel(dir, slots, torn)?;
        let newly_sealed = segments
            .values()
            .filter(|s| s.sealed)
            .map(Sealed::of)
            .collect();
        let mut store = Store {
            dir: dir.to_owned(),
            segments,
            wheel,
            slots,
            segment_bytes,
            newly_sealed,
            #[cfg(test)]
            fail_writes_from: None,
        };
        if fresh {
            store.relink()?;
            // Only a wheel whose every live entry is chained is marked as one: a crash
            // during the relink leaves it unmarked, and the next start relinks again
            // (a marked half-built wheel would hide the entries not yet chained).
            store.wheel[..8].copy_from_slice(WHEEL_MAGIC);
        }
        Ok(store)
    }

    /// Chains every live entry again (a new wheel). Entries are visited oldest first,
    /// so each chain ends up newest first, as appends leave it.
    fn relink(&mut self) -> io::Result<()> {
        let mut live = Vec::new();
        for (base, seg) in &self.segments {
            scan(&seg.file, *base, seg.size, seg.sealed, |_, item| {
                if let Item::Entry(h) = item {
                    if h.state.is_live() {
                        live.push((h.pos, h.chain_s));
                    }
                }
            })?;
        }
        for (pos, chain_s) in &live {
            let slot = self.slot(*chain_s);
            let prev = self.head_of(slot);
            self.segment_of(*pos)
                .expect("scanned")
                .1
                .file
                .write_all_at(&prev.to_be_bytes(), self.offset_in(*pos) + 9)?;
            self.set_head(slot, pos + 1);
        }
        tracing::info!(entries = live.len(), "rebuilt the delay wheel");
        Ok(())
    }

    fn slot(&self, chain_s: i64) -> usize {
        debug_assert!(chain_s >= 0);
        (chain_s.rem_euclid(self.slots as i64)) as usize
    }
    fn head_of(&self, slot: usize) -> u64 {
        let at = WHEEL_HEADER + slot * 8;
        u64::from_ne_bytes(self.wheel[at..at + 8].try_into().expect("8 bytes"))
    }
    fn set_head(&mut self, slot: usize, v: u64) {
        let at = WHEEL_HEADER + slot * 8;
        self.wheel[at..at + 8].copy_from_slice(&v.to_ne_bytes());
    }

    fn segment_of(&self, pos: u64) -> Option<(u64, &Segment)> {
        let (base, seg) = self.segments.range(..=pos).next_back()?;
        (pos < base + seg.size).then_some((*base, seg))
    }
    fn offset_in(&self, pos: u64) -> u64 {
        pos - self.segment_of(pos).map_or(0, |(b, _)| b)
    }

    /// Bytes in the store, from its oldest live segment's start: positions below this
    /// existed before now.
    pub fn end(&self) -> u64 {
        let (base, seg) = self.segments.iter().next_back().expect("one segment");
        base + seg.size
    }

    /// Stores an entry and chains it to its slot; returns its position.
    pub fn append(&mut self, e: &NewEntry<'_>) -> io::Result<u64> {
        Ok(self.append_all(std::slice::from_ref(e))?[0])
    }

    /// Stores entries (one write per segment they land in) and chains each to its slot;
    /// returns their positions. On an error none of them stays live: those already
    /// stored (in a segment before the one whose write failed) are dropped again.
    pub fn append_all(&mut self, entries: &[NewEntry<'_>]) -> io::Result<Vec<u64>> {
        let mut positions = Vec::with_capacity(entries.len());
        match self.append_each_segment(entries, &mut positions) {
            Ok(()) => Ok(positions),
            Err(e) => {
                for pos in positions {
                    if let Err(e) = self.set_state(pos, State::Dropped, -1) {
                        tracing::error!(pos, error = %e, "could not drop a delayed record of a failed write");
                    }
                }
                Err(e)
            }
        }
    }

    /// Writes `entries`, pushing the position of each one written and chained.
    fn append_each_segment(
        &mut self,
        entries: &[NewEntry<'_>],
        positions: &mut Vec<u64>,
    ) -> io::Result<()> {
        let mut rest = entries;
        while !rest.is_empty() {
            self.maybe_roll()?;
            let (base, size) = {
                let (base, seg) = self.segments.iter().next_back().expect("an active segment");
                debug_assert!(!seg.sealed);
                (*base, seg.size)
            };
            let mut buf = Vec::new();
            let mut heads: HashMap<usize, u64> = HashMap::new();
            let (mut max_chain_s, mut min_chain_s) = (-1, i64::MAX);
            let mut taken = 0;
            let mut chunk_positions = Vec::new();
            for e in rest {
                if taken > 0 && size + buf.len() as u64 >= self.segment_bytes {
                    break; // the rest goes to the next segment
                }
                let slot = self.slot(e.chain_s);
                let prev = heads
                    .get(&slot)
                    .copied()
                    .unwrap_or_else(|| self.head_of(slot));
                let pos = base + size + buf.len() as u64;
                buf.extend_from_slice(&encode(e, prev));
                heads.insert(slot, pos + 1);
                chunk_positions.push(pos);
                max_chain_s = max_chain_s.max(e.chain_s);
                min_chain_s = min_chain_s.min(e.chain_s);
                taken += 1;
            }
            #[cfg(test)]
            if self.fail_writes_from.is_some_and(|p| base + size >= p) {
                return Err(io::Error::other("injected write failure"));
            }
            let seg = self.segments.get_mut(&base).expect("the active segment");
            if let Err(e) = seg.file.write_all_at(&buf, size) {
                // Whole entries of a short write would pass a scan after a restart.
                let _ = seg.file.set_len(size);
                return Err(e);
            }
            seg.size += buf.len() as u64;
            positions.extend(chunk_positions);
            seg.max_chain_s = seg.max_chain_s.max(max_chain_s);
            seg.min_chain_s = seg.min_chain_s.min(min_chain_s);
            // Linked after the entries are written: a walk never meets a half-written
            // entry, even after a crash between the two.
            for (slot, head) in heads {
                self.set_head(slot, head);
            }
            rest = &rest[taken..];
        }
        Ok(())
    }

    fn maybe_roll(&mut self) -> io::Result<()> {
        let (base, seg) = self.segments.iter_mut().next_back().expect("active");
        if seg.size < self.segment_bytes {
            return Ok(());
        }
        let sealed = self.dir.join(segment_name(*base, Some(seg.max_chain_s)));
        std::fs::rename(&seg.path, &sealed)?;
        seg.path = sealed;
        seg.sealed = true;
        self.newly_sealed.push(Sealed::of(seg));
        let next = base + seg.size;
        self.segments
            .insert(next, Segment::create(&self.dir, next)?);
        Ok(())
    }

    fn read_head(&self, pos: u64) -> io::Result<Head> {
        let (base, seg) = self
            .segment_of(pos)
            .ok_or_else(|| invalid("no such entry"))?;
        let mut b = [0u8; FIXED];
        seg.file.read_exact_at(&mut b, pos - base)?;
        Ok(parse_head(pos, &b))
    }

    /// The live entries chained to `chain_s`, oldest first.
    pub fn chain(&self, chain_s: i64) -> io::Result<Vec<Head>> {
        let mut out = Vec::new();
        let mut next = self.head_of(self.slot(chain_s));
        while next > 0 {
            let pos = next - 1;
            if self.segment_of(pos).is_none() {
                break; // collected: an older round
            }
            let h = self.read_head(pos)?;
            if h.chain_s < chain_s {
                break;
            }
            if h.chain_s == chain_s && h.state.is_live() {
                out.push(h);
            }
            if h.prev >= next {
                return Err(invalid("delay chain points forwards"));
            }
            next = h.prev;
        }
        out.reverse();
        Ok(out)
    }

    /// The whole entry at `pos`, CRC checked.
    pub fn read(&self, pos: u64) -> io::Result<Entry> {
        let (base, seg) = self
            .segment_of(pos)
            .ok_or_else(|| invalid("no such entry"))?;
        let mut len = [0u8; 4];
        seg.file.read_exact_at(&mut len, pos - base)?;
        let mut b = vec![0u8; 4 + u32::from_be_bytes(len) as usize];
        if b.len() < FIXED {
            return Err(invalid("delay entry too short"));
        }
        seg.file.read_exact_at(&mut b, pos - base)?;
        if crc32c::crc32c(&b[CRC_FROM..]) != u32_at(&b, 17) {
            return Err(invalid("delay entry CRC mismatch"));
        }
        let head = parse_head(pos, &b);
        let name_len = u16::from_be_bytes([b[74], b[75]]) as usize;
        let name = b
            .get(FIXED..FIXED + name_len)
            .ok_or_else(|| invalid("delay entry topic"))?;
        Ok(Entry {
            head,
            topic: String::from_utf8_lossy(name).into_owned(),
            record: b[FIXED + name_len..].to_vec(),
        })
    }

    /// Moves an entry on (in place; no CRC covers these fields).
    pub fn set_state(&self, pos: u64, state: State, release_seq: i32) -> io::Result<()> {
        let (base, seg) = self
            .segment_of(pos)
            .ok_or_else(|| invalid("no such entry"))?;
        let mut b = [0u8; 5];
        b[0] = state as u8;
        b[1..].copy_from_slice(&release_seq.to_be_bytes());
        seg.file.write_all_at(&b, pos - base + 4)
    }

    /// Lets go of sealed segments whose entries were all chained before `done_through_s`
    /// (the timer has dealt with every one of them) and returns their files, for the
    /// caller to delete off the release path (an unlink can wait on the journal).
    pub fn collect(&mut self, done_through_s: i64) -> Vec<PathBuf> {
        let old: Vec<u64> = self
            .segments
            .iter()
            .filter(|(_, s)| s.sealed && s.max_chain_s < done_through_s)
            .map(|(b, _)| *b)
            .collect();
        old.iter()
            .map(|base| self.segments.remove(base).expect("listed").path)
            .collect()
    }

    /// The segments sealed (or found sealed at open) since this was last asked: for the
    /// checkpoint's writer to [`reclaim`] as the timer moves past their entries.
    pub fn take_newly_sealed(&mut self) -> Vec<Sealed> {
        std::mem::take(&mut self.newly_sealed)
    }
    pub fn has_newly_sealed(&self) -> bool {
        !self.newly_sealed.is_empty()
    }

    pub fn segment_count(&self) -> usize {
        self.segments.len()
    }
}

/// Maps the wheel file, creating it (zeroed: every chain empty) if it is missing, smaller
/// than `slots`, or to be discarded. A larger wheel is kept: records already chained may
/// be due further ahead than a lowered maximum allows, and on a shorter wheel two rounds
/// of them could share a slot. Returns the map, its slot count and whether it is new.
fn open_wheel(dir: &Path, slots: u64, discard: bool) -> io::Result<(MmapMut, u64, bool)> {
    let path = dir.join(WHEEL_FILE);
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    let mut header = [0u8; WHEEL_HEADER];
    let existing = (file.read_exact_at(&mut header, 0).is_ok() && &header[..8] == WHEEL_MAGIC)
        .then(|| u64::from_be_bytes(header[8..].try_into().expect("8 bytes")))
        .filter(|n| {
            file.metadata()
                .is_ok_and(|m| m.len() == WHEEL_HEADER as u64 + n * 8)
        });
    let fits = !discard && existing.is_some_and(|n| n >= slots);
    let slots = if fits { existing.expect("fits") } else { slots };
    let want = WHEEL_HEADER as u64 + slots * 8;
    if !fits {
        file.set_len(0)?;
        file.set_len(want)?; // sparse: untouched slots cost nothing
                             // The magic is written once the wheel is built (`Store::open`).
        header[..8].fill(0);
        header[8..].copy_from_slice(&slots.to_be_bytes());
        file.write_all_at(&header, 0)?;
    }
    // SAFETY: the wheel file is this broker's alone (the data directory is locked), is
    // never truncated while mapped, and has the length mapped.
    let map = unsafe { MmapMut::map_mut(&file)? };
    // Slots are read one at a time, far apart: readahead would only fill memory.
    let _ = map.advise(memmap2::Advice::Random);
    Ok((map, slots, !fits))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wheel_is_trusted_only_once_it_was_built() {
        let dir = tempfile::tempdir().unwrap();
        // A new wheel, as a start that dies before its relink ends leaves it.
        let (_, _, fresh) = open_wheel(dir.path(), 64, true).unwrap();
        assert!(fresh);
        let (_, _, fresh) = open_wheel(dir.path(), 64, false).unwrap();
        assert!(fresh, "an unfinished wheel is built again");
        // A store that finished opening marked it.
        drop(Store::open(dir.path(), 64, DEFAULT_SEGMENT_BYTES).unwrap());
        let (_, _, fresh) = open_wheel(dir.path(), 64, false).unwrap();
        assert!(!fresh, "a finished wheel is kept");
    }

    fn positions(s: &Store, second: i64) -> Vec<u64> {
        s.chain(second).unwrap().iter().map(|h| h.pos).collect()
    }

    fn entry(due_ms: i64, chain_s: i64, origin: i64, record: &[u8]) -> NewEntry<'_> {
        NewEntry {
            due_ms,
            chain_s,
            topic_id: Uuid::from_u128(7),
            topic: "t",
            partition: 2,
            origin_offset: origin,
            timestamp: 5,
            dead_letter: false,
            record,
        }
    }

    #[test]
    fn chains_by_second_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 10, DEFAULT_SEGMENT_BYTES).unwrap();
        let a = s.append(&entry(1_500, 1, 0, b"a")).unwrap();
        let c = s.append(&entry(1_900, 1, 2, b"cc")).unwrap();
        let b = s.append(&entry(11_200, 11, 1, b"b")).unwrap(); // same slot, next round
        assert_eq!(positions(&s, 1), [a, c]);
        assert_eq!(positions(&s, 11), [b]);
        assert!(s.chain(2).unwrap().is_empty());
        s.set_state(a, State::Released, 0).unwrap();
        let e = s.read(c).unwrap();
        assert_eq!((e.topic.as_str(), e.record.as_slice()), ("t", &b"cc"[..]));
        assert_eq!((e.head.origin_offset, e.head.due_ms), (2, 1_900));
        drop(s);
        let s = Store::open(dir.path(), 10, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(positions(&s, 1), [c]);
        // A shorter wheel asked for: the longer one is kept.
        drop(s);
        let s = Store::open(dir.path(), 7, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(s.slots, 10);
        drop(s);
        // A longer one: rebuilt from the entries.
        let s = Store::open(dir.path(), 17, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(s.slots, 17);
        assert_eq!(positions(&s, 1), [c]);
        assert_eq!(positions(&s, 11), [b]);
    }

    #[test]
    fn entries_stored_together_chain_like_one_by_one() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 10, DEFAULT_SEGMENT_BYTES).unwrap();
        let a = s.append(&entry(1_100, 1, 0, b"a")).unwrap();
        let many = [
            entry(1_200, 1, 1, b"b"),
            entry(2_000, 2, 2, b"c"),
            entry(1_300, 1, 3, b"d"),
        ];
        let got = s.append_all(&many).unwrap();
        assert_eq!(positions(&s, 1), [a, got[0], got[2]]);
        assert_eq!(positions(&s, 2), [got[1]]);
        assert_eq!(s.read(got[2]).unwrap().record, b"d");
    }

    #[test]
    fn a_torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 10, DEFAULT_SEGMENT_BYTES).unwrap();
        s.append(&entry(1_500, 1, 0, b"a")).unwrap();
        let end = s.end();
        s.append(&entry(1_600, 1, 1, b"b")).unwrap();
        drop(s);
        let path = dir.path().join(segment_name(0, None));
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(end + 10).unwrap();
        let s = Store::open(dir.path(), 10, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(s.end(), end);
        // The wheel pointed at the cut entry: chained again, the first is still found.
        assert_eq!(s.chain(1).unwrap().len(), 1);
    }

    /// Entries stored together whose write fails in the second segment they span: the
    /// ones already written in the first are not left to be released.
    #[test]
    fn a_failed_write_leaves_none_of_its_entries_live() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100, DEFAULT_SEGMENT_BYTES).unwrap();
        let big = vec![0u8; 1 << 20];
        for i in 0..63 {
            s.append(&entry(1_000 * i, i, i, &big)).unwrap();
        }
        // The first fills the active segment; the second goes to a new one, whose
        // write fails.
        s.fail_writes_from = Some(s.end() + 1);
        let both = [entry(70_000, 70, 63, &big), entry(70_500, 70, 64, &big)];
        assert!(s.append_all(&both).is_err());
        assert!(s.chain(70).unwrap().is_empty());
        drop(s);
        let s = Store::open(dir.path(), 100, DEFAULT_SEGMENT_BYTES).unwrap();
        assert!(s.chain(70).unwrap().is_empty(), "nor after a restart");
    }

    fn allocated(path: &Path) -> u64 {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(path).unwrap().blocks() * 512
    }

    /// Short delays with one long one in each segment: once the short ones are done,
    /// their bytes go back to the filesystem, and the long ones are still found, by
    /// their chains and by a wheel rebuilt from the segments.
    #[test]
    fn done_entries_are_punched_out_of_sealed_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100, 64 << 10).unwrap();
        let record = vec![7u8; 1000];
        let mut long = Vec::new();
        for i in 0..300i64 {
            let second = if i % 50 == 25 { 90 } else { 10 + i % 5 };
            let pos = s
                .append(&entry(second * 1_000, second, i, &record))
                .unwrap();
            if second == 90 {
                long.push(pos);
            } else {
                s.set_state(pos, State::Released, 0).unwrap();
            }
        }
        let sealed = s.take_newly_sealed();
        assert!(sealed.len() >= 3, "{sealed:?}");
        assert!(!s.has_newly_sealed());
        for path in sealed.iter().map(|s| &s.path) {
            let before = allocated(path);
            let r = reclaim(path, 20).unwrap();
            assert!(r.bytes > 40 << 10, "{r:?}");
            // What stays: the blocks of the live record, and of each hole's ends.
            assert!(
                allocated(path) < before / 2,
                "{} of {before} bytes still allocated",
                allocated(path)
            );
            // One live record is too little to come back for; a second pass finds
            // nothing more to do.
            assert_eq!(r.next_at_s, None);
            assert_eq!(reclaim(path, 20).unwrap().bytes, 0);
        }
        let found =
            |s: &Store| -> Vec<u64> { s.chain(90).unwrap().iter().map(|h| h.pos).collect() };
        assert_eq!(found(&s), long);
        for second in 10..15 {
            assert!(s.chain(second).unwrap().is_empty());
            assert!(s.chain(second + 100).unwrap().is_empty());
        }
        for pos in &long {
            assert_eq!(s.read(*pos).unwrap().record, record);
        }
        // Appends after the holes chain past them as before.
        let late = s.append(&entry(110_000, 110, 999, b"late")).unwrap();
        assert_eq!(positions(&s, 110), [late]);
        drop(s);
        // A longer wheel: rebuilt by scanning every segment, holes and all.
        let s = Store::open(dir.path(), 200, 64 << 10).unwrap();
        assert_eq!(found(&s), long);
        assert_eq!(positions(&s, 110), [late]);
        assert_eq!(s.end(), s.segments.values().map(|g| g.size).sum::<u64>());
    }

    /// A crash may leave a run's first entry marked a hole with its widened length torn
    /// (written in part, so its check fails): the hole is then that entry alone, whose
    /// bytes were not punched, and the entries after it are still found.
    #[test]
    fn a_hole_whose_length_is_torn_is_its_entry_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100, 4 << 10).unwrap();
        let record = vec![1u8; 1000];
        let a = s.append(&entry(5_000, 5, 0, &record)).unwrap();
        let b = s.append(&entry(50_000, 50, 1, &record)).unwrap();
        for i in 2..8 {
            s.append(&entry(6_000, 6, i, &record)).unwrap();
        }
        s.set_state(a, State::Released, 0).unwrap();
        let (base, seg) = s.segment_of(a).unwrap();
        assert!(seg.sealed && b < base + seg.size);
        // A length that would step over b too, with a check that does not match it.
        let mut torn = [0u8; 12];
        torn[..8].copy_from_slice(&(b + 4 + 76 + 1 + 1000 - a).to_be_bytes());
        seg.file.write_all_at(&[HOLE], a - base + 4).unwrap();
        seg.file.write_all_at(&torn, a - base + 9).unwrap();
        drop(s);
        let s = Store::open(dir.path(), 150, 4 << 10).unwrap();
        assert_eq!(positions(&s, 50), [b]);
        assert_eq!(positions(&s, 6).len(), 6);
    }

    /// The next pass is due when half of the bytes still live will be done.
    #[test]
    fn the_next_pass_waits_for_half_of_what_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100, 32 << 10).unwrap();
        let record = vec![2u8; 1000];
        for i in 0..36i64 {
            let second = [30, 40, 45][(i / 12) as usize];
            s.append(&entry(second * 1_000, second, i, &record))
                .unwrap();
        }
        let sealed = s.take_newly_sealed();
        assert_eq!(sealed.len(), 1);
        assert_eq!(
            sealed[0].first_pass_s, 31,
            "when the first records are done"
        );
        let r = reclaim(&sealed[0].path, 20).unwrap();
        assert_eq!(
            r,
            Reclaimed {
                bytes: 0,
                next_at_s: Some(41)
            }
        );
    }

    #[test]
    fn rolls_and_collects_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path(), 100, DEFAULT_SEGMENT_BYTES).unwrap();
        let big = vec![0u8; 1 << 20];
        for i in 0..70 {
            s.append(&entry(1_000 * i, i, i, &big)).unwrap();
        }
        assert_eq!(s.segment_count(), 2);
        assert!(
            s.collect(60).is_empty(),
            "the sealed one chains up to second 63"
        );
        assert_eq!(s.chain(65).unwrap().len(), 1);
        let gone = s.collect(64);
        assert_eq!(gone.len(), 1);
        std::fs::remove_file(&gone[0]).unwrap();
        assert!(s.chain(3).unwrap().is_empty());
        assert_eq!(s.chain(65).unwrap().len(), 1);
        drop(s);
        let s = Store::open(dir.path(), 100, DEFAULT_SEGMENT_BYTES).unwrap();
        assert_eq!(s.chain(69).unwrap().len(), 1);
    }
}
