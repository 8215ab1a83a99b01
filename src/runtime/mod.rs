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
