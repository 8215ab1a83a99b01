//! One test per rule of discovery, sync and broadcast, driving the machines by hand.

use super::*;

const TICK_MS: i64 = 100;

fn cfg(my_id: ServerId) -> PeerConfig {
    PeerConfig {
        my_id,
        quorum: Quorum::majority([1, 2, 3]),
        observers: BTreeSet::from([4]),
        tick_ms: TICK_MS,
        init_limit_ticks: 10,
        sync_limit_ticks: 5,
        committed_log_max: 4,
        outstanding_max: 8,
        diff_bytes_max: usize::MAX,
        committed_log_bytes_max: usize::MAX,
        accept_non_members: false,
    }
}

fn txn(n: u8) -> Bytes {
    Bytes::from(vec![n])
}

fn stored(epoch: u64, zxids: &[Zxid]) -> Stored {
    let log: Vec<(Zxid, Bytes)> = zxids.iter().map(|z| (*z, txn(*z as u8))).collect();
    Stored {
        accepted_epoch: epoch,
        current_epoch: epoch,
        log_base: 0,
        applied_zxid: 0,
        synced_zxid: zxids.last().copied().unwrap_or(0),
        log,
        reconfig: None,
    }
}

fn drain_leader(l: &mut Leader) -> Vec<Action> {
    std::iter::from_fn(|| l.poll_action()).collect()
}

fn drain_learner(l: &mut Learner) -> Vec<Action> {
    std::iter::from_fn(|| l.poll_action()).collect()
}

fn sends(actions: &[Action], to: ServerId) -> Vec<Message> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send { to: t, msg } if *t == to => Some(msg.clone()),
            Action::SendSnapshot { to: t, last_zxid } if *t == to => Some(Message::Snap {
                last_zxid: *last_zxid,
                snapshot_bytes: 0,
            }),
            _ => None,
        })
        .collect()
}

fn delivered(actions: &[Action]) -> Vec<Zxid> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Deliver { records } => Some(records.iter().map(|(z, _)| *z)),
            _ => None,
        })
        .flatten()
        .collect()
}

/// Feeds every message `from` sent in `actions` to the learner, with logs synced at once.
fn to_learner(l: &mut Learner, actions: &[Action], from: ServerId) -> Vec<Action> {
    let mut out = Vec::new();
    for msg in sends(actions, l.cfg.my_id) {
        l.handle(0, Input::Message { from, msg });
        let acts = drain_learner(l);
        for a in &acts {
            if let Action::SyncLog { up_to } = a {
                l.handle(0, Input::LogSynced { up_to: *up_to });
            }
            if let Action::InstallSnapshot { last_zxid, .. } = a {
                l.handle(
                    0,
                    Input::SnapshotInstalled {
                        last_zxid: *last_zxid,
                    },
                );
            }
        }
        out.extend(acts);
        out.extend(drain_learner(l));
    }
    out
}

fn to_leader(l: &mut Leader, actions: &[Action], from: ServerId) -> Vec<Action> {
    let mut out = Vec::new();
    for msg in sends(actions, 1) {
        l.handle(0, Input::Message { from, msg });
        out.extend(drain_leader(l));
    }
    out
}

fn z(epoch: u64, counter: u32) -> Zxid {
    zxid_of(epoch, counter)
}

/// Leader 1 with `leader_log`, follower 2 with `follower_log`: runs discovery and sync up
/// to establishment; returns the leader, the follower, and the sync header sent.
fn establish(leader_log: Stored, follower_log: Stored) -> (Leader, Learner, Message) {
    establish_with(cfg(1), leader_log, follower_log)
}

/// [`establish`] with the leader's config `leader_cfg`.
fn establish_with(
    leader_cfg: PeerConfig,
    leader_log: Stored,
    follower_log: Stored,
) -> (Leader, Learner, Message) {
    let mut leader = Leader::new(leader_cfg, &leader_log, 1_000, 0);
    let mut f = Learner::new(cfg(2), &follower_log, 1, 1_000, 0);
    let a = drain_learner(&mut f);
    let b = to_leader(&mut leader, &a, 2);
    let c = to_learner(&mut f, &b, 1);
    let d = to_leader(&mut leader, &c, 2);
    let header = sends(&d, 2)[0].clone();
    let e = to_learner(&mut f, &d, 1);
    let g = to_leader(&mut leader, &e, 2);
    assert!(leader.is_established());
    let _ = to_learner(&mut f, &g, 1);
    assert!(f.is_serving());
    (leader, f, header)
}

