//! The power-loss check over many seeds, the disk model's own rules, and the simulated
//! writer against the real one byte for byte.

use super::*;
use crate::storage::epoch::write_atomically_in;
use crate::storage::fs::Fs;
use crate::storage::tests::support::{run, TempDir, Workload};
use crate::storage::txn_log::{list_segments, LogOptions, LogWriter};
use crate::tree::TxnRecord;
use std::path::{Path, PathBuf};

/// Seeds run by default: a few seconds in release on a loaded 2-core machine (about 10 ms a
/// seed); a debug build runs a tenth of them.
const SEEDS_DEFAULT: u64 = if cfg!(debug_assertions) { 40 } else { 400 };

/// `CORRAL_SIM_SEED=n`: that seed only; `CORRAL_SIM_SEEDS=n`: seeds 0..n.
fn seeds() -> Vec<u64> {
    let var = |name| {
        std::env::var(name).ok().map(|v| {
            v.trim()
                .parse::<u64>()
                .unwrap_or_else(|_| panic!("{name}={v:?}"))
        })
    };
    if let Some(seed) = var("CORRAL_SIM_SEED") {
        return vec![seed];
    }
    (0..var("CORRAL_SIM_SEEDS").unwrap_or(SEEDS_DEFAULT)).collect()
}

fn replay_line(seed: u64) -> String {
    format!("CORRAL_SIM_SEED={seed} cargo test --release --lib storage::sim -- --nocapture")
}

#[test]
fn sim_power_loss_seeds() {
    let seeds = seeds();
    let single = seeds.len() == 1;
    let started = std::time::Instant::now();
    let mut total = PowerLossOutcome::default();
    for &seed in &seeds {
        match sim_power_loss(seed) {
            Ok(o) => {
                if single {
                    println!("{o:#?}");
                }
                total.cycles += o.cycles;
                total.records_acknowledged += o.records_acknowledged;
                total.records_recovered += o.records_recovered;
                total.corruptions_refused += o.corruptions_refused;
                total.recoveries_from_snapshot += o.recoveries_from_snapshot;
                total.snapshots_vanished += o.snapshots_vanished;
                total.crashes_during_recovery += o.crashes_during_recovery;
                total.pages_torn += o.pages_torn;
                total.dir_ops_lost += o.dir_ops_lost;
            }
            Err(e) => panic!(
                "power-loss check failed for seed {seed}: {e}\nreplay: {}",
                replay_line(seed)
            ),
        }
    }
    let t = &total;
    println!(
        "sim_power_loss: {} seeds, {} crash cycles in {:.1}s: {} records acknowledged, {} recovered; \
         {} recoveries from a snapshot, {} snapshots vanished (rename not durable), \
         {} crashes during recovery, {} torn pages, {} directory operations lost, \
         {} corruptions refused",
        seeds.len(),
        t.cycles,
        started.elapsed().as_secs_f64(),
        t.records_acknowledged,
        t.records_recovered,
        t.recoveries_from_snapshot,
        t.snapshots_vanished,
        t.crashes_during_recovery,
        t.pages_torn,
        t.dir_ops_lost,
        t.corruptions_refused
    );
    // The check exercised what it claims to (over the default seeds of a release build).
    if seeds.len() == 400 && seeds[0] == 0 {
        assert!(
            t.records_recovered > t.records_acknowledged,
            "unacknowledged records landed"
        );
        assert!(
            t.corruptions_refused as u64 * 2 > t.cycles,
            "corruption checked on most cycles"
        );
        assert!(t.recoveries_from_snapshot > 0 && t.snapshots_vanished > 0);
        assert!(t.pages_torn > 0 && t.crashes_during_recovery > 0 && t.dir_ops_lost > 0);
    }
}

/// Regression: recovery refused a state power loss alone produces. Seed 9's first crash
/// hits a multi-page unsynced write whose later page landed before an earlier one: zeros,
/// then whole records (see `txn_log::torn_evidence`). Before the fix 127 of the first 2000
/// seeds failed this way.
#[test]
fn regression_seed_9_later_page_landed_first() {
    let o = sim_power_loss(9).unwrap_or_else(|e| panic!("{e}\nreplay: {}", replay_line(9)));
    assert!(o.records_recovered >= o.records_acknowledged);
    assert!(o.pages_lost > 0);
}

fn p(s: &str) -> PathBuf {
    PathBuf::from(s)
}

#[test]
fn unsynced_writes_may_be_lost_synced_ones_survive() {
    let (mut lost, mut kept) = (0, 0);
    for seed in 0..64 {
        let mut d = SimDisk::new();
        let ino = d.create(&p("/d/f")).unwrap();
        d.sync_dir(Path::new("/d")).unwrap();
        d.write(ino, 0, &[1u8; 5000]).unwrap();
        d.sync_file(ino).unwrap();
        d.write(ino, 5000, &[2u8; 9000]).unwrap();
        assert_eq!(
            d.read(&p("/d/f")).unwrap().len(),
            14000,
            "reads see the volatile image"
        );
        d.power_loss(&mut SimRng::new(seed));
        let after = d.read(&p("/d/f")).unwrap();
        assert_eq!(after[..5000], [1u8; 5000], "synced bytes survive");
        // Every sector of the unsynced write is either the new bytes or zeros.
        for (i, chunk) in after[5000..].chunks(1).enumerate() {
            assert!(chunk[0] == 2 || chunk[0] == 0, "byte {}", 5000 + i);
        }
        for s in (5000..14000).step_by(512) {
            let sector_end = ((s / 512 + 1) * 512).min(14000);
            let part = after.get(s..sector_end.min(after.len())).unwrap_or(&[]);
            assert!(
                part.iter().all(|&b| b == 2) || part.iter().all(|&b| b == 0),
                "sector at {s} is whole or absent"
            );
        }
        if after.len() < 14000 || after[5000..].contains(&0) {
            lost += 1;
        }
        if after.len() == 14000 && !after[5000..].contains(&0) {
            kept += 1;
        }
    }
    assert!(lost > 0 && kept > 0, "lost {lost} kept {kept}");
}

