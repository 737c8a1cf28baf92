use super::*;

fn req(member_id: &str, instance: Option<&str>, protocols: &[(&str, &[u8])]) -> JoinRequest {
    JoinRequest {
        member_id: member_id.to_owned(),
        instance_id: instance.map(str::to_owned),
        client_id: "c".into(),
        client_host: "h".into(),
        session_timeout: Duration::from_secs(10),
        rebalance_timeout: Duration::from_secs(30),
        protocol_type: "consumer".into(),
        protocols: protocols
            .iter()
            .map(|(n, m)| (n.to_string(), Bytes::copy_from_slice(m)))
            .collect(),
        require_known_member_id: true,
    }
}

fn now_result<T: std::fmt::Debug>(p: Pending<T>) -> T {
    match p {
        Pending::Now(t) => t,
        Pending::Wait(_) => panic!("expected an immediate answer"),
    }
}

fn waiting<T>(p: Pending<T>) -> oneshot::Receiver<T> {
    match p {
        Pending::Wait(rx) => rx,
        Pending::Now(_) => panic!("expected to wait"),
    }
}

/// Runs the two-step join of a new dynamic member and returns its parked receiver.
fn join_new(g: &mut Group, t: Instant) -> (String, oneshot::Receiver<JoinResult>) {
    let r = now_result(g.join(req("", None, &[("range", b"m")]), t, Duration::ZERO, 100));
    assert_eq!(r.error, E::MemberIdRequired.code());
    let rx = waiting(g.join(
        req(&r.member_id, None, &[("range", b"m")]),
        t,
        Duration::ZERO,
        100,
    ));
    (r.member_id, rx)
}

#[test]
fn two_members_join_sync_and_rebalance_on_leave() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, mut rx_a) = join_new(&mut g, t);
    // a alone completes the first generation immediately (no initial delay here)
    let ja = rx_a.try_recv().unwrap();
    assert_eq!(
        (ja.generation, ja.leader.as_str(), ja.members.len()),
        (1, a.as_str(), 1)
    );
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let sa = waiting(g.sync(
        1,
        &a,
        None,
        None,
        None,
        vec![(a.clone(), Bytes::from_static(b"all"))],
        t,
    ));
    assert_eq!(g.state, GroupState::Stable);
    drop(sa);

    // b joins: a must rejoin (heartbeat says so), then generation 2 completes
    let (b, mut rx_b) = join_new(&mut g, t);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(g.heartbeat(1, &a, None, t), Err(E::RebalanceInProgress));
    assert!(rx_b.try_recv().is_err());
    let mut rx_a = waiting(g.join(req(&a, None, &[("range", b"m")]), t, Duration::ZERO, 100));
    let (ja, jb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
    assert_eq!((ja.generation, jb.generation), (2, 2));
    assert_eq!(ja.members.len(), 2, "leader gets the member list");
    assert!(jb.members.is_empty());
    let mut sb = waiting(g.sync(2, &b, None, None, None, vec![], t));
    let mut sa = waiting(g.sync(
        2,
        &a,
        None,
        None,
        None,
        vec![(a.clone(), "A".into()), (b.clone(), "B".into())],
        t,
    ));
    assert_eq!(sb.try_recv().unwrap().assignment, Bytes::from("B"));
    assert_eq!(sa.try_recv().unwrap().assignment, Bytes::from("A"));
    assert_eq!(g.heartbeat(2, &b, None, t), Ok(()));

    // a leaves: b must rejoin alone into generation 3
    g.leave(&a, None, t).unwrap();
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let mut rx_b = waiting(g.join(req(&b, None, &[("range", b"m")]), t, Duration::ZERO, 100));
    let jb = rx_b.try_recv().unwrap();
    assert_eq!((jb.generation, jb.leader.as_str()), (3, b.as_str()));
    assert_eq!(g.leave(&a, None, t), Err(E::UnknownMemberId));
}

