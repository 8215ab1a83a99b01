//! Bad input over real sockets (design.md guarantee 7): the right error code or a closed
//! connection, never a panic; the server keeps serving other clients afterwards.

mod common;
use common::{jute_string, RawClient, TestServer};
use std::io::Write;

fn assert_still_serving(server: &mut TestServer) {
    assert!(server.is_running(), "server died: {}", server.log());
    assert_eq!(server.four_letter("ruok").as_deref(), Some("imok"));
}

#[test]
fn oversized_length_prefix_closes_the_connection() {
    let mut server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    c.stream.write_all(&0x7fff_fff0_i32.to_be_bytes()).unwrap();
    assert!(c.read_frame().is_none(), "connection must be closed");
    let mut c = RawClient::connect(server.addr);
    c.handshake(0, 0, &[0; 16]).expect("handshake");
    c.stream.write_all(&(-5i32).to_be_bytes()).unwrap();
    assert!(c.read_frame().is_none());
    assert_still_serving(&mut server);
}

#[test]
fn unknown_opcode_is_unimplemented_and_bad_body_is_marshalling_error() {
    let mut server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    let (timeout, sid, _) = c.handshake(0, 0, &[0; 16]).expect("handshake");
    assert!(timeout > 0 && sid != 0);
    let (xid, _, err, _) = c.request(1, 9999, &[]).expect("reply");
    assert_eq!((xid, err), (1, -6));
    // As ZooKeeper, the connection is closed after the Unimplemented reply.
    assert!(c.read_frame().is_none());
    let mut c = RawClient::connect(server.addr);
    c.handshake(0, 0, &[0; 16]).expect("handshake");
    // getData with a truncated body.
    let (xid, _, err, _) = c.request(2, 4, &[0, 0, 0, 9, b'/']).expect("reply");
    assert_eq!((xid, err), (2, -5));
    // The connection still works.
    let mut body = jute_string("/");
    body.push(0);
    let (xid, _, err, _) = c.request(3, 3, &body).expect("exists /");
    assert_eq!((xid, err), (3, 0));
    assert_still_serving(&mut server);
}

#[test]
fn garbage_handshake_and_garbage_header_close_the_connection() {
    let mut server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    c.send_frame(&[1, 2, 3]);
    assert!(c.read_frame().is_none());
    let mut c = RawClient::connect(server.addr);
    c.handshake(0, 0, &[0; 16]).expect("handshake");
    c.send_frame(&[1, 2]);
    assert!(c.read_frame().is_none());
    assert_still_serving(&mut server);
}

#[test]
fn handshake_ahead_of_the_server_is_refused_without_reply() {
    let mut server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    assert!(c.handshake(1 << 40, 0, &[0; 16]).is_none());
    assert_still_serving(&mut server);
}

#[test]
fn wrong_password_gets_zero_timeout_and_zero_session() {
    let server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    let (_, sid, _) = c.handshake(0, 0, &[0; 16]).expect("handshake");
    let mut c2 = RawClient::connect(server.addr);
    let (timeout, sid2, pw) = c2.handshake(0, sid, &[7; 16]).expect("answer");
    assert_eq!((timeout, sid2), (0, 0));
    assert_eq!(pw, vec![0; 16]);
    assert!(c2.read_frame().is_none(), "closed after the refusal");
}

#[test]
fn invalid_paths_are_bad_arguments_and_ping_answers_minus_two() {
    let server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    c.handshake(0, 0, &[0; 16]).expect("handshake");
    // The parent exists, so the path check decides (with a missing parent: NoNode).
    let mut create = jute_string("/zookeeper/");
    create.extend_from_slice(&(-1i32).to_be_bytes()); // null data
    create.extend_from_slice(&1i32.to_be_bytes()); // one ACL
    create.extend_from_slice(&31i32.to_be_bytes());
    create.extend_from_slice(&jute_string("world"));
    create.extend_from_slice(&jute_string("anyone"));
    create.extend_from_slice(&0i32.to_be_bytes());
    let (_, _, err, _) = c.request(1, 1, &create).expect("reply");
    assert_eq!(err, -8);
    let (xid, _, err, body) = c.request(-2, 11, &[]).expect("ping");
    assert_eq!((xid, err, body.len()), (-2, 0, 0));
}

#[test]
fn unknown_four_letter_word_is_closed_without_reply() {
    let server = TestServer::start("");
    assert_eq!(server.four_letter("abcd").as_deref(), Some(""));
    assert!(server
        .four_letter("srvr")
        .unwrap()
        .contains("Mode: standalone"));
}

#[test]
fn a_connection_without_handshake_is_closed_after_the_max_session_timeout() {
    let mut server = TestServer::start("tickTime=500\nmaxSessionTimeout=1000");
    let mut c = RawClient::connect(server.addr);
    let started = std::time::Instant::now();
    // The read times out after 5 s (RawClient); the server must close well before that.
    assert!(c.read_frame().is_none());
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    assert_still_serving(&mut server);
}

#[test]
fn a_connection_holds_at_most_64_auth_ids() {
    // Every connection has its ip id; 63 digest users make 64. A replicated server
    // forwards the ids with each write, and the quorum wire carries 64: the next addauth
    // fails as a wrong password would (AuthFailed, then the connection is closed).
    let mut server = TestServer::start("");
    let mut c = RawClient::connect(server.addr);
    c.handshake(0, 0, &[0; 16]).expect("handshake");
    let addauth = |c: &mut RawClient, user: usize| {
        let mut body = 0i32.to_be_bytes().to_vec();
        body.extend_from_slice(&jute_string("digest"));
        let secret = format!("user{user}:secret");
        body.extend_from_slice(&(secret.len() as i32).to_be_bytes());
        body.extend_from_slice(secret.as_bytes());
        c.request(-4, 100, &body)
    };
    for user in 0..63 {
        let (xid, _, err, _) = addauth(&mut c, user).expect("addauth answered");
        assert_eq!((xid, err), (-4, 0), "user {user}");
    }
    // A user already held adds nothing, so it is still fine.
    let (_, _, err, _) = addauth(&mut c, 0).expect("addauth answered");
    assert_eq!(err, 0);
    let (_, _, err, _) = addauth(&mut c, 63).expect("addauth answered");
    assert_eq!(err, -115, "AuthFailed");
    assert!(c.read_frame().is_none(), "the connection is closed");
    assert_still_serving(&mut server);
}
