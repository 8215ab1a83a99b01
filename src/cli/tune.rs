//! `corral tune`: measure the host, say which tuning profile (`tuning/*.cfg`) fits it and
//! why, and write a zoo.cfg that includes it; `corral tune --check CFG` warns about settings
//! of an existing config that fight the hardware.
//!
//! Measurements (blocking std I/O, except the busy sync loops; this is a CLI tool):
//! - fdatasync latency on the dataLogDir's device: a probe file is zero-filled first (as the
//!   transaction log is, so a sync changes no metadata), then blocks are written and synced
//!   in a loop, overwriting the file from the start when it is full, for `--duration-s`
//!   each: 4 KiB (one record) and 64 KiB (a group-commit batch) "busy", then 4 KiB "idle"
//!   (see [`SyncEngine`]: busy loops run on a spinning io_uring executor as the log does,
//!   idle ones sleep in blocking calls, which on VMs can add a CPU wake-up to every sync).
//!   Each loop also stops after `SYNC_SAMPLES_MAX` syncs. The file is removed afterwards.
//! - cores (the process's CPU set, `/sys/devices/system/cpu/online`), NUMA nodes
//!   (`/sys/devices/system/node`), memory (`/proc/meminfo`), RLIMIT_MEMLOCK, the device
//!   behind the directory (`/sys/dev/block/MAJ:MIN`: name, rotational flag, model) and the
//!   file system type (`/proc/self/mountinfo`). Everything but the sync probe is best effort.
//!
//! The decision rule is [`decide`] (documented in `tuning/README.md`); the `--check` rules
//! are [`check`]. Both are pure functions of the measurements, so tests feed them made-up
//! hosts and disks.

use crate::config::{Config, Pinning};
use clap::Args;
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, Instant};

/// Longest `--duration-s` (per probe; three run): keeps the tool under a minute.
const DURATION_S_MAX: u64 = 15;
/// Most syncs one probe loop records (a tmpfs "syncs" millions of times per second).
const SYNC_SAMPLES_MAX: u64 = 200_000;
/// The probe file: zero-filled once, then overwritten in a ring.
const PROBE_FILE_BYTES: u64 = 16 << 20;
/// A single record's write.
const SMALL_BLOCK_BYTES: usize = 4 << 10;
/// A group-commit batch's write.
const BATCH_BLOCK_BYTES: usize = 64 << 10;

// The decision rule's thresholds (tuning/README.md explains each).
/// nvme: 4 KiB p50 at most this.
const NVME_P50_NS_MAX: u64 = 150_000;
/// sata-ssd: 4 KiB p50 below this (else cloud-block).
const SSD_P50_NS_MAX: u64 = 500_000;
/// hdd: 4 KiB p50 at least this, whatever the device says...
const HDD_P50_NS_MIN: u64 = 2_000_000;
/// ...or at least this on a device flagged rotational.
const HDD_ROTATIONAL_P50_NS_MIN: u64 = 1_000_000;
/// cloud-block: a 64 KiB sync at least this many times a 4 KiB one (a throttled volume).
const CLOUD_BATCH_RATIO: u64 = 3;
/// A p99 at least this many times the p50 is a long tail worth a note.
const LONG_TAIL_RATIO: u64 = 10;
/// small-vm: at most this many cores available...
const SMALL_VM_CORES_MAX: usize = 2;
/// ...or less memory than this.
const SMALL_VM_MEM_KB_MIN: u64 = 4 << 20;
/// I/O pressure (percent of the last 10 s) above which the report says the disk was busy.
const IO_PRESSURE_PCT_BUSY: f64 = 10.0;

// The `--check` thresholds.
/// preAllocSize below this (KiB) makes segments small: a roll (a new file, a directory
/// fsync) every few MiB of log.
const CHECK_PRE_ALLOC_KB_MIN: u64 = 4096;
/// snapCount below this snapshots the whole tree every few thousand writes.
const CHECK_SNAP_COUNT_MIN: u32 = 10_000;
/// corral.commit.maxWaitUs above this many times the sync p50 costs more than it saves.
const CHECK_WAIT_SYNC_RATIO: u64 = 2;
/// io memory (KiB) that holds a default log batch (`corral.commit.maxBatch` 256 records of
/// about 1 KiB); a batch larger than the ZAB executor's pool is written from a heap buffer
/// instead, an allocation per sync. Also the probe executor's pool.
const IO_MEMORY_KB_MIN: u64 = 512;

/// Locked memory a server registers with io_uring: `corral.ioMemoryKb` for the ZAB
/// executor, glommio's minimum for each shard.
fn locked_memory_kb(io_memory_kb: u32, shards: usize) -> u64 {
    u64::from(io_memory_kb) + shards as u64 * (crate::runtime::SHARD_IO_MEMORY_BYTES as u64 / 1024)
}

#[derive(Args, Debug)]
pub struct TuneArgs {
    /// The directory whose device is measured: the dataLogDir to be (it must exist). With
    /// --check, the config's dataLogDir is measured instead.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub data_log_dir: PathBuf,
    /// Seconds each fdatasync probe runs (three probes; --check runs one).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..=DURATION_S_MAX))]
    pub duration_s: u64,
    /// Write a zoo.cfg including the chosen profile here.
    #[arg(long, value_name = "CFG", conflicts_with = "check")]
    pub out: Option<PathBuf>,
    /// Overwrite --out if it exists.
    #[arg(long, requires = "out")]
    pub force: bool,
    /// dataDir written to --out (default: the measured directory).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// clientPort written to --out.
    #[arg(long, default_value_t = 2181, value_parser = clap::value_parser!(u16).range(1..))]
    pub client_port: u16,
    /// Where the profile files are (default: `tuning/` under the current directory). When
    /// the chosen profile is not found there, its keys are written into --out instead.
    #[arg(long, value_name = "DIR")]
    pub profiles_dir: Option<PathBuf>,
    /// Print the report as JSON.
    #[arg(long, conflicts_with = "check")]
    pub json: bool,
    /// Warn about settings of this zoo.cfg that fight this host (exit 0 clean, 1 warnings,
    /// 2 unreadable or invalid config).
    #[arg(long, value_name = "CFG")]
    pub check: Option<PathBuf>,
}

/// Entry point; returns the exit code.
pub fn run(args: TuneArgs) -> i32 {
    match &args.check {
        Some(cfg) => run_check(cfg, &args),
        None => run_tune(&args),
    }
}

// ---------------------------------------------------------------- profiles

/// A profile `corral tune` can choose. `pseudo-cluster.cfg` is not one: it describes how
/// nodes are deployed, not hardware, and is chosen by hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Nvme,
    SataSsd,
    CloudBlock,
    Hdd,
    SmallVm,
}

impl Profile {
    pub const ALL: [Profile; 5] = [
        Profile::Nvme,
        Profile::SataSsd,
        Profile::CloudBlock,
        Profile::Hdd,
        Profile::SmallVm,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Profile::Nvme => "nvme",
            Profile::SataSsd => "sata-ssd",
            Profile::CloudBlock => "cloud-block",
            Profile::Hdd => "hdd",
            Profile::SmallVm => "small-vm",
        }
    }

    pub fn file_name(self) -> String {
        format!("{}.cfg", self.name())
    }

    /// The profile file as shipped in `tuning/`, compiled in (for inlining and tests).
    pub fn text(self) -> &'static str {
        match self {
            Profile::Nvme => include_str!("../../tuning/nvme.cfg"),
            Profile::SataSsd => include_str!("../../tuning/sata-ssd.cfg"),
            Profile::CloudBlock => include_str!("../../tuning/cloud-block.cfg"),
            Profile::Hdd => include_str!("../../tuning/hdd.cfg"),
            Profile::SmallVm => include_str!("../../tuning/small-vm.cfg"),
        }
    }

    /// The profile's settings as the config layer reads them (on a host with this
    /// process's cores, for the default shard count).
    pub fn config(self) -> Result<Config, crate::config::ConfigError> {
        self.config_for_cores(crate::config::available_cores())
    }

    /// The profile as a standalone server on a host with `cores` cores would run it.
    pub fn config_for_cores(self, cores: usize) -> Result<Config, crate::config::ConfigError> {
        let text = format!("{}\ndataDir=profile-data\nclientPort=2181\n", self.text());
        Config::parse_for_cores(&text, Path::new(&self.file_name()), cores)
    }
}

// ---------------------------------------------------------------- measurements

/// RLIMIT_MEMLOCK (soft limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Memlock {
    Unlimited,
    Bytes(u64),
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NumaNode {
    pub id: usize,
    pub cpus: Vec<usize>,
}

/// What `corral tune` learned about the machine (everything but the disk).
#[derive(Debug, Clone, PartialEq)]
pub struct Host {
    /// `available_parallelism`: the cores this process may run on.
    pub cores_available: usize,
    /// `/sys/devices/system/cpu/online`.
    pub cpus_online: Vec<usize>,
    /// `Cpus_allowed_list` of this process (its cpuset / affinity).
    pub cpus_allowed: Vec<usize>,
    pub numa_nodes: Vec<NumaNode>,
    pub mem_total_kb: Option<u64>,
    pub mem_available_kb: Option<u64>,
    pub memlock: Memlock,
    /// Root: glommio's locked memory is not limited.
    pub root: bool,
    /// `/proc/pressure/io` "some avg10" read before the probes (which stall on I/O
    /// themselves): the share of the last 10 s in which some task waited for I/O. High
    /// means others were using the disk.
    pub io_pressure_pct: Option<f64>,
}

/// The device behind a directory.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Disk {
    pub dir: PathBuf,
    /// `st_dev` of the directory, as major:minor.
    pub dev: Option<(u32, u32)>,
    /// Whole-disk name (`nvme0n1`, `sda`, `vda`, `dm-0`).
    pub device: Option<String>,
    pub model: Option<String>,
    /// `queue/rotational`: often 1 on virtual disks, so only a hint.
    pub rotational: Option<bool>,
    pub fs_type: Option<String>,
}

/// fdatasync latency of one probe loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncStats {
    pub engine: SyncEngine,
    pub block_bytes: usize,
    pub syncs: u64,
    pub p50_ns: u64,
    pub p90_ns: u64,
    pub p99_ns: u64,
    pub max_ns: u64,
}

fn measure_host() -> Host {
    let cores_available = std::thread::available_parallelism().map_or(1, usize::from);
    let cpus_online = read_trimmed("/sys/devices/system/cpu/online")
        .and_then(|t| parse_cpu_list(&t))
        .unwrap_or_default();
    let cpus_allowed = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix("Cpus_allowed_list:"))
                .and_then(|v| parse_cpu_list(v.trim()))
        })
        .unwrap_or_default();
    let numa_nodes = read_trimmed("/sys/devices/system/node/online")
        .and_then(|t| parse_cpu_list(&t))
        .unwrap_or_default()
        .into_iter()
        .map(|id| NumaNode {
            id,
            cpus: read_trimmed(&format!("/sys/devices/system/node/node{id}/cpulist"))
                .and_then(|t| parse_cpu_list(&t))
                .unwrap_or_default(),
        })
        .collect();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Host {
        cores_available,
        cpus_online,
        cpus_allowed,
        numa_nodes,
        mem_total_kb: meminfo_kb(&meminfo, "MemTotal"),
        mem_available_kb: meminfo_kb(&meminfo, "MemAvailable"),
        memlock: memlock(),
        // SAFETY: geteuid has no preconditions and cannot fail.
        root: unsafe { libc::geteuid() } == 0,
        io_pressure_pct: io_pressure_pct(),
    }
}

