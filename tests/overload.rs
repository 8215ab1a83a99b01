//! Overload and slow clients (docs/reliability.md, "Overload and slow clients"), against
//! real server processes: 10 000 sessions on one server, `maxClientCnxns` per IP, a client
//! that stops reading while watches fire, a storm of 100 000 watch events, writes of
//! `jute.maxbuffer` size in a loop, and `globalOutstandingLimit` under a write flood.
//!
//! Each test checks that server memory (VmRSS) stays within a bound the unprotected server
//! would exceed, and prints the latency of an unrelated client (p99 of getData) under the
//! load against the same client before it. The tests run one at a time (they measure).

mod common;

use common::{jute_string, RawClient, TestServer};
use corral::client::{Client, ClientConfig};
use corral::proto::{add_watch_mode, op, Acl, CreateMode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One test at a time: they compare memory and latency, and two cores are all there is.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The server process's resident memory, in KiB (found by its zoo.cfg path).
fn server_rss_kb(server: &TestServer) -> u64 {
    let cfg = server.dir.join("zoo.cfg");
    let cfg = cfg.to_string_lossy();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        if args.iter().any(|a| *a == cfg.as_bytes()) && args.iter().any(|a| *a == b"server") {
            let status =
                std::fs::read_to_string(entry.path().join("status")).expect("status of server");
            for line in status.lines() {
                if let Some(v) = line.strip_prefix("VmRSS:") {
                    let kb = v.trim().trim_end_matches("kB").trim();
                    return kb.parse().expect("VmRSS in kB");
                }
            }
        }
    }
    panic!("server process for {cfg} not found");
}

/// Raises this process's open-file limit to its hard limit (servers started afterwards
/// inherit it); returns the new soft limit.
fn raise_fd_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit for the duration of the call.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    assert_eq!(rc, 0, "getrlimit");
    lim.rlim_cur = lim.rlim_max;
    // SAFETY: `lim` is a valid rlimit; raising the soft limit up to the hard one is allowed.
    let rc = unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) };
    assert_eq!(rc, 0, "setrlimit");
    lim.rlim_cur
}

fn client(server: &TestServer) -> Client {
    let c = Client::connect(&server.hosts(), ClientConfig::default()).expect("connect string");
    assert!(c.wait_connected(Duration::from_secs(10)), "no connection");
    c
}

