//! Election unit tests: the predicate, the quorum, and one test per handled input.

use super::*;

const T0: i64 = 1_000;

fn cfg(voters: &[ServerId], observers: &[ServerId]) -> ElectionConfig {
    ElectionConfig::majority(
        voters.iter().copied(),
        observers.iter().copied(),
        2000,
        10,
        5,
    )
}

fn vote(leader: ServerId, zxid: Zxid, peer_epoch: u64) -> Vote {
    Vote {
        leader,
        zxid,
        peer_epoch,
    }
}

fn note(state: PeerState, sender: ServerId, v: Vote, election_epoch: u64) -> Notification {
    Notification {
        state,
        leader: v.leader,
        zxid: v.zxid,
        election_epoch,
        peer_epoch: v.peer_epoch,
        sender,
        config_version: 0,
        config: Bytes::new(),
    }
}

fn looking(sender: ServerId, v: Vote, round: u64) -> Notification {
    note(PeerState::Looking, sender, v, round)
}

fn drain(e: &mut Election) -> Vec<Action> {
    std::iter::from_fn(|| e.poll_action()).collect()
}

fn broadcasts(actions: &[Action]) -> Vec<Notification> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Broadcast { notification } => Some(notification.clone()),
            _ => None,
        })
        .collect()
}

fn decided(actions: &[Action]) -> Option<Decision> {
    actions.iter().find_map(|a| match a {
        Action::Decided(d) => Some(*d),
        _ => None,
    })
}

/// Server 1 of voters 1..=3 plus observer 4, with zxid 0x10 in epoch 1.
fn three_voters() -> Election {
    let mut e = Election::new(cfg(&[1, 2, 3], &[4]), 1, vote(1, 0x10, 1), T0);
    drain(&mut e);
    e
}

#[test]
fn predicate_orders_epoch_then_zxid_then_id() {
    let e = three_voters();
    assert!(e.is_better(vote(2, 0, 2), vote(3, 99, 1)), "epoch first");
    assert!(!e.is_better(vote(3, 99, 1), vote(2, 0, 2)));
    assert!(e.is_better(vote(2, 11, 1), vote(3, 10, 1)), "then zxid");
    assert!(e.is_better(vote(3, 10, 1), vote(2, 10, 1)), "then id");
    assert!(!e.is_better(vote(2, 10, 1), vote(2, 10, 1)), "strict");
    assert!(
        !e.is_better(vote(4, 99, 9), vote(1, 0, 0)),
        "an observer never wins"
    );
    assert!(
        !e.is_better(vote(9, 99, 9), vote(1, 0, 0)),
        "nor a stranger"
    );
    assert!(
        e.is_better(vote(1, 0, 0), Vote::NONE),
        "any voter beats no vote"
    );
}

#[test]
fn majority_quorum_counts_voters_only() {
    let q = MajorityQuorum::new([1, 2, 3, 4]);
    let set = |ids: &[ServerId]| ids.iter().copied().collect::<BTreeSet<_>>();
    assert!(!q.contains_quorum(&set(&[1, 2])));
    assert!(q.contains_quorum(&set(&[1, 2, 3])));
    assert!(
        !q.contains_quorum(&set(&[1, 2, 5, 6])),
        "strangers do not count"
    );
    let q3 = MajorityQuorum::new([1, 2, 3]);
    assert!(q3.contains_quorum(&set(&[2, 3])));
    assert!(!q3.contains_quorum(&set(&[3])));
    assert_eq!(q3.weight(4), 0);
}