/// `some avg10=12.34 avg60=...` from `/proc/pressure/io` (Linux 4.20+, PSI enabled).
fn io_pressure_pct() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/pressure/io").ok()?;
    parse_pressure(&text)
}

fn parse_pressure(text: &str) -> Option<f64> {
    let some = text.lines().find_map(|l| l.strip_prefix("some "))?;
    some.split_whitespace()
        .find_map(|field| field.strip_prefix("avg10="))?
        .parse()
        .ok()
}

fn memlock() -> Memlock {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `limit` is a valid, writable rlimit for the call to fill; RLIMIT_MEMLOCK is
    // a valid resource.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_MEMLOCK, &mut limit) };
    if rc != 0 {
        Memlock::Unknown
    } else if limit.rlim_cur == libc::RLIM_INFINITY {
        Memlock::Unlimited
    } else {
        Memlock::Bytes(limit.rlim_cur)
    }
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|t| t.trim().to_string())
}

/// `0-3,8,10-11` (the kernel's cpu list format) -> ids; `None` when malformed.
fn parse_cpu_list(text: &str) -> Option<Vec<usize>> {
    let mut out = Vec::new();
    if text.is_empty() {
        return Some(out);
    }
    for part in text.split(',') {
        let part = part.trim();
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (usize, usize) = (a.parse().ok()?, b.parse().ok()?);
                // The kernel never lists more CPUs than this; a bigger range is garbage.
                if b < a || b - a > 1 << 16 {
                    return None;
                }
                out.extend(a..=b);
            }
            None => out.push(part.parse().ok()?),
        }
    }
    Some(out)
}

/// `MemTotal:       24500000 kB` -> 24500000.
fn meminfo_kb(meminfo: &str, field: &str) -> Option<u64> {
    meminfo.lines().find_map(|l| {
        let rest = l.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

fn measure_disk(dir: &Path) -> Disk {
    let mut disk = Disk {
        dir: dir.to_path_buf(),
        ..Disk::default()
    };
    let Ok(meta) = std::fs::metadata(dir) else {
        return disk;
    };
    let (major, minor) = (libc::major(meta.dev()), libc::minor(meta.dev()));
    disk.dev = Some((major, minor));
    disk.fs_type = std::fs::read_to_string("/proc/self/mountinfo")
        .ok()
        .and_then(|m| fs_type_of(&m, major, minor));
    let Ok(block) = std::fs::canonicalize(format!("/sys/dev/block/{major}:{minor}")) else {
        return disk; // tmpfs, overlay, NFS: no block device
    };
    // A partition's directory sits inside its disk's; the queue belongs to the disk.
    let whole = if block.join("partition").exists() {
        block.parent().map(Path::to_path_buf).unwrap_or(block)
    } else {
        block
    };
    disk.device = whole.file_name().map(|n| n.to_string_lossy().into_owned());
    disk.rotational = std::fs::read_to_string(whole.join("queue/rotational"))
        .ok()
        .and_then(|t| match t.trim() {
            "0" => Some(false),
            "1" => Some(true),
            _ => None,
        });
    disk.model = std::fs::read_to_string(whole.join("device/model"))
        .ok()
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty());
    disk
}

/// The file system type of the mount with device `major:minor` in `/proc/self/mountinfo`
/// (`36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw`).
fn fs_type_of(mountinfo: &str, major: u32, minor: u32) -> Option<String> {
    let dev = format!("{major}:{minor}");
    mountinfo.lines().find_map(|line| {
        let mut fields = line.split(' ');
        if fields.nth(2)? != dev {
            return None;
        }
        let (_, after) = line.split_once(" - ")?;
        after.split(' ').next().map(str::to_string)
    })
}

/// The nearest existing directory at or above `dir` (a config's dataLogDir may not exist
/// yet; its parent is on the same device in the usual case).
fn nearest_existing(dir: &Path) -> Option<PathBuf> {
    let absolute = if dir.is_absolute() {
        dir.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(dir)
    };
    absolute
        .ancestors()
        .find(|a| a.is_dir())
        .map(Path::to_path_buf)
}

/// Removes the probe file however the probe ends.
struct ProbeFile(PathBuf);

impl Drop for ProbeFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// How a probe writes and syncs, which decides whether its CPU may idle meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyncEngine {
    /// "busy": io_uring writes and fdatasync on glommio's `BufferedFile`, as the
    /// transaction log does them, from an executor pinned to one CPU that spins instead of
    /// sleeping while it waits, as a loaded executor does. This measures the device.
    Uring,
    /// "idle": blocking `pwrite` + `fdatasync` from a thread that sleeps while it waits.
    /// On hosts whose idle CPUs halt (many VMs), waking up adds to every sync.
    Std,
}

impl SyncEngine {
    fn label(self) -> &'static str {
        match self {
            SyncEngine::Uring => "busy",
            SyncEngine::Std => "idle",
        }
    }
}

/// Runs the fdatasync probes in `dir`: one loop per block size, `duration` each. Returns
/// the engine that ran them: `Uring` falls back to `Std` when no executor can start (too
/// little locked memory).
fn probe_syncs(
    dir: &Path,
    blocks: &[usize],
    duration: Duration,
    engine: SyncEngine,
) -> io::Result<(Vec<SyncStats>, SyncEngine)> {
    let probe = ProbeFile(dir.join(format!(".corral-tune-probe-{}", std::process::id())));
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&probe.0)?;
    // Zero-fill and sync once, as the log preallocates: later syncs change no metadata.
    let zeros = vec![0u8; 1 << 20];
    let mut offset = 0;
    while offset < PROBE_FILE_BYTES {
        file.write_all_at(&zeros, offset)?;
        offset += zeros.len() as u64;
    }
    file.sync_all()?;
    if engine == SyncEngine::Uring {
        let path = probe.0.clone();
        let blocks = blocks.to_vec();
        let builder = crate::runtime::executor_builder(
            "tune-probe",
            crate::runtime::CorePin::Core(probe_cpu()),
            (IO_MEMORY_KB_MIN * 1024) as usize,
        )
        .spin_before_park(Duration::from_millis(50));
        let started = crate::runtime::spawn_executor(builder, move || async move {
            uring_loops(&path, &blocks, duration).await
        });
        match started.map(|h| h.join()) {
            Ok(Ok(result)) => return result.map(|stats| (stats, SyncEngine::Uring)),
            Ok(Err(e)) | Err(e) => eprintln!(
                "corral tune: no io_uring executor ({e}); probing with system calls instead"
            ),
        }
    }
    let stats = blocks
        .iter()
        .map(|&block_bytes| std_loop(&file, block_bytes, duration))
        .collect::<io::Result<Vec<_>>>()?;
    Ok((stats, SyncEngine::Std))
}

/// A CPU this process may run on, for the spinning probe executor.
fn probe_cpu() -> usize {
    core_affinity::get_core_ids()
        .and_then(|ids| ids.first().map(|id| id.id))
        .unwrap_or(0)
}

/// A block of `block_bytes`, not zeros, so a device that elides zero writes still moves
/// the bytes.
fn probe_block(block_bytes: usize) -> Vec<u8> {
    (0..block_bytes)
        .map(|i| (i as u8).wrapping_mul(31) ^ 0x5a)
        .collect()
}

/// Sync latencies in nanoseconds, up to a minute.
fn sync_histogram() -> io::Result<Histogram<u64>> {
    Histogram::<u64>::new_with_bounds(1, 60_000_000_000, 3)
        .map_err(|e| io::Error::other(e.to_string()))
}

fn sync_stats(histogram: &Histogram<u64>, engine: SyncEngine, block_bytes: usize) -> SyncStats {
    SyncStats {
        engine,
        block_bytes,
        syncs: histogram.len(),
        p50_ns: histogram.value_at_quantile(0.50),
        p90_ns: histogram.value_at_quantile(0.90),
        p99_ns: histogram.value_at_quantile(0.99),
        max_ns: histogram.max(),
    }
}

fn elapsed_ns(start: Instant) -> u64 {
    start.elapsed().as_nanos().try_into().unwrap_or(u64::MAX)
}

/// The next write offset: blocks in a ring over the probe file.
fn next_offset(offset: u64, block_bytes: usize) -> u64 {
    let next = offset + block_bytes as u64;
    if next + block_bytes as u64 > PROBE_FILE_BYTES {
        0
    } else {
        next
    }
}

fn std_loop(file: &File, block_bytes: usize, duration: Duration) -> io::Result<SyncStats> {
    let block = probe_block(block_bytes);
    let mut histogram = sync_histogram()?;
    let deadline = Instant::now() + duration;
    let mut offset = 0u64;
    while histogram.len() < SYNC_SAMPLES_MAX && Instant::now() < deadline {
        file.write_all_at(&block, offset)?;
        let start = Instant::now();
        file.sync_data()?;
        histogram.saturating_record(elapsed_ns(start));
        offset = next_offset(offset, block_bytes);
    }
    Ok(sync_stats(&histogram, SyncEngine::Std, block_bytes))
}

async fn uring_loops(
    path: &Path,
    blocks: &[usize],
    duration: Duration,
) -> io::Result<Vec<SyncStats>> {
    let glommio_error = |e: glommio::GlommioError<()>| io::Error::other(e.to_string());
    let file = glommio::io::OpenOptions::new()
        .read(true)
        .write(true)
        .buffered_open(path)
        .await
        .map_err(glommio_error)?;
    let mut out = Vec::new();
    for &block_bytes in blocks {
        let block = probe_block(block_bytes);
        let mut histogram = sync_histogram()?;
        let deadline = Instant::now() + duration;
        let mut offset = 0u64;
        while histogram.len() < SYNC_SAMPLES_MAX && Instant::now() < deadline {
            let written = file
                .write_at(block.clone(), offset)
                .await
                .map_err(glommio_error)?;
            if written < block_bytes {
                return Err(io::Error::new(
                    io::ErrorKind::WriteZero,
                    format!("short write: {written} of {block_bytes} bytes"),
                ));
            }
            let start = Instant::now();
            file.fdatasync().await.map_err(glommio_error)?;
            histogram.saturating_record(elapsed_ns(start));
            offset = next_offset(offset, block_bytes);
        }
        out.push(sync_stats(&histogram, SyncEngine::Uring, block_bytes));
    }
    let _ = file.close().await;
    Ok(out)
}

// ---------------------------------------------------------------- the decision rule

/// Which profile fits, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub profile: Profile,
    /// The disk's own class (never small-vm); differs from `profile` on a small VM.
    pub disk_class: Profile,
    /// Why the profile was chosen, one sentence each.
    pub why: Vec<String>,
    /// What each measurement implied, one sentence each.
    pub notes: Vec<String>,
    /// `corral.shards` written over the profile: small-vm.cfg leaves it to the default,
    /// which on a host with many cores but little memory would be a shard (and a copy of
    /// the tree) per core.
    pub shards_override: Option<usize>,
}

