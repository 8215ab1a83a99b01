//! The client against a scripted fake server on loopback: what goes on the wire at
//! connect, reconnect (session id, password, last zxid, auth, SetWatches) and how
//! replies, pings and notifications are matched.

use super::*;
use crate::jute::frame::{begin_frame, end_frame, split_frame, FrameStatus};
use crate::jute::{Reader, Record, Writer};
use crate::proto::watcher_type;
use crate::proto::{
    xid, ConnectRequest, ConnectResponse, ReplyHeader, RequestHeader, WatcherEvent,
};
use bytes::BytesMut;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::mpsc::Receiver;

/// One side of a fake server connection.
struct Peer {
    stream: TcpStream,
    buf: BytesMut,
}

impl Peer {
    fn accept(listener: &TcpListener) -> Peer {
        let (stream, _) = listener.accept().expect("accept");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Peer {
            stream,
            buf: BytesMut::new(),
        }
    }

    fn read_frame(&mut self) -> Bytes {
        let mut chunk = [0u8; 4096];
        loop {
            if let FrameStatus::Frame(f) = split_frame(&mut self.buf, 1 << 20) {
                return f;
            }
            let n = self.stream.read(&mut chunk).expect("read");
            assert!(n > 0, "client closed the connection");
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn write(&mut self, record: impl FnOnce(&mut BytesMut)) {
        let mut out = BytesMut::new();
        let at = begin_frame(&mut out);
        record(&mut out);
        end_frame(&mut out, at);
        self.stream.write_all(&out).expect("write");
    }

    fn handshake(&mut self, session_id: i64, timeout_ms: i32) -> ConnectRequest {
        let request = ConnectRequest::decode_all(self.read_frame()).expect("ConnectRequest");
        self.write(|w| {
            ConnectResponse {
                protocol_version: 0,
                timeout_ms,
                session_id,
                passwd: Bytes::from_static(&[7; 16]),
                read_only: request.read_only.map(|_| false),
            }
            .encode(w)
        });
        request
    }

    /// The next request that is not a ping (pings are answered).
    fn request(&mut self) -> (RequestHeader, Reader) {
        loop {
            let mut r = Reader::new(self.read_frame());
            let header = RequestHeader::decode(&mut r).expect("header");
            if header.xid == xid::PING {
                self.reply(xid::PING, 0, 0, |_| {});
                continue;
            }
            return (header, r);
        }
    }

    fn reply(&mut self, xid: i32, zxid: i64, err: i32, body: impl FnOnce(&mut BytesMut)) {
        self.write(|w| {
            ReplyHeader { xid, zxid, err }.encode(w);
            body(w);
        });
    }
}

fn channel_watcher() -> (Watcher, Receiver<WatchedEvent>) {
    let (tx, rx) = mpsc::channel();
    let tx = Mutex::new(tx);
    let watcher: Watcher = Arc::new(move |e: &WatchedEvent| {
        let _ = tx.lock().map(|t| t.send(e.clone()));
    });
    (watcher, rx)
}

fn next_event(rx: &Receiver<WatchedEvent>) -> WatchedEvent {
    rx.recv_timeout(Duration::from_secs(10)).expect("event")
}

#[test]
fn reconnect_resumes_session_and_restores_auth_and_watches() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (watcher, events) = channel_watcher();
    let config = ClientConfig {
        session_timeout_ms: 4000,
        watcher: Some(watcher),
        host_shuffle_seed: Some(0),
        ..ClientConfig::default()
    };
    let client = Client::connect(&format!("{addr}/app"), config).expect("connect");

    let mut peer = Peer::accept(&listener);
    let first = peer.handshake(0x77, 4000);
    assert_eq!(first.session_id, 0);
    assert_eq!(first.last_zxid_seen, 0);
    assert_eq!(first.timeout_ms, 4000);
    assert_eq!(first.read_only, Some(false));
    assert_eq!(next_event(&events).state, state::SYNC_CONNECTED);
    assert!(client.wait_connected(Duration::from_secs(5)));

    client.add_auth("digest", b"u:p");
    let (h, mut r) = peer.request();
    assert_eq!((h.xid, h.op), (xid::AUTH, op::AUTH));
    assert_eq!(r.i32().unwrap(), 0);
    assert_eq!(r.string().unwrap().as_str(), "digest");
    peer.reply(xid::AUTH, 0, 0, |_| {});

    // The scripted server tells the test when the first of the pipelined pair arrived.
    let (first_arrived_tx, first_arrived) = std::sync::mpsc::channel::<()>();
    let server = std::thread::spawn(move || {
        let (h, mut r) = peer.request();
        assert_eq!(h.op, op::GET_DATA);
        assert_eq!(r.string().unwrap().as_str(), "/app/a");
        assert!(r.bool().unwrap());
        peer.reply(h.xid, 0x10, 0, |w| {
            w.put_buffer(b"hi");
            Stat::default().encode(w);
        });
        // Drop the connection: the client must come back with the same session.
        drop(peer);
        let mut peer = Peer::accept(&listener);
        let second = peer.handshake(0x77, 4000);
        let (h, mut r) = peer.request();
        assert_eq!((h.xid, h.op), (xid::AUTH, op::AUTH));
        r.i32().unwrap();
        assert_eq!(r.string().unwrap().as_str(), "digest");
        assert_eq!(&r.buffer().unwrap()[..], b"u:p");
        peer.reply(xid::AUTH, 0, 0, |_| {});
        let (h, mut r) = peer.request();
        assert_eq!((h.xid, h.op), (xid::SET_WATCHES, op::SET_WATCHES));
        assert_eq!(r.i64().unwrap(), 0x10);
        let data: Vec<String> = r
            .string_vec()
            .unwrap()
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(data, vec!["/app/a".to_string()]);
        peer.reply(xid::SET_WATCHES, 0x10, 0, |_| {});
        peer.reply(xid::NOTIFICATION, -1, 0, |w| {
            WatcherEvent {
                event_type: event::NODE_DATA_CHANGED,
                state: state::SYNC_CONNECTED,
                path: "/app/a".into(),
            }
            .encode(w)
        });
        // A pipelined pair: replies must reach the right callers.
        let (h1, _) = peer.request();
        let _ = first_arrived_tx.send(());
        let (h2, _) = peer.request();
        assert_eq!((h1.op, h2.op), (op::EXISTS, op::GET_CHILDREN));
        peer.reply(h1.xid, 0x11, ErrorCode::NoNode.code(), |_| {});
        peer.reply(h2.xid, 0x11, 0, |w| w.put_string_vec(&["x", "y"]));
        (second, peer)
    });

    let (data, _) = client.get_data("/a", true).expect("get_data");
    assert_eq!(data.as_deref(), Some(&b"hi"[..]));
    assert_eq!(next_event(&events).state, state::DISCONNECTED);
    assert_eq!(next_event(&events).state, state::SYNC_CONNECTED);
    assert_eq!(
        next_event(&events),
        WatchedEvent {
            event_type: event::NODE_DATA_CHANGED,
            state: state::SYNC_CONNECTED,
            path: Some("/a".into()),
        }
    );
    let exists = std::thread::scope(|scope| {
        let exists = scope.spawn(|| client.exists("/nope", false));
        // The wire order must be exists, then children: wait until exists is on the wire.
        first_arrived
            .recv_timeout(Duration::from_secs(10))
            .expect("exists reached the server");
        let children = client.get_children("/", false).expect("children");
        assert_eq!(children, vec!["x".to_string(), "y".to_string()]);
        exists.join().expect("join")
    });
    assert_eq!(exists, Ok(None));
    let (second, _peer) = server.join().expect("server");
    assert_eq!(second.session_id, 0x77);
    assert_eq!(&second.passwd[..], &[7u8; 16]);
    assert_eq!(second.last_zxid_seen, 0x10);
    assert_eq!(client.last_zxid(), 0x11);
    assert_eq!(client.session_id(), 0x77);
    client.disconnect();
}

#[test]
fn expired_session_is_reported_and_final() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (watcher, events) = channel_watcher();
    let config = ClientConfig {
        session_timeout_ms: 4000,
        watcher: Some(watcher),
        ..ClientConfig::default()
    };
    let client = Client::connect(&addr.to_string(), config).expect("connect");
    let mut peer = Peer::accept(&listener);
    peer.handshake(0x55, 4000);
    assert_eq!(next_event(&events).state, state::SYNC_CONNECTED);
    drop(peer);
    let mut peer = Peer::accept(&listener);
    let again = peer.handshake(0, 0);
    assert_eq!(again.session_id, 0x55);
    assert_eq!(next_event(&events).state, state::DISCONNECTED);
    assert_eq!(next_event(&events).state, state::EXPIRED);
    assert!(!client.wait_connected(Duration::from_millis(10)));
    assert_eq!(client.state(), States::Closed);
    assert_eq!(
        client.get_data("/a", false).unwrap_err().code(),
        Some(ErrorCode::SessionExpired)
    );
    client.close().expect("close");
    // No Closed event after Expired: Java's event thread is gone by then.
    assert!(events.recv_timeout(Duration::from_millis(100)).is_err());
}