#[test]
fn epoch_is_max_accepted_plus_one_and_persisted_first() {
    let mut leader = Leader::new(cfg(1), &stored(3, &[]), 1_000, 0);
    assert!(drain_leader(&mut leader).is_empty(), "no quorum yet");
    let mut info = stored(5, &[]);
    info.current_epoch = 4;
    let mut f = Learner::new(cfg(2), &info, 1, 1_000, 0);
    let a = drain_learner(&mut f);
    let b = to_leader(&mut leader, &a, 2);
    assert_eq!(b[0], Action::PersistAcceptedEpoch { epoch: 6 });
    assert_eq!(
        sends(&b, 2),
        vec![Message::LeaderInfo {
            new_epoch: 6,
            protocol_version: PROTOCOL_VERSION
        }]
    );
    let c = to_learner(&mut f, &b, 1);
    assert_eq!(c[0], Action::PersistAcceptedEpoch { epoch: 6 });
    assert_eq!(
        sends(&c, 1)[0],
        Message::AckEpoch {
            current_epoch: 4,
            last_zxid: 0
        }
    );
}

#[test]
fn learner_refuses_older_epoch_and_does_not_count_an_accepted_one() {
    let mut f = Learner::new(cfg(2), &stored(7, &[]), 1, 1_000, 0);
    drain_learner(&mut f);
    f.handle(
        0,
        Input::Message {
            from: 1,
            msg: Message::LeaderInfo {
                new_epoch: 6,
                protocol_version: PROTOCOL_VERSION,
            },
        },
    );
    assert!(matches!(
        drain_learner(&mut f)[..],
        [Action::Looking { .. }]
    ));

    let mut f = Learner::new(cfg(2), &stored(7, &[]), 1, 1_000, 0);
    drain_learner(&mut f);
    f.handle(
        0,
        Input::Message {
            from: 1,
            msg: Message::LeaderInfo {
                new_epoch: 7,
                protocol_version: PROTOCOL_VERSION,
            },
        },
    );
    let acts = drain_learner(&mut f);
    assert_eq!(
        sends(&acts, 1),
        vec![Message::AckEpoch {
            current_epoch: EPOCH_ALREADY_ACCEPTED,
            last_zxid: 0
        }]
    );
}

#[test]
fn leader_steps_down_when_a_voter_is_ahead() {
    let mut leader = Leader::new(cfg(1), &stored(1, &[z(1, 1)]), 1_000, 0);
    let mut f = Learner::new(cfg(2), &stored(1, &[z(1, 1), z(1, 2)]), 1, 1_000, 0);
    let a = drain_learner(&mut f);
    let b = to_leader(&mut leader, &a, 2);
    let c = to_learner(&mut f, &b, 1);
    let d = to_leader(&mut leader, &c, 2);
    assert!(matches!(d.last(), Some(Action::Looking { .. })), "{d:?}");
    assert!(leader.is_stopped());
}

#[test]
fn diff_sends_missing_proposals_then_commits_history_on_establishment() {
    let (_, _, header) = establish(stored(1, &[z(1, 1), z(1, 2)]), stored(1, &[z(1, 1)]));
    assert_eq!(header, Message::Diff { last_zxid: z(1, 1) });

    let mut leader = Leader::new(cfg(1), &stored(1, &[z(1, 1), z(1, 2)]), 1_000, 0);
    let mut f = Learner::new(cfg(2), &stored(1, &[z(1, 1)]), 1, 1_000, 0);
    let a = drain_learner(&mut f);
    let b = to_leader(&mut leader, &a, 2);
    let c = to_learner(&mut f, &b, 1);
    let d = to_leader(&mut leader, &c, 2);
    assert_eq!(
        sends(&d, 2),
        vec![
            Message::Diff { last_zxid: z(1, 1) },
            Message::Proposal {
                zxid: z(1, 2),
                txn: txn(z(1, 2) as u8)
            },
            Message::NewLeader {
                zxid: z(2, 0),
                config_version: 0,
                config: Bytes::new(),
            },
        ]
    );
    let e = to_learner(&mut f, &d, 1);
    // The epoch becomes current only after the synced log is durable, then the ack.
    let persist = e
        .iter()
        .position(|a| *a == Action::PersistCurrentEpoch { epoch: 2 });
    let ack = e.iter().position(|a| {
        *a == Action::Send {
            to: 1,
            msg: Message::Ack { zxid: z(2, 0) },
        }
    });
    assert!(persist.is_some() && ack.is_some() && persist < ack, "{e:?}");
    let g = to_leader(&mut leader, &e, 2);
    assert_eq!(delivered(&g), vec![z(1, 1), z(1, 2)]);
    assert!(g.contains(&Action::Established { epoch: 2 }));
    let h = to_learner(&mut f, &g, 1);
    assert_eq!(delivered(&h), vec![z(1, 1), z(1, 2)]);
    assert!(h.contains(&Action::Established { epoch: 2 }));
}

