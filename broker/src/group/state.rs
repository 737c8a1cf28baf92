//! The classic consumer-group state machine (Kafka's `ClassicGroup`), without I/O.
//!
//! ```text
//!   Empty --join--> PreparingRebalance --all joined / deadline--> CompletingRebalance
//!     ^                  ^      |                                      | leader SyncGroup
//!     |  last member     |      +--no members left--> Empty            v
//!     +---- leaves ------+-------- join / leave / expiry ----------- Stable
//! ```
//! Join and Sync requests that must wait are parked as oneshot senders on the member
//! and answered when the rebalance step they wait for completes. Time is passed in, so
//! the transitions are unit-tested without sleeping.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::error::ResponseError as E;
use tokio::sync::oneshot;

use super::offsets::{StoredGroup, StoredMember};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka uses in DescribeGroups and ListGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinMember {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub metadata: Bytes,
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct JoinResult {
    pub error: i16,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub member_id: String,
    pub skip_assignment: bool,
    /// Filled for the leader only.
    pub members: Vec<JoinMember>,
}

impl JoinResult {
    pub fn error(e: E, member_id: &str) -> Self {
        JoinResult {
            error: e.code(),
            generation: -1,
            member_id: member_id.to_owned(),
            ..Default::default()
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(e: E) -> Self {
        SyncResult {
            error: e.code(),
            ..Default::default()
        }
    }
}

#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub last_heartbeat: Instant,
    join_order: u64,
    join_waiter: Option<oneshot::Sender<JoinResult>>,
    sync_waiter: Option<oneshot::Sender<SyncResult>>,
}

impl Member {
    fn metadata_for(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|(n, _)| n == protocol)
            .map(|(_, m)| m.clone())
            .unwrap_or_default()
    }
    fn supports(&self, protocol: &str) -> bool {
        self.protocols.iter().any(|(n, _)| n == protocol)
    }
    /// A member with a parked Join or Sync is alive: its request is its heartbeat.
    fn awaiting(&self) -> bool {
        self.join_waiter.is_some() || self.sync_waiter.is_some()
    }
}

/// What a JoinGroup carries.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// JoinGroup v4+: a new member must first get an id (MEMBER_ID_REQUIRED).
    pub require_known_member_id: bool,
}

/// A JoinGroup or SyncGroup either answers now or parks until the group moves on.
#[derive(Debug)]
pub enum Pending<T> {
    Now(T),
    Wait(oneshot::Receiver<T>),
}

/// Kafka's initial rebalance (`group.initial.rebalance.delay.ms`): the join phase of a
/// group that was empty ends when a delay passes with no new member, or when the
/// rebalance timeout is spent, not when everyone known has joined, so consumers that
/// start a few seconds apart form one generation.
#[derive(Debug)]
struct InitialRebalance {
    /// The configured delay: no extension is longer.
    configured: Duration,
    /// The delay running now, and when it ends.
    delay: Duration,
    ends: Instant,
    /// What is left of the rebalance timeout after this delay.
    remaining: Duration,
    /// A member joined during this delay: the phase is held open another one.
    new_member_added: bool,
}

/// Members a timer put out of their group.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expired {
    /// Their session ran out.
    pub session: Vec<String>,
    /// They did not send their SyncGroup within the rebalance timeout.
    pub sync: Vec<String>,
}

#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub generation: i32,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    static_members: HashMap<String, String>,
    pending_members: HashMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    /// The rebalance of a group that was empty, while its join phase is held open.
    initial: Option<InitialRebalance>,
    /// Members of this generation that have not sent their SyncGroup yet, and when they
    /// are put out if they still have not (Kafka's pending-sync expiry): a leader that
    /// never assigns would otherwise hold the group in CompletingRebalance for good.
    pending_sync: HashSet<String>,
    sync_deadline: Option<Instant>,
    next_join_order: u64,
    /// Since when the group has been Empty (as the timer saw it): Kafka's state
    /// timestamp, from which an empty consumer group's offsets are retained.
    pub empty_since: Option<Instant>,
    /// Set where Kafka writes the group's metadata (a rebalance completed, the group
    /// emptied, a static member took its instance back); the coordinator writes it and
    /// clears this.
    changed: bool,
    /// Whether the offsets log holds metadata for this group (so its end is written).
    pub stored: bool,
}

