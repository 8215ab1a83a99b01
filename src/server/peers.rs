//! The quorum mesh: one TCP connection between each pair of servers, carrying
//! `quorum::wire` frames (election notifications now; ZAB's messages as they are wired).
//!
//! Runs on one executor (the ZAB executor). The sans-IO machines never see it: they get
//! `(from, Message)` from [`PeerMesh`]'s inbox and hand messages to [`PeerMesh::send`].
//!
//! Rules, as ZooKeeper's `QuorumCnxManager`:
//! - one connection per pair: the server with the higher id dials, the lower one accepts, so
//!   two servers starting together never keep two connections;
//! - the first frame either way is a [`Hello`]; a peer that sends anything else, garbage, a
//!   foreign cluster id, our own id or a non-member id is dropped with one log line;
//! - a lost connection is dialled again with a bounded backoff; messages for a peer with no
//!   connection are dropped (the election resends, and ZAB re-synchronises a learner that
//!   reconnects), so a dead peer never makes the sender wait or buffer without bound.

use crate::jute::JStr;
use crate::quorum::wire::{self, Decoder, Hello, Message, PROTOCOL_VERSION};
use crate::quorum::ServerId;
use crate::runtime::Notify;
use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

/// How long a new connection has to say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Dial backoff bounds.
const DIAL_BACKOFF_MIN: Duration = Duration::from_millis(100);
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Bytes queued for one peer beyond which new messages are dropped (the peer is not reading).
const OUTBOX_BYTES_MAX: usize = 64 << 20;

/// Who this server is in the mesh and whom it talks to.
#[derive(Debug, Clone)]
pub struct MeshConfig {
    pub my_id: ServerId,
    pub cluster_id: u64,
    /// Where this server accepts peers.
    pub listen: SocketAddr,
    /// Every other member and where it accepts peers.
    pub peers: Vec<(ServerId, SocketAddr)>,
    /// Largest frame payload accepted from a peer.
    pub payload_bytes_max: u32,
}

/// One live connection's send side.
struct Link {
    outbox: BytesMut,
    wake: Rc<Notify>,
    /// Distinguishes this connection from a later one to the same peer.
    generation: u64,
}

struct State {
    links: HashMap<ServerId, Link>,
    next_generation: u64,
}

/// The mesh. Received messages land in `inbox` and `inbox_wake` is notified.
pub struct PeerMesh {
    cfg: MeshConfig,
    state: RefCell<State>,
    pub inbox: RefCell<VecDeque<(ServerId, Message)>>,
    pub inbox_wake: Notify,
}

impl PeerMesh {
    /// Binds the listener and starts accepting and dialling. Must run inside a glommio
    /// executor; the tasks live as long as the returned mesh is referenced by them.
    pub fn start(cfg: MeshConfig) -> std::io::Result<Rc<PeerMesh>> {
        let listener = TcpListener::bind(cfg.listen)?;
        let mesh = Rc::new(PeerMesh {
            cfg,
            state: RefCell::new(State {
                links: HashMap::new(),
                next_generation: 0,
            }),
            inbox: RefCell::new(VecDeque::new()),
            inbox_wake: Notify::default(),
        });
        {
            let mesh = mesh.clone();
            glommio::spawn_local(async move { mesh.accept_loop(listener).await }).detach();
        }
        for &(id, addr) in &mesh.cfg.peers {
            if id < mesh.cfg.my_id {
                let mesh = mesh.clone();
                glommio::spawn_local(async move { mesh.dial_loop(id, addr).await }).detach();
            }
        }
        Ok(mesh)
    }

    /// Queues `msg` for `to`. False if there is no connection to `to` (dropped).
    pub fn send(&self, to: ServerId, msg: &Message) -> bool {
        let mut state = self.state.borrow_mut();
        let Some(link) = state.links.get_mut(&to) else {
            return false;
        };
        if link.outbox.len() > OUTBOX_BYTES_MAX {
            tracing::warn!(peer = to, "peer is not reading; message dropped");
            return false;
        }
        if let Err(e) = wire::encode(msg, self.cfg.payload_bytes_max, &mut link.outbox) {
            tracing::error!(peer = to, error = %e, "message not sent");
            return false;
        }
        link.wake.notify();
        true
    }

    /// Peers with a live connection now.
    pub fn connected(&self) -> Vec<ServerId> {
        let mut ids: Vec<ServerId> = self.state.borrow().links.keys().copied().collect();
        ids.sort_unstable();
        ids
    }

    fn hello(&self) -> Message {
        Message::Hello(Hello {
            protocol_version: PROTOCOL_VERSION,
            sender: self.cfg.my_id,
            cluster_id: self.cfg.cluster_id,
            election_address: JStr::from(self.cfg.listen.to_string()),
        })
    }

    fn is_member(&self, id: ServerId) -> bool {
        self.cfg.peers.iter().any(|(p, _)| *p == id)
    }

