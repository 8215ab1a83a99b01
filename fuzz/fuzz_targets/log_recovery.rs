#![no_main]
//! See `corral_fuzz::storage` (fuzz/src/lib.rs) for what this target feeds where.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| corral_fuzz::storage::run_log(data));
