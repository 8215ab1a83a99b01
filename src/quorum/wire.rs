//! The quorum wire: how Corral servers frame every message they exchange (election and ZAB).
//!
//! Owns the frame layout, the [`Message`] set and their payload encodings. It need not match
//! Java ZooKeeper's quorum protocol (mixed clusters are not a goal), but it carries the same
//! facts as `QuorumPacket`, `FastLeaderElection.Notification` and the `QuorumCnxManager`
//! connection header. Message type numbers follow `Leader.java`'s packet constants where one
//! exists (REQUEST = 1 … ACKEPOCH = 18); Corral's own messages start at 32.
//!
//! Frame (all integers big-endian), [`HEADER_BYTES`] = 16:
//!
//! | offset | size | field | rule |
//! | --- | --- | --- | --- |
//! | 0 | 4 | magic `CRLQ` | anything else: not a Corral peer, drop it |
//! | 4 | 1 | format version | must be [`FORMAT_VERSION`] |
//! | 5 | 1 | message type | one of [`MessageType`] |
//! | 6 | 2 | flags | must be 0 (reserved) |
//! | 8 | 4 | payload length | at most the decoder's `payload_bytes_max` |
//! | 12 | 4 | crc32c | over bytes 0..12 of the header, then the payload |
//! | 16 | len | payload | the message's fields, jute primitives, nothing after them |
//!
//! Every check that can be made on a partial header is made as soon as its bytes arrive, so
//! garbage is refused at its first bad byte and a hostile length is refused before anything
//! is buffered for it. Any error is final for the connection: the driver drops the peer with
//! one log line (design.md guarantee 7). Decoding never panics and never yields a message the
//! sender did not encode: the crc32c covers the header too, so a flipped type, length or
//! field is an error, not another message.
//!
//! Zero-copy: a decoded `Proposal`/`Inform` txn or a forwarded request's body is a slice of
//! the frame (`Bytes`), not a copy.

use crate::jute::{DecodeError, JStr, Reader, Record, Writer};
use crate::proto::{Id, SessionId, Zxid};
use crate::quorum::ServerId;
use bytes::{BufMut, Bytes, BytesMut};

/// The first four bytes of every frame.
pub const MAGIC: [u8; 4] = *b"CRLQ";
/// The frame format this code reads and writes.
pub const FORMAT_VERSION: u8 = 1;
/// The message semantics this code speaks (carried in `Hello`, `FollowerInfo`, `LeaderInfo`).
/// 2: NEWLEADER and NOTIFICATION carry the sender's membership text.
pub const PROTOCOL_VERSION: u32 = 2;
/// Fixed header in front of every payload.
pub const HEADER_BYTES: usize = 16;
/// Hard ceiling for any configured payload limit.
pub const PAYLOAD_BYTES_LIMIT: u32 = 64 << 20;
/// Default payload limit: ZooKeeper's default `jute.maxbuffer` (0xfffff) for the txn or
/// request, plus room for the message's own fields.
pub const PAYLOAD_BYTES_MAX_DEFAULT: u32 = 0xfffff + 64 * 1024;
/// Longest election address in a `Hello` (`host:port`, a DNS name is at most 253 bytes).
pub const ADDRESS_BYTES_MAX: usize = 300;
/// Most session touches in one `Ping`.
pub const TOUCHES_MAX: usize = 1 << 20;
/// Most auth ids on one forwarded request.
pub const AUTH_IDS_MAX: usize = 64;

const _: () = assert!(PAYLOAD_BYTES_MAX_DEFAULT <= PAYLOAD_BYTES_LIMIT);
const _: () = assert!(HEADER_BYTES == 4 + 1 + 1 + 2 + 4 + 4);
// A ping with the most touches must fit a default frame (12 bytes per touch, 4 for the count).
const _: () = assert!(4 + TOUCHES_MAX * 12 <= PAYLOAD_BYTES_LIMIT as usize);