impl Group {
    pub fn new(id: &str) -> Self {
        Group {
            id: id.to_owned(),
            state: GroupState::Empty,
            protocol_type: None,
            protocol: None,
            generation: 0,
            leader: None,
            members: BTreeMap::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            rebalance_deadline: None,
            initial: None,
            pending_sync: HashSet::new(),
            sync_deadline: None,
            next_join_order: 0,
            empty_since: None,
            changed: false,
            stored: false,
        }
    }

    /// The group as the offsets log keeps it.
    pub fn to_stored(&self, now_ms: i64) -> StoredGroup {
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut members: Vec<&Member> = self.members.values().collect();
        members.sort_by_key(|m| m.join_order);
        StoredGroup {
            protocol_type: self.protocol_type.clone(),
            protocol: self.protocol.clone(),
            generation: self.generation,
            leader: self.leader.clone(),
            timestamp_ms: now_ms,
            members: members
                .into_iter()
                .map(|m| StoredMember {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout_ms: m.session_timeout.as_millis() as u64,
                    rebalance_timeout_ms: m.rebalance_timeout.as_millis() as u64,
                    subscription: m.metadata_for(&protocol).to_vec(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }

    /// A group read back from the offsets log, as Kafka's coordinator loads one: Stable
    /// with its members, each with a fresh session, or Empty since it was written.
    pub fn from_stored(id: &str, stored: &StoredGroup, now: Instant, now_ms: i64) -> Self {
        let mut g = Group::new(id);
        g.protocol_type = stored.protocol_type.clone();
        g.generation = stored.generation;
        g.stored = true;
        let protocol = match (&stored.protocol, stored.members.is_empty()) {
            (Some(p), false) => p.clone(),
            _ => {
                let age =
                    Duration::from_millis(now_ms.saturating_sub(stored.timestamp_ms).max(0) as u64);
                g.empty_since = Some(now.checked_sub(age).unwrap_or(now));
                return g;
            }
        };
        for (order, m) in stored.members.iter().enumerate() {
            if let Some(instance) = &m.instance_id {
                g.static_members.insert(instance.clone(), m.id.clone());
            }
            g.members.insert(
                m.id.clone(),
                Member {
                    id: m.id.clone(),
                    instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    session_timeout: Duration::from_millis(m.session_timeout_ms),
                    rebalance_timeout: Duration::from_millis(m.rebalance_timeout_ms),
                    protocol_type: stored.protocol_type.clone().unwrap_or_default(),
                    protocols: vec![(protocol.clone(), Bytes::from(m.subscription.clone()))],
                    assignment: Bytes::from(m.assignment.clone()),
                    last_heartbeat: now,
                    join_order: order as u64,
                    join_waiter: None,
                    sync_waiter: None,
                },
            );
        }
        g.next_join_order = stored.members.len() as u64;
        g.leader = stored
            .leader
            .clone()
            .filter(|l| g.members.contains_key(l))
            .or_else(|| stored.members.first().map(|m| m.id.clone()));
        g.protocol = Some(protocol);
        g.state = GroupState::Stable;
        g
    }

    /// Members whose JoinGroup waits for the rebalance to complete.
    fn awaiting_joins(&self) -> usize {
        self.members
            .values()
            .filter(|m| m.join_waiter.is_some())
            .count()
    }

    /// A group loaded with more members than `group.max.size` (lowered across a
    /// restart) rebalances, as Kafka's coordinator does on load: the members past the
    /// limit to rejoin are put out.
    pub fn rebalance_if_over(&mut self, max_size: usize, now: Instant) {
        if self.state == GroupState::Stable && self.members.len() > max_size {
            self.prepare_rebalance(now, Duration::ZERO);
        }
    }

    /// Whether the group changed in a way the offsets log keeps since it was last
    /// written.
    pub fn is_changed(&self) -> bool {
        self.changed
    }

    /// The group as it is now is in the offsets log.
    pub fn mark_stored(&mut self) {
        self.changed = false;
        self.stored = true;
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// No members, none about to join: the group holds nothing but (maybe) offsets.
    pub fn is_idle(&self) -> bool {
        self.members.is_empty()
            && self.pending_members.is_empty()
            && self.state == GroupState::Empty
    }

    fn new_member_id(client_id: &str) -> String {
        format!("{client_id}-{}", uuid::Uuid::new_v4())
    }

    /// The protocols every member (and the joiner) supports.
    fn protocols_compatible(&self, req: &JoinRequest) -> bool {
        if self.members.is_empty() {
            return !req.protocols.is_empty();
        }
        if self.protocol_type.as_deref() != Some(req.protocol_type.as_str()) {
            return false;
        }
        req.protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .filter(|m| m.id != req.member_id)
                .all(|m| m.supports(name))
        })
    }

    pub fn join(
        &mut self,
        req: JoinRequest,
        now: Instant,
        initial_delay: Duration,
        max_size: usize,
    ) -> Pending<JoinResult> {
        if self.state == GroupState::Dead {
            return Pending::Now(JoinResult::error(
                E::CoordinatorNotAvailable,
                &req.member_id,
            ));
        }
        if !self.protocols_compatible(&req) {
            return Pending::Now(JoinResult::error(
                E::InconsistentGroupProtocol,
                &req.member_id,
            ));
        }
        // Kafka's `acceptJoiningMember` in a rebalance: once as many as the group may
        // hold have (re)joined, any other join is refused, and a member that was in the
        // group is put out. This is how a group over `group.max.size` (lowered since it
        // formed) shrinks back. (Outside a rebalance new members are counted below.)
        if self.state == GroupState::PreparingRebalance
            && self
                .members
                .get(&req.member_id)
                .is_none_or(|m| m.join_waiter.is_none())
            && self.awaiting_joins() >= max_size
        {
            if self.members.contains_key(&req.member_id) {
                self.remove_member(&req.member_id);
                self.maybe_complete_join(now);
            }
            self.pending_members.remove(&req.member_id);
            return Pending::Now(JoinResult::error(E::GroupMaxSizeReached, ""));
        }
        if req.member_id.is_empty() {
            if let Some(instance) = req.instance_id.clone() {
                if let Some(old_id) = self.static_members.get(&instance).cloned() {
                    return self.rejoin_static(old_id, req, now, initial_delay);
                }
            }
            if self.members.len() >= max_size {
                return Pending::Now(JoinResult::error(E::GroupMaxSizeReached, ""));
            }
            let id = Self::new_member_id(&req.client_id);
            if req.require_known_member_id && req.instance_id.is_none() {
                self.pending_members
                    .insert(id.clone(), now + req.session_timeout);
                return Pending::Now(JoinResult::error(E::MemberIdRequired, &id));
            }
            return self.add_and_wait(id, req, now, initial_delay);
        }
        // Only dynamic members wait as pending (MEMBER_ID_REQUIRED).
        if req.instance_id.is_none() && !self.members.contains_key(&req.member_id) {
            if self.pending_members.remove(&req.member_id).is_some() {
                if self.members.len() >= max_size {
                    return Pending::Now(JoinResult::error(E::GroupMaxSizeReached, &req.member_id));
                }
                let id = req.member_id.clone();
                return self.add_and_wait(id, req, now, initial_delay);
            }
            return Pending::Now(JoinResult::error(E::UnknownMemberId, &req.member_id));
        }
        // A static member's instance is checked before its member id, as Kafka's
        // `validateMember` does: an old incarnation with an id the group no longer knows
        // is fenced (FENCED_INSTANCE_ID), not sent to join afresh (UNKNOWN_MEMBER_ID),
        // which would let it take the instance back from the live one.
        if let Err(e) = self.check_member(&req.member_id, req.instance_id.as_deref()) {
            return Pending::Now(JoinResult::error(e, &req.member_id));
        }
        let id = req.member_id.clone();
        let changed = {
            let m = self.members.get_mut(&id).expect("known member");
            let changed = m.protocols != req.protocols;
            m.protocols = req.protocols;
            m.session_timeout = req.session_timeout;
            m.rebalance_timeout = req.rebalance_timeout;
            m.last_heartbeat = now;
            changed
        };
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        match self.state {
            GroupState::CompletingRebalance | GroupState::Stable
                if !(changed || self.state == GroupState::Stable && is_leader) =>
            {
                let mut r = self.current_join_result(&id);
                if is_leader {
                    // A leader that missed its JoinGroup answer (a lost connection) asks
                    // again before syncing: it must get the members to assign, else it
                    // assigns nothing and the group sits idle (Kafka answers it the same).
                    r.members = self.member_list();
                }
                Pending::Now(r)
            }
            _ => self.park_join(&id, now, initial_delay),
        }
    }

    fn rejoin_static(
        &mut self,
        old_id: String,
        req: JoinRequest,
        now: Instant,
        initial_delay: Duration,
    ) -> Pending<JoinResult> {
        let new_id = Self::new_member_id(&req.client_id);
        let mut m = self
            .members
            .remove(&old_id)
            .expect("static member is a member");
        // The old incarnation is fenced: anything it has parked is told so.
        if let Some(w) = m.join_waiter.take() {
            let _ = w.send(JoinResult::error(E::FencedInstanceId, &old_id));
        }
        if let Some(w) = m.sync_waiter.take() {
            let _ = w.send(SyncResult::error(E::FencedInstanceId));
        }
        m.id = new_id.clone();
        m.protocols = req.protocols;
        m.session_timeout = req.session_timeout;
        m.rebalance_timeout = req.rebalance_timeout;
        m.client_id = req.client_id;
        m.client_host = req.client_host;
        m.last_heartbeat = now;
        self.members.insert(new_id.clone(), m);
        self.static_members
            .insert(req.instance_id.clone().expect("static"), new_id.clone());
        // The new incarnation owes the SyncGroup the old one did.
        if self.pending_sync.remove(&old_id) {
            self.pending_sync.insert(new_id.clone());
        }
        let was_leader = self.leader.as_deref() == Some(old_id.as_str());
        if was_leader {
            self.leader = Some(new_id.clone());
        }
        // Real clients put what they own and their last generation in the metadata, so a
        // restarted member's bytes differ: like Kafka, rebalance only if the protocol the
        // group would now select changes (`updateStaticMemberThenRebalanceOrCompleteJoin`).
        let unchanged = self.protocol.as_deref() == Some(self.select_protocol().as_str());
        if self.state == GroupState::Stable && unchanged {
            self.changed = true;
            // KIP-345: a static member that restarts gets its old assignment back
            // without a rebalance; a leader is told to skip assigning (KIP-814).
            let mut r = self.current_join_result(&new_id);
            r.members.clear();
            r.skip_assignment = was_leader;
            if was_leader {
                r.members = self.member_list();
            }
            return Pending::Now(r);
        }
        self.park_join(&new_id, now, initial_delay)
    }

    fn add_and_wait(
        &mut self,
        id: String,
        req: JoinRequest,
        now: Instant,
        initial_delay: Duration,
    ) -> Pending<JoinResult> {
        if self.members.is_empty() {
            self.protocol_type = Some(req.protocol_type.clone());
        }
        if let Some(instance) = &req.instance_id {
            self.static_members.insert(instance.clone(), id.clone());
        }
        if let Some(initial) = &mut self.initial {
            initial.new_member_added = true;
        }
        let order = self.next_join_order;
        self.next_join_order += 1;
        self.members.insert(
            id.clone(),
            Member {
                id: id.clone(),
                instance_id: req.instance_id,
                client_id: req.client_id,
                client_host: req.client_host,
                session_timeout: req.session_timeout,
                rebalance_timeout: req.rebalance_timeout,
                protocol_type: req.protocol_type,
                protocols: req.protocols,
                assignment: Bytes::new(),
                last_heartbeat: now,
                join_order: order,
                join_waiter: None,
                sync_waiter: None,
            },
        );
        self.park_join(&id, now, initial_delay)
    }

    fn park_join(
        &mut self,
        id: &str,
        now: Instant,
        initial_delay: Duration,
    ) -> Pending<JoinResult> {
        let (tx, rx) = oneshot::channel();
        self.members.get_mut(id).expect("member").join_waiter = Some(tx);
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now, initial_delay);
        }
        self.maybe_complete_join(now);
        Pending::Wait(rx)
    }

    fn prepare_rebalance(&mut self, now: Instant, initial_delay: Duration) {
        if self.state == GroupState::CompletingRebalance {
            for m in self.members.values_mut() {
                if let Some(w) = m.sync_waiter.take() {
                    let _ = w.send(SyncResult::error(E::RebalanceInProgress));
                }
            }
        }
        let max_rebalance = self.max_rebalance_timeout();
        if self.state == GroupState::Empty && !initial_delay.is_zero() {
            self.initial = Some(InitialRebalance {
                configured: initial_delay,
                delay: initial_delay,
                ends: now + initial_delay,
                remaining: max_rebalance.saturating_sub(initial_delay),
                new_member_added: false,
            });
        }
        self.clear_pending_sync();
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now + max_rebalance);
    }

