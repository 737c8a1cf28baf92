//! Incremental fetch sessions (KIP-227).
//!
//! A consumer with thousands of partitions would otherwise name every one of them in
//! every Fetch, and get every one of them back, with or without records. A session
//! remembers the partitions and their fetch offsets: after the first (full) request the
//! client names only the partitions whose fetch offset changed, and the response holds
//! only the partitions with records, an error, or new offsets (high watermark, last
//! stable offset, log start offset).
//!
//! As in Kafka:
//! - epoch 0 asks for a new session (a full fetch; the answer carries its id, or 0 when
//!   the cache has no room), epoch -1 is a full fetch without one; either closes the
//!   session the request names;
//! - an incremental request must carry the session's next epoch, else
//!   `INVALID_FETCH_SESSION_EPOCH`; an unknown id gets `FETCH_SESSION_ID_NOT_FOUND`; a
//!   request overtaken by the next one of its session before it is answered (a client
//!   that does not wait for answers) gets `INVALID_FETCH_SESSION_EPOCH` too;
//! - a partition that returned records moves to the end of the session, so that when
//!   the response's byte limit is reached the others come first next time (one answered
//!   only for new offsets stays where it is: it was not read);
//! - a partition answered with an error is remembered with no high watermark, so that it
//!   is answered again once the error clears;
//! - the cache holds `max.incremental.fetch.session.cache.slots` sessions. A new one
//!   takes the place of the least recently used session idle for longer than
//!   `min.incremental.fetch.session.eviction.ms`, else of the smallest session that is
//!   older than that if the new one has more partitions, else it is not created: a new
//!   session is never pushed out by the next one to come.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError as E;
use kafka_protocol::messages::{FetchRequest, TopicName};
use uuid::Uuid;

/// The epoch of a full fetch that asks for a session.
const INITIAL_EPOCH: i32 = 0;
/// The epoch of a full fetch without a session.
const FINAL_EPOCH: i32 = -1;
/// Session ids 0 means "no session".
const NO_SESSION: i32 = 0;
/// The first version with session fields, and the first that names topics by id.
const FIRST_SESSION_VERSION: i16 = 7;
const FIRST_TOPIC_ID_VERSION: i16 = 13;

/// One partition to read, from the request or from the session.
#[derive(Debug, Clone)]
pub struct Requested {
    /// As the client named it: a name before v13, an id from v13 on.
    pub topic: TopicName,
    pub topic_id: Uuid,
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
    pub current_leader_epoch: i32,
}

impl Requested {
    fn key(&self) -> PartitionKey {
        (self.topic_id, self.topic.clone(), self.partition)
    }
}

type PartitionKey = (Uuid, TopicName, i32);

/// What a response said of one partition. While none of it changes and there are no
/// records, an incremental response leaves the partition out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sent {
    pub high_watermark: i64,
    pub last_stable_offset: i64,
    pub log_start_offset: i64,
    pub error_code: i16,
    pub has_records: bool,
}

impl Sent {
    fn must_send(&self, before: Option<&Sent>) -> bool {
        self.has_records
            || self.error_code != 0
            || before.is_none_or(|b| {
                (b.high_watermark, b.last_stable_offset, b.log_start_offset)
                    != (
                        self.high_watermark,
                        self.last_stable_offset,
                        self.log_start_offset,
                    )
            })
    }

