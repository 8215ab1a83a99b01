//! The quorum mesh: one TCP connection between each pair of servers, carrying
//! `quorum::wire` frames (election notifications now; ZAB's messages as they are wired).
//!
//! Runs on one executor (the ZAB executor). The sans-IO machines never see it: they get
//! [`MeshEvent`]s from [`PeerMesh`]'s inbox (messages, and links going down, in the order
//! they happened) and hand messages to [`PeerMesh::send`].
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
use crate::tls::PeerStream;
use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use glommio::net::{TcpListener, TcpStream};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How long a new connection has to say who it is.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// Dial backoff bounds.
const DIAL_BACKOFF_MIN: Duration = Duration::from_millis(100);
const DIAL_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// Bytes queued for one peer beyond which its connection is closed if it is not reading:
/// no byte went out to it for [`OUTBOX_STALL`] while something waited. A peer that keeps
/// reading is left alone up to [`OUTBOX_BYTES_HARD_MAX`] (a DIFF of up to
/// `PeerConfig::diff_bytes_max` is queued in one turn; so is a burst of large writes).
const OUTBOX_BYTES_MAX: usize = 64 << 20;
const OUTBOX_STALL: Duration = Duration::from_secs(5);
/// A writer sends at most this much per write, and notes its progress after each.
const WRITE_SLICE_BYTES: usize = 1 << 20;
/// Bytes queued for one peer beyond which its connection is closed in any case: the bound
/// on a peer's share of memory. A leader sends a SNAP instead of a DIFF that would be
/// half of it (`PeerConfig::diff_bytes_max`).
pub const OUTBOX_BYTES_HARD_MAX: usize = 1 << 30;
/// The largest written buffer kept for the next turn (one that grew past it, in a burst or
/// a snapshot transfer, is freed).
const OUTBOX_KEPT_BYTES_MAX: usize = 1 << 20;
/// Largest payload accepted before a peer has said who it is (a hello is a few hundred
/// bytes), so a stranger cannot make us buffer a big frame.
const HELLO_PAYLOAD_BYTES_MAX: u32 = 4 << 10;
/// Connections that have not finished their hello, beyond which new ones are refused.
const HANDSHAKES_MAX: usize = 16;

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
    /// `reconfigEnabled`: accept a server that is not (yet, or any more) a member, so it
    /// can learn who leads; the roles decide what it may do.
    pub accept_strangers: bool,
    /// `sslQuorum=true`: mutual TLS on every connection; a peer whose certificate does not
    /// verify is refused (one log line) before any hello.
    pub tls: Option<crate::tls::MeshTls>,
}

/// One live connection's send side.
struct Link {
    outbox: BytesMut,
    /// The last sign that the peer reads: the writer sent a slice, or a message was queued
    /// with nothing waiting before it (or the link was made).
    progress_at: Instant,
    wake: Rc<Notify>,
    /// Distinguishes this connection from a later one to the same peer.
    generation: u64,
}

struct State {
    links: HashMap<ServerId, Link>,
    /// The members and where they accept peers (changes with reconfig).
    peers: HashMap<ServerId, SocketAddr>,
    /// Peers a dial loop runs for (at most one each: two would replace each other's
    /// connection for ever).
    dialling: HashSet<ServerId>,
    next_generation: u64,
    handshakes: usize,
}

/// What the mesh reports to its owner, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MeshEvent {
    /// A message from the peer the connection authenticated as `from`.
    Message { from: ServerId, msg: Message },
    /// The connection to `peer` ended (failed, closed, replaced by a newer one, or
    /// [`PeerMesh::disconnect`]ed). Everything it delivered came before this event; anything
    /// after it from `peer` came on a new connection.
    Down { peer: ServerId },
    /// A connection to `peer` is up (after the `Down` of the one it replaced, if any).
    Up { peer: ServerId },
}

/// The mesh. Events land in `inbox` and `inbox_wake` is notified.
pub struct PeerMesh {
    cfg: MeshConfig,
    state: RefCell<State>,
    pub inbox: RefCell<VecDeque<MeshEvent>>,
    pub inbox_wake: Notify,
}

