//! Every committed fuzz seed (`fuzz/corpus/<target>/`) through its target's body
//! (`fuzz/src/lib.rs`, compiled here as a module of this test), so that `cargo test`
//! proves on every run that the fuzz targets still build against the current API and that
//! no seed panics or breaks a round trip the target checks. The seeds are real inputs
//! captured from real runs (docs/reliability.md, "Fuzzing"). Finding new inputs is
//! `scripts/fuzz.sh`'s job (cargo-fuzz, libFuzzer); this is the regression half of it.

#[path = "../fuzz/src/lib.rs"]
mod corral_fuzz;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// A target's body, as `fuzz/fuzz_targets/<name>.rs` calls it.
type Body = fn(&[u8]);

/// Every target: its name (its corpus directory, `fuzz/corpus/<name>/`) and its body.
const TARGETS: [(&str, Body); 6] = [
    ("client_frames", corral_fuzz::client::run),
    ("quorum_wire", corral_fuzz::quorum::run),
    ("zoo_cfg", zoo_cfg),
    ("log_recovery", corral_fuzz::storage::run_log),
    ("snapshot_load", corral_fuzz::storage::run_snapshot),
    ("zkcli_command", corral_fuzz::cli::run),
];

/// The zoo_cfg target writes its files into a scratch directory (removed after the replay).
static ZOO_CFG_DIR: OnceLock<PathBuf> = OnceLock::new();

fn zoo_cfg(data: &[u8]) {
    let dir = ZOO_CFG_DIR.get_or_init(|| corral_fuzz::scratch_dir("zoo_cfg-replay"));
    corral_fuzz::config::run(data, dir);
}

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

/// Every seed of every target; fails naming each seed that panicked.
#[test]
fn every_seed_replays_without_a_panic() {
    let mut failed = Vec::new();
    for (target, body) in TARGETS {
        for path in seeds(target) {
            let data = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            if std::panic::catch_unwind(|| body(&data)).is_err() {
                failed.push(format!("{target}: {}", path.display()));
            }
        }
    }
    if let Some(dir) = ZOO_CFG_DIR.get() {
        let _ = std::fs::remove_dir_all(dir);
    }
    assert!(failed.is_empty(), "seeds that panicked: {failed:#?}");
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
    let mut replayed: Vec<String> = TARGETS.iter().map(|(t, _)| t.to_string()).collect();
    replayed.sort();
    assert_eq!(
        dirs, replayed,
        "fuzz/corpus/* against the targets replayed here"
    );
}
