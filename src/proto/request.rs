//! Client requests: one record per op code, and [`Request`], the decoded union.
//!
//! Paths and data are slices of the received frame ([`JStr`], `Bytes`): decoding copies
//! nothing but fixed-size fields.

use super::{op, Acl, MultiHeader};
use crate::jute::{DecodeError, JStr, Reader, Record, Writer};
use bytes::Bytes;

/// create / create2 / createContainer / createTTL (ttl is only on the wire for createTTL).
/// `data` is `None` for jute's null buffer, which ZooKeeper stores and returns as null.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateRequest {
    pub path: JStr,
    pub data: Option<Bytes>,
    pub acl: Vec<Acl>,
    pub flags: i32,
    pub ttl: Option<i64>,
}

impl CreateRequest {
    fn decode_with(r: &mut Reader, with_ttl: bool) -> Result<Self, DecodeError> {
        Ok(CreateRequest {
            path: r.string()?,
            data: r.buffer_opt()?,
            acl: r.vec()?,
            flags: r.i32()?,
            ttl: if with_ttl { Some(r.i64()?) } else { None },
        })
    }
    pub fn encode<W: Writer>(&self, w: &mut W) {
        w.put_string(&self.path);
        w.put_buffer_opt(self.data.as_deref());
        w.put_vec(&self.acl);
        w.put_i32(self.flags);
        if let Some(ttl) = self.ttl {
            w.put_i64(ttl);
        }
    }
}

/// Requests that carry a path and a version: delete, check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathVersion {
    pub path: JStr,
    pub version: i32,
}

/// Reads that carry a path and a watch flag: exists, getData, getChildren(2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PathWatch {
    pub path: JStr,
    pub watch: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetDataRequest {
    pub path: JStr,
    pub data: Option<Bytes>,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAclRequest {
    pub path: JStr,
    pub acl: Vec<Acl>,
    pub version: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconfigRequest {
    pub joining_servers: Option<JStr>,
    pub leaving_servers: Option<JStr>,
    pub new_members: Option<JStr>,
    pub cur_config_id: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthPacket {
    pub auth_type: i32,
    pub scheme: JStr,
    pub auth: Bytes,
}

/// SetWatches (op 101) and SetWatches2 (op 105, with the persistent lists).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SetWatches {
    pub relative_zxid: i64,
    pub data_watches: Vec<JStr>,
    pub exist_watches: Vec<JStr>,
    pub child_watches: Vec<JStr>,
    pub persistent_watches: Vec<JStr>,
    pub persistent_recursive_watches: Vec<JStr>,
}

/// One write op inside a multi.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MultiOp {
    Create { op: i32, req: CreateRequest },
    Delete(PathVersion),
    SetData(SetDataRequest),
    Check(PathVersion),
}

/// One read op inside a multiRead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadOp {
    GetChildren(JStr),
    GetData(JStr),
}

/// A decoded client request body, tagged by op code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    /// create (1), create2 (15), createContainer (19), createTTL (21).
    Create {
        op: i32,
        req: CreateRequest,
    },
    Delete(PathVersion),
    Exists(PathWatch),
    GetData(PathWatch),
    SetData(SetDataRequest),
    GetAcl(JStr),
    SetAcl(SetAclRequest),
    GetChildren(PathWatch),
    GetChildren2(PathWatch),
    Sync(JStr),
    Ping,
    Check(PathVersion),
    Multi(Vec<MultiOp>),
    MultiRead(Vec<ReadOp>),
    Reconfig(ReconfigRequest),
    CheckWatches {
        path: JStr,
        watcher_type: i32,
    },
    RemoveWatches {
        path: JStr,
        watcher_type: i32,
    },
    Auth(AuthPacket),
    SetWatches {
        op: i32,
        watches: SetWatches,
    },
    Sasl(Bytes),
    GetEphemerals(JStr),
    GetAllChildrenNumber(JStr),
    AddWatch {
        path: JStr,
        mode: i32,
    },
    WhoAmI,
    CloseSession,
}

fn path_watch(r: &mut Reader) -> Result<PathWatch, DecodeError> {
    Ok(PathWatch {
        path: r.string()?,
        watch: r.bool()?,
    })
}

