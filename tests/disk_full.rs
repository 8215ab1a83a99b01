//! A full log disk (docs/reliability.md, "Disk full: what a server does"), on a real file
//! system: a standalone server whose `dataLogDir` is a small ext4 image on a loop device.
//! The file system is filled to its last block while a client keeps writing; the server
//! must stay up, refuse writes with `SystemError` (-1), keep answering reads, leave a log
//! that `corral logdump --verify` passes, and accept writes again, without a restart, once
//! the space is freed. Every acknowledged write is there at the end (also after kill -9),
//! no refused one is.
//!
//! A member of a three-server ensemble whose `dataLogDir` is on such a file system (a
//! follower, then the leader): once its log has no room it stays up, leaves the ensemble
//! (not serving, never leader) while the other two go on accepting writes, and rejoins as a
//! follower with every acknowledged write once the space returns, without a restart.
//!
//! Needs root, `mkfs.ext4`, `losetup`, `mount` and `umount`; without them it prints why and
//! passes without running. The mount and the loop device are removed on every exit path
//! (the guard's `Drop`, which also runs when an assertion fails).

mod common;
use common::cluster::{TestCluster, NOT_SERVING};
use common::TestServer;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use zookeeper_client as zk;

const OPEN: zk::CreateOptions<'static> =
    zk::CreateMode::Persistent.with_acls(zk::Acls::anyone_all());
/// The longest one client operation may take.
const STEP: Duration = Duration::from_secs(10);
/// Size of the log file system.
const IMAGE_BYTES: u64 = 32 << 20;
/// `preAllocSize` in KiB: small, so that the log needs new blocks soon after the fill.
const PRE_ALLOC_KB: u64 = 64;

/// A tool's path, if it is installed (also looked for in the sbin directories, which a
/// non-login root shell may not have on its PATH).
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/sbin", "/usr/sbin", "/bin", "/usr/bin"])
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file());
    found
}