#[test]
fn remove_watches_follows_the_local_registry() {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (watcher, events) = channel_watcher();
    let config = ClientConfig {
        watcher: Some(watcher),
        ..ClientConfig::default()
    };
    let client = Client::connect(&addr.to_string(), config).expect("connect");
    let mut peer = Peer::accept(&listener);
    peer.handshake(0x66, 30000);
    next_event(&events);
    let server = std::thread::spawn(move || {
        let (h, _) = peer.request();
        assert_eq!(h.op, op::GET_CHILDREN);
        peer.reply(h.xid, 1, 0, |w| w.put_string_vec::<&str>(&[]));
        // removewatches with nothing held locally still asks the server first.
        let (h, _) = peer.request();
        assert_eq!(h.op, op::REMOVE_WATCHES);
        peer.reply(h.xid, 1, 0, |_| {});
        let (h, mut r) = peer.request();
        assert_eq!(h.op, op::REMOVE_WATCHES);
        assert_eq!(r.string().unwrap().as_str(), "/w");
        assert_eq!(r.i32().unwrap(), watcher_type::ANY);
        peer.reply(h.xid, 1, 0, |_| {});
        peer
    });
    client.get_children("/w", true).expect("children");
    let err = client
        .remove_watches("/other", watcher_type::ANY, false)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "KeeperErrorCode = No such watcher for /other"
    );
    client
        .remove_watches("/w", watcher_type::ANY, false)
        .expect("remove");
    assert_eq!(
        next_event(&events),
        WatchedEvent {
            event_type: event::CHILD_WATCH_REMOVED,
            state: state::SYNC_CONNECTED,
            path: Some("/w".into()),
        }
    );
    let _peer = server.join().expect("server");
    client.disconnect();
}
