//! Records with a life of their own: handshake, headers, Stat, watch events.
//! Field order is the wire order of ZooKeeper's `zookeeper.jute`.

use crate::jute::{DecodeError, JStr, Reader, Record, Writer};
use bytes::Bytes;

/// The first frame from a client. `read_only` is a trailing byte outside the jute record
/// that old clients omit; `None` means it was absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectRequest {
    pub protocol_version: i32,
    pub last_zxid_seen: i64,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

impl Record for ConnectRequest {
    const MIN_ENCODED_BYTES: usize = 28;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectRequest {
            protocol_version: r.i32()?,
            last_zxid_seen: r.i64()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i32(self.protocol_version);
        w.put_i64(self.last_zxid_seen);
        w.put_i32(self.timeout_ms);
        w.put_i64(self.session_id);
        w.put_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.put_bool(ro);
        }
    }
}

/// The server's answer to the handshake. `timeout_ms == 0` tells the client its session
/// is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectResponse {
    pub protocol_version: i32,
    pub timeout_ms: i32,
    pub session_id: i64,
    pub passwd: Bytes,
    pub read_only: Option<bool>,
}

impl Record for ConnectResponse {
    const MIN_ENCODED_BYTES: usize = 20;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ConnectResponse {
            protocol_version: r.i32()?,
            timeout_ms: r.i32()?,
            session_id: r.i64()?,
            passwd: r.buffer()?,
            read_only: if r.remaining() > 0 {
                Some(r.bool()?)
            } else {
                None
            },
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i32(self.protocol_version);
        w.put_i32(self.timeout_ms);
        w.put_i64(self.session_id);
        w.put_buffer(&self.passwd);
        if let Some(ro) = self.read_only {
            w.put_bool(ro);
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader {
    pub xid: i32,
    pub op: i32,
}

impl Record for RequestHeader {
    const MIN_ENCODED_BYTES: usize = 8;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(RequestHeader {
            xid: r.i32()?,
            op: r.i32()?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i32(self.xid);
        w.put_i32(self.op);
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplyHeader {
    pub xid: i32,
    pub zxid: i64,
    pub err: i32,
}

impl Record for ReplyHeader {
    const MIN_ENCODED_BYTES: usize = 16;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ReplyHeader {
            xid: r.i32()?,
            zxid: r.i64()?,
            err: r.i32()?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i32(self.xid);
        w.put_i64(self.zxid);
        w.put_i32(self.err);
    }
}

/// A znode's metadata as clients see it (68 bytes on the wire).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stat {
    pub czxid: i64,
    pub mzxid: i64,
    pub ctime: i64,
    pub mtime: i64,
    pub version: i32,
    pub cversion: i32,
    pub aversion: i32,
    pub ephemeral_owner: i64,
    pub data_length: i32,
    pub num_children: i32,
    pub pzxid: i64,
}

impl Record for Stat {
    const MIN_ENCODED_BYTES: usize = 68;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(Stat {
            czxid: r.i64()?,
            mzxid: r.i64()?,
            ctime: r.i64()?,
            mtime: r.i64()?,
            version: r.i32()?,
            cversion: r.i32()?,
            aversion: r.i32()?,
            ephemeral_owner: r.i64()?,
            data_length: r.i32()?,
            num_children: r.i32()?,
            pzxid: r.i64()?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i64(self.czxid);
        w.put_i64(self.mzxid);
        w.put_i64(self.ctime);
        w.put_i64(self.mtime);
        w.put_i32(self.version);
        w.put_i32(self.cversion);
        w.put_i32(self.aversion);
        w.put_i64(self.ephemeral_owner);
        w.put_i32(self.data_length);
        w.put_i32(self.num_children);
        w.put_i64(self.pzxid);
    }
}

/// A watch notification (sent with xid -1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatcherEvent {
    pub event_type: i32,
    pub state: i32,
    pub path: JStr,
}

impl Record for WatcherEvent {
    const MIN_ENCODED_BYTES: usize = 12;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(WatcherEvent {
            event_type: r.i32()?,
            state: r.i32()?,
            path: r.string()?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i32(self.event_type);
        w.put_i32(self.state);
        w.put_string(&self.path);
    }
}

/// One authenticated identity in a whoAmI answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientInfo {
    pub auth_scheme: JStr,
    pub user: JStr,
}

impl Record for ClientInfo {
    const MIN_ENCODED_BYTES: usize = 8;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(ClientInfo {
            auth_scheme: r.string()?,
            user: r.string()?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_string(&self.auth_scheme);
        w.put_string(&self.user);
    }
}

/// The header before each op in multi requests and results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MultiHeader {
    pub op: i32,
    pub done: bool,
    pub err: i32,
}

impl MultiHeader {
    pub const END: MultiHeader = MultiHeader {
        op: -1,
        done: true,
        err: -1,
    };
}

impl Record for MultiHeader {
    const MIN_ENCODED_BYTES: usize = 9;
    fn decode(r: &mut Reader) -> Result<Self, DecodeError> {
        Ok(MultiHeader {
            op: r.i32()?,
            done: r.bool()?,
            err: r.i32()?,
        })
    }
    fn encode<W: Writer>(&self, w: &mut W) {
        w.put_i32(self.op);
        w.put_bool(self.done);
        w.put_i32(self.err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip<T: Record + PartialEq + std::fmt::Debug>(v: T) {
        let bytes = v.to_bytes();
        assert_eq!(T::decode_all(bytes).unwrap(), v);
    }

    #[test]
    fn records_round_trip() {
        round_trip(ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 5,
            timeout_ms: 30000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        });
        round_trip(ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 5,
            timeout_ms: 30000,
            session_id: 7,
            passwd: Bytes::from_static(&[1; 16]),
            read_only: None,
        });
        round_trip(ConnectResponse {
            protocol_version: 0,
            timeout_ms: 4000,
            session_id: 99,
            passwd: Bytes::from_static(&[3; 16]),
            read_only: Some(true),
        });
        round_trip(RequestHeader { xid: 1, op: 4 });
        round_trip(ReplyHeader {
            xid: -1,
            zxid: -1,
            err: 0,
        });
        round_trip(Stat {
            czxid: 1,
            mzxid: 2,
            ctime: 3,
            mtime: 4,
            version: 5,
            cversion: 6,
            aversion: 7,
            ephemeral_owner: 8,
            data_length: 9,
            num_children: 10,
            pzxid: 11,
        });
        round_trip(WatcherEvent {
            event_type: 1,
            state: 3,
            path: "/a".into(),
        });
        round_trip(MultiHeader::END);
        round_trip(ClientInfo {
            auth_scheme: "ip".into(),
            user: "127.0.0.1".into(),
        });
    }

    #[test]
    fn connect_request_sizes_match_zookeeper() {
        let mut req = ConnectRequest {
            protocol_version: 0,
            last_zxid_seen: 0,
            timeout_ms: 30000,
            session_id: 0,
            passwd: Bytes::from_static(&[0; 16]),
            read_only: Some(false),
        };
        assert_eq!(req.to_bytes().len(), 45);
        req.read_only = None;
        assert_eq!(req.to_bytes().len(), 44);
        assert_eq!(Stat::default().to_bytes().len(), 68);
    }
}
