//! Four-letter words: `ruok`, `srvr`, `mntr` … answered as plain text on a fresh
//! connection, then the connection closes. Output shapes follow ZooKeeper 3.8's
//! `FourLetterCommands` / `*Command` classes so that scripts and monitoring parse them.
//!
//! Most words need every shard's view (connections, watches, counters): the shard asks
//! the ZAB executor to gather one report per shard plus its own, then renders the text.

use crate::server::msg::{ShardReport, ToZab, ZabReport};
use crate::shard::{Conn, ShardCtx};
use bytes::BytesMut;
use futures_lite::AsyncWriteExt;
use glommio::channels::local_channel;
use std::fmt::Write as _;
use std::rc::Rc;
use std::time::Duration;

/// Every word ZooKeeper 3.8 knows, and telnet's interrupt sequence.
const WORDS: [&str; 19] = [
    "conf", "cons", "crst", "dump", "envi", "gtmk", "ruok", "stmk", "srvr", "srst", "stat", "wchc",
    "wchp", "wchs", "mntr", "isro", "hash", "dirs", "\u{fff4}",
];

/// ZooKeeper's default trace mask (ZooTrace's default level bits).
pub(crate) const TRACE_MASK_DEFAULT: i64 = 306;

/// The version string `srvr` and `mntr` report: ZooKeeper's protocol level, then ours.
pub fn version_line() -> String {
    format!(
        "3.8.0-corral-{}, built on 1970-01-01 00:00 UTC",
        env!("CARGO_PKG_VERSION")
    )
}

/// Recognizes a four-letter word from the first four bytes of a connection.
pub fn recognize(first4: &[u8]) -> Option<&'static str> {
    if first4 == [0xff, 0xf4, 0xff, 0xfd] {
        return Some("telnet-close");
    }
    let word = std::str::from_utf8(first4).ok()?;
    WORDS.iter().copied().find(|w| *w == word)
}

/// Reports gathered from every shard and the ZAB executor.
pub struct Gathered {
    pub reports: Vec<ShardReport>,
    pub zab: Box<ZabReport>,
}

static START_MS: std::sync::OnceLock<i64> = std::sync::OnceLock::new();

/// Records the server's start (for `zk_uptime`).
pub fn mark_started() {
    let _ = START_MS.set(crate::runtime::now_ms());
}

/// When the server started (ms since the epoch).
pub fn started_ms() -> i64 {
    START_MS.get().copied().unwrap_or(0)
}

async fn gather(ctx: &Rc<ShardCtx>, conn: &Rc<Conn>, detail: bool) -> Option<Gathered> {
    gather_for(ctx, conn.id, detail).await
}

/// Every shard's report plus the ZAB executor's, for a caller with no client connection
/// (the admin and metrics HTTP servers). `None` if they do not all answer within 5 s.
pub async fn gather_all(ctx: &Rc<ShardCtx>, detail: bool) -> Option<Gathered> {
    gather_for(ctx, 0, detail).await
}

async fn gather_for(
    ctx: &Rc<ShardCtx>,
    conn_id: crate::tree::watches::ConnId,
    detail: bool,
) -> Option<Gathered> {
    let (tx, rx) = local_channel::new_bounded(1);
    let query_id = {
        let mut st = ctx.state.borrow_mut();
        st.next_query_id += 1;
        let id = st.next_query_id;
        st.queries.insert(id, tx);
        id
    };
    ctx.send_to_zab(ToZab::Gather {
        origin: ctx.origin(conn_id),
        query_id,
        detail,
    });
    glommio::timer::timeout(Duration::from_secs(5), async { Ok(rx.recv().await) })
        .await
        .ok()
        .flatten()
}