    /// What the session keeps of it: after an error, no high watermark (-1), so that the
    /// first answer without the error differs and is sent (Kafka's `CachedPartition`
    /// does the same); otherwise a partition whose error cleared with unchanged offsets
    /// would be left out, and the client would keep its stale view of them.
    fn remembered(&self) -> Sent {
        if self.error_code == 0 {
            *self
        } else {
            Sent {
                high_watermark: -1,
                ..*self
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A full fetch, answered in full, with no session.
    Sessionless,
    /// A full fetch that opens a session once it is answered.
    Full,
    /// A fetch in session `id`, whose next request must carry `next_epoch`.
    Incremental { id: i32, next_epoch: i32 },
}

/// What a Fetch reads, and how its answer is shaped.
#[derive(Debug)]
pub struct Plan {
    pub kind: Kind,
    /// In the order they are read: the request's, or the session's.
    pub partitions: Vec<Requested>,
    uses_topic_ids: bool,
}

#[derive(Debug)]
struct Cached {
    requested: Requested,
    sent: Option<Sent>,
}

#[derive(Debug)]
struct Session {
    epoch: i32,
    uses_topic_ids: bool,
    partitions: Vec<Cached>,
    last_used: Instant,
    created: Instant,
}

/// The broker's fetch sessions.
#[derive(Debug)]
pub struct FetchSessions {
    slots: usize,
    eviction: Duration,
    sessions: Mutex<HashMap<i32, Session>>,
}

fn next_epoch(epoch: i32) -> i32 {
    if epoch == i32::MAX {
        1
    } else {
        epoch + 1
    }
}

/// The partitions a request names, in its order.
fn requested(req: &FetchRequest) -> Vec<Requested> {
    req.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(|p| Requested {
                topic: t.topic.clone(),
                topic_id: t.topic_id,
                partition: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes,
                current_leader_epoch: p.current_leader_epoch,
            })
        })
        .collect()
}

impl FetchSessions {
    pub fn new(slots: usize, eviction: Duration) -> Self {
        Self {
            slots,
            eviction,
            sessions: Mutex::new(HashMap::new()),
        }
    }

    #[cfg(test)]
    fn open_sessions(&self) -> usize {
        self.sessions.lock().expect("fetch sessions").len()
    }