#[test]
fn trunc_cuts_an_uncommitted_tail_of_an_old_epoch() {
    let mut leader_log = stored(2, &[z(1, 1), z(2, 1)]);
    leader_log.accepted_epoch = 2;
    let mut follower_log = stored(1, &[z(1, 1), z(1, 2), z(1, 3)]);
    follower_log.current_epoch = 1;
    let (_, _, header) = establish(leader_log, follower_log);
    assert_eq!(
        header,
        Message::Trunc {
            truncate_to: z(1, 1)
        }
    );
}

#[test]
fn learner_refuses_trunc_or_snap_below_what_it_applied() {
    let mut s = stored(1, &[z(1, 1), z(1, 2)]);
    s.applied_zxid = z(1, 2);
    for msg in [
        Message::Trunc {
            truncate_to: z(1, 1),
        },
        Message::Snap {
            last_zxid: z(1, 1),
            snapshot_bytes: 10,
        },
    ] {
        let mut f = Learner::new(cfg(2), &s, 1, 1_000, 0);
        drain_learner(&mut f);
        for m in [
            Message::LeaderInfo {
                new_epoch: 2,
                protocol_version: PROTOCOL_VERSION,
            },
            msg,
        ] {
            f.handle(0, Input::Message { from: 1, msg: m });
        }
        let acts = drain_learner(&mut f);
        assert!(
            matches!(acts.last(), Some(Action::Looking { .. })),
            "{acts:?}"
        );
        assert!(!acts.iter().any(|a| matches!(
            a,
            Action::TruncateLog { .. } | Action::InstallSnapshot { .. }
        )));
    }
}

#[test]
fn snap_when_behind_the_window() {
    let mut leader_log = stored(1, &[z(1, 5), z(1, 6)]);
    leader_log.log_base = z(1, 4);
    leader_log.applied_zxid = z(1, 4);
    let (_, f, header) = establish(leader_log, stored(1, &[z(1, 1)]));
    assert_eq!(
        header,
        Message::Snap {
            last_zxid: z(1, 4),
            snapshot_bytes: 0
        }
    );
    assert_eq!(f.last_committed(), z(1, 6));
}

#[test]
fn commit_waits_for_a_quorum_including_the_leaders_own_sync() {
    let (mut leader, mut f, _) = establish(stored(1, &[]), stored(1, &[]));
    let zx = leader.propose(txn(9)).expect("established");
    let a = drain_leader(&mut leader);
    assert!(a.contains(&Action::SyncLog { up_to: zx }));
    let b = to_learner(&mut f, &a, 1);
    assert!(sends(&b, 1).contains(&Message::Ack { zxid: zx }));
    // Follower acked, but the leader has not synced: with 3 voters, {2} is no quorum...
    let c = to_leader(&mut leader, &b, 2);
    // ...but {1, 2} is once the leader's own fsync completes.
    assert!(delivered(&c).is_empty(), "{c:?}");
    leader.handle(0, Input::LogSynced { up_to: zx });
    let d = drain_leader(&mut leader);
    assert_eq!(delivered(&d), vec![zx]);
    assert!(sends(&d, 2).contains(&Message::Commit { zxid: zx }));
}

