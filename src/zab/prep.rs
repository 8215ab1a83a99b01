//! Request validation into idempotent transactions (ZooKeeper's PrepRequestProcessor).
//!
//! Runs on the ZAB executor against the tree at the last *proposed* zxid, so a request
//! sees the effects of every write ordered before it. Within a multi, ops see the effects
//! of earlier ops through an [`Overlay`]; nothing touches the tree until the whole multi
//! validated, which is what makes multi atomic.
//!
//! Validation order follows ZooKeeper 3.8 op by op (zk-surface §4): the first failing
//! check decides the error code clients see.

use crate::proto::request::{CreateRequest, MultiOp, PathVersion, SetAclRequest, SetDataRequest};
use crate::proto::{op, path, perms, Acl, CreateMode, ErrorCode, Id, SessionId};
use crate::proto::{CONFIG_PATH, QUOTA_PATH, ZOOKEEPER_PATH};
use crate::tree::quota::Limits;
use crate::tree::txn::{self, CreateTxn, Txn};
use crate::tree::{acl, DataTree};
use std::collections::HashMap;
use std::sync::Arc;

/// Server switches that change validation.
#[derive(Debug, Clone, Default)]
pub struct PrepConfig {
    pub extended_types_enabled: bool,
    pub skip_acl: bool,
    pub enforce_quota: bool,
    pub reconfig_enabled: bool,
}

/// What the leader knows when it validates a `reconfig` (replicated mode with
/// `reconfigEnabled`; `None` elsewhere, where a reconfig is refused).
#[derive(Debug, Clone)]
pub struct ReconfigView {
    /// The membership in force (the last committed reconfig's, or the static one).
    pub membership: crate::config::Membership,
    /// A reconfig is ordered and not yet committed (ZooKeeper's last seen config is newer
    /// than its current one).
    pub in_progress: bool,
    /// Servers synced with the leader now, the leader included.
    pub synced: std::collections::BTreeSet<u64>,
    /// `standaloneEnabled`: the new membership then needs at least two voters.
    pub standalone_enabled: bool,
}

/// Who is asking.
pub struct Caller<'a> {
    pub session_id: SessionId,
    pub auth_ids: &'a [Id],
}

/// The validation-relevant part of a node, possibly changed by earlier ops of a multi.
#[derive(Debug, Clone)]
struct Rec {
    version: i32,
    aversion: i32,
    cversion_creations: i32,
    num_children: i32,
    ephemeral_owner: i64,
    acl: Arc<Vec<Acl>>,
    data_len: i64,
}

/// Pending changes of the ops validated so far in one multi.
#[derive(Default)]
struct Overlay {
    changes: HashMap<String, Option<Rec>>,
}

struct View<'a> {
    tree: &'a DataTree,
    overlay: Overlay,
    /// Whether `set` records changes for later ops to read (a multi). A single op reads
    /// nothing after its sets, so it skips the path copy and map entry each would cost.
    keeps_changes: bool,
}

impl View<'_> {
    fn get(&self, p: &str) -> Option<Rec> {
        if let Some(change) = self.overlay.changes.get(p) {
            return change.clone();
        }
        let n = self.tree.get(p)?;
        Some(Rec {
            version: n.version,
            aversion: n.aversion,
            cversion_creations: n.cversion_creations,
            num_children: n.children.len() as i32,
            ephemeral_owner: n.ephemeral_owner,
            acl: n.acl.clone(),
            data_len: crate::tree::data_len(&n.data) as i64,
        })
    }

    fn set(&mut self, p: &str, rec: Option<Rec>) {
        if self.keeps_changes {
            self.overlay.changes.insert(p.to_string(), rec);
        }
    }

    fn intern(&self, p: &str) -> Arc<str> {
        self.tree.interned(p).unwrap_or_else(|| Arc::from(p))
    }
}

/// Znode data arrives as a slice of the client's read buffer; keeping that slice would pin
/// the whole buffer (up to 64 KiB) for as long as the node lives. One copy here, on the
/// ZAB executor, gives the data its own allocation, which every replica then shares.
fn compact(data: &Option<bytes::Bytes>) -> Option<bytes::Bytes> {
    data.as_deref().map(bytes::Bytes::copy_from_slice)
}

fn is_special(p: &str) -> bool {
    matches!(p, "/" | ZOOKEEPER_PATH | QUOTA_PATH | CONFIG_PATH)
}

/// ZooKeeper takes `path[..last_slash]` as the parent, with "" meaning the root (so the
/// parent of `//x` is `/`, and the full-path check then refuses it).
fn parent_of(p: &str) -> Result<&str, ErrorCode> {
    let last_slash = p.rfind('/').ok_or(ErrorCode::BadArguments)?;
    Ok(match &p[..last_slash] {
        "" => "/",
        parent => parent,
    })
}