/// ZooKeeper's `QuorumHierarchical` semantics: per group, more than half of its weight;
/// over groups, more than half of those weighing anything.
#[test]
fn hierarchical_quorum_needs_a_majority_of_groups_each_by_weight() {
    let set = |ids: &[ServerId]| ids.iter().copied().collect::<BTreeSet<_>>();
    // Three groups of three, equal weights: two servers in each of two groups.
    let nine = HierarchicalQuorum::new(
        &[(1, vec![1, 2, 3]), (2, vec![4, 5, 6]), (3, vec![7, 8, 9])],
        &BTreeMap::new(),
    );
    assert!(nine.contains_quorum(&set(&[1, 2, 4, 5])));
    assert!(
        !nine.contains_quorum(&set(&[1, 2, 3, 4, 7])),
        "one group only"
    );
    assert!(!nine.contains_quorum(&set(&[1, 4, 7, 8])), "one group only");
    assert!(nine.contains_quorum(&set(&[1, 2, 4, 5, 7])));
    assert!(!nine.contains_quorum(&set(&[])));
    assert!(
        !nine.contains_quorum(&set(&[10, 11, 12])),
        "strangers do not count"
    );
    assert_eq!((nine.weight(5), nine.weight(10)), (1, 0));
    // Weights: 1 weighs 3 of a group of 5; 2 and 3 together are not more than half.
    let weights = BTreeMap::from([(1, 3), (2, 1), (3, 1)]);
    let weighted = HierarchicalQuorum::new(&[(1, vec![1, 2, 3])], &weights);
    assert!(weighted.contains_quorum(&set(&[1])));
    assert!(!weighted.contains_quorum(&set(&[2, 3])));
    assert_eq!(weighted.weight(1), 3);
    // Two groups: both need their majority (more than 2 / 2 = 1 group).
    let two = HierarchicalQuorum::new(&[(1, vec![1, 2]), (2, vec![3])], &BTreeMap::new());
    assert!(!two.contains_quorum(&set(&[1, 2])));
    assert!(two.contains_quorum(&set(&[1, 2, 3])));
}

#[test]
fn new_round_broadcasts_own_vote() {
    let mut e = Election::new(cfg(&[1, 2, 3], &[4]), 2, vote(2, 0x5, 1), T0);
    let actions = drain(&mut e);
    assert_eq!(
        broadcasts(&actions),
        vec![looking(2, vote(2, 0x5, 1), 1)],
        "{actions:?}"
    );
    assert_eq!(e.state(), PeerState::Looking);
    assert_eq!(e.logical_clock(), 1);
    assert_eq!(e.poll_timeout(), Some(T0 + NOTIFICATION_INTERVAL_MIN_MS));
}

#[test]
fn single_voter_decides_after_finalize_wait() {
    let mut e = Election::new(cfg(&[1], &[]), 1, vote(1, 7, 0), T0);
    drain(&mut e);
    assert_eq!(e.poll_timeout(), Some(T0 + FINALIZE_WAIT_MS));
    e.tick(T0 + FINALIZE_WAIT_MS - 1);
    assert!(drain(&mut e).is_empty());
    e.tick(T0 + FINALIZE_WAIT_MS);
    let d = decided(&drain(&mut e)).expect("decided");
    assert_eq!(d.vote, vote(1, 7, 0));
    assert_eq!(d.role, ElectedRole::Leading);
    assert_eq!(d.election_epoch, 1);
    assert_eq!(d.establish_by_ms, T0 + FINALIZE_WAIT_MS + 20_000);
    assert_eq!(e.state(), PeerState::Leading);
    assert_eq!(e.poll_timeout(), None);
}

#[test]
fn handle_better_looking_vote_adopts_and_decides_with_a_quorum() {
    let mut e = three_voters();
    e.handle(T0 + 5, 3, &looking(3, vote(3, 0x10, 1), 1));
    let actions = drain(&mut e);
    assert_eq!(broadcasts(&actions), vec![looking(1, vote(3, 0x10, 1), 1)]);
    assert_eq!(e.proposal(), vote(3, 0x10, 1));
    // {1, 3} hold vote 3 in round 1: a quorum of three, so the finalize wait runs.
    assert_eq!(e.poll_timeout(), Some(T0 + 5 + FINALIZE_WAIT_MS));
    e.tick(T0 + 5 + FINALIZE_WAIT_MS);
    let d = decided(&drain(&mut e)).expect("decided");
    assert_eq!((d.vote.leader, d.role), (3, ElectedRole::Following));
}

