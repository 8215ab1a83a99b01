//! Crash test with real processes: a child (this test binary re-run with
//! `CORRAL_CRASH_CHILD=<dir>`, as sled's crash test does) recovers the log, then appends and
//! syncs batches in a bounded loop, printing `synced <zxid>` after each sync returns. The
//! parent `kill -9`s it after a random delay (anywhere in the pipeline: encoding, writing,
//! mid-fdatasync, creating or extending a segment), recovers the log, and checks:
//! every reported-synced record is there; the records are exactly zxid 1, 2, 3, ... with
//! the content the child wrote for each zxid (nothing out of order, nothing invented).
//! Several rounds continue the same log, so later rounds also recover from earlier kills.
//!
//! `CORRAL_CRASH_SEED=<n>` replays a run; the seed is printed first.

use corral::storage::recovery::{recover_log, RecoveryMode};
use corral::storage::txn_log::{LogOptions, LogWriter};
use corral::tree::{Txn, TxnRecord};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

const CHILD_ENV: &str = "CORRAL_CRASH_CHILD";
/// The child stops by itself after this many records (bounds a run that is never killed).
const CHILD_RECORDS_MAX: i64 = 200_000;
const ROUNDS: usize = 8;

/// The record the child writes for `zxid`: content is a function of the zxid, so the
/// parent can check every byte it recovers.
fn record_for(zxid: i64) -> TxnRecord {
    let len = (zxid % 300) as usize;
    TxnRecord {
        zxid,
        time_ms: 1_700_000_000_000 + zxid,
        session_id: 0x0100_0000_0000_0001,
        cxid: zxid as i32,
        txn: Txn::SetData {
            path: Arc::from(format!("/crash/n{}", zxid % 17).as_str()),
            data: Some(bytes::Bytes::from(vec![(zxid % 251) as u8; len])),
            version: zxid as i32,
        },
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// The child's body; a no-op unless the parent set CORRAL_CRASH_CHILD.
#[test]
fn crash_child() {
    let Some(dir) = std::env::var_os(CHILD_ENV).map(PathBuf::from) else {
        return;
    };
    let seed: u64 = std::env::var("CORRAL_CRASH_CHILD_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let recovered = recover_log(&dir, 0, RecoveryMode::Repair).expect("child recovery");
    let start = recovered.last_zxid;
    corral::runtime::spawn_unpinned("crash-child", move || async move {
        let opts = LogOptions {
            pre_alloc_bytes: 64 << 10,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            segment_bytes_max: Some(256 << 10),
        };
        let mut writer = LogWriter::open(&dir, opts, start).await.expect("open");
        let mut rng = seed | 1;
        let mut zxid = start;
        while zxid < start + CHILD_RECORDS_MAX {
            let n = 1 + (xorshift(&mut rng) % 48) as i64;
            let batch: Vec<TxnRecord> = (zxid + 1..=zxid + n).map(record_for).collect();
            writer.append(&batch);
            zxid += n;
            let synced = writer.sync().await.expect("sync");
            println!("synced {synced}");
        }
    })
    .expect("executor")
    .join()
    .expect("join");
}

fn run_round(dir: &Path, seed: u64, kill_after: Duration) -> i64 {
    let mut child = Command::new(std::env::current_exe().expect("test binary"))
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(CHILD_ENV, dir)
        .env("CORRAL_CRASH_CHILD_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child");
    let stdout = child.stdout.take().expect("piped");
    let reader = std::thread::spawn(move || {
        let mut synced = 0i64;
        for line in std::io::BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(z) = line
                .strip_prefix("synced ")
                .and_then(|z| z.trim().parse().ok())
            {
                assert!(z > synced, "sync reports increase: {z} after {synced}");
                synced = z;
            }
        }
        synced
    });
    std::thread::sleep(kill_after);
    // SIGKILL: no destructor, no flush, whatever the child was doing.
    let _ = child.kill();
    let _ = child.wait();
    reader.join().expect("reader")
}

#[test]
fn acknowledged_records_survive_kill_9() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let seed: u64 = std::env::var("CORRAL_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(7)
        });
    println!("CORRAL_CRASH_SEED={seed}");
    let dir = std::env::temp_dir().join(format!("corral-crash-{}-{seed}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let mut rng = seed | 1;
    let started = Instant::now();
    let mut acknowledged = 0i64;
    for round in 0..ROUNDS {
        let kill_after = Duration::from_millis(20 + xorshift(&mut rng) % 250);
        let synced = run_round(&dir, xorshift(&mut rng), kill_after);
        acknowledged = acknowledged.max(synced);
        let r = recover_log(&dir, 0, RecoveryMode::Repair)
            .unwrap_or_else(|e| panic!("seed {seed} round {round}: recovery refused: {e}"));
        assert!(
            r.last_zxid >= acknowledged,
            "seed {seed} round {round}: acknowledged {acknowledged}, recovered only {}",
            r.last_zxid
        );
        for (i, rec) in r.records.iter().enumerate() {
            assert_eq!(
                rec,
                &record_for(i as i64 + 1),
                "seed {seed} round {round}: record {i}"
            );
        }
        println!(
            "round {round}: killed after {kill_after:?}, acknowledged {synced}, recovered {} ({} segments, torn: {})",
            r.last_zxid,
            r.segments.len(),
            r.torn.is_some()
        );
    }
    assert!(acknowledged > 0, "the child made progress");
    assert!(started.elapsed() < Duration::from_secs(120), "bounded");
    let _ = std::fs::remove_dir_all(&dir);
}