/// A raw connection with a session, from `local` (any port) when given.
fn raw_session(addr: SocketAddr, local: Option<&str>) -> Option<RawClient> {
    let stream = match local {
        None => TcpStream::connect_timeout(&addr, Duration::from_secs(5)).ok()?,
        Some(ip) => {
            let s =
                socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).ok()?;
            let from: SocketAddr = format!("{ip}:0").parse().ok()?;
            s.bind(&from.into()).ok()?;
            s.connect_timeout(&addr.into(), Duration::from_secs(5))
                .ok()?;
            s.into()
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut c = RawClient { stream };
    c.handshake(0, 0, &[0; 16]).map(|_| c)
}

fn frame(xid: i32, opcode: i32, body: &[u8]) -> Vec<u8> {
    let mut v = ((body.len() + 8) as i32).to_be_bytes().to_vec();
    v.extend_from_slice(&xid.to_be_bytes());
    v.extend_from_slice(&opcode.to_be_bytes());
    v.extend_from_slice(body);
    v
}

fn set_data_body(path: &str, data: &[u8]) -> Vec<u8> {
    let mut b = jute_string(path);
    b.extend_from_slice(&(data.len() as i32).to_be_bytes());
    b.extend_from_slice(data);
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

fn add_watch_body(path: &str, mode: i32) -> Vec<u8> {
    let mut b = jute_string(path);
    b.extend_from_slice(&mode.to_be_bytes());
    b
}

/// A multi of `n` setData on `path` (each fires the node's watches once).
fn multi_set_body(path: &str, n: usize) -> Vec<u8> {
    let mut b = Vec::new();
    for _ in 0..n {
        b.extend_from_slice(&op::SET_DATA.to_be_bytes());
        b.push(0);
        b.extend_from_slice(&(-1i32).to_be_bytes());
        b.extend_from_slice(&set_data_body(path, b"x"));
    }
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(1);
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b
}

/// Reads reply frames until `n` replies (xid >= 0) arrived; returns the error codes seen
/// other than 0, or None if the connection ended first.
fn read_replies(stream: &mut TcpStream, n: usize) -> Option<Vec<i32>> {
    let mut errors = Vec::new();
    let mut got = 0;
    let mut len = [0u8; 4];
    while got < n {
        stream.read_exact(&mut len).ok()?;
        let mut buf = vec![0u8; i32::from_be_bytes(len) as usize];
        stream.read_exact(&mut buf).ok()?;
        let xid = i32::from_be_bytes(buf[0..4].try_into().ok()?);
        if xid >= 0 {
            got += 1;
            let err = i32::from_be_bytes(buf[12..16].try_into().ok()?);
            if err != 0 {
                errors.push(err);
            }
        }
    }
    Some(errors)
}

/// getData round trips of an unrelated client, in microseconds, until `stop` is set (at
/// least `min_samples`, and never beyond `max_for`).
fn probe(
    c: &Client,
    path: &str,
    stop: &AtomicBool,
    min_samples: usize,
    max_for: Duration,
) -> Vec<u64> {
    let start = Instant::now();
    let mut lat = Vec::new();
    while (lat.len() < min_samples || !stop.load(Ordering::Acquire)) && start.elapsed() < max_for {
        let t = Instant::now();
        c.get_data(path, false).expect("probe getData");
        lat.push(t.elapsed().as_micros() as u64);
    }
    lat
}

fn p99_us(lat: &mut [u64]) -> u64 {
    assert!(!lat.is_empty(), "no latency samples");
    lat.sort_unstable();
    lat[(lat.len() * 99 / 100).min(lat.len() - 1)]
}

/// Baseline p99 of the probe on an otherwise idle server.
fn baseline_p99_us(c: &Client, path: &str) -> u64 {
    let stop = AtomicBool::new(true);
    let mut lat = probe(c, path, &stop, 2000, Duration::from_secs(10));
    p99_us(&mut lat)
}

/// How much slower the probe's p99 may get under each load before the test fails: the
/// loads here share two cores with the probe, so the bound is generous, yet an unbounded
/// queue in front of the probe (a shard stuck on one connection) would break it.
const P99_FACTOR_MAX: u64 = 50;
/// Absolute floor for that bound: below it, scheduler noise dominates (on a shared
/// two-core machine p99s of 5-15 ms come and go with other work; a shard stalled on one
/// connection costs hundreds of milliseconds).
const P99_FLOOR_US: u64 = 50_000;

fn check_p99(what: &str, base_us: u64, loaded: &mut [u64]) -> u64 {
    let samples = loaded.len();
    let p99 = p99_us(loaded);
    let p50 = loaded[samples / 2];
    let max = loaded[samples - 1];
    let factor = p99 as f64 / base_us.max(1) as f64;
    println!(
        "{what}: probe p99 {p99} us under load (p50 {p50} us, max {max} us, {samples} samples) \
         vs {base_us} us idle: x{factor:.1}"
    );
    assert!(
        p99 <= (base_us * P99_FACTOR_MAX).max(P99_FLOOR_US),
        "{what}: probe p99 {p99} us against {base_us} us idle"
    );
    p99
}

fn create(c: &Client, path: &str, data: &[u8]) {
    c.create(
        path,
        Some(data),
        &Acl::open_unsafe(),
        CreateMode::Persistent,
    )
    .expect("create");
}

// ---------------------------------------------------------------- 10 000 connections

#[test]
fn ten_thousand_sessions_on_one_server() {
    const SESSIONS: usize = 10_000;
    const BATCH: usize = 500;
    let _serial = serial();
    let limit = raise_fd_limit();
    assert!(
        limit as usize > SESSIONS + 1000,
        "RLIMIT_NOFILE hard limit {limit} is too low for {SESSIONS} connections"
    );
    let server = TestServer::start("maxClientCnxns=0\nmaxSessionTimeout=60000\n");
    let c = client(&server);
    create(&c, "/probe", b"p");
    let base = baseline_p99_us(&c, "/probe");
    let rss_before = server_rss_kb(&server);
    let start = Instant::now();
    let mut conns: Vec<TcpStream> = Vec::with_capacity(SESSIONS);
    let mut handshake = Vec::new();
    handshake.extend_from_slice(&0i32.to_be_bytes());
    handshake.extend_from_slice(&0i64.to_be_bytes());
    handshake.extend_from_slice(&60_000i32.to_be_bytes());
    handshake.extend_from_slice(&0i64.to_be_bytes());
    handshake.extend_from_slice(&16i32.to_be_bytes());
    handshake.extend_from_slice(&[0; 16]);
    let mut framed = (handshake.len() as i32).to_be_bytes().to_vec();
    framed.extend_from_slice(&handshake);
    while conns.len() < SESSIONS {
        assert!(
            start.elapsed() < Duration::from_secs(40),
            "connecting took over 40 s"
        );
        let first = conns.len();
        for _ in 0..BATCH.min(SESSIONS - first) {
            let mut s = TcpStream::connect_timeout(&server.addr, Duration::from_secs(5))
                .unwrap_or_else(|e| panic!("connection {}: {e}", conns.len()));
            s.write_all(&framed).expect("send ConnectRequest");
            conns.push(s);
        }
        for (i, s) in conns[first..].iter_mut().enumerate() {
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .expect("timeout");
            let mut len = [0u8; 4];
            s.read_exact(&mut len)
                .unwrap_or_else(|e| panic!("ConnectResponse {}: {e}", first + i));
            let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
            s.read_exact(&mut body).expect("ConnectResponse body");
            let sid = i64::from_be_bytes(body[8..16].try_into().expect("8 bytes"));
            assert_ne!(sid, 0, "session {} refused", first + i);
        }
    }
    let connect_s = start.elapsed().as_secs_f64();
    let rss_after = server_rss_kb(&server);
    let mntr = server.four_letter("mntr").expect("mntr");
    let alive: usize = mntr
        .lines()
        .find_map(|l| l.strip_prefix("zk_num_alive_connections\t"))
        .and_then(|v| v.trim().parse().ok())
        .expect("zk_num_alive_connections");
    assert!(
        alive > SESSIONS,
        "{alive} connections alive, expected over {SESSIONS}"
    );
    let stop = AtomicBool::new(true);
    let mut loaded = probe(&c, "/probe", &stop, 2000, Duration::from_secs(10));
    let per_conn_kb = (rss_after.saturating_sub(rss_before)) as f64 / SESSIONS as f64;
    println!(
        "{SESSIONS} sessions in {connect_s:.1} s; server RSS {rss_before} KiB -> {rss_after} KiB ({per_conn_kb:.1} KiB per connection)"
    );
    check_p99("10k idle sessions", base, &mut loaded);
    // A connection costs its socket, a small read buffer and its session: 10 000 of them
    // must fit in a few hundred MiB (64 KiB read buffers each would take over 600 MiB).
    assert!(
        per_conn_kb < 24.0,
        "{per_conn_kb:.1} KiB of server memory per idle connection"
    );
    drop(conns);
}

// ---------------------------------------------------------------- maxClientCnxns

#[test]
fn max_client_cnxns_refuses_the_next_connection_from_one_ip() {
    let _serial = serial();
    let server = TestServer::start("maxClientCnxns=5\n");
    let mut held: Vec<RawClient> = (0..5)
        .map(|i| {
            raw_session(server.addr, Some("127.0.0.1"))
                .unwrap_or_else(|| panic!("connection {i} from 127.0.0.1 refused"))
        })
        .collect();
    // The sixth from the same address is closed before its handshake is answered, on
    // whichever shard the kernel hands it to.
    for attempt in 0..4 {
        assert!(
            raw_session(server.addr, Some("127.0.0.1")).is_none(),
            "attempt {attempt}: a sixth connection from 127.0.0.1 got a session"
        );
    }
    // Other addresses have their own allowance.
    let others: Vec<RawClient> = (0..5)
        .map(|i| {
            raw_session(server.addr, Some("127.0.0.2"))
                .unwrap_or_else(|| panic!("connection {i} from 127.0.0.2 refused"))
        })
        .collect();
    assert!(raw_session(server.addr, Some("127.0.0.2")).is_none());
    assert!(raw_session(server.addr, Some("127.0.0.3")).is_some());
    // Closing one frees its place (the server notices the close asynchronously).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    let again = loop {
        if let Some(c) = raw_session(server.addr, Some("127.0.0.1")) {
            break c;
        }
        assert!(Instant::now() < deadline, "the freed place never came back");
        std::thread::sleep(Duration::from_millis(20));
    };
    let log = server.log();
    assert!(
        log.contains("Too many connections from /127.0.0.1 - max is 5"),
        "no refusal line in the log:\n{log}"
    );
    drop((again, others, held));
}

/// A connection the server closed has already given its place back: a client that sees
/// the end of one (a `ruok` answered, a session closed) and connects again at once is not
/// refused, whichever of the two shards the kernel gives it to. ZooKeeper's `close` also
/// removes the connection before it closes the socket.
#[test]
fn a_connection_the_server_closed_has_given_its_place_back() {
    let _serial = serial();
    let server = TestServer::start("maxClientCnxns=1\n");
    for i in 0..200 {
        assert_eq!(
            server.four_letter("ruok").as_deref(),
            Some("imok"),
            "ruok {i}:\n{}",
            server.log()
        );
        let mut c = raw_session(server.addr, Some("127.0.0.1")).unwrap_or_else(|| {
            panic!(
                "connection {i}, right after a ruok, refused:\n{}",
                server.log()
            )
        });
        let (_, _, err, _) = c.request(1, op::CLOSE_SESSION, &[]).expect("closeSession");
        assert_eq!(err, 0, "closeSession {i}");
        // The server closes the connection after the answer: read to its end.
        while c.read_frame().is_some() {}
    }
    assert!(
        !server.log().contains("Too many connections"),
        "{}",
        server.log()
    );
}

#[test]
fn max_cnxns_caps_connections_from_all_addresses() {
    let _serial = serial();
    let server = TestServer::start("maxCnxns=3\nmaxClientCnxns=0\n");
    let held: Vec<RawClient> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|ip| raw_session(server.addr, Some(ip)).expect("session under maxCnxns"))
        .collect();
    assert!(raw_session(server.addr, Some("127.0.0.4")).is_none());
    let log = server.log();
    assert!(
        log.contains("Too many connections max allowed is 3"),
        "no refusal line in the log:\n{log}"
    );
    drop(held);
}