#[test]
fn propose_refused_before_establishment_and_beyond_backlog() {
    let mut leader = Leader::new(cfg(1), &stored(1, &[]), 1_000, 0);
    assert_eq!(leader.propose(txn(1)), Err(ProposeError::NotEstablished));
    let (mut leader, _, _) = establish(stored(1, &[]), stored(1, &[]));
    for _ in 0..8 {
        assert!(leader.propose(txn(1)).is_ok());
    }
    assert_eq!(
        leader.propose(txn(1)),
        Err(ProposeError::Backlog { outstanding: 8 })
    );
}

#[test]
fn learner_times_out_without_sync_and_when_the_leader_is_silent() {
    let mut f = Learner::new(cfg(2), &stored(1, &[]), 1, 1_000, 0);
    drain_learner(&mut f);
    f.handle(999, Input::Tick);
    assert!(drain_learner(&mut f).is_empty());
    f.handle(1_000, Input::Tick);
    assert!(matches!(
        drain_learner(&mut f)[..],
        [Action::Looking { .. }]
    ));

    let (_, mut f, _) = establish(stored(1, &[]), stored(1, &[]));
    let silent_until = f.poll_timeout().expect("serving");
    assert_eq!(silent_until, 5 * TICK_MS);
    f.handle(silent_until, Input::Tick);
    assert!(matches!(
        drain_learner(&mut f)[..],
        [Action::Looking { .. }]
    ));
}

#[test]
fn misbehaving_leader_messages_end_the_learner() {
    let (_, mut f, _) = establish(stored(1, &[]), stored(1, &[]));
    f.handle(
        0,
        Input::Message {
            from: 1,
            msg: Message::Commit { zxid: z(2, 7) },
        },
    );
    assert!(matches!(
        drain_learner(&mut f)[..],
        [Action::Looking { .. }]
    ));
}

/// Proposes a reconfig to `voters` (observer 4 kept) on an established leader 1 with
/// follower 2, syncs the leader and feeds it the follower's ack: what it did.
fn reconfig_acked_by_1_and_2(voters: &[ServerId]) -> (Leader, Learner, Zxid, Vec<Action>) {
    let (mut leader, mut f, _) = establish(stored(1, &[]), stored(1, &[]));
    let zx = leader.propose(txn(7)).expect("established");
    leader.reconfig_proposed(zx, voters.iter().copied().collect(), BTreeSet::from([4]));
    assert!(leader.reconfig_pending());
    let a = drain_leader(&mut leader);
    let b = to_learner(&mut f, &a, 1);
    leader.handle(0, Input::LogSynced { up_to: zx });
    let mut c = drain_leader(&mut leader);
    c.extend(to_leader(&mut leader, &b, 2));
    (leader, f, zx, c)
}

#[test]
fn reconfig_commits_only_with_a_quorum_of_the_old_and_the_new_voters() {
    // {1, 2} is a quorum of the old voters {1, 2, 3} but not of the new {1, 3, 5}.
    let (leader, _, _, actions) = reconfig_acked_by_1_and_2(&[1, 3, 5]);
    assert!(delivered(&actions).is_empty(), "{actions:?}");
    assert!(leader.reconfig_pending());
    // {1, 2} is a quorum of both {1, 2, 3} and {1, 2}: it commits, and from then on the
    // new voters alone count (the leader's own sync is no quorum of {1, 2}).
    let (mut leader, mut f, zx, actions) = reconfig_acked_by_1_and_2(&[1, 2]);
    assert_eq!(delivered(&actions), vec![zx]);
    assert!(!leader.reconfig_pending());
    let next = leader.propose(txn(8)).expect("still leading");
    let a = drain_leader(&mut leader);
    leader.handle(0, Input::LogSynced { up_to: next });
    assert!(delivered(&drain_leader(&mut leader)).is_empty());
    let b = to_learner(&mut f, &a, 1);
    assert_eq!(delivered(&to_leader(&mut leader, &b, 2)), vec![next]);
}

#[test]
fn a_leader_removed_by_a_reconfig_steps_down_after_delivering_it() {
    let (leader, _, zx, actions) = reconfig_acked_by_1_and_2(&[2]);
    assert_eq!(delivered(&actions), vec![zx]);
    assert!(leader.is_stopped());
    let looking = actions
        .iter()
        .position(|a| matches!(a, Action::Looking { .. }))
        .expect("steps down");
    let deliver = actions
        .iter()
        .position(|a| matches!(a, Action::Deliver { .. }))
        .expect("delivers");
    assert!(
        deliver < looking,
        "the commit goes out before the role ends"
    );
}