#[test]
fn handle_worse_looking_vote_keeps_ours() {
    let mut e = three_voters();
    e.handle(T0 + 5, 2, &looking(2, vote(2, 0x0f, 1), 1));
    assert_eq!(
        drain(&mut e),
        vec![Action::Send {
            to: 2,
            notification: looking(1, vote(1, 0x10, 1), 1)
        }],
        "its sender is told our better vote"
    );
    assert_eq!(e.proposal(), vote(1, 0x10, 1));
    // An equal vote is not answered.
    e.handle(T0 + 5, 3, &looking(3, vote(1, 0x10, 1), 1));
    assert!(drain(&mut e).is_empty(), "agrees: nothing to say");
    // {1, 3} hold our vote: quorum.
    assert_eq!(e.poll_timeout(), Some(T0 + 5 + FINALIZE_WAIT_MS));
    e.tick(T0 + 5 + FINALIZE_WAIT_MS);
    let d = decided(&drain(&mut e)).expect("decided");
    assert_eq!((d.vote.leader, d.role), (1, ElectedRole::Leading));
}

#[test]
fn handle_during_finalize_better_vote_reopens_the_round() {
    let mut e = three_voters();
    e.handle(T0, 2, &looking(2, vote(1, 0x10, 1), 1));
    assert!(e.poll_timeout() == Some(T0 + FINALIZE_WAIT_MS));
    // A better vote (server 3 has a newer zxid) arrives inside the wait.
    e.handle(T0 + 100, 3, &looking(3, vote(3, 0x11, 1), 1));
    let actions = drain(&mut e);
    assert_eq!(broadcasts(&actions), vec![looking(1, vote(3, 0x11, 1), 1)]);
    // {1, 3} hold vote 3: a new finalize wait from now.
    assert_eq!(e.poll_timeout(), Some(T0 + 100 + FINALIZE_WAIT_MS));
    e.tick(T0 + FINALIZE_WAIT_MS);
    assert!(decided(&drain(&mut e)).is_none(), "the old wait is gone");
    e.tick(T0 + 100 + FINALIZE_WAIT_MS);
    assert_eq!(decided(&drain(&mut e)).expect("decided").vote.leader, 3);
}

#[test]
fn handle_during_finalize_other_vote_is_dropped_and_extends_the_wait() {
    let mut e = three_voters();
    e.handle(T0, 2, &looking(2, vote(1, 0x10, 1), 1));
    e.handle(T0 + 150, 3, &looking(3, vote(3, 0x01, 1), 1));
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.poll_timeout(), Some(T0 + 150 + FINALIZE_WAIT_MS));
    e.tick(T0 + 150 + FINALIZE_WAIT_MS);
    assert_eq!(decided(&drain(&mut e)).expect("decided").vote.leader, 1);
}

#[test]
fn handle_during_finalize_an_established_quorum_is_joined_at_once() {
    let mut e = three_voters();
    e.handle(T0, 2, &looking(2, vote(1, 0x10, 1), 1));
    assert_eq!(e.poll_timeout(), Some(T0 + FINALIZE_WAIT_MS));
    // Servers 2 and 3 already formed an ensemble under 2 in a later round of theirs, on a
    // vote no better than ours.
    let v2 = vote(2, 0x01, 1);
    e.handle(T0 + 10, 3, &note(PeerState::Following, 3, v2, 5));
    assert!(
        decided(&drain(&mut e)).is_none(),
        "one follower is no quorum"
    );
    assert_eq!(
        e.poll_timeout(),
        Some(T0 + FINALIZE_WAIT_MS),
        "a worse vote leaves the wait as it was"
    );
    e.handle(T0 + 11, 2, &note(PeerState::Leading, 2, v2, 5));
    let d = decided(&drain(&mut e)).expect("joined");
    assert_eq!(
        (d.vote, d.role, d.election_epoch),
        (v2, ElectedRole::Following, 5)
    );
}