/// Answers the word and closes. `input` holds the bytes received so far.
pub async fn answer<S: futures_lite::AsyncWrite + Unpin>(
    ctx: &Rc<ShardCtx>,
    conn: &Rc<Conn>,
    word: &'static str,
    input: &mut BytesMut,
    stream: &mut S,
) -> Result<(), String> {
    if word == "telnet-close" {
        return Ok(());
    }
    let text = if !ctx.settings.four_letter_allowed(word) {
        format!("{word} is not executed because it is not in the whitelist.\n")
    } else {
        match word {
            "ruok" => "imok".to_string(),
            "isro" => {
                let ro = ctx
                    .shared
                    .read_only
                    .load(std::sync::atomic::Ordering::Relaxed);
                if ro { "ro" } else { "rw" }.to_string()
            }
            "gtmk" => format!("{TRACE_MASK_DEFAULT}\n"),
            "stmk" => {
                // The mask follows as an 8-byte big-endian long.
                let mask = if input.len() >= 12 {
                    i64::from_be_bytes(input[4..12].try_into().unwrap_or([0; 8]))
                } else {
                    TRACE_MASK_DEFAULT
                };
                format!("{mask}\n")
            }
            "crst" => {
                reset_conn_stats(ctx);
                "Connection stats reset.\n".to_string()
            }
            "srst" => {
                reset_server_stats(ctx);
                "Server stats reset.\n".to_string()
            }
            "conf" => conf(ctx),
            "envi" => envi(ctx),
            "dirs" => dirs(ctx),
            "hash" => String::new(),
            _ => match gather(ctx, conn, word == "dump").await {
                None => "This ZooKeeper instance is not currently serving requests\n".to_string(),
                Some(g) if !g.zab.serving => {
                    "This ZooKeeper instance is not currently serving requests\n".to_string()
                }
                Some(g) => render(word, &g),
            },
        }
    };
    input.clear();
    stream
        .write_all(text.as_bytes())
        .await
        .map_err(|e| format!("write failed: {e}"))?;
    let _ = stream.flush().await;
    Ok(())
}

pub(crate) fn reset_conn_stats(ctx: &ShardCtx) {
    let st = ctx.state.borrow();
    for c in st.conns.values() {
        let mut cs = c.st.borrow_mut();
        cs.received = 0;
        cs.sent = 0;
        cs.latency_count = 0;
        cs.latency_sum_ms = 0;
        cs.latency_max_ms = 0;
        cs.latency_min_ms = 0;
    }
}

pub(crate) fn reset_server_stats(ctx: &ShardCtx) {
    let mut st = ctx.state.borrow_mut();
    st.counters = crate::server::msg::ShardCounters {
        latency_min_ms: i64::MAX,
        ..Default::default()
    };
    // ZooKeeper's reset puts the response sizes back to "not measured" (-1).
    crate::metrics::reset_response_sizes();
}

use crate::metrics::{node_count, totals};

fn hex(v: i64) -> String {
    format!("0x{v:x}")
}

fn brief_conn(s: &mut String, c: &crate::server::msg::ConnReport) {
    let peer = c.peer.map(|p| p.to_string()).unwrap_or_default();
    let _ = write!(
        s,
        " /{peer}[1](queued={},recved={},sent={}",
        c.queued, c.received, c.sent
    );
}