#[test]
fn non_members_learn_without_a_vote_only_when_accepted() {
    let info = |sender| LearnerInfo {
        sender,
        protocol_version: PROTOCOL_VERSION,
        accepted_epoch: 1,
        last_zxid: 0,
    };
    let (mut leader, _, _) = establish(stored(1, &[]), stored(1, &[]));
    leader.handle(
        0,
        Input::Message {
            from: 9,
            msg: Message::FollowerInfo(info(9)),
        },
    );
    assert!(drain_leader(&mut leader).contains(&Action::Disconnect { peer: 9 }));
    let mut open = cfg(1);
    open.accept_non_members = true;
    let mut leader = Leader::new(open.clone(), &stored(1, &[]), 1_000, 0);
    let _ = drain_leader(&mut leader);
    let mut stranger_cfg = open.clone();
    stranger_cfg.my_id = 9;
    let mut stranger = Learner::new(stranger_cfg, &stored(1, &[]), 1, 1_000, 0);
    assert!(
        !stranger.is_observer(),
        "a non-member follows without a vote"
    );
    let a = drain_learner(&mut stranger);
    let b = to_leader(&mut leader, &a, 9);
    assert!(!b.contains(&Action::Disconnect { peer: 9 }), "{b:?}");
    // Its FOLLOWERINFO does not count towards the epoch quorum, and neither does the
    // OBSERVERINFO of a voter that has not learnt it votes now.
    leader.handle(
        0,
        Input::Message {
            from: 3,
            msg: Message::ObserverInfo(info(3)),
        },
    );
    assert!(!drain_leader(&mut leader).contains(&Action::Disconnect { peer: 3 }));
    assert_eq!(leader.epoch(), 0);
}

/// An observer is synced only once the leader is established: a leader that never gets
/// its quorum must not TRUNC records from an observer's log (they may be committed by a
/// newer leader the observer heard from first).
#[test]
fn observers_are_synced_only_by_an_established_leader() {
    let mut leader = Leader::new(cfg(1), &stored(1, &[z(1, 1), z(1, 2)]), 1_000, 0);
    drain_leader(&mut leader);
    let mut o = Learner::new(
        cfg(4),
        &stored(1, &[z(1, 1), z(1, 2), z(1, 3)]),
        1,
        1_000,
        0,
    );
    let mut f = Learner::new(cfg(2), &stored(1, &[z(1, 1), z(1, 2)]), 1, 1_000, 0);
    // The observer first: it gets the epoch once a voter joins, acks it, and must then
    // wait while the follower has not acked NEWLEADER.
    let mut to_o = drain_learner(&mut o);
    let mut to_f = drain_learner(&mut f);
    let mut to_observer = Vec::new();
    for step in 0..6 {
        let mut out = to_leader(&mut leader, &to_o, 4);
        if step >= 2 {
            // The follower only from the third round on: the observer acks first.
            out.extend(to_leader(&mut leader, &to_f, 2));
            to_f = to_learner(&mut f, &out, 1);
        }
        if !leader.is_established() {
            assert!(
                !sends(&out, 4).iter().any(|m| matches!(
                    m,
                    Message::Trunc { .. } | Message::Diff { .. } | Message::Snap { .. }
                )),
                "not established: the observer waits: {out:?}"
            );
        }
        to_observer.extend(sends(&out, 4));
        to_o = to_learner(&mut o, &out, 1);
    }
    assert!(leader.is_established());
    assert!(
        to_observer
            .iter()
            .any(|m| matches!(m, Message::Trunc { truncate_to } if *truncate_to == z(1, 2))),
        "established: the observer's extra record goes: {to_observer:?}"
    );
}