impl PeerMesh {
    /// Binds the listener and starts accepting and dialling. Must run inside a glommio
    /// executor; the tasks live as long as the returned mesh is referenced by them.
    pub fn start(cfg: MeshConfig) -> std::io::Result<Rc<PeerMesh>> {
        let listener = crate::runtime::reuseaddr_listener(cfg.listen, 64)?;
        let peers = cfg.peers.iter().copied().collect();
        let mesh = Rc::new(PeerMesh {
            cfg,
            state: RefCell::new(State {
                links: HashMap::new(),
                peers,
                dialling: HashSet::new(),
                next_generation: 0,
                handshakes: 0,
            }),
            inbox: RefCell::new(VecDeque::new()),
            inbox_wake: Notify::default(),
        });
        {
            let mesh = mesh.clone();
            glommio::spawn_local(async move { mesh.accept_loop(listener).await }).detach();
        }
        let ids: Vec<ServerId> = mesh.cfg.peers.iter().map(|(id, _)| *id).collect();
        for id in ids {
            mesh.start_dialling(id);
        }
        Ok(mesh)
    }

    /// Replaces the members after a reconfig: a new member with a lower id is dialled, a
    /// removed one is no longer dialled (its live connection stays until it ends: a
    /// removed server may go on learning as a non-member).
    pub fn set_peers(self: &Rc<Self>, peers: &[(ServerId, SocketAddr)]) {
        let mut added = Vec::new();
        {
            let mut state = self.state.borrow_mut();
            for &(id, addr) in peers {
                if id != self.cfg.my_id && state.peers.get(&id) != Some(&addr) {
                    added.push((id, addr));
                }
            }
            state.peers = peers
                .iter()
                .copied()
                .filter(|(id, _)| *id != self.cfg.my_id)
                .collect();
        }
        for (id, addr) in added {
            tracing::info!(peer = id, %addr, "new member");
            self.start_dialling(id);
        }
    }

    /// Starts the dial loop of `id` if we are the one to dial it and none runs yet.
    fn start_dialling(self: &Rc<Self>, id: ServerId) {
        if id >= self.cfg.my_id || !self.state.borrow_mut().dialling.insert(id) {
            return;
        }
        let mesh = self.clone();
        glommio::spawn_local(async move { mesh.dial_loop(id).await }).detach();
    }

    /// Queues `msg` for `to`. False if there is no connection to `to` (dropped).
    ///
    /// A link is an ordered stream: a peer that misses one message and gets the next would
    /// see a gap (a follower acking past a proposal it never logged). So a message that
    /// cannot be queued (the peer stopped reading: see [`OUTBOX_BYTES_MAX`]; or the message
    /// is over the frame limit) closes the connection as well; the peer comes back through
    /// a fresh sync.
    pub fn send(&self, to: ServerId, msg: &Message) -> bool {
        let refused = {
            let mut state = self.state.borrow_mut();
            let Some(link) = state.links.get_mut(&to) else {
                return false;
            };
            let queued_bytes = link.outbox.len();
            if queued_bytes == 0 {
                link.progress_at = Instant::now();
            }
            // A message queued behind nothing restarts the clock (the writer takes it at
            // once); past the soft bound the clock says whether the peer still reads.
            if queued_bytes > OUTBOX_BYTES_HARD_MAX
                || (queued_bytes > OUTBOX_BYTES_MAX && link.progress_at.elapsed() > OUTBOX_STALL)
            {
                tracing::warn!(
                    peer = to,
                    queued_bytes,
                    no_progress_ms = link.progress_at.elapsed().as_millis() as u64,
                    "peer is not reading; closing its connection"
                );
                true
            } else if let Err(e) = wire::encode(msg, self.cfg.payload_bytes_max, &mut link.outbox) {
                tracing::error!(peer = to, error = %e, "message not sent; closing the connection");
                true
            } else {
                link.wake.notify();
                false
            }
        };
        if refused {
            self.disconnect(to);
        }
        !refused
    }

    /// The largest message payload a link carries (`jute.maxbuffer` or a log record, with
    /// room for the message's fields).
    pub fn payload_bytes_max(&self) -> u32 {
        self.cfg.payload_bytes_max
    }

    /// Bytes queued for `peer` and not yet written to its socket (0 with no connection).
    pub fn queued_bytes(&self, peer: ServerId) -> usize {
        self.state
            .borrow()
            .links
            .get(&peer)
            .map_or(0, |l| l.outbox.len())
    }

    /// Whether nothing is queued for `peer` (or there is no connection to it).
    pub fn outbox_is_empty(&self, peer: ServerId) -> bool {
        self.state
            .borrow()
            .links
            .get(&peer)
            .is_none_or(|l| l.outbox.is_empty())
    }