fn check_version(current: i32, expected: i32) -> Result<i32, ErrorCode> {
    if expected != -1 && expected != current {
        return Err(ErrorCode::BadVersion);
    }
    Ok(current.wrapping_add(1))
}

fn require(rec: &Rec, perm: i32, caller: &Caller, cfg: &PrepConfig) -> Result<(), ErrorCode> {
    if acl::check(&rec.acl, perm, caller.auth_ids, cfg.skip_acl) {
        Ok(())
    } else {
        Err(ErrorCode::NoAuth)
    }
}

fn valid_path(p: &str) -> Result<(), ErrorCode> {
    path::validate(p).map_err(|_| ErrorCode::BadArguments)
}

/// The checks setData, setACL and check share, in ZooKeeper's order: a valid path, an
/// existing node, then `perm` on it.
fn existing(
    view: &View,
    p: &str,
    perm: i32,
    caller: &Caller,
    cfg: &PrepConfig,
) -> Result<Rec, ErrorCode> {
    valid_path(p)?;
    let node = view.get(p).ok_or(ErrorCode::NoNode)?;
    require(&node, perm, caller, cfg)?;
    Ok(node)
}

/// Hard quota check for adding `count_delta` nodes and `bytes_delta` bytes under `p`.
fn check_quota(
    tree: &DataTree,
    p: &str,
    count_delta: i64,
    bytes_delta: i64,
    cfg: &PrepConfig,
) -> Result<(), ErrorCode> {
    if !cfg.enforce_quota {
        return Ok(());
    }
    let Some((_, usage, limits)) = tree.quota_for(p) else {
        return Ok(());
    };
    let Limits {
        count_hard,
        bytes_hard,
        ..
    } = limits;
    if count_hard >= 0 && count_delta > 0 && usage.count + count_delta > count_hard {
        return Err(ErrorCode::QuotaExceeded);
    }
    if bytes_hard >= 0 && bytes_delta > 0 && usage.bytes + bytes_delta > bytes_hard {
        return Err(ErrorCode::QuotaExceeded);
    }
    Ok(())
}

/// Validates one write request (not multi) into a transaction. Errors become
/// `Txn::Error`, which still takes a zxid, as in ZooKeeper.
pub fn prepare(
    tree: &DataTree,
    req: &crate::proto::Request,
    caller: &Caller,
    cfg: &PrepConfig,
) -> Txn {
    use crate::proto::Request as R;
    let mut view = View {
        tree,
        overlay: Overlay::default(),
        keeps_changes: false,
    };
    let result = match req {
        R::Create { op, req } => prep_create(&mut view, *op, req, false, caller, cfg),
        R::Delete(d) => prep_delete(&mut view, d, caller, cfg),
        R::SetData(s) => prep_set_data(&mut view, s, caller, cfg),
        R::SetAcl(s) => prep_set_acl(&mut view, s, caller, cfg),
        R::Check(c) => prep_check(&mut view, c, caller, cfg),
        R::Multi(ops) => return prep_multi(tree, ops, caller, cfg),
        R::CloseSession => Ok(close_session(tree, caller.session_id)),
        // ZooKeeper checks reconfigEnabled first; a standalone server then refuses.
        R::Reconfig(_) if !cfg.reconfig_enabled => Err(ErrorCode::ReconfigDisabled),
        R::Reconfig(_) => Err(ErrorCode::Unimplemented),
        _ => Err(ErrorCode::Unimplemented),
    };
    result.unwrap_or_else(|err| Txn::Error { err })
}

/// Validates a `reconfig` into the setData of `/zookeeper/config` that carries the new
/// membership (version `zxid`, the zxid this txn is about to take), in ZooKeeper 3.8's
/// order (`PrepRequestProcessor`, `OpCode.reconfig`): disabled, standalone, another
/// reconfig in progress, `fromConfig` against the current version (BadVersion), the new
/// membership (BadArguments), at least two voters with `standaloneEnabled` (one without),
/// a synced quorum of the new voters (NewConfigNoQuorum), and last WRITE permission on
/// `/zookeeper/config` (world-readable only: the super user, or `skipACL`). The txn's
/// version is -1, as ZooKeeper's: the node's dataVersion reads -1 after a reconfig.
pub fn prepare_reconfig(
    tree: &DataTree,
    req: &crate::proto::request::ReconfigRequest,
    caller: &Caller,
    cfg: &PrepConfig,
    view: Option<&ReconfigView>,
    zxid: i64,
) -> Txn {
    prep_reconfig(tree, req, caller, cfg, view, zxid).unwrap_or_else(|err| Txn::Error { err })
}