/// The class of the dataLogDir's device from its 4 KiB (`small`) and 64 KiB (`batch`) sync
/// latencies and its rotational flag, and the reason. The class sets the commit knobs,
/// which follow what a typical sync costs, so the rule goes by the p50; first match wins:
/// 1. hdd: p50 >= 2 ms, or rotational and p50 >= 1 ms;
/// 2. cloud-block: p50 >= 500 µs, or p50 > 150 µs and a 64 KiB sync >= 3 x a 4 KiB one;
/// 3. nvme: p50 <= 150 µs;
/// 4. sata-ssd: the rest (150-500 µs).
///
/// Every class's `corral.commit.maxWaitUs` is at most 2 x the p50 that leads to it, so
/// `--check` never warns about the wait `tune` chose (a test holds this).
pub fn disk_class(
    small: &SyncStats,
    batch: Option<&SyncStats>,
    rotational: Option<bool>,
) -> (Profile, String) {
    let p50 = small.p50_ns;
    if p50 >= HDD_P50_NS_MIN {
        return (
            Profile::Hdd,
            format!(
                "4 KiB fdatasync p50 {} >= {}: each sync waits for a platter (or an equally slow path)",
                fmt_ns(p50),
                fmt_ns(HDD_P50_NS_MIN)
            ),
        );
    }
    if rotational == Some(true) && p50 >= HDD_ROTATIONAL_P50_NS_MIN {
        return (
            Profile::Hdd,
            format!(
                "the device is rotational and 4 KiB fdatasync p50 {} >= {}",
                fmt_ns(p50),
                fmt_ns(HDD_ROTATIONAL_P50_NS_MIN)
            ),
        );
    }
    if p50 >= SSD_P50_NS_MAX {
        return (
            Profile::CloudBlock,
            format!(
                "4 KiB fdatasync p50 {} >= {}: a network round trip per sync",
                fmt_ns(p50),
                fmt_ns(SSD_P50_NS_MAX)
            ),
        );
    }
    if let Some(batch) = batch.filter(|_| p50 > NVME_P50_NS_MAX) {
        if batch.p50_ns >= CLOUD_BATCH_RATIO.saturating_mul(p50) {
            return (
                Profile::CloudBlock,
                format!(
                    "a 64 KiB sync (p50 {}) costs >= {CLOUD_BATCH_RATIO} x a 4 KiB one ({}): throughput is throttled",
                    fmt_ns(batch.p50_ns),
                    fmt_ns(p50)
                ),
            );
        }
    }
    if p50 <= NVME_P50_NS_MAX {
        return (
            Profile::Nvme,
            format!(
                "4 KiB fdatasync p50 {} <= {}: syncs are nearly free",
                fmt_ns(p50),
                fmt_ns(NVME_P50_NS_MAX)
            ),
        );
    }
    (
        Profile::SataSsd,
        format!(
            "4 KiB fdatasync p50 {} is between {} and {}: a flash device flushing its cache per sync",
            fmt_ns(p50),
            fmt_ns(NVME_P50_NS_MAX),
            fmt_ns(SSD_P50_NS_MAX)
        ),
    )
}

/// The profile for this host: small-vm when the host is small (<= 2 cores available or
/// < 4 GiB memory), else the disk's class ([`disk_class`]).
pub fn decide(host: &Host, disk: &Disk, small: &SyncStats, batch: Option<&SyncStats>) -> Decision {
    let (class, class_why) = disk_class(small, batch, disk.rotational);
    let mut why = Vec::new();
    let mut notes = vec![format!("disk class {}: {class_why}", class.name())];

    if small.p99_ns >= LONG_TAIL_RATIO.saturating_mul(small.p50_ns) {
        notes.push(format!(
            "4 KiB fdatasync p99 {} is >= {LONG_TAIL_RATIO} x its p50 {}: a long tail (a shared or networked device); some commits will take that long whatever the profile, which sets its commit knobs by the p50",
            fmt_ns(small.p99_ns),
            fmt_ns(small.p50_ns)
        ));
    }
    if disk.rotational == Some(true) && class != Profile::Hdd {
        notes.push(format!(
            "the kernel flags the device rotational, but no spinning disk syncs in {}; virtual disks often carry the flag, so the measurement decides",
            fmt_ns(small.p50_ns)
        ));
    }
    if let Some(pct) = host.io_pressure_pct.filter(|&p| p >= IO_PRESSURE_PCT_BUSY) {
        notes.push(format!(
            "I/O pressure was {pct:.0} % in the 10 s before the probe (/proc/pressure/io): other processes were using the disk, so these sync times likely overstate what it costs alone; rerun when the host is idle"
        ));
    }
    if disk.fs_type.as_deref() == Some("tmpfs") {
        notes.push(
            "the directory is on tmpfs: nothing written there survives a reboot, and its sync times say nothing about a disk"
                .to_string(),
        );
    }
    if let Some(batch) = batch {
        let ratio = batch.p50_ns as f64 / small.p50_ns.max(1) as f64;
        notes.push(format!(
            "a 64 KiB sync costs {ratio:.1} x a 4 KiB one: {}",
            if ratio < 2.0 {
                "batching many records into one sync is nearly free"
            } else {
                "batches still amortise the sync, but their bytes cost too"
            }
        ));
    }

    let small_cores = host.cores_available <= SMALL_VM_CORES_MAX;
    let small_memory = host.mem_total_kb.is_some_and(|kb| kb < SMALL_VM_MEM_KB_MIN);
    let shards_override = (small_memory && !small_cores).then_some(1);
    let profile = if small_cores || small_memory {
        if small_cores {
            why.push(format!(
                "{} cores available (<= {SMALL_VM_CORES_MAX}): the server runs its client sessions on the ZAB executor, and pinning would fight whatever else runs here",
                host.cores_available
            ));
        }
        if small_memory {
            why.push(format!(
                "{} of memory (< {}): small segments and frequent snapshots keep disk and restart time small",
                fmt_kb(host.mem_total_kb.unwrap_or(0)),
                fmt_kb(SMALL_VM_MEM_KB_MIN)
            ));
        }
        if class != Profile::SmallVm {
            why.push(format!(
                "the written config also takes corral.commit.* and fsync.warningthresholdms from {} (this disk's class)",
                class.file_name()
            ));
        }
        Profile::SmallVm
    } else {
        why.push(class_why);
        why.push(format!(
            "{} cores available: the default corral.shards ({}) leaves one core to the ZAB executor",
            host.cores_available,
            crate::config::default_shards(host.cores_available)
        ));
        class
    };

    let shards =
        shards_override.unwrap_or_else(|| crate::config::default_shards(host.cores_available));
    notes.push(format!(
        "{} cores available ({} online): {}",
        host.cores_available,
        host.cpus_online.len(),
        if shards == 0 {
            "the ZAB executor, serving the client sessions too".to_string()
        } else {
            format!("{shards} shard(s) + the ZAB executor")
        }
    ));
    if host.numa_nodes.len() > 1 {
        notes.push(format!(
            "{} NUMA nodes: with corral.pinning=on the ZAB executor takes core 0 and the shards the cores after it, crossing nodes; list cores of one node (corral.pinning=0,1,...) to keep every executor on it",
            host.numa_nodes.len()
        ));
    }
    match (host.root, host.memlock) {
        (true, _) => notes.push("running as root: locked memory is not limited".to_string()),
        (false, Memlock::Unlimited) => notes.push("ulimit -l is unlimited".to_string()),
        (false, Memlock::Bytes(bytes)) => {
            let limit_kb = bytes / 1024;
            let need_kb = profile
                .config_for_cores(host.cores_available)
                .map_or(0, |c| {
                    locked_memory_kb(
                        c.corral.io_memory_kb,
                        shards_override.unwrap_or(c.corral.shards),
                    )
                });
            notes.push(if need_kb > limit_kb {
                format!(
                    "ulimit -l is {}, but {} needs {} of locked memory (corral.ioMemoryKb, plus 64 KiB a shard): raise the limit (LimitMEMLOCK= in systemd) or lower corral.shards",
                    fmt_kb(limit_kb),
                    profile.file_name(),
                    fmt_kb(need_kb)
                )
            } else {
                format!(
                    "ulimit -l is {} (per user, across processes): enough for {}'s {} of io memory",
                    fmt_kb(limit_kb),
                    profile.file_name(),
                    fmt_kb(need_kb)
                )
            });
        }
        (false, Memlock::Unknown) => notes.push("ulimit -l could not be read".to_string()),
    }
    Decision {
        profile,
        disk_class: class,
        why,
        notes,
        shards_override,
    }
}

/// What the idle probe adds, when waking a sleeping CPU costs much more than the sync
/// itself (idle p50 at least 3 x busy p50 and 500 µs more).
pub fn idle_note(busy: &SyncStats, idle: &SyncStats) -> Option<String> {
    let slower = idle.p50_ns >= 3 * busy.p50_ns && idle.p50_ns >= busy.p50_ns + 500_000;
    slower.then(|| {
        format!(
            "a thread that sleeps in fdatasync waits {} (p50) against {} for a busy one: waking a halted CPU, not the device, dominates a sync here (typical of VMs); the busy figure is the device's and decides",
            fmt_ns(idle.p50_ns),
            fmt_ns(busy.p50_ns)
        )
    })
}

/// Keys the written config sets over the profile, with a reason each.
pub fn overrides(decision: &Decision) -> Vec<(String, String, String)> {
    let mut out = Vec::new();
    if let Some(shards) = decision.shards_override {
        out.push((
            "corral.shards".to_string(),
            shards.to_string(),
            "under 4 GiB of memory: one shard executor (each keeps a copy of the tree)".to_string(),
        ));
    }
    if decision.profile != decision.disk_class {
        if let Ok(disk) = decision.disk_class.config() {
            let why = format!(
                "from {}: this disk's class",
                decision.disk_class.file_name()
            );
            out.push((
                "corral.commit.maxWaitUs".to_string(),
                disk.corral.commit_max_wait_us.to_string(),
                why.clone(),
            ));
            out.push((
                "corral.commit.maxBatch".to_string(),
                disk.corral.commit_max_batch.to_string(),
                why.clone(),
            ));
            out.push((
                "fsync.warningthresholdms".to_string(),
                disk.fsync_warning_threshold_ms.to_string(),
                why,
            ));
        }
    }
    out
}

// ---------------------------------------------------------------- tune