fn path_version(r: &mut Reader) -> Result<PathVersion, DecodeError> {
    Ok(PathVersion {
        path: r.string()?,
        version: r.i32()?,
    })
}

fn set_data(r: &mut Reader) -> Result<SetDataRequest, DecodeError> {
    Ok(SetDataRequest {
        path: r.string()?,
        data: r.buffer_opt()?,
        version: r.i32()?,
    })
}

/// Largest number of ops accepted in one multi: bounds work per request. A multi cannot
/// exceed the frame limit anyway; this only refuses absurd counts of tiny ops early.
pub const MULTI_OPS_MAX: usize = 100_000;

impl Request {
    /// Decodes the body of a request with op code `op` (the header is already read).
    /// `Ok(None)` for an op code this server does not know (answered with Unimplemented).
    pub fn decode(op: i32, body: Bytes) -> Result<Option<Request>, DecodeError> {
        let mut r = Reader::new(body);
        let req = match op {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => Request::Create {
                op,
                req: CreateRequest::decode_with(&mut r, false)?,
            },
            op::CREATE_TTL => Request::Create {
                op,
                req: CreateRequest::decode_with(&mut r, true)?,
            },
            op::DELETE => Request::Delete(path_version(&mut r)?),
            op::EXISTS => Request::Exists(path_watch(&mut r)?),
            op::GET_DATA => Request::GetData(path_watch(&mut r)?),
            op::SET_DATA => Request::SetData(set_data(&mut r)?),
            op::GET_ACL => Request::GetAcl(r.string()?),
            op::SET_ACL => Request::SetAcl(SetAclRequest {
                path: r.string()?,
                acl: r.vec()?,
                version: r.i32()?,
            }),
            op::GET_CHILDREN => Request::GetChildren(path_watch(&mut r)?),
            op::GET_CHILDREN2 => Request::GetChildren2(path_watch(&mut r)?),
            op::SYNC => Request::Sync(r.string()?),
            op::PING => Request::Ping,
            op::CHECK => Request::Check(path_version(&mut r)?),
            op::MULTI => Request::Multi(decode_multi(&mut r)?),
            op::MULTI_READ => Request::MultiRead(decode_multi_read(&mut r)?),
            op::RECONFIG => Request::Reconfig(ReconfigRequest {
                joining_servers: r.string_opt()?,
                leaving_servers: r.string_opt()?,
                new_members: r.string_opt()?,
                cur_config_id: r.i64()?,
            }),
            op::CHECK_WATCHES => Request::CheckWatches {
                path: r.string()?,
                watcher_type: r.i32()?,
            },
            op::REMOVE_WATCHES => Request::RemoveWatches {
                path: r.string()?,
                watcher_type: r.i32()?,
            },
            op::AUTH => Request::Auth(AuthPacket {
                auth_type: r.i32()?,
                scheme: r.string()?,
                auth: r.buffer()?,
            }),
            op::SET_WATCHES | op::SET_WATCHES2 => {
                let mut w = SetWatches {
                    relative_zxid: r.i64()?,
                    data_watches: r.string_vec()?,
                    exist_watches: r.string_vec()?,
                    child_watches: r.string_vec()?,
                    ..SetWatches::default()
                };
                if op == op::SET_WATCHES2 {
                    w.persistent_watches = r.string_vec()?;
                    w.persistent_recursive_watches = r.string_vec()?;
                }
                Request::SetWatches { op, watches: w }
            }
            op::SASL => Request::Sasl(r.buffer()?),
            op::GET_EPHEMERALS => Request::GetEphemerals(r.string()?),
            op::GET_ALL_CHILDREN_NUMBER => Request::GetAllChildrenNumber(r.string()?),
            op::ADD_WATCH => Request::AddWatch {
                path: r.string()?,
                mode: r.i32()?,
            },
            op::WHO_AM_I => Request::WhoAmI,
            op::CLOSE_SESSION => Request::CloseSession,
            _ => return Ok(None),
        };
        // Java's server ignores bytes after the record; so do we (clients pad sometimes).
        Ok(Some(req))
    }