/// Why a frame was refused. Each is malformed input from a peer (or not a peer at all).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("bad magic {found:02x?}: not a Corral quorum peer")]
    BadMagic { found: Vec<u8> },
    #[error("frame format version {found}, this server speaks {supported}")]
    UnsupportedVersion { found: u8, supported: u8 },
    #[error("unknown message type {found}")]
    UnknownType { found: u8 },
    #[error("reserved flags {found:#06x} set")]
    ReservedFlags { found: u16 },
    #[error("payload length {len} above the limit {max}")]
    TooLong { len: u32, max: u32 },
    #[error("crc32c mismatch: frame says {stored:#010x}, bytes give {computed:#010x}")]
    ChecksumMismatch { stored: u32, computed: u32 },
    #[error("malformed {kind:?} payload: {source}")]
    Payload {
        kind: MessageType,
        source: DecodeError,
    },
    #[error("malformed {kind:?} payload: {field} {detail}")]
    InvalidField {
        kind: MessageType,
        field: &'static str,
        detail: String,
    },
}

/// Why a message could not be framed (our own limit; the message is not sent).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    #[error("{kind:?} payload of {len} bytes above the limit {max}")]
    TooLong {
        kind: MessageType,
        len: usize,
        max: u32,
    },
}

/// The message type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum MessageType {
    Request = 1,
    Proposal = 2,
    Ack = 3,
    Commit = 4,
    Ping = 5,
    Revalidate = 6,
    Sync = 7,
    Inform = 8,
    NewLeader = 10,
    FollowerInfo = 11,
    UpToDate = 12,
    Diff = 13,
    Trunc = 14,
    Snap = 15,
    ObserverInfo = 16,
    LeaderInfo = 17,
    AckEpoch = 18,
    Hello = 32,
    Notification = 33,
    RevalidateReply = 34,
    SnapChunk = 35,
}

impl MessageType {
    pub fn from_u8(byte: u8) -> Option<MessageType> {
        use MessageType::*;
        Some(match byte {
            1 => Request,
            2 => Proposal,
            3 => Ack,
            4 => Commit,
            5 => Ping,
            6 => Revalidate,
            7 => Sync,
            8 => Inform,
            10 => NewLeader,
            11 => FollowerInfo,
            12 => UpToDate,
            13 => Diff,
            14 => Trunc,
            15 => Snap,
            16 => ObserverInfo,
            17 => LeaderInfo,
            18 => AckEpoch,
            32 => Hello,
            33 => Notification,
            34 => RevalidateReply,
            35 => SnapChunk,
            _ => return None,
        })
    }
}

/// A server's election state, as `QuorumPeer.ServerState` (same ordinals).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PeerState {
    Looking = 0,
    Following = 1,
    Leading = 2,
    Observing = 3,
}

impl PeerState {
    pub fn from_u8(byte: u8) -> Option<PeerState> {
        Some(match byte {
            0 => PeerState::Looking,
            1 => PeerState::Following,
            2 => PeerState::Leading,
            3 => PeerState::Observing,
            _ => return None,
        })
    }
}

/// An election notification (`FastLeaderElection.Notification`): the sender's state and the
/// vote it currently holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    pub state: PeerState,
    /// Proposed leader; 0 when the sender has no vote yet (an observer).
    pub leader: ServerId,
    /// Last zxid of the proposed leader.
    pub zxid: Zxid,
    /// The sender's election round (`logicalclock`).
    pub election_epoch: u64,
    /// The proposed leader's current epoch.
    pub peer_epoch: u64,
    pub sender: ServerId,
    /// Version of the membership the sender runs (the zxid of its last reconfig, 0 if none).
    pub config_version: u64,
    /// That membership as `/zookeeper/config` shows it (empty when the sender has none to
    /// give): a looking server that missed a reconfig takes it from here, as ZooKeeper's
    /// notifications carry the configuration.
    pub config: Bytes,
}

/// The first frame on every quorum connection (`QuorumCnxManager`'s initial message): who
/// is calling, and for which cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    pub protocol_version: u32,
    pub sender: ServerId,
    /// Identifies the ensemble; a peer with another id belongs to a foreign cluster.
    pub cluster_id: u64,
    /// Where the sender listens for elections (`host:port`).
    pub election_address: JStr,
}

