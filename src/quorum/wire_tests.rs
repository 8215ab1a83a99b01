//! Quorum wire tests: round trips of every message (proptest), every single-byte flip and
//! every truncation of encoded frames, garbage, and the header checks one by one.

use super::wire::*;
use crate::jute::JStr;
use crate::proto::Id;
use bytes::{Bytes, BytesMut};
use proptest::prelude::*;

fn frame(msg: &Message) -> BytesMut {
    let mut out = BytesMut::new();
    encode(msg, PAYLOAD_BYTES_MAX_DEFAULT, &mut out).expect("fits the default limit");
    out
}

fn decode_all(bytes: &[u8]) -> Result<Vec<Message>, WireError> {
    let mut d = Decoder::new(PAYLOAD_BYTES_MAX_DEFAULT);
    d.feed(bytes);
    let mut out = Vec::new();
    while let Some(msg) = d.next_frame()? {
        out.push(msg);
    }
    Ok(out)
}

fn sample_messages() -> Vec<Message> {
    vec![
        Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            sender: 3,
            cluster_id: 0xfeed,
            election_address: JStr::from("127.0.0.1:3190"),
        }),
        Message::Notification(Notification {
            state: PeerState::Looking,
            leader: 2,
            zxid: 0x1_0000_0005,
            election_epoch: 7,
            peer_epoch: 1,
            sender: 1,
            config_version: 0x1_0000_0000,
            config: Bytes::from_static(
                b"server.1=127.0.0.1:2888:3888:participant\nversion=100000000",
            ),
        }),
        Message::FollowerInfo(LearnerInfo {
            sender: 2,
            protocol_version: PROTOCOL_VERSION,
            accepted_epoch: 4,
            last_zxid: 0x4_0000_0010,
        }),
        Message::ObserverInfo(LearnerInfo {
            sender: 4,
            protocol_version: PROTOCOL_VERSION,
            accepted_epoch: 4,
            last_zxid: -1,
        }),
        Message::LeaderInfo {
            new_epoch: 5,
            protocol_version: PROTOCOL_VERSION,
        },
        Message::AckEpoch {
            current_epoch: 4,
            last_zxid: 9,
        },
        Message::Diff { last_zxid: 10 },
        Message::Trunc { truncate_to: 8 },
        Message::Snap {
            last_zxid: 11,
            snapshot_bytes: 1 << 33,
        },
        Message::Proposal {
            zxid: 12,
            txn: Bytes::from_static(b"txn bytes"),
        },
        Message::Ack { zxid: 12 },
        Message::Commit { zxid: 12 },
        Message::Inform {
            zxid: 13,
            txn: Bytes::new(),
        },
        Message::NewLeader {
            zxid: 5 << 32,
            config_version: 0x1_0000_0000,
            config: Bytes::from_static(
                b"server.1=127.0.0.1:2888:3888:participant\nversion=100000000",
            ),
        },
        Message::UpToDate,
        Message::Ping { touches: vec![] },
        Message::Ping {
            touches: vec![SessionTouch {
                session_id: 0x0100_0000_0000_0001,
                timeout_ms: 30_000,
            }],
        },
        Message::Request(ForwardedRequest {
            session_id: 77,
            xid: 5,
            op: 1,
            auth_ids: vec![Id::new("digest", "u:h"), Id::new("ip", "127.0.0.1")],
            body: Bytes::from_static(b"\x00\x00\x00\x02/a"),
        }),
        Message::Revalidate {
            session_id: 77,
            timeout_ms: 4000,
        },
        Message::RevalidateReply {
            session_id: 77,
            valid: true,
        },
        Message::Sync { zxid: 99 },
        Message::SnapChunk {
            data: Bytes::from_static(b"CORRALSN\x01\x00"),
        },
    ]
}