fn run_tune(args: &TuneArgs) -> i32 {
    let dir = &args.data_log_dir;
    if !dir.is_dir() {
        eprintln!("corral tune: {}: not a directory", dir.display());
        return 2;
    }
    if let Some(out) = &args.out {
        if out.exists() && !args.force {
            eprintln!(
                "corral tune: {} exists (use --force to overwrite)",
                out.display()
            );
            return 2;
        }
    }
    // Before the probes: their own syncs would count in the I/O pressure figure.
    let host = measure_host();
    let disk = measure_disk(dir);
    let duration = Duration::from_secs(args.duration_s);
    if !args.json {
        eprintln!(
            "corral tune: measuring fdatasync in {} ({} s each: 4 KiB busy, 64 KiB busy, 4 KiB idle)...",
            dir.display(),
            args.duration_s
        );
    }
    // Busy first (the device's cost, which decides), then idle (what waking up adds).
    let probes = probe_syncs(
        dir,
        &[SMALL_BLOCK_BYTES, BATCH_BLOCK_BYTES],
        duration,
        SyncEngine::Uring,
    )
    .and_then(|(mut busy, _)| {
        let (idle, _) = probe_syncs(dir, &[SMALL_BLOCK_BYTES], duration, SyncEngine::Std)?;
        busy.extend(idle);
        Ok(busy)
    });
    let stats = match probes {
        Ok(stats) => stats,
        Err(e) => {
            eprintln!("corral tune: fdatasync probe in {}: {e}", dir.display());
            return 1;
        }
    };
    let (Some(small), Some(batch)) = (stats.first(), stats.get(1)) else {
        eprintln!("corral tune: the fdatasync probe returned nothing");
        return 1;
    };
    let mut decision = decide(&host, &disk, small, Some(batch));
    if let Some(note) = stats.get(2).and_then(|idle| idle_note(small, idle)) {
        decision.notes.insert(1, note);
    }
    let overrides = overrides(&decision);

    let mut written = None;
    if let Some(out) = &args.out {
        match write_config(args, out, &decision, &overrides, small, batch) {
            Ok(include) => written = Some((out.clone(), include)),
            Err(e) => {
                eprintln!("corral tune: {}: {e}", out.display());
                return 1;
            }
        }
    }
    let report = if args.json {
        report_json(
            &host,
            &disk,
            &stats,
            &decision,
            &overrides,
            written.as_ref(),
        )
    } else {
        report_text(
            &host,
            &disk,
            &stats,
            &decision,
            &overrides,
            written.as_ref(),
        )
    };
    print!("{report}");
    0
}

/// How the written config names its profile.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Include {
    /// `corral.profile=<this>`.
    Profile(String),
    /// The profile file was not found: its keys are written in.
    Inlined,
}

fn write_config(
    args: &TuneArgs,
    out: &Path,
    decision: &Decision,
    overrides: &[(String, String, String)],
    small: &SyncStats,
    batch: &SyncStats,
) -> io::Result<Include> {
    let profiles_dir = args
        .profiles_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("tuning"));
    let profile_file = profiles_dir.join(decision.profile.file_name());
    let out_dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let include = match (
        std::fs::canonicalize(&profile_file),
        std::fs::canonicalize(&out_dir),
    ) {
        (Ok(profile), Ok(out_dir)) => {
            Include::Profile(beside_or_absolute(&out_dir, &profile).display().to_string())
        }
        (Err(_), Ok(_)) => Include::Inlined,
        (_, Err(e)) => return Err(e),
    };
    let absolute = |p: &Path| -> io::Result<PathBuf> {
        if p.is_absolute() {
            Ok(p.to_path_buf())
        } else {
            std::fs::canonicalize(p)
        }
    };
    let log_dir = absolute(&args.data_log_dir)?;
    let data_dir = match &args.data_dir {
        Some(d) if d.is_absolute() => d.clone(),
        Some(d) => std::env::current_dir()?.join(d),
        None => log_dir.clone(),
    };

    let mut text = String::new();
    let _ = writeln!(
        text,
        "# Written by `corral tune`. Measured on {}: 4 KiB fdatasync p50 {} p99 {}, 64 KiB p50 {} p99 {}.",
        log_dir.display(),
        fmt_ns(small.p50_ns),
        fmt_ns(small.p99_ns),
        fmt_ns(batch.p50_ns),
        fmt_ns(batch.p99_ns)
    );
    let _ = writeln!(text, "# Profile {}:", decision.profile.name());
    for why in &decision.why {
        let _ = writeln!(text, "#   {why}");
    }
    text.push_str("tickTime=2000\ninitLimit=10\nsyncLimit=5\n");
    let _ = writeln!(text, "dataDir={}", data_dir.display());
    if data_dir != log_dir {
        let _ = writeln!(text, "dataLogDir={}", log_dir.display());
    }
    let _ = writeln!(text, "clientPort={}", args.client_port);
    match &include {
        Include::Profile(path) => {
            let _ = writeln!(text, "corral.profile={path}");
        }
        Include::Inlined => {
            let _ = writeln!(
                text,
                "\n# The keys of {} ({} was not found, so they are written here).",
                decision.profile.file_name(),
                profile_file.display()
            );
            text.push_str(decision.profile.text());
        }
    }
    if !overrides.is_empty() {
        text.push_str("\n# Over the profile, for this host:\n");
        for (key, value, why) in overrides {
            let _ = writeln!(text, "# {why}\n{key}={value}");
        }
    }
    std::fs::write(out, &text)?;
    // The config must load: a tool that writes a config the server refuses is no help.
    if let Err(e) = Config::load(out) {
        return Err(io::Error::other(format!(
            "the written config does not load: {e}"
        )));
    }
    Ok(include)
}

/// How a config in `out_dir` names `profile` (both canonical): relative when the two
/// share a directory below `/` (a checkout or /etc/corral moved as a whole keeps working),
/// else absolute.
fn beside_or_absolute(out_dir: &Path, profile: &Path) -> PathBuf {
    let shared = out_dir
        .components()
        .zip(profile.components())
        .take_while(|(a, b)| a == b)
        .count();
    if shared > 1 {
        relative_path(out_dir, profile)
    } else {
        profile.to_path_buf()
    }
}

/// `to` relative to the directory `from` (both absolute, canonical).
fn relative_path(from: &Path, to: &Path) -> PathBuf {
    let from: Vec<Component> = from.components().collect();
    let to_parts: Vec<Component> = to.components().collect();
    let common = from
        .iter()
        .zip(&to_parts)
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = PathBuf::new();
    for _ in common..from.len() {
        out.push("..");
    }
    for part in &to_parts[common..] {
        out.push(part.as_os_str());
    }
    out
}

fn report_text(
    host: &Host,
    disk: &Disk,
    stats: &[SyncStats],
    decision: &Decision,
    overrides: &[(String, String, String)],
    written: Option<&(PathBuf, Include)>,
) -> String {
    let mut t = String::new();
    let _ = writeln!(t, "directory: {}", disk.dir.display());
    let _ = writeln!(
        t,
        "device:    {} (fs {}, rotational flag {}{})",
        disk.device.as_deref().unwrap_or("unknown"),
        disk.fs_type.as_deref().unwrap_or("unknown"),
        match disk.rotational {
            Some(true) => "1",
            Some(false) => "0",
            None => "unknown",
        },
        disk.model
            .as_deref()
            .map(|m| format!(", model {m}"))
            .unwrap_or_default()
    );
    t.push_str(
        "\nfdatasync after a write into a zero-filled file (busy: io_uring from a spinning executor, as a\nloaded Corral executor waits; idle: blocking calls from a sleeping thread):\n",
    );
    let _ = writeln!(
        t,
        "  {:<12} {:>8} {:>10} {:>10} {:>10} {:>10}",
        "probe", "syncs", "p50", "p90", "p99", "max"
    );
    for s in stats {
        let _ = writeln!(
            t,
            "  {:<12} {:>8} {:>10} {:>10} {:>10} {:>10}",
            format!("{} KiB {}", s.block_bytes / 1024, s.engine.label()),
            s.syncs,
            fmt_ns(s.p50_ns),
            fmt_ns(s.p90_ns),
            fmt_ns(s.p99_ns),
            fmt_ns(s.max_ns)
        );
    }
    let _ = writeln!(
        t,
        "\nhost: {} cores available (online {}, allowed {}), NUMA: {}",
        host.cores_available,
        fmt_cpu_list(&host.cpus_online),
        fmt_cpu_list(&host.cpus_allowed),
        if host.numa_nodes.is_empty() {
            "unknown".to_string()
        } else {
            host.numa_nodes
                .iter()
                .map(|n| format!("node{} cpus {}", n.id, fmt_cpu_list(&n.cpus)))
                .collect::<Vec<_>>()
                .join(", ")
        }
    );
    let _ = writeln!(
        t,
        "      memory {} ({} available), ulimit -l {}{}, I/O pressure {}",
        host.mem_total_kb.map_or("unknown".to_string(), fmt_kb),
        host.mem_available_kb.map_or("unknown".to_string(), fmt_kb),
        match host.memlock {
            Memlock::Unlimited => "unlimited".to_string(),
            Memlock::Bytes(b) => fmt_kb(b / 1024),
            Memlock::Unknown => "unknown".to_string(),
        },
        if host.root { ", running as root" } else { "" },
        host.io_pressure_pct
            .map_or("unknown".to_string(), |p| format!(
                "{p:.0} % (10 s before the probe)"
            ))
    );
    t.push_str("\nwhat the measurements imply:\n");
    for note in &decision.notes {
        let _ = writeln!(t, "  - {note}");
    }
    let _ = writeln!(
        t,
        "\nprofile: {} (tuning/{})",
        decision.profile.name(),
        decision.profile.file_name()
    );
    for why in &decision.why {
        let _ = writeln!(t, "  because {why}");
    }
    if !overrides.is_empty() {
        t.push_str("over the profile:\n");
        for (key, value, why) in overrides {
            let _ = writeln!(t, "  {key}={value}  ({why})");
        }
    }
    match written {
        Some((path, Include::Profile(include))) => {
            let _ = writeln!(t, "wrote {} (corral.profile={include})", path.display());
        }
        Some((path, Include::Inlined)) => {
            let _ = writeln!(
                t,
                "wrote {} (profile keys inlined: profile file not found; see --profiles-dir)",
                path.display()
            );
        }
        None => t.push_str("(no --out: nothing written)\n"),
    }
    t
}

