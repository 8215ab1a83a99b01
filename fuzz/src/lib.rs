//! The bodies of Corral's fuzz targets (one `fuzz_targets/<name>.rs` per function here).
//!
//! Every target feeds bytes to the code path the server (or `corral cli`) runs on the
//! same bytes, so a seed is what that path reads in real life: a client's byte stream, a
//! quorum connection's byte stream, a zoo.cfg, log segments, a snapshot file, a zkCli
//! line. The corpora under `fuzz/corpus/<target>/` hold such files, captured from real
//! runs (`fuzz/tools/`).
//!
//! Where a checksum guards the bytes (quorum frames, log frames, snapshot bodies), a target
//! runs the input twice: as it is (the checksum must refuse mutations cleanly) and with
//! every checksum recomputed, so that mutations reach the decoders behind it. Crc32c is
//! an integrity check against torn and flipped bytes, not authentication, so the code
//! behind it must refuse malformed contents with an error too.
//!
//! Beyond "no panic", targets check round trips where the code promises them: a decoded
//! client request or quorum message re-encodes to something that decodes to the same
//! value, and every transaction the sequencer commits reads back from its log encoding.

use std::path::PathBuf;

/// How to cut `data` into reads, to exercise the incremental paths (a frame arriving a
/// few bytes at a time): from the last byte, so that the whole input is still the byte
/// stream and a captured stream is a seed as it is. Even: all at once (the common case
/// on a socket); odd: reads of `b / 2 + 1` bytes.
fn chunking(data: &[u8]) -> usize {
    match data.last() {
        Some(&b) if b % 2 == 1 => usize::from(b / 2) + 1,
        _ => data.len().max(1),
    }
}

pub mod client {
    //! A client connection's bytes, as a shard reads them: frames split by length
    //! (`jute.maxbuffer`), the handshake or a four-letter word first, then request headers
    //! and bodies of every op code; the write requests then go through the sequencer
    //! (validation into transactions, zxid order, apply) and a replica applies the
    //! committed stream, as the shards do.

    use super::chunking;
    use bytes::{Bytes, BytesMut};
    use corral::jute::frame::{split_frame, FrameStatus};
    use corral::jute::{Reader, Record};
    use corral::proto::{ConnectRequest, Id, Request, RequestHeader};
    use corral::tree::DataTree;
    use corral::zab::{Action, Input, Origin, ReplyTo, Sequencer, SequencerConfig};
    use std::sync::Arc;

    const ORIGIN: Origin = Origin { shard: 0, conn: 1 };

    /// The server side of one connection.
    struct Server {
        seq: Sequencer,
        replica: DataTree,
        session_id: i64,
        auth_ids: Vec<Id>,
        now_ms: i64,
    }

    impl Server {
        fn new(extended: bool) -> Server {
            let cfg = SequencerConfig {
                server_id: 1,
                tick_ms: 2000,
                prep: corral::zab::prep::PrepConfig {
                    extended_types_enabled: extended,
                    skip_acl: false,
                    enforce_quota: extended,
                    reconfig_enabled: false,
                },
                container_check_interval_ms: 1000,
                container_max_per_minute: 10_000,
                container_max_never_used_interval_ms: 0,
                txn_bytes_max: corral::storage::txn_log::RECORD_BYTES_MAX,
            };
            let tree = DataTree::new(Bytes::new());
            Server {
                seq: Sequencer::new(cfg, tree, 1_000),
                replica: DataTree::new(Bytes::new()),
                session_id: 0,
                auth_ids: Vec::new(),
                now_ms: 1_000,
            }
        }

        /// Delivers what the sequencer committed to the replica, checking each record's
        /// log encoding on the way.
        fn drain(&mut self) {
            let mut triggers = Vec::new();
            while let Some(action) = self.seq.poll_action() {
                let Action::Deliver(batch) = action else {
                    continue;
                };
                for committed in batch.iter() {
                    let Some(rec) = &committed.rec else { continue };
                    if let corral::tree::Txn::CreateSession { .. } = rec.txn {
                        if self.session_id == 0 {
                            self.session_id = rec.session_id;
                        }
                    }
                    let mut payload = Vec::new();
                    corral::storage::record::encode(rec, &mut payload);
                    match corral::storage::record::decode(&payload) {
                        Ok(back) => assert_eq!(&back, rec, "a logged txn reads back as written"),
                        Err(e) => panic!("a committed txn does not read back: {e} ({rec:?})"),
                    }
                    triggers.clear();
                    self.replica.apply(rec, &mut triggers);
                }
            }
        }

