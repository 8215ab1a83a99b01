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

/// Drops this process's page-table entries for the executable code of its binary and
/// shared libraries (every `r-xp` file mapping) and returns how many bytes of mappings it
/// covered. Start-up runs code from all over the binary (command line, config, recovery,
/// executor set-up), and the kernel maps 64 KiB around every code page a fault touches:
/// about 4 MiB of the binary's 6 MiB of code is resident after a start although an idle or
/// loaded server runs a small part of it. Once the server is up, this lets only the code
/// that still runs come back, by minor faults from the page cache (the file's pages stay
/// there; nothing is read from the disk unless the kernel had dropped them anyway).
///
/// Code mappings are the only ones touched: they are mapped from their file and never
/// written (no text relocations in a position-independent executable), so each page
/// faulted in again is byte for byte the one dropped. Data and relocated read-only
/// segments (RELRO) hold private copies and are left alone. A mapping the kernel refuses
/// (locked by mlockall, for one) is skipped.
pub fn release_code_pages() -> u64 {
    let Ok(maps) = std::fs::read_to_string("/proc/self/maps") else {
        return 0;
    };
    let mut released_bytes = 0;
    for (start, end) in code_mappings(&maps) {
        // SAFETY: [start, end) is a whole mapping of this process listed by the kernel as
        // private, executable and not writable, backed by a file. MADV_DONTNEED on such a
        // mapping only removes page-table entries: a later access faults the page in again
        // from the same file, as after the kernel's own reclaim of clean pages, which can
        // happen at any moment anyway. The call takes no Rust references, so no aliasing
        // rule is involved, and a thread running code in the range meanwhile just faults.
        let rc =
            unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
        if rc == 0 {
            released_bytes += (end - start) as u64;
        }
    }
    released_bytes
}

/// The `(start, end)` addresses of the private, executable, non-writable file mappings in a
/// `/proc/<pid>/maps` text (`start-end perms offset dev inode path`).
fn code_mappings(maps: &str) -> Vec<(usize, usize)> {
    maps.lines()
        .filter_map(|line| {
            let mut fields = line.split_ascii_whitespace();
            let range = fields.next()?;
            let perms = fields.next()?;
            let path = fields.nth(3)?;
            if perms != "r-xp" || !path.starts_with('/') {
                return None;
            }
            let (start, end) = range.split_once('-')?;
            let start = usize::from_str_radix(start, 16).ok()?;
            let end = usize::from_str_radix(end, 16).ok()?;
            (end > start).then_some((start, end))
        })
        .collect()
}

/// Where an executor runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CorePin {
    /// Let the kernel schedule the thread (pseudo-clusters, shared hosts).
    Unpinned,
    /// Pin to this CPU (dedicated hosts).
    Core(usize),
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
        let maps = "\
55d0a0000000-55d0a0100000 r--p 00000000 08:01 1234 /usr/bin/corral
55d0a0100000-55d0a0500000 r-xp 00100000 08:01 1234 /usr/bin/corral
55d0a0500000-55d0a0540000 r--p 00500000 08:01 1234 /usr/bin/corral
55d0a0540000-55d0a0550000 rw-p 00540000 08:01 1234 /usr/bin/corral
7f0000000000-7f0000010000 r-xs 00000000 08:01 99 /dev/shm/shared code
7f0000100000-7f0000200000 r-xp 00028000 08:01 77 /usr/lib/x86_64-linux-gnu/libc.so.6
7f0000300000-7f0000301000 r-xp 00000000 00:00 0 [vdso]
7f0000400000-7f0000401000 r-xp 00000000 00:00 0
not a mapping line
";
        assert_eq!(
            code_mappings(maps),
            vec![
                (0x55d0a0100000, 0x55d0a0500000),
                (0x7f0000100000, 0x7f0000200000)
            ]
        );
    }

    /// Resident KiB of this test binary's code mappings.
    fn resident_code_kib() -> u64 {
        let exe = std::fs::read_link("/proc/self/exe").unwrap_or_default();
        let exe = exe.to_string_lossy().into_owned();
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
        let mut in_code = false;
        let mut kib = 0;
        for line in smaps.lines() {
            let mut fields = line.split_ascii_whitespace();
            let first = fields.next().unwrap_or("");
            if first.contains('-') && first.chars().all(|c| c.is_ascii_hexdigit() || c == '-') {
                let perms = fields.next().unwrap_or("");
                in_code = perms == "r-xp" && line.ends_with(exe.as_str());
            } else if in_code && first == "Rss:" {
                kib += fields
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        }
        kib
    }

    #[test]
    fn released_code_pages_leave_the_resident_set_and_still_run() {
        let before_kib = resident_code_kib();
        assert!(before_kib > 0, "the test binary's code is resident");
        let released_bytes = release_code_pages();
        assert!(
            released_bytes >= before_kib * 1024,
            "every code mapping was released"
        );
        let after_kib = resident_code_kib();
        assert!(
            after_kib < before_kib,
            "resident code {before_kib} KiB before, {after_kib} KiB after"
        );
        // The code runs as before: it comes back from the file.
        assert_eq!(code_mappings("0-1 r-xp 0 0:0 1 /x"), vec![(0, 1)]);
        assert!(resident_code_kib() > 0);
    }
}
