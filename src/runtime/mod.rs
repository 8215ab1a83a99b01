//! glommio glue: executor placement, the wake-up primitive, wall-clock time.
//!
//! Everything that names glommio outside `shard/` and `server/` drivers lives here, so the
//! sans-IO cores never see the runtime (design.md) and a runtime change stays local.

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::{ExecutorJoinHandle, LocalExecutorBuilder, Placement};
use std::future::Future;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Wall-clock milliseconds since the Unix epoch (ZooKeeper's ctime/mtime unit).
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A level-triggered wake-up for one waiting task on the same executor: `notify` is
/// idempotent until the waiter runs, so any number of producers cost one wake-up.
pub struct Notify {
    tx: LocalSender<()>,
    rx: LocalReceiver<()>,
}

impl Default for Notify {
    fn default() -> Self {
        let (tx, rx) = local_channel::new_bounded(1);
        Notify { tx, rx }
    }
}

impl Notify {
    pub fn notify(&self) {
        // Full means a wake-up is already pending: nothing to add.
        let _ = self.tx.try_send(());
    }

    pub async fn wait(&self) {
        let _ = self.rx.recv().await;
    }
}

/// A listening socket for one shard: SO_REUSEPORT so every shard can listen on the client
/// port (the kernel spreads connections), SO_REUSEADDR so a restart is not refused while
/// the previous run's connections sit in TIME_WAIT. Must run inside a glommio executor.
pub fn reuseport_listener(
    addr: std::net::SocketAddr,
    backlog: i32,
) -> std::io::Result<glommio::net::TcpListener> {
    listener(addr, backlog, true)
}

/// A listening socket with SO_REUSEADDR only (one listener per address: the quorum port),
/// so a restarted server gets its port back while the old connections sit in TIME_WAIT.
pub fn reuseaddr_listener(
    addr: std::net::SocketAddr,
    backlog: i32,
) -> std::io::Result<glommio::net::TcpListener> {
    listener(addr, backlog, false)
}

fn listener(
    addr: std::net::SocketAddr,
    backlog: i32,
    reuse_port: bool,
) -> std::io::Result<glommio::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    use std::os::unix::io::{FromRawFd, IntoRawFd};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(reuse_port)?;
    socket.bind(&addr.into())?;
    socket.listen(if backlog > 0 { backlog } else { 1024 })?;
    let fd = socket.into_raw_fd();
    // SAFETY: `fd` is a socket we just created, bound and set listening; `into_raw_fd`
    // gave up our ownership, so the glommio listener becomes its only owner and closes it.
    Ok(unsafe { glommio::net::TcpListener::from_raw_fd(fd) })
}

/// Gives the pages of freed heap memory back to the kernel. A snapshot captures a copy of
/// every node on one thread and encodes it on another; once written, glibc keeps the freed
/// chunks in its per-thread arenas, scattered among live ones, and returns pages to the
/// kernel only from the top of a heap: this gives back every whole free page. Call it off
/// the executors (it walks every arena, each under its lock, for a few milliseconds per
/// GiB), after a large transient allocation is dropped.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only inspects and trims glibc's own arenas under their locks; it
    // takes no pointers from us and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// What [`release_code_pages`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CodeRelease {
    /// Code mappings whose page-table entries were dropped.
    pub mappings: usize,
    /// Their size, resident or not (the resident part is what leaves the resident set).
    pub mapping_bytes: u64,
    /// Code mappings left alone because they hold private copies of pages (see below).
    pub skipped_with_private_pages: usize,
    /// Code mappings the kernel refused (locked by mlockall, for one).
    pub refused: usize,
}

/// Drops this process's page-table entries for the executable code of its binary and
/// shared libraries (the private `r-xp` file mappings) once the server is up. Start-up runs
/// code from all over the binary (command line, config, recovery, executor set-up), and the
/// kernel maps 64 KiB around every code page a fault touches: about 4 MiB of the binary's
/// 6 MiB of code is resident after a start although an idle or loaded server runs a small
/// part of it. Afterwards only the code that still runs comes back, by minor faults from
/// the page cache, where the file's pages stay.
///
/// A code mapping is released only if it holds no private copy of any page (`Anonymous:
/// 0 kB` in `/proc/self/smaps`): such a copy is a page someone wrote after mapping it (text
/// relocations, a debugger's breakpoint, a uprobe), which dropping would undo. Every other
/// page of the mapping is the file's own page, which the kernel may drop and read again at
/// any moment anyway. Data and relocated read-only segments (RELRO) are not `r-xp` and are
/// left alone.
///
/// The cost: code that runs rarely (election, sync) is no longer mapped, so the page cache
/// may evict it under pressure and the next failover read it back from the disk.
/// `corral.releaseStartupCode=false` keeps it mapped.
pub fn release_code_pages() -> CodeRelease {
    let mut release = CodeRelease::default();
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return release;
    };
    for mapping in code_mappings(&smaps) {
        if mapping.anonymous_kib > 0 {
            release.skipped_with_private_pages += 1;
            continue;
        }
        let len_bytes = mapping.end - mapping.start;
        // SAFETY: [start, end) is a whole mapping of this process that the kernel listed as
        // private, executable, not writable and file-backed, with no private (anonymous)
        // page: every page in it is the file's. MADV_DONTNEED on it only removes
        // page-table entries; a later access faults the same file page back in, as after
        // the kernel's own reclaim of clean file pages, which can happen at any moment. The
        // listing cannot be stale: nothing in this process unmaps code (it never dlcloses),
        // so the range still holds that mapping. The call creates no Rust reference, and a
        // thread running code in the range meanwhile just takes a fault.
        let rc = unsafe {
            libc::madvise(
                mapping.start as *mut libc::c_void,
                len_bytes,
                libc::MADV_DONTNEED,
            )
        };
        if rc == 0 {
            release.mappings += 1;
            release.mapping_bytes += len_bytes as u64;
        } else {
            release.refused += 1;
        }
    }
    release
}