        fn handshake(&mut self, req: &ConnectRequest) {
            let timeout_ms = req.timeout_ms.clamp(4_000, 40_000);
            self.seq.handle(
                self.now_ms,
                Input::CreateSession {
                    origin: ORIGIN,
                    timeout_ms,
                    can_be_read_only: req.read_only == Some(true),
                },
            );
            self.drain();
        }

        fn request(&mut self, xid: i32, req: Request) {
            // Time moves on a little with every request; now and then far enough for TTL
            // nodes, containers and (rarely) the session itself to expire.
            self.now_ms += i64::from(xid.rem_euclid(4) == 3) * 3_000 + 1;
            self.seq.handle(
                self.now_ms,
                Input::Touch {
                    sessions: vec![self.session_id],
                },
            );
            match req {
                // As the shard does: digest adds an id, anything else fails the auth.
                Request::Auth(a) if &*a.scheme == "digest" => {
                    if let Ok(text) = std::str::from_utf8(&a.auth) {
                        let id = Id::new("digest", &corral::proto::acl::digest_id(text));
                        if !self.auth_ids.contains(&id) {
                            self.auth_ids.push(id);
                        }
                    }
                }
                Request::Auth(_) => {}
                Request::Sync(path) => self.seq.handle(
                    self.now_ms,
                    Input::Sync {
                        reply_to: ReplyTo {
                            origin: ORIGIN,
                            xid,
                            op: corral::proto::op::SYNC,
                        },
                        path,
                    },
                ),
                req if req.is_write() => {
                    let op = req.op();
                    self.seq.handle(
                        self.now_ms,
                        Input::Write {
                            reply_to: ReplyTo {
                                origin: ORIGIN,
                                xid,
                                op,
                            },
                            session_id: self.session_id,
                            auth_ids: Arc::from(self.auth_ids.clone()),
                            req,
                        },
                    );
                }
                _ => {}
            }
            self.seq.handle(self.now_ms, Input::Tick);
            self.drain();
        }

        fn finish(&mut self) {
            self.drain();
            let (a, b) = (self.seq.tree(), &self.replica);
            assert_eq!(
                a.last_zxid(),
                b.last_zxid(),
                "replica at the sequencer's zxid"
            );
            assert_eq!(
                a.node_count(),
                b.node_count(),
                "replica holds the same nodes"
            );
        }
    }

    /// Re-encodes a decoded request and decodes it again: the same request must come back.
    fn round_trip(req: &Request) {
        let mut body = BytesMut::new();
        req.encode(&mut body);
        match Request::decode(req.op(), body.freeze()) {
            Ok(Some(back)) => assert_eq!(&back, req, "request round trip"),
            other => panic!("re-encoded {req:?} decodes as {other:?}"),
        }
    }

    pub fn run(data: &[u8]) {
        let chunk = chunking(data);
        // Extended types (TTL nodes) and quota enforcement on for some inputs.
        let extended = data.last().is_some_and(|b| b % 4 >= 2);
        let max_frame_bytes = corral::config::JUTE_MAX_BUFFER_BYTES_DEFAULT as usize;
        let mut server = Server::new(extended);
        let mut input = BytesMut::new();
        let mut connected = false;
        for piece in data.chunks(chunk) {
            input.extend_from_slice(piece);
            loop {
                if !connected && input.len() >= 4 {
                    if let Some(word) = corral::server::fourlw::recognize(&input[..4]) {
                        // A four-letter word is the whole conversation.
                        assert_eq!(word.len(), if word == "telnet-close" { 12 } else { 4 });
                        return;
                    }
                }
                let frame = match split_frame(&mut input, max_frame_bytes) {
                    FrameStatus::Frame(f) => f,
                    FrameStatus::Incomplete { needed_bytes } => {
                        assert!(needed_bytes > 0, "an incomplete frame needs bytes");
                        break;
                    }
                    // The connection is closed with a log line.
                    FrameStatus::BadLength { len } => {
                        assert!(len < 0 || len as usize > max_frame_bytes);
                        return server.finish();
                    }
                };
                if !connected {
                    let Ok(req) = ConnectRequest::decode_all(frame) else {
                        return server.finish();
                    };
                    let mut out = BytesMut::new();
                    req.encode(&mut out);
                    assert_eq!(ConnectRequest::decode_all(out.freeze()).as_ref(), Ok(&req));
                    server.handshake(&req);
                    connected = true;
                    continue;
                }
                let mut r = Reader::new(frame.clone());
                let Ok(hdr) = RequestHeader::decode(&mut r) else {
                    return server.finish();
                };
                let body = frame.slice(r.offset()..);
                match Request::decode(hdr.op, body) {
                    Ok(Some(req)) => {
                        round_trip(&req);
                        let _ = (req.op(), req.is_write(), corral::proto::op::name(hdr.op));
                        server.request(hdr.xid, req);
                    }
                    // Unimplemented, then the connection is closed.
                    Ok(None) => return server.finish(),
                    // MarshallingError; the connection stays.
                    Err(e) => {
                        let _ = e.to_string();
                    }
                }
            }
        }
        server.finish();
    }
}

