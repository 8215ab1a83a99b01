//! The ZAB executor's core (sans-IO): validation, zxid ordering, sessions, and the
//! committed stream every shard applies.
//!
//! Run-loop contract (as str0m's): the driver calls [`Sequencer::handle`] with each input
//! and the current time, then drains [`Sequencer::poll_action`] until `None`. Nothing here
//! touches sockets, files or clocks. Actions come out in the order they must be performed:
//! a `Deliver` batch holds committed transactions in zxid order.
//!
//! Standalone mode today: a transaction commits as soon as it is ordered (the durable log
//! and the quorum slot in between `prepare` and `Deliver` later, gated on `LogSynced`).
//! The sequencer's own tree is the tree at the last ordered zxid, so validation sees every
//! earlier write, as ZooKeeper's outstanding-changes list provides.

pub mod prep;

use crate::jute::JStr;
use crate::proto::{Id, Request, SessionId};
use crate::session::{password_for, SessionTracker};
use crate::tree::txn::{self, Txn, TxnRecord};
use crate::tree::watches::ConnId;
use crate::tree::{DataTree, Trigger};
use bytes::Bytes;
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// A connection somewhere in the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Origin {
    pub shard: usize,
    pub conn: ConnId,
}

/// Where the answer to an ordered request goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyTo {
    pub origin: Origin,
    pub xid: i32,
    pub op: i32,
}

#[derive(Debug)]
pub enum Input {
    /// A state-changing request from a client session.
    Write {
        reply_to: ReplyTo,
        session_id: SessionId,
        auth_ids: Arc<[Id]>,
        req: Request,
    },
    /// A write a learner forwarded (replicated mode, on the leader): ordered like
    /// [`Input::Write`]; the learner that holds the session answers it.
    Forwarded {
        session_id: SessionId,
        xid: i32,
        auth_ids: Arc<[Id]>,
        req: Request,
    },
    /// A learner's new session (replicated mode, on the leader): the learner chose the id.
    CreateSessionFor {
        session_id: SessionId,
        timeout_ms: i32,
    },
    /// A sync: answered once everything ordered before it is delivered.
    Sync { reply_to: ReplyTo, path: JStr },
    /// A handshake asking for a new session. `can_be_read_only`: the client accepts a
    /// read-only session (a replicated server cut off from its quorum offers one).
    CreateSession {
        origin: Origin,
        timeout_ms: i32,
        can_be_read_only: bool,
    },
    /// A handshake resuming `session_id`.
    Revalidate {
        origin: Origin,
        session_id: SessionId,
        passwd: Bytes,
        timeout_ms: i32,
        can_be_read_only: bool,
    },
    /// Sessions that sent anything since the last batch.
    Touch { sessions: Vec<SessionId> },
    /// Periodic: expire sessions, reap containers.
    Tick,
}

/// One entry of the committed stream.
#[derive(Debug)]
pub struct Committed {
    /// The transaction; `None` for a sync barrier.
    pub rec: Option<TxnRecord>,
    pub reply_to: Option<ReplyTo>,
    /// The path a sync asked for, echoed in its reply.
    pub sync_path: Option<JStr>,
}

#[derive(Debug)]
pub enum Action {
    /// Every shard applies this batch, in order.
    Deliver(Arc<Vec<Committed>>),
    /// The answer to a Revalidate, for `origin`'s shard; `timeout_ms` None = session invalid.
    Revalidated {
        origin: Origin,
        session_id: SessionId,
        timeout_ms: Option<i32>,
    },
    /// A session was resumed at `keep`: every other connection holding it is closed.
    SessionMoved { session_id: SessionId, keep: Origin },
}