#[test]
fn expired_member_is_removed_and_group_rebalances() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, _rx) = join_new(&mut g, t);
    let _ = g.sync(1, &a, None, None, None, vec![], t);
    let (b, _rxb) = join_new(&mut g, t);
    let _ = g.join(req(&a, None, &[("range", b"m")]), t, Duration::ZERO, 100);
    let _ = g.sync(2, &a, None, None, None, vec![], t);
    let _ = g.sync(2, &b, None, None, None, vec![], t);
    assert_eq!(g.state, GroupState::Stable);
    // b heartbeats, a goes silent past its 10 s session
    let later = t + Duration::from_secs(11);
    g.heartbeat(2, &b, None, t + Duration::from_secs(9))
        .unwrap();
    let expired = g.tick(later);
    assert_eq!(expired.session, vec![a.clone()]);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    assert_eq!(g.heartbeat(2, &a, None, later), Err(E::UnknownMemberId));
}

#[test]
fn rebalance_deadline_drops_members_that_do_not_rejoin() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, _) = join_new(&mut g, t);
    let _ = g.sync(1, &a, None, None, None, vec![], t);
    let (_b, mut rx_b) = join_new(&mut g, t);
    // a never rejoins; after the 30 s rebalance timeout b completes alone
    g.tick(t + Duration::from_secs(5));
    assert!(rx_b.try_recv().is_err());
    g.tick(t + Duration::from_secs(31));
    let jb = rx_b.try_recv().unwrap();
    assert_eq!(jb.generation, 2);
    assert!(!g.members.contains_key(&a));
}

#[test]
fn static_member_rejoins_without_rebalance() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let mut rx = waiting(g.join(
        req("", Some("i1"), &[("range", b"m")]),
        t,
        Duration::ZERO,
        100,
    ));
    let first = rx.try_recv().unwrap();
    let _ = g.sync(
        1,
        &first.member_id,
        Some("i1"),
        None,
        None,
        vec![(first.member_id.clone(), "A".into())],
        t,
    );
    assert_eq!(g.state, GroupState::Stable);
    // restart with an unknown member id: same generation, new id, no rebalance
    let again = now_result(g.join(
        req("", Some("i1"), &[("range", b"m")]),
        t,
        Duration::ZERO,
        100,
    ));
    assert_eq!(again.generation, 1);
    assert_ne!(again.member_id, first.member_id);
    assert!(again.skip_assignment);
    assert_eq!(g.state, GroupState::Stable);
    let s = now_result(g.sync(1, &again.member_id, Some("i1"), None, None, vec![], t));
    assert_eq!(s.assignment, Bytes::from("A"));
    // the old incarnation is fenced
    assert_eq!(
        g.heartbeat(1, &first.member_id, Some("i1"), t),
        Err(E::FencedInstanceId)
    );
    // and so is its JoinGroup, though the group no longer knows its member id
    let zombie = now_result(g.join(
        req(&first.member_id, Some("i1"), &[("range", b"m")]),
        t,
        Duration::ZERO,
        100,
    ));
    assert_eq!(zombie.error, E::FencedInstanceId.code());
    // Real clients' metadata changes across a restart (what they owned, their
    // generation): while the group's protocol stays, still no rebalance.
    let third = now_result(g.join(
        req("", Some("i1"), &[("range", b"owned A, generation 1")]),
        t,
        Duration::ZERO,
        100,
    ));
    assert_eq!((third.generation, g.state), (1, GroupState::Stable));
    // One that now prefers another protocol changes the group's choice: a rebalance.
    let mut rx = waiting(g.join(
        req("", Some("i1"), &[("sticky", b"m"), ("range", b"m")]),
        t,
        Duration::ZERO,
        100,
    ));
    let fourth = rx.try_recv().unwrap();
    assert_eq!(
        (fourth.generation, fourth.protocol_name.as_deref()),
        (2, Some("sticky"))
    );
}

#[test]
fn initial_delay_collects_members() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let delay = Duration::from_secs(3);
    let r = now_result(g.join(req("", None, &[("range", b"m")]), t, delay, 100));
    let mut rx_a = waiting(g.join(req(&r.member_id, None, &[("range", b"m")]), t, delay, 100));
    g.tick(t + Duration::from_secs(1));
    assert!(rx_a.try_recv().is_err(), "waits for the initial delay");
    g.tick(t + Duration::from_secs(4));
    assert_eq!(rx_a.try_recv().unwrap().generation, 1);
}