#[test]
fn handle_during_finalize_a_worse_established_vote_leaves_the_wait() {
    let mut e = three_voters();
    e.handle(T0, 2, &looking(2, vote(1, 0x10, 1), 1));
    // Server 3 says it follows 2 (a worse vote), 2 does not lead: {1, 2} still hold ours.
    e.handle(
        T0 + 10,
        3,
        &note(PeerState::Following, 3, vote(2, 0x01, 1), 1),
    );
    assert!(decided(&drain(&mut e)).is_none());
    assert_eq!(
        e.poll_timeout(),
        Some(T0 + FINALIZE_WAIT_MS),
        "the wait goes on"
    );
    // Server 2 now says it follows 2 as well: our quorum is gone, so is the wait.
    e.handle(
        T0 + 20,
        2,
        &note(PeerState::Following, 2, vote(2, 0x01, 1), 1),
    );
    assert!(decided(&drain(&mut e)).is_none(), "2 never said it leads");
    assert_ne!(e.poll_timeout(), Some(T0 + FINALIZE_WAIT_MS));
    e.tick(T0 + FINALIZE_WAIT_MS);
    assert!(
        decided(&drain(&mut e)).is_none(),
        "no decision without a quorum"
    );
}

/// A leader's crash: server 2 starts looking first and its vote reaches server 1 while 1
/// still follows the dead leader 3, so 1 answers with its old decision; then 1 looks too and
/// broadcasts its own (worse) vote. Server 2 answers that vote with its own, so both agree
/// within one finalize wait instead of waiting for a resend.
#[test]
fn a_vote_spent_on_a_server_still_following_is_told_again() {
    let members = cfg(&[1, 2, 3], &[4]);
    let mut s1 = Election::new(members.clone(), 1, vote(1, 0x10, 1), T0);
    let mut s2 = Election::new(members, 2, vote(2, 0x10, 1), T0);
    // Both follow 3 in round 1.
    let v3 = vote(3, 0x10, 1);
    for e in [&mut s1, &mut s2] {
        e.handle(T0, 3, &note(PeerState::Leading, 3, v3, 1));
        let other = if e.my_id() == 1 { 2 } else { 1 };
        e.handle(T0, other, &note(PeerState::Following, other, v3, 1));
        assert_eq!(e.state(), PeerState::Following);
        drain(e);
    }
    let t = T0 + 10_000;
    s2.start_looking(t, vote(2, 0x10, 1));
    let from_2 = broadcasts(&drain(&mut s2));
    s1.handle(t, 2, &from_2[0]);
    let answer_1 = drain(&mut s1);
    assert!(
        matches!(&answer_1[..], [Action::Send { to: 2, notification }] if notification.state == PeerState::Following)
    );
    s2.handle(t, 1, &note(PeerState::Following, 1, v3, 1));
    assert!(drain(&mut s2).is_empty());
    // Server 1 looks now and says so.
    s1.start_looking(t + 1, vote(1, 0x10, 1));
    let from_1 = broadcasts(&drain(&mut s1));
    s2.handle(t + 1, 1, &from_1[0]);
    let reply = drain(&mut s2);
    let [Action::Send {
        to: 1,
        notification,
    }] = &reply[..]
    else {
        panic!("server 2 answers the worse vote: {reply:?}");
    };
    s1.handle(t + 1, 2, notification);
    let adopted = broadcasts(&drain(&mut s1));
    assert_eq!(adopted, vec![looking(1, vote(2, 0x10, 1), 2)]);
    s2.handle(t + 1, 1, &adopted[0]);
    assert_eq!(s1.poll_timeout(), Some(t + 1 + FINALIZE_WAIT_MS));
    assert_eq!(s2.poll_timeout(), Some(t + 1 + FINALIZE_WAIT_MS));
    s1.tick(t + 1 + FINALIZE_WAIT_MS);
    s2.tick(t + 1 + FINALIZE_WAIT_MS);
    assert_eq!(
        decided(&drain(&mut s1)).expect("1 decided").role,
        ElectedRole::Following
    );
    assert_eq!(
        decided(&drain(&mut s2)).expect("2 decided").role,
        ElectedRole::Leading
    );
}