#[derive(Debug, Clone)]
pub struct SequencerConfig {
    pub server_id: u8,
    pub tick_ms: u32,
    pub prep: prep::PrepConfig,
    pub container_check_interval_ms: i64,
    pub container_max_per_minute: u32,
    pub container_max_never_used_interval_ms: i64,
    /// The largest txn record a write may make (the log's record limit, which the quorum
    /// wire also carries). A request within `jute.maxbuffer` can still make a bigger txn
    /// (invalid UTF-8 becomes U+FFFD, an `auth` ACL one entry per id of the caller); such a
    /// write is answered `MarshallingError` and changes nothing.
    pub txn_bytes_max: usize,
}

pub struct Sequencer {
    cfg: SequencerConfig,
    tree: DataTree,
    sessions: SessionTracker,
    owners: HashMap<SessionId, Origin>,
    last_zxid: i64,
    batch: Vec<Committed>,
    actions: VecDeque<Action>,
    next_reap_at_ms: i64,
    scratch_triggers: Vec<Trigger>,
    /// Replicated mode with `reconfigEnabled`, on the leader: what `reconfig` is checked
    /// against (the runtime refreshes it; ordering a reconfig marks it in progress).
    reconfig: Option<prep::ReconfigView>,
}

impl Sequencer {
    pub fn new(cfg: SequencerConfig, tree: DataTree, now_ms: i64) -> Sequencer {
        let sessions = SessionTracker::new(cfg.server_id, cfg.tick_ms, now_ms);
        let last_zxid = tree.last_zxid();
        Sequencer {
            next_reap_at_ms: now_ms + cfg.container_check_interval_ms,
            cfg,
            tree,
            sessions,
            owners: HashMap::new(),
            last_zxid,
            batch: Vec::new(),
            actions: VecDeque::new(),
            scratch_triggers: Vec::new(),
            reconfig: None,
        }
    }

    /// Sets what a `reconfig` is validated against (`None`: refused, as standalone).
    pub fn set_reconfig_view(&mut self, view: Option<prep::ReconfigView>) {
        self.reconfig = view;
    }

    /// Whether a reconfig was ordered and is not yet marked committed.
    pub fn reconfig_in_progress(&self) -> bool {
        self.reconfig.as_ref().is_some_and(|v| v.in_progress)
    }

    pub fn last_zxid(&self) -> i64 {
        self.last_zxid
    }

    /// Brings back the sessions a restart recovered. Their deadlines start afresh (now +
    /// timeout), as ZooKeeper's do: a client that is gone expires them normally.
    pub fn restore_sessions(&mut self, sessions: &[(SessionId, i32)], now_ms: i64) {
        for (id, timeout_ms) in sessions {
            self.sessions.add(*id, *timeout_ms, now_ms);
        }
    }

    pub fn sessions(&self) -> &SessionTracker {
        &self.sessions
    }

    pub fn tree(&self) -> &DataTree {
        &self.tree
    }

    /// Replicated mode: a learner forwarded a write of a session that has moved to another
    /// server since. It is ordered as a failed write (SessionMoved takes a zxid, as
    /// ZooKeeper's `PrepRequestProcessor` makes it an error txn); a session that is gone
    /// fails as any write of it does (SessionExpired).
    pub fn order_moved(&mut self, now_ms: i64, session_id: SessionId, xid: i32) {
        let err = if self.sessions.is_active(session_id) {
            crate::proto::ErrorCode::SessionMoved
        } else {
            crate::proto::ErrorCode::SessionExpired
        };
        self.order(now_ms, session_id, xid, Txn::Error { err }, None);
    }

    /// Replicated mode: `/zookeeper/config` set outside the txn stream
    /// ([`DataTree::set_config_node`]).
    pub fn set_config_node(&mut self, data: bytes::Bytes, version_zxid: i64, time_ms: i64) {
        self.tree.set_config_node(data, version_zxid, time_ms);
    }