pub mod quorum {
    //! A quorum connection's bytes through the incremental [`Decoder`], as the peer mesh
    //! reads them; proposals' txns through the log record decoder, as a learner logs them.

    use super::chunking;
    use bytes::BytesMut;
    use corral::quorum::wire::{self, Decoder, Message, HEADER_BYTES, PAYLOAD_BYTES_MAX_DEFAULT};

    /// Recomputes the crc32c of every frame whose header is readable, so that mutated
    /// headers and payloads reach the payload decoders.
    pub fn reseal(data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        let mut at = 0;
        while at + HEADER_BYTES <= out.len() {
            let len =
                u32::from_be_bytes([out[at + 8], out[at + 9], out[at + 10], out[at + 11]]) as usize;
            let end = (at + HEADER_BYTES + len).min(out.len());
            let crc = crc32c::crc32c_append(
                crc32c::crc32c(&out[at..at + 12]),
                &out[at + HEADER_BYTES..end],
            );
            out[at + 12..at + 16].copy_from_slice(&crc.to_be_bytes());
            at = end;
        }
        out
    }

    fn decode_stream(data: &[u8], chunk: usize, limit: u32) {
        let mut d = Decoder::new(limit);
        for piece in data.chunks(chunk.max(1)) {
            d.feed(piece);
            loop {
                match d.next_frame() {
                    Ok(Some(msg)) => check(&msg, limit),
                    Ok(None) => break,
                    Err(e) => {
                        // Final: the same error on every later call, nothing buffered.
                        let _ = e.to_string();
                        assert_eq!(d.next_frame(), Err(e));
                        assert_eq!(d.buffered_bytes(), 0);
                        return;
                    }
                }
            }
            assert!(d.buffered_bytes() <= HEADER_BYTES + limit as usize);
        }
    }

    /// A decoded message re-encodes to a frame that decodes to the same message; the txn
    /// of a proposal goes through the record decoder as a learner's log does.
    fn check(msg: &Message, limit: u32) {
        let mut out = BytesMut::new();
        match wire::encode(msg, limit, &mut out) {
            Ok(()) => {
                let mut d = Decoder::new(limit);
                d.feed(&out);
                assert_eq!(
                    d.next_frame().as_ref(),
                    Ok(&Some(msg.clone())),
                    "round trip"
                );
                assert_eq!(d.buffered_bytes(), 0);
            }
            Err(e) => panic!("a decoded {:?} does not re-encode: {e}", msg.kind()),
        }
        if let Message::Proposal { txn, .. } | Message::Inform { txn, .. } = msg {
            if let Ok(rec) = corral::storage::record::decode(txn) {
                let mut again = Vec::new();
                corral::storage::record::encode(&rec, &mut again);
                assert_eq!(corral::storage::record::decode(&again).as_ref(), Ok(&rec));
            }
        }
    }

    pub fn run(data: &[u8]) {
        let chunk = chunking(data);
        // A small limit now and then, to reach the length checks with short inputs.
        let limit = if data.last().is_some_and(|b| b % 16 == 15) {
            64
        } else {
            PAYLOAD_BYTES_MAX_DEFAULT
        };
        decode_stream(data, chunk, limit);
        decode_stream(&reseal(data), chunk, limit);
    }
}

pub mod config {
    //! A zoo.cfg through `Config::load`, with the files it may lead to (a `corral.profile`,
    //! a `dynamicConfigFile`, `<dataDir>/myid`) taken from the same input.

    use std::path::Path;

