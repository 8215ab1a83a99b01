//! Reads, answered from the shard's replica (ZooKeeper's FinalRequestProcessor, read side).
//!
//! Zero-copy: getData answers with the node's `Bytes`, which are the bytes of the client
//! frame that wrote them; the only copy of path or data on a read is the one into the
//! connection's output buffer.

use super::reply::{header_only, notification, with_body};
use super::{Conn, ShardCtx, ShardState};
use crate::jute::{Record, Writer};
use crate::proto::request::{PathWatch, ReadOp, SetWatches};
use crate::proto::{add_watch_mode, event, perms, ClientInfo, ErrorCode, Id, MultiHeader, Request};
use crate::tree::watches::WatchKind;
use crate::tree::{acl, DataTree, Node};
use bytes::{BufMut, BytesMut};
use std::rc::Rc;

/// The ACL context of the connection asking.
struct Access<'a> {
    auth_ids: &'a [Id],
    skip_acl: bool,
}

impl Access<'_> {
    fn allows(&self, node: &Node, perm: i32) -> bool {
        acl::check(&node.acl, perm, self.auth_ids, self.skip_acl)
    }
}

/// A node that exists and grants `perm`, or the error code to answer.
fn readable<'t>(
    tree: &'t DataTree,
    path: &str,
    perm: i32,
    access: &Access,
) -> Result<&'t Node, ErrorCode> {
    let n = tree.get(path).ok_or(ErrorCode::NoNode)?;
    if access.allows(n, perm) {
        Ok(n)
    } else {
        Err(ErrorCode::NoAuth)
    }
}

pub fn serve(ctx: &ShardCtx, st: &mut ShardState, conn: &Rc<Conn>, xid: i32, req: Request) {
    let mut cs_ref = conn.st.borrow_mut();
    let cs = &mut *cs_ref;
    let zxid = st.tree.last_zxid();
    let auth_ids = cs.auth_ids.clone();
    let access = Access {
        auth_ids: &auth_ids,
        skip_acl: ctx.settings.prep.skip_acl,
    };
    let session_id = cs.session_id;
    let out = &mut cs.out;
    let tree = &st.tree;
    let watches = &mut st.watches;
    let result: Result<(), ErrorCode> = (|| {
        match req {
            Request::Exists(pw) => {
                if pw.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                if pw.watch {
                    watches.add(conn.id, &pw.path, WatchKind::Data);
                }
                let n = tree.get(&pw.path).ok_or(ErrorCode::NoNode)?;
                with_body(out, xid, zxid, |o| n.stat().encode(o));
            }
            Request::GetData(pw) => {
                let n = readable(tree, &pw.path, perms::READ, &access)?;
                if pw.watch {
                    watches.add(conn.id, &pw.path, WatchKind::Data);
                }
                with_body(out, xid, zxid, |o| {
                    o.put_buffer_opt(n.data.as_deref());
                    n.stat().encode(o);
                });
            }
            Request::GetAcl(path) => {
                let n = tree.get(&path).ok_or(ErrorCode::NoNode)?;
                let list = if access.allows(n, perms::ADMIN) {
                    (*n.acl).clone()
                } else if access.allows(n, perms::READ) {
                    acl::masked_for_reader(&n.acl)
                } else {
                    return Err(ErrorCode::NoAuth);
                };
                with_body(out, xid, zxid, |o| {
                    o.put_vec(&list);
                    n.stat().encode(o);
                });
            }
            Request::GetChildren(pw) => {
                children(tree, watches, conn, &pw, &access, out, xid, zxid, false)?
            }
            Request::GetChildren2(pw) => {
                children(tree, watches, conn, &pw, &access, out, xid, zxid, true)?
            }
            Request::GetAllChildrenNumber(path) => {
                readable(tree, &path, perms::READ, &access)?;
                let count = tree.descendant_count(&path) as i32;
                with_body(out, xid, zxid, |o| o.put_i32(count));
            }
            Request::GetEphemerals(prefix) => {
                let all = prefix.is_empty() || &*prefix == "/";
                let list: Vec<&str> = tree
                    .ephemerals_of(session_id)
                    .map(|p| &**p)
                    .filter(|p| all || p.starts_with(&*prefix))
                    .collect();
                with_body(out, xid, zxid, |o| o.put_string_vec(&list));
            }
            Request::MultiRead(ops) => {
                with_body(out, xid, zxid, |o| {
                    for op in &ops {
                        let (kind, path) = match op {
                            ReadOp::GetChildren(p) => (crate::proto::op::GET_CHILDREN, p),
                            ReadOp::GetData(p) => (crate::proto::op::GET_DATA, p),
                        };
                        match readable(tree, path, perms::READ, &access) {
                            Err(err) => {
                                MultiHeader {
                                    op: crate::proto::op::ERROR,
                                    done: false,
                                    err: err.code(),
                                }
                                .encode(o);
                                o.put_i32(err.code());
                            }
                            Ok(n) => {
                                MultiHeader {
                                    op: kind,
                                    done: false,
                                    err: 0,
                                }
                                .encode(o);
                                if kind == crate::proto::op::GET_DATA {
                                    o.put_buffer_opt(n.data.as_deref());
                                    n.stat().encode(o);
                                } else {
                                    o.put_i32(n.children.len() as i32);
                                    for c in n.children.names() {
                                        o.put_string(c);
                                    }
                                }
                            }
                        }
                    }
                    MultiHeader::END.encode(o);
                });
            }
            Request::CheckWatches { path, watcher_type } => {
                if !watches.check(conn.id, &path, watcher_type) {
                    return Err(ErrorCode::NoWatcher);
                }
                header_only(out, xid, zxid, ErrorCode::Ok);
            }
            Request::RemoveWatches { path, watcher_type } => {
                if !watches.remove(conn.id, &path, watcher_type) {
                    return Err(ErrorCode::NoWatcher);
                }
                header_only(out, xid, zxid, ErrorCode::Ok);
            }
            Request::AddWatch { path, mode } => {
                let kind = match mode {
                    add_watch_mode::PERSISTENT => WatchKind::Persistent,
                    add_watch_mode::PERSISTENT_RECURSIVE => WatchKind::PersistentRecursive,
                    _ => return Err(ErrorCode::BadArguments),
                };
                watches.add(conn.id, &path, kind);
                // addWatch answers with an ErrorResponse body holding 0.
                with_body(out, xid, zxid, |o| o.put_i32(0));
            }
            Request::SetWatches { watches: w, .. } => {
                set_watches(tree, watches, conn, &w, out);
                header_only(out, xid, zxid, ErrorCode::Ok);
            }
            // A ping is ordered like a read: its reply follows every watch event of the
            // writes committed before it (clients use it as a barrier).
            Request::Ping => header_only(out, crate::proto::xid::PING, zxid, ErrorCode::Ok),
            Request::WhoAmI => {
                let infos: Vec<ClientInfo> = auth_ids
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or("").into(),
                            _ => id.id.clone(),
                        },
                    })
                    .collect();
                with_body(out, xid, zxid, |o| o.put_vec(&infos));
            }
            _ => return Err(ErrorCode::Unimplemented),
        }
        Ok(())
    })();
    if let Err(err) = result {
        header_only(&mut cs.out, xid, zxid, err);
    }
}