/// Kafka's `tryCompleteInitialRebalanceElseSchedule`: each member that joins during the
/// initial delay holds the join phase open another delay, so members that start a
/// second apart form one generation; a member still between its two JoinGroups does
/// not hold it; the rebalance timeout bounds it all.
#[test]
fn the_initial_delay_is_extended_by_each_new_member() {
    let t = Instant::now();
    let at = |s: u64| t + Duration::from_secs(s);
    let delay = Duration::from_secs(3);
    let mut g = Group::new("g");
    let join = |g: &mut Group, when: Instant| {
        let r = now_result(g.join(req("", None, &[("range", b"m")]), when, delay, 100));
        waiting(g.join(
            req(&r.member_id, None, &[("range", b"m")]),
            when,
            delay,
            100,
        ))
    };
    let mut rx_a = join(&mut g, at(0));
    let mut rx_b = join(&mut g, at(2));
    g.tick(at(3)); // a's delay ends, but b joined during it: another 3 s
    assert!(rx_a.try_recv().is_err());
    let mut rx_c = join(&mut g, at(5));
    // Only asks for its member id: it does not hold the phase open.
    let pending = now_result(g.join(req("", None, &[("range", b"m")]), at(5), delay, 100));
    assert_eq!(pending.error, E::MemberIdRequired.code());
    g.tick(at(6)); // c joined during the second delay: a third
    assert!(
        rx_a.try_recv().is_err(),
        "everyone known has joined, yet it waits"
    );
    g.tick(at(8));
    assert!(rx_a.try_recv().is_err());
    g.tick(at(9));
    let (ja, jb, jc) = (
        rx_a.try_recv().unwrap(),
        rx_b.try_recv().unwrap(),
        rx_c.try_recv().unwrap(),
    );
    assert_eq!((ja.generation, jb.generation, jc.generation), (1, 1, 1));
    assert_eq!(ja.members.len(), 3, "one generation of three");

    // Members joining every two seconds forever: the 30 s rebalance timeout ends it.
    let mut g = Group::new("h");
    let mut first = join(&mut g, at(0));
    let mut s = 0;
    while first.try_recv().is_err() {
        s += 1;
        assert!(s <= 40, "the rebalance timeout bounds the initial delay");
        if s % 2 == 0 {
            drop(join(&mut g, at(s)));
        }
        g.tick(at(s));
    }
    assert!((27..=33).contains(&s), "completed at {s} s");
}

/// KIP-345: a static member that misses a rebalance (restarting, within its session)
/// keeps its place in the group: the leader, one that rejoined, is given it to assign,
/// and it takes its share back with no further rebalance when it returns in time.
/// (A dynamic member is put out: `rebalance_deadline_drops_members_that_do_not_rejoin`.)
#[test]
fn a_static_member_keeps_its_place_through_a_rebalance_it_misses() {
    let t = Instant::now();
    let at = |s: u64| t + Duration::from_secs(s);
    let static_req = || JoinRequest {
        session_timeout: Duration::from_secs(60),
        ..req("", Some("i1"), &[("range", b"m")])
    };
    let mut g = Group::new("g");
    let mut rx_s = waiting(g.join(static_req(), t, Duration::ZERO, 100));
    let s = rx_s.try_recv().unwrap().member_id;
    let _ = g.sync(
        1,
        &s,
        Some("i1"),
        None,
        None,
        vec![(s.clone(), "P".into())],
        t,
    );
    let (d, _rx_d) = join_new(&mut g, at(1));
    // The static member never rejoins; d does, and the rebalance's deadline passes.
    assert_eq!(g.tick(at(20)), Expired::default());
    g.tick(at(32));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!(g.generation, 2);
    assert!(g.members.contains_key(&s), "static: kept");
    assert_eq!(
        g.leader.as_deref(),
        Some(d.as_str()),
        "the leader is one that rejoined"
    );
    let mut rx = waiting(g.sync(
        2,
        &d,
        None,
        None,
        None,
        vec![(d.clone(), "D".into()), (s.clone(), "S".into())],
        at(33),
    ));
    assert_eq!(rx.try_recv().unwrap().assignment, Bytes::from("D"));
    // Back within its session: its share at once, no rebalance.
    let back = now_result(g.join(static_req(), at(35), Duration::ZERO, 100));
    assert_eq!((back.error, back.generation), (0, 2));
    let r = now_result(g.sync(2, &back.member_id, Some("i1"), None, None, vec![], at(35)));
    assert_eq!(r.assignment, Bytes::from("S"));
    // Its new incarnation synced: past the sync deadline (32 + 30 s) nothing expires.
    for s in [40, 50, 60] {
        assert_eq!(g.heartbeat(2, &d, None, at(s)), Ok(()));
    }
    assert_eq!(g.tick(at(63)), Expired::default());
    assert_eq!(g.state, GroupState::Stable);
}