/// Runs leader 1 and `learners` against each other until no message is left (every log
/// synced at once); returns what the leader did.
fn pump(leader: &mut Leader, learners: &mut [Learner]) -> Vec<Action> {
    let mut from_leader = drain_leader(leader);
    let mut all = from_leader.clone();
    let mut to_lead: Vec<(ServerId, Vec<Action>)> = learners
        .iter_mut()
        .map(|l| (l.cfg.my_id, drain_learner(l)))
        .collect();
    for _ in 0..32 {
        for l in learners.iter_mut() {
            let acts = to_learner(l, &from_leader, 1);
            to_lead.push((l.cfg.my_id, acts));
        }
        from_leader = Vec::new();
        for (id, acts) in to_lead.drain(..) {
            from_leader.extend(to_leader(leader, &acts, id));
        }
        if from_leader.is_empty() {
            return all;
        }
        all.extend(from_leader.iter().cloned());
    }
    panic!("the machines did not settle: {all:?}");
}

/// Leader 1 whose log ends with a reconfig to `voters` (the other servers of 1..=5
/// observers) that it never applied: its history as `Stored` gives it.
fn leader_with_reconfig_in_history(voters: &[ServerId]) -> (Leader, Zxid) {
    let reconfig = z(1, 1);
    let mut history = stored(1, &[reconfig]);
    history.reconfig = Some(HistoryReconfig {
        zxid: reconfig,
        voters: voters.iter().copied().collect(),
        observers: (1..=5).filter(|id| !voters.contains(id)).collect(),
    });
    (Leader::new(cfg(1), &history, 1_000, 0), reconfig)
}

#[test]
fn a_reconfig_in_a_new_leaders_history_needs_both_quorums_and_commits_with_it() {
    let (mut leader, reconfig) = leader_with_reconfig_in_history(&[1, 3, 5]);
    assert!(leader.reconfig_pending());
    // {1, 2} is a quorum of the voters {1, 2, 3}, not of the next ones {1, 3, 5}: a new
    // epoch (discovery counts the voters in force, as ZooKeeper's), but no establishment.
    let mut learners = vec![Learner::new(cfg(2), &stored(1, &[]), 1, 1_000, 0)];
    let out = pump(&mut leader, &mut learners);
    assert_eq!(leader.epoch(), 2, "{out:?}");
    assert!(!leader.is_established(), "{out:?}");
    assert!(delivered(&out).is_empty());
    learners.push(Learner::new(cfg(3), &stored(1, &[]), 1, 1_000, 0));
    let out = pump(&mut leader, &mut learners);
    assert!(leader.is_established(), "{out:?}");
    assert_eq!(delivered(&out), vec![reconfig]);
    assert!(!leader.reconfig_pending());
    assert!(learners.iter().all(|l| l.is_serving()));
    // From here on {1, 3, 5} counts alone: 2's ack commits nothing, 3's does.
    let next = leader.propose(txn(9)).expect("established");
    let proposal = drain_leader(&mut leader);
    leader.handle(0, Input::LogSynced { up_to: next });
    assert!(delivered(&drain_leader(&mut leader)).is_empty());
    let ack_2 = to_learner(&mut learners[0], &proposal, 1);
    assert!(delivered(&to_leader(&mut leader, &ack_2, 2)).is_empty());
    let ack_3 = to_learner(&mut learners[1], &proposal, 1);
    assert_eq!(delivered(&to_leader(&mut leader, &ack_3, 3)), vec![next]);
}

#[test]
fn a_leader_its_history_reconfigured_away_steps_down_once_established() {
    let (mut leader, reconfig) = leader_with_reconfig_in_history(&[2, 3]);
    let mut learners = vec![
        Learner::new(cfg(2), &stored(1, &[]), 1, 1_000, 0),
        Learner::new(cfg(3), &stored(1, &[]), 1, 1_000, 0),
    ];
    let out = pump(&mut leader, &mut learners);
    assert_eq!(delivered(&out), vec![reconfig]);
    assert!(leader.is_stopped(), "{out:?}");
    let deliver = out.iter().position(|a| matches!(a, Action::Deliver { .. }));
    let looking = out.iter().position(|a| matches!(a, Action::Looking { .. }));
    assert!(deliver < looking && deliver.is_some(), "{out:?}");
    assert!(
        learners.iter().all(|l| l.is_serving()),
        "the learners were told UPTODATE before the leader left"
    );
}