    pub fn handle(&mut self, now_ms: i64, input: Input) {
        match input {
            Input::Write {
                reply_to,
                session_id,
                auth_ids,
                req,
            } => self.write(
                now_ms,
                session_id,
                reply_to.xid,
                &auth_ids,
                &req,
                Some(reply_to),
            ),
            Input::Forwarded {
                session_id,
                xid,
                auth_ids,
                req,
            } => self.write(now_ms, session_id, xid, &auth_ids, &req, None),
            Input::CreateSessionFor {
                session_id,
                timeout_ms,
            } => {
                if self.sessions.is_active(session_id) {
                    tracing::warn!(
                        session = format_args!("0x{session_id:x}"),
                        "a learner created a session id already in use; ignored"
                    );
                    return;
                }
                self.order(
                    now_ms,
                    session_id,
                    0,
                    Txn::CreateSession { timeout_ms },
                    None,
                );
            }
            Input::Sync { reply_to, path } => self.batch.push(Committed {
                rec: None,
                reply_to: Some(reply_to),
                sync_path: Some(path),
            }),
            Input::CreateSession {
                origin, timeout_ms, ..
            } => {
                if self.sessions.len() >= crate::session::SESSIONS_MAX {
                    self.flush();
                    self.actions.push_back(Action::Revalidated {
                        origin,
                        session_id: 0,
                        timeout_ms: None,
                    });
                    return;
                }
                let id = self.sessions.next_session_id();
                self.owners.insert(id, origin);
                let reply_to = ReplyTo {
                    origin,
                    xid: 0,
                    op: crate::proto::op::CREATE_SESSION,
                };
                self.order(
                    now_ms,
                    id,
                    0,
                    Txn::CreateSession { timeout_ms },
                    Some(reply_to),
                );
            }
            Input::Revalidate {
                origin,
                session_id,
                passwd,
                timeout_ms,
                ..
            } => {
                let valid = self.sessions.is_active(session_id)
                    && passwd.as_ref() == password_for(session_id).as_slice();
                self.flush();
                if valid {
                    self.sessions.touch(session_id, now_ms);
                    let previous = self.owners.insert(session_id, origin);
                    if previous.is_some_and(|p| p != origin) {
                        self.actions.push_back(Action::SessionMoved {
                            session_id,
                            keep: origin,
                        });
                    }
                }
                self.actions.push_back(Action::Revalidated {
                    origin,
                    session_id,
                    timeout_ms: valid.then_some(timeout_ms),
                });
            }
            Input::Touch { sessions } => {
                for s in sessions {
                    self.sessions.touch(s, now_ms);
                }
            }
            Input::Tick => {
                for id in self.sessions.poll_expired(now_ms) {
                    tracing::info!(session = format_args!("0x{id:x}"), "session expired");
                    let t = prep::close_session(&self.tree, id);
                    let t = self.close_in_pieces(now_ms, id, t);
                    self.order(now_ms, id, 0, t, None);
                }
                if now_ms >= self.next_reap_at_ms {
                    self.next_reap_at_ms = now_ms + self.cfg.container_check_interval_ms;
                    self.reap_containers(now_ms);
                }
            }
        }
    }

    /// Validates a client's write into a txn and orders it.
    fn write(
        &mut self,
        now_ms: i64,
        session_id: SessionId,
        xid: i32,
        auth_ids: &[Id],
        req: &Request,
        reply_to: Option<ReplyTo>,
    ) {
        let txn = if !self.sessions.is_active(session_id) {
            Txn::Error {
                err: crate::proto::ErrorCode::SessionExpired,
            }
        } else {
            self.sessions.touch(session_id, now_ms);
            let caller = prep::Caller {
                session_id,
                auth_ids,
            };
            let t = match req {
                Request::Reconfig(rc) => prep::prepare_reconfig(
                    &self.tree,
                    rc,
                    &caller,
                    &self.cfg.prep,
                    self.reconfig.as_ref(),
                    self.last_zxid + 1,
                ),
                _ => prep::prepare(&self.tree, req, &caller, &self.cfg.prep),
            };
            self.close_in_pieces(now_ms, session_id, t)
        };
        // What ordering the txn commits the session or the reconfig view to happens only
        // once it is known to fit.
        let txn = if self.fits_in_a_record(&txn) {
            if matches!(txn, Txn::CloseSession { .. }) {
                self.sessions.set_closing(session_id);
            }
            let reconfig = matches!(req, Request::Reconfig(_)) && prep::is_reconfig(&txn);
            if let (true, Some(view)) = (reconfig, self.reconfig.as_mut()) {
                view.in_progress = true;
            }
            txn
        } else {
            tracing::warn!(
                session = format_args!("0x{session_id:x}"),
                xid,
                bytes_max = self.cfg.txn_bytes_max,
                "a write's txn is over the record limit; answered MarshallingError"
            );
            Txn::Error {
                err: crate::proto::ErrorCode::MarshallingError,
            }
        };
        self.order(now_ms, session_id, xid, txn, reply_to);
    }