#[allow(clippy::too_many_arguments)]
fn children(
    tree: &DataTree,
    watches: &mut crate::tree::watches::WatchRegistry,
    conn: &Conn,
    pw: &PathWatch,
    access: &Access,
    out: &mut BytesMut,
    xid: i32,
    zxid: i64,
    with_stat: bool,
) -> Result<(), ErrorCode> {
    let n = readable(tree, &pw.path, perms::READ, access)?;
    if pw.watch {
        watches.add(conn.id, &pw.path, WatchKind::Child);
    }
    with_body(out, xid, zxid, |o| {
        o.put_i32(n.children.len() as i32);
        for c in n.children.names() {
            o.put_string(c);
        }
        if with_stat {
            n.stat().encode(o);
        }
    });
    Ok(())
}

/// Re-registers a reconnecting client's watches; what changed since `relative_zxid` fires
/// at once instead (ZooKeeper's DataTree.setWatches).
fn set_watches(
    tree: &DataTree,
    watches: &mut crate::tree::watches::WatchRegistry,
    conn: &Conn,
    w: &SetWatches,
    out: &mut BytesMut,
) {
    let rel = w.relative_zxid;
    for p in &w.data_watches {
        match tree.get(p) {
            None => notification(out, event::NODE_DELETED, p),
            Some(n) if n.mzxid > rel => notification(out, event::NODE_DATA_CHANGED, p),
            Some(_) => watches.add(conn.id, p, WatchKind::Data),
        }
    }
    for p in &w.exist_watches {
        match tree.get(p) {
            Some(_) => notification(out, event::NODE_CREATED, p),
            None => watches.add(conn.id, p, WatchKind::Data),
        }
    }
    for p in &w.child_watches {
        match tree.get(p) {
            None => notification(out, event::NODE_DELETED, p),
            Some(n) if n.pzxid > rel => notification(out, event::NODE_CHILDREN_CHANGED, p),
            Some(_) => watches.add(conn.id, p, WatchKind::Child),
        }
    }
    for p in &w.persistent_watches {
        watches.add(conn.id, p, WatchKind::Persistent);
    }
    for p in &w.persistent_recursive_watches {
        watches.add(conn.id, p, WatchKind::PersistentRecursive);
    }
}