#[test]
fn an_observer_the_history_makes_a_voter_counts_for_establishment_if_it_promised() {
    // Voters {1, 2, 3} now, {1, 4, 5} next: follower 2 and observer 4 make a quorum of each.
    let (mut leader, reconfig) = leader_with_reconfig_in_history(&[1, 4, 5]);
    let observer = Learner::new(cfg(4), &stored(1, &[]), 1, 1_000, 0);
    assert!(observer.is_observer());
    let mut learners = vec![Learner::new(cfg(2), &stored(1, &[]), 1, 1_000, 0), observer];
    let out = pump(&mut leader, &mut learners);
    assert!(leader.is_established(), "{out:?}");
    assert_eq!(delivered(&out), vec![reconfig]);
    assert!(learners.iter().all(|l| l.is_serving()));

    // The same observer, but it had accepted a newer epoch than the one proposed to it: it
    // takes the epoch (observers may) without promising it, so it does not count.
    let (mut leader, _) = leader_with_reconfig_in_history(&[1, 4, 5]);
    let mut promised_elsewhere = stored(1, &[]);
    promised_elsewhere.accepted_epoch = 5;
    let mut learners = vec![
        Learner::new(cfg(2), &stored(1, &[]), 1, 1_000, 0),
        Learner::new(cfg(4), &promised_elsewhere, 1, 1_000, 0),
    ];
    let out = pump(&mut leader, &mut learners);
    assert_eq!(leader.epoch(), 2, "{out:?}");
    assert!(!leader.is_established(), "{out:?}");
    assert!(
        !sends(&out, 4).iter().any(|m| matches!(
            m,
            Message::Diff { .. } | Message::Trunc { .. } | Message::Snap { .. }
        )),
        "not synced before establishment: {out:?}"
    );
}

#[test]
fn a_learner_that_disconnects_before_establishment_takes_its_newleader_ack_with_it() {
    // The leader's own log is not synced yet, so only learners' acks count at first.
    let mut history = stored(1, &[z(1, 1)]);
    history.synced_zxid = 0;
    let mut leader = Leader::new(cfg(1), &history, 1_000, 0);
    let mut first = vec![Learner::new(cfg(2), &stored(1, &[]), 1, 1_000, 0)];
    let out = pump(&mut leader, &mut first);
    assert!(
        sends(&out, 2)
            .iter()
            .any(|m| matches!(m, Message::NewLeader { .. })),
        "{out:?}"
    );
    assert!(!leader.is_established());
    // 2 acked, then left (it may have moved on to a newer epoch): its ack goes with it.
    leader.handle(0, Input::Disconnected { peer: 2 });
    let mut second = vec![Learner::new(cfg(3), &stored(1, &[]), 1, 1_000, 0)];
    let out = pump(&mut leader, &mut second);
    assert!(
        !leader.is_established(),
        "3's ack alone is no quorum: {out:?}"
    );
    // Its own log synced, the leader has {1, 3}.
    leader.handle(0, Input::LogSynced { up_to: z(1, 1) });
    let out = drain_leader(&mut leader);
    assert!(leader.is_established(), "{out:?}");
}

#[test]
fn a_late_voter_of_the_history_reconfig_that_is_ahead_makes_the_leader_step_down() {
    // Voters {1, 2, 3} now, {1, 4, 5} next. Follower 2 completes the epoch quorum; then
    // observer 4 (a voter next) comes with txns the leader lacks: truncating them would
    // lose what the next voters may have committed, so the leader gives up instead.
    let (mut leader, _) = leader_with_reconfig_in_history(&[1, 4, 5]);
    let mut learners = vec![Learner::new(cfg(2), &stored(1, &[]), 1, 1_000, 0)];
    let out = pump(&mut leader, &mut learners);
    assert_eq!(leader.epoch(), 2, "{out:?}");
    assert!(!leader.is_established());
    learners.push(Learner::new(
        cfg(4),
        &stored(1, &[z(1, 1), z(1, 2)]),
        1,
        1_000,
        0,
    ));
    let out = pump(&mut leader, &mut learners);
    assert!(leader.is_stopped(), "{out:?}");
    assert!(
        out.iter().any(
            |a| matches!(a, Action::Looking { reason } if reason.contains("next voter 4 is ahead"))
        ),
        "{out:?}"
    );
    assert!(
        !sends(&out, 4)
            .iter()
            .any(|m| matches!(m, Message::Trunc { .. })),
        "{out:?}"
    );
}