// ---------------------------------------------------------------- a client that stops reading

#[test]
fn client_that_stops_reading_is_closed_and_memory_stays_bounded() {
    const OUTPUT_MAX: usize = 4 << 20;
    const MULTIS: usize = 400;
    const SETS_PER_MULTI: usize = 100;
    let _serial = serial();
    let server = TestServer::start(&format!("corral.client.maxOutputBytes={OUTPUT_MAX}\n"));
    let c = client(&server);
    create(&c, "/probe", b"p");
    create(&c, "/slow", b"");
    // Long paths make big events: ~930 bytes each, 40 000 of them (37 MiB) in all.
    let node = format!("/slow/{}", "x".repeat(900));
    create(&c, &node, b"");
    let base = baseline_p99_us(&c, "/probe");

    // The slow client: a tiny receive buffer, a recursive watch, then it never reads.
    let sock =
        socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).expect("socket");
    sock.set_recv_buffer_size(4096).expect("SO_RCVBUF");
    sock.connect_timeout(&server.addr.into(), Duration::from_secs(5))
        .expect("connect");
    let mut slow = RawClient {
        stream: sock.into(),
    };
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let (_, slow_sid, _) = slow.handshake(0, 0, &[0; 16]).expect("slow session");
    let slow_port = slow.stream.local_addr().expect("local addr").port();
    let (_, _, err, _) = slow
        .request(
            1,
            op::ADD_WATCH,
            &add_watch_body("/slow", add_watch_mode::PERSISTENT_RECURSIVE),
        )
        .expect("addWatch");
    assert_eq!(err, 0);
    let rss_before = server_rss_kb(&server);

    let stop = AtomicBool::new(false);
    let (loaded, max_rss) = std::thread::scope(|s| {
        let prober = s.spawn(|| probe(&c, "/probe", &stop, 200, Duration::from_secs(60)));
        let mut writer = raw_session(server.addr, None).expect("writer session");
        let body = multi_set_body(&node, SETS_PER_MULTI);
        let mut max_rss = 0;
        for round in 0..MULTIS / 20 {
            let mut batch = Vec::new();
            for i in 0..20 {
                batch.extend_from_slice(&frame((round * 20 + i) as i32 + 1, op::MULTI, &body));
            }
            writer.stream.write_all(&batch).expect("send multis");
            let errors = read_replies(&mut writer.stream, 20).expect("multi replies");
            assert!(errors.is_empty(), "multi errors {errors:?}");
            max_rss = max_rss.max(server_rss_kb(&server));
        }
        stop.store(true, Ordering::Release);
        (prober.join().expect("probe thread"), max_rss)
    });
    let mut loaded = loaded;
    let grew_kb = max_rss.saturating_sub(rss_before);
    println!(
        "slow client: {} MiB of events fired at it; server RSS {rss_before} KiB, at most {max_rss} KiB while firing (+{grew_kb} KiB)",
        (MULTIS * SETS_PER_MULTI * 930) >> 20
    );
    check_p99("slow client + 40k events", base, &mut loaded);

    // The server closed it: what is buffered drains, then EOF — far less than was fired.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut drained = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    loop {
        assert!(
            Instant::now() < deadline,
            "the slow client was never disconnected"
        );
        match slow.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => drained += n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("slow client read: {e} after {drained} bytes"),
        }
    }
    println!("slow client drained {drained} bytes before EOF");
    assert!(
        drained < MULTIS * SETS_PER_MULTI * 930 / 2,
        "{drained} bytes reached the slow client: it was not cut off"
    );
    // Unprotected, the server would hold all 37 MiB for it; bounded, the limit plus noise.
    assert!(
        grew_kb < 24 * 1024,
        "server RSS grew {grew_kb} KiB while a non-reading client was sent 37 MiB"
    );
    let log = server.log();
    let line = log
        .lines()
        .find(|l| l.contains("client is not reading"))
        .unwrap_or_else(|| panic!("no log line for the slow client:\n{log}"));
    assert!(
        line.contains(&format!("0x{slow_sid:x}")) && line.contains(&format!(":{slow_port}")),
        "the log line names neither the session 0x{slow_sid:x} nor the port {slow_port}: {line}"
    );
    assert_eq!(
        log.matches("client is not reading").count(),
        1,
        "one log line per closed connection"
    );
    // The server still serves.
    c.get_data("/probe", false).expect("getData after");
}