/// One private, executable, non-writable file mapping of a `/proc/<pid>/smaps` text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CodeMapping {
    start: usize,
    end: usize,
    /// The `Anonymous:` line: private copies of pages in the mapping.
    anonymous_kib: u64,
}

/// The code mappings of a `/proc/<pid>/smaps` text: each mapping is a header line (`start-end
/// perms offset dev inode [path]`, the path possibly with spaces or ` (deleted)`) followed by
/// `Key: value` lines.
fn code_mappings(smaps: &str) -> Vec<CodeMapping> {
    let mut found = Vec::new();
    let mut current: Option<CodeMapping> = None;
    for line in smaps.lines() {
        let mut fields = line.split_ascii_whitespace();
        let Some(first) = fields.next() else {
            continue;
        };
        if first.ends_with(':') {
            if first == "Anonymous:" {
                if let Some(m) = current.as_mut() {
                    m.anonymous_kib = fields
                        .next()
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(u64::MAX);
                }
            }
            continue;
        }
        // A header: the previous mapping is complete.
        found.extend(current.take());
        let perms = fields.next();
        let path = fields.nth(3);
        let Some((start, end)) = first.split_once('-') else {
            continue;
        };
        if perms != Some("r-xp") || !path.is_some_and(|p| p.starts_with('/')) {
            continue;
        }
        let (Ok(start), Ok(end)) = (
            usize::from_str_radix(start, 16),
            usize::from_str_radix(end, 16),
        ) else {
            continue;
        };
        if end > start {
            // Until its Anonymous line is read, count the mapping as holding private pages.
            current = Some(CodeMapping {
                start,
                end,
                anonymous_kib: u64::MAX,
            });
        }
    }
    found.extend(current);
    found
}

/// Where an executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorePin {
    /// Let the kernel schedule the thread (pseudo-clusters, shared hosts).
    Unpinned,
    /// Pin to this CPU (dedicated hosts).
    Core(usize),
}

/// How long [`yield_to_io`] parks its task: well above the time from making the timer to
/// its first poll, so the task does park, and short beside a step of work between yields
/// (a snapshot step of 1024 nodes takes ~0.7 ms).
const YIELD_TO_IO: Duration = Duration::from_micros(50);

/// Lets the executor take in its I/O (socket data, finished syncs, other executors'
/// messages) before this task goes on. `yield_now` does not: a task that only yields stays
/// runnable, its task queue never empties, and glommio 0.9 polls I/O only once the queue
/// is empty or its preemption timer (100 ms) fires. A long walk that yields between its
/// steps would then hold the executor's I/O back up to 100 ms at a time, however short the
/// steps. A short timer parks the task instead, and the executor polls while it waits.
pub async fn yield_to_io() {
    glommio::timer::sleep(YIELD_TO_IO).await;
}

/// How often every executor wakes up even when it has nothing to do (see [`spawn_executor`]).
pub const STALL_GUARD_INTERVAL: Duration = Duration::from_millis(20);

/// Starts an executor built by [`executor_builder`] running `main`, and beside it a task
/// that wakes the executor every [`STALL_GUARD_INTERVAL`]. glommio 0.9.0's run loop can park
/// an executor that still has runnable tasks: when a completion is already waiting in its
/// latency ring as it goes to run its task queues (for one, a preemption timer that fired
/// while the thread was descheduled), `run_task_queues` stops before running anything and
/// reports "nothing ran", the loop parks, the reactor consumes that completion (which wakes
/// no task) and sleeps until the next event. With nothing else due the executor never comes
/// back; `cargo test` caught it as a hung log-writer test about once in a few hundred runs.
/// The guard's timer is such an event, so a stall lasts at most this long. (Fixed upstream
/// in a later glommio; 0.9.0 is the version this project builds on.)
pub fn spawn_executor<G, F, T>(
    builder: LocalExecutorBuilder,
    main: G,
) -> glommio::Result<ExecutorJoinHandle<T>, ()>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    builder.spawn(move || async move {
        start_stall_guard();
        main().await
    })
}

/// [`spawn_executor`] on an unpinned executor with 512 KiB of io memory: for tests and
/// tools that need one glommio executor of their own.
pub fn spawn_unpinned<G, F, T>(name: &str, main: G) -> glommio::Result<ExecutorJoinHandle<T>, ()>
where
    G: FnOnce() -> F + Send + 'static,
    F: Future<Output = T> + 'static,
    T: Send + 'static,
{
    spawn_executor(executor_builder(name, CorePin::Unpinned, 512 << 10), main)
}