    /// Input layout: the zoo.cfg, then optionally after NUL bytes a profile, a dynamic
    /// file and a myid file (written as `profile.cfg`, `zoo.cfg.dynamic`, `data/myid`
    /// beside it). Real configs contain no NUL, so any zoo.cfg is a seed as it is.
    pub fn run(data: &[u8], dir: &Path) {
        let mut parts = data.splitn(4, |&b| b == 0);
        let cfg = parts.next().unwrap_or_default();
        // Values naming device or kernel files could block (a FIFO, a terminal) or read
        // this machine's state: not what this target is about.
        let text = String::from_utf8_lossy(cfg);
        if ["/dev", "/proc", "/sys", "/run", ".."]
            .iter()
            .any(|bad| text.contains(bad))
        {
            return;
        }
        let names = ["profile.cfg", "zoo.cfg.dynamic", "data/myid"];
        for name in names {
            let _ = std::fs::remove_file(dir.join(name));
        }
        for (name, bytes) in names.iter().zip(parts) {
            if std::fs::write(dir.join(name), bytes).is_err() {
                return;
            }
        }
        let path = dir.join("zoo.cfg");
        if std::fs::write(&path, cfg).is_err() {
            return;
        }
        // Relative paths (dataDir=data, corral.profile=profile.cfg) resolve beside it.
        match corral::config::Config::load(&path) {
            Ok(c) => {
                let m = c.membership();
                let _ = corral::config::render_membership(&m);
                let _ = c.conf_lines(0, 0, &m);
                let _ = c.config_node_data();
                let _ = c.client_endpoint();
            }
            Err(e) => {
                let _ = e.to_string();
            }
        }
    }
}

/// A scratch directory for this fuzzing process, under `target/scratch` of the package
/// that compiles this file (`fuzz/` for the fuzz targets, the repository root for
/// `tests/fuzz_corpus.rs`; ignored by git, a few KiB: the files in it are rewritten by
/// every run of the target).
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join("scratch")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::create_dir_all(dir.join("data"));
    dir
}

pub mod storage {
    //! Startup recovery (`storage::open_in`) on a simulated disk holding the input's
    //! files: the snapshot is validated and rebuilt into a tree, the log segments are
    //! scanned, a torn tail repaired, and the records replayed into the tree.

    use bytes::Bytes;
    use corral::storage::fs::Fs;
    use corral::storage::sim::SimDisk;
    use corral::storage::snapshot::{encode_header, ArchivedSnapshotBody, SNAPSHOT_HEADER_BYTES};
    use corral::storage::txn_log::{
        self, FRAME_HEADER_BYTES, RECORD_BYTES_MAX, SEGMENT_HEADER_BYTES, SEGMENT_MAGIC,
    };
    use corral::storage::{OpenOptions, Recovered};
    use std::path::Path;

    const DATA_DIR: &str = "/data";
    const LOG_DIR: &str = "/log";

    fn version_dir(dir: &str) -> std::path::PathBuf {
        corral::storage::version_dir(Path::new(dir))
    }

    /// Runs recovery twice on the same disk: the second run must find what the first one
    /// left (a repaired torn tail reads as a clean end) and recover the same state.
    fn open_twice(mut disk: SimDisk, replay_log: bool) {
        let mut opts = OpenOptions::new(Bytes::new());
        opts.replay_log = replay_log;
        let first =
            corral::storage::open_in(&mut disk, Path::new(DATA_DIR), Path::new(LOG_DIR), &opts);
        let Ok(first) = first else {
            if let Err(e) = first {
                let _ = e.to_string();
            }
            return;
        };
        let second =
            corral::storage::open_in(&mut disk, Path::new(DATA_DIR), Path::new(LOG_DIR), &opts);
        match second {
            Ok(second) => same_state(&first, &second),
            Err(e) => panic!("recovery refuses what it recovered a moment ago: {e}"),
        }
    }

    fn same_state(a: &Recovered, b: &Recovered) {
        assert_eq!(a.last_zxid, b.last_zxid);
        assert_eq!(a.last_logged_zxid, b.last_logged_zxid);
        assert_eq!(a.tree.node_count(), b.tree.node_count());
        assert_eq!(a.sessions, b.sessions);
    }