    /// The group's rebalance timeout: its members' longest.
    fn max_rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default()
    }

    fn clear_pending_sync(&mut self) {
        self.pending_sync.clear();
        self.sync_deadline = None;
    }

    /// Completes the join phase once every member has rejoined and no new member is
    /// between its two JoinGroups; an initial rebalance ends on its timer only.
    pub fn maybe_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance || self.initial.is_some() {
            return;
        }
        if self.members.values().all(|m| m.join_waiter.is_some()) && self.pending_members.is_empty()
        {
            self.complete_join(now);
        }
    }

    /// An initial rebalance's delay has ended: held open another delay if a member joined
    /// during this one and the rebalance timeout is not spent (Kafka's
    /// `tryCompleteInitialRebalanceElseSchedule`), else the join phase completes.
    fn initial_delay_ended(&mut self, now: Instant) {
        let Some(i) = &mut self.initial else {
            return;
        };
        if i.new_member_added && !i.remaining.is_zero() {
            i.new_member_added = false;
            let delay = i.configured.min(i.remaining);
            i.remaining = i.remaining.saturating_sub(i.delay);
            i.delay = delay;
            i.ends = now + delay;
        } else {
            self.complete_join(now);
        }
    }

    fn complete_join(&mut self, now: Instant) {
        // Dynamic members that did not rejoin in time are out. Static ones stay (KIP-345):
        // the leader assigns them their share, which they take back if they return within
        // their session and the sync deadline, with no further rebalance.
        let gone: Vec<String> = self
            .members
            .values()
            .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
            .map(|m| m.id.clone())
            .collect();
        for id in gone {
            self.remove_member(&id);
        }
        self.initial = None;
        if !self.members.is_empty() && self.members.values().all(|m| m.join_waiter.is_none()) {
            // No member rejoined, only absent static ones are left: wait another rebalance
            // timeout for one, while their sessions run (Kafka's `completeClassicGroupJoin`).
            self.rebalance_deadline = Some(now + self.max_rebalance_timeout());
            return;
        }
        self.rebalance_deadline = None;
        self.generation += 1;
        if self.members.is_empty() {
            self.state = GroupState::Empty;
            self.protocol = None;
            self.leader = None;
            self.changed = true;
            return;
        }
        self.protocol = Some(self.select_protocol());
        let leader_rejoined = self
            .leader
            .as_ref()
            .and_then(|l| self.members.get(l))
            .is_some_and(|m| m.join_waiter.is_some());
        if !leader_rejoined {
            self.leader = self
                .members
                .values()
                .filter(|m| m.join_waiter.is_some())
                .min_by_key(|m| m.join_order)
                .map(|m| m.id.clone());
        }
        self.state = GroupState::CompletingRebalance;
        self.pending_sync = self.members.keys().cloned().collect();
        self.sync_deadline = Some(now + self.max_rebalance_timeout());
        let leader = self.leader.clone().expect("leader");
        let list = self.member_list();
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let mut r = self.current_join_result(&id);
            if id == leader {
                r.members = list.clone();
            }
            let m = self.members.get_mut(&id).expect("member");
            m.last_heartbeat = now;
            m.assignment = Bytes::new();
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(r);
            }
        }
    }

    /// Kafka's choice: each member votes for its most preferred protocol among those all
    /// members support; the most votes win.
    fn select_protocol(&self) -> String {
        let candidates: Vec<&String> = self
            .members
            .values()
            .next()
            .map(|m| {
                m.protocols
                    .iter()
                    .map(|(n, _)| n)
                    .filter(|n| self.members.values().all(|o| o.supports(n)))
                    .collect()
            })
            .unwrap_or_default();
        let mut votes: Vec<(usize, &String)> = candidates.iter().map(|c| (0, *c)).collect();
        for m in self.members.values() {
            if let Some((pick, _)) = m.protocols.iter().find(|(n, _)| candidates.contains(&n)) {
                if let Some(v) = votes.iter_mut().find(|(_, c)| *c == pick) {
                    v.0 += 1;
                }
            }
        }
        // The most votes win; ties go to the earlier candidate.
        let mut best: Option<(usize, &String)> = None;
        for &(count, name) in &votes {
            if best.is_none_or(|(c, _)| count > c) {
                best = Some((count, name));
            }
        }
        best.map(|(_, c)| c.clone()).unwrap_or_default()
    }

    fn member_list(&self) -> Vec<JoinMember> {
        let protocol = self.protocol.clone().unwrap_or_default();
        let mut ms: Vec<&Member> = self.members.values().collect();
        ms.sort_by_key(|m| m.join_order);
        ms.iter()
            .map(|m| JoinMember {
                member_id: m.id.clone(),
                instance_id: m.instance_id.clone(),
                metadata: m.metadata_for(&protocol),
            })
            .collect()
    }

    fn current_join_result(&self, id: &str) -> JoinResult {
        JoinResult {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            member_id: id.to_owned(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }

    fn check_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), E> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                Some(id) if id == member_id => return Ok(()),
                Some(_) => return Err(E::FencedInstanceId),
                None => {}
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(E::UnknownMemberId);
        }
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub fn sync(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        protocol_type: Option<&str>,
        protocol_name: Option<&str>,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Pending<SyncResult> {
        if let Err(e) = self.check_member(member_id, instance_id) {
            return Pending::Now(SyncResult::error(e));
        }
        if generation != self.generation {
            return Pending::Now(SyncResult::error(E::IllegalGeneration));
        }
        if protocol_type.is_some_and(|t| Some(t) != self.protocol_type.as_deref())
            || protocol_name.is_some_and(|n| Some(n) != self.protocol.as_deref())
        {
            return Pending::Now(SyncResult::error(E::InconsistentGroupProtocol));
        }
        let ok = |g: &Group, assignment: Bytes| SyncResult {
            error: 0,
            protocol_type: g.protocol_type.clone(),
            protocol_name: g.protocol.clone(),
            assignment,
        };
        match self.state {
            GroupState::Empty | GroupState::Dead => {
                Pending::Now(SyncResult::error(E::UnknownMemberId))
            }
            GroupState::PreparingRebalance => {
                Pending::Now(SyncResult::error(E::RebalanceInProgress))
            }
            GroupState::Stable => {
                self.synced(member_id);
                let m = self.members.get_mut(member_id).expect("checked member");
                m.last_heartbeat = now;
                let a = m.assignment.clone();
                Pending::Now(ok(self, a))
            }
            GroupState::CompletingRebalance => {
                self.synced(member_id);
                let (tx, rx) = oneshot::channel();
                {
                    let m = self.members.get_mut(member_id).expect("checked member");
                    m.last_heartbeat = now;
                    m.sync_waiter = Some(tx);
                }
                if self.leader.as_deref() == Some(member_id) {
                    let mut by_member: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for m in self.members.values_mut() {
                        m.assignment = by_member.remove(&m.id).unwrap_or_default();
                    }
                    self.state = GroupState::Stable;
                    self.changed = true;
                    let results: Vec<(String, SyncResult)> = self
                        .members
                        .values()
                        .map(|m| (m.id.clone(), ok(self, m.assignment.clone())))
                        .collect();
                    for (id, r) in results {
                        let Some(m) = self.members.get_mut(&id) else {
                            continue;
                        };
                        if let Some(w) = m.sync_waiter.take() {
                            let _ = w.send(r);
                            // Its session starts again from its answer, as Kafka's
                            // `propagateAssignment` restarts it: a member parked past its
                            // session timeout is not expired on the next tick.
                            m.last_heartbeat = now;
                        }
                    }
                }
                Pending::Wait(rx)
            }
        }
    }

    /// A member's SyncGroup came: it no longer holds up the sync deadline.
    fn synced(&mut self, member_id: &str) {
        self.pending_sync.remove(member_id);
        if self.pending_sync.is_empty() {
            self.sync_deadline = None;
        }
    }

    pub fn heartbeat(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), E> {
        if self.state == GroupState::Dead {
            return Err(E::CoordinatorNotAvailable);
        }
        self.check_member(member_id, instance_id)?;
        if generation != self.generation {
            return Err(E::IllegalGeneration);
        }
        self.members
            .get_mut(member_id)
            .expect("checked member")
            .last_heartbeat = now;
        match self.state {
            GroupState::PreparingRebalance => Err(E::RebalanceInProgress),
            GroupState::Empty => Err(E::UnknownMemberId),
            _ => Ok(()),
        }
    }

    /// Whether a commit from this member at this generation may be stored (Kafka's
    /// `ClassicGroup.validateOffsetCommit`): members of the current generation may commit
    /// while a rebalance is being prepared (consumers commit from their revocation
    /// callbacks), but not while assignments are being handed out. An accepted commit
    /// keeps its member's session alive, as Kafka's `commitOffset` does in Stable and
    /// PreparingRebalance.
    pub fn check_commit(
        &mut self,
        generation: i32,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), E> {
        if self.state == GroupState::Dead {
            return Err(E::CoordinatorNotAvailable);
        }
        if generation < 0 && self.state == GroupState::Empty {
            // A standalone consumer or an admin, to a group without members.
            return Ok(());
        }
        if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
            self.check_member(member_id, instance_id)?;
            if generation != self.generation {
                return Err(E::IllegalGeneration);
            }
        } else if self.state != GroupState::Empty {
            return Err(E::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            return Err(E::RebalanceInProgress);
        }
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            if let Some(m) = self.members.get_mut(member_id) {
                m.last_heartbeat = now;
            }
        }
        Ok(())
    }

    /// LeaveGroup for one member: by member id, or by instance id for static members.
    pub fn leave(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        now: Instant,
    ) -> Result<(), E> {
        let id = match instance_id {
            Some(instance) => match self.static_members.get(instance) {
                None => return Err(E::UnknownMemberId),
                Some(id) if !member_id.is_empty() && id != member_id => {
                    return Err(E::FencedInstanceId)
                }
                Some(id) => id.clone(),
            },
            None => {
                if self.pending_members.remove(member_id).is_some() {
                    return Ok(());
                }
                if !self.members.contains_key(member_id) {
                    return Err(E::UnknownMemberId);
                }
                member_id.to_owned()
            }
        };
        self.remove_member(&id);
        self.after_membership_change(now);
        Ok(())
    }

    fn remove_member(&mut self, id: &str) {
        if let Some(mut m) = self.members.remove(id) {
            if let Some(instance) = &m.instance_id {
                if self.static_members.get(instance).map(String::as_str) == Some(id) {
                    self.static_members.remove(instance);
                }
            }
            if let Some(w) = m.join_waiter.take() {
                let _ = w.send(JoinResult::error(E::UnknownMemberId, id));
            }
            if let Some(w) = m.sync_waiter.take() {
                let _ = w.send(SyncResult::error(E::UnknownMemberId));
            }
        }
        self.pending_sync.remove(id);
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
    }

    fn after_membership_change(&mut self, now: Instant) {
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.state = GroupState::Empty;
                    self.generation += 1;
                    self.protocol = None;
                    self.changed = true;
                    self.clear_pending_sync();
                } else {
                    self.prepare_rebalance(now, Duration::ZERO);
                }
            }
            GroupState::PreparingRebalance => self.maybe_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
    }

    /// Expires members whose session ran out, and members that did not sync by the sync
    /// deadline, and finishes rebalances whose deadline passed.
    pub fn tick(&mut self, now: Instant) -> Expired {
        self.pending_members.retain(|_, deadline| *deadline > now);
        let mut expired = Expired {
            session: self
                .members
                .values()
                .filter(|m| {
                    !m.awaiting() && now.duration_since(m.last_heartbeat) > m.session_timeout
                })
                .map(|m| m.id.clone())
                .collect(),
            sync: Vec::new(),
        };
        let syncing = matches!(
            self.state,
            GroupState::CompletingRebalance | GroupState::Stable
        );
        if syncing && self.sync_deadline.is_some_and(|d| now >= d) {
            let mut late: Vec<String> = self.pending_sync.drain().collect();
            late.retain(|id| !expired.session.contains(id));
            late.sort();
            expired.sync = late;
            self.sync_deadline = None;
        }
        for id in expired.session.iter().chain(&expired.sync) {
            self.remove_member(id);
        }
        if !expired.session.is_empty() || !expired.sync.is_empty() {
            self.after_membership_change(now);
        }
        if self.state == GroupState::PreparingRebalance {
            match &self.initial {
                Some(i) if now >= i.ends => self.initial_delay_ended(now),
                Some(_) => {}
                None if self.rebalance_deadline.is_some_and(|d| now >= d) => {
                    self.complete_join(now)
                }
                None => self.maybe_complete_join(now),
            }
        }
        if self.state == GroupState::Empty {
            self.empty_since.get_or_insert(now);
        } else {
            self.empty_since = None;
        }
        expired
    }

    /// Topics the group's members subscribe to (consumer protocol only).
    pub fn subscribed_topics(&self) -> Option<Vec<String>> {
        if self.protocol_type.as_deref() != Some("consumer") || self.members.is_empty() {
            return None;
        }
        let protocol = self.protocol.clone()?;
        let mut topics = Vec::new();
        for m in self.members.values() {
            let mut meta = m.metadata_for(&protocol);
            if meta.len() < 2 {
                return None;
            }
            let version = i16::from_be_bytes([meta[0], meta[1]]);
            use kafka_protocol::protocol::Decodable;
            let mut body = meta.split_off(2);
            let sub = kafka_protocol::messages::ConsumerProtocolSubscription::decode(
                &mut body,
                version.clamp(0, 3),
            )
            .ok()?;
            topics.extend(sub.topics.iter().map(|t| t.to_string()));
        }
        Some(topics)
    }
}

#[cfg(test)]
mod tests;