/// The guard of [`spawn_executor`]: run on the executor it guards.
fn start_stall_guard() {
    glommio::spawn_local(async {
        loop {
            glommio::timer::sleep(STALL_GUARD_INTERVAL).await;
        }
    })
    .detach();
}

/// io memory of a shard executor: glommio's minimum. glommio draws the buffers of direct file
/// I/O from it, and only the ZAB executor does any (the log's writes, which get
/// `corral.ioMemoryKb`); shards serve sockets, which never use it. Registered memory is
/// pinned, so it is resident from the start and counts against `ulimit -l`.
pub const SHARD_IO_MEMORY_BYTES: usize = 64 * 1024;

/// Builds an executor with our sizing. `io_memory_bytes` is registered with io_uring
/// against RLIMIT_MEMLOCK, which is why it is a config knob. The ring depth is the default
/// of `corral.ioRingDepth`; the server sets the configured one on top.
pub fn executor_builder(name: &str, pin: CorePin, io_memory_bytes: usize) -> LocalExecutorBuilder {
    let placement = match pin {
        CorePin::Unpinned => Placement::Unbound,
        CorePin::Core(cpu) => Placement::Fixed(cpu),
    };
    LocalExecutorBuilder::new(placement)
        .name(name)
        .io_memory(io_memory_bytes)
        .ring_depth(128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_mappings_are_the_private_executable_file_mappings() {
        let smaps = "\
55d0a0000000-55d0a0100000 r--p 00000000 08:01 1234 /usr/bin/corral
Size:               1024 kB
Anonymous:             0 kB
55d0a0100000-55d0a0500000 r-xp 00100000 08:01 1234 /usr/bin/corral
Size:               4096 kB
Anonymous:             0 kB
55d0a0540000-55d0a0550000 rw-p 00540000 08:01 1234 /usr/bin/corral
Anonymous:            64 kB
7f0000000000-7f0000010000 r-xs 00000000 08:01 99 /dev/shm/shared code
Anonymous:             0 kB
7f0000100000-7f0000200000 r-xp 00028000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
Anonymous:             4 kB
7f0000210000-7f0000220000 r-xp 00000000 08:01 78 /opt/my app/lib.so (deleted)
Rss:                  12 kB
Anonymous:             0 kB
7f0000300000-7f0000301000 r-xp 00000000 00:00 0 [vdso]
Anonymous:             0 kB
7f0000400000-7f0000401000 r-xp 00000000 00:00 0
Anonymous:             0 kB
7f0000500000-7f0000501000 r-xp 00000000 08:01 79 /usr/lib/no-anonymous-line.so
";
        let mapping = |start, end, anonymous_kib| CodeMapping {
            start,
            end,
            anonymous_kib,
        };
        assert_eq!(
            code_mappings(smaps),
            vec![
                mapping(0x55d0a0100000, 0x55d0a0500000, 0),
                mapping(0x7f0000100000, 0x7f0000200000, 4),
                mapping(0x7f0000210000, 0x7f0000220000, 0),
                mapping(0x7f0000500000, 0x7f0000501000, u64::MAX),
            ]
        );
    }

    /// Resident KiB of this test binary's code mappings, if /proc says.
    fn resident_code_kib() -> Option<u64> {
        let exe = std::fs::read_link("/proc/self/exe").ok()?;
        let exe = exe.to_string_lossy().into_owned();
        let smaps = std::fs::read_to_string("/proc/self/smaps").ok()?;
        let mut in_code = false;
        let mut kib = 0;
        for line in smaps.lines() {
            let mut fields = line.split_ascii_whitespace();
            let first = fields.next().unwrap_or("");
            if !first.ends_with(':') {
                let perms = fields.next().unwrap_or("");
                in_code = perms == "r-xp" && line.ends_with(exe.as_str());
            } else if in_code && first == "Rss:" {
                kib += fields
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        Some(kib)
    }

    #[test]
    fn released_code_pages_leave_the_resident_set() {
        let (Some(before_kib), Ok(smaps)) = (
            resident_code_kib(),
            std::fs::read_to_string("/proc/self/smaps"),
        ) else {
            return; // no /proc here: nothing to release either
        };
        assert!(before_kib > 0, "the test binary's code is resident");
        let releasable: Vec<CodeMapping> = code_mappings(&smaps)
            .into_iter()
            .filter(|m| m.anonymous_kib == 0)
            .collect();
        let release = release_code_pages();
        assert_eq!(release.refused, 0);
        assert_eq!(release.mappings, releasable.len());
        assert_eq!(
            release.mapping_bytes,
            releasable
                .iter()
                .map(|m| (m.end - m.start) as u64)
                .sum::<u64>()
        );
        let after_kib = resident_code_kib().unwrap_or(0);
        assert!(
            after_kib < before_kib,
            "resident code {before_kib} KiB before, {after_kib} KiB after"
        );
    }
}