    /// Decides how a request is answered, and applies an incremental request's changes
    /// to its session. An `Err` is the response's top-level error.
    pub fn begin(&self, req: &FetchRequest, version: i16, now: Instant) -> Result<Plan, E> {
        let uses_topic_ids = version >= FIRST_TOPIC_ID_VERSION;
        let sessions_allowed = version >= FIRST_SESSION_VERSION;
        let epoch = req.session_epoch;
        if !sessions_allowed || epoch == INITIAL_EPOCH || epoch == FINAL_EPOCH {
            let mut sessions = self.sessions.lock().expect("fetch sessions");
            if sessions_allowed && req.session_id != NO_SESSION {
                sessions.remove(&req.session_id);
            }
            let kind = if sessions_allowed && epoch == INITIAL_EPOCH {
                Kind::Full
            } else {
                Kind::Sessionless
            };
            return Ok(Plan {
                kind,
                partitions: requested(req),
                uses_topic_ids,
            });
        }
        let mut sessions = self.sessions.lock().expect("fetch sessions");
        let session = sessions
            .get_mut(&req.session_id)
            .ok_or(E::FetchSessionIdNotFound)?;
        if session.epoch != epoch {
            return Err(E::InvalidFetchSessionEpoch);
        }
        if session.uses_topic_ids != uses_topic_ids {
            return Err(E::FetchSessionTopicIdError);
        }
        // Most incremental requests of a large session name few partitions or none:
        // the index over the session is built only when one is named.
        let named = requested(req);
        let mut index: HashMap<PartitionKey, usize> = if named.is_empty() {
            HashMap::new()
        } else {
            session
                .partitions
                .iter()
                .enumerate()
                .map(|(i, c)| (c.requested.key(), i))
                .collect()
        };
        for r in named {
            match index.get(&r.key()) {
                Some(&i) => session.partitions[i].requested = r,
                None => {
                    index.insert(r.key(), session.partitions.len());
                    session.partitions.push(Cached {
                        requested: r,
                        sent: None,
                    });
                }
            }
        }
        let forgotten: HashSet<PartitionKey> = req
            .forgotten_topics_data
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .map(|&p| (t.topic_id, t.topic.clone(), p))
            })
            .collect();
        if !forgotten.is_empty() {
            session
                .partitions
                .retain(|c| !forgotten.contains(&c.requested.key()));
        }
        if session.partitions.is_empty() {
            sessions.remove(&req.session_id);
            return Ok(Plan {
                kind: Kind::Sessionless,
                partitions: Vec::new(),
                uses_topic_ids,
            });
        }
        session.epoch = next_epoch(epoch);
        session.last_used = now;
        Ok(Plan {
            kind: Kind::Incremental {
                id: req.session_id,
                next_epoch: session.epoch,
            },
            partitions: session
                .partitions
                .iter()
                .map(|c| c.requested.clone())
                .collect(),
            uses_topic_ids,
        })
    }

    /// Records what was read (`sent[i]` for `plan.partitions[i]`): opens the session of
    /// a full fetch, or updates an incremental one. Returns the response's session id
    /// and which partitions the response holds, or the error that refuses the request.
    pub fn finish(&self, plan: Plan, sent: &[Sent], now: Instant) -> (i32, Result<Vec<bool>, E>) {
        debug_assert_eq!(plan.partitions.len(), sent.len());
        let all = Ok(vec![true; sent.len()]);
        match plan.kind {
            Kind::Sessionless => (NO_SESSION, all),
            Kind::Full => {
                let partitions = plan
                    .partitions
                    .into_iter()
                    .zip(sent)
                    .map(|(requested, s)| Cached {
                        requested,
                        sent: Some(s.remembered()),
                    })
                    .collect();
                (self.open(plan.uses_topic_ids, partitions, now), all)
            }
            Kind::Incremental { id, next_epoch } => {
                let mut sessions = self.sessions.lock().expect("fetch sessions");
                let Some(session) = sessions.get_mut(&id) else {
                    // Evicted meanwhile: the client learns so on its next request.
                    return (id, all);
                };
                if session.epoch != next_epoch || session.partitions.len() != sent.len() {
                    // Another request of this session got in between (a client that
                    // does not wait for its answers): that one keeps the session, and
                    // this one is refused, as Kafka refuses a "possible duplicate".
                    return (id, Err(E::InvalidFetchSessionEpoch));
                }
                let mut include = Vec::with_capacity(sent.len());
                for (cached, s) in session.partitions.iter_mut().zip(sent) {
                    include.push(s.must_send(cached.sent.as_ref()));
                    cached.sent = Some(s.remembered());
                }
                // Partitions that returned records go to the end, in their order, so
                // the rest are read first when the next response fills up. Only those:
                // one answered for a new high watermark alone was not read, and moving
                // it would keep the partitions read first in front (Kafka moves a
                // partition only when it returned records, too).
                let mut read = Vec::new();
                let mut rest = Vec::with_capacity(session.partitions.len());
                for (cached, s) in session.partitions.drain(..).zip(sent) {
                    if s.has_records {
                        read.push(cached);
                    } else {
                        rest.push(cached);
                    }
                }
                rest.extend(read);
                session.partitions = rest;
                (id, Ok(include))
            }
        }
    }

    /// Adds a session if there is room, or room can be made; returns its id or 0.
    fn open(&self, uses_topic_ids: bool, partitions: Vec<Cached>, now: Instant) -> i32 {
        if partitions.is_empty() || self.slots == 0 {
            return NO_SESSION;
        }
        let mut sessions = self.sessions.lock().expect("fetch sessions");
        if sessions.len() >= self.slots {
            let stale = sessions
                .iter()
                .filter(|(_, s)| now.duration_since(s.last_used) > self.eviction)
                .min_by_key(|(_, s)| s.last_used)
                .map(|(&id, _)| id);
            // A busy session is only given up for a larger one once it has lived the
            // eviction time: else each new session of a stream of growing ones would
            // push out the one before it, none living long enough to be used.
            let smaller = || {
                sessions
                    .iter()
                    .filter(|(_, s)| {
                        s.partitions.len() < partitions.len()
                            && now.duration_since(s.created) > self.eviction
                    })
                    .min_by_key(|(_, s)| (s.partitions.len(), s.last_used))
                    .map(|(&id, _)| id)
            };
            match stale.or_else(smaller) {
                Some(victim) => {
                    sessions.remove(&victim);
                }
                None => return NO_SESSION,
            }
        }
        let id = loop {
            let id = (Uuid::new_v4().as_u128() as i32) & i32::MAX;
            if id != NO_SESSION && !sessions.contains_key(&id) {
                break id;
            }
        };
        tracing::debug!(id, partitions = partitions.len(), "fetch session opened");
        sessions.insert(
            id,
            Session {
                epoch: next_epoch(INITIAL_EPOCH),
                uses_topic_ids,
                partitions,
                last_used: now,
                created: now,
            },
        );
        id
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic, ForgottenTopic};
    use kafka_protocol::protocol::StrBytes;

    const V12: i16 = 12;

    fn name(s: &str) -> TopicName {
        TopicName(StrBytes::from_string(s.to_string()))
    }

    fn request(id: i32, epoch: i32, parts: &[(&str, i32, i64)]) -> FetchRequest {
        let mut req = FetchRequest::default()
            .with_session_id(id)
            .with_session_epoch(epoch);
        for &(t, p, off) in parts {
            let fp = FetchPartition::default()
                .with_partition(p)
                .with_fetch_offset(off)
                .with_partition_max_bytes(1024);
            match req.topics.iter_mut().find(|x| x.topic == name(t)) {
                Some(ft) => ft.partitions.push(fp),
                None => req.topics.push(
                    FetchTopic::default()
                        .with_topic(name(t))
                        .with_partitions(vec![fp]),
                ),
            }
        }
        req
    }

    fn sent(hw: i64, records: bool) -> Sent {
        Sent {
            high_watermark: hw,
            last_stable_offset: hw,
            log_start_offset: 0,
            error_code: 0,
            has_records: records,
        }
    }

    fn offsets(plan: &Plan) -> Vec<(String, i32, i64)> {
        plan.partitions
            .iter()
            .map(|r| (r.topic.0.to_string(), r.partition, r.fetch_offset))
            .collect()
    }

    /// Opens a session over a0, a1, b0 (all at offset 0, high watermark 10).
    fn opened(cache: &FetchSessions, now: Instant) -> i32 {
        let plan = cache
            .begin(
                &request(0, 0, &[("a", 0, 0), ("a", 1, 0), ("b", 0, 0)]),
                V12,
                now,
            )
            .unwrap();
        assert_eq!(plan.kind, Kind::Full);
        let (id, include) = cache.finish(plan, &[sent(10, true); 3], now);
        assert_ne!(id, 0);
        assert_eq!(include, Ok(vec![true; 3]));
        id
    }

    #[test]
    fn incremental_requests_name_and_get_only_what_changed() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let id = opened(&cache, now);
        // The client read a1 up to 10: it names only a1.
        let plan = cache
            .begin(&request(id, 1, &[("a", 1, 10)]), V12, now)
            .unwrap();
        assert_eq!(plan.kind, Kind::Incremental { id, next_epoch: 2 });
        assert_eq!(
            offsets(&plan),
            vec![("a".into(), 0, 0), ("a".into(), 1, 10), ("b".into(), 0, 0)]
        );
        // a0 unchanged, a1 has a new high watermark, b0 has records.
        let (rid, include) = cache.finish(
            plan,
            &[sent(10, false), sent(12, false), sent(10, true)],
            now,
        );
        assert_eq!(rid, id);
        assert_eq!(include, Ok(vec![false, true, true]));
        // b0 returned records and moves to the end; a0 and a1 stay where they are (a1
        // was answered for its new high watermark only).
        let plan = cache.begin(&request(id, 2, &[]), V12, now).unwrap();
        assert_eq!(
            offsets(&plan),
            vec![("a".into(), 0, 0), ("a".into(), 1, 10), ("b".into(), 0, 0)]
        );
        let (_, include) = cache.finish(
            plan,
            &[sent(10, false), sent(12, false), sent(10, false)],
            now,
        );
        assert_eq!(include, Ok(vec![false, false, false]), "nothing changed");
    }

    #[test]
    fn partitions_that_returned_records_rotate_to_the_end() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let id = opened(&cache, now);
        let plan = cache.begin(&request(id, 1, &[]), V12, now).unwrap();
        // a0 returned records; a1 is answered for its new high watermark only.
        let (_, include) = cache.finish(
            plan,
            &[sent(11, true), sent(12, false), sent(10, false)],
            now,
        );
        assert_eq!(include, Ok(vec![true, true, false]));
        // Only a0 moves: a1 was not read, and stays ahead of what was.
        let plan = cache.begin(&request(id, 2, &[]), V12, now).unwrap();
        assert_eq!(
            offsets(&plan),
            vec![("a".into(), 1, 0), ("b".into(), 0, 0), ("a".into(), 0, 0)]
        );
        // A response filled by its first partitions: the others are read first next.
        let (_, include) = cache.finish(
            plan,
            &[sent(13, true), sent(11, false), sent(11, false)],
            now,
        );
        assert_eq!(include, Ok(vec![true, true, false]));
        let plan = cache.begin(&request(id, 3, &[]), V12, now).unwrap();
        assert_eq!(
            offsets(&plan),
            vec![("b".into(), 0, 0), ("a".into(), 0, 0), ("a".into(), 1, 0)]
        );
    }

    #[test]
    fn a_partition_is_answered_again_once_its_error_clears() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let id = opened(&cache, now);
        // b0 fails with its offsets as last sent, then reads cleanly with the same
        // offsets: the error alone must not let the session leave it out afterwards.
        let failed = Sent {
            error_code: E::OffsetOutOfRange.code(),
            ..sent(10, false)
        };
        let plan = cache.begin(&request(id, 1, &[]), V12, now).unwrap();
        let (_, include) = cache.finish(plan, &[sent(10, false), sent(10, false), failed], now);
        assert_eq!(include, Ok(vec![false, false, true]));
        let plan = cache
            .begin(&request(id, 2, &[("b", 0, 10)]), V12, now)
            .unwrap();
        let (_, include) = cache.finish(plan, &[sent(10, false); 3], now);
        assert_eq!(
            include,
            Ok(vec![false, false, true]),
            "the cleared error is answered"
        );
        let plan = cache.begin(&request(id, 3, &[]), V12, now).unwrap();
        let (_, include) = cache.finish(plan, &[sent(10, false); 3], now);
        assert_eq!(
            include,
            Ok(vec![false; 3]),
            "then left out while nothing changes"
        );
    }

    #[test]
    fn errors_are_always_sent_and_forgotten_partitions_leave() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let id = opened(&cache, now);
        let mut req = request(id, 1, &[("c", 0, 5)]);
        req.forgotten_topics_data = vec![ForgottenTopic::default()
            .with_topic(name("a"))
            .with_partitions(vec![0, 1])];
        let plan = cache.begin(&req, V12, now).unwrap();
        assert_eq!(offsets(&plan), vec![("b".into(), 0, 0), ("c".into(), 0, 5)]);
        let failed = Sent {
            error_code: E::UnknownTopicOrPartition.code(),
            ..sent(-1, false)
        };
        let (_, include) = cache.finish(plan, &[sent(10, false), failed], now);
        assert_eq!(include, Ok(vec![false, true]));
        let plan = cache.begin(&request(id, 2, &[]), V12, now).unwrap();
        let (_, include) = cache.finish(plan, &[sent(10, false), failed], now);
        assert_eq!(
            include,
            Ok(vec![false, true]),
            "an error is sent every time"
        );
    }

    #[test]
    fn wrong_epoch_unknown_id_and_closing() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let id = opened(&cache, now);
        let err = cache.begin(&request(id, 5, &[]), V12, now).unwrap_err();
        assert_eq!(err, E::InvalidFetchSessionEpoch);
        let err = cache.begin(&request(id + 1, 1, &[]), V12, now).unwrap_err();
        assert_eq!(err, E::FetchSessionIdNotFound);
        // The session is still usable after a refused request.
        let plan = cache.begin(&request(id, 1, &[]), V12, now).unwrap();
        assert!(cache.finish(plan, &[sent(10, false); 3], now).1.is_ok());
        // A v13 request cannot use a session of names.
        let err = cache.begin(&request(id, 2, &[]), 13, now).unwrap_err();
        assert_eq!(err, E::FetchSessionTopicIdError);
        // Epoch -1 closes it and is answered without a session.
        let plan = cache
            .begin(&request(id, -1, &[("a", 0, 0)]), V12, now)
            .unwrap();
        assert_eq!(plan.kind, Kind::Sessionless);
        assert_eq!(cache.finish(plan, &[sent(10, false)], now).0, 0);
        assert_eq!(cache.open_sessions(), 0);
        let err = cache.begin(&request(id, 2, &[]), V12, now).unwrap_err();
        assert_eq!(err, E::FetchSessionIdNotFound);
    }

    #[test]
    fn a_request_overtaken_by_the_next_of_its_session_is_refused() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let id = opened(&cache, now);
        // A client that does not wait for its answers: epoch 2 starts before epoch 1's
        // answer is made.
        let first = cache.begin(&request(id, 1, &[]), V12, now).unwrap();
        let second = cache.begin(&request(id, 2, &[]), V12, now).unwrap();
        let (rid, include) = cache.finish(first, &[sent(10, false); 3], now);
        assert_eq!((rid, include), (id, Err(E::InvalidFetchSessionEpoch)));
        let (rid, include) = cache.finish(second, &[sent(11, false); 3], now);
        assert_eq!((rid, include), (id, Ok(vec![true; 3])));
    }

    #[test]
    fn forgetting_every_partition_ends_the_session() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let id = opened(&cache, now);
        let mut req = request(id, 1, &[]);
        req.forgotten_topics_data = vec![
            ForgottenTopic::default()
                .with_topic(name("a"))
                .with_partitions(vec![0, 1]),
            ForgottenTopic::default()
                .with_topic(name("b"))
                .with_partitions(vec![0]),
        ];
        let plan = cache.begin(&req, V12, now).unwrap();
        assert_eq!(plan.kind, Kind::Sessionless);
        assert_eq!(cache.open_sessions(), 0);
    }

    #[test]
    fn full_cache_evicts_stale_then_smaller_sessions_only() {
        let cache = FetchSessions::new(1, Duration::from_secs(120));
        let t0 = Instant::now();
        let first = opened(&cache, t0);
        // Not stale, and a one-partition session is not larger: refused.
        let plan = cache
            .begin(&request(0, 0, &[("x", 0, 0)]), V12, t0)
            .unwrap();
        assert_eq!(cache.finish(plan, &[sent(1, false)], t0).0, 0);
        // Nor is a larger one while the first is younger than the eviction time.
        let four = [("x", 0, 0), ("x", 1, 0), ("x", 2, 0), ("x", 3, 0)];
        let plan = cache.begin(&request(0, 0, &four), V12, t0).unwrap();
        assert_eq!(cache.finish(plan, &[sent(1, false); 4], t0).0, 0);
        // The first is in use, and lives past the eviction time.
        let busy = t0 + Duration::from_secs(119);
        let plan = cache.begin(&request(first, 1, &[]), V12, busy).unwrap();
        assert!(cache.finish(plan, &[sent(10, false); 3], busy).1.is_ok());
        // Now a larger session takes the smaller one's place, though it is not idle.
        let aged = t0 + Duration::from_secs(121);
        let plan = cache.begin(&request(0, 0, &four), V12, aged).unwrap();
        let second = cache.finish(plan, &[sent(1, false); 4], aged).0;
        assert!(second != 0 && second != first);
        assert_eq!(
            cache.begin(&request(first, 2, &[]), V12, aged).unwrap_err(),
            E::FetchSessionIdNotFound
        );
        // Once idle past the eviction time, any new session may take its place.
        let later = aged + Duration::from_secs(121);
        let plan = cache
            .begin(&request(0, 0, &[("y", 0, 0)]), V12, later)
            .unwrap();
        let third = cache.finish(plan, &[sent(1, false)], later).0;
        assert!(third != 0 && third != second);
        assert_eq!(cache.open_sessions(), 1);
    }

    #[test]
    fn old_versions_never_get_sessions() {
        let cache = FetchSessions::new(10, Duration::from_secs(120));
        let now = Instant::now();
        let plan = cache.begin(&request(0, 0, &[("a", 0, 0)]), 6, now).unwrap();
        assert_eq!(plan.kind, Kind::Sessionless);
        assert_eq!(cache.finish(plan, &[sent(1, false)], now).0, 0);
    }
}
