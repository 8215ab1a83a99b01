//! One test per handled input of the sequencer.

use super::*;
use crate::proto::request::CreateRequest;
use crate::proto::{op, Acl, Id};

fn seq() -> Sequencer {
    seq_with_txn_bytes_max(crate::storage::txn_log::RECORD_BYTES_MAX)
}

fn seq_with_txn_bytes_max(txn_bytes_max: usize) -> Sequencer {
    Sequencer::new(
        SequencerConfig {
            server_id: 1,
            tick_ms: 1000,
            prep: prep::PrepConfig::default(),
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            txn_bytes_max,
        },
        DataTree::new(Bytes::new()),
        0,
    )
}

const ORIGIN: Origin = Origin { shard: 0, conn: 1 };

fn drain(s: &mut Sequencer) -> Vec<Action> {
    std::iter::from_fn(|| s.poll_action()).collect()
}

/// A create of `path` by `session_id` (answered at `xid` on ORIGIN) with `acl` and
/// `flags`, from a connection holding `auth_ids`.
fn create_input(
    session_id: SessionId,
    xid: i32,
    path: &str,
    acl: Vec<Acl>,
    flags: i32,
    auth_ids: &[Id],
) -> Input {
    Input::Write {
        reply_to: ReplyTo {
            origin: ORIGIN,
            xid,
            op: op::CREATE,
        },
        session_id,
        auth_ids: Arc::from(auth_ids.to_vec()),
        req: Request::Create {
            op: op::CREATE,
            req: CreateRequest {
                path: path.into(),
                data: None,
                acl,
                flags,
                ttl: None,
            },
        },
    }
}

fn new_session(s: &mut Sequencer, now_ms: i64) -> SessionId {
    s.handle(
        now_ms,
        Input::CreateSession {
            can_be_read_only: false,
            origin: ORIGIN,
            timeout_ms: 4000,
        },
    );
    let actions = drain(s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!()
    };
    batch[0].rec.as_ref().unwrap().session_id
}

#[test]
fn handle_create_session_orders_a_txn() {
    let mut s = seq();
    let id = new_session(&mut s, 0);
    assert_eq!(id >> 56, 1);
    assert_eq!(s.last_zxid(), 1);
    assert!(s.sessions().is_active(id));
}

#[test]
fn handle_write_assigns_consecutive_zxids_in_one_batch() {
    let mut s = seq();
    let id = new_session(&mut s, 0);
    for i in 0..3 {
        s.handle(
            1,
            Input::Write {
                reply_to: ReplyTo {
                    origin: ORIGIN,
                    xid: i,
                    op: op::CREATE,
                },
                session_id: id,
                auth_ids: Arc::from(vec![]),
                req: Request::Create {
                    op: op::CREATE,
                    req: CreateRequest {
                        path: format!("/n{i}").as_str().into(),
                        data: None,
                        acl: Acl::open_unsafe(),
                        flags: 0,
                        ttl: None,
                    },
                },
            },
        );
    }
    let actions = drain(&mut s);
    assert_eq!(actions.len(), 1);
    let Action::Deliver(batch) = &actions[0] else {
        panic!()
    };
    let zxids: Vec<i64> = batch.iter().map(|c| c.rec.as_ref().unwrap().zxid).collect();
    assert_eq!(zxids, vec![2, 3, 4]);
}

#[test]
fn handle_write_from_unknown_session_is_session_expired() {
    let mut s = seq();
    s.handle(
        0,
        Input::Write {
            reply_to: ReplyTo {
                origin: ORIGIN,
                xid: 1,
                op: op::DELETE,
            },
            session_id: 42,
            auth_ids: Arc::from(vec![]),
            req: Request::CloseSession,
        },
    );
    let actions = drain(&mut s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!()
    };
    assert_eq!(
        batch[0].rec.as_ref().unwrap().txn,
        Txn::Error {
            err: crate::proto::ErrorCode::SessionExpired
        }
    );
}

#[test]
fn a_write_whose_txn_is_over_the_record_limit_is_marshalling_error_and_changes_nothing() {
    // The request is small; its txn is not: an `auth` ACL entry becomes one entry per id
    // of the caller (as invalid UTF-8 becomes three bytes of U+FFFD).
    let mut s = seq_with_txn_bytes_max(1024);
    let id = new_session(&mut s, 0);
    let caller_ids: Vec<Id> = (0..40)
        .map(|i| Id::new("digest", &format!("user{i}:0123456789abcdefghijklmnopq=")))
        .collect();
    let create =
        |xid: i32, path: &str, acl: Vec<Acl>| create_input(id, xid, path, acl, 0, &caller_ids);
    s.handle(1, create(1, "/big", vec![Acl::new(31, "auth", "")]));
    s.handle(1, create(2, "/small", Acl::open_unsafe()));
    let actions = drain(&mut s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!("{actions:?}")
    };
    let txns: Vec<&Txn> = batch.iter().map(|c| &c.rec.as_ref().unwrap().txn).collect();
    assert_eq!(
        txns[0],
        &Txn::Error {
            err: crate::proto::ErrorCode::MarshallingError
        }
    );
    assert!(matches!(txns[1], Txn::Create(_)), "{:?}", txns[1]);
    assert!(s.tree().get("/big").is_none());
    assert!(s.tree().get("/small").is_some());
}

