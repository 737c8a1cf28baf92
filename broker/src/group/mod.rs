//! The group coordinator for the classic protocol: group state machines ([`state`]),
//! committed offsets ([`offsets`]), and the timers that expire sessions and end
//! rebalances. One lock guards all groups; nothing awaits while holding it (parked
//! Join/Sync requests wait on oneshot channels outside it).

pub mod offsets;
pub mod state;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError as E;
use tokio::sync::watch;

use crate::clock::now_ms;
use crate::config::BrokerConfig;
use crate::error_code;
pub use offsets::Committed;
use offsets::{OffsetChange, OffsetStore};
pub use state::{Group, GroupState, JoinRequest, JoinResult, Pending, SyncResult};

const TICK: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Inner {
    groups: HashMap<String, Group>,
    offsets: BTreeMap<String, BTreeMap<(String, i32), Committed>>,
    store: OffsetStore,
    /// When a group-metadata write last failed: writes wait a second after one.
    store_failed_at: Option<Instant>,
}

impl Inner {
    /// Writes the group's metadata if it changed in a way the log keeps, and is Stable
    /// or Empty: a group in a rebalance has a raised generation and no assignments yet,
    /// and loaded so it would sit Stable with nothing to consume. A failed write is
    /// logged and tried again by the timers, not before a second has passed; meanwhile
    /// the group carries on, and a restart would cost it a rebalance.
    fn store_if_changed(&mut self, group_id: &str) {
        let Inner {
            groups,
            store,
            store_failed_at,
            ..
        } = self;
        let Some(g) = groups.get_mut(group_id) else {
            return;
        };
        let settled = matches!(g.state, GroupState::Stable | GroupState::Empty);
        let waiting = store_failed_at.is_some_and(|at| at.elapsed() < Duration::from_secs(1));
        if !g.is_changed() || !settled || waiting {
            return;
        }
        match store.append_group(group_id, Some(&g.to_stored(now_ms()))) {
            Ok(()) => {
                g.mark_stored();
                *store_failed_at = None;
            }
            Err(e) => {
                *store_failed_at = Some(Instant::now());
                log_write_failure(&format!("storing group metadata of {group_id} failed"), &e);
            }
        }
    }

    /// Forgets a group, and writes its end if the log holds its metadata.
    fn remove_group(&mut self, group_id: &str) -> Result<(), sluice_storage::Error> {
        if self.groups.get(group_id).is_some_and(|g| g.stored) {
            self.store.append_group(group_id, None)?;
        }
        self.groups.remove(group_id);
        Ok(())
    }

    /// Deletes committed offsets, given as (group, topic, partition): tombstones in the
    /// store first, then out of memory, so a failed write leaves both as they were.
    fn delete_offsets(
        &mut self,
        offsets: Vec<(String, String, i32)>,
    ) -> Result<(), sluice_storage::Error> {
        let tombstones: Vec<OffsetChange> = offsets
            .into_iter()
            .map(|(g, t, p)| (g, t, p, None))
            .collect();
        self.store.append(&tombstones)?;
        for (g, t, p, _) in tombstones {
            let emptied = self.offsets.get_mut(&g).is_some_and(|m| {
                m.remove(&(t, p));
                m.is_empty()
            });
            if emptied {
                self.offsets.remove(&g);
            }
        }
        Ok(())
    }
}

#[derive(Debug)]
pub struct GroupCoordinator {
    inner: Mutex<Inner>,
    pub initial_rebalance_delay: Duration,
    pub session_timeout_min_ms: i64,
    pub session_timeout_max_ms: i64,
    pub max_size: usize,
    pub metadata_max_bytes: usize,
    /// `offsets.retention.minutes`: how long committed offsets outlive their group's
    /// last member, or their commit for a group without members ever.
    pub offsets_retention: Duration,
    /// `offsets.retention.check.interval.ms`: how often expired offsets, and empty
    /// groups left with none, are removed.
    pub offsets_retention_check: Duration,
}

/// A group as DescribeGroups and ListGroups show it.
#[derive(Debug, Clone)]
pub struct GroupView {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    pub members: Vec<MemberView>,
}

#[derive(Debug, Clone)]
pub struct MemberView {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub metadata: bytes::Bytes,
    pub assignment: bytes::Bytes,
}