#[test]
fn observers_that_asked_while_we_looked_hear_the_decision() {
    let mut e = three_voters();
    e.handle(T0, 4, &looking(4, Vote::NONE, 1));
    drain(&mut e);
    e.handle(T0 + 1, 2, &looking(2, vote(1, 0x10, 1), 1));
    e.tick(T0 + 1 + FINALIZE_WAIT_MS);
    let actions = drain(&mut e);
    assert!(
        actions.contains(&Action::Send {
            to: 4,
            notification: note(PeerState::Leading, 1, vote(1, 0x10, 1), 1)
        }),
        "{actions:?}"
    );
    assert!(decided(&actions).is_some());
    // Told once: a later round's decision goes only to those that asked in it.
    e.start_looking(T0 + 1000, vote(1, 0x10, 1));
    e.handle(T0 + 1001, 2, &looking(2, vote(1, 0x10, 1), 2));
    e.tick(T0 + 1001 + FINALIZE_WAIT_MS);
    let again = drain(&mut e);
    assert!(decided(&again).is_some());
    assert!(
        !again
            .iter()
            .any(|a| matches!(a, Action::Send { to: 4, .. })),
        "{again:?}"
    );
}

#[test]
fn handle_higher_round_adopts_it_and_votes_the_best_of_own_and_heard() {
    let mut e = three_voters();
    // Round 5 from server 2, whose vote is worse than ours: we join round 5 with our own.
    e.handle(T0, 2, &looking(2, vote(2, 0x01, 1), 5));
    assert_eq!(e.logical_clock(), 5);
    assert_eq!(
        broadcasts(&drain(&mut e)),
        vec![looking(1, vote(1, 0x10, 1), 5)]
    );
    // Round 6 from server 3 with a better vote: adopt both.
    e.handle(T0 + 1, 3, &looking(3, vote(3, 0x20, 1), 6));
    assert_eq!(e.logical_clock(), 6);
    assert_eq!(e.proposal(), vote(3, 0x20, 1));
    // Votes of round 5 were forgotten: server 2's vote does not count towards round 6.
    assert_eq!(e.round_votes.len(), 2);
}

#[test]
fn handle_lower_round_answers_with_ours() {
    let mut e = three_voters();
    e.handle(T0, 2, &looking(2, vote(2, 0x01, 1), 3));
    drain(&mut e);
    e.handle(T0 + 1, 3, &looking(3, vote(3, 0x99, 1), 2));
    let actions = drain(&mut e);
    assert_eq!(
        actions,
        vec![Action::Send {
            to: 3,
            notification: looking(1, vote(1, 0x10, 1), 3)
        }]
    );
    assert_eq!(
        e.proposal(),
        vote(1, 0x10, 1),
        "an old round's vote is not adopted"
    );
}

#[test]
fn handle_established_ensemble_is_joined_when_a_quorum_follows_a_leading_leader() {
    let mut e = three_voters();
    let v2 = vote(2, 0x30, 2);
    e.handle(T0, 3, &note(PeerState::Following, 3, v2, 9));
    assert_eq!(
        e.state(),
        PeerState::Looking,
        "the leader has not said it leads"
    );
    e.handle(T0 + 1, 2, &note(PeerState::Leading, 2, v2, 9));
    let d = decided(&drain(&mut e)).expect("joined");
    assert_eq!(d.vote, v2);
    assert_eq!(d.role, ElectedRole::Following);
    assert_eq!(d.election_epoch, 9);
    assert_eq!(e.logical_clock(), 9, "the round is the ensemble's");
}

