#![no_main]
//! See `corral_fuzz::config` (fuzz/src/lib.rs) for what this target feeds where.
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let dir = DIR.get_or_init(|| corral_fuzz::scratch_dir("zoo_cfg"));
    corral_fuzz::config::run(data, dir)
});