/// Kafka's pending-sync expiry: members that do not send their SyncGroup within the
/// rebalance timeout are put out and the group rebalances, rather than sitting in
/// CompletingRebalance for good behind a leader that never assigns.
#[test]
fn members_that_never_sync_are_put_out() {
    let t = Instant::now();
    let at = |s: u64| t + Duration::from_secs(s);
    let mut g = Group::new("g");
    let (a, mut rx_a) = join_new(&mut g, t);
    let leader = rx_a.try_recv().unwrap();
    assert_eq!(leader.leader, a);
    // The leader heartbeats but never syncs.
    for s in (3..30).step_by(3) {
        assert_eq!(g.heartbeat(1, &a, None, at(s)), Ok(()));
        assert_eq!(g.tick(at(s)), Expired::default());
    }
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let expired = g.tick(at(31));
    assert_eq!(expired.sync, vec![a.clone()]);
    assert_eq!(g.state, GroupState::Empty);
}

/// A follower parked on SyncGroup longer than its session is not expired right after
/// the leader's assignment answers it: its session starts again then, as Kafka's
/// `propagateAssignment` restarts it.
#[test]
fn the_assignment_restarts_each_session() {
    let t = Instant::now();
    let at = |s: u64| t + Duration::from_secs(s);
    let mut g = Group::new("g");
    let (a, _) = join_new(&mut g, t);
    let _ = g.sync(1, &a, None, None, None, vec![], t);
    let (b, _rx_b) = join_new(&mut g, t);
    let _rx_a = waiting(g.join(req(&a, None, &[("range", b"m")]), t, Duration::ZERO, 100));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    let mut rx_b = waiting(g.sync(2, &b, None, None, None, vec![], t));
    // The leader takes 25 s to assign (b's session is 10 s).
    let _ = g.sync(2, &a, None, None, None, vec![], at(25));
    assert!(rx_b.try_recv().is_ok());
    assert_eq!(g.tick(at(26)), Expired::default());
    assert!(g.members.contains_key(&b));
}

#[test]
fn protocol_checks() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, _) = join_new(&mut g, t);
    let r = now_result(g.join(
        req("", None, &[("roundrobin", b"m")]),
        t,
        Duration::ZERO,
        100,
    ));
    assert_eq!(r.error, E::InconsistentGroupProtocol.code());
    assert!(
        matches!(g.sync(7, &a, None, None, None, vec![], t), Pending::Now(SyncResult { error, .. }) if error == E::IllegalGeneration.code())
    );
    assert!(
        matches!(g.sync(1, "nobody", None, None, None, vec![], t), Pending::Now(SyncResult { error, .. }) if error == E::UnknownMemberId.code())
    );
    let mut g2 = Group::new("g2");
    let r = now_result(g2.join(req("", None, &[("range", b"m")]), t, Duration::ZERO, 0));
    assert_eq!(r.error, E::GroupMaxSizeReached.code());
}

#[test]
fn commits_allowed_while_preparing_but_not_completing() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, _) = join_new(&mut g, t);
    assert_eq!(g.state, GroupState::CompletingRebalance);
    assert_eq!(g.check_commit(1, &a, None, t), Err(E::RebalanceInProgress));
    let _ = g.sync(1, &a, None, None, None, vec![], t);
    assert_eq!(g.check_commit(1, &a, None, t), Ok(()));
    let (_b, _) = join_new(&mut g, t);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    // a commits from its revocation callback before rejoining
    assert_eq!(g.check_commit(1, &a, None, t), Ok(()));
    assert_eq!(g.check_commit(0, &a, None, t), Err(E::IllegalGeneration));
    assert_eq!(g.check_commit(-1, "", None, t), Err(E::UnknownMemberId));
}