#[test]
fn a_rename_needs_the_directory_sync() {
    let (mut vanished, mut stayed) = (0, 0);
    for seed in 0..64 {
        let mut d = SimDisk::new();
        d.write_new_synced(&p("/d/a.tmp"), b"new").unwrap();
        d.rename(&p("/d/a.tmp"), &p("/d/a")).unwrap();
        d.power_loss(&mut SimRng::new(seed));
        match d.read(&p("/d/a")) {
            Ok(b) => {
                assert_eq!(b, b"new");
                stayed += 1;
            }
            Err(_) => vanished += 1,
        }
        // After a directory sync it always stays.
        let mut d = SimDisk::new();
        d.write_new_synced(&p("/d/a.tmp"), b"new").unwrap();
        d.rename(&p("/d/a.tmp"), &p("/d/a")).unwrap();
        d.sync_dir(Path::new("/d")).unwrap();
        d.power_loss(&mut SimRng::new(seed));
        assert_eq!(d.read(&p("/d/a")).unwrap(), b"new");
    }
    assert!(
        vanished > 0 && stayed > 0,
        "vanished {vanished} stayed {stayed}"
    );
}

/// `write_atomically_in` at every crash point: the old file or the new one, whole; after
/// it returned, the new one. The same steps without the directory sync lose a returned
/// write on some seeds (what the check would catch if the sync were dropped).
#[test]
fn atomic_replace_survives_a_crash_at_every_step() {
    let path = p("/d/currentEpoch");
    let mut lost_without_dir_sync = 0;
    for seed in 0..200u64 {
        for crash_at in 0..5 {
            let mut d = SimDisk::new();
            write_atomically_in(&mut d, &path, b"1\n").unwrap();
            d.crash_after(crash_at);
            let returned = write_atomically_in(&mut d, &path, b"2\n").is_ok();
            d.power_loss(&mut SimRng::new(seed));
            let now = d.read(&path).unwrap();
            assert!(
                now == b"1\n" || now == b"2\n",
                "seed {seed} crash {crash_at}: {now:?}"
            );
            if returned {
                assert_eq!(now, b"2\n");
            }
        }
        let mut d = SimDisk::new();
        d.write_new_synced(&p("/d/x.tmp"), b"x").unwrap();
        d.rename(&p("/d/x.tmp"), &p("/d/x")).unwrap();
        d.power_loss(&mut SimRng::new(seed));
        lost_without_dir_sync += d.read(&p("/d/x")).is_err() as usize;
    }
    assert!(lost_without_dir_sync > 0);
}

/// The simulated writer leaves the same files, with the same bytes, as the real one. (The
/// real writer lets a roll asked for wait while its spare is being made; here each roll
/// waits for the spare first, so it happens where the simulated writer's does.)
#[test]
fn simulated_writer_writes_the_real_writers_bytes() {
    for (seed, segment_bytes_max, pre_alloc_bytes) in [
        (1u64, Some(3000u64), 4096u64),
        (2, None, 8192),
        (3, Some(20_000), 4096),
    ] {
        let opts = LogOptions {
            pre_alloc_bytes,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            segment_bytes_max,
        };
        let mut w = Workload::new(seed);
        let batches: Vec<Vec<TxnRecord>> = (0..25)
            .map(|i| (0..(i % 7 + 1)).map(|_| w.next()).collect())
            .collect();
        let dir = TempDir::new("sim-vs-real");
        let (d, o, b) = (dir.0.clone(), opts.clone(), batches.clone());
        run(move || async move {
            let mut writer = LogWriter::open(&d, o, 0).await.unwrap();
            for (i, batch) in b.iter().enumerate() {
                writer.append(batch);
                writer.sync().await.unwrap();
                if i % 9 == 8 {
                    writer.spare_ready().await;
                    writer.roll();
                }
            }
            writer.close().await.unwrap();
        });
        let mut disk = SimDisk::new();
        let sim_dir = p("/sim/log");
        let mut sim = SimLogWriter::open(&mut disk, &sim_dir, opts, 0).unwrap();
        for (i, batch) in batches.iter().enumerate() {
            sim.append(batch);
            sim.sync(&mut disk).unwrap();
            if i % 9 == 8 {
                sim.roll();
            }
        }
        let real = list_segments(&dir.0).unwrap();
        let simulated = crate::storage::txn_log::list_segments_in(&disk, &sim_dir).unwrap();
        assert!(real.len() > 1, "seed {seed}: several segments");
        assert_eq!(
            real.iter().map(|(z, _)| *z).collect::<Vec<_>>(),
            simulated.iter().map(|(z, _)| *z).collect::<Vec<_>>()
        );
        for ((_, rp), (_, sp)) in real.iter().zip(&simulated) {
            let r = std::fs::read(rp).unwrap();
            let s = disk.read(sp).unwrap();
            assert!(r == s, "{}", rp.display());
            assert_eq!(r.len() % pre_alloc_bytes as usize, 0);
            assert_eq!(s.len() % pre_alloc_bytes as usize, 0);
        }
    }
}