#[test]
fn handle_established_without_the_leader_waits() {
    // Five voters: 2 and 3 follow 5, which never says it leads (it crashed).
    let mut e = Election::new(cfg(&[1, 2, 3, 4, 5], &[]), 1, vote(1, 0, 0), T0);
    drain(&mut e);
    let v5 = vote(5, 0x30, 2);
    e.handle(T0, 2, &note(PeerState::Following, 2, v5, 4));
    e.handle(T0, 3, &note(PeerState::Following, 3, v5, 4));
    e.handle(T0, 4, &note(PeerState::Following, 4, v5, 4));
    assert_eq!(e.state(), PeerState::Looking);
    assert!(decided(&drain(&mut e)).is_none());
}

#[test]
fn handle_established_in_our_round_counts_our_own_vote() {
    let mut e = three_voters();
    // Server 3 announced vote 3 in round 1; we adopted it.
    e.handle(T0, 3, &looking(3, vote(3, 0x20, 1), 1));
    drain(&mut e);
    // Before our finalize wait ends, 3 says it leads in round 1: {1 (looking, same vote),
    // 3 (leading)} agree, and the leader leads.
    e.handle(
        T0 + 10,
        3,
        &note(PeerState::Leading, 3, vote(3, 0x20, 1), 1),
    );
    // During the finalize wait too, an established quorum is joined at once.
    assert_eq!(decided(&drain(&mut e)).expect("decided").vote.leader, 3);
}

#[test]
fn decided_server_answers_looking_voters_only() {
    let mut e3 = Election::new(cfg(&[1, 2, 3], &[]), 1, vote(1, 7, 3), T0);
    e3.handle(T0, 2, &looking(2, vote(1, 7, 3), 1));
    e3.tick(T0 + FINALIZE_WAIT_MS);
    drain(&mut e3);
    assert_eq!(e3.state(), PeerState::Leading);
    e3.handle(T0 + 300, 3, &looking(3, vote(3, 1, 1), 4));
    assert_eq!(
        drain(&mut e3),
        vec![Action::Send {
            to: 3,
            notification: note(PeerState::Leading, 1, vote(1, 7, 3), 1)
        }]
    );
    e3.handle(
        T0 + 301,
        2,
        &note(PeerState::Following, 2, vote(1, 7, 3), 1),
    );
    assert!(drain(&mut e3).is_empty());
}

#[test]
fn observers_are_answered_at_once_and_never_counted() {
    let mut e = three_voters();
    let obs = looking(4, Vote::NONE, 1);
    e.handle(T0, 4, &obs);
    assert_eq!(
        drain(&mut e),
        vec![Action::Send {
            to: 4,
            notification: looking(1, vote(1, 0x10, 1), 1)
        }]
    );
    // Observer 4 "voting" for us, even with a LEADING claim, adds nothing.
    e.handle(T0, 4, &note(PeerState::Following, 4, vote(1, 0x10, 1), 1));
    assert_eq!(e.state(), PeerState::Looking);
    assert!(!e.round_votes.contains_key(&4));
    // A vote proposing the observer is ignored.
    e.handle(T0, 2, &looking(2, vote(4, 0x99, 9), 1));
    assert_eq!(e.proposal(), vote(1, 0x10, 1));
    assert!(!e.round_votes.contains_key(&2));
}

#[test]
fn observer_learns_the_leader_and_observes() {
    let mut o = Election::new(cfg(&[1, 2, 3], &[4]), 4, vote(4, 0x99, 9), T0);
    let first = drain(&mut o);
    // Its vote is nobody, whatever it was given.
    assert_eq!(broadcasts(&first), vec![looking(4, Vote::NONE, 1)]);
    assert!(!o.is_voter());
    let v3 = vote(3, 0x20, 1);
    o.handle(T0 + 1, 3, &note(PeerState::Leading, 3, v3, 2));
    o.handle(T0 + 2, 1, &note(PeerState::Following, 1, v3, 2));
    let d = decided(&drain(&mut o)).expect("learned");
    assert_eq!((d.vote, d.role), (v3, ElectedRole::Observing));
    assert_eq!(o.state(), PeerState::Observing);
}