#[test]
fn a_commit_keeps_its_members_session_alive() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, _) = join_new(&mut g, t);
    let _ = g.sync(1, &a, None, None, None, vec![], t);
    assert_eq!(g.state, GroupState::Stable);
    let later = t + Duration::from_secs(20);
    assert_eq!(g.check_commit(1, &a, None, later), Ok(()));
    assert_eq!(g.members[&a].last_heartbeat, later);
    // Without members, a commit of generation -1 is a standalone one, whatever ids
    // it carries (Kafka's validateOffsetCommit).
    let mut empty = Group::new("e");
    assert_eq!(empty.check_commit(-1, "someone", None, t), Ok(()));
}

#[test]
fn protocol_choice_follows_member_preference() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let r = now_result(g.join(
        req("", None, &[("range", b"a"), ("roundrobin", b"b")]),
        t,
        Duration::ZERO,
        100,
    ));
    let mut rx = waiting(g.join(
        req(&r.member_id, None, &[("range", b"a"), ("roundrobin", b"b")]),
        t,
        Duration::ZERO,
        100,
    ));
    let j = rx.try_recv().unwrap();
    assert_eq!(j.protocol_name.as_deref(), Some("range"));
    assert_eq!(j.members[0].metadata, Bytes::from_static(b"a"));
}

#[test]
fn leader_asking_again_before_sync_gets_the_members() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, mut rx_a) = join_new(&mut g, t);
    assert_eq!(rx_a.try_recv().unwrap().members.len(), 1);
    let (b, mut rx_b) = join_new(&mut g, t);
    let mut rx_a = waiting(g.join(req(&a, None, &[("range", b"m")]), t, Duration::ZERO, 100));
    let (ja, jb) = (rx_a.try_recv().unwrap(), rx_b.try_recv().unwrap());
    assert_eq!((ja.generation, ja.members.len()), (2, 2));
    assert_eq!(g.state, GroupState::CompletingRebalance);
    // The leader's answer was lost: it asks again with the same metadata.
    let again = now_result(g.join(req(&a, None, &[("range", b"m")]), t, Duration::ZERO, 100));
    assert_eq!((again.generation, again.leader.as_str()), (2, a.as_str()));
    let mut ids: Vec<_> = again.members.iter().map(|m| m.member_id.clone()).collect();
    ids.sort();
    let mut want = vec![a.clone(), b.clone()];
    want.sort();
    assert_eq!(ids, want, "the leader gets every member to assign");
    // A follower asking again gets no member list.
    let again = now_result(g.join(req(&b, None, &[("range", b"m")]), t, Duration::ZERO, 100));
    assert_eq!((again.generation, again.members.len()), (2, 0));
    assert_eq!(jb.generation, 2);
}