    async fn accept_loop(self: Rc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    let mesh = self.clone();
                    glommio::spawn_local(async move {
                        let peer_addr = stream.peer_addr().ok();
                        if let Err(reason) = mesh.serve(stream, None).await {
                            tracing::info!(peer = ?peer_addr, %reason, "quorum connection closed");
                        }
                    })
                    .detach();
                }
                Err(e) => {
                    tracing::warn!(error = %e, "quorum accept failed");
                    glommio::timer::sleep(DIAL_BACKOFF_MIN).await;
                }
            }
        }
    }

    async fn dial_loop(self: Rc<Self>, id: ServerId, addr: SocketAddr) {
        let mut backoff = DIAL_BACKOFF_MIN;
        loop {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    backoff = DIAL_BACKOFF_MIN;
                    if let Err(reason) = self.clone().serve(stream, Some(id)).await {
                        tracing::info!(peer = id, %reason, "quorum connection closed");
                    }
                }
                Err(e) => tracing::debug!(peer = id, error = %e, "dial failed"),
            }
            glommio::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(DIAL_BACKOFF_MAX);
        }
    }

    /// Runs one connection to its end. `dialled` is the peer we called (None: it called us).
    async fn serve(
        self: Rc<Self>,
        mut stream: TcpStream,
        dialled: Option<ServerId>,
    ) -> Result<(), String> {
        let _ = stream.set_nodelay(true);
        let mut hello = BytesMut::new();
        wire::encode(&self.hello(), self.cfg.payload_bytes_max, &mut hello)
            .map_err(|e| e.to_string())?;
        stream
            .write_all(&hello)
            .await
            .map_err(|e| format!("sending hello: {e}"))?;
        let mut decoder = Decoder::new(self.cfg.payload_bytes_max);
        let mut buf = vec![0u8; 64 << 10];
        let first = futures_lite::future::or(
            async { Some(read_message(&mut stream, &mut decoder, &mut buf).await) },
            async {
                glommio::timer::sleep(HELLO_TIMEOUT).await;
                None
            },
        )
        .await
        .ok_or("no hello in time")??;
        let Message::Hello(h) = first else {
            return Err(format!("first frame was {:?}, not a hello", first.kind()));
        };
        h.check(self.cfg.cluster_id, self.cfg.my_id, |id| self.is_member(id))
            .map_err(|e| e.to_string())?;
        let peer = h.sender;
        match dialled {
            Some(expected) if expected != peer => {
                return Err(format!("dialled server {expected}, server {peer} answered"));
            }
            None if peer < self.cfg.my_id => {
                // A lower id must not dial us: we dial it. Keeping only our own dial means
                // one connection per pair.
                return Err(format!("server {peer} dialled a higher id"));
            }
            _ => {}
        }
        let wake = Rc::new(Notify::default());
        let generation = {
            let mut state = self.state.borrow_mut();
            state.next_generation += 1;
            let generation = state.next_generation;
            // A newer connection replaces an older one (the peer restarted).
            state.links.insert(
                peer,
                Link {
                    outbox: BytesMut::new(),
                    wake: wake.clone(),
                    generation,
                },
            );
            generation
        };
        tracing::info!(peer, "quorum connection up");
        let result = self
            .pump(peer, generation, &wake, &mut stream, &mut decoder, &mut buf)
            .await;
        let mut state = self.state.borrow_mut();
        if state
            .links
            .get(&peer)
            .is_some_and(|l| l.generation == generation)
        {
            state.links.remove(&peer);
        }
        result
    }

    /// Moves frames both ways until the connection fails or is replaced.
    async fn pump(
        &self,
        peer: ServerId,
        generation: u64,
        wake: &Rc<Notify>,
        stream: &mut TcpStream,
        decoder: &mut Decoder,
        buf: &mut [u8],
    ) -> Result<(), String> {
        enum Woke {
            Read(std::io::Result<usize>),
            Send,
        }
        loop {
            let pending = {
                let mut state = self.state.borrow_mut();
                match state.links.get_mut(&peer) {
                    Some(l) if l.generation == generation => l.outbox.split(),
                    _ => return Err("replaced by a newer connection".into()),
                }
            };
            if !pending.is_empty() {
                stream
                    .write_all(&pending)
                    .await
                    .map_err(|e| format!("sending: {e}"))?;
                continue;
            }
            let woke =
                futures_lite::future::or(async { Woke::Read(stream.read(buf).await) }, async {
                    wake.wait().await;
                    Woke::Send
                })
                .await;
            match woke {
                Woke::Send => {}
                Woke::Read(Ok(0)) => return Err("peer closed the connection".into()),
                Woke::Read(Err(e)) => return Err(format!("reading: {e}")),
                Woke::Read(Ok(n)) => {
                    decoder.feed(&buf[..n]);
                    loop {
                        match decoder.next_frame() {
                            Ok(Some(msg)) => {
                                self.inbox.borrow_mut().push_back((peer, msg));
                                self.inbox_wake.notify();
                            }
                            Ok(None) => break,
                            Err(e) => return Err(format!("bad frame from server {peer}: {e}")),
                        }
                    }
                }
            }
        }
    }
}