    /// Recomputes a segment's header crc and the crc of every frame whose length is in
    /// range, so that mutated records reach the record decoder and the replay.
    fn reseal_segment(seg: &mut [u8]) {
        if seg.len() < SEGMENT_HEADER_BYTES {
            return;
        }
        let crc = crc32c::crc32c(&seg[0..28]);
        seg[28..32].copy_from_slice(&crc.to_le_bytes());
        let mut at = SEGMENT_HEADER_BYTES;
        while at + FRAME_HEADER_BYTES <= seg.len() {
            let len_bytes = [seg[at], seg[at + 1], seg[at + 2], seg[at + 3]];
            let len = u32::from_le_bytes(len_bytes) as usize;
            if len == 0 || len > RECORD_BYTES_MAX {
                break;
            }
            let end = at + FRAME_HEADER_BYTES + len;
            if end > seg.len() {
                break;
            }
            let crc = txn_log::frame_crc(len_bytes, &seg[at + FRAME_HEADER_BYTES..end]);
            seg[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            at = end;
        }
    }

    /// The input cut at each segment magic: one file per segment, named after the zxid
    /// its header holds (or, when unreadable, after its place in the input).
    fn segments(data: &[u8]) -> Vec<Vec<u8>> {
        let mut starts: Vec<usize> = data
            .windows(SEGMENT_MAGIC.len())
            .enumerate()
            .filter(|(_, w)| *w == SEGMENT_MAGIC)
            .map(|(i, _)| i)
            .collect();
        if starts.first() != Some(&0) {
            starts.insert(0, 0);
        }
        let mut out = Vec::new();
        for (i, &s) in starts.iter().enumerate() {
            let e = starts.get(i + 1).copied().unwrap_or(data.len());
            out.push(data[s..e].to_vec());
        }
        out.truncate(8);
        out
    }

    fn log_disk(segs: &[Vec<u8>]) -> SimDisk {
        let mut disk = SimDisk::new();
        let dir = version_dir(LOG_DIR);
        let _ = disk.create_dir_all(&dir);
        let _ = disk.create_dir_all(&version_dir(DATA_DIR));
        for (i, seg) in segs.iter().enumerate() {
            let zxid = txn_log::decode_segment_header(seg).unwrap_or(i as i64);
            let _ = disk.write_new_synced(&txn_log::segment_path(&dir, zxid), seg);
        }
        // An unfinished segment creation is removed by recovery.
        let _ = disk.write_new_synced(&dir.join("log.ff.tmp"), b"");
        disk
    }

    /// Log recovery: the input is one or more segment files, back to back.
    pub fn run_log(data: &[u8]) {
        let Some((&mode, data)) = data.split_first() else {
            return;
        };
        let replay = mode & 1 == 0;
        let raw = segments(data);
        open_twice(log_disk(&raw), replay);
        let mut sealed = raw;
        for seg in &mut sealed {
            reseal_segment(seg);
        }
        open_twice(log_disk(&sealed), replay);
    }

    /// Rewrites a snapshot file's header so that it agrees with its body: length, body
    /// crc, header crc, and the zxid the archive holds (when it validates), so that a
    /// mutated body reaches the archive validation and the tree rebuild.
    fn reseal_snapshot(file: &[u8]) -> Option<(i64, Vec<u8>)> {
        let body = file.get(SNAPSHOT_HEADER_BYTES..)?;
        let mut aligned = rkyv::util::AlignedVec::<16>::new();
        aligned.extend_from_slice(body);
        let zxid = rkyv::access::<ArchivedSnapshotBody, rkyv::rancor::Error>(&aligned)
            .map(|a| a.zxid.to_native())
            .unwrap_or_else(|_| i64::from_le_bytes(file[16..24].try_into().unwrap_or([0; 8])));
        let mut out = encode_header(zxid, body).to_vec();
        out.extend_from_slice(body);
        Some((zxid, out))
    }

    fn snapshot_disk(zxid: i64, file: &[u8]) -> SimDisk {
        let mut disk = SimDisk::new();
        let snap_dir = version_dir(DATA_DIR);
        let _ = disk.create_dir_all(&snap_dir);
        let _ = disk.create_dir_all(&version_dir(LOG_DIR));
        let name = corral::storage::snapshot::snapshot_path(&snap_dir, zxid);
        let _ = disk.write_new_synced(&name, file);
        disk
    }

    /// Snapshot load: the input is one snapshot file.
    pub fn run_snapshot(data: &[u8]) {
        let zxid = corral::storage::snapshot::file_zxid(data).unwrap_or(0);
        open_twice(snapshot_disk(zxid, data), true);
        if let Some((zxid, sealed)) = reseal_snapshot(data) {
            open_twice(snapshot_disk(zxid, &sealed), true);
        }
    }
}

pub mod cli {
    //! A zkCli line through `corral cli`'s parsers: the word splitter, the invocation
    //! options, each command's options, and the ACL, integer and path parsers the
    //! commands run on their arguments before calling the server.

    pub fn run(data: &[u8]) {
        let line = String::from_utf8_lossy(data);
        corral::cli::zkcli::fuzz_api::parse_line(&line);
    }
}
