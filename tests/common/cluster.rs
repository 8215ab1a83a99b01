//! A pseudo-cluster on 127.0.0.1: N participants and M observers, each a child process
//! with its own `zooN.cfg`, `myid` and data directory, in the shape of the operator's
//! walkthrough (tickTime=2000, initLimit=10, syncLimit=5, `server.N=127.0.0.1:Q:E[:observer]`).
//!
//! The nodes are Corral servers (`corral server zooN.cfg`), or Apache ZooKeeper 3.8
//! (`QuorumPeerMain` from the Debian jars) when `CORRAL_CLUSTER_TEST_TARGET=zookeeper`,
//! which checks the expectations of the tests against the reference implementation.
//! `ZK_JAVA_CP` overrides ZooKeeper's class path.
//!
//! Servers are numbered from 1 as in `server.N` and `myid`. Every wait is a poll with a
//! deadline. Only one cluster of a test binary runs at a time (a process-wide lock), so
//! that parallel tests do not fight over the cores. Dropping the cluster kills every
//! child by its handle and removes the directory; if the test is failing, the tail of
//! every node's log is printed first (the harness's own panics rely on that).

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What `srvr` answers while a server has no quorum (ZooKeeper's `NopCommand` text).
pub const NOT_SERVING: &str = "This ZooKeeper instance is not currently serving requests";

/// Lines of each node's log printed when a test fails.
const LOG_TAIL_LINES: usize = 60;

static CLUSTER_LOCK: Mutex<()> = Mutex::new(());

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    Corral,
    ZooKeeper,
}

impl Flavor {
    /// `CORRAL_CLUSTER_TEST_TARGET=zookeeper` selects Apache ZooKeeper; anything else Corral.
    pub fn from_env() -> Flavor {
        match std::env::var("CORRAL_CLUSTER_TEST_TARGET") {
            Ok(v) if v.eq_ignore_ascii_case("zookeeper") => Flavor::ZooKeeper,
            _ => Flavor::Corral,
        }
    }
}

struct Node {
    id: usize,
    observer: bool,
    client_port: u16,
    quorum_port: u16,
    election_port: u16,
    child: Option<Child>,
}

pub struct TestCluster {
    pub flavor: Flavor,
    pub dir: PathBuf,
    nodes: Vec<Node>,
    _serial: MutexGuard<'static, ()>,
}

impl TestCluster {
    /// Writes the configs of `participants` + `observers` servers (the observers get the
    /// highest ids) and starts every one. Returns at once: use [`Self::wait_modes`].
    pub fn start(participants: usize, observers: usize) -> TestCluster {
        let mut cluster = TestCluster::configure(participants, observers);
        for n in 1..=cluster.size() {
            cluster.start_node(n);
        }
        cluster
    }

    /// Writes the configs and `myid` files of `participants` + `observers` servers and
    /// starts none: [`Self::start_node`] starts them one by one, as an operator would.
    pub fn configure(participants: usize, observers: usize) -> TestCluster {
        assert!(participants >= 1, "a cluster needs a participant");
        let serial = CLUSTER_LOCK.lock().unwrap_or_else(|p| p.into_inner());
        let flavor = Flavor::from_env();
        let total = participants + observers;
        let ports = free_ports(3 * total);
        let nodes: Vec<Node> = (0..total)
            .map(|i| Node {
                id: i + 1,
                observer: i >= participants,
                client_port: ports[i],
                quorum_port: ports[total + i],
                election_port: ports[2 * total + i],
                child: None,
            })
            .collect();
        let dir = unique_dir();
        let cluster = TestCluster {
            flavor,
            dir,
            nodes,
            _serial: serial,
        };
        cluster.write_configs();
        cluster
    }