/// Reads until one whole message is decoded.
async fn read_message(
    stream: &mut TcpStream,
    decoder: &mut Decoder,
    buf: &mut [u8],
) -> Result<Message, String> {
    loop {
        match decoder.next_frame() {
            Ok(Some(msg)) => return Ok(msg),
            Ok(None) => {}
            Err(e) => return Err(format!("bad frame: {e}")),
        }
        let n = stream
            .read(buf)
            .await
            .map_err(|e| format!("reading: {e}"))?;
        if n == 0 {
            return Err("closed before its hello".into());
        }
        decoder.feed(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::wire::{Notification, PeerState};
    use std::io::{Read, Write};

    fn free_port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .unwrap_or(0)
    }

    fn note(sender: ServerId, round: u64) -> Message {
        Message::Notification(Notification {
            state: PeerState::Looking,
            leader: sender,
            zxid: 0,
            election_epoch: round,
            peer_epoch: 0,
            sender,
            config_version: 0,
        })
    }

    /// Runs a mesh node for `id` on its own executor until it has received `want` messages
    /// from every peer (or the deadline passes); sends one notification per round to every
    /// peer meanwhile.
    fn node(
        id: ServerId,
        addrs: Vec<(ServerId, SocketAddr)>,
        want: usize,
    ) -> std::thread::JoinHandle<Vec<(ServerId, Message)>> {
        let listen = addrs.iter().find(|(p, _)| *p == id).map(|(_, a)| *a);
        let peers: Vec<_> = addrs.into_iter().filter(|(p, _)| *p != id).collect();
        std::thread::spawn(move || {
            crate::runtime::executor_builder(
                "mesh-test",
                crate::runtime::CorePin::Unpinned,
                512 << 10,
            )
            .spawn(move || async move {
                let cfg = MeshConfig {
                    my_id: id,
                    cluster_id: 7,
                    listen: listen.expect("own address"),
                    peers: peers.clone(),
                    payload_bytes_max: wire::PAYLOAD_BYTES_MAX_DEFAULT,
                };
                let mesh = PeerMesh::start(cfg).expect("bind");
                let deadline = std::time::Instant::now() + Duration::from_secs(20);
                let mut got = Vec::new();
                let mut round = 0;
                let heard_enough = |got: &Vec<(ServerId, Message)>| {
                    peers
                        .iter()
                        .all(|(p, _)| got.iter().filter(|(f, _)| f == p).count() >= want)
                };
                while !heard_enough(&got) && std::time::Instant::now() < deadline {
                    round += 1;
                    for (p, _) in &peers {
                        mesh.send(*p, &note(id, round));
                    }
                    futures_lite::future::or(
                        mesh.inbox_wake.wait(),
                        glommio::timer::sleep(Duration::from_millis(50)),
                    )
                    .await;
                    got.extend(mesh.inbox.borrow_mut().drain(..));
                }
                // Keep answering a little longer so the others reach their count too.
                let linger = std::time::Instant::now() + Duration::from_millis(500);
                while std::time::Instant::now() < linger {
                    round += 1;
                    for (p, _) in &peers {
                        mesh.send(*p, &note(id, round));
                    }
                    glommio::timer::sleep(Duration::from_millis(50)).await;
                }
                got
            })
            .expect("executor")
            .join()
            .expect("join")
        })
    }

    #[test]
    fn three_servers_exchange_messages_and_garbage_is_dropped() {
        let addrs: Vec<(ServerId, SocketAddr)> = (1..=3)
            .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_port()))))
            .collect();
        let a3 = addrs[2].1;
        let handles: Vec<_> = (1..=3).map(|id| node(id, addrs.clone(), 2)).collect();
        // A stranger speaking garbage to server 3 is dropped; server 3 keeps working.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut closed = false;
        while std::time::Instant::now() < deadline && !closed {
            if let Ok(mut s) = std::net::TcpStream::connect(a3) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(8)));
                let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n and more garbage");
                let mut sink = Vec::new();
                // The server sends its hello, then closes on our garbage: EOF, not a hang.
                closed = s.read_to_end(&mut sink).is_ok();
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        assert!(closed, "the garbage connection was closed");
        for (i, h) in handles.into_iter().enumerate() {
            let id = i as u64 + 1;
            let got = h.join().expect("node thread");
            assert!(
                got.len() >= 4,
                "server {id} received {} messages",
                got.len()
            );
            for (from, msg) in &got {
                assert_ne!(*from, id);
                match msg {
                    Message::Notification(n) => {
                        assert_eq!(n.sender, *from, "sender matches the link")
                    }
                    other => panic!("server {id} got {:?}", other.kind()),
                }
            }
            let senders: std::collections::HashSet<_> = got.iter().map(|(f, _)| *f).collect();
            assert_eq!(senders.len(), 2, "server {id} heard from both peers");
        }
    }
}
