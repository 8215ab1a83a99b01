//! `corral import-zk`: converts an Apache ZooKeeper 3.8 data directory into a Corral one
//! (the work is `storage::zk_import`; this prints the summary). Exit 0 on success, 1 when
//! the input cannot be imported or the destination is refused, 2 on usage errors.

use crate::storage::zk_import::{
    self, check_destination, zk_version_dir, Destination, DigestCheck, ReadOptions,
};
use std::path::PathBuf;

/// Arguments of `corral import-zk`.
#[derive(clap::Args, Debug)]
pub struct ImportZkArgs {
    /// Replace Corral data already in DATA_DIR / DATALOG_DIR (their snapshot.*, log.* and
    /// epoch files are deleted).
    #[arg(long)]
    pub force: bool,
    /// ZooKeeper's dataLogDir, when its logs are not in ZK_DATA_DIR (the directory
    /// holding version-2/, or version-2 itself).
    #[arg(long, value_name = "DIR")]
    pub zk_datalog_dir: Option<PathBuf>,
    /// Do not compare ZooKeeper's recorded tree digest with the replayed tree.
    #[arg(long)]
    pub skip_digest_check: bool,
    /// ZooKeeper's dataDir: the directory that holds version-2/, or that version-2
    /// directory itself. Read only.
    #[arg(value_name = "ZK_DATA_DIR")]
    pub zk_data_dir: PathBuf,
    /// Corral's dataDir: the snapshot is written to its version-2/.
    #[arg(value_name = "DATA_DIR")]
    pub data_dir: PathBuf,
    /// Corral's dataLogDir, when it differs from DATA_DIR (checked for old Corral logs).
    #[arg(value_name = "DATALOG_DIR")]
    pub data_log_dir: Option<PathBuf>,
}

fn hex(z: i64) -> String {
    format!("0x{:x}", z as u64)
}

pub fn run(args: ImportZkArgs) -> i32 {
    let snap_dir = zk_version_dir(&args.zk_data_dir);
    let log_dir = args
        .zk_datalog_dir
        .as_deref()
        .map(zk_version_dir)
        .unwrap_or_else(|| snap_dir.clone());
    let source = ReadOptions {
        snap_dir,
        log_dir,
        check_digest: !args.skip_digest_check,
    };
    let dest = Destination {
        data_log_dir: args
            .data_log_dir
            .clone()
            .unwrap_or_else(|| args.data_dir.clone()),
        data_dir: args.data_dir,
        force: args.force,
    };
    let fail = |e: zk_import::ImportError| {
        eprintln!("corral import-zk: {e}");
        1
    };
    if let Err(e) = check_destination(&dest, &source) {
        return fail(e);
    }
    let imported = match zk_import::read(&source) {
        Ok(i) => i,
        Err(e) => return fail(e),
    };
    println!(
        "snapshot: {} (zxid {})",
        imported.snapshot.display(),
        hex(imported.snapshot_zxid)
    );
    for (file, why) in &imported.skipped_snapshots {
        println!("skipped invalid snapshot: {}: {why}", file.display());
    }
    if imported.logs.is_empty() {
        println!("logs replayed: none");
    }
    for (file, n) in &imported.logs {
        println!("log replayed: {} ({n} txns)", file.display());
    }
    for t in &imported.torn {
        println!(
            "torn last record ignored: {} offset {} ({})",
            t.file.display(),
            t.offset,
            t.reason
        );
    }
    println!(
        "txns: {} ({} already in the snapshot)",
        imported.txns, imported.txns_ignored
    );
    if imported.orphan_ephemerals_removed > 0 {
        println!(
            "ephemerals of closed sessions removed: {}",
            imported.orphan_ephemerals_removed
        );
    }
    match imported.digest {
        DigestCheck::Verified { zxid } => println!("digest: matches ZooKeeper's at {}", hex(zxid)),
        DigestCheck::NotRecorded => println!("digest: none recorded"),
        DigestCheck::Skipped => println!("digest: not checked"),
    }
    let written = match zk_import::write(imported, &dest, &source) {
        Ok(w) => w,
        Err(e) => return fail(e),
    };
    for f in &written.replaced {
        println!("replaced: {}", f.display());
    }
    println!("znodes: {}", written.nodes);
    println!("sessions: {}", written.sessions);
    println!("last zxid: {}", hex(written.zxid));
    println!("wrote: {}", written.snapshot.display());
    0
}