fn render(word: &str, g: &Gathered) -> String {
    let t = totals(g);
    let mode = g.zab.mode;
    let mut s = String::new();
    let stats_tail = |s: &mut String| {
        let _ = writeln!(
            s,
            "Latency min/avg/max: {}/{:?}/{}",
            t.lat_min, t.lat_avg, t.lat_max
        );
        let _ = writeln!(s, "Received: {}", t.received);
        let _ = writeln!(s, "Sent: {}", t.sent);
        let _ = writeln!(s, "Connections: {}", t.connections);
        let _ = writeln!(s, "Outstanding: {}", t.outstanding);
        let _ = writeln!(s, "Zxid: {}", hex(g.zab.last_zxid));
        let _ = writeln!(s, "Mode: {mode}");
        let _ = writeln!(s, "Node count: {}", node_count(g));
        if let Some((last, min, max)) = g.zab.proposal_sizes {
            let _ = writeln!(s, "Proposal sizes last/min/max: {last}/{min}/{max}");
        }
    };
    match word {
        "srvr" => {
            let _ = writeln!(s, "Zookeeper version: {}", version_line());
            stats_tail(&mut s);
        }
        "stat" => {
            let _ = writeln!(s, "Zookeeper version: {}", version_line());
            let _ = writeln!(s, "Clients:");
            for r in &g.reports {
                for c in &r.conns {
                    brief_conn(&mut s, c);
                    s.push_str(")\n");
                }
            }
            s.push('\n');
            stats_tail(&mut s);
        }
        "cons" => {
            for r in &g.reports {
                for c in &r.conns {
                    brief_conn(&mut s, c);
                    if c.session_id != 0 {
                        let _ = write!(
                            s,
                            ",sid={},lop={},est={},to={},lcxid={},lzxid={},lresp={},llat={},minlat={},avglat={},maxlat={}",
                            hex(c.session_id),
                            c.last_op,
                            c.established_ms,
                            c.timeout_ms,
                            hex(c.last_cxid as i64),
                            hex(c.last_zxid),
                            c.last_response_ms,
                            c.last_latency_ms,
                            c.min_latency_ms,
                            c.avg_latency_ms.round() as i64,
                            c.max_latency_ms
                        );
                    }
                    s.push_str(")\n");
                }
            }
            s.push('\n');
        }
        "wchs" => {
            let _ = writeln!(
                s,
                "{} connections watching {} paths",
                t.watch_conns, t.watch_paths
            );
            let _ = writeln!(s, "Total watches:{}", t.reported_watches);
        }
        "wchc" => {
            for r in &g.reports {
                for c in &r.conns {
                    if c.watched_paths.is_empty() {
                        continue;
                    }
                    let _ = writeln!(s, "{}", hex(c.session_id));
                    for p in &c.watched_paths {
                        let _ = writeln!(s, "\t{p}");
                    }
                }
            }
            s.push('\n');
        }
        "wchp" => {
            for r in &g.reports {
                for (p, sessions) in &r.watchers_by_path {
                    let _ = writeln!(s, "{p}");
                    for sid in sessions {
                        let _ = writeln!(s, "\t{}", hex(*sid));
                    }
                }
            }
            s.push('\n');
        }
        "dump" => {
            let _ = writeln!(s, "SessionTracker dump:");
            let total: usize = g.zab.expiry_buckets.iter().map(|(_, v)| v.len()).sum();
            let _ = writeln!(
                s,
                "Session Sets ({})/({}):",
                g.zab.expiry_buckets.len(),
                total
            );
            for (at, ids) in &g.zab.expiry_buckets {
                let _ = writeln!(
                    s,
                    "{} expire at {}:",
                    ids.len(),
                    crate::util::java_date(*at)
                );
                for id in ids {
                    let _ = writeln!(s, "\t{}", hex(*id));
                }
            }
            let _ = writeln!(s, "ephemeral nodes dump:");
            let _ = writeln!(s, "Sessions with Ephemerals ({}):", g.zab.ephemerals.len());
            for (sid, paths) in &g.zab.ephemerals {
                let _ = writeln!(s, "{}:", hex(*sid));
                for p in paths {
                    let _ = writeln!(s, "\t{p}");
                }
            }
            let _ = writeln!(s, "Connections dump:");
            let _ = writeln!(s, "Connections Sets (0)/(0):");
        }
        "mntr" => s = crate::metrics::mntr_text(g),
        _ => {}
    }
    s
}

fn envi(ctx: &ShardCtx) -> String {
    let mut s = String::from("Environment:\n");
    let host = crate::util::host_name();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let user = std::env::var("USER").unwrap_or_default();
    let home = std::env::var("HOME").unwrap_or_default();
    let lines = [
        ("zookeeper.version", version_line()),
        ("host.name", host),
        (
            "java.version",
            "n/a (Corral is not a JVM program)".to_string(),
        ),
        ("os.name", std::env::consts::OS.to_string()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("user.name", user),
        ("user.home", home),
        ("user.dir", cwd),
        (
            "corral.shards",
            ctx.settings.config.corral.shards.to_string(),
        ),
    ];
    for (k, v) in lines {
        let _ = writeln!(s, "{k}={v}");
    }
    s
}

fn conf(ctx: &ShardCtx) -> String {
    let size = |p: &std::path::Path| crate::util::dir_size_bytes(&p.join("version-2"));
    let c = &ctx.settings.config;
    // The membership in force: a committed reconfig changed /zookeeper/config.
    let current = super::membership_in(&ctx.state.borrow().tree);
    let membership = current
        .filter(|m| m.version > 0)
        .unwrap_or_else(|| c.membership());
    c.conf_lines(
        size(&ctx.settings.data_dir),
        size(&ctx.settings.data_log_dir),
        &membership,
    )
}

fn dirs(ctx: &ShardCtx) -> String {
    let size = |p: &std::path::Path| crate::util::dir_size_bytes(&p.join("version-2"));
    format!(
        "datadir_size: {}\nlogdir_size: {}\n",
        size(&ctx.settings.data_dir),
        size(&ctx.settings.data_log_dir)
    )
}