/// Logs a failed write to the offsets log. Once the log has refused writes (it logged
/// that itself), each later refusal is not logged again: consumers retry their commits
/// every few hundred milliseconds, and group metadata is retried every second. A log
/// closed at shutdown refuses what comes after as quietly.
fn log_write_failure(what: &str, e: &sluice_storage::Error) {
    use sluice_storage::Error::{Closed, Poisoned};
    if matches!(e, Poisoned | Closed) {
        tracing::debug!(error = %e, "{what}");
    } else {
        tracing::error!(error = %e, "{what}");
    }
}

/// Logs a failed write a client asked for, and gives the error it is answered with.
fn write_failed(what: &str, e: &sluice_storage::Error) -> E {
    log_write_failure(what, e);
    error_code::group_write(e)
}

impl GroupCoordinator {
    pub fn open(dir: &Path, config: &BrokerConfig) -> Result<Self, sluice_storage::Error> {
        let (store, replayed) = OffsetStore::open(dir)?;
        let offsets = replayed.offsets;
        let (now, now_ms) = (Instant::now(), now_ms());
        let mut groups: HashMap<String, Group> =
            offsets.keys().map(|g| (g.clone(), Group::new(g))).collect();
        let max_size = config.int("group.max.size").max(1) as usize;
        for (id, stored) in &replayed.groups {
            let mut g = Group::from_stored(id, stored, now, now_ms);
            g.rebalance_if_over(max_size, now);
            groups.insert(id.clone(), g);
        }
        if !replayed.groups.is_empty() {
            tracing::info!(groups = replayed.groups.len(), "loaded consumer groups");
        }
        Ok(GroupCoordinator {
            inner: Mutex::new(Inner {
                groups,
                offsets,
                store,
                store_failed_at: None,
            }),
            initial_rebalance_delay: Duration::from_millis(
                config.int("group.initial.rebalance.delay.ms").max(0) as u64,
            ),
            session_timeout_min_ms: config.int("group.min.session.timeout.ms"),
            session_timeout_max_ms: config.int("group.max.session.timeout.ms"),
            max_size,
            metadata_max_bytes: config.int("offset.metadata.max.bytes").max(0) as usize,
            offsets_retention: Duration::from_secs(
                config.int("offsets.retention.minutes").max(1) as u64 * 60,
            ),
            offsets_retention_check: Duration::from_millis(
                config.int("offsets.retention.check.interval.ms").max(1) as u64,
            ),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub async fn join(&self, group_id: &str, req: JoinRequest) -> JoinResult {
        let timeout_ms = req.session_timeout.as_millis() as i64;
        if timeout_ms < self.session_timeout_min_ms || timeout_ms > self.session_timeout_max_ms {
            return JoinResult::error(E::InvalidSessionTimeout, &req.member_id);
        }
        if group_id.is_empty() {
            return JoinResult::error(E::InvalidGroupId, &req.member_id);
        }
        let pending = {
            let mut inner = self.lock();
            if !req.member_id.is_empty() && !inner.groups.contains_key(group_id) {
                return JoinResult::error(E::UnknownMemberId, &req.member_id);
            }
            let group = inner
                .groups
                .entry(group_id.to_owned())
                .or_insert_with(|| Group::new(group_id));
            let pending = group.join(
                req.clone(),
                Instant::now(),
                self.initial_rebalance_delay,
                self.max_size,
            );
            inner.store_if_changed(group_id);
            pending
        };
        match pending {
            Pending::Now(r) => r,
            // A dropped sender means the member was removed while waiting.
            Pending::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| JoinResult::error(E::UnknownMemberId, &req.member_id)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn sync(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, bytes::Bytes)>,
    ) -> SyncResult {
        let pending = {
            let mut inner = self.lock();
            let Some(group) = inner.groups.get_mut(group_id) else {
                return SyncResult::error(E::UnknownMemberId);
            };
            let pending = group.sync(
                generation,
                member_id,
                instance_id,
                protocol_type,
                protocol_name,
                assignments,
                Instant::now(),
            );
            inner.store_if_changed(group_id);
            pending
        };
        match pending {
            Pending::Now(r) => r,
            Pending::Wait(rx) => rx
                .await
                .unwrap_or_else(|_| SyncResult::error(E::UnknownMemberId)),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), E> {
        let mut inner = self.lock();
        let group = inner.groups.get_mut(group_id).ok_or(E::UnknownMemberId)?;
        group.heartbeat(generation, member_id, instance_id, Instant::now())
    }

    pub fn leave(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), E> {
        let mut inner = self.lock();
        let group = inner.groups.get_mut(group_id).ok_or(E::UnknownMemberId)?;
        let r = group.leave(member_id, instance_id, Instant::now());
        inner.store_if_changed(group_id);
        if r.is_ok() {
            tracing::info!(
                group = group_id,
                member = member_id,
                "member left the group"
            );
        }
        r
    }

    /// Stores commits after checking the member and generation; per-partition errors
    /// for what the caller already refused (unknown partitions) are left to the caller.
    pub fn commit(
        &self,
        group_id: &str,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        commits: Vec<(String, i32, Committed)>,
        version: i16,
    ) -> Result<(), E> {
        if group_id.is_empty() {
            return Err(E::InvalidGroupId);
        }
        let mut inner = self.lock();
        match inner.groups.get_mut(group_id) {
            Some(g) => g.check_commit(generation, member_id, instance_id, Instant::now())?,
            // A standalone commit makes a group (Kafka's "simple" one).
            None if generation < 0 => {}
            // As `OffsetMetadataManager.validateOffsetCommit` answers by version.
            None if version >= 9 => return Err(E::GroupIdNotFound),
            None => return Err(E::IllegalGeneration),
        }
        let changes: Vec<OffsetChange> = commits
            .iter()
            .map(|(t, p, c)| (group_id.to_owned(), t.clone(), *p, Some(c.clone())))
            .collect();
        // Nothing to write when every partition's metadata was too large: the group was
        // still checked (and a member's session kept alive).
        if !changes.is_empty() {
            if let Err(e) = inner.store.append(&changes) {
                return Err(write_failed("storing offsets failed", &e));
            }
        }
        inner
            .groups
            .entry(group_id.to_owned())
            .or_insert_with(|| Group::new(group_id));
        let map = inner.offsets.entry(group_id.to_owned()).or_default();
        for (t, p, c) in commits {
            map.insert((t, p), c);
        }
        Ok(())
    }

    pub fn committed(&self, group_id: &str) -> BTreeMap<(String, i32), Committed> {
        self.lock()
            .offsets
            .get(group_id)
            .cloned()
            .unwrap_or_default()
    }

    /// As Kafka's `describeGroups`: the protocol and each member's metadata only for a
    /// Stable group; each member's assignment (its last, until a new one is handed out)
    /// in any state.
    pub fn describe(&self, group_id: &str) -> Option<GroupView> {
        let inner = self.lock();
        let g = inner.groups.get(group_id)?;
        let protocol = match g.state {
            GroupState::Stable => g.protocol.clone().unwrap_or_default(),
            _ => String::new(),
        };
        let members = g
            .members
            .values()
            .map(|m| MemberView {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                metadata: m
                    .protocols
                    .iter()
                    .find(|(n, _)| !protocol.is_empty() && *n == protocol)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default(),
                assignment: m.assignment.clone(),
            })
            .collect();
        Some(GroupView {
            state: g.state,
            protocol_type: g.protocol_type.clone().unwrap_or_default(),
            protocol,
            members,
        })
    }

    pub fn list(&self) -> Vec<(String, GroupView)> {
        let ids: Vec<String> = self.lock().groups.keys().cloned().collect();
        let mut out: Vec<(String, GroupView)> = ids
            .into_iter()
            .filter_map(|id| self.describe(&id).map(|v| (id, v)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// DeleteGroups: only groups without members; their offsets go too.
    pub fn delete_group(&self, group_id: &str) -> Result<(), E> {
        let mut inner = self.lock();
        let group = inner.groups.get(group_id).ok_or(E::GroupIdNotFound)?;
        if !group.is_empty() {
            return Err(E::NonEmptyGroup);
        }
        let offsets = inner
            .offsets
            .get(group_id)
            .map(|m| {
                m.keys()
                    .map(|(t, p)| (group_id.to_owned(), t.clone(), *p))
                    .collect()
            })
            .unwrap_or_default();
        if let Err(e) = inner
            .delete_offsets(offsets)
            .and_then(|()| inner.remove_group(group_id))
        {
            return Err(write_failed("deleting a group failed", &e));
        }
        tracing::info!(group = group_id, "deleted group");
        Ok(())
    }

    /// A deleted topic's committed offsets go from every group, as Kafka's
    /// `OffsetMetadataManager.onPartitionsDeleted` removes them: a topic re-created under
    /// the same name starts with none, instead of its consumers resuming at offsets of
    /// the old log (skipping records, or resetting by `auto.offset.reset`).
    pub fn delete_topic_offsets(&self, topic: &str) {
        let mut inner = self.lock();
        let range = (topic.to_owned(), i32::MIN)..=(topic.to_owned(), i32::MAX);
        let offsets: Vec<(String, String, i32)> = inner
            .offsets
            .iter()
            .flat_map(|(g, m)| {
                m.range(range.clone())
                    .map(|((t, p), _)| (g.clone(), t.clone(), *p))
            })
            .collect();
        if offsets.is_empty() {
            return;
        }
        let count = offsets.len();
        if let Err(e) = inner.delete_offsets(offsets) {
            tracing::error!(topic, error = %e, "deleting a deleted topic's offsets failed");
            return;
        }
        tracing::info!(
            topic,
            offsets = count,
            "deleted the committed offsets of a deleted topic"
        );
    }

    /// OffsetDelete: per-partition results; refused for topics an active consumer group
    /// subscribes to.
    pub fn delete_offsets(
        &self,
        group_id: &str,
        partitions: &[(String, i32)],
    ) -> Result<Vec<Option<E>>, E> {
        let mut inner = self.lock();
        let group = inner.groups.get(group_id).ok_or(E::GroupIdNotFound)?;
        if !group.is_empty() && group.protocol_type.as_deref() != Some("consumer") {
            return Err(E::NonEmptyGroup);
        }
        // Kafka's `isSubscribedToTopic`: a consumer group whose members' subscriptions
        // cannot be read counts as subscribed to every topic, so nothing of it is deleted.
        let subscribed = group.subscribed_topics();
        let unreadable = subscribed.is_none()
            && !group.is_empty()
            && group.protocol_type.as_deref() == Some("consumer");
        let mut results = Vec::new();
        let mut offsets = Vec::new();
        for (t, p) in partitions {
            if unreadable || subscribed.as_ref().is_some_and(|s| s.contains(t)) {
                results.push(Some(E::GroupSubscribedToTopic));
            } else {
                results.push(None);
                if inner
                    .offsets
                    .get(group_id)
                    .is_some_and(|m| m.contains_key(&(t.clone(), *p)))
                {
                    offsets.push((group_id.to_owned(), t.clone(), *p));
                }
            }
        }
        if let Err(e) = inner.delete_offsets(offsets) {
            return Err(write_failed("deleting offsets failed", &e));
        }
        Ok(results)
    }

    /// Session expiry and rebalance deadlines, and group metadata left to write, every
    /// 100 ms; offset retention every `offsets.retention.check.interval.ms`.
    pub async fn run_timers(&self, mut shutdown: watch::Receiver<bool>) {
        let mut next_cleanup = Instant::now() + self.offsets_retention_check;
        loop {
            tokio::select! {
                _ = tokio::time::sleep(TICK) => {}
                _ = shutdown.changed() => return,
            }
            let now = Instant::now();
            {
                let mut inner = self.lock();
                let mut changed = Vec::new();
                for g in inner.groups.values_mut() {
                    let expired = g.tick(now);
                    for id in &expired.session {
                        tracing::info!(group = %g.id, member = %id, "member session expired");
                    }
                    for id in &expired.sync {
                        tracing::info!(group = %g.id, member = %id,
                            "member removed: no SyncGroup within the rebalance timeout");
                    }
                    if g.is_changed() {
                        changed.push(g.id.clone());
                    }
                }
                for id in changed {
                    inner.store_if_changed(&id);
                }
            }
            if now >= next_cleanup {
                self.expire_offsets(now, now_ms());
                next_cleanup = now + self.offsets_retention_check;
            }
        }
    }

    /// Kafka's `cleanupGroupMetadata`: deletes the committed offsets whose retention has
    /// passed, then forgets the empty groups left with none. Retention runs from the
    /// moment an empty consumer group lost its last member; for a group that never had
    /// members (standalone commits) from each offset's commit; in a stable consumer
    /// group, only offsets of topics no member subscribes to expire, by commit
    /// (`offsetExpirationCondition`). A group loaded at start keeps the moment it was
    /// written empty. Where a group's state lets its offsets expire, one committed with
    /// a retention of its own (OffsetCommit v2–v4) expires at the moment that set, as
    /// in Kafka (`OffsetExpirationConditionImpl`).
    pub fn expire_offsets(&self, now: Instant, now_ms: i64) {
        let retention_ms = self.offsets_retention.as_millis() as i64;
        let mut inner = self.lock();
        let mut expired = Vec::new();
        for (group_id, offsets) in &inner.offsets {
            let group = inner.groups.get(group_id);
            let empty_long_enough = |g: &Group| {
                g.empty_since
                    .is_some_and(|since| now.duration_since(since) >= self.offsets_retention)
            };
            // A commit's own retention, if it set one, in place of the broker's.
            let past_own_retention = |c: &Committed| c.expire_timestamp_ms.map(|at| now_ms >= at);
            let committed_long_ago = |c: &Committed| {
                past_own_retention(c).unwrap_or(now_ms - c.commit_timestamp_ms >= retention_ms)
            };
            for ((topic, partition), c) in offsets {
                let expire = match group {
                    None => committed_long_ago(c),
                    Some(g) if g.protocol_type.is_none() => committed_long_ago(c),
                    Some(g) if g.state == GroupState::Empty => {
                        past_own_retention(c).unwrap_or_else(|| empty_long_enough(g))
                    }
                    Some(g) if g.state == GroupState::Stable => g
                        .subscribed_topics()
                        .is_some_and(|s| !s.contains(topic) && committed_long_ago(c)),
                    Some(_) => false,
                };
                if expire {
                    expired.push((group_id.clone(), topic.clone(), *partition));
                }
            }
        }
        let count = expired.len();
        if count > 0 {
            if let Err(e) = inner.delete_offsets(expired) {
                log_write_failure("expiring committed offsets failed", &e);
                return;
            }
            tracing::info!(
                offsets = count,
                "expired committed offsets past their retention"
            );
        }
        let forgotten: Vec<String> = inner
            .groups
            .iter()
            .filter(|(id, g)| g.is_idle() && !inner.offsets.contains_key(*id))
            .map(|(id, _)| id.clone())
            .collect();
        for id in forgotten {
            if let Err(e) = inner.remove_group(&id) {
                log_write_failure(&format!("forgetting empty group {id} failed"), &e);
            }
        }
    }

    pub fn close(&self) {
        if let Err(e) = self.lock().store.close() {
            tracing::error!(error = %e, "closing the group offsets log failed");
        }
    }
}

pub fn commit_now(offset: i64, leader_epoch: i32, metadata: String) -> Committed {
    Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp_ms: now_ms(),
        expire_timestamp_ms: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn coordinator(dir: &Path) -> GroupCoordinator {
        let cli = crate::config::Cli::parse_from(["sluice"]);
        let config = BrokerConfig::load(cli).unwrap();
        let mut c = GroupCoordinator::open(dir, &config).unwrap();
        c.offsets_retention = Duration::from_secs(60);
        c
    }

    /// Makes the group a commit created a consumer group, empty from `at` on.
    fn make_empty_consumer_group(c: &GroupCoordinator, group: &str, at: Instant) {
        let mut inner = c.lock();
        let g = inner.groups.get_mut(group).unwrap();
        g.protocol_type = Some("consumer".into());
        g.tick(at);
    }

    fn commit_at(c: &GroupCoordinator, group: &str, topic: &str, at_ms: i64) {
        let committed = Committed {
            offset: 5,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp_ms: at_ms,
            expire_timestamp_ms: None,
        };
        c.commit(group, -1, "", None, vec![(topic.into(), 0, committed)], 9)
            .unwrap();
    }

    /// Kafka's `isSubscribedToTopic`: a consumer group whose members' subscriptions do
    /// not parse counts as subscribed to every topic, so OffsetDelete keeps its offsets.
    #[test]
    fn offsets_of_a_group_whose_subscriptions_do_not_parse_are_kept() {
        use crate::group::offsets::{StoredGroup, StoredMember};
        let dir = tempfile::tempdir().unwrap();
        let c = coordinator(dir.path());
        commit_at(&c, "g", "t", now_ms());
        let stored = StoredGroup {
            protocol_type: Some("consumer".into()),
            protocol: Some("range".into()),
            generation: 1,
            leader: Some("a".into()),
            timestamp_ms: 0,
            members: vec![StoredMember {
                id: "a".into(),
                instance_id: None,
                client_id: "c".into(),
                client_host: "h".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 30_000,
                subscription: b"\xff".to_vec(),
                assignment: vec![],
            }],
        };
        let group = Group::from_stored("g", &stored, Instant::now(), now_ms());
        c.lock().groups.insert("g".into(), group);
        let deleted = c.delete_offsets("g", &[("t".into(), 0)]);
        assert_eq!(deleted, Ok(vec![Some(E::GroupSubscribedToTopic)]));
        assert_eq!(c.committed("g").len(), 1);
    }

    #[test]
    fn a_member_commit_to_an_unknown_group_is_answered_by_version() {
        let dir = tempfile::tempdir().unwrap();
        let c = coordinator(dir.path());
        let commit = |version| c.commit("nobody", 3, "m", None, vec![], version);
        assert_eq!(commit(9), Err(E::GroupIdNotFound));
        assert_eq!(commit(8), Err(E::IllegalGeneration));
    }

    /// An offset committed with a retention of its own (OffsetCommit v2–v4) expires at
    /// the moment it set, not by `offsets.retention.minutes`, wherever the group's state
    /// lets offsets expire at all.
    #[test]
    fn a_commit_with_its_own_retention_expires_when_it_says() {
        let dir = tempfile::tempdir().unwrap();
        let c = coordinator(dir.path());
        let commit = |group: &str, topic: &str, at_ms: i64, expire_ms: i64| {
            let committed = Committed {
                commit_timestamp_ms: at_ms,
                expire_timestamp_ms: Some(expire_ms),
                ..commit_now(5, -1, String::new())
            };
            c.commit(group, -1, "", None, vec![(topic.into(), 0, committed)], 2)
                .unwrap();
        };
        // Standalone: committed long past the 60 s retention, but kept to its own moment;
        // and committed a moment ago, but past its own.
        commit("simple", "long", 0, 200_000);
        commit("simple", "short", 99_000, 99_500);
        // An empty consumer group, empty for a second only: its own moment decides.
        commit("consumer", "t", 99_000, 99_500);
        let t = Instant::now();
        make_empty_consumer_group(&c, "consumer", t);
        c.expire_offsets(t + Duration::from_secs(1), 100_000);
        let simple = c.committed("simple");
        assert!(simple.contains_key(&("long".into(), 0)), "{simple:?}");
        assert!(!simple.contains_key(&("short".into(), 0)), "{simple:?}");
        assert!(c.committed("consumer").is_empty());
        c.expire_offsets(t + Duration::from_secs(1), 200_000);
        assert!(c.committed("simple").is_empty());
    }

    #[test]
    fn offsets_expire_by_commit_or_by_how_long_the_group_was_empty() {
        let dir = tempfile::tempdir().unwrap();
        let c = coordinator(dir.path());
        let t = Instant::now();
        // A standalone group's offsets go by their commit times.
        commit_at(&c, "simple", "old", 0);
        commit_at(&c, "simple", "new", 50_000);
        // An empty consumer group's go by how long it has been empty.
        commit_at(&c, "consumer", "t", 0);
        make_empty_consumer_group(&c, "consumer", t);
        c.expire_offsets(t + Duration::from_secs(30), 100_000);
        let simple = c.committed("simple");
        assert!(
            !simple.contains_key(&("old".into(), 0)),
            "committed 100 s ago"
        );
        assert!(
            simple.contains_key(&("new".into(), 0)),
            "committed 50 s ago"
        );
        assert_eq!(c.committed("consumer").len(), 1, "empty for 30 s only");
        c.expire_offsets(t + Duration::from_secs(61), 100_000);
        assert!(c.committed("consumer").is_empty(), "empty for 61 s");
        // The group, empty and left with no offsets, is forgotten.
        assert!(c.describe("consumer").is_none());
        assert!(c.describe("simple").is_some());
    }
}