#[test]
fn closing_a_session_whose_ephemerals_overflow_a_record_deletes_them_in_pieces_first() {
    let txn_bytes_max = 300;
    let mut s = seq_with_txn_bytes_max(txn_bytes_max);
    let id = new_session(&mut s, 0);
    let paths: Vec<String> = (0..20)
        .map(|i| format!("/ephemeral-node-number-{i:04}"))
        .collect();
    for (xid, path) in paths.iter().enumerate() {
        // flags 1: ephemeral.
        s.handle(
            1,
            create_input(id, xid as i32, path, Acl::open_unsafe(), 1, &[]),
        );
    }
    drain(&mut s);
    s.handle(
        2,
        Input::Write {
            reply_to: ReplyTo {
                origin: ORIGIN,
                xid: 100,
                op: op::CLOSE_SESSION,
            },
            session_id: id,
            auth_ids: Arc::from(vec![]),
            req: Request::CloseSession,
        },
    );
    let actions = drain(&mut s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!("{actions:?}")
    };
    let recs: Vec<&TxnRecord> = batch.iter().map(|c| c.rec.as_ref().unwrap()).collect();
    assert!(recs.len() > 2, "deleted in pieces: {recs:?}");
    let mut deleted = Vec::new();
    for r in &recs[..recs.len() - 1] {
        assert!(crate::storage::record::encoded_len(r) <= txn_bytes_max);
        let Txn::Multi { ops } = &r.txn else {
            panic!("{:?}", r.txn)
        };
        for op in ops {
            let Txn::Delete { path } = op else {
                panic!("{op:?}")
            };
            deleted.push(path.to_string());
        }
    }
    // Only the closeSession is answered.
    assert!(batch[..batch.len() - 1]
        .iter()
        .all(|c| c.reply_to.is_none()));
    let last = recs[recs.len() - 1];
    assert!(crate::storage::record::encoded_len(last) <= txn_bytes_max);
    let Txn::CloseSession { ephemerals } = &last.txn else {
        panic!("{:?}", last.txn)
    };
    deleted.extend(ephemerals.iter().map(|p| p.to_string()));
    deleted.sort();
    assert_eq!(deleted, paths);
    assert_eq!(batch.last().unwrap().reply_to.map(|r| r.xid), Some(100));
    assert!(paths.iter().all(|p| s.tree().get(p).is_none()));
    assert!(!s.sessions().is_active(id));
}

#[test]
fn handle_revalidate_checks_password_and_moves_session() {
    let mut s = seq();
    let id = new_session(&mut s, 0);
    let other = Origin { shard: 1, conn: 9 };
    s.handle(
        10,
        Input::Revalidate {
            can_be_read_only: false,
            origin: other,
            session_id: id,
            passwd: Bytes::copy_from_slice(&password_for(id)),
            timeout_ms: 4000,
        },
    );
    let actions = drain(&mut s);
    assert!(matches!(actions[0], Action::SessionMoved { keep, .. } if keep == other));
    assert!(matches!(
        actions[1],
        Action::Revalidated {
            timeout_ms: Some(4000),
            ..
        }
    ));
    s.handle(
        10,
        Input::Revalidate {
            can_be_read_only: false,
            origin: other,
            session_id: id,
            passwd: Bytes::from_static(&[0; 16]),
            timeout_ms: 4000,
        },
    );
    let actions = drain(&mut s);
    assert!(matches!(
        actions[0],
        Action::Revalidated {
            timeout_ms: None,
            ..
        }
    ));
}

#[test]
fn handle_tick_expires_idle_sessions_and_touch_keeps_them() {
    let mut s = seq();
    let a = new_session(&mut s, 0);
    let b = new_session(&mut s, 0);
    s.handle(3000, Input::Touch { sessions: vec![b] });
    s.handle(5500, Input::Tick);
    let actions = drain(&mut s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!()
    };
    assert_eq!(batch.len(), 1);
    assert_eq!(batch[0].rec.as_ref().unwrap().session_id, a);
    assert!(!s.sessions().is_active(a));
    assert!(s.sessions().is_active(b));
}

#[test]
fn handle_sync_is_a_barrier_without_zxid() {
    let mut s = seq();
    s.handle(
        0,
        Input::Sync {
            reply_to: ReplyTo {
                origin: ORIGIN,
                xid: 5,
                op: op::SYNC,
            },
            path: "/".into(),
        },
    );
    let actions = drain(&mut s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!()
    };
    assert!(batch[0].rec.is_none());
    assert_eq!(s.last_zxid(), 0);
}

#[test]
fn order_moved_fails_the_write_with_a_zxid() {
    let mut s = seq();
    let id = new_session(&mut s, 0);
    s.order_moved(1, id, 7);
    let actions = drain(&mut s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!("{actions:?}")
    };
    let rec = batch[0].rec.as_ref().unwrap();
    assert_eq!((rec.zxid, rec.session_id, rec.cxid), (2, id, 7));
    assert_eq!(
        rec.txn,
        Txn::Error {
            err: crate::proto::ErrorCode::SessionMoved
        }
    );
    // A session that is gone fails as any of its writes does.
    s.order_moved(2, 0x0100_0000_0000_0099, 8);
    let actions = drain(&mut s);
    let Action::Deliver(batch) = &actions[0] else {
        panic!("{actions:?}")
    };
    assert_eq!(
        batch[0].rec.as_ref().unwrap().txn,
        Txn::Error {
            err: crate::proto::ErrorCode::SessionExpired
        }
    );
}