// ---------------------------------------------------------------- 100 000 watch events

#[test]
fn storm_of_100k_watch_events() {
    const WATCHERS: usize = 100;
    const WRITES: usize = 1000;
    let _serial = serial();
    let server = TestServer::start("");
    let c = client(&server);
    create(&c, "/probe", b"p");
    create(&c, "/storm", b"");
    create(&c, "/storm/n", b"");
    let base = baseline_p99_us(&c, "/probe");
    let rss_before = server_rss_kb(&server);
    // Watchers spread over addresses: maxClientCnxns keeps its default of 60 per IP.
    let watchers: Vec<RawClient> = (0..WATCHERS)
        .map(|i| {
            let ip = format!("127.0.1.{}", 1 + i / 50);
            let mut w = raw_session(server.addr, Some(&ip)).expect("watcher session");
            let (_, _, err, _) = w
                .request(
                    1,
                    op::ADD_WATCH,
                    &add_watch_body("/storm", add_watch_mode::PERSISTENT_RECURSIVE),
                )
                .expect("addWatch");
            assert_eq!(err, 0);
            w
        })
        .collect();
    let events = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let start = Instant::now();
    let loaded = std::thread::scope(|s| {
        let prober = s.spawn(|| probe(&c, "/probe", &stop, 200, Duration::from_secs(60)));
        // One thread polls every watcher: a hundred reader threads would crowd the probe
        // out of the two cores and measure the scheduler instead of the server.
        let events = &events;
        let reader = s.spawn(move || count_events(watchers, WRITES, events));
        let mut writer = raw_session(server.addr, None).expect("writer session");
        let mut batch = Vec::new();
        for i in 0..WRITES {
            batch.extend_from_slice(&frame(
                i as i32 + 1,
                op::SET_DATA,
                &set_data_body("/storm/n", b"v"),
            ));
        }
        writer.stream.write_all(&batch).expect("send setData");
        let errors = read_replies(&mut writer.stream, WRITES).expect("setData replies");
        assert!(errors.is_empty(), "setData errors {errors:?}");
        let per_watcher = reader.join().expect("reader");
        assert!(
            per_watcher.iter().all(|n| *n == WRITES),
            "a watcher missed events: {per_watcher:?}"
        );
        stop.store(true, Ordering::Release);
        prober.join().expect("probe thread")
    });
    let took = start.elapsed().as_secs_f64();
    let rss_after = server_rss_kb(&server);
    let total = events.load(Ordering::Relaxed);
    println!(
        "{total} watch events in {took:.2} s ({:.0}/s); server RSS {rss_before} KiB -> {rss_after} KiB",
        total as f64 / took
    );
    assert_eq!(total, WATCHERS * WRITES);
    let mut loaded = loaded;
    check_p99("100k watch events", base, &mut loaded);
    assert!(
        rss_after.saturating_sub(rss_before) < 64 * 1024,
        "server RSS grew from {rss_before} to {rss_after} KiB in the storm"
    );
}

