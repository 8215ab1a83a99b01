//! Test harness: one real `corral server` process per test, on a free loopback port, with
//! its own data directory; stopped (by its pid) when the handle drops.

#![allow(dead_code)]

pub mod cluster;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct TestServer {
    pub addr: SocketAddr,
    pub dir: PathBuf,
    child: Child,
}

fn spawn_server(dir: &std::path::Path) -> Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .expect("log file");
    Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("server")
        .arg(dir.join("zoo.cfg"))
        // Relative paths in zoo.cfg (see `TestServer::start_relative`) resolve here.
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("spawn corral server")
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

fn unique_dir(tag: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir =
        std::env::temp_dir().join(format!("corral-test-{tag}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create test dir");
    dir
}

impl TestServer {
    /// Starts a server with `tickTime=2000`, every four-letter word allowed, extended types
    /// on, plus `extra` zoo.cfg lines.
    pub fn start(extra: &str) -> TestServer {
        TestServer::start_with(|dir| {
            format!(
                "dataDir={}\ncorral.shards=2\n{extra}\n",
                dir.join("data").display()
            )
        })
    }

    /// As [`Self::start`], but `dataDir=data`, relative to the server's working directory
    /// (its own directory, as the embedded default config's `./data` is), and no
    /// `corral.shards` line: `extra` gives it, or the server's default applies.
    pub fn start_relative(extra: &str) -> TestServer {
        TestServer::start_with(|_| format!("dataDir=data\n{extra}\n"))
    }

    fn start_with(storage_lines: impl FnOnce(&std::path::Path) -> String) -> TestServer {
        let port = free_port();
        let dir = unique_dir("srv");
        let cfg = dir.join("zoo.cfg");
        let text = format!(
            "tickTime=2000\nclientPort={port}\nclientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nextendedTypesEnabled=true\nadmin.enableServer=false\n{}",
            storage_lines(&dir)
        );
        std::fs::write(&cfg, text).expect("write zoo.cfg");
        let child = spawn_server(&dir);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("addr");
        let mut server = TestServer { addr, dir, child };
        server.wait_ready();
        server
    }

    /// The server process's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// kill -9, then start again on the same port and data directory.
    pub fn crash_and_restart(&mut self) {
        self.crash();
        self.restart();
    }

    /// kill -9 (the files stay as the crash left them until [`Self::restart`]).
    pub fn crash(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the server again on the same port and data directory.
    pub fn restart(&mut self) {
        self.child = spawn_server(&self.dir);
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("server exited early ({status}): {}", self.log());
            }
            if self.four_letter("ruok").as_deref() == Some("imok") {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!("server did not answer ruok within 20 s: {}", self.log());
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    pub fn hosts(&self) -> String {
        self.addr.to_string()
    }

    /// Sends a four-letter word; None if the server did not answer.
    pub fn four_letter(&self, word: &str) -> Option<String> {
        let mut s = TcpStream::connect_timeout(&self.addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(word.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The server under test: `CORRAL_TEST_SERVER` (`host:port`, for example an Apache
/// ZooKeeper to check the expectations against) or else a fresh Corral server.
pub struct Target {
    pub addr: String,
    _server: Option<TestServer>,
}

pub fn target() -> Target {
    match std::env::var("CORRAL_TEST_SERVER") {
        Ok(s) if !s.is_empty() => Target {
            addr: s,
            _server: None,
        },
        _ => {
            let server = TestServer::start("");
            Target {
                addr: server.hosts(),
                _server: Some(server),
            }
        }
    }
}

/// A minimal raw client for wire-level tests: frames, handshake, requests.
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        RawClient { stream }
    }

    pub fn send_frame(&mut self, payload: &[u8]) {
        let mut v = (payload.len() as i32).to_be_bytes().to_vec();
        v.extend_from_slice(payload);
        self.stream.write_all(&v).expect("write frame");
    }

    /// Reads one frame; None when the server closed the connection.
    pub fn read_frame(&mut self) -> Option<Vec<u8>> {
        let mut len = [0u8; 4];
        self.stream.read_exact(&mut len).ok()?;
        let len = i32::from_be_bytes(len);
        let mut buf = vec![0u8; len as usize];
        self.stream.read_exact(&mut buf).ok()?;
        Some(buf)
    }

    /// Sends a ConnectRequest and returns (timeout, session id, password).
    pub fn handshake(
        &mut self,
        last_zxid: i64,
        session_id: i64,
        passwd: &[u8],
    ) -> Option<(i32, i64, Vec<u8>)> {
        let mut p = Vec::new();
        p.extend_from_slice(&0i32.to_be_bytes());
        p.extend_from_slice(&last_zxid.to_be_bytes());
        p.extend_from_slice(&30000i32.to_be_bytes());
        p.extend_from_slice(&session_id.to_be_bytes());
        p.extend_from_slice(&(passwd.len() as i32).to_be_bytes());
        p.extend_from_slice(passwd);
        p.push(0);
        self.send_frame(&p);
        let r = self.read_frame()?;
        let timeout = i32::from_be_bytes(r[4..8].try_into().ok()?);
        let sid = i64::from_be_bytes(r[8..16].try_into().ok()?);
        let plen = i32::from_be_bytes(r[16..20].try_into().ok()?) as usize;
        Some((timeout, sid, r[20..20 + plen].to_vec()))
    }

    /// Sends header + body; returns (xid, zxid, err, body) of the next non-notification reply.
    pub fn request(&mut self, xid: i32, op: i32, body: &[u8]) -> Option<(i32, i64, i32, Vec<u8>)> {
        let mut p = Vec::new();
        p.extend_from_slice(&xid.to_be_bytes());
        p.extend_from_slice(&op.to_be_bytes());
        p.extend_from_slice(body);
        self.send_frame(&p);
        loop {
            let r = self.read_frame()?;
            let rxid = i32::from_be_bytes(r[0..4].try_into().ok()?);
            if rxid == -1 {
                continue;
            }
            let zxid = i64::from_be_bytes(r[4..12].try_into().ok()?);
            let err = i32::from_be_bytes(r[12..16].try_into().ok()?);
            return Some((rxid, zxid, err, r[16..].to_vec()));
        }
    }
}

pub fn jute_string(s: &str) -> Vec<u8> {
    let mut v = (s.len() as i32).to_be_bytes().to_vec();
    v.extend_from_slice(s.as_bytes());
    v
}