/// A group written when its rebalance completed comes back Stable, with its members,
/// generation, leader and assignments, each member with a fresh session: they carry on
/// heartbeating without a rebalance. One that empties is written again, and comes back
/// Empty with its generation and since when it was empty.
#[test]
fn a_stored_group_comes_back_as_it_was_written() {
    let t = Instant::now();
    let mut g = Group::new("g");
    let (a, mut rx_a) = join_new(&mut g, t);
    rx_a.try_recv().unwrap();
    assert!(!g.is_changed(), "a join alone is not written");
    let mut sa = waiting(g.sync(
        1,
        &a,
        None,
        None,
        None,
        vec![(a.clone(), Bytes::from_static(b"p0"))],
        t,
    ));
    sa.try_recv().unwrap();
    assert!(g.is_changed(), "the completed rebalance is written");
    g.mark_stored();
    let stored = g.to_stored(1_000);

    let later = t + Duration::from_secs(60);
    let mut back = Group::from_stored("g", &stored, later, 61_000);
    assert_eq!(back.state, GroupState::Stable);
    assert_eq!(
        (back.generation, back.leader.as_deref()),
        (1, Some(a.as_str()))
    );
    assert_eq!(back.protocol.as_deref(), Some("range"));
    assert_eq!(back.members[&a].assignment, Bytes::from_static(b"p0"));
    assert_eq!(back.subscribed_topics(), g.subscribed_topics());
    assert_eq!(back.heartbeat(1, &a, None, later), Ok(()), "no rebalance");
    assert_eq!(
        back.heartbeat(0, &a, None, later),
        Err(E::IllegalGeneration)
    );
    let r = now_result(back.sync(1, &a, None, None, None, vec![], later));
    assert_eq!(r.assignment, Bytes::from_static(b"p0"));
    assert!(
        back.tick(later + Duration::from_secs(5)) == Expired::default(),
        "a fresh session"
    );
    assert!(!back.is_changed());

    // Its member gone, the group empties: written, and loaded Empty.
    assert_eq!(
        back.tick(later + Duration::from_secs(11)).session,
        vec![a.clone()]
    );
    assert_eq!(back.state, GroupState::Empty);
    assert!(back.is_changed());
    let empty = back.to_stored(72_000);
    let at = later + Duration::from_secs(20);
    let again = Group::from_stored("g", &empty, at, 80_000);
    assert_eq!(again.state, GroupState::Empty);
    assert_eq!(again.generation, 2);
    assert_eq!(again.protocol_type.as_deref(), Some("consumer"));
    assert_eq!(again.empty_since, Some(at - Duration::from_secs(8)));
    assert!(again.is_idle());
}

/// A group loaded over `group.max.size` rebalances; once as many members as it may hold
/// have rejoined, any other join is refused with GROUP_MAX_SIZE_REACHED (a restarted
/// static member's too) and a member that was in the group is put out, as Kafka's
/// `acceptJoiningMember` does.
#[test]
fn a_group_over_its_max_size_shrinks_at_its_next_rebalance() {
    use crate::group::offsets::{StoredGroup, StoredMember};
    let t = Instant::now();
    let member = |id: &str, instance: Option<&str>| StoredMember {
        id: id.into(),
        instance_id: instance.map(str::to_owned),
        client_id: "c".into(),
        client_host: "h".into(),
        session_timeout_ms: 10_000,
        rebalance_timeout_ms: 30_000,
        subscription: b"m".to_vec(),
        assignment: vec![],
    };
    let stored = StoredGroup {
        protocol_type: Some("consumer".into()),
        protocol: Some("range".into()),
        generation: 4,
        leader: Some("a".into()),
        timestamp_ms: 0,
        members: vec![
            member("a", None),
            member("b", None),
            member("s", Some("inst")),
        ],
    };
    let mut g = Group::from_stored("g", &stored, t, 1_000);
    g.rebalance_if_over(3, t);
    assert_eq!(g.state, GroupState::Stable, "within the limit");
    g.rebalance_if_over(1, t);
    assert_eq!(g.state, GroupState::PreparingRebalance);
    let refused = (E::GroupMaxSizeReached.code(), String::new());
    let mut rx_a = waiting(g.join(req("a", None, &[("range", b"m")]), t, Duration::ZERO, 1));
    let s = now_result(g.join(
        req("", Some("inst"), &[("range", b"m")]),
        t,
        Duration::ZERO,
        1,
    ));
    assert_eq!((s.error, s.member_id), refused, "a restarted static member");
    let b = now_result(g.join(req("b", None, &[("range", b"m")]), t, Duration::ZERO, 1));
    assert_eq!((b.error, b.member_id), refused);
    assert!(!g.members.contains_key("b"), "put out");
    // The static member never rejoined, and its 10 s session ran out before the
    // rebalance's deadline.
    let expired = g.tick(t + Duration::from_secs(31));
    assert_eq!(expired.session, vec!["s".to_owned()]);
    let a = rx_a
        .try_recv()
        .expect("the rebalance completed with a alone");
    assert_eq!((a.error, a.generation, a.members.len()), (0, 5, 1));
    assert_eq!(g.members.keys().collect::<Vec<_>>(), vec!["a"]);
}