/// Reads every watcher's socket from one thread (poll(2)) until each has `want`
/// notifications or 30 s pass; returns the count per watcher.
fn count_events(watchers: Vec<RawClient>, want: usize, total: &AtomicUsize) -> Vec<usize> {
    use std::os::fd::AsRawFd;
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut streams: Vec<TcpStream> = watchers.into_iter().map(|w| w.stream).collect();
    for st in &streams {
        st.set_nonblocking(true).expect("nonblocking");
    }
    let mut bufs: Vec<Vec<u8>> = vec![Vec::new(); streams.len()];
    let mut counts = vec![0usize; streams.len()];
    let mut chunk = vec![0u8; 64 * 1024];
    while counts.iter().any(|n| *n < want) && Instant::now() < deadline {
        let mut fds: Vec<libc::pollfd> = streams
            .iter()
            .map(|st| libc::pollfd {
                fd: st.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            })
            .collect();
        // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs for the call.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 100) };
        assert!(n >= 0, "poll failed");
        for (i, fd) in fds.iter().enumerate() {
            if fd.revents == 0 {
                continue;
            }
            match streams[i].read(&mut chunk) {
                Ok(0) => panic!("watcher {i} was disconnected"),
                Ok(got) => bufs[i].extend_from_slice(&chunk[..got]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                Err(e) => panic!("watcher {i}: {e}"),
            }
            let buf = &mut bufs[i];
            let mut at = 0;
            while buf.len() - at >= 4 {
                let len = i32::from_be_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
                if buf.len() - at - 4 < len {
                    break;
                }
                if buf[at + 4..at + 8] == (-1i32).to_be_bytes() {
                    counts[i] += 1;
                    total.fetch_add(1, Ordering::Relaxed);
                }
                at += 4 + len;
            }
            buf.drain(..at);
        }
    }
    counts
}

// ---------------------------------------------------------------- jute.maxbuffer writes

#[test]
fn max_buffer_sized_writes_in_a_loop() {
    const ROUNDS: usize = 60;
    let _serial = serial();
    let server = TestServer::start("");
    // The reply to getData carries the value plus a header and a Stat: more than the
    // client's default frame limit (as with the Java client, whose jute.maxbuffer would be
    // raised for this too).
    let config = ClientConfig {
        reply_bytes_max: 4 << 20,
        ..ClientConfig::default()
    };
    let c = Client::connect(&server.hosts(), config).expect("connect string");
    assert!(c.wait_connected(Duration::from_secs(10)), "no connection");
    create(&c, "/big", b"");
    // The largest setData the default jute.maxbuffer (0xfffff) frame holds.
    let overhead = 4 + 8 + 4 + "/big".len() + 4 + 4;
    let data = vec![7u8; 0xfffff - overhead];
    c.set_data("/big", Some(&data), -1)
        .expect("first big setData");
    let rss_before = server_rss_kb(&server);
    let start = Instant::now();
    let mut max_rss = 0;
    for round in 0..ROUNDS {
        let mut d = data.clone();
        d[0] = round as u8;
        c.set_data("/big", Some(&d), -1).expect("big setData");
        let (got, _) = c.get_data("/big", false).expect("big getData");
        assert_eq!(
            got.as_deref().map(|g| (g.len(), g[0])),
            Some((d.len(), round as u8))
        );
        max_rss = max_rss.max(server_rss_kb(&server));
    }
    let took = start.elapsed().as_secs_f64();
    // One byte more than the frame limit is refused (the connection closes).
    let too_big = vec![0u8; 0xfffff];
    assert!(c.set_data("/big", Some(&too_big), -1).is_err());
    println!(
        "{ROUNDS} setData+getData of {} bytes in {took:.1} s; server RSS {rss_before} KiB, at most {max_rss} KiB",
        data.len()
    );
    // Each value lives once per tree (ZAB's and each shard's share one buffer); a leak of
    // a frame per write would add 60 MiB or more.
    assert!(
        max_rss.saturating_sub(rss_before) < 48 * 1024,
        "server RSS grew from {rss_before} to {max_rss} KiB"
    );
}

// ---------------------------------------------------------------- globalOutstandingLimit

#[test]
fn global_outstanding_limit_pushes_back_on_a_flood() {
    const LIMIT: usize = 64;
    let limit_cfg: usize = std::env::var("CORRAL_OVERLOAD_LIMIT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(LIMIT);
    const FLOODERS: usize = 8;
    const REQUESTS: usize = 3000;
    let _serial = serial();
    let server = TestServer::start(&format!("globalOutstandingLimit={limit_cfg}\n"));
    let c = client(&server);
    create(&c, "/probe", b"p");
    create(&c, "/flood", b"");
    let base = baseline_p99_us(&c, "/probe");
    let rss_before = server_rss_kb(&server);
    let stop = AtomicBool::new(false);
    let max_outstanding = AtomicUsize::new(0);
    let start = Instant::now();
    let (loaded, max_rss) = std::thread::scope(|s| {
        let prober = s.spawn(|| probe(&c, "/probe", &stop, 200, Duration::from_secs(60)));
        let sampler = s.spawn(|| {
            let mut max_rss = 0;
            while !stop.load(Ordering::Acquire) {
                if let Some(stat) = server.four_letter("stat") {
                    if let Some(n) = stat
                        .lines()
                        .find_map(|l| l.strip_prefix("Outstanding: "))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                    {
                        max_outstanding.fetch_max(n, Ordering::Relaxed);
                    }
                }
                max_rss = max_rss.max(server_rss_kb(&server));
                std::thread::sleep(Duration::from_millis(2));
            }
            max_rss
        });
        let mut flooders = Vec::new();
        for i in 0..FLOODERS {
            let mut w = raw_session(server.addr, None).expect("flooder session");
            let mut rd = w.stream.try_clone().expect("clone");
            flooders.push(s.spawn(move || {
                let data = vec![b'f'; 1024];
                let body = set_data_body("/flood", &data);
                let reader = std::thread::spawn(move || read_replies(&mut rd, REQUESTS));
                let mut batch = Vec::new();
                for x in 0..REQUESTS {
                    batch.extend_from_slice(&frame(x as i32 + 1, op::SET_DATA, &body));
                    if batch.len() > 64 * 1024 {
                        w.stream.write_all(&batch).expect("flood write");
                        batch.clear();
                    }
                }
                w.stream.write_all(&batch).expect("flood write");
                let errors = reader.join().expect("reader").expect("flood replies");
                assert!(errors.is_empty(), "flooder {i}: errors {errors:?}");
            }));
        }
        for f in flooders {
            f.join().expect("flooder");
        }
        stop.store(true, Ordering::Release);
        (
            prober.join().expect("probe"),
            sampler.join().expect("sampler"),
        )
    });
    let took = start.elapsed().as_secs_f64();
    let max_out = max_outstanding.load(Ordering::Relaxed);
    println!(
        "flood: {} setData from {FLOODERS} pipelining clients in {took:.1} s; outstanding at most {max_out} (limit {LIMIT}); server RSS {rss_before} KiB, at most {max_rss} KiB",
        FLOODERS * REQUESTS
    );
    let mut loaded = loaded;
    check_p99("write flood", base, &mut loaded);
    // Each shard stops at its share; a connection with nothing outstanding may add one.
    assert!(
        max_out <= LIMIT + FLOODERS + 1,
        "{max_out} requests outstanding with globalOutstandingLimit={LIMIT}"
    );
    assert!(
        max_out >= LIMIT / 4,
        "the flood never loaded the server ({max_out})"
    );
    assert!(
        max_rss.saturating_sub(rss_before) < 64 * 1024,
        "server RSS grew from {rss_before} to {max_rss} KiB under the flood"
    );
}