    /// Closes the connection to `peer` (its tasks end; a [`MeshEvent::Down`] follows at once).
    /// The dialling side calls again after its backoff.
    pub fn disconnect(&self, peer: ServerId) {
        let removed = self.state.borrow_mut().links.remove(&peer);
        if let Some(link) = removed {
            link.wake.notify();
            self.push_event(MeshEvent::Down { peer });
        }
    }

    /// Closes every connection (a role ended: the next one starts from fresh connections).
    pub fn disconnect_all(&self) {
        for peer in self.connected() {
            self.disconnect(peer);
        }
    }

    fn push_event(&self, event: MeshEvent) {
        self.inbox.borrow_mut().push_back(event);
        self.inbox_wake.notify();
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
        self.cfg.accept_strangers || self.state.borrow().peers.contains_key(&id)
    }

    async fn accept_loop(self: Rc<Self>, listener: TcpListener) {
        loop {
            match listener.accept().await {
                Ok(stream) => {
                    if self.state.borrow().handshakes >= HANDSHAKES_MAX {
                        let from = stream
                            .peer_addr()
                            .map(|a| a.to_string())
                            .unwrap_or_default();
                        tracing::warn!(
                            %from,
                            "too many quorum connections without a hello; refused"
                        );
                        continue;
                    }
                    let mesh = self.clone();
                    glommio::spawn_local(async move {
                        let from = stream
                            .peer_addr()
                            .map(|a| a.to_string())
                            .unwrap_or_default();
                        if let Err(reason) = mesh.serve(stream, None).await {
                            // Who it was is known only once its hello checked out.
                            tracing::info!(%from, %reason, "quorum connection closed");
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

    async fn dial_loop(self: Rc<Self>, id: ServerId) {
        let mut backoff = DIAL_BACKOFF_MIN;
        loop {
            // The address of the moment: a reconfig may move the peer, or remove it.
            let addr = {
                let mut state = self.state.borrow_mut();
                match state.peers.get(&id) {
                    Some(addr) => *addr,
                    None => {
                        state.dialling.remove(&id);
                        return;
                    }
                }
            };
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    backoff = DIAL_BACKOFF_MIN;
                    if let Err(reason) = self.clone().serve(stream, Some((id, addr))).await {
                        tracing::info!(peer = id, %reason, "quorum connection closed");
                    }
                }
                Err(e) => tracing::debug!(peer = id, error = %e, "dial failed"),
            }
            glommio::timer::sleep(backoff).await;
            backoff = (backoff * 2).min(DIAL_BACKOFF_MAX);
        }
    }

    /// Runs one connection to its end. `dialled` is the peer we called and where (None: it
    /// called us).
    ///
    /// The caller speaks first; the one called answers with its own hello only after the
    /// caller's checked out, so a stranger learns nothing about the cluster. With TLS, the
    /// TLS handshake (certificates checked both ways) comes before the hellos.
    async fn serve(
        self: Rc<Self>,
        stream: TcpStream,
        dialled: Option<(ServerId, SocketAddr)>,
    ) -> Result<(), String> {
        let _ = stream.set_nodelay(true);
        self.state.borrow_mut().handshakes += 1;
        let hello = async {
            let mut stream = match &self.cfg.tls {
                Some(tls) => tls.wrap(stream, dialled.map(|(_, addr)| addr)).await?,
                None => PeerStream::Plain(stream),
            };
            let peer = self
                .handshake(&mut stream, dialled.map(|(id, _)| id))
                .await?;
            Ok::<_, String>((stream, peer))
        }
        .await;
        self.state.borrow_mut().handshakes -= 1;
        let (stream, peer) = hello?;
        let wake = Rc::new(Notify::default());
        let generation = {
            let mut state = self.state.borrow_mut();
            state.next_generation += 1;
            let generation = state.next_generation;
            // A newer connection replaces an older one (the peer restarted): wake the old
            // one's writer so it sees it was replaced and ends.
            let old = state.links.insert(
                peer,
                Link {
                    outbox: BytesMut::new(),
                    progress_at: Instant::now(),
                    wake: wake.clone(),
                    generation,
                },
            );
            if let Some(old) = old {
                old.wake.notify();
                // Before anything the new connection delivers: the owner sees the old link
                // end, then the new one's messages.
                self.inbox.borrow_mut().push_back(MeshEvent::Down { peer });
            }
            generation
        };
        self.push_event(MeshEvent::Up { peer });
        tracing::info!(peer, "quorum connection up");
        // Reading and writing run side by side, so two servers sending each other more
        // than the socket buffers hold never wait on each other.
        let (mut reader, mut writer) = futures_lite::io::split(stream);
        let mut decoder = Decoder::new(self.cfg.payload_bytes_max);
        let result = futures_lite::future::or(
            self.write_loop(peer, generation, &wake, &mut writer),
            self.read_loop(peer, generation, &mut reader, &mut decoder),
        )
        .await;
        let ours = {
            let mut state = self.state.borrow_mut();
            let ours = state
                .links
                .get(&peer)
                .is_some_and(|l| l.generation == generation);
            if ours {
                state.links.remove(&peer);
            }
            ours
        };
        if ours {
            self.push_event(MeshEvent::Down { peer });
        }
        result
    }

    /// Exchanges hellos; the peer's id once it is accepted.
    async fn handshake(
        &self,
        stream: &mut PeerStream,
        dialled: Option<ServerId>,
    ) -> Result<ServerId, String> {
        let mut ours = BytesMut::new();
        wire::encode(&self.hello(), HELLO_PAYLOAD_BYTES_MAX, &mut ours)
            .map_err(|e| e.to_string())?;
        if dialled.is_some() {
            stream
                .write_all(&ours)
                .await
                .map_err(|e| format!("sending hello: {e}"))?;
        }
        let first =
            futures_lite::future::or(async { Some(read_hello_frame(stream).await) }, async {
                glommio::timer::sleep(HELLO_TIMEOUT).await;
                None
            })
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
                Err(format!("dialled server {expected}, server {peer} answered"))
            }
            // A lower id must not dial us: we dial it. Keeping only our own dial means one
            // connection per pair.
            None if peer < self.cfg.my_id => Err(format!("server {peer} dialled a higher id")),
            Some(_) => Ok(peer),
            None => {
                stream
                    .write_all(&ours)
                    .await
                    .map_err(|e| format!("answering hello: {e}"))?;
                Ok(peer)
            }
        }
    }

    /// Sends what is queued for `peer` until the connection fails or is replaced.
    async fn write_loop(
        &self,
        peer: ServerId,
        generation: u64,
        wake: &Rc<Notify>,
        writer: &mut futures_lite::io::WriteHalf<PeerStream>,
    ) -> Result<(), String> {
        // Two buffers take turns: the outbox fills while the other is written, then they
        // swap, so steady traffic allocates nothing (an outbox split off and grown anew each
        // turn was ~5 % of a loaded leader's CPU in malloc and realloc).
        let mut pending = BytesMut::new();
        loop {
            {
                let mut state = self.state.borrow_mut();
                match state.links.get_mut(&peer) {
                    Some(l) if l.generation == generation => {
                        std::mem::swap(&mut l.outbox, &mut pending)
                    }
                    _ => return Err("replaced by a newer connection".into()),
                }
            }
            if pending.is_empty() {
                wake.wait().await;
                continue;
            }
            // In slices, noting after each that the peer reads: a big buffer (a sync, a
            // burst) may take seconds to a reading peer, and is no sign of a stall.
            for slice in pending.chunks(WRITE_SLICE_BYTES) {
                writer
                    .write_all(slice)
                    .await
                    .map_err(|e| format!("sending: {e}"))?;
                if let Some(l) = self.state.borrow_mut().links.get_mut(&peer) {
                    if l.generation == generation {
                        l.progress_at = Instant::now();
                    }
                }
            }
            pending.clear();
            if pending.capacity() > OUTBOX_KEPT_BYTES_MAX {
                pending = BytesMut::new();
            }
        }
    }

    /// Decodes frames from `peer` into the inbox until the connection fails.
    async fn read_loop(
        &self,
        peer: ServerId,
        generation: u64,
        reader: &mut futures_lite::io::ReadHalf<PeerStream>,
        decoder: &mut Decoder,
    ) -> Result<(), String> {
        let mut buf = vec![0u8; 64 << 10];
        loop {
            let n = reader
                .read(&mut buf)
                .await
                .map_err(|e| format!("reading: {e}"))?;
            if n == 0 {
                return Err("peer closed the connection".into());
            }
            let current = self
                .state
                .borrow()
                .links
                .get(&peer)
                .is_some_and(|l| l.generation == generation);
            if !current {
                return Err("replaced by a newer connection".into());
            }
            decoder.feed(&buf[..n]);
            loop {
                match decoder.next_frame() {
                    Ok(Some(msg)) => self.push_event(MeshEvent::Message { from: peer, msg }),
                    Ok(None) => break,
                    Err(e) => return Err(format!("bad frame from server {peer}: {e}")),
                }
            }
        }
    }
}

/// Reads exactly one frame (header, then the length it announces, at most
/// [`HELLO_PAYLOAD_BYTES_MAX`]) and decodes it: nothing after it is consumed, so the
/// connection's own decoder starts at the next frame.
async fn read_hello_frame(stream: &mut PeerStream) -> Result<Message, String> {
    let mut frame = vec![0u8; wire::HEADER_BYTES];
    stream
        .read_exact(&mut frame)
        .await
        .map_err(|e| format!("reading a hello: {e}"))?;
    let len = u32::from_be_bytes([frame[8], frame[9], frame[10], frame[11]]);
    if len > HELLO_PAYLOAD_BYTES_MAX {
        return Err(format!("a {len}-byte first frame is no hello"));
    }
    frame.resize(wire::HEADER_BYTES + len as usize, 0);
    stream
        .read_exact(&mut frame[wire::HEADER_BYTES..])
        .await
        .map_err(|e| format!("reading a hello: {e}"))?;
    let mut decoder = Decoder::new(HELLO_PAYLOAD_BYTES_MAX);
    decoder.feed(&frame);
    match decoder.next_frame() {
        Ok(Some(msg)) => Ok(msg),
        Ok(None) => Err("incomplete hello".into()),
        Err(e) => Err(format!("bad frame: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quorum::wire::{Notification, PeerState};
    use std::io::{Read, Write};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;

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
            config: bytes::Bytes::new(),
        })
    }

    /// Servers 1..=n, each on a free loopback port.
    fn loopback_addrs(n: u64) -> Vec<(ServerId, SocketAddr)> {
        (1..=n)
            .map(|id| (id, SocketAddr::from(([127, 0, 0, 1], free_port()))))
            .collect()
    }

    /// Server `id`'s mesh (started on the calling executor), the rest of `addrs` its peers.
    fn start_mesh(id: ServerId, addrs: &[(ServerId, SocketAddr)]) -> Rc<PeerMesh> {
        let listen = addrs.iter().find(|(p, _)| *p == id).map(|(_, a)| *a);
        PeerMesh::start(MeshConfig {
            my_id: id,
            cluster_id: 7,
            listen: listen.expect("own address"),
            peers: addrs.iter().copied().filter(|(p, _)| *p != id).collect(),
            payload_bytes_max: wire::PAYLOAD_BYTES_MAX_DEFAULT,
            accept_strangers: false,
            tls: None,
        })
        .expect("bind")
    }

    /// Until `mesh` has a link to `peer` (or `deadline` passes).
    async fn wait_for_link(mesh: &PeerMesh, peer: ServerId, deadline: std::time::Instant) {
        while !mesh.connected().contains(&peer) && std::time::Instant::now() < deadline {
            glommio::timer::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Runs a mesh node for `id` on its own executor until it has received `want` messages
    /// from every peer (or the deadline passes); sends one notification per round to every
    /// peer meanwhile.
    fn node(
        id: ServerId,
        addrs: Vec<(ServerId, SocketAddr)>,
        want: usize,
        done: Arc<AtomicUsize>,
        parties: usize,
    ) -> std::thread::JoinHandle<Vec<(ServerId, Message)>> {
        std::thread::spawn(move || {
            crate::runtime::spawn_unpinned("mesh-test", move || async move {
                let mesh = start_mesh(id, &addrs);
                let peers: Vec<_> = addrs.into_iter().filter(|(p, _)| *p != id).collect();
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
                    got.extend(mesh.inbox.borrow_mut().drain(..).filter_map(|e| match e {
                        MeshEvent::Message { from, msg } => Some((from, msg)),
                        MeshEvent::Down { .. } | MeshEvent::Up { .. } => None,
                    }));
                }
                // Keep answering (and listening) until every party is done: each node once
                // it heard enough, plus whatever else the test counts in (or the deadline).
                done.fetch_add(1, Ordering::SeqCst);
                while done.load(Ordering::SeqCst) < parties && std::time::Instant::now() < deadline
                {
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

    /// Two servers, 1 and 2: server `i + 1` queues `sends[i]` proposals of 64 KiB for the
    /// other in one go, then reads until it has all the other sent (or 30 s pass). Returns
    /// per server (proposals received, links that went down).
    fn exchange(sends: [usize; 2]) -> Vec<(usize, usize)> {
        let addrs = loopback_addrs(2);
        let done = Arc::new(AtomicUsize::new(0));
        let handles: Vec<_> = (1..=2u64)
            .map(|id| {
                let addrs = addrs.clone();
                let done = done.clone();
                let (ours, theirs) = if id == 1 {
                    (sends[0], sends[1])
                } else {
                    (sends[1], sends[0])
                };
                std::thread::spawn(move || {
                    crate::runtime::spawn_unpinned("mesh-test", move || async move {
                        let other = if id == 1 { 2 } else { 1 };
                        let mesh = start_mesh(id, &addrs);
                        let deadline = std::time::Instant::now() + Duration::from_secs(30);
                        wait_for_link(&mesh, other, deadline).await;
                        let txn = bytes::Bytes::from(vec![id as u8; 64 << 10]);
                        for zxid in 0..ours as i64 {
                            mesh.send(
                                other,
                                &Message::Proposal {
                                    zxid,
                                    txn: txn.clone(),
                                },
                            );
                        }
                        let (mut got, mut downs) = (0, 0);
                        while got < theirs && std::time::Instant::now() < deadline {
                            futures_lite::future::or(
                                mesh.inbox_wake.wait(),
                                glommio::timer::sleep(Duration::from_millis(50)),
                            )
                            .await;
                            for e in mesh.inbox.borrow_mut().drain(..) {
                                match e {
                                    MeshEvent::Message { .. } => got += 1,
                                    MeshEvent::Down { .. } => downs += 1,
                                    MeshEvent::Up { .. } => {}
                                }
                            }
                        }
                        // Stay up until the other side has read ours too.
                        done.fetch_add(1, Ordering::SeqCst);
                        while done.load(Ordering::SeqCst) < 2
                            && std::time::Instant::now() < deadline
                        {
                            glommio::timer::sleep(Duration::from_millis(10)).await;
                        }
                        for e in mesh.inbox.borrow_mut().drain(..) {
                            if let MeshEvent::Down { .. } = e {
                                downs += 1;
                            }
                        }
                        (got, downs)
                    })
                    .expect("executor")
                    .join()
                    .expect("join")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("node thread"))
            .collect()
    }

    /// Two servers each queue 16 MiB for the other before reading anything: with sending
    /// and receiving side by side, both get everything (one at a time would deadlock once
    /// the socket buffers are full).
    #[test]
    fn both_ends_sending_more_than_the_socket_holds_do_not_deadlock() {
        for (i, (got, _)) in exchange([256, 256]).into_iter().enumerate() {
            assert_eq!(got, 256, "server {} received all proposals", i + 1);
        }
    }

    /// 100 MiB queued in one go (a DIFF of large records does that) is more than
    /// OUTBOX_BYTES_MAX, but the peer reads: the link stays up and everything arrives.
    #[test]
    fn a_peer_that_reads_keeps_its_link_whatever_is_queued_for_it() {
        let results = exchange([1600, 0]);
        assert_eq!(results[1].0, 1600, "server 2 received every proposal");
        assert_eq!(results[0].1, 0, "server 1 kept its link");
        assert_eq!(results[1].1, 0, "server 2 kept its link");
    }

    /// A peer whose executor stops reading (its thread blocked) while more than
    /// OUTBOX_BYTES_MAX waits for it: once no byte went out to it for OUTBOX_STALL, the
    /// next message closes the link instead of queueing without end, and not before.
    #[test]
    fn a_peer_that_stops_reading_loses_its_link_after_the_stall_time() {
        let addrs = loopback_addrs(2);
        let peer_connected = Arc::new(AtomicBool::new(false));
        let sender_done = Arc::new(AtomicBool::new(false));
        // Server 2 connects, then blocks its executor's thread: nothing reads from server 1.
        let stalled = {
            let (addrs, peer_connected, sender_done) =
                (addrs.clone(), peer_connected.clone(), sender_done.clone());
            std::thread::spawn(move || {
                crate::runtime::spawn_unpinned("mesh-test", move || async move {
                    let mesh = start_mesh(2, &addrs);
                    let deadline = std::time::Instant::now() + Duration::from_secs(10);
                    wait_for_link(&mesh, 1, deadline).await;
                    peer_connected.store(true, Ordering::SeqCst);
                    // Until the sender is done (20 s at most), without yielding.
                    let blocked_until = std::time::Instant::now() + Duration::from_secs(20);
                    while !sender_done.load(Ordering::SeqCst)
                        && std::time::Instant::now() < blocked_until
                    {
                        std::thread::sleep(Duration::from_millis(10));
                    }
                })
                .expect("executor")
                .join()
                .expect("join")
            })
        };
        let sender_sees = peer_connected.clone();
        let sender = std::thread::spawn(move || {
            crate::runtime::spawn_unpinned("mesh-test", move || async move {
                let mesh = start_mesh(1, &addrs);
                let deadline = std::time::Instant::now() + Duration::from_secs(10);
                wait_for_link(&mesh, 2, deadline).await;
                while !sender_sees.load(Ordering::SeqCst) && std::time::Instant::now() < deadline {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                let txn = bytes::Bytes::from(vec![1u8; 64 << 10]);
                let proposal = |zxid| Message::Proposal {
                    zxid,
                    txn: txn.clone(),
                };
                // 48 MiB for the writer to take and stall on (more than the socket
                // buffers' maxima here, tcp_wmem 4 and tcp_rmem 32 MiB), then more than
                // OUTBOX_BYTES_MAX behind it.
                for zxid in 0..768 {
                    mesh.send(2, &proposal(zxid));
                }
                // Until the writer has taken them (its outbox empties as it starts writing).
                while mesh.queued_bytes(2) > 0 && std::time::Instant::now() < deadline {
                    glommio::timer::sleep(Duration::from_millis(10)).await;
                }
                let stalled_at = std::time::Instant::now();
                for zxid in 768..(768 + 1100) {
                    if !mesh.send(2, &proposal(zxid)) {
                        return (false, stalled_at.elapsed());
                    }
                }
                // One message every 100 ms until the link closes (15 s at most).
                let mut zxid = 3000;
                while stalled_at.elapsed() < Duration::from_secs(15) {
                    glommio::timer::sleep(Duration::from_millis(100)).await;
                    zxid += 1;
                    if !mesh.send(2, &proposal(zxid)) {
                        return (true, stalled_at.elapsed());
                    }
                }
                (false, stalled_at.elapsed())
            })
            .expect("executor")
            .join()
            .expect("join")
        });
        let sent = sender.join();
        sender_done.store(true, Ordering::SeqCst);
        stalled.join().expect("stalled thread");
        let (closed, after) = sent.expect("sender thread");
        assert!(
            closed,
            "the link to the peer that stopped reading was closed"
        );
        // The clock starts at the first message queued behind the buffer being written.
        assert!(
            after >= OUTBOX_STALL,
            "closed {after:?} into the stall, before {OUTBOX_STALL:?}"
        );
    }

    #[test]
    fn three_servers_exchange_messages_and_garbage_is_dropped() {
        let addrs = loopback_addrs(3);
        let a3 = addrs[2].1;
        let done = Arc::new(AtomicUsize::new(0));
        // Four parties: the three nodes and this thread's garbage check, so that server 3
        // is still listening when the stranger connects.
        let handles: Vec<_> = (1..=3)
            .map(|id| node(id, addrs.clone(), 2, done.clone(), 4))
            .collect();
        // A stranger speaking garbage to server 3 is dropped; server 3 keeps working.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        let mut closed = false;
        while std::time::Instant::now() < deadline && !closed {
            if let Ok(mut s) = std::net::TcpStream::connect(a3) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(8)));
                let _ = s.write_all(b"GET / HTTP/1.1\r\n\r\n and more garbage");
                let mut sink = Vec::new();
                // The server closes on our garbage without a word: EOF or a reset (it did
                // not read all we sent), not a hang until the read timeout.
                closed = match s.read_to_end(&mut sink) {
                    Ok(_) => sink.is_empty(),
                    Err(e) => !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                };
            } else {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        done.fetch_add(1, Ordering::SeqCst);
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