/// FOLLOWERINFO / OBSERVERINFO: a learner announcing itself to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnerInfo {
    pub sender: ServerId,
    pub protocol_version: u32,
    pub accepted_epoch: u64,
    pub last_zxid: Zxid,
}

/// One session a learner saw activity on since its last ping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionTouch {
    pub session_id: SessionId,
    pub timeout_ms: i32,
}

/// A client write a learner forwards to the leader.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardedRequest {
    pub session_id: SessionId,
    pub xid: i32,
    pub op: i32,
    /// The session's authenticated ids (ACL checks happen on the leader).
    pub auth_ids: Vec<Id>,
    /// The request record as the client sent it.
    pub body: Bytes,
}

/// Everything one Corral server says to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    Hello(Hello),
    Notification(Notification),
    FollowerInfo(LearnerInfo),
    ObserverInfo(LearnerInfo),
    /// The epoch the leader proposes after hearing a quorum of learners.
    LeaderInfo {
        new_epoch: u64,
        protocol_version: u32,
    },
    /// A learner accepting the new epoch, with where its history ends.
    AckEpoch {
        current_epoch: u64,
        last_zxid: Zxid,
    },
    /// Sync by sending the proposals after `last_zxid`.
    Diff {
        last_zxid: Zxid,
    },
    /// Sync by truncating the learner's log back to `truncate_to`.
    Trunc {
        truncate_to: Zxid,
    },
    /// Sync by a full snapshot taken at `last_zxid`, `snapshot_bytes` long, sent after this.
    Snap {
        last_zxid: Zxid,
        snapshot_bytes: u64,
    },
    Proposal {
        zxid: Zxid,
        txn: Bytes,
    },
    Ack {
        zxid: Zxid,
    },
    Commit {
        zxid: Zxid,
    },
    /// A committed txn sent to observers (they see no proposals).
    Inform {
        zxid: Zxid,
        txn: Bytes,
    },
    /// The leader's first zxid of the new epoch (`epoch << 32`), with the version of the
    /// membership the epoch runs and that membership as `/zookeeper/config` shows it
    /// (ZooKeeper's NEWLEADER carries its configuration text too).
    NewLeader {
        zxid: Zxid,
        config_version: u64,
        config: Bytes,
    },
    UpToDate,
    /// Heartbeat; from a learner it carries the sessions it saw activity on.
    Ping {
        touches: Vec<SessionTouch>,
    },
    Request(ForwardedRequest),
    Revalidate {
        session_id: SessionId,
        timeout_ms: i32,
    },
    RevalidateReply {
        session_id: SessionId,
        valid: bool,
    },
    /// Everything up to `zxid` is committed: the answer to a forwarded sync.
    Sync {
        zxid: Zxid,
    },
    /// The next piece of the snapshot announced by SNAP (its bytes, in order, until the
    /// announced length is reached).
    SnapChunk {
        data: Bytes,
    },
}

impl Message {
    pub fn kind(&self) -> MessageType {
        match self {
            Message::Hello(_) => MessageType::Hello,
            Message::Notification(_) => MessageType::Notification,
            Message::FollowerInfo(_) => MessageType::FollowerInfo,
            Message::ObserverInfo(_) => MessageType::ObserverInfo,
            Message::LeaderInfo { .. } => MessageType::LeaderInfo,
            Message::AckEpoch { .. } => MessageType::AckEpoch,
            Message::Diff { .. } => MessageType::Diff,
            Message::Trunc { .. } => MessageType::Trunc,
            Message::Snap { .. } => MessageType::Snap,
            Message::Proposal { .. } => MessageType::Proposal,
            Message::Ack { .. } => MessageType::Ack,
            Message::Commit { .. } => MessageType::Commit,
            Message::Inform { .. } => MessageType::Inform,
            Message::NewLeader { .. } => MessageType::NewLeader,
            Message::UpToDate => MessageType::UpToDate,
            Message::Ping { .. } => MessageType::Ping,
            Message::Request(_) => MessageType::Request,
            Message::Revalidate { .. } => MessageType::Revalidate,
            Message::RevalidateReply { .. } => MessageType::RevalidateReply,
            Message::Sync { .. } => MessageType::Sync,
            Message::SnapChunk { .. } => MessageType::SnapChunk,
        }
    }