fn prep_reconfig(
    tree: &DataTree,
    req: &crate::proto::request::ReconfigRequest,
    caller: &Caller,
    cfg: &PrepConfig,
    view: Option<&ReconfigView>,
    zxid: i64,
) -> Result<Txn, ErrorCode> {
    use crate::config::{apply_reconfig, render_membership, ReconfigChange, Role};
    if !cfg.reconfig_enabled {
        return Err(ErrorCode::ReconfigDisabled);
    }
    let view = view.ok_or(ErrorCode::Unimplemented)?;
    if view.in_progress {
        return Err(ErrorCode::ReconfigInProgress);
    }
    if req.cur_config_id != -1 && req.cur_config_id as u64 != view.membership.version {
        return Err(ErrorCode::BadVersion);
    }
    let change = ReconfigChange {
        joining: req.joining_servers.as_deref(),
        leaving: req.leaving_servers.as_deref(),
        new_members: req.new_members.as_deref(),
    };
    let mut next = apply_reconfig(&view.membership, &change).map_err(|why| {
        tracing::warn!(why, "reconfig refused");
        ErrorCode::BadArguments
    })?;
    next.version = zxid as u64;
    let voters: std::collections::BTreeSet<u64> = next
        .servers
        .iter()
        .filter(|s| s.role == Role::Participant)
        .map(|s| s.id)
        .collect();
    let voters_min = if view.standalone_enabled { 2 } else { 1 };
    if voters.len() < voters_min {
        return Err(ErrorCode::BadArguments);
    }
    let synced = voters.iter().filter(|id| view.synced.contains(id)).count();
    if synced <= voters.len() / 2 {
        return Err(ErrorCode::NewConfigNoQuorum);
    }
    let view_tree = View {
        tree,
        overlay: Overlay::default(),
        keeps_changes: false,
    };
    let node = view_tree.get(CONFIG_PATH).ok_or(ErrorCode::NoNode)?;
    require(&node, perms::WRITE, caller, cfg)?;
    Ok(Txn::SetData {
        path: view_tree.intern(CONFIG_PATH),
        data: Some(bytes::Bytes::from(render_membership(&next))),
        version: -1,
    })
}

/// Whether a txn is a reconfig: the setData of `/zookeeper/config` with version -1 (a
/// client's setData always leaves a version of 0 or more).
pub fn is_reconfig(txn: &Txn) -> bool {
    matches!(txn, Txn::SetData { path, version: -1, .. } if &**path == CONFIG_PATH)
}

/// The close-session transaction: deletes every ephemeral of the session.
pub fn close_session(tree: &DataTree, session_id: SessionId) -> Txn {
    Txn::CloseSession {
        ephemerals: tree.ephemerals_of(session_id).cloned().collect(),
    }
}

fn prep_multi(tree: &DataTree, ops: &[MultiOp], caller: &Caller, cfg: &PrepConfig) -> Txn {
    let mut view = View {
        tree,
        overlay: Overlay::default(),
        keeps_changes: true,
    };
    let mut txns = Vec::with_capacity(ops.len());
    for (i, o) in ops.iter().enumerate() {
        let r = match o {
            MultiOp::Create { op, req } => prep_create(&mut view, *op, req, true, caller, cfg),
            MultiOp::Delete(d) => prep_delete(&mut view, d, caller, cfg),
            MultiOp::SetData(s) => prep_set_data(&mut view, s, caller, cfg),
            MultiOp::Check(c) => prep_check(&mut view, c, caller, cfg),
        };
        match r {
            Ok(t) => txns.push(t),
            Err(err) => return txn::multi_error(ops.len(), i, err),
        }
    }
    Txn::Multi { ops: txns }
}