fn run(cmd: &Path, args: &[&str]) -> Result<String, String> {
    let out = Command::new(cmd)
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", cmd.display()))?;
    if !out.status.success() {
        return Err(format!(
            "{} {args:?}: {}: {}",
            cmd.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// A small ext4 file system on a loop device, mounted; unmounted and detached on drop.
struct LoopFs {
    dir: PathBuf,
    mount: PathBuf,
    device: Option<String>,
    mounted: bool,
    umount: PathBuf,
    losetup: PathBuf,
}

impl LoopFs {
    /// `Err(why)` when this host cannot make one (not root, tools missing).
    fn create() -> Result<LoopFs, String> {
        // SAFETY: geteuid has no preconditions and cannot fail.
        if unsafe { libc::geteuid() } != 0 {
            return Err("not root (a loop mount needs root)".into());
        }
        let need = |name: &str| tool(name).ok_or(format!("{name} not found"));
        let (mkfs, losetup, mount, umount) = (
            need("mkfs.ext4")?,
            need("losetup")?,
            need("mount")?,
            need("umount")?,
        );
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let dir =
            std::env::temp_dir().join(format!("corral-diskfull-{}-{nanos}", std::process::id()));
        let mount_point = dir.join("mnt");
        std::fs::create_dir_all(&mount_point).map_err(|e| e.to_string())?;
        let mut fs = LoopFs {
            dir: dir.clone(),
            mount: mount_point.clone(),
            device: None,
            mounted: false,
            umount,
            losetup: losetup.clone(),
        };
        let image = dir.join("log.img");
        let f = std::fs::File::create(&image).map_err(|e| e.to_string())?;
        f.set_len(IMAGE_BYTES).map_err(|e| e.to_string())?;
        drop(f);
        let image_s = image.to_string_lossy().to_string();
        // -m 0: no blocks reserved for root (the server runs as root here).
        run(&mkfs, &["-q", "-F", "-m", "0", &image_s])?;
        let device = run(&losetup, &["--find", "--show", &image_s])?;
        fs.device = Some(device.clone());
        run(&mount, &[&device, &mount_point.to_string_lossy()])?;
        fs.mounted = true;
        Ok(fs)
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        if self.mounted {
            let m = self.mount.to_string_lossy().to_string();
            if run(&self.umount, &[&m]).is_err() {
                // Busy (a server still exiting): detach it now, it goes once released.
                let _ = run(&self.umount, &["-l", &m]);
            }
        }
        if let Some(device) = &self.device {
            let _ = run(&self.losetup, &["-d", device]);
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Fills the file system holding `path` to its last block; the file stays (fsynced).
fn fill(path: &Path) -> u64 {
    use std::io::Write;
    let mut f = std::fs::File::create(path).expect("filler file");
    let mut total = 0u64;
    let mut chunk = 1usize << 20;
    let zeros = vec![0x5au8; chunk];
    while chunk >= 512 {
        match f.write(&zeros[..chunk]) {
            Ok(0) => chunk /= 2,
            Ok(n) => total += n as u64,
            Err(e) if e.raw_os_error() == Some(libc::ENOSPC) => chunk /= 2,
            Err(e) => panic!("filling: {e}"),
        }
    }
    // Delayed allocation reserved the blocks at write(); the fsync makes them real.
    let _ = f.sync_all();
    total
}

async fn connect(hosts: &str) -> zk::Client {
    tokio::time::timeout(STEP, zk::Client::connect(hosts))
        .await
        .expect("connect in time")
        .expect("connect")
}

/// A create, answered within [`STEP`].
async fn create(c: &zk::Client, path: &str, data: &[u8]) -> Result<(), zk::Error> {
    tokio::time::timeout(STEP, c.create(path, data, &OPEN))
        .await
        .unwrap_or_else(|_| panic!("create {path} got no answer within {STEP:?}"))
        .map(|_| ())
}

/// Creates `/df` and its first 50 children `/df/n<i>` (values `data_of(i)`), each
/// acknowledged: (path, i) of each.
async fn write_before_the_fill(c: &zk::Client) -> Vec<(String, usize)> {
    create(c, "/df", b"").await.expect("create /df");
    let mut acked = Vec::new();
    for i in 0..50 {
        let path = format!("/df/n{i}");
        create(c, &path, &data_of(i))
            .await
            .expect("write before the fill");
        acked.push((path, i));
    }
    acked
}

fn data_of(i: usize) -> Vec<u8> {
    let mut d = format!("value {i} ").into_bytes();
    d.resize(512, b'.');
    d
}

fn logdump_verify(log_dir: &Path) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("logdump")
        .arg("--verify")
        .arg(log_dir)
        .output()
        .expect("run corral logdump");
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A `.tmp` file in the log directory other than a spare segment the writer makes ahead
/// (`log.next.<n>.tmp`): a segment whose creation did not finish.
fn is_unfinished_segment(name: &str) -> bool {
    name.ends_with(".tmp") && !corral::storage::txn_log::layout::is_spare_segment_name(name)
}

/// Every acknowledged node holds its data; the refused ones do not exist.
async fn check_nodes(c: &zk::Client, acked: &[(String, usize)], refused: &[String]) {
    for (path, i) in acked {
        let got = tokio::time::timeout(STEP, c.get_data(path))
            .await
            .expect("read in time")
            .unwrap_or_else(|e| panic!("acknowledged {path} missing: {e}"));
        assert_eq!(got.0, data_of(*i), "{path}");
    }
    for path in refused {
        let got = tokio::time::timeout(STEP, c.check_stat(path))
            .await
            .expect("exists in time")
            .expect("exists");
        assert!(got.is_none(), "refused {path} exists");
    }
}

/// Twice, one scenario after the other (one loop device and one server at a time): the log
/// runs out of room when its `preAllocSize` segment is full and the next one cannot be
/// made, without snapshots and then with one every 10–20 txns (on the data directory's own
/// file system, while the log's is full). A segment is never extended, so both fail making
/// a new segment, where the unfinished `log.tmp` must be removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_log_disk_refuses_writes_and_recovers_without_a_restart() {
    full_disk_scenario("").await;
    full_disk_scenario("snapCount=20\n").await;
}

async fn full_disk_scenario(extra: &str) {
    let fs = match LoopFs::create() {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let log_dir = fs.mount.join("log");
    // Declared after `fs`, so the server is stopped before the file system is unmounted.
    let mut server = TestServer::start(&format!(
        "dataLogDir={}\npreAllocSize={PRE_ALLOC_KB}\n{extra}",
        log_dir.display()
    ));
    let hosts = server.hosts();
    let c = connect(&hosts).await;
    let mut acked = write_before_the_fill(&c).await;
    let mut refused: Vec<String> = Vec::new();
    let mut next = acked.len();

    // Fill the log's file system; writes go on until the log needs a block.
    let filler = fs.mount.join("filler");
    let filled = fill(&filler);
    let filled_at = Instant::now();
    let acked_before_fill = acked.len();
    let first_refusal = loop {
        assert!(
            filled_at.elapsed() < Duration::from_secs(60),
            "no write refused within 60 s of the fill ({} acknowledged since)",
            acked.len() - acked_before_fill
        );
        let path = format!("/df/n{next}");
        let started = Instant::now();
        match create(&c, &path, &data_of(next)).await {
            Ok(()) => acked.push((path, next)),
            Err(zk::Error::UnexpectedErrorCode(-1)) => {
                refused.push(path);
                break started.elapsed();
            }
            Err(e) => panic!(
                "write failed with {e} instead of SystemError (-1); server running: {}\n{}",
                server.is_running(),
                server.log()
            ),
        }
        next += 1;
    };
    let fill_to_refusal = filled_at.elapsed();
    let acked_after_fill = acked.len() - acked_before_fill;
    next += 1;

    // Refusing: up, reads answered, later writes fail fast with the same error.
    assert!(server.is_running(), "the server exited: {}", server.log());
    let log = server.log();
    assert!(
        log.contains("log disk full; refusing writes until space returns")
            && log.contains("No space left on device"),
        "{log}"
    );
    let failed_on_tmp = log
        .lines()
        .any(|l| l.contains("log disk full") && l.contains("log.tmp: No space"));
    assert!(failed_on_tmp, "{log}");
    let tmp_left = std::fs::read_dir(log_dir.join("version-2"))
        .expect("log dir")
        .filter_map(|e| e.ok())
        .any(|e| is_unfinished_segment(&e.file_name().to_string_lossy()));
    assert!(!tmp_left, "an unfinished log.tmp was left");
    let mut fast_fail_max = Duration::ZERO;
    for _ in 0..20 {
        let path = format!("/df/n{next}");
        let started = Instant::now();
        let r = create(&c, &path, &data_of(next)).await;
        assert!(
            matches!(r, Err(zk::Error::UnexpectedErrorCode(-1))),
            "{path}: {r:?}"
        );
        fast_fail_max = fast_fail_max.max(started.elapsed());
        refused.push(path);
        next += 1;
    }
    assert!(
        fast_fail_max < Duration::from_millis(500),
        "a refusal took {fast_fail_max:?}"
    );
    check_nodes(&c, &acked, &refused).await;
    let children = c.list_children("/df").await.expect("list");
    assert_eq!(children.len(), acked.len());
    tokio::time::timeout(STEP, c.sync("/df"))
        .await
        .expect("sync in time")
        .expect("a sync needs no log write: answered while full");
    let srvr = server.four_letter("srvr").unwrap_or_default();
    assert!(srvr.contains("Mode: standalone"), "{srvr}");
    // A new session needs a write: its connection is closed, the client keeps trying.
    let refused_session =
        tokio::time::timeout(Duration::from_secs(3), zk::Client::connect(&hosts)).await;
    assert!(
        !matches!(refused_session, Ok(Ok(_))),
        "a session was created while the log disk is full"
    );
    let (ok, out) = logdump_verify(&log_dir.join("version-2"));
    assert!(ok, "logdump --verify while full: {out}");
    // Still full after a few probes: still refused, still up.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let path = format!("/df/n{next}");
    let r = create(&c, &path, &data_of(next)).await;
    assert!(
        matches!(r, Err(zk::Error::UnexpectedErrorCode(-1))),
        "{r:?}"
    );
    refused.push(path);
    next += 1;
    assert!(server.is_running(), "the server exited: {}", server.log());

    // Space returns: writes are accepted again, same process.
    std::fs::remove_file(&filler).expect("remove the filler");
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let freed_at = Instant::now();
    let mut refused_after_free = 0;
    loop {
        assert!(
            freed_at.elapsed() < Duration::from_secs(15),
            "writes still refused 15 s after the space returned: {}",
            server.log()
        );
        let path = format!("/df/n{next}");
        match create(&c, &path, &data_of(next)).await {
            Ok(()) => {
                acked.push((path, next));
                next += 1;
                break;
            }
            Err(zk::Error::UnexpectedErrorCode(-1)) => {
                refused.push(path);
                refused_after_free += 1;
                next += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("write after the space returned: {e}\n{}", server.log()),
        }
    }
    let free_to_accepted = freed_at.elapsed();
    assert!(server.is_running(), "the server exited: {}", server.log());
    assert!(
        server
            .log()
            .contains("log disk has room again; accepting writes"),
        "{}",
        server.log()
    );
    for _ in 0..100 {
        let path = format!("/df/n{next}");
        create(&c, &path, &data_of(next))
            .await
            .expect("write after recovery");
        acked.push((path, next));
        next += 1;
    }
    check_nodes(&c, &acked, &refused).await;
    drop(c);
    let (ok, out) = logdump_verify(&log_dir.join("version-2"));
    assert!(ok, "logdump --verify after recovery: {out}");

    let lines: Vec<String> = server
        .log()
        .lines()
        .filter(|l| l.contains("log disk") || l.contains("tree rebuilt"))
        .map(String::from)
        .collect();
    println!("server log:\n{}", lines.join("\n"));
    // Durable: the same after kill -9.
    server.crash_and_restart();
    let c = connect(&hosts).await;
    check_nodes(&c, &acked, &refused).await;
    let children = c.list_children("/df").await.expect("list");
    assert_eq!(children.len(), acked.len());
    println!(
        "disk full ({extra:?}): filler {filled} bytes; {acked_after_fill} writes acknowledged after the fill; \
         first refusal {fill_to_refusal:?} after the fill (that write answered in {first_refusal:?}); \
         refusals while full took at most {fast_fail_max:?}; first write accepted \
         {free_to_accepted:?} after the space returned ({refused_after_free} refused meanwhile); \
         {} acknowledged, {} refused, all checked after kill -9",
        acked.len(),
        refused.len()
    );
    drop(c);
    drop(server);
    drop(fs);
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Member {
    Follower,
    Leader,
}

/// One scenario after the other: the full member is a follower (server 1 of a fresh
/// ensemble; the fresh election makes server 3 leader), then the leader (server 3).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_with_a_full_log_disk_leaves_the_ensemble_and_rejoins_without_a_restart() {
    cluster_scenario(Member::Follower).await;
    cluster_scenario(Member::Leader).await;
}

/// A create through `c`: `Ok(true)` acknowledged, `Ok(false)` lost with its connection or
/// unanswered within [`STEP`] (the ensemble may be electing: it may have been applied).
async fn create_in_ensemble(c: &zk::Client, path: &str, data: &[u8]) -> Result<bool, zk::Error> {
    match tokio::time::timeout(STEP, c.create(path, data, &OPEN)).await {
        Ok(Ok(_)) => Ok(true),
        Ok(Err(zk::Error::ConnectionLoss | zk::Error::Timeout)) | Err(_) => Ok(false),
        Ok(Err(e)) => Err(e),
    }
}

async fn cluster_scenario(member: Member) {
    let fs = match LoopFs::create() {
        Ok(fs) => fs,
        Err(why) => {
            println!("skipped: {why}");
            return;
        }
    };
    let full = match member {
        Member::Follower => 1,
        Member::Leader => 3,
    };
    let others: Vec<usize> = (1..=3).filter(|&n| n != full).collect();
    let log_dir = fs.mount.join("log");
    // Declared after `fs`, so the servers are stopped before the file system is unmounted.
    let mut cluster = TestCluster::configure(3, 0);
    cluster.add_node_config(
        full,
        &format!(
            "dataLogDir={}\npreAllocSize={PRE_ALLOC_KB}",
            log_dir.display()
        ),
    );
    for n in 1..=3 {
        cluster.start_node(n);
    }
    let modes = cluster.wait_modes(Instant::now() + Duration::from_secs(60));
    // A fresh ensemble elects its highest id.
    let leader = cluster.leader();
    assert_eq!(leader, 3, "{modes:?}");
    let others_hosts = others
        .iter()
        .map(|&n| cluster.client_addr(n))
        .collect::<Vec<_>>()
        .join(",");
    let c = connect(&others_hosts).await;
    let mut acked = write_before_the_fill(&c).await;
    let mut unknown = 0usize;
    let mut next = acked.len();

    // Fill the member's log file system; writes go on until its log needs a block.
    let filler = fs.mount.join("filler");
    let filled = fill(&filler);
    let filled_at = Instant::now();
    let acked_before_fill = acked.len();
    const LEFT: &str = "log disk full; leaving the ensemble until space returns";
    while !cluster.log(full).contains(LEFT) {
        assert!(
            filled_at.elapsed() < Duration::from_secs(60),
            "server {full} did not leave within 60 s of the fill ({} writes acknowledged since)\n{}",
            acked.len() - acked_before_fill,
            cluster.log_tails()
        );
        let path = format!("/df/n{next}");
        match create_in_ensemble(&c, &path, &data_of(next)).await {
            Ok(true) => acked.push((path, next)),
            Ok(false) => {
                assert_eq!(member, Member::Leader, "a write failed: {path}");
                unknown += 1;
            }
            Err(e) => panic!("{path}: {e}"),
        }
        next += 1;
    }
    let fill_to_left = filled_at.elapsed();
    let acked_after_fill = acked.len() - acked_before_fill;
    assert!(cluster.is_running(full), "server {full} exited");

    // The other two accept writes (after electing a leader, if the full one led).
    let left_at = Instant::now();
    let mut writes_while_full = 0;
    let mut first_write_while_full: Option<Duration> = None;
    while writes_while_full < 30 {
        assert!(
            left_at.elapsed() < Duration::from_secs(60),
            "the other two servers did not accept 30 writes within 60 s\n{}",
            cluster.log_tails()
        );
        let path = format!("/df/n{next}");
        match create_in_ensemble(&c, &path, &data_of(next)).await {
            Ok(true) => {
                acked.push((path, next));
                writes_while_full += 1;
                first_write_while_full.get_or_insert(left_at.elapsed());
            }
            Ok(false) => {
                unknown += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => panic!("{path}: {e}"),
        }
        next += 1;
    }
    if member == Member::Follower {
        assert_eq!(unknown, 0, "writes failed while a follower was out");
    }
    let new_leader = cluster.leader();
    assert_ne!(new_leader, full);
    // Out of the ensemble: not serving, never leader, through several probes.
    for _ in 0..10 {
        let srvr = cluster.four_letter(full, "srvr").unwrap_or_default();
        assert!(srvr.contains(NOT_SERVING), "server {full}: {srvr}");
        assert!(cluster.is_running(full), "server {full} exited");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let log = cluster.log(full);
    assert!(log.contains("No space left on device"), "{log}");
    assert!(!log.contains("exiting"), "{log}");
    let (ok, out) = logdump_verify(&log_dir.join("version-2"));
    assert!(ok, "logdump --verify while full: {out}");
    let tmp_left = std::fs::read_dir(log_dir.join("version-2"))
        .expect("log dir")
        .filter_map(|e| e.ok())
        .any(|e| is_unfinished_segment(&e.file_name().to_string_lossy()));
    assert!(!tmp_left, "an unfinished log.tmp was left");

    // Space returns: the member rejoins as a follower, same process.
    std::fs::remove_file(&filler).expect("remove the filler");
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    let freed_at = Instant::now();
    while cluster.mode(full).as_deref() != Some("follower") {
        assert!(
            freed_at.elapsed() < Duration::from_secs(30),
            "server {full} not following 30 s after the space returned\n{}",
            cluster.log_tails()
        );
        assert!(cluster.is_running(full), "server {full} exited");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let free_to_following = freed_at.elapsed();
    assert_eq!(cluster.leader(), new_leader);
    assert!(
        cluster
            .log(full)
            .contains("log disk has room again; looking for a leader"),
        "{}",
        cluster.log(full)
    );
    // A write after the rejoin, then everything acknowledged read through the member.
    let path = format!("/df/n{next}");
    create(&c, &path, &data_of(next))
        .await
        .expect("write after the rejoin");
    acked.push((path, next));
    let cf = connect(&cluster.client_addr(full)).await;
    tokio::time::timeout(STEP, cf.sync("/df"))
        .await
        .expect("sync in time")
        .expect("sync");
    check_nodes(&cf, &acked, &[]).await;
    let children = cf.list_children("/df").await.expect("list");
    assert!(
        children.len() >= acked.len() && children.len() <= acked.len() + unknown,
        "{} children, {} acknowledged, {unknown} unknown",
        children.len(),
        acked.len()
    );
    let theirs = c.list_children("/df").await.expect("list");
    let (mut mine, mut theirs) = (children, theirs);
    mine.sort();
    theirs.sort();
    assert_eq!(mine, theirs, "the rejoined member differs from the others");
    drop(cf);
    drop(c);
    let (ok, out) = logdump_verify(&log_dir.join("version-2"));
    assert!(ok, "logdump --verify after the rejoin: {out}");
    let lines: Vec<String> = cluster
        .log(full)
        .lines()
        .filter(|l| l.contains("log disk") || l.contains("tree rebuilt") || l.contains("leaving"))
        .map(String::from)
        .collect();
    println!("server {full} log:\n{}", lines.join("\n"));
    println!(
        "disk full on the {member:?} (server {full}): filler {filled} bytes; \
         {acked_after_fill} writes acknowledged after the fill; left the ensemble {fill_to_left:?} \
         after the fill; first write accepted by the other two {first_write_while_full:?} after \
         it left ({unknown} writes with an unknown outcome); following again \
         {free_to_following:?} after the space returned; {} acknowledged, all read through it",
        acked.len()
    );
    drop(cluster);
    drop(fs);
}
