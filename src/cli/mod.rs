//! Subcommands of the `corral` binary. `anyhow` is allowed here and only here.

pub mod bench;
pub mod import_zk;
pub mod logdump;
pub mod sim;
pub mod snapdump;
pub mod tune;
pub mod zkcli;

use clap::{Parser, Subcommand};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "corral",
    version,
    about = "A ZooKeeper-compatible coordination server"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a server in the foreground. Without CFG: the embedded default config
    /// (127.0.0.1:2181, dataDir ./data).
    Server {
        /// A zoo.cfg file.
        cfg: Option<PathBuf>,
    },
    /// Send a four-letter word (ruok, srvr, mntr, ...) and print the reply.
    #[command(name = "4lw")]
    FourLetterWord {
        /// host:port of the server.
        server: String,
        /// The word.
        word: String,
        /// Give up after this many milliseconds.
        #[arg(long, default_value_t = 5000)]
        timeout_ms: u64,
    },
    /// Corral's zkCli: `corral cli [-server host:port,...] [cmd args...]`.
    Cli,
    /// Load generator for any ZooKeeper-protocol server (Corral or Apache ZooKeeper).
    Bench(bench::BenchArgs),
    /// Delete old snapshots and the log segments no kept snapshot needs (like ZooKeeper's
    /// PurgeTxnLog / zkCleanup.sh). Run it while the server is stopped or running: it
    /// only removes files the newest snapshots do not need.
    Purge {
        /// Snapshots to keep (at least 3, as ZooKeeper requires).
        #[arg(short = 'n', long = "count", default_value_t = 3)]
        count: usize,
        /// The dataLogDir (transaction logs).
        data_log_dir: PathBuf,
        /// The dataDir (snapshots), when it differs from the dataLogDir.
        data_dir: Option<PathBuf>,
    },
    /// Print the records of transaction log segments (like zkTxnLogToolkit).
    Logdump {
        /// One JSON object per record.
        #[arg(long)]
        json: bool,
        /// Check every crc and record; report the first bad offset (exit 1 on corruption).
        #[arg(long)]
        verify: bool,
        /// A `log.*` segment, or a dataLogDir (or its version-2 directory).
        path: PathBuf,
    },
    /// Print a snapshot (like zkSnapShotToolkit).
    Snapdump {
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
        /// A `snapshot.*` file.
        file: PathBuf,
    },
    /// Convert an Apache ZooKeeper 3.8 data directory (snapshot.* and log.* files) into
    /// Corral's formats: `import-zk [--force] ZK_DATA_DIR DATA_DIR [DATALOG_DIR]`.
    #[command(name = "import-zk")]
    ImportZk(import_zk::ImportZkArgs),
    /// Measure this host (fdatasync latency on the dataLogDir's device, cores, NUMA, memory,
    /// memlock), pick a tuning profile and write a zoo.cfg; `--check CFG` warns about
    /// settings that fight the hardware.
    Tune(tune::TuneArgs),
    /// Run the deterministic replication simulations over a range of seeds (the whole
    /// cluster, or fast leader election with --election); a failure prints its seed and the
    /// command that replays it.
    Sim(sim::SimArgs),
    /// Print Corral's version.
    Version,
}

pub fn main() -> i32 {
    // `corral cli` takes zkCli.sh's Java-style arguments (`-server h:p`), which clap
    // would reject: hand them over untouched. Lossy conversion: zkCli treats its words
    // as text, and a stray invalid byte should not abort the whole invocation.
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if args.get(1).map(String::as_str) == Some("cli") {
        return zkcli::run(&args[2..]);
    }
    if let Some(cfg) = plain_server_invocation(&args) {
        return server(cfg);
    }
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { 2 } else { 0 };
        }
    };
    match cli.command {
        Command::Server { cfg } => server(cfg),
        Command::FourLetterWord {
            server,
            word,
            timeout_ms,
        } => match four_letter_word(&server, &word, timeout_ms) {
            Ok(text) => {
                print!("{text}");
                let _ = std::io::stdout().flush();
                0
            }
            Err(e) => {
                eprintln!("corral 4lw: {e:#}");
                1
            }
        },
        Command::Cli => zkcli::run(&[]),
        Command::Bench(args) => bench::run(args),
        Command::Purge {
            count,
            data_log_dir,
            data_dir,
        } => purge(count, &data_log_dir, data_dir.as_deref()),
        Command::Logdump { json, verify, path } => {
            die_quietly_on_closed_pipe();
            logdump::run(&path, json, verify)
        }
        Command::Snapdump { json, file } => {
            die_quietly_on_closed_pipe();
            snapdump::run(&file, json)
        }
        Command::ImportZk(args) => import_zk::run(args),
        Command::Tune(args) => tune::run(args),
        Command::Sim(args) => sim::run(args),
        Command::Version => {
            println!(
                "Corral {} (ZooKeeper 3.8 protocol)",
                env!("CARGO_PKG_VERSION")
            );
            0
        }
    }
}