fn report_json(
    host: &Host,
    disk: &Disk,
    stats: &[SyncStats],
    decision: &Decision,
    overrides: &[(String, String, String)],
    written: Option<&(PathBuf, Include)>,
) -> String {
    let opt_str = |v: Option<&str>| v.map_or("null".to_string(), json_str);
    let opt_u64 = |v: Option<u64>| v.map_or("null".to_string(), |n| n.to_string());
    let strings = |v: &[String]| {
        format!(
            "[{}]",
            v.iter().map(|s| json_str(s)).collect::<Vec<_>>().join(",")
        )
    };
    let syncs = stats
        .iter()
        .map(|s| {
            format!(
                "{{\"mode\":\"{}\",\"block_bytes\":{},\"syncs\":{},\"p50_us\":{:.1},\"p90_us\":{:.1},\"p99_us\":{:.1},\"max_us\":{:.1}}}",
                s.engine.label(),
                s.block_bytes,
                s.syncs,
                s.p50_ns as f64 / 1e3,
                s.p90_ns as f64 / 1e3,
                s.p99_ns as f64 / 1e3,
                s.max_ns as f64 / 1e3
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let numa = host
        .numa_nodes
        .iter()
        .map(|n| format!("{{\"id\":{},\"cpus\":{:?}}}", n.id, n.cpus))
        .collect::<Vec<_>>()
        .join(",");
    let memlock = match host.memlock {
        Memlock::Unlimited => "\"unlimited\"".to_string(),
        Memlock::Bytes(b) => b.to_string(),
        Memlock::Unknown => "null".to_string(),
    };
    let over = overrides
        .iter()
        .map(|(k, v, why)| {
            format!(
                "{{\"key\":{},\"value\":{},\"why\":{}}}",
                json_str(k),
                json_str(v),
                json_str(why)
            )
        })
        .collect::<Vec<_>>()
        .join(",");
    let (written_path, include) = match written {
        Some((path, Include::Profile(p))) => (
            json_str(&path.display().to_string()),
            json_str(&format!("corral.profile={p}")),
        ),
        Some((path, Include::Inlined)) => {
            (json_str(&path.display().to_string()), json_str("inlined"))
        }
        None => ("null".to_string(), "null".to_string()),
    };
    format!(
        "{{\"directory\":{},\"device\":{},\"fs_type\":{},\"rotational\":{},\"model\":{},\
\"fdatasync\":[{syncs}],\
\"host\":{{\"cores_available\":{},\"cpus_online\":{:?},\"cpus_allowed\":{:?},\"numa_nodes\":[{numa}],\
\"mem_total_kb\":{},\"mem_available_kb\":{},\"memlock_bytes\":{memlock},\"root\":{},\"io_pressure_pct\":{}}},\
\"profile\":{},\"disk_class\":{},\"why\":{},\"notes\":{},\"overrides\":[{over}],\
\"written\":{written_path},\"include\":{include}}}\n",
        json_str(&disk.dir.display().to_string()),
        opt_str(disk.device.as_deref()),
        opt_str(disk.fs_type.as_deref()),
        disk.rotational
            .map_or("null".to_string(), |r| r.to_string()),
        opt_str(disk.model.as_deref()),
        host.cores_available,
        host.cpus_online,
        host.cpus_allowed,
        opt_u64(host.mem_total_kb),
        opt_u64(host.mem_available_kb),
        host.root,
        host.io_pressure_pct
            .map_or("null".to_string(), |p| format!("{p:.1}")),
        json_str(decision.profile.name()),
        json_str(decision.disk_class.name()),
        strings(&decision.why),
        strings(&decision.notes),
    )
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn fmt_ns(ns: u64) -> String {
    if ns < 10_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000 {
        format!("{} µs", ns / 1000)
    } else if ns < 1_000_000_000 {
        format!("{:.1} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

fn fmt_kb(kb: u64) -> String {
    if kb >= 1 << 20 {
        format!("{:.1} GiB", kb as f64 / (1u64 << 20) as f64)
    } else if kb >= 1 << 10 {
        format!("{:.1} MiB", kb as f64 / 1024.0)
    } else {
        format!("{kb} KiB")
    }
}

/// Ids back into the kernel's range form: `0-3,8`.
fn fmt_cpu_list(cpus: &[usize]) -> String {
    if cpus.is_empty() {
        return "unknown".to_string();
    }
    let mut out = Vec::new();
    let mut start = cpus[0];
    let mut prev = cpus[0];
    for &c in &cpus[1..] {
        if c == prev + 1 {
            prev = c;
            continue;
        }
        out.push(if start == prev {
            start.to_string()
        } else {
            format!("{start}-{prev}")
        });
        start = c;
        prev = c;
    }
    out.push(if start == prev {
        start.to_string()
    } else {
        format!("{start}-{prev}")
    });
    out.join(",")
}

// ---------------------------------------------------------------- --check

/// What `--check` knows about the disks (measured, or made up in tests).
#[derive(Debug, Clone, Default)]
pub struct CheckDisk {
    /// 4 KiB fdatasync on the dataLogDir's device, when it could be probed.
    pub sync: Option<SyncStats>,
    pub rotational: Option<bool>,
    pub fs_type: Option<String>,
    /// dataDir and dataLogDir are on one device (`None`: unknown).
    pub same_device: Option<bool>,
}

/// One warning: the key it is about and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub key: &'static str,
    pub message: String,
}

/// The settings of `config` that fight this host and disk. Pure: `tune --check` measures
/// and prints; tests pass made-up hosts and disks.
pub fn check(config: &Config, host: &Host, disk: &CheckDisk) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut warn = |key: &'static str, message: String| out.push(Finding { key, message });
    let tuning = &config.corral;
    let shards = tuning.shards;
    let executors = shards + 1;
    let cores = host.cores_available;
    // The shards that leave the ZAB executor a core of its own.
    let fitting = cores.saturating_sub(1);
    let class = disk
        .sync
        .as_ref()
        .map(|s| disk_class(s, None, disk.rotational).0);
    let slow_sync = match class {
        Some(class) => class == Profile::Hdd,
        None => disk.rotational == Some(true),
    };

    // Pinning.
    match &tuning.pinning {
        Pinning::Off => {
            if shards > cores {
                warn(
                    "corral.shards",
                    format!("{shards} shards on {cores} cores: executors time-share cores; use at most {fitting} (cores - 1)"),
                );
            }
        }
        Pinning::On => {
            if executors > cores {
                warn(
                    "corral.pinning",
                    format!("pinning on with {shards} shards + the ZAB executor = {executors} executors on {cores} cores: pinned executors share cores and wait for each other; set corral.shards={fitting} or corral.pinning=off"),
                );
            }
            // The server pins to cores 0..cores-1 (ZAB on 0, shards after it).
            let used: Vec<usize> = (0..executors.min(cores)).collect();
            let outside: Vec<usize> = used
                .iter()
                .copied()
                .filter(|c| !host.cpus_allowed.is_empty() && !host.cpus_allowed.contains(c))
                .collect();
            if !outside.is_empty() {
                warn(
                    "corral.pinning",
                    format!("pinning on uses cores {} but this process may run only on {}: list allowed cores instead (corral.pinning={})", fmt_cpu_list(&outside), fmt_cpu_list(&host.cpus_allowed), host.cpus_allowed.iter().map(usize::to_string).collect::<Vec<_>>().join(",")),
                );
            }
        }
        Pinning::Cores(list) => {
            if executors > list.len() {
                warn(
                    "corral.pinning",
                    format!("{executors} executors ({shards} shards + ZAB) pinned to {} listed cores: some share a core and wait for each other", list.len()),
                );
            }
            let beyond: Vec<usize> = list
                .iter()
                .copied()
                .filter(|&c| {
                    c >= cores.max(host.cpus_online.len())
                        || (!host.cpus_allowed.is_empty() && !host.cpus_allowed.contains(&c))
                })
                .collect();
            if !beyond.is_empty() {
                warn(
                    "corral.pinning",
                    format!("cores {} are not available to this process (allowed: {}): executors pinned there fail to start", fmt_cpu_list(&beyond), fmt_cpu_list(&host.cpus_allowed)),
                );
            }
        }
    }

    // Locked memory.
    if let (false, Memlock::Bytes(limit)) = (host.root, host.memlock) {
        let need_kb = locked_memory_kb(tuning.io_memory_kb, shards);
        if need_kb > limit / 1024 {
            warn(
                "corral.ioMemoryKb",
                format!("{} KiB (plus 64 KiB x {shards} shards) = {} of locked memory, but ulimit -l is {}: executors fail to start; lower corral.ioMemoryKb or raise the limit (LimitMEMLOCK= in systemd)", tuning.io_memory_kb, fmt_kb(need_kb), fmt_kb(limit / 1024)),
            );
        }
    }
    if u64::from(tuning.io_memory_kb) < IO_MEMORY_KB_MIN {
        warn(
            "corral.ioMemoryKb",
            format!(
                "{} KiB holds less than a default log batch ({IO_MEMORY_KB_MIN} KiB): larger batches are written from a heap buffer, an allocation per sync",
                tuning.io_memory_kb
            ),
        );
    }

    // Durability and the log.
    if !config.force_sync {
        warn(
            "forceSync",
            "no: writes are acknowledged before they reach the disk; a crash or power loss loses them".to_string(),
        );
    }
    if disk.fs_type.as_deref() == Some("tmpfs") {
        warn(
            "dataLogDir",
            format!(
                "{} is on tmpfs: the log does not survive a reboot",
                config.data_log_dir.display()
            ),
        );
    }
    if config.pre_alloc_kb < CHECK_PRE_ALLOC_KB_MIN {
        warn(
            "preAllocSize",
            format!("{} KiB: each log segment is min(preAllocSize, 64 MiB) and the log rolls when one is full; segments this small roll constantly under load, and a roll waits for the next segment when it is not made yet (use 65536)", config.pre_alloc_kb),
        );
    }
    if tuning.commit_max_batch == 1 {
        warn(
            "corral.commit.maxBatch",
            "1 turns group commit off: one fdatasync per write".to_string(),
        );
    }
    if let Some(sync) = &disk.sync {
        let wait_ns = u64::from(tuning.commit_max_wait_us) * 1000;
        if !slow_sync && wait_ns > CHECK_WAIT_SYNC_RATIO.saturating_mul(sync.p50_ns) {
            warn(
                "corral.commit.maxWaitUs",
                format!("{} µs is more than {CHECK_WAIT_SYNC_RATIO} x this device's fdatasync p50 ({}): under load a batch waits longer than a sync would take; use at most {} µs", tuning.commit_max_wait_us, fmt_ns(sync.p50_ns), sync.p50_ns / 2000),
            );
        }
        let threshold_ns = config.fsync_warning_threshold_ms.saturating_mul(1_000_000);
        if threshold_ns <= sync.p99_ns {
            warn(
                "fsync.warningthresholdms",
                format!("{} ms is at or below this device's fdatasync p99 ({}): the log would warn about ordinary syncs", config.fsync_warning_threshold_ms, fmt_ns(sync.p99_ns)),
            );
        }
    }
    if slow_sync && tuning.commit_max_wait_us == 0 {
        warn(
            "corral.commit.maxWaitUs",
            format!("0 on a disk-class device ({}): each sync costs milliseconds, and without a wait most records get one of their own (hdd.cfg uses 2000)", disk.sync.as_ref().map_or_else(|| "flagged rotational, not measured".to_string(), |s| format!("fdatasync p50 {}", fmt_ns(s.p50_ns)))),
        );
    }
    if slow_sync && disk.same_device == Some(true) {
        warn(
            "dataLogDir",
            "on the same disk-class device as dataDir: snapshot writes seek against the log's appends; give the log its own disk".to_string(),
        );
    }
    if config.snap_count < CHECK_SNAP_COUNT_MIN {
        warn(
            "snapCount",
            format!("{}: a snapshot of the whole tree every ~{} writes (randomised between half and all of it) keeps the disk busy with snapshots", config.snap_count, config.snap_count),
        );
    }
    out
}

/// Where `key` was set: the cfg's own line, else the profile's, else `None` (default).
/// Best effort: a plain scan for `key=`, `key:` or `key ` lines (with or without the
/// `zookeeper.` prefix), which is how every zoo.cfg and profile writes keys; the config
/// layer has already checked the values.
fn locate(config: &Config, key: &str) -> Option<String> {
    let files = [config.source.as_ref(), config.corral.profile.as_ref()];
    for file in files.into_iter().flatten() {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        let mut found = None;
        let mut continued = false;
        for (index, line) in text.lines().enumerate() {
            let this_continues = line.ends_with('\\');
            if continued {
                continued = this_continues;
                continue;
            }
            continued = this_continues;
            let line = line.trim_start();
            if line.starts_with('#') || line.starts_with('!') {
                continue;
            }
            let end = line
                .find(|c: char| c == '=' || c == ':' || c.is_whitespace())
                .unwrap_or(line.len());
            let written = &line[..end];
            if written == key || written.strip_prefix("zookeeper.") == Some(key) {
                found = Some(index + 1);
            }
        }
        if let Some(line) = found {
            return Some(format!("{}:{line}", file.display()));
        }
    }
    None
}

fn run_check(cfg: &Path, args: &TuneArgs) -> i32 {
    let config = match Config::load(cfg) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    // Before the probe: its own syncs would count in the I/O pressure figure.
    let host = measure_host();
    let mut disk = CheckDisk::default();
    let log_dir = nearest_existing(&config.data_log_dir);
    if let Some(dir) = &log_dir {
        let facts = measure_disk(dir);
        disk.rotational = facts.rotational;
        disk.fs_type = facts.fs_type;
        if let (Some(log_dev), Some(data_dir)) = (facts.dev, nearest_existing(&config.data_dir)) {
            disk.same_device = Some(measure_disk(&data_dir).dev == Some(log_dev));
        }
        match probe_syncs(
            dir,
            &[SMALL_BLOCK_BYTES],
            Duration::from_secs(args.duration_s),
            SyncEngine::Uring,
        ) {
            Ok((stats, _)) => disk.sync = stats.first().copied(),
            Err(e) => eprintln!(
                "corral tune --check: fdatasync probe in {} failed ({e}); rules that need it are skipped",
                dir.display()
            ),
        }
    }
    let findings = check(&config, &host, &disk);
    let cfg_name = cfg.display().to_string();
    if let Some(sync) = &disk.sync {
        println!(
            "{cfg_name}: dataLogDir device: 4 KiB fdatasync p50 {} p99 {} ({} syncs in {}){}",
            fmt_ns(sync.p50_ns),
            fmt_ns(sync.p99_ns),
            sync.syncs,
            log_dir
                .as_ref()
                .map_or(String::new(), |d| d.display().to_string()),
            match disk.rotational {
                Some(true) => ", flagged rotational",
                _ => "",
            }
        );
        if let Some(pct) = host.io_pressure_pct.filter(|&p| p >= IO_PRESSURE_PCT_BUSY) {
            println!("{cfg_name}: I/O pressure was {pct:.0} % before the probe: other processes were using the disk; the sync-time rules may be off");
        }
    }
    for f in &findings {
        match locate(&config, f.key) {
            Some(at) => println!("{at}: {}: {}", f.key, f.message),
            None => println!("{cfg_name}: {} (default): {}", f.key, f.message),
        }
    }
    if findings.is_empty() {
        println!("{cfg_name}: no settings fight this host");
        0
    } else {
        println!("{cfg_name}: {} warning(s)", findings.len());
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    fn sync(p50_us: u64, p99_us: u64) -> SyncStats {
        SyncStats {
            engine: SyncEngine::Uring,
            block_bytes: SMALL_BLOCK_BYTES,
            syncs: 1000,
            p50_ns: p50_us * 1000,
            p90_ns: (p50_us + p99_us) / 2 * 1000,
            p99_ns: p99_us * 1000,
            max_ns: p99_us * 2000,
        }
    }

    fn batch(p50_us: u64) -> SyncStats {
        SyncStats {
            block_bytes: BATCH_BLOCK_BYTES,
            ..sync(p50_us, p50_us * 2)
        }
    }

    /// A dedicated 16-core host, 64 GiB, root.
    fn big_host() -> Host {
        Host {
            cores_available: 16,
            cpus_online: (0..16).collect(),
            cpus_allowed: (0..16).collect(),
            numa_nodes: vec![NumaNode {
                id: 0,
                cpus: (0..16).collect(),
            }],
            mem_total_kb: Some(64 << 20),
            mem_available_kb: Some(60 << 20),
            memlock: Memlock::Unlimited,
            root: true,
            io_pressure_pct: Some(0.5),
        }
    }

    fn disk(rotational: Option<bool>) -> Disk {
        Disk {
            dir: PathBuf::from("/data"),
            rotational,
            ..Disk::default()
        }
    }

    fn class_of(p50_us: u64, p99_us: u64, batch_p50_us: u64, rotational: Option<bool>) -> Profile {
        disk_class(
            &sync(p50_us, p99_us),
            Some(&batch(batch_p50_us)),
            rotational,
        )
        .0
    }

    // ------------------------------------------------------------ decision rule

    #[test]
    fn disk_classes_by_sync_latency() {
        assert_eq!(class_of(40, 200, 60, Some(false)), Profile::Nvme);
        assert_eq!(
            class_of(150, 1000, 200, Some(false)),
            Profile::Nvme,
            "bound inclusive"
        );
        assert_eq!(
            class_of(130, 2700, 150, Some(true)),
            Profile::Nvme,
            "a fast p50 with a long tail (a shared virtual disk) keeps nvme's commit knobs"
        );
        assert_eq!(
            class_of(100, 300, 900, Some(false)),
            Profile::Nvme,
            "the batch ratio does not apply to a fast p50"
        );
        assert_eq!(class_of(151, 400, 200, Some(false)), Profile::SataSsd);
        assert_eq!(
            class_of(300, 9000, 450, Some(false)),
            Profile::SataSsd,
            "tail ignored"
        );
        assert_eq!(class_of(499, 900, 600, Some(false)), Profile::SataSsd);
        assert_eq!(
            class_of(500, 900, 600, Some(false)),
            Profile::CloudBlock,
            "p50 >= 500 µs"
        );
        assert_eq!(class_of(1500, 9000, 1700, None), Profile::CloudBlock);
        assert_eq!(class_of(1999, 9000, 2100, Some(false)), Profile::CloudBlock);
        assert_eq!(
            class_of(200, 600, 599, Some(false)),
            Profile::SataSsd,
            "just under 3 x"
        );
        assert_eq!(
            class_of(200, 600, 600, Some(false)),
            Profile::CloudBlock,
            "64 KiB costs 3 x"
        );
        assert_eq!(
            class_of(2000, 9000, 2500, Some(false)),
            Profile::Hdd,
            "p50 >= 2 ms whatever the flag"
        );
        assert_eq!(class_of(6000, 20000, 7000, Some(true)), Profile::Hdd);
        assert_eq!(
            class_of(1000, 3000, 1200, Some(true)),
            Profile::Hdd,
            "rotational and >= 1 ms"
        );
        assert_eq!(class_of(1000, 3000, 1200, Some(false)), Profile::CloudBlock);
        assert_eq!(
            class_of(200, 600, 300, Some(true)),
            Profile::SataSsd,
            "a rotational flag on a fast device (virtual disks) does not make it a disk"
        );
        // Without the 64 KiB probe (--check), the batch ratio is not a criterion.
        assert_eq!(disk_class(&sync(200, 600), None, None).0, Profile::SataSsd);
    }

    /// `tune` and `--check` agree: the profile chosen for a measured device draws no
    /// warning from `--check` on that same measurement.
    #[test]
    fn check_accepts_what_tune_chooses() {
        let p50s_us = [
            10, 50, 100, 150, 151, 300, 499, 500, 800, 999, 1000, 1500, 1999, 2000, 6000, 15000,
        ];
        for p50_us in p50s_us {
            for tail in [1, 3, 12, 40] {
                for batch_ratio in [1, 2, 3, 5] {
                    for rotational in [None, Some(false), Some(true)] {
                        let small = sync(p50_us, p50_us * tail);
                        let big = batch(p50_us * batch_ratio);
                        let (class, _) = disk_class(&small, Some(&big), rotational);
                        let config = class.config().expect("profile parses");
                        let disk = CheckDisk {
                            sync: Some(small),
                            rotational,
                            fs_type: Some("ext4".to_string()),
                            same_device: Some(false),
                        };
                        let findings = check(&config, &big_host(), &disk);
                        assert_eq!(
                            findings,
                            vec![],
                            "{} for p50 {p50_us} µs, tail x{tail}, batch x{batch_ratio}, {rotational:?}",
                            class.name()
                        );
                    }
                }
            }
        }
        // Not vacuous: a disk's wait on a fast device is refused.
        let fast = CheckDisk {
            sync: Some(sync(100, 300)),
            ..ssd_disk()
        };
        let hdd = Profile::Hdd.config().expect("parses");
        assert_eq!(
            keys(&check(&hdd, &big_host(), &fast)),
            ["corral.commit.maxWaitUs"]
        );
    }

    #[test]
    fn a_big_host_gets_its_disk_class() {
        let d = decide(
            &big_host(),
            &disk(Some(false)),
            &sync(50, 300),
            Some(&batch(70)),
        );
        assert_eq!(d.profile, Profile::Nvme);
        assert_eq!(d.disk_class, Profile::Nvme);
        assert!(d.why.iter().any(|w| w.contains("p50 50 µs")), "{:?}", d.why);
        assert!(
            d.why.iter().any(|w| w.contains("corral.shards (15)")),
            "{:?}",
            d.why
        );
        assert!(
            d.notes.iter().any(|n| n.contains("1.4 x a 4 KiB one")),
            "{:?}",
            d.notes
        );
        assert!(d.notes.iter().any(|n| n.contains("running as root")));

        let d = decide(
            &big_host(),
            &disk(Some(true)),
            &sync(7000, 30000),
            Some(&batch(8000)),
        );
        assert_eq!(d.profile, Profile::Hdd);
    }

    #[test]
    fn small_hosts_get_small_vm_and_keep_the_disk_class() {
        let mut host = big_host();
        host.cores_available = 2;
        let d = decide(
            &host,
            &disk(Some(true)),
            &sync(6000, 20000),
            Some(&batch(7000)),
        );
        assert_eq!(d.profile, Profile::SmallVm);
        assert_eq!(d.disk_class, Profile::Hdd);
        assert!(d.why[0].contains("2 cores available"), "{:?}", d.why);
        assert!(d.why.iter().any(|w| w.contains("hdd.cfg")), "{:?}", d.why);

        let mut host = big_host();
        host.mem_total_kb = Some(2 << 20);
        let d = decide(&host, &disk(Some(false)), &sync(50, 300), Some(&batch(70)));
        assert_eq!(d.profile, Profile::SmallVm);
        assert!(d.why[0].contains("2.0 GiB of memory"), "{:?}", d.why);

        let mut host = big_host();
        host.cores_available = 3;
        let d = decide(&host, &disk(Some(false)), &sync(50, 300), Some(&batch(70)));
        assert_eq!(d.profile, Profile::Nvme, "3 cores and 64 GiB is not small");
    }

    #[test]
    fn notes_explain_surprises() {
        let mut host = big_host();
        host.io_pressure_pct = Some(85.0);
        host.numa_nodes.push(NumaNode {
            id: 1,
            cpus: (16..32).collect(),
        });
        let mut tmp = disk(Some(true));
        tmp.fs_type = Some("tmpfs".to_string());
        let d = decide(&host, &tmp, &sync(1, 2), Some(&batch(2)));
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("flags the device rotational")),
            "{:?}",
            d.notes
        );
        assert!(d.notes.iter().any(|n| n.contains("tmpfs")), "{:?}", d.notes);
        assert!(
            d.notes.iter().any(|n| n.contains("2 NUMA nodes")),
            "{:?}",
            d.notes
        );
        assert!(
            d.notes.iter().any(|n| n.contains("I/O pressure was 85 %")),
            "{:?}",
            d.notes
        );
        let quiet = decide(
            &big_host(),
            &disk(Some(false)),
            &sync(50, 300),
            Some(&batch(70)),
        );
        assert!(
            !quiet.notes.iter().any(|n| n.contains("pressure")),
            "{:?}",
            quiet.notes
        );
    }

    #[test]
    fn overrides_bring_the_disk_class_to_a_small_vm() {
        let mut host = big_host();
        host.cores_available = 2;
        let d = decide(
            &host,
            &disk(Some(true)),
            &sync(6000, 20000),
            Some(&batch(7000)),
        );
        let o = overrides(&d);
        let get = |key: &str| {
            o.iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, v, _)| v.clone())
        };
        assert_eq!(get("corral.commit.maxWaitUs").as_deref(), Some("2000"));
        assert_eq!(get("corral.commit.maxBatch").as_deref(), Some("2048"));
        assert_eq!(get("fsync.warningthresholdms").as_deref(), Some("1000"));
        assert_eq!(o.len(), 3);
        let d = decide(
            &big_host(),
            &disk(Some(false)),
            &sync(50, 300),
            Some(&batch(70)),
        );
        assert_eq!(overrides(&d), vec![], "the profile is the disk's class");
    }

    #[test]
    fn idle_cpu_wakeups_are_noted_only_when_they_dominate() {
        let idle = |p50_us| SyncStats {
            engine: SyncEngine::Std,
            ..sync(p50_us, p50_us * 2)
        };
        let note = idle_note(&sync(130, 300), &idle(4000)).expect("4 ms against 130 µs");
        assert!(note.contains("waits 4.0 ms (p50) against 130 µs"), "{note}");
        assert_eq!(
            idle_note(&sync(130, 300), &idle(300)),
            None,
            "under 500 µs more"
        );
        assert_eq!(idle_note(&sync(5000, 9000), &idle(6000)), None, "under 3 x");
        assert!(
            idle_note(&sync(200, 400), &idle(700)).is_some(),
            "both bounds inclusive"
        );
    }

    #[test]
    fn little_memory_on_many_cores_writes_one_shard() {
        let mut host = big_host();
        host.mem_total_kb = Some(2 << 20);
        let d = decide(&host, &disk(Some(false)), &sync(50, 300), Some(&batch(70)));
        assert_eq!(d.profile, Profile::SmallVm);
        assert_eq!(d.shards_override, Some(1));
        assert!(
            overrides(&d)
                .iter()
                .any(|(k, v, _)| k == "corral.shards" && v == "1"),
            "{:?}",
            overrides(&d)
        );
        host.cores_available = 2;
        let d = decide(&host, &disk(Some(false)), &sync(50, 300), Some(&batch(70)));
        assert_eq!(
            d.shards_override, None,
            "2 cores: the default decides by mode"
        );
    }

    #[test]
    fn memlock_notes() {
        let mut host = big_host();
        host.root = false;
        host.cores_available = 2;
        host.memlock = Memlock::Bytes(8 << 20);
        let d = decide(&host, &disk(Some(false)), &sync(50, 300), Some(&batch(70)));
        assert!(
            d.notes.iter().any(|n| n.contains("ulimit -l is 8.0 MiB")
                && n.contains("enough for small-vm.cfg's 512 KiB")),
            "{:?}",
            d.notes
        );
        host.memlock = Memlock::Bytes(256 << 10);
        let d = decide(&host, &disk(Some(false)), &sync(50, 300), Some(&batch(70)));
        assert!(
            d.notes
                .iter()
                .any(|n| n.contains("needs 512 KiB of locked memory")
                    && n.contains("raise the limit")),
            "{:?}",
            d.notes
        );
    }

    // ------------------------------------------------------------ profiles

    fn scratch(tag: &str) -> PathBuf {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "corral-tune-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        dir
    }

    fn tuning_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tuning")
    }

    #[test]
    fn every_profile_parses_cleanly_and_comments_each_value() {
        let mut names: Vec<String> = Profile::ALL.iter().map(|p| p.file_name()).collect();
        names.push("pseudo-cluster.cfg".to_string());
        for name in &names {
            let text = std::fs::read_to_string(tuning_dir().join(name)).expect("profile file");
            let c = Config::parse(
                &format!("{text}\ndataDir=d\nclientPort=2181\n"),
                Path::new(name),
            )
            .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(c.unknown_keys.is_empty(), "{name}: {:?}", c.unknown_keys);
            assert!(
                c.not_applicable.is_empty(),
                "{name}: {:?}",
                c.not_applicable
            );
            assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
            assert!(c.force_sync, "{name}: no profile turns syncing off");
            // Every key line follows a comment saying why.
            let lines: Vec<&str> = text.lines().collect();
            for (i, line) in lines.iter().enumerate() {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                assert!(
                    i > 0 && lines[i - 1].starts_with('#'),
                    "{name}:{}: {line} has no comment above it",
                    i + 1
                );
            }
        }
        // The compiled-in copies are the files.
        for p in Profile::ALL {
            let on_disk = std::fs::read_to_string(tuning_dir().join(p.file_name())).expect("file");
            assert_eq!(p.text(), on_disk, "{}", p.name());
            p.config().unwrap_or_else(|e| panic!("{}: {e}", p.name()));
        }
    }

    #[test]
    fn profiles_differ_where_the_hardware_does() {
        let get = |p: Profile| p.config().expect("parses");
        let (nvme, ssd, cloud, hdd, small) = (
            get(Profile::Nvme),
            get(Profile::SataSsd),
            get(Profile::CloudBlock),
            get(Profile::Hdd),
            get(Profile::SmallVm),
        );
        // The slower the sync, the longer a loaded batch may wait and the more it may hold.
        let waits: Vec<u32> = [&nvme, &ssd, &cloud, &hdd]
            .iter()
            .map(|c| c.corral.commit_max_wait_us)
            .collect();
        assert!(waits.windows(2).all(|w| w[0] < w[1]), "{waits:?}");
        let batches: Vec<u32> = [&nvme, &ssd, &cloud, &hdd]
            .iter()
            .map(|c| c.corral.commit_max_batch)
            .collect();
        assert!(batches.windows(2).all(|w| w[0] < w[1]), "{batches:?}");
        assert_eq!(nvme.corral.pinning, Pinning::On);
        assert_eq!(small.corral.pinning, Pinning::Off);
        assert_eq!(small.global_outstanding_limit, 250);
        assert!(hdd.snap_count > nvme.snap_count && small.snap_count < nvme.snap_count);
    }

    #[test]
    fn each_profile_is_included_by_a_zoo_cfg_and_explicit_keys_override() {
        let dir = scratch("include");
        let mut names: Vec<String> = Profile::ALL.iter().map(|p| p.file_name()).collect();
        names.push("pseudo-cluster.cfg".to_string());
        for name in names {
            let profile = tuning_dir().join(&name);
            let bare = Config::parse(
                &format!(
                    "{}\ndataDir=d\nclientPort=2181\n",
                    std::fs::read_to_string(&profile).expect("read")
                ),
                Path::new(&name),
            )
            .expect("parses");
            let cfg = dir.join(format!("zoo-{name}"));
            std::fs::write(
                &cfg,
                format!(
                    "dataDir={}\nclientPort=2181\ncorral.profile={}\ncorral.ioMemoryKb=777\nsnapCount=4242\n",
                    dir.display(),
                    profile.display()
                ),
            )
            .expect("write cfg");
            let c = Config::load(&cfg).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(c.corral.profile.as_deref(), Some(profile.as_path()));
            assert_eq!(c.corral.io_memory_kb, 777, "{name}: the cfg overrides");
            assert_eq!(c.snap_count, 4242, "{name}: the cfg overrides");
            assert_eq!(
                c.corral.pinning, bare.corral.pinning,
                "{name}: from the profile"
            );
            assert_eq!(c.corral.shards, bare.corral.shards, "{name}");
            assert_eq!(
                c.corral.commit_max_wait_us, bare.corral.commit_max_wait_us,
                "{name}"
            );
            assert_eq!(
                c.corral.commit_max_batch, bare.corral.commit_max_batch,
                "{name}"
            );
            assert_eq!(c.pre_alloc_kb, bare.pre_alloc_kb, "{name}");
            assert!(c.warnings.is_empty(), "{name}: {:?}", c.warnings);
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    // ------------------------------------------------------------ --check

    fn cfg(extra: &str) -> Config {
        Config::parse(
            &format!("dataDir=/var/lib/zk\nclientPort=2181\n{extra}"),
            Path::new("zoo.cfg"),
        )
        .expect("valid config")
    }

    fn keys(findings: &[Finding]) -> Vec<&'static str> {
        findings.iter().map(|f| f.key).collect()
    }

    fn ssd_disk() -> CheckDisk {
        CheckDisk {
            sync: Some(sync(300, 900)),
            rotational: Some(false),
            fs_type: Some("ext4".to_string()),
            same_device: Some(true),
        }
    }

    #[test]
    fn a_sensible_config_on_a_big_host_is_clean() {
        let c = cfg("corral.shards=15\ncorral.pinning=on\ncorral.commit.maxWaitUs=100\n");
        assert_eq!(check(&c, &big_host(), &ssd_disk()), vec![]);
        // And ZooKeeper's defaults are fine there too.
        assert_eq!(check(&cfg(""), &big_host(), &ssd_disk()), vec![]);
    }

    #[test]
    fn pinning_more_executors_than_cores() {
        let c = cfg("corral.shards=16\ncorral.pinning=on\n");
        let f = check(&c, &big_host(), &ssd_disk());
        assert_eq!(keys(&f), ["corral.pinning"]);
        assert!(
            f[0].message.contains("17 executors on 16 cores"),
            "{}",
            f[0].message
        );
        assert!(
            f[0].message.contains("corral.shards=15"),
            "{}",
            f[0].message
        );

        let mut c = cfg("corral.shards=3\n");
        c.corral.pinning = Pinning::Cores(vec![0, 1, 2]);
        let f = check(&c, &big_host(), &ssd_disk());
        assert_eq!(keys(&f), ["corral.pinning"]);
        assert!(f[0]
            .message
            .contains("4 executors (3 shards + ZAB) pinned to 3 listed cores"));

        // Unpinned, more shards than cores still time-share.
        let f = check(&cfg("corral.shards=20\n"), &big_host(), &ssd_disk());
        assert_eq!(keys(&f), ["corral.shards"]);
    }

    #[test]
    fn pinned_cores_outside_the_host_or_cpuset() {
        let mut host = big_host();
        host.cpus_allowed = vec![4, 5, 6, 7];
        host.cores_available = 4;
        let mut c = cfg("corral.shards=2\n");
        c.corral.pinning = Pinning::Cores(vec![4, 5, 40]);
        let f = check(&c, &host, &ssd_disk());
        assert_eq!(keys(&f), ["corral.pinning"]);
        assert!(
            f[0].message.contains("cores 40 are not available"),
            "{}",
            f[0].message
        );

        let c = cfg("corral.shards=2\ncorral.pinning=on\n");
        let f = check(&c, &host, &ssd_disk());
        assert_eq!(keys(&f), ["corral.pinning"]);
        assert!(f[0].message.contains("uses cores 0-2"), "{}", f[0].message);
        assert!(
            f[0].message.contains("corral.pinning=4,5,6,7"),
            "{}",
            f[0].message
        );
    }

    #[test]
    fn io_memory_beyond_memlock_unless_root() {
        let c = cfg("corral.shards=3\ncorral.ioMemoryKb=8192\n");
        let mut host = big_host();
        host.root = false;
        host.memlock = Memlock::Bytes(8 << 20);
        let f = check(&c, &host, &ssd_disk());
        assert_eq!(keys(&f), ["corral.ioMemoryKb"]);
        assert!(
            f[0].message.contains("8.2 MiB of locked memory"),
            "{}",
            f[0].message
        );
        host.memlock = Memlock::Unlimited;
        assert_eq!(check(&c, &host, &ssd_disk()), vec![]);
        host.memlock = Memlock::Bytes(8 << 20);
        host.root = true;
        assert_eq!(check(&c, &host, &ssd_disk()), vec![]);
        let f = check(&cfg("corral.ioMemoryKb=100\n"), &host, &ssd_disk());
        assert_eq!(keys(&f), ["corral.ioMemoryKb"]);
    }

    #[test]
    fn durability_and_log_settings() {
        let f = check(&cfg("forceSync=no\n"), &big_host(), &ssd_disk());
        assert_eq!(keys(&f), ["forceSync"]);
        let f = check(&cfg("preAllocSize=1024\n"), &big_host(), &ssd_disk());
        assert_eq!(keys(&f), ["preAllocSize"]);
        assert_eq!(
            check(&cfg("preAllocSize=4096\n"), &big_host(), &ssd_disk()),
            vec![]
        );
        let f = check(&cfg("snapCount=500\n"), &big_host(), &ssd_disk());
        assert_eq!(keys(&f), ["snapCount"]);
        let f = check(&cfg("corral.commit.maxBatch=1\n"), &big_host(), &ssd_disk());
        assert_eq!(keys(&f), ["corral.commit.maxBatch"]);
        let mut tmp = ssd_disk();
        tmp.fs_type = Some("tmpfs".to_string());
        assert_eq!(keys(&check(&cfg(""), &big_host(), &tmp)), ["dataLogDir"]);
    }

    #[test]
    fn commit_wait_against_the_measured_sync() {
        // 300 µs p50: waiting up to 600 µs is fine, 601 is not.
        assert_eq!(
            check(
                &cfg("corral.commit.maxWaitUs=600\n"),
                &big_host(),
                &ssd_disk()
            ),
            vec![]
        );
        let f = check(
            &cfg("corral.commit.maxWaitUs=2000\n"),
            &big_host(),
            &ssd_disk(),
        );
        assert_eq!(keys(&f), ["corral.commit.maxWaitUs"]);
        assert!(
            f[0].message.contains("use at most 150 µs"),
            "{}",
            f[0].message
        );

        // A disk: 2000 is right, 0 is not.
        let hdd = CheckDisk {
            sync: Some(sync(6000, 20000)),
            rotational: Some(true),
            fs_type: Some("xfs".to_string()),
            same_device: Some(false),
        };
        assert_eq!(
            check(&cfg("corral.commit.maxWaitUs=2000\n"), &big_host(), &hdd),
            vec![]
        );
        let f = check(&cfg("corral.commit.maxWaitUs=0\n"), &big_host(), &hdd);
        assert_eq!(keys(&f), ["corral.commit.maxWaitUs"]);
        assert!(
            f[0].message
                .contains("disk-class device (fdatasync p50 6.0 ms)"),
            "{}",
            f[0].message
        );
        // Unmeasured: the flag alone decides.
        let unmeasured = CheckDisk {
            sync: None,
            ..hdd.clone()
        };
        assert_eq!(
            keys(&check(
                &cfg("corral.commit.maxWaitUs=0\n"),
                &big_host(),
                &unmeasured
            )),
            ["corral.commit.maxWaitUs"]
        );
        // A flagged-rotational virtual disk that syncs in 300 µs is not a disk.
        let virtual_disk = CheckDisk {
            rotational: Some(true),
            ..ssd_disk()
        };
        assert_eq!(
            check(
                &cfg("corral.commit.maxWaitUs=0\n"),
                &big_host(),
                &virtual_disk
            ),
            vec![]
        );

        // Log and snapshots sharing one spindle.
        let shared = CheckDisk {
            same_device: Some(true),
            ..hdd
        };
        let f = check(&cfg("corral.commit.maxWaitUs=2000\n"), &big_host(), &shared);
        assert_eq!(keys(&f), ["dataLogDir"]);
    }

    #[test]
    fn fsync_warning_threshold_below_the_tail() {
        let slow = CheckDisk {
            sync: Some(sync(1500, 25000)),
            rotational: Some(false),
            ..CheckDisk::default()
        };
        let f = check(
            &cfg("fsync.warningthresholdms=20\ncorral.commit.maxWaitUs=300\n"),
            &big_host(),
            &slow,
        );
        assert_eq!(keys(&f), ["fsync.warningthresholdms"]);
        assert_eq!(
            check(
                &cfg("fsync.warningthresholdms=26\ncorral.commit.maxWaitUs=300\n"),
                &big_host(),
                &slow
            ),
            vec![]
        );
    }

    #[test]
    fn locate_finds_the_line_in_the_cfg_then_the_profile() {
        let dir = scratch("locate");
        let profile = dir.join("p.cfg");
        std::fs::write(&profile, "# why\ncorral.pinning=on\nsnapCount=100\n").expect("write");
        let zoo = dir.join("zoo.cfg");
        std::fs::write(
            &zoo,
            format!(
                "dataDir={}\nclientPort=2181\ncorral.profile=p.cfg\n# snapCount=1\nzookeeper.snapCount = 200\nmulti=a\\\n  forceSync=no\n",
                dir.display()
            ),
        )
        .expect("write");
        let c = Config::load(&zoo).expect("loads");
        assert_eq!(c.snap_count, 200);
        assert_eq!(
            locate(&c, "snapCount"),
            Some(format!("{}:5", zoo.display()))
        );
        assert_eq!(
            locate(&c, "corral.pinning"),
            Some(format!("{}:2", profile.display()))
        );
        assert_eq!(
            locate(&c, "forceSync"),
            None,
            "a continuation line is not a key"
        );
        assert_eq!(locate(&c, "preAllocSize"), None);
        let _ = std::fs::remove_dir_all(&dir);
    }

    // ------------------------------------------------------------ helpers

    #[test]
    fn sysfs_and_proc_formats() {
        assert_eq!(
            parse_cpu_list("0-3,8,10-11"),
            Some(vec![0, 1, 2, 3, 8, 10, 11])
        );
        assert_eq!(parse_cpu_list("0"), Some(vec![0]));
        assert_eq!(parse_cpu_list(""), Some(vec![]));
        assert_eq!(parse_cpu_list("3-1"), None);
        assert_eq!(parse_cpu_list("a"), None);
        assert_eq!(parse_cpu_list("0-99999999"), None);
        assert_eq!(fmt_cpu_list(&[0, 1, 2, 3, 8, 10, 11]), "0-3,8,10-11");
        assert_eq!(fmt_cpu_list(&[]), "unknown");
        let meminfo = "MemTotal:       24500000 kB\nMemFree: 1 kB\nMemAvailable:   20000000 kB\n";
        assert_eq!(meminfo_kb(meminfo, "MemTotal"), Some(24_500_000));
        assert_eq!(meminfo_kb(meminfo, "MemAvailable"), Some(20_000_000));
        assert_eq!(meminfo_kb(meminfo, "Mem"), None);
        let mountinfo = "22 1 254:0 / / rw,relatime shared:1 - ext4 /dev/vda rw\n\
                         30 22 0:25 / /tmp rw shared:5 - tmpfs tmpfs rw\n";
        assert_eq!(fs_type_of(mountinfo, 254, 0).as_deref(), Some("ext4"));
        assert_eq!(fs_type_of(mountinfo, 0, 25).as_deref(), Some("tmpfs"));
        assert_eq!(fs_type_of(mountinfo, 8, 1), None);
        let psi = "some avg10=93.26 avg60=91.10 avg300=64.79 total=4908712089\nfull avg10=0.00 avg60=0.00 avg300=0.13 total=2250723768\n";
        assert_eq!(parse_pressure(psi), Some(93.26));
        assert_eq!(parse_pressure("full avg10=1.00\n"), None);
    }

    #[test]
    fn relative_paths_and_units() {
        assert_eq!(
            relative_path(
                Path::new("/srv/zk/conf"),
                Path::new("/srv/zk/tuning/nvme.cfg")
            ),
            PathBuf::from("../tuning/nvme.cfg")
        );
        assert_eq!(
            relative_path(Path::new("/srv"), Path::new("/srv/tuning/hdd.cfg")),
            PathBuf::from("tuning/hdd.cfg")
        );
        assert_eq!(
            beside_or_absolute(
                Path::new("/srv/zk/conf"),
                Path::new("/srv/zk/tuning/nvme.cfg")
            ),
            PathBuf::from("../tuning/nvme.cfg")
        );
        assert_eq!(
            beside_or_absolute(Path::new("/tmp/x"), Path::new("/srv/zk/tuning/nvme.cfg")),
            PathBuf::from("/srv/zk/tuning/nvme.cfg"),
            "only / in common: absolute"
        );
        assert_eq!(fmt_ns(1_500), "1.5 µs");
        assert_eq!(fmt_ns(153_000), "153 µs");
        assert_eq!(fmt_ns(2_500_000), "2.5 ms");
        assert_eq!(fmt_kb(8192), "8.0 MiB");
        assert_eq!(json_str("a\"b\\\n"), "\"a\\\"b\\\\\\u000a\"");
    }

    #[test]
    fn the_probe_measures_and_cleans_up() {
        for engine in [SyncEngine::Uring, SyncEngine::Std] {
            let dir = scratch("probe");
            let (stats, used) = probe_syncs(
                &dir,
                &[SMALL_BLOCK_BYTES, BATCH_BLOCK_BYTES],
                Duration::from_millis(200),
                engine,
            )
            .expect("probe");
            if engine == SyncEngine::Std {
                assert_eq!(used, SyncEngine::Std);
            }
            assert_eq!(stats.len(), 2);
            for s in &stats {
                assert_eq!(s.engine, used);
                assert!(s.syncs > 0, "{engine:?}");
                assert!(
                    s.p50_ns <= s.p90_ns && s.p90_ns <= s.p99_ns && s.p99_ns <= s.max_ns,
                    "{s:?}"
                );
            }
            assert_eq!(stats[0].block_bytes, SMALL_BLOCK_BYTES);
            assert_eq!(stats[1].block_bytes, BATCH_BLOCK_BYTES);
            assert_eq!(
                std::fs::read_dir(&dir).expect("dir").count(),
                0,
                "probe file removed"
            );
            let _ = std::fs::remove_dir_all(&dir);
        }
        assert_eq!(next_offset(0, 4096), 4096);
        assert_eq!(
            next_offset(PROBE_FILE_BYTES - 4096, 4096),
            0,
            "wraps before the end"
        );
    }
}