#[test]
fn every_sample_round_trips_and_covers_every_type() {
    let samples = sample_messages();
    let mut kinds: Vec<u8> = samples.iter().map(|m| m.kind() as u8).collect();
    kinds.sort_unstable();
    kinds.dedup();
    let all: Vec<u8> = (0..=255u8)
        .filter(|b| MessageType::from_u8(*b).is_some())
        .collect();
    assert_eq!(kinds, all, "a message type has no sample");
    for msg in samples {
        assert_eq!(decode_all(&frame(&msg)), Ok(vec![msg]));
    }
}

#[test]
fn header_layout_is_as_documented() {
    let f = frame(&Message::Ack { zxid: 0x0102 });
    assert_eq!(&f[0..4], b"CRLQ");
    assert_eq!(f[4], FORMAT_VERSION);
    assert_eq!(f[5], 3, "ACK keeps ZooKeeper's packet number");
    assert_eq!(&f[6..8], &[0, 0]);
    assert_eq!(&f[8..12], &8u32.to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&f[0..12]), &f[16..]);
    assert_eq!(&f[12..16], &crc.to_be_bytes());
    assert_eq!(&f[16..], &0x0102i64.to_be_bytes());
}

#[test]
fn concatenated_frames_fed_byte_by_byte() {
    let samples = sample_messages();
    let mut stream = BytesMut::new();
    for msg in &samples {
        stream.extend_from_slice(&frame(msg));
    }
    let mut d = Decoder::new(PAYLOAD_BYTES_MAX_DEFAULT);
    let mut got = Vec::new();
    for byte in stream.iter() {
        d.feed(&[*byte]);
        while let Some(msg) = d.next_frame().expect("valid stream") {
            got.push(msg);
        }
    }
    assert_eq!(got, samples);
    assert_eq!(d.buffered_bytes(), 0);
}

#[test]
fn txn_is_a_slice_of_the_frame() {
    let msg = Message::Proposal {
        zxid: 1,
        txn: Bytes::from(vec![7u8; 64]),
    };
    let mut d = Decoder::new(PAYLOAD_BYTES_MAX_DEFAULT);
    d.feed(&frame(&msg));
    let Some(Message::Proposal { txn, .. }) = d.next_frame().expect("valid") else {
        panic!("not a proposal");
    };
    assert_eq!(txn.len(), 64);
    // The payload Bytes still owns the frame memory: slicing it does not copy.
    let again = txn.slice(1..3);
    assert_eq!(again.as_ptr() as usize, txn.as_ptr() as usize + 1);
}

#[test]
fn every_truncation_waits_for_more() {
    for msg in sample_messages() {
        let f = frame(&msg);
        for len in 0..f.len() {
            assert_eq!(decode_all(&f[..len]), Ok(vec![]), "{msg:?} cut at {len}");
        }
    }
}

#[test]
fn every_single_byte_flip_is_refused_or_incomplete() {
    for msg in sample_messages() {
        let f = frame(&msg);
        for at in 0..f.len() {
            for mask in [0x01u8, 0x80, 0xff] {
                let mut bad = f.to_vec();
                bad[at] ^= mask;
                let r = decode_all(&bad);
                assert!(
                    v_is_empty_or_err(&r),
                    "{msg:?}: flip {mask:#x} at {at} decoded as {r:?}"
                );
            }
        }
    }
}

fn v_is_empty_or_err(r: &Result<Vec<Message>, WireError>) -> bool {
    match r {
        Err(_) => true,
        Ok(v) => v.is_empty(),
    }
}