    /// The op code this request travels under.
    pub fn op(&self) -> i32 {
        match self {
            Request::Create { op, .. } => *op,
            Request::Delete(_) => op::DELETE,
            Request::Exists(_) => op::EXISTS,
            Request::GetData(_) => op::GET_DATA,
            Request::SetData(_) => op::SET_DATA,
            Request::GetAcl(_) => op::GET_ACL,
            Request::SetAcl(_) => op::SET_ACL,
            Request::GetChildren(_) => op::GET_CHILDREN,
            Request::GetChildren2(_) => op::GET_CHILDREN2,
            Request::Sync(_) => op::SYNC,
            Request::Ping => op::PING,
            Request::Check(_) => op::CHECK,
            Request::Multi(_) => op::MULTI,
            Request::MultiRead(_) => op::MULTI_READ,
            Request::Reconfig(_) => op::RECONFIG,
            Request::CheckWatches { .. } => op::CHECK_WATCHES,
            Request::RemoveWatches { .. } => op::REMOVE_WATCHES,
            Request::Auth(_) => op::AUTH,
            Request::SetWatches { op, .. } => *op,
            Request::Sasl(_) => op::SASL,
            Request::GetEphemerals(_) => op::GET_EPHEMERALS,
            Request::GetAllChildrenNumber(_) => op::GET_ALL_CHILDREN_NUMBER,
            Request::AddWatch { .. } => op::ADD_WATCH,
            Request::WhoAmI => op::WHO_AM_I,
            Request::CloseSession => op::CLOSE_SESSION,
        }
    }

    /// Does this request change state (and so travel through the ZAB pipeline)?
    pub fn is_write(&self) -> bool {
        matches!(
            self,
            Request::Create { .. }
                | Request::Delete(_)
                | Request::SetData(_)
                | Request::SetAcl(_)
                | Request::Check(_)
                | Request::Multi(_)
                | Request::Reconfig(_)
                | Request::CloseSession
        )
    }

    /// Encodes the body (not the header). Used by Corral's own client tools.
    pub fn encode<W: Writer>(&self, w: &mut W) {
        match self {
            Request::Create { req, .. } => req.encode(w),
            Request::Delete(pv) | Request::Check(pv) => {
                w.put_string(&pv.path);
                w.put_i32(pv.version);
            }
            Request::Exists(pw)
            | Request::GetData(pw)
            | Request::GetChildren(pw)
            | Request::GetChildren2(pw) => {
                w.put_string(&pw.path);
                w.put_bool(pw.watch);
            }
            Request::SetData(s) => {
                w.put_string(&s.path);
                w.put_buffer_opt(s.data.as_deref());
                w.put_i32(s.version);
            }
            Request::GetAcl(p)
            | Request::Sync(p)
            | Request::GetEphemerals(p)
            | Request::GetAllChildrenNumber(p) => w.put_string(p),
            Request::SetAcl(s) => {
                w.put_string(&s.path);
                w.put_vec(&s.acl);
                w.put_i32(s.version);
            }
            Request::Ping | Request::WhoAmI | Request::CloseSession => {}
            Request::Multi(ops) => {
                for o in ops {
                    let op = match o {
                        MultiOp::Create { op, .. } => *op,
                        MultiOp::Delete(_) => op::DELETE,
                        MultiOp::SetData(_) => op::SET_DATA,
                        MultiOp::Check(_) => op::CHECK,
                    };
                    MultiHeader {
                        op,
                        done: false,
                        err: -1,
                    }
                    .encode(w);
                    match o {
                        MultiOp::Create { req, .. } => req.encode(w),
                        MultiOp::Delete(pv) | MultiOp::Check(pv) => {
                            w.put_string(&pv.path);
                            w.put_i32(pv.version);
                        }
                        MultiOp::SetData(s) => {
                            w.put_string(&s.path);
                            w.put_buffer_opt(s.data.as_deref());
                            w.put_i32(s.version);
                        }
                    }
                }
                MultiHeader::END.encode(w);
            }
            Request::MultiRead(ops) => {
                for o in ops {
                    let (op, path) = match o {
                        ReadOp::GetChildren(p) => (op::GET_CHILDREN, p),
                        ReadOp::GetData(p) => (op::GET_DATA, p),
                    };
                    MultiHeader {
                        op,
                        done: false,
                        err: -1,
                    }
                    .encode(w);
                    w.put_string(path);
                    w.put_bool(false);
                }
                MultiHeader::END.encode(w);
            }
            Request::Reconfig(rc) => {
                w.put_buffer_opt(rc.joining_servers.as_ref().map(|s| s.as_str().as_bytes()));
                w.put_buffer_opt(rc.leaving_servers.as_ref().map(|s| s.as_str().as_bytes()));
                w.put_buffer_opt(rc.new_members.as_ref().map(|s| s.as_str().as_bytes()));
                w.put_i64(rc.cur_config_id);
            }
            Request::CheckWatches { path, watcher_type }
            | Request::RemoveWatches { path, watcher_type } => {
                w.put_string(path);
                w.put_i32(*watcher_type);
            }
            Request::Auth(a) => {
                w.put_i32(a.auth_type);
                w.put_string(&a.scheme);
                w.put_buffer(&a.auth);
            }
            Request::SetWatches { op, watches } => {
                w.put_i64(watches.relative_zxid);
                w.put_string_vec(&watches.data_watches);
                w.put_string_vec(&watches.exist_watches);
                w.put_string_vec(&watches.child_watches);
                if *op == op::SET_WATCHES2 {
                    w.put_string_vec(&watches.persistent_watches);
                    w.put_string_vec(&watches.persistent_recursive_watches);
                }
            }
            Request::Sasl(token) => w.put_buffer(token),
            Request::AddWatch { path, mode } => {
                w.put_string(path);
                w.put_i32(*mode);
            }
        }
    }
}