    fn encode_payload(&self, w: &mut BytesMut) {
        match self {
            Message::Hello(h) => {
                w.put_u32(h.protocol_version);
                w.put_u64(h.sender);
                w.put_u64(h.cluster_id);
                w.put_string(&h.election_address);
            }
            Message::Notification(n) => {
                w.put_u8(n.state as u8);
                w.put_u64(n.leader);
                w.put_i64(n.zxid);
                w.put_u64(n.election_epoch);
                w.put_u64(n.peer_epoch);
                w.put_u64(n.sender);
                w.put_u64(n.config_version);
                w.put_buffer(&n.config);
            }
            Message::FollowerInfo(i) | Message::ObserverInfo(i) => {
                w.put_u64(i.sender);
                w.put_u32(i.protocol_version);
                w.put_u64(i.accepted_epoch);
                w.put_i64(i.last_zxid);
            }
            Message::LeaderInfo {
                new_epoch,
                protocol_version,
            } => {
                w.put_u64(*new_epoch);
                w.put_u32(*protocol_version);
            }
            Message::AckEpoch {
                current_epoch,
                last_zxid,
            } => {
                w.put_u64(*current_epoch);
                w.put_i64(*last_zxid);
            }
            Message::Diff { last_zxid: zxid }
            | Message::Trunc { truncate_to: zxid }
            | Message::Ack { zxid }
            | Message::Commit { zxid }
            | Message::Sync { zxid } => w.put_i64(*zxid),
            Message::Snap {
                last_zxid,
                snapshot_bytes,
            } => {
                w.put_i64(*last_zxid);
                w.put_u64(*snapshot_bytes);
            }
            Message::Proposal { zxid, txn } | Message::Inform { zxid, txn } => {
                w.put_i64(*zxid);
                w.put_buffer(txn);
            }
            Message::NewLeader {
                zxid,
                config_version,
                config,
            } => {
                w.put_i64(*zxid);
                w.put_u64(*config_version);
                w.put_buffer(config);
            }
            Message::UpToDate => {}
            Message::Ping { touches } => {
                w.put_i32(touches.len() as i32);
                for t in touches {
                    w.put_i64(t.session_id);
                    w.put_i32(t.timeout_ms);
                }
            }
            Message::Request(r) => {
                w.put_i64(r.session_id);
                w.put_i32(r.xid);
                w.put_i32(r.op);
                w.put_vec(&r.auth_ids);
                w.put_buffer(&r.body);
            }
            Message::Revalidate {
                session_id,
                timeout_ms,
            } => {
                w.put_i64(*session_id);
                w.put_i32(*timeout_ms);
            }
            Message::SnapChunk { data } => w.put_buffer(data),
            Message::RevalidateReply { session_id, valid } => {
                w.put_i64(*session_id);
                w.put_u8(u8::from(*valid));
            }
        }
    }