#[test]
fn observer_can_decide_from_a_quorum_of_looking_voters() {
    let mut o = Election::new(cfg(&[1, 2, 3], &[4]), 4, Vote::NONE, T0);
    drain(&mut o);
    let v2 = vote(2, 5, 1);
    o.handle(T0, 1, &looking(1, v2, 1));
    assert_eq!(o.proposal(), v2);
    o.handle(T0 + 1, 2, &looking(2, v2, 1));
    o.tick(T0 + 1 + FINALIZE_WAIT_MS);
    let d = decided(&drain(&mut o)).expect("decided");
    assert_eq!((d.vote.leader, d.role), (2, ElectedRole::Observing));
}

#[test]
fn quiet_intervals_resend_with_exponential_backoff_and_a_cap() {
    let mut e = three_voters();
    let mut now = T0;
    let mut gaps = Vec::new();
    for _ in 0..12 {
        let at = e.poll_timeout().expect("looking");
        gaps.push(at - now);
        now = at;
        e.tick(now);
        assert_eq!(broadcasts(&drain(&mut e)).len(), 1, "resent at {now}");
    }
    assert_eq!(
        gaps,
        vec![200, 400, 800, 1600, 3200, 6400, 12800, 25600, 51200, 60000, 60000, 60000]
    );
    // Hearing from a voter restarts the quiet interval (without resetting the backoff).
    e.handle(now + 10, 2, &looking(2, vote(2, 0, 0), 1));
    assert_eq!(drain(&mut e).len(), 1, "a worse vote is answered");
    assert_eq!(e.poll_timeout(), Some(now + 10 + 60_000));
    // Early ticks do nothing.
    e.tick(now + 11);
    assert!(drain(&mut e).is_empty());
}

#[test]
fn start_looking_bumps_the_round_and_forgets() {
    let mut e = Election::new(cfg(&[1], &[]), 1, vote(1, 7, 3), T0);
    e.tick(T0 + FINALIZE_WAIT_MS);
    drain(&mut e);
    e.start_looking(T0 + 5000, vote(1, 8, 4));
    assert_eq!(e.logical_clock(), 2);
    assert_eq!(e.state(), PeerState::Looking);
    assert_eq!(
        broadcasts(&drain(&mut e)),
        vec![looking(1, vote(1, 8, 4), 2)]
    );
}

#[test]
fn wrong_sender_is_ignored() {
    let mut e = three_voters();
    e.handle(T0, 2, &looking(3, vote(3, 0x99, 9), 1));
    e.handle(T0, 1, &looking(1, vote(3, 0x99, 9), 1));
    assert!(drain(&mut e).is_empty());
    assert_eq!(e.proposal(), vote(1, 0x10, 1));
}