fn prep_create(
    view: &mut View,
    opcode: i32,
    req: &CreateRequest,
    in_multi: bool,
    caller: &Caller,
    cfg: &PrepConfig,
) -> Result<Txn, ErrorCode> {
    let mut mode = CreateMode::from_flags(req.flags).ok_or(ErrorCode::BadArguments)?;
    // ZooKeeper 3.8 makes a container only for createContainer (19) or inside a multi,
    // where the op is derived from the flags; create/create2 with the container flag
    // outside a multi make a plain persistent node.
    if mode.is_container() && !in_multi && opcode != op::CREATE_CONTAINER {
        mode = CreateMode::Persistent;
    }
    let ttl = req.ttl.unwrap_or(-1);
    if mode.is_ttl() {
        if !cfg.extended_types_enabled {
            return Err(ErrorCode::Unimplemented);
        }
        if ttl <= 0 || ttl > txn::TTL_MAX_MS {
            return Err(ErrorCode::BadArguments);
        }
    } else if ttl >= 0 && opcode == op::CREATE_TTL {
        return Err(ErrorCode::BadArguments);
    }
    if mode.is_container() && opcode == op::CREATE_TTL {
        return Err(ErrorCode::BadArguments);
    }
    let p: &str = &req.path;
    if p.contains('\0') {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = parent_of(p)?;
    let acl = view.tree.shared_acl(acl::fixup(&req.acl, caller.auth_ids)?);
    let parent = view.get(parent_path).ok_or(ErrorCode::NoNode)?;
    require(&parent, perms::CREATE, caller, cfg)?;
    let full_path = if mode.is_sequential() {
        format!("{p}{:010}", parent.cversion_creations)
    } else {
        p.to_string()
    };
    valid_path(&full_path)?;
    if view.get(&full_path).is_some() {
        return Err(ErrorCode::NodeExists);
    }
    if txn::is_session_owner(parent.ephemeral_owner) {
        return Err(ErrorCode::NoChildrenForEphemerals);
    }
    check_quota(
        view.tree,
        &full_path,
        1,
        crate::tree::data_len(&req.data) as i64,
        cfg,
    )?;
    let ephemeral_owner = if mode.is_ephemeral() {
        caller.session_id
    } else if mode.is_container() {
        txn::CONTAINER_OWNER
    } else if mode.is_ttl() {
        txn::ttl_owner(ttl)
    } else {
        0
    };
    let parent_cversion = parent.cversion_creations.wrapping_add(1);
    let mut new_parent = parent.clone();
    new_parent.cversion_creations = parent_cversion;
    new_parent.num_children += 1;
    view.set(parent_path, Some(new_parent));
    view.set(
        &full_path,
        Some(Rec {
            version: 0,
            aversion: 0,
            cversion_creations: 0,
            num_children: 0,
            ephemeral_owner,
            acl: acl.clone(),
            data_len: crate::tree::data_len(&req.data) as i64,
        }),
    );
    Ok(Txn::Create(CreateTxn {
        path: Arc::from(full_path.as_str()),
        data: compact(&req.data),
        acl,
        ephemeral_owner,
        parent_cversion,
        with_stat: opcode != op::CREATE,
    }))
}

fn prep_delete(
    view: &mut View,
    d: &PathVersion,
    caller: &Caller,
    cfg: &PrepConfig,
) -> Result<Txn, ErrorCode> {
    let p: &str = &d.path;
    if p.contains('\0') || is_special(p) {
        return Err(ErrorCode::BadArguments);
    }
    let parent_path = parent_of(p)?;
    let parent = view.get(parent_path).ok_or(ErrorCode::NoNode)?;
    // ZooKeeper does not validate the rest of a delete's path: `/x/` or `/x/..` simply
    // name no node.
    let node = view.get(p).ok_or(ErrorCode::NoNode)?;
    require(&parent, perms::DELETE, caller, cfg)?;
    check_version(node.version, d.version)?;
    if node.num_children > 0 {
        return Err(ErrorCode::NotEmpty);
    }
    let mut new_parent = parent;
    new_parent.num_children -= 1;
    view.set(parent_path, Some(new_parent));
    view.set(p, None);
    Ok(Txn::Delete {
        path: view.intern(p),
    })
}

fn prep_set_data(
    view: &mut View,
    s: &SetDataRequest,
    caller: &Caller,
    cfg: &PrepConfig,
) -> Result<Txn, ErrorCode> {
    let p: &str = &s.path;
    let node = existing(view, p, perms::WRITE, caller, cfg)?;
    let new_len = crate::tree::data_len(&s.data) as i64;
    check_quota(view.tree, p, 0, new_len - node.data_len, cfg)?;
    let version = check_version(node.version, s.version)?;
    let mut new_node = node;
    new_node.version = version;
    new_node.data_len = new_len;
    view.set(p, Some(new_node));
    Ok(Txn::SetData {
        path: view.intern(p),
        data: compact(&s.data),
        version,
    })
}

fn prep_set_acl(
    view: &mut View,
    s: &SetAclRequest,
    caller: &Caller,
    cfg: &PrepConfig,
) -> Result<Txn, ErrorCode> {
    let p: &str = &s.path;
    let node = existing(view, p, perms::ADMIN, caller, cfg)?;
    let acl = view.tree.shared_acl(acl::fixup(&s.acl, caller.auth_ids)?);
    let aversion = check_version(node.aversion, s.version)?;
    let mut new_node = node;
    new_node.aversion = aversion;
    new_node.acl = acl.clone();
    view.set(p, Some(new_node));
    Ok(Txn::SetAcl {
        path: view.intern(p),
        acl,
        aversion,
    })
}

fn prep_check(
    view: &mut View,
    c: &PathVersion,
    caller: &Caller,
    cfg: &PrepConfig,
) -> Result<Txn, ErrorCode> {
    let p: &str = &c.path;
    let node = existing(view, p, perms::READ, caller, cfg)?;
    check_version(node.version, c.version)?;
    Ok(Txn::Check {
        path: view.intern(p),
    })
}