    fn decode_payload(kind: MessageType, payload: Bytes) -> Result<Message, WireError> {
        let mut r = Reader::new(payload);
        let bad = |source| WireError::Payload { kind, source };
        let invalid = |field, detail: String| WireError::InvalidField {
            kind,
            field,
            detail,
        };
        let msg = match kind {
            MessageType::Hello => {
                let protocol_version = u32_of(&mut r).map_err(bad)?;
                let sender = r.i64().map_err(bad)? as u64;
                let cluster_id = r.i64().map_err(bad)? as u64;
                let address = r.buffer().map_err(bad)?;
                if address.is_empty() || address.len() > ADDRESS_BYTES_MAX {
                    return Err(invalid(
                        "election_address",
                        format!("of {} bytes (1..={ADDRESS_BYTES_MAX})", address.len()),
                    ));
                }
                let election_address = JStr::from_utf8(address)
                    .map_err(|_| invalid("election_address", "is not UTF-8".to_string()))?;
                Message::Hello(Hello {
                    protocol_version,
                    sender,
                    cluster_id,
                    election_address,
                })
            }
            MessageType::Notification => {
                let state_byte = r.u8().map_err(bad)?;
                let state = PeerState::from_u8(state_byte)
                    .ok_or_else(|| invalid("state", format!("{state_byte} (0..=3)")))?;
                Message::Notification(Notification {
                    state,
                    leader: r.i64().map_err(bad)? as u64,
                    zxid: r.i64().map_err(bad)?,
                    election_epoch: r.i64().map_err(bad)? as u64,
                    peer_epoch: r.i64().map_err(bad)? as u64,
                    sender: r.i64().map_err(bad)? as u64,
                    config_version: r.i64().map_err(bad)? as u64,
                    config: r.buffer_required().map_err(bad)?,
                })
            }
            MessageType::FollowerInfo | MessageType::ObserverInfo => {
                let info = LearnerInfo {
                    sender: r.i64().map_err(bad)? as u64,
                    protocol_version: u32_of(&mut r).map_err(bad)?,
                    accepted_epoch: r.i64().map_err(bad)? as u64,
                    last_zxid: r.i64().map_err(bad)?,
                };
                if kind == MessageType::FollowerInfo {
                    Message::FollowerInfo(info)
                } else {
                    Message::ObserverInfo(info)
                }
            }
            MessageType::LeaderInfo => Message::LeaderInfo {
                new_epoch: r.i64().map_err(bad)? as u64,
                protocol_version: u32_of(&mut r).map_err(bad)?,
            },
            MessageType::AckEpoch => Message::AckEpoch {
                current_epoch: r.i64().map_err(bad)? as u64,
                last_zxid: r.i64().map_err(bad)?,
            },
            MessageType::Diff => Message::Diff {
                last_zxid: r.i64().map_err(bad)?,
            },
            MessageType::Trunc => Message::Trunc {
                truncate_to: r.i64().map_err(bad)?,
            },
            MessageType::Snap => Message::Snap {
                last_zxid: r.i64().map_err(bad)?,
                snapshot_bytes: r.i64().map_err(bad)? as u64,
            },
            MessageType::Proposal => Message::Proposal {
                zxid: r.i64().map_err(bad)?,
                txn: r.buffer_required().map_err(bad)?,
            },
            MessageType::Inform => Message::Inform {
                zxid: r.i64().map_err(bad)?,
                txn: r.buffer_required().map_err(bad)?,
            },
            MessageType::Ack => Message::Ack {
                zxid: r.i64().map_err(bad)?,
            },
            MessageType::Commit => Message::Commit {
                zxid: r.i64().map_err(bad)?,
            },
            MessageType::Sync => Message::Sync {
                zxid: r.i64().map_err(bad)?,
            },
            MessageType::NewLeader => Message::NewLeader {
                zxid: r.i64().map_err(bad)?,
                config_version: r.i64().map_err(bad)? as u64,
                config: r.buffer_required().map_err(bad)?,
            },
            MessageType::UpToDate => Message::UpToDate,
            MessageType::Ping => {
                // 12 bytes per touch: the count is checked against the bytes left before
                // anything is reserved for it.
                let count = r.vec_len(12).map_err(bad)?;
                if count > TOUCHES_MAX {
                    return Err(invalid("touches", format!("count {count} > {TOUCHES_MAX}")));
                }
                let mut touches = Vec::with_capacity(count);
                for _ in 0..count {
                    touches.push(SessionTouch {
                        session_id: r.i64().map_err(bad)?,
                        timeout_ms: r.i32().map_err(bad)?,
                    });
                }
                Message::Ping { touches }
            }
            MessageType::Request => {
                let session_id = r.i64().map_err(bad)?;
                let xid = r.i32().map_err(bad)?;
                let op = r.i32().map_err(bad)?;
                let count = r.vec_len(Id::MIN_ENCODED_BYTES).map_err(bad)?;
                if count > AUTH_IDS_MAX {
                    return Err(invalid(
                        "auth_ids",
                        format!("count {count} > {AUTH_IDS_MAX}"),
                    ));
                }
                let mut auth_ids = Vec::with_capacity(count);
                for _ in 0..count {
                    auth_ids.push(Id::decode(&mut r).map_err(bad)?);
                }
                let body = r.buffer_required().map_err(bad)?;
                Message::Request(ForwardedRequest {
                    session_id,
                    xid,
                    op,
                    auth_ids,
                    body,
                })
            }
            MessageType::Revalidate => Message::Revalidate {
                session_id: r.i64().map_err(bad)?,
                timeout_ms: r.i32().map_err(bad)?,
            },
            MessageType::SnapChunk => Message::SnapChunk {
                data: r.buffer_required().map_err(bad)?,
            },
            MessageType::RevalidateReply => {
                let session_id = r.i64().map_err(bad)?;
                let valid = match r.u8().map_err(bad)? {
                    0 => false,
                    1 => true,
                    other => return Err(invalid("valid", format!("{other} (0 or 1)"))),
                };
                Message::RevalidateReply { session_id, valid }
            }
        };
        r.finish().map_err(bad)?;
        Ok(msg)
    }
}