fn purge(count: usize, data_log_dir: &std::path::Path, data_dir: Option<&std::path::Path>) -> i32 {
    if count < 3 {
        eprintln!("corral purge: -n {count}: the count must be at least 3");
        return 2;
    }
    let data_dir = data_dir.unwrap_or(data_log_dir);
    match crate::storage::purge(data_dir, data_log_dir, count) {
        Ok(purged) => {
            for p in purged.snapshots.iter().chain(&purged.segments) {
                println!("Removing file: {}", p.display());
            }
            0
        }
        Err(e) => {
            eprintln!("corral purge: {e}");
            1
        }
    }
}

fn init_logging() {
    // glommio::reactor logs one thing at error level in 0.9.0: a failed probe of a direct
    // I/O file's device for polled I/O. The log writer opens its direct handle write-only
    // on purpose so that the probe (a read) fails and the device is never polled, which
    // would spin the ZAB executor through every sync; so that line is expected noise.
    let filter = tracing_subscriber::EnvFilter::try_from_env("CORRAL_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,glommio::reactor=off"));
    // Colours only on a terminal: a log file (zkServer.sh's, a test's) gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr())
        && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .try_init();
}

/// `corral server` or `corral server CFG` (what zkServer.sh runs) is recognised without
/// clap: building the whole command line (every subcommand's arguments) runs code spread
/// over the binary, and the pages it touched would stay resident in an idle server. Any
/// other form (an option such as `--help`, a stray word) goes through clap as usual.
fn plain_server_invocation(args: &[String]) -> Option<Option<PathBuf>> {
    match args {
        [_, server] if server == "server" => Some(None),
        [_, server, cfg] if server == "server" && !cfg.starts_with('-') => {
            Some(Some(PathBuf::from(cfg)))
        }
        _ => None,
    }
}

fn server(cfg: Option<PathBuf>) -> i32 {
    init_logging();
    let config = match cfg {
        None => crate::config::Config::embedded_default(),
        Some(path) => match crate::config::Config::load(&path) {
            Ok(c) => c,
            Err(e) => {
                // One line, last on stderr: zkServer.sh reports it as the reason.
                eprintln!("{e}");
                return 2;
            }
        },
    };
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    for k in &config.not_applicable {
        tracing::info!("{k}: not applicable to Corral; ignored");
    }
    for k in &config.unknown_keys {
        tracing::warn!("{k}: unknown key; ignored");
    }
    let settings = match crate::server::settings::Settings::from_config(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    match crate::server::run(settings) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("corral server: {e}");
            1
        }
    }
}

fn four_letter_word(server: &str, word: &str, timeout_ms: u64) -> anyhow::Result<String> {
    use anyhow::Context;
    use std::net::ToSocketAddrs;
    anyhow::ensure!(
        word.len() == 4,
        "a four-letter word has four letters: {word:?}"
    );
    let timeout = Duration::from_millis(timeout_ms);
    let addr = server
        .to_socket_addrs()
        .with_context(|| format!("cannot resolve {server}"))?
        .next()
        .with_context(|| format!("no address for {server}"))?;
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .with_context(|| format!("cannot connect to {server}"))?;
    s.set_read_timeout(Some(timeout))?;
    s.write_all(word.as_bytes())?;
    let mut out = Vec::new();
    s.read_to_end(&mut out)
        .with_context(|| format!("reading the reply from {server}"))?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The dump tools print a lot and are piped into `head` and `less`: like other Unix tools,
/// end quietly when the reader goes away, instead of panicking in `println!` (Rust ignores
/// SIGPIPE by default, which turns a closed pipe into a print error).
fn die_quietly_on_closed_pipe() {
    // SAFETY: restoring the default disposition of SIGPIPE is async-signal-safe, and these
    // subcommands run single-threaded with no handler of their own for it.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