/// Reads `MultiHeader` + op records until the terminating header, bounded by
/// [`MULTI_OPS_MAX`]; `one` decodes the record of one op type or refuses the type.
fn decode_ops<T>(
    r: &mut Reader,
    what: &'static str,
    mut one: impl FnMut(i32, &mut Reader) -> Result<T, DecodeError>,
) -> Result<Vec<T>, DecodeError> {
    let mut ops = Vec::new();
    loop {
        let h = MultiHeader::decode(r)?;
        if h.done {
            return Ok(ops);
        }
        if ops.len() >= MULTI_OPS_MAX {
            return Err(DecodeError::InvalidValue {
                field: what,
                value: ops.len() as i64,
            });
        }
        ops.push(one(h.op, r)?);
    }
}

fn decode_multi(r: &mut Reader) -> Result<Vec<MultiOp>, DecodeError> {
    decode_ops(r, "multi op count", |opcode, r| {
        Ok(match opcode {
            op::CREATE | op::CREATE2 | op::CREATE_CONTAINER => MultiOp::Create {
                op: opcode,
                req: CreateRequest::decode_with(r, false)?,
            },
            op::CREATE_TTL => MultiOp::Create {
                op: opcode,
                req: CreateRequest::decode_with(r, true)?,
            },
            op::DELETE => MultiOp::Delete(path_version(r)?),
            op::SET_DATA => MultiOp::SetData(set_data(r)?),
            op::CHECK => MultiOp::Check(path_version(r)?),
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "multi op type",
                    value: other as i64,
                })
            }
        })
    })
}