fn u32_of(r: &mut Reader) -> Result<u32, DecodeError> {
    Ok(r.i32()? as u32)
}

/// A buffer that must be present: the null encoding (-1) is malformed on this wire.
trait RequiredBuffer {
    fn buffer_required(&mut self) -> Result<Bytes, DecodeError>;
}

impl RequiredBuffer for Reader {
    fn buffer_required(&mut self) -> Result<Bytes, DecodeError> {
        let offset = self.offset();
        self.buffer_opt()?
            .ok_or(DecodeError::UnexpectedNull { offset })
    }
}

/// Appends one frame holding `msg` to `out`. A payload above `payload_bytes_max` is refused
/// (and nothing is left in `out`): the peer would refuse it too.
pub fn encode(
    msg: &Message,
    payload_bytes_max: u32,
    out: &mut BytesMut,
) -> Result<(), EncodeError> {
    let start = out.len();
    out.put_slice(&MAGIC);
    out.put_u8(FORMAT_VERSION);
    out.put_u8(msg.kind() as u8);
    out.put_u16(0);
    out.put_u32(0);
    out.put_u32(0);
    msg.encode_payload(out);
    let payload_bytes = out.len() - start - HEADER_BYTES;
    if payload_bytes > payload_bytes_max.min(PAYLOAD_BYTES_LIMIT) as usize {
        out.truncate(start);
        return Err(EncodeError::TooLong {
            kind: msg.kind(),
            len: payload_bytes,
            max: payload_bytes_max,
        });
    }
    out[start + 8..start + 12].copy_from_slice(&(payload_bytes as u32).to_be_bytes());
    let crc = frame_crc(
        &out[start..start + 12],
        &out[start + HEADER_BYTES..start + HEADER_BYTES + payload_bytes],
    );
    out[start + 12..start + 16].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

fn frame_crc(header_without_crc: &[u8], payload: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(header_without_crc), payload)
}

/// Splits frames off a peer's byte stream and decodes them.
///
/// Feed whatever the socket gave ([`Decoder::feed`]), then call [`Decoder::next_frame`] until
/// it returns `Ok(None)` (more bytes needed). An error is final: the same error comes back on
/// every later call, and the caller drops the connection.
#[derive(Debug)]
pub struct Decoder {
    buf: BytesMut,
    payload_bytes_max: u32,
    failed: Option<WireError>,
}

impl Decoder {
    /// `payload_bytes_max` must not exceed [`PAYLOAD_BYTES_LIMIT`] (a configuration bound).
    pub fn new(payload_bytes_max: u32) -> Decoder {
        assert!(payload_bytes_max <= PAYLOAD_BYTES_LIMIT);
        Decoder {
            buf: BytesMut::new(),
            payload_bytes_max,
            failed: None,
        }
    }