#[test]
fn config_from_membership() {
    use crate::config::{GroupSpec, Host, ServerSpec};
    let server = |id, role| ServerSpec {
        id,
        host: Host::Name("h".into()),
        quorum_port: 1,
        election_port: 2,
        role,
        client_address: None,
        extra_addresses: Vec::new(),
    };
    let mut m = Membership {
        servers: vec![
            server(1, Role::Participant),
            server(2, Role::Participant),
            server(3, Role::Participant),
            server(4, Role::Observer),
        ],
        version: 0x1_0000_0002,
        ..Membership::default()
    };
    let c = ElectionConfig::from_membership(&m, 2000, 10, 5).expect("majority");
    assert_eq!(
        c.quorum.voters().iter().copied().collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert_eq!(c.observers.iter().copied().collect::<Vec<_>>(), vec![4]);
    assert_eq!(c.config_version, 0x1_0000_0002);
    assert_eq!((c.init_limit_ms(), c.sync_limit_ms()), (20_000, 10_000));
    m.weights.insert(1, 2);
    assert_eq!(
        ElectionConfig::from_membership(&m, 2000, 10, 5).err(),
        Some(ElectionConfigError::WeightsWithoutGroups)
    );
    m.groups = vec![GroupSpec {
        id: 1,
        members: vec![1, 2, 3],
    }];
    let weighted = ElectionConfig::from_membership(&m, 2000, 10, 5).expect("hierarchical");
    let set = |ids: &[ServerId]| ids.iter().copied().collect::<BTreeSet<_>>();
    assert!(matches!(weighted.quorum, Quorum::Hierarchical(_)));
    assert_eq!(weighted.quorum.voters(), &set(&[1, 2, 3]));
    assert!(weighted.quorum.contains_quorum(&set(&[1, 2])));
    assert!(
        !weighted.quorum.contains_quorum(&set(&[2, 3])),
        "2 of a group weighing 4 is not more than half"
    );
    m.weights.insert(3, 0);
    assert_eq!(
        ElectionConfig::from_membership(&m, 2000, 10, 5).err(),
        Some(ElectionConfigError::ZeroWeight { id: 3 })
    );
    let only_observer = Membership {
        servers: vec![server(4, Role::Observer)],
        ..Membership::default()
    };
    assert_eq!(
        ElectionConfig::from_membership(&only_observer, 2000, 10, 5).err(),
        Some(ElectionConfigError::NoVoters)
    );
}

#[test]
fn a_looking_server_offers_a_newer_membership_once_instead_of_counting_the_vote() {
    let mut e = three_voters();
    let newer = |state, sender, v: Vote, round| Notification {
        config_version: 0x1_0000_0005,
        config: Bytes::from_static(b"server.2=127.0.0.1:2889:3889:participant\nversion=100000005"),
        ..note(state, sender, v, round)
    };
    e.handle(
        T0 + 1,
        2,
        &newer(PeerState::Leading, 2, vote(2, 0x20, 1), 1),
    );
    assert_eq!(
        drain(&mut e),
        vec![Action::NewerMembership {
            version: 0x1_0000_0005,
            config: Bytes::from_static(
                b"server.2=127.0.0.1:2889:3889:participant\nversion=100000005"
            ),
        }],
        "offered, and nothing else done with the vote"
    );
    // The runtime did not take it (say it does not parse): the next ones count as usual.
    e.handle(
        T0 + 2,
        2,
        &newer(PeerState::Leading, 2, vote(2, 0x20, 1), 1),
    );
    e.handle(
        T0 + 3,
        3,
        &newer(PeerState::Following, 3, vote(2, 0x20, 1), 1),
    );
    let actions = drain(&mut e);
    assert!(
        !actions
            .iter()
            .any(|a| matches!(a, Action::NewerMembership { .. })),
        "{actions:?}"
    );
    assert_eq!(decided(&actions).map(|d| d.vote.leader), Some(2));
    // Decided: a newer membership is not offered (the leader's sync brings it).
    e.handle(
        T0 + 4,
        3,
        &Notification {
            config_version: 0x1_0000_0009,
            ..newer(PeerState::Following, 3, vote(2, 0x20, 1), 1)
        },
    );
    assert!(!drain(&mut e)
        .iter()
        .any(|a| matches!(a, Action::NewerMembership { .. })));
    // An empty text is nothing to offer, whatever its version.
    let mut looking = three_voters();
    looking.handle(
        T0 + 1,
        2,
        &Notification {
            config_version: 0x1_0000_0005,
            ..note(PeerState::Leading, 2, vote(2, 0x20, 1), 1)
        },
    );
    assert!(!drain(&mut looking)
        .iter()
        .any(|a| matches!(a, Action::NewerMembership { .. })));
}