#[test]
fn header_checks_name_the_fault() {
    let good = frame(&Message::Commit { zxid: 1 });
    let with = |at: usize, byte: u8| {
        let mut b = good.to_vec();
        b[at] = byte;
        decode_all(&b)
    };
    assert!(matches!(with(0, b'X'), Err(WireError::BadMagic { .. })));
    assert!(matches!(
        with(4, 2),
        Err(WireError::UnsupportedVersion { found: 2, .. })
    ));
    assert!(matches!(
        with(5, 9),
        Err(WireError::UnknownType { found: 9 })
    ));
    assert!(matches!(
        with(7, 1),
        Err(WireError::ReservedFlags { found: 1 })
    ));
    assert!(matches!(with(8, 0x7f), Err(WireError::TooLong { .. })));
    assert!(matches!(
        with(15, good[15] ^ 1),
        Err(WireError::ChecksumMismatch { .. })
    ));
    // Garbage is refused at its first byte, before a header is complete.
    assert!(matches!(decode_all(b"G"), Err(WireError::BadMagic { .. })));
    assert!(matches!(
        decode_all(b"GET / HTTP/1.1\r\n"),
        Err(WireError::BadMagic { .. })
    ));
}

/// Re-frames `payload` under `kind` with a valid crc, to reach the payload checks.
fn raw_frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    f.extend_from_slice(&MAGIC);
    f.push(FORMAT_VERSION);
    f.push(kind);
    f.extend_from_slice(&[0, 0]);
    f.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    let crc = crc32c::crc32c_append(crc32c::crc32c(&f[0..12]), payload);
    f.extend_from_slice(&crc.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[test]
fn payload_checks_with_a_valid_crc() {
    // Trailing bytes after the fields.
    let err = decode_all(&raw_frame(3, &[0; 9])).expect_err("trailing");
    assert!(
        matches!(
            err,
            WireError::Payload {
                kind: MessageType::Ack,
                ..
            }
        ),
        "{err}"
    );
    // Short payload.
    assert!(decode_all(&raw_frame(4, &[0; 7])).is_err());
    // Unknown peer state.
    let mut n = vec![9u8];
    n.extend_from_slice(&[0; 48]);
    let err = decode_all(&raw_frame(33, &n)).expect_err("state 9");
    assert!(
        matches!(err, WireError::InvalidField { field: "state", .. }),
        "{err}"
    );
    // A null txn.
    let mut p = 1i64.to_be_bytes().to_vec();
    p.extend_from_slice(&(-1i32).to_be_bytes());
    assert!(decode_all(&raw_frame(2, &p)).is_err());
    // A hostile touch count is refused before any allocation.
    let err = decode_all(&raw_frame(5, &i32::MAX.to_be_bytes())).expect_err("count");
    assert!(matches!(err, WireError::Payload { .. }), "{err}");
    // A bool that is neither 0 nor 1.
    let mut rv = 1i64.to_be_bytes().to_vec();
    rv.push(2);
    assert!(decode_all(&raw_frame(34, &rv)).is_err());
    // An empty or non-UTF-8 election address.
    let hello = |addr: &[u8]| {
        let mut h = PROTOCOL_VERSION.to_be_bytes().to_vec();
        h.extend_from_slice(&1u64.to_be_bytes());
        h.extend_from_slice(&1u64.to_be_bytes());
        h.extend_from_slice(&(addr.len() as i32).to_be_bytes());
        h.extend_from_slice(addr);
        raw_frame(32, &h)
    };
    assert!(decode_all(&hello(b"h:1")).is_ok());
    assert!(decode_all(&hello(b"")).is_err());
    assert!(decode_all(&hello(&[0xff, 0xfe])).is_err());
    assert!(decode_all(&hello(&[b'a'; ADDRESS_BYTES_MAX + 1])).is_err());
}

#[test]
fn an_error_is_final() {
    let mut d = Decoder::new(PAYLOAD_BYTES_MAX_DEFAULT);
    d.feed(b"nope");
    let first = d.next_frame().expect_err("garbage");
    d.feed(&frame(&Message::UpToDate));
    assert_eq!(d.next_frame(), Err(first));
}

#[test]
fn oversized_payloads_are_refused_on_both_sides() {
    let msg = Message::Proposal {
        zxid: 1,
        txn: Bytes::from(vec![0u8; 100]),
    };
    let mut out = BytesMut::from(&b"keep"[..]);
    let err = encode(&msg, 50, &mut out).expect_err("too long");
    assert!(matches!(
        err,
        EncodeError::TooLong {
            len: 112,
            max: 50,
            ..
        }
    ));
    assert_eq!(
        &out[..],
        b"keep",
        "nothing of the refused frame is left behind"
    );
    let mut d = Decoder::new(50);
    d.feed(&frame(&msg)[..12]);
    assert!(matches!(
        d.next_frame(),
        Err(WireError::TooLong { len: 112, max: 50 })
    ));
}

#[test]
fn hello_check() {
    let hello = Hello {
        protocol_version: PROTOCOL_VERSION,
        sender: 2,
        cluster_id: 7,
        election_address: JStr::from("h:1"),
    };
    let members = |id| (1..=4).contains(&id);
    assert_eq!(hello.check(7, 1, members), Ok(()));
    assert!(matches!(
        hello.check(8, 1, members),
        Err(PeerError::ForeignCluster { .. })
    ));
    assert!(matches!(
        hello.check(7, 2, members),
        Err(PeerError::OwnId { id: 2 })
    ));
    assert!(matches!(
        hello.check(7, 1, |id| id == 1),
        Err(PeerError::UnknownServer { id: 2 })
    ));
    let old = Hello {
        protocol_version: PROTOCOL_VERSION + 1,
        ..hello
    };
    assert!(matches!(
        old.check(7, 1, members),
        Err(PeerError::ProtocolVersion { .. })
    ));
}

fn any_state() -> impl Strategy<Value = PeerState> {
    prop_oneof![
        Just(PeerState::Looking),
        Just(PeerState::Following),
        Just(PeerState::Leading),
        Just(PeerState::Observing),
    ]
}

fn any_bytes() -> impl Strategy<Value = Bytes> {
    proptest::collection::vec(any::<u8>(), 0..200).prop_map(Bytes::from)
}

fn any_learner() -> impl Strategy<Value = LearnerInfo> {
    (any::<u64>(), any::<u32>(), any::<u64>(), any::<i64>()).prop_map(|(s, p, e, z)| LearnerInfo {
        sender: s,
        protocol_version: p,
        accepted_epoch: e,
        last_zxid: z,
    })
}

fn any_message() -> impl Strategy<Value = Message> {
    prop_oneof![
        (
            any::<u32>(),
            any::<u64>(),
            any::<u64>(),
            "[a-z0-9.:\\[\\]]{1,60}"
        )
            .prop_map(|(p, s, c, a)| Message::Hello(Hello {
                protocol_version: p,
                sender: s,
                cluster_id: c,
                election_address: JStr::from(a),
            })),
        (
            any_state(),
            any::<u64>(),
            any::<i64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any::<u64>(),
            any_bytes()
        )
            .prop_map(|(state, leader, zxid, ee, pe, sender, cv, config)| {
                Message::Notification(Notification {
                    state,
                    leader,
                    zxid,
                    election_epoch: ee,
                    peer_epoch: pe,
                    sender,
                    config_version: cv,
                    config,
                })
            }),
        any_learner().prop_map(Message::FollowerInfo),
        any_learner().prop_map(Message::ObserverInfo),
        (any::<u64>(), any::<u32>()).prop_map(|(e, p)| Message::LeaderInfo {
            new_epoch: e,
            protocol_version: p
        }),
        (any::<u64>(), any::<i64>()).prop_map(|(e, z)| Message::AckEpoch {
            current_epoch: e,
            last_zxid: z
        }),
        any::<i64>().prop_map(|z| Message::Diff { last_zxid: z }),
        any::<i64>().prop_map(|z| Message::Trunc { truncate_to: z }),
        (any::<i64>(), any::<u64>()).prop_map(|(z, b)| Message::Snap {
            last_zxid: z,
            snapshot_bytes: b
        }),
        (any::<i64>(), any_bytes()).prop_map(|(zxid, txn)| Message::Proposal { zxid, txn }),
        any::<i64>().prop_map(|zxid| Message::Ack { zxid }),
        any::<i64>().prop_map(|zxid| Message::Commit { zxid }),
        (any::<i64>(), any_bytes()).prop_map(|(zxid, txn)| Message::Inform { zxid, txn }),
        (any::<i64>(), any::<u64>(), any_bytes()).prop_map(|(zxid, config_version, config)| {
            Message::NewLeader {
                zxid,
                config_version,
                config,
            }
        }),
        Just(Message::UpToDate),
        proptest::collection::vec((any::<i64>(), any::<i32>()), 0..20).prop_map(|t| {
            Message::Ping {
                touches: t
                    .into_iter()
                    .map(|(session_id, timeout_ms)| SessionTouch {
                        session_id,
                        timeout_ms,
                    })
                    .collect(),
            }
        }),
        (
            any::<i64>(),
            any::<i32>(),
            any::<i32>(),
            proptest::collection::vec(("[a-z]{0,8}", "[ -~]{0,20}"), 0..4),
            any_bytes()
        )
            .prop_map(|(session_id, xid, op, ids, body)| {
                Message::Request(ForwardedRequest {
                    session_id,
                    xid,
                    op,
                    auth_ids: ids.iter().map(|(s, i)| Id::new(s, i)).collect(),
                    body,
                })
            }),
        (any::<i64>(), any::<i32>()).prop_map(|(session_id, timeout_ms)| {
            Message::Revalidate {
                session_id,
                timeout_ms,
            }
        }),
        (any::<i64>(), any::<bool>())
            .prop_map(|(session_id, valid)| Message::RevalidateReply { session_id, valid }),
        any::<i64>().prop_map(|zxid| Message::Sync { zxid }),
        proptest::collection::vec(any::<u8>(), 0..64).prop_map(|data| Message::SnapChunk {
            data: Bytes::from(data)
        }),
    ]
}

proptest! {
    #[test]
    fn round_trip(msgs in proptest::collection::vec(any_message(), 1..6), split in any::<prop::sample::Index>()) {
        let mut stream = BytesMut::new();
        for m in &msgs {
            encode(m, PAYLOAD_BYTES_MAX_DEFAULT, &mut stream).expect("fits");
        }
        // Fed in two pieces at an arbitrary point.
        let at = split.index(stream.len() + 1);
        let mut d = Decoder::new(PAYLOAD_BYTES_MAX_DEFAULT);
        let mut got = Vec::new();
        d.feed(&stream[..at]);
        while let Some(m) = d.next_frame().expect("valid") { got.push(m); }
        d.feed(&stream[at..]);
        while let Some(m) = d.next_frame().expect("valid") { got.push(m); }
        prop_assert_eq!(got, msgs);
        prop_assert_eq!(d.buffered_bytes(), 0);
    }

    #[test]
    fn flips_and_cuts_of_random_messages(msg in any_message(), at in any::<prop::sample::Index>(), mask in 1u8..=255, cut in any::<prop::sample::Index>()) {
        let f = frame(&msg);
        let mut bad = f.to_vec();
        bad[at.index(f.len())] ^= mask;
        prop_assert!(v_is_empty_or_err(&decode_all(&bad)));
        let len = cut.index(f.len());
        prop_assert_eq!(decode_all(&f[..len]), Ok(vec![]));
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        // Random bytes are refused (or, if short, wait); they never decode into a message
        // unless they happen to start with the magic, which these almost never do.
        let r = decode_all(&bytes);
        if !bytes.starts_with(&MAGIC) {
            prop_assert!(v_is_empty_or_err(&r));
        }
    }

    #[test]
    fn garbage_after_the_magic_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let mut b = MAGIC.to_vec();
        b.push(FORMAT_VERSION);
        b.extend_from_slice(&bytes);
        let _ = decode_all(&b);
    }
}