    /// Appends received bytes.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.failed.is_none() {
            self.buf.extend_from_slice(bytes);
        }
    }

    /// Bytes received and not yet decoded.
    pub fn buffered_bytes(&self) -> usize {
        self.buf.len()
    }

    /// The next complete message, `Ok(None)` if the buffered bytes are a valid frame prefix.
    pub fn next_frame(&mut self) -> Result<Option<Message>, WireError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        match self.try_next() {
            Ok(msg) => Ok(msg),
            Err(err) => {
                self.failed = Some(err.clone());
                self.buf = BytesMut::new();
                Err(err)
            }
        }
    }

    fn try_next(&mut self) -> Result<Option<Message>, WireError> {
        let Some(header) = check_header_prefix(&self.buf, self.payload_bytes_max)? else {
            return Ok(None);
        };
        let total = HEADER_BYTES + header.payload_bytes as usize;
        if self.buf.len() < total {
            return Ok(None);
        }
        let computed = frame_crc(&self.buf[..12], &self.buf[HEADER_BYTES..total]);
        if computed != header.crc {
            return Err(WireError::ChecksumMismatch {
                stored: header.crc,
                computed,
            });
        }
        let mut frame = self.buf.split_to(total);
        let payload = frame.split_off(HEADER_BYTES).freeze();
        Message::decode_payload(header.kind, payload).map(Some)
    }
}

struct Header {
    kind: MessageType,
    payload_bytes: u32,
    crc: u32,
}

/// Checks as much of the header as `buf` holds; `Ok(None)` if it is a valid but partial one.
fn check_header_prefix(buf: &[u8], payload_bytes_max: u32) -> Result<Option<Header>, WireError> {
    let magic_seen = buf.len().min(MAGIC.len());
    if buf[..magic_seen] != MAGIC[..magic_seen] {
        return Err(WireError::BadMagic {
            found: buf[..magic_seen].to_vec(),
        });
    }
    if let Some(&version) = buf.get(4) {
        if version != FORMAT_VERSION {
            return Err(WireError::UnsupportedVersion {
                found: version,
                supported: FORMAT_VERSION,
            });
        }
    }
    let kind = match buf.get(5) {
        None => None,
        Some(&byte) => {
            Some(MessageType::from_u8(byte).ok_or(WireError::UnknownType { found: byte })?)
        }
    };
    if buf.len() >= 8 {
        let flags = u16::from_be_bytes([buf[6], buf[7]]);
        if flags != 0 {
            return Err(WireError::ReservedFlags { found: flags });
        }
    }
    if buf.len() >= 12 {
        let len = u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]);
        if len > payload_bytes_max {
            return Err(WireError::TooLong {
                len,
                max: payload_bytes_max,
            });
        }
    }
    match kind {
        Some(kind) if buf.len() >= HEADER_BYTES => Ok(Some(Header {
            kind,
            payload_bytes: u32::from_be_bytes([buf[8], buf[9], buf[10], buf[11]]),
            crc: u32::from_be_bytes([buf[12], buf[13], buf[14], buf[15]]),
        })),
        _ => Ok(None),
    }
}

/// Why a peer's `Hello` was refused (legal bytes, wrong peer).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeerError {
    #[error("peer speaks protocol {found}, this server {supported}")]
    ProtocolVersion { found: u32, supported: u32 },
    #[error("peer belongs to cluster {found:#x}, this server to {expected:#x}")]
    ForeignCluster { expected: u64, found: u64 },
    #[error("peer claims server id {id}, which is not in the membership")]
    UnknownServer { id: ServerId },
    #[error("peer claims this server's own id {id}")]
    OwnId { id: ServerId },
}

impl Hello {
    /// Accepts the caller only if it speaks our protocol, belongs to our cluster and is a
    /// member other than ourselves. The driver drops a refused peer with one log line.
    pub fn check(
        &self,
        cluster_id: u64,
        my_id: ServerId,
        is_member: impl Fn(ServerId) -> bool,
    ) -> Result<(), PeerError> {
        if self.protocol_version != PROTOCOL_VERSION {
            return Err(PeerError::ProtocolVersion {
                found: self.protocol_version,
                supported: PROTOCOL_VERSION,
            });
        }
        if self.cluster_id != cluster_id {
            return Err(PeerError::ForeignCluster {
                expected: cluster_id,
                found: self.cluster_id,
            });
        }
        if self.sender == my_id {
            return Err(PeerError::OwnId { id: self.sender });
        }
        if !is_member(self.sender) {
            return Err(PeerError::UnknownServer { id: self.sender });
        }
        Ok(())
    }
}
