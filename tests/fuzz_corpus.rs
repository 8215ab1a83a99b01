//! Every committed fuzz seed (`fuzz/corpus/<target>/`) through its target's body
//! (`fuzz/src/lib.rs`, compiled here as a module of this test), so that `cargo test`
//! proves on every run that the fuzz targets still build against the current API and that
//! no seed panics or breaks a round trip the target checks. The seeds are real inputs
//! captured from real runs (docs/reliability.md, "Fuzzing"). Finding new inputs is
//! `scripts/fuzz.sh`'s job (cargo-fuzz, libFuzzer); this is the regression half of it.

#[path = "../fuzz/src/lib.rs"]
mod corral_fuzz;

use std::path::{Path, PathBuf};

/// The targets replayed below, one test each.
const TARGETS: [&str; 6] = [
    "client_frames",
    "quorum_wire",
    "zoo_cfg",
    "log_recovery",
    "snapshot_load",
    "zkcli_command",
];

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz")
        .join("corpus")
}

fn seeds(target: &str) -> Vec<PathBuf> {
    let dir = corpus_dir().join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
        .map(|entry| entry.expect("a corpus directory entry").path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

/// Runs `body` on every seed of `target`; fails naming each seed that panicked.
fn replay(target: &str, body: impl Fn(&[u8])) {
    let mut failed = Vec::new();
    let all = seeds(target);
    for path in &all {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| body(&data))).is_err() {
            failed.push(path.display().to_string());
        }
    }
    assert!(
        failed.is_empty(),
        "{target}: {} of {} seeds panicked: {failed:?}",
        failed.len(),
        all.len()
    );
}

#[test]
fn client_frames_seeds() {
    replay("client_frames", corral_fuzz::client::run);
}

#[test]
fn quorum_wire_seeds() {
    replay("quorum_wire", corral_fuzz::quorum::run);
}

#[test]
fn zoo_cfg_seeds() {
    let dir = corral_fuzz::scratch_dir("zoo_cfg-replay");
    let outcome = std::panic::catch_unwind(|| {
        replay("zoo_cfg", |data| corral_fuzz::config::run(data, &dir));
    });
    let _ = std::fs::remove_dir_all(&dir);
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

/// A new target's corpus is not left out of the replay unnoticed.
#[test]
fn every_corpus_directory_is_replayed() {
    let mut dirs: Vec<String> = std::fs::read_dir(corpus_dir())
        .expect("fuzz/corpus")
        .map(|entry| entry.expect("a corpus entry").path())
        .filter(|path| path.is_dir())
        .filter_map(|path| path.file_name()?.to_str().map(str::to_owned))
        .collect();
    dirs.sort();
    let mut replayed: Vec<String> = TARGETS.iter().map(|t| t.to_string()).collect();
    replayed.sort();
    assert_eq!(
        dirs, replayed,
        "fuzz/corpus/* against the targets replayed here"
    );
}

#[test]
fn log_recovery_seeds() {
    replay("log_recovery", corral_fuzz::storage::run_log);
}

#[test]
fn snapshot_load_seeds() {
    replay("snapshot_load", corral_fuzz::storage::run_snapshot);
}

#[test]
fn zkcli_command_seeds() {
    replay("zkcli_command", corral_fuzz::cli::run);
}