    /// A closeSession lists the session's ephemerals; when that list is more than a record
    /// holds (thousands of ephemerals with long paths), the ephemerals are first deleted
    /// by multis of deletes, each within half a record, and the closeSession lists the
    /// rest. Any other txn is returned as it is.
    fn close_in_pieces(&mut self, now_ms: i64, session_id: SessionId, mut txn: Txn) -> Txn {
        use crate::storage::record::txn_encoded_len;
        if !matches!(txn, Txn::CloseSession { .. }) {
            // Every write passes here: its size is checked once, by the caller.
            return txn;
        }
        let piece_bytes_max = self.cfg.txn_bytes_max / 2;
        while !self.fits_in_a_record(&txn) {
            let Txn::CloseSession { ephemerals } = &mut txn else {
                break;
            };
            let mut piece_bytes = 0;
            let n = ephemerals
                .iter()
                .take_while(|path| {
                    piece_bytes += txn_encoded_len(&Txn::Delete {
                        path: Arc::clone(path),
                    });
                    piece_bytes <= piece_bytes_max
                })
                .count()
                .max(1);
            let ops: Vec<Txn> = ephemerals
                .drain(..n)
                .map(|path| Txn::Delete { path })
                .collect();
            tracing::info!(
                session = format_args!("0x{session_id:x}"),
                ephemerals = ops.len(),
                "closing a session: its ephemerals are more than one record lists; deleting some first"
            );
            self.order(now_ms, session_id, 0, Txn::Multi { ops }, None);
        }
        txn
    }

    fn fits_in_a_record(&self, txn: &Txn) -> bool {
        use crate::storage::record::{txn_encoded_len, RECORD_FIELDS_BYTES};
        RECORD_FIELDS_BYTES + txn_encoded_len(txn) <= self.cfg.txn_bytes_max
    }

    /// Replicated mode, on the leader: orders a txn that only answers `xid` of `session_id`
    /// with `err` (a learner's forwarded request that does not decode), in that session's
    /// order of writes.
    pub fn order_error(
        &mut self,
        now_ms: i64,
        session_id: SessionId,
        xid: i32,
        err: crate::proto::ErrorCode,
    ) {
        self.order(now_ms, session_id, xid, Txn::Error { err }, None);
    }

    /// Replicated mode: a txn the leader committed (this server is a learner, or the
    /// leader delivering history of an earlier epoch). Applied to the tree and queued for
    /// delivery like an ordered one, with the reply going to `reply_to` if this server
    /// holds the asking connection.
    pub fn apply_committed(&mut self, now_ms: i64, rec: TxnRecord, reply_to: Option<ReplyTo>) {
        if rec.zxid <= self.tree.last_zxid() {
            tracing::warn!(
                zxid = format_args!("{:#x}", rec.zxid),
                "committed txn already applied; skipped"
            );
            return;
        }
        self.last_zxid = rec.zxid;
        self.apply_and_queue(now_ms, rec, reply_to);
    }

    /// Replicated mode: the leader's zxids continue from `epoch << 32` in a new epoch.
    pub fn start_epoch(&mut self, first_zxid_minus_one: i64) {
        self.last_zxid = first_zxid_minus_one;
    }