#[test]
fn learner_ends_its_role_on_a_gap_in_this_epochs_proposals() {
    // A proposal lost on the way (the link must close instead, but if one ever is): the
    // follower must not log and ack the next one as if nothing were missing.
    let (mut leader, mut f, _) = establish(stored(1, &[]), stored(1, &[]));
    let first = leader.propose(txn(1)).expect("established");
    let second = leader.propose(txn(2)).expect("established");
    assert_eq!(second, first + 1);
    f.handle(
        0,
        Input::Message {
            from: 1,
            msg: Message::Proposal {
                zxid: second,
                txn: txn(2),
            },
        },
    );
    let acts = drain_learner(&mut f);
    assert!(
        matches!(acts.last(), Some(Action::Looking { .. })),
        "{acts:?}"
    );
    assert!(
        !acts.iter().any(|a| matches!(a, Action::Append { .. })),
        "{acts:?}"
    );

    // In order, both are logged.
    let (mut leader, mut f, _) = establish(stored(1, &[]), stored(1, &[]));
    leader.propose(txn(1)).expect("established");
    leader.propose(txn(2)).expect("established");
    let a = drain_leader(&mut leader);
    let b = to_learner(&mut f, &a, 1);
    let appended: Vec<Zxid> = b
        .iter()
        .filter_map(|a| match a {
            Action::Append { records } => Some(records.iter().map(|(z, _)| *z)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(appended, vec![first, second]);
}

#[test]
fn an_established_leader_sends_a_snap_for_a_diff_over_diff_bytes_max() {
    // Records of one byte each: with diff_bytes_max 2, a learner two records behind gets
    // a DIFF, one three behind a SNAP. Before establishment it is always a DIFF (the
    // follower that makes the quorum here is four records behind).
    let leader_cfg = PeerConfig {
        diff_bytes_max: 2,
        ..cfg(1)
    };
    let history = [z(1, 1), z(1, 2), z(1, 3), z(1, 4)];
    let (mut leader, _f, header) = establish_with(leader_cfg, stored(1, &history), stored(1, &[]));
    assert_eq!(header, Message::Diff { last_zxid: 0 });
    let sync_header = |leader: &mut Leader, from: ServerId, log: &[Zxid]| {
        let mut l = Learner::new(cfg(from), &stored(1, log), 1, 1_000, 0);
        let a = drain_learner(&mut l);
        let b = to_leader(leader, &a, from);
        let c = to_learner(&mut l, &b, 1);
        let d = to_leader(leader, &c, from);
        sends(&d, from)[0].clone()
    };
    assert_eq!(
        sync_header(&mut leader, 3, &history[..2]),
        Message::Diff { last_zxid: z(1, 2) }
    );
    assert_eq!(
        sync_header(&mut leader, 4, &history[..1]),
        Message::Snap {
            last_zxid: z(1, 4),
            snapshot_bytes: 0
        }
    );
}

#[test]
fn applied_history_is_bounded_by_count_and_by_bytes() {
    let records: Vec<(Zxid, Bytes)> = (1..=10).map(|z| (z, Bytes::from(vec![0u8; 100]))).collect();
    let stored = Stored {
        accepted_epoch: 1,
        current_epoch: 1,
        log_base: 0,
        applied_zxid: 0,
        synced_zxid: 10,
        log: records,
        reconfig: None,
    };
    let mut h = History::from_stored(&stored);
    assert_eq!(h.apply_up_to(8).len(), 8);
    assert_eq!(h.applied_bytes, 800);
    // The count binds: five applied records stay.
    h.trim(5, usize::MAX);
    assert_eq!((h.log_base, h.applied_len, h.applied_bytes), (3, 5, 500));
    // The bytes bind: 250 bytes hold two of them.
    h.trim(5, 250);
    assert_eq!((h.log_base, h.applied_len, h.applied_bytes), (6, 2, 200));
    // Unapplied records are never dropped, whatever they weigh.
    h.trim(0, 0);
    assert_eq!((h.log_base, h.applied_len, h.applied_bytes), (8, 0, 0));
    assert_eq!(h.log.len(), 2);
    assert!(h.contains(8) && h.contains(10));
    // Applying one at a time counts its bytes as well.
    assert!(h.apply_next().is_some());
    assert_eq!((h.applied_len, h.applied_bytes), (1, 100));
}