    /// Number of servers, participants and observers.
    pub fn size(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_observer(&self, n: usize) -> bool {
        self.node(n).observer
    }

    /// The server ids of the participants.
    pub fn participants(&self) -> Vec<usize> {
        self.nodes
            .iter()
            .filter(|node| !node.observer)
            .map(|node| node.id)
            .collect()
    }

    /// `127.0.0.1:<clientPort>` of server `n`: the connect string of a client pinned to it.
    pub fn client_addr(&self, n: usize) -> String {
        format!("127.0.0.1:{}", self.node(n).client_port)
    }

    /// The connect string of every server, in id order.
    pub fn hosts(&self) -> String {
        (1..=self.size())
            .map(|n| self.client_addr(n))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// The `server.N=` lines as `/zookeeper/config` shows them, then `version=0`.
    pub fn expected_config(&self) -> String {
        let mut lines: Vec<String> = self
            .nodes
            .iter()
            .map(|node| {
                format!(
                    "server.{}=127.0.0.1:{}:{}:{}",
                    node.id,
                    node.quorum_port,
                    node.election_port,
                    if node.observer {
                        "observer"
                    } else {
                        "participant"
                    }
                )
            })
            .collect();
        lines.push("version=0".to_string());
        lines.join("\n")
    }

    /// The `host:quorumPort:electionPort` of server `n` as its `server.N` line has it.
    pub fn server_address(&self, n: usize) -> String {
        let node = self.node(n);
        format!("127.0.0.1:{}:{}", node.quorum_port, node.election_port)
    }

    pub fn client_port(&self, n: usize) -> u16 {
        self.node(n).client_port
    }

    pub fn config_path(&self, n: usize) -> PathBuf {
        self.dir.join("conf").join(format!("zoo{n}.cfg"))
    }

    pub fn log_path(&self, n: usize) -> PathBuf {
        self.dir.join("log").join(format!("node{n}.log"))
    }

    pub fn log(&self, n: usize) -> String {
        std::fs::read_to_string(self.log_path(n)).unwrap_or_default()
    }

    /// Sends a four-letter word to server `n`; None if it did not answer.
    pub fn four_letter(&self, n: usize, word: &str) -> Option<String> {
        let addr: SocketAddr = self.client_addr(n).parse().ok()?;
        let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        s.set_write_timeout(Some(Duration::from_secs(5))).ok()?;
        s.write_all(word.as_bytes()).ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        Some(out)
    }

    /// The `Mode:` of server `n` from `srvr` (`leader`, `follower`, `observer`,
    /// `standalone`); None while it does not serve or does not answer.
    pub fn mode(&self, n: usize) -> Option<String> {
        let out = self.four_letter(n, "srvr")?;
        out.lines()
            .find_map(|l| l.strip_prefix("Mode: "))
            .map(|m| m.trim().to_string())
    }

    /// Whether server `n` has a live process (false after [`Self::kill9`] or if it exited).
    pub fn is_running(&mut self, n: usize) -> bool {
        match self.node_mut(n).child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits (until `deadline`) for server `n` to exit by itself; its exit status, or None
    /// if it still runs at the deadline (or was not started).
    pub fn wait_exit(&mut self, n: usize, deadline: Instant) -> Option<std::process::ExitStatus> {
        loop {
            let status = match self.node_mut(n).child.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => return None,
            };
            if let Some(status) = status {
                self.node_mut(n).child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Polls `srvr` on every running server until exactly one is leader, every other
    /// running participant is a follower and every running observer an observer. Returns
    /// the modes by server id. Panics at `deadline`, or when a server exits, with the logs.
    pub fn wait_modes(&mut self, deadline: Instant) -> BTreeMap<usize, String> {
        let mut last = BTreeMap::new();
        loop {
            self.check_alive();
            last.clear();
            for node in self.nodes.iter().filter(|node| node.child.is_some()) {
                last.insert(node.id, self.mode(node.id));
            }
            if self.modes_settled(&last) {
                return last
                    .into_iter()
                    .filter_map(|(n, m)| m.map(|m| (n, m)))
                    .collect();
            }
            if Instant::now() >= deadline {
                panic!(
                    "the cluster did not settle to one leader, followers and observers by the \
                     deadline; last modes {last:?} (node logs follow)"
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The id of the one server whose `srvr` says `Mode: leader`. Panics unless exactly
    /// one running server is leader.
    pub fn leader(&self) -> usize {
        let leaders: Vec<usize> = self
            .nodes
            .iter()
            .filter(|node| node.child.is_some())
            .filter(|node| self.mode(node.id).as_deref() == Some("leader"))
            .map(|node| node.id)
            .collect();
        assert_eq!(leaders.len(), 1, "expected exactly one leader: {leaders:?}");
        leaders[0]
    }

    /// kill -9 of server `n` (its files stay as the crash left them).
    pub fn kill9(&mut self, n: usize) {
        if let Some(mut child) = self.node_mut(n).child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts server `n` again with its config and data directory (kills it first if it
    /// still runs). Returns at once: use [`Self::wait_modes`].
    pub fn restart(&mut self, n: usize) {
        self.kill9(n);
        self.start_node(n);
    }

    fn node(&self, n: usize) -> &Node {
        assert!(
            (1..=self.nodes.len()).contains(&n),
            "no server {n} in this cluster"
        );
        &self.nodes[n - 1]
    }

    fn node_mut(&mut self, n: usize) -> &mut Node {
        assert!(
            (1..=self.nodes.len()).contains(&n),
            "no server {n} in this cluster"
        );
        &mut self.nodes[n - 1]
    }

    fn data_dir(&self, n: usize) -> PathBuf {
        self.dir.join("data").join(format!("zk{n}"))
    }

    fn write_configs(&self) {
        for sub in ["conf", "log"] {
            std::fs::create_dir_all(self.dir.join(sub)).expect("create cluster dir");
        }
        let servers: String = self
            .nodes
            .iter()
            .map(|node| {
                format!(
                    "server.{}=127.0.0.1:{}:{}{}\n",
                    node.id,
                    node.quorum_port,
                    node.election_port,
                    if node.observer { ":observer" } else { "" }
                )
            })
            .collect();
        for node in &self.nodes {
            let data = self.data_dir(node.id);
            std::fs::create_dir_all(&data).expect("create dataDir");
            std::fs::write(data.join("myid"), format!("{}\n", node.id)).expect("write myid");
            // The walkthrough's keys, then what the tests need: every four-letter word,
            // no admin server, clients on loopback only.
            let mut text = format!(
                "tickTime=2000\ninitLimit=10\nsyncLimit=5\ndataDir={}\nclientPort={}\n{servers}\
                 clientPortAddress=127.0.0.1\n4lw.commands.whitelist=*\nadmin.enableServer=false\n",
                data.display(),
                node.client_port
            );
            if self.flavor == Flavor::Corral {
                text.push_str("corral.shards=1\ncorral.ioMemoryKb=512\n");
            }
            std::fs::write(self.config_path(node.id), text).expect("write zooN.cfg");
        }
    }

    /// Adds `lines` to every server's zooN.cfg (before starting them).
    pub fn add_config(&self, lines: &str) {
        for node in &self.nodes {
            let path = self.config_path(node.id);
            let mut text = std::fs::read_to_string(&path).expect("read zooN.cfg");
            text.push_str(lines);
            text.push('\n');
            std::fs::write(&path, text).expect("write zooN.cfg");
        }
    }

    /// Adds `lines` to server `n`'s zooN.cfg only (before starting it), e.g. its own
    /// `dataLogDir`.
    pub fn add_node_config(&self, n: usize, lines: &str) {
        let path = self.config_path(n);
        let mut text = std::fs::read_to_string(&path).expect("read zooN.cfg");
        text.push_str(lines);
        text.push('\n');
        std::fs::write(&path, text).expect("write zooN.cfg");
    }

    /// Takes server `n`'s `server.N` line out of every other server's zooN.cfg (before
    /// starting them): `n` is not a member until a reconfig adds it; its own config still
    /// lists every server, itself included, as a joining server's does.
    pub fn leave_out_of_configs(&self, n: usize) {
        let prefix = format!("server.{n}=");
        for node in self.nodes.iter().filter(|node| node.id != n) {
            let path = self.config_path(node.id);
            let text = std::fs::read_to_string(&path).expect("read zooN.cfg");
            let kept: String = text
                .lines()
                .filter(|l| !l.starts_with(&prefix))
                .map(|l| format!("{l}\n"))
                .collect();
            std::fs::write(&path, kept).expect("write zooN.cfg");
        }
    }

    /// Whether server `n` wrote a snapshot of something (a `snapshot.<zxid>` file in its
    /// dataDir's `version-2`, zxid above 0).
    pub fn has_snapshot(&self, n: usize) -> bool {
        let dir = self.data_dir(n).join("version-2");
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries.flatten().any(|e| {
                    let name = e.file_name().to_string_lossy().into_owned();
                    name.strip_prefix("snapshot.")
                        .is_some_and(|zxid| u64::from_str_radix(zxid, 16).is_ok_and(|z| z > 0))
                })
            })
            .unwrap_or(false)
    }

    /// Removes everything in server `n`'s dataDir but its `myid` (the server must be down):
    /// it comes back as a new, empty member.
    pub fn wipe_data(&self, n: usize) {
        assert!(self.node(n).child.is_none(), "server {n} still runs");
        let data = self.data_dir(n);
        for entry in std::fs::read_dir(&data).expect("list dataDir").flatten() {
            if entry.file_name() == "myid" {
                continue;
            }
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path).expect("remove from dataDir");
            } else {
                std::fs::remove_file(&path).expect("remove from dataDir");
            }
        }
    }

    /// Starts server `n`, which must not be running. Returns at once.
    pub fn start_node(&mut self, n: usize) {
        assert!(self.node(n).child.is_none(), "server {n} already runs");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path(n))
            .expect("open node log");
        let out = log.try_clone().expect("clone log handle");
        let cfg = self.config_path(n);
        let mut cmd = match self.flavor {
            Flavor::Corral => {
                let mut c = Command::new(env!("CARGO_BIN_EXE_corral"));
                // Plain text in the log file.
                c.env("NO_COLOR", "1").arg("server").arg(&cfg);
                c
            }
            Flavor::ZooKeeper => {
                let cp = std::env::var("ZK_JAVA_CP").unwrap_or_else(|_| {
                    "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar:\
                     /usr/share/java/slf4j-log4j12.jar:/usr/share/java/log4j-1.2.jar"
                        .to_string()
                });
                let mut c = Command::new("java");
                c.arg("-Xmx256m")
                    .arg("-cp")
                    .arg(cp)
                    .arg(format!(
                        "-Dzookeeper.log.dir={}",
                        self.dir.join("log").display()
                    ))
                    .arg("-Dzookeeper.root.logger=INFO,CONSOLE")
                    .arg("org.apache.zookeeper.server.quorum.QuorumPeerMain")
                    .arg(&cfg);
                c
            }
        };
        let child = cmd
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn server {n} ({:?}): {e}", self.flavor));
        self.node_mut(n).child = Some(child);
    }

    fn modes_settled(&self, modes: &BTreeMap<usize, Option<String>>) -> bool {
        let mut leaders = 0;
        for (&n, mode) in modes {
            let ok = match (self.is_observer(n), mode.as_deref()) {
                (true, Some("observer")) => true,
                (false, Some("follower")) => true,
                (false, Some("leader")) => {
                    leaders += 1;
                    true
                }
                _ => false,
            };
            if !ok {
                return false;
            }
        }
        leaders == 1
    }

    /// Panics with the logs if a server that should run has exited.
    fn check_alive(&mut self) {
        for n in 1..=self.size() {
            let exited = match self.node_mut(n).child.as_mut() {
                Some(child) => child.try_wait().ok().flatten(),
                None => None,
            };
            if let Some(status) = exited {
                panic!(
                    "server {n} ({:?}) exited ({status}) (node logs follow)",
                    self.flavor
                );
            }
        }
    }

    /// The last lines of every node's log, for failure messages.
    pub fn log_tails(&self) -> String {
        let mut out = String::new();
        for n in 1..=self.size() {
            let log = self.log(n);
            let lines: Vec<&str> = log.lines().collect();
            let from = lines.len().saturating_sub(LOG_TAIL_LINES);
            out.push_str(&format!(
                "--- server {n} log ({}):\n",
                self.log_path(n).display()
            ));
            for l in &lines[from..] {
                out.push_str(l);
                out.push('\n');
            }
        }
        out
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("{}", self.log_tails());
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `count` distinct free loopback ports: all bound at once, so no two are equal, then
/// released for the servers to take.
/// `count` distinct free ports below the kernel's ephemeral range (32768 and up by
/// default). A restarted node must get its ports back: a port from the ephemeral range can
/// meanwhile be the source port of some outgoing connection, which blocks the bind.
fn free_ports(count: usize) -> Vec<u16> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    // Spread concurrent test binaries over the range by pid and time.
    let mut candidate = 20_000 + ((std::process::id() * 7919 + nanos / 1000) % 12_000) as u16;
    let mut ports = Vec::with_capacity(count);
    let mut held = Vec::with_capacity(count);
    for _ in 0..12_000 {
        if ports.len() == count {
            break;
        }
        candidate = if candidate >= 31_999 {
            20_000
        } else {
            candidate + 1
        };
        if let Ok(l) = TcpListener::bind(("127.0.0.1", candidate)) {
            ports.push(candidate);
            held.push(l);
        }
    }
    assert_eq!(ports.len(), count, "no free ports in 20000..32000");
    ports
}

fn unique_dir() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let dir = std::env::temp_dir().join(format!("corral-cluster-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("create cluster dir");
    dir
}