    /// Replicated mode: a session id for a learner's new session (unique per server: the
    /// server id is in its top byte).
    pub fn allocate_session_id(&mut self) -> SessionId {
        self.sessions.next_session_id()
    }

    /// Whether `session_id` is live (a learner asks before resuming it); touches it if so.
    pub fn revalidate_remote(&mut self, now_ms: i64, session_id: SessionId) -> bool {
        let valid = self.sessions.is_active(session_id);
        if valid {
            self.sessions.touch(session_id, now_ms);
        }
        valid
    }

    /// Restarts every session's deadline from now (a new leader does not know when the
    /// clients last spoke, so it gives each a full timeout, as ZooKeeper's leader does).
    pub fn refresh_session_deadlines(&mut self, now_ms: i64) {
        let sessions: Vec<SessionId> = self.sessions.ids().map(|(id, _)| *id).collect();
        for id in sessions {
            self.sessions.touch(id, now_ms);
        }
    }

    /// Takes what was queued for delivery (replicated mode: the caller batches it with
    /// other committed entries).
    pub fn take_batch(&mut self) -> Vec<Committed> {
        std::mem::take(&mut self.batch)
    }

    /// Assigns the next zxid, applies to the sequencer's tree and queues for delivery.
    fn order(
        &mut self,
        now_ms: i64,
        session_id: SessionId,
        cxid: i32,
        txn: Txn,
        reply_to: Option<ReplyTo>,
    ) {
        self.last_zxid += 1;
        let rec = TxnRecord {
            zxid: self.last_zxid,
            time_ms: now_ms,
            session_id,
            cxid,
            txn,
        };
        self.apply_and_queue(now_ms, rec, reply_to);
    }

    fn apply_and_queue(&mut self, now_ms: i64, rec: TxnRecord, reply_to: Option<ReplyTo>) {
        let session_id = rec.session_id;
        self.scratch_triggers.clear();
        self.tree.apply(&rec, &mut self.scratch_triggers);
        match &rec.txn {
            Txn::CreateSession { timeout_ms } => self.sessions.add(session_id, *timeout_ms, now_ms),
            Txn::CloseSession { .. } => {
                self.sessions.remove(session_id);
                self.owners.remove(&session_id);
            }
            _ => {}
        }
        self.batch.push(Committed {
            rec: Some(rec),
            reply_to,
            sync_path: None,
        });
    }

    /// Deletes empty used containers and expired TTL nodes, as ContainerManager does.
    fn reap_containers(&mut self, now_ms: i64) {
        let per_run_max = ((self.cfg.container_max_per_minute as i64)
            * self.cfg.container_check_interval_ms.max(1)
            / 60_000)
            .max(1) as usize;
        let mut doomed: Vec<Arc<str>> = Vec::new();
        for p in self.tree.extended_nodes() {
            let Some(n) = self.tree.get(p) else { continue };
            if !n.children.is_empty() {
                continue;
            }
            let due = if n.ephemeral_owner == txn::CONTAINER_OWNER {
                n.cversion_creations > 0
                    || (self.cfg.container_max_never_used_interval_ms > 0
                        && now_ms - n.mtime_ms > self.cfg.container_max_never_used_interval_ms)
            } else if let Some(ttl) = txn::ttl_of(n.ephemeral_owner) {
                now_ms - n.mtime_ms > ttl
            } else {
                false
            };
            if due {
                doomed.push(p.clone());
            }
        }
        doomed.sort();
        for p in doomed.into_iter().take(per_run_max) {
            self.order(now_ms, 0, 0, Txn::DeleteContainer { path: p }, None);
        }
    }

    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.actions.push_back(Action::Deliver(Arc::new(batch)));
        }
    }

    /// The next action to perform, in order.
    pub fn poll_action(&mut self) -> Option<Action> {
        if self.actions.is_empty() {
            self.flush();
        }
        self.actions.pop_front()
    }
}

#[cfg(test)]
mod tests;