fn decode_multi_read(r: &mut Reader) -> Result<Vec<ReadOp>, DecodeError> {
    decode_ops(r, "multiRead op count", |opcode, r| {
        Ok(match opcode {
            op::GET_CHILDREN => ReadOp::GetChildren(path_watch(r)?.path),
            op::GET_DATA => ReadOp::GetData(path_watch(r)?.path),
            other => {
                return Err(DecodeError::InvalidValue {
                    field: "multiRead op type",
                    value: other as i64,
                })
            }
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BytesMut;

    fn round_trip(req: Request) {
        let mut b = BytesMut::new();
        req.encode(&mut b);
        let back = Request::decode(req.op(), b.freeze()).unwrap().unwrap();
        assert_eq!(back, req);
    }

    fn create(op: i32, ttl: Option<i64>) -> CreateRequest {
        CreateRequest {
            path: "/a".into(),
            data: Some(Bytes::from_static(b"x")),
            acl: Acl::open_unsafe(),
            flags: 0,
            ttl: if op == op::CREATE_TTL { ttl } else { None },
        }
    }

    #[test]
    fn every_request_round_trips() {
        let pw = PathWatch {
            path: "/p".into(),
            watch: true,
        };
        let pv = PathVersion {
            path: "/p".into(),
            version: 3,
        };
        for op in [
            op::CREATE,
            op::CREATE2,
            op::CREATE_CONTAINER,
            op::CREATE_TTL,
        ] {
            round_trip(Request::Create {
                op,
                req: create(op, Some(100)),
            });
        }
        round_trip(Request::Delete(pv.clone()));
        round_trip(Request::Exists(pw.clone()));
        round_trip(Request::GetData(pw.clone()));
        round_trip(Request::GetChildren(pw.clone()));
        round_trip(Request::GetChildren2(pw));
        round_trip(Request::SetData(SetDataRequest {
            path: "/p".into(),
            data: Some(Bytes::from_static(b"d")),
            version: -1,
        }));
        round_trip(Request::GetAcl("/p".into()));
        round_trip(Request::SetAcl(SetAclRequest {
            path: "/p".into(),
            acl: Acl::read_unsafe(),
            version: 0,
        }));
        round_trip(Request::Sync("/".into()));
        round_trip(Request::Ping);
        round_trip(Request::Check(pv.clone()));
        round_trip(Request::Multi(vec![
            MultiOp::Create {
                op: op::CREATE,
                req: create(op::CREATE, None),
            },
            MultiOp::Create {
                op: op::CREATE_TTL,
                req: create(op::CREATE_TTL, Some(5)),
            },
            MultiOp::Delete(pv.clone()),
            MultiOp::SetData(SetDataRequest {
                path: "/q".into(),
                data: None,
                version: 1,
            }),
            MultiOp::Check(pv),
        ]));
        round_trip(Request::MultiRead(vec![
            ReadOp::GetChildren("/a".into()),
            ReadOp::GetData("/b".into()),
        ]));
        round_trip(Request::Reconfig(ReconfigRequest {
            joining_servers: Some("server.5=h:1:2;3".into()),
            leaving_servers: None,
            new_members: None,
            cur_config_id: -1,
        }));
        round_trip(Request::CheckWatches {
            path: "/a".into(),
            watcher_type: 1,
        });
        round_trip(Request::RemoveWatches {
            path: "/a".into(),
            watcher_type: 3,
        });
        round_trip(Request::Auth(AuthPacket {
            auth_type: 0,
            scheme: "digest".into(),
            auth: Bytes::from_static(b"u:p"),
        }));
        for op in [op::SET_WATCHES, op::SET_WATCHES2] {
            let mut w = SetWatches {
                relative_zxid: 9,
                data_watches: vec!["/d".into()],
                exist_watches: vec!["/e".into()],
                child_watches: vec!["/c".into()],
                ..SetWatches::default()
            };
            if op == op::SET_WATCHES2 {
                w.persistent_watches = vec!["/p".into()];
                w.persistent_recursive_watches = vec!["/r".into()];
            }
            round_trip(Request::SetWatches { op, watches: w });
        }
        round_trip(Request::Sasl(Bytes::from_static(b"tok")));
        round_trip(Request::GetEphemerals("/".into()));
        round_trip(Request::GetAllChildrenNumber("/".into()));
        round_trip(Request::AddWatch {
            path: "/a".into(),
            mode: 1,
        });
        round_trip(Request::WhoAmI);
        round_trip(Request::CloseSession);
    }

    #[test]
    fn unknown_op_is_none_and_bad_multi_op_is_error() {
        assert_eq!(Request::decode(9999, Bytes::new()).unwrap(), None);
        let mut b = BytesMut::new();
        MultiHeader {
            op: op::GET_DATA,
            done: false,
            err: -1,
        }
        .encode(&mut b);
        b.put_string("/a");
        b.put_bool(false);
        MultiHeader::END.encode(&mut b);
        assert!(Request::decode(op::MULTI, b.freeze()).is_err());
    }

    #[test]
    fn truncated_bodies_are_errors() {
        let mut b = BytesMut::new();
        Request::SetData(SetDataRequest {
            path: "/p".into(),
            data: Some(Bytes::from_static(b"data")),
            version: -1,
        })
        .encode(&mut b);
        for cut in 0..b.len() {
            let body = Bytes::copy_from_slice(&b[..cut]);
            assert!(Request::decode(op::SET_DATA, body).is_err(), "cut {cut}");
        }
    }
}
