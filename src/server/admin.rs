//! The admin server's commands: `GET /commands/<name>` answers JSON shaped as ZooKeeper
//! 3.8's `org.apache.zookeeper.server.admin.Commands` produce it (same command names and
//! aliases, same field names and order, `command` and `error` last). An unknown name is
//! answered 200 with `"error" : "Unknown command: <name>"`, as ZooKeeper 3.8 does.
//!
//! Commands that reset counters (`crst`, `srst`) reset those of shard 0, which serves the
//! admin server (the four-letter words reset the answering shard's; see compatibility.md).

use crate::metrics::{node_count, totals, Value};
use crate::server::fourlw::{self, Gathered};
use crate::shard::ShardCtx;
use std::rc::Rc;

/// Every command: primary name, then its aliases (ZooKeeper 3.8's list).
pub const COMMANDS: &[(&str, &[&str])] = &[
    ("configuration", &["conf", "config"]),
    ("connection_stat_reset", &["crst"]),
    ("connections", &["cons"]),
    ("dirs", &[]),
    ("dump", &[]),
    ("environment", &["envi", "env"]),
    ("get_trace_mask", &["gtmk"]),
    ("hash", &[]),
    ("initial_configuration", &["icfg"]),
    ("is_read_only", &["isro"]),
    ("last_snapshot", &["lsnp"]),
    ("leader", &["lead"]),
    ("monitor", &["mntr"]),
    ("observer_connection_stat_reset", &["orst"]),
    ("observers", &["obsr"]),
    ("ruok", &[]),
    ("server_stats", &["srvr"]),
    ("set_trace_mask", &["stmk"]),
    ("stat_reset", &["srst"]),
    ("stats", &["stat"]),
    ("system_properties", &["sysp"]),
    ("voting_view", &[]),
    ("watch_summary", &["wchs"]),
    ("watches", &["wchc"]),
    ("watches_by_path", &["wchp"]),
    ("zabstate", &[]),
];

/// The primary name of a command or alias.
pub fn primary_name(name: &str) -> Option<&'static str> {
    COMMANDS
        .iter()
        .find(|(primary, aliases)| *primary == name || aliases.contains(&name))
        .map(|(primary, _)| *primary)
}

/// `GET /commands`: one link per command, as ZooKeeper's servlet lists them.
pub fn command_links(base: &str) -> String {
    let mut s = String::new();
    for (name, _) in COMMANDS {
        s.push_str(&format!("<a href=\"{base}/{name}\">{name}</a>\n<br/>\n"));
    }
    s
}

/// A JSON value, printed the way ZooKeeper's Jackson outputter prints (pretty, ` : `).
#[derive(Debug, Clone, PartialEq)]
pub enum Json {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn str(s: impl Into<String>) -> Json {
        Json::Str(s.into())
    }

    /// Pretty-printed text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out, 0);
        out
    }

    fn write(&self, out: &mut String, depth: usize) {
        let pad = |out: &mut String, d: usize| out.push_str(&"  ".repeat(d));
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Int(v) => out.push_str(&v.to_string()),
            Json::Float(v) => out.push_str(&crate::metrics::java_double(*v)),
            Json::Str(s) => write_string(out, s),
            Json::Arr(items) if items.is_empty() => out.push_str("[ ]"),
            Json::Obj(items) if items.is_empty() => out.push_str("{ }"),
            Json::Arr(items) => {
                out.push_str("[ ");
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    v.write(out, depth);
                }
                out.push_str(" ]");
            }
            Json::Obj(items) => {
                out.push_str("{\n");
                for (i, (k, v)) in items.iter().enumerate() {
                    pad(out, depth + 1);
                    write_string(out, k);
                    out.push_str(" : ");
                    v.write(out, depth + 1);
                    if i + 1 < items.len() {
                        out.push(',');
                    }
                    out.push('\n');
                }
                pad(out, depth);
                out.push('}');
            }
        }
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

type Fields = Vec<(String, Json)>;

fn field(out: &mut Fields, k: &str, v: Json) {
    out.push((k.to_string(), v));
}

/// Runs a command by name or alias and returns its JSON text.
pub async fn run(ctx: &Rc<ShardCtx>, name: &str, query: &[(String, String)]) -> String {
    let mut f: Fields = Vec::new();
    let mut error: Option<String> = None;
    let command = match primary_name(name) {
        None => {
            error = Some(format!("Unknown command: {name}"));
            name.to_string()
        }
        Some(primary) => {
            if let Err(e) = fill(ctx, primary, query, &mut f).await {
                error = Some(e);
            }
            primary.to_string()
        }
    };
    if error.is_some() {
        // ZooKeeper puts the error before the command name when a command failed.
        f.push(("error".into(), error.map_or(Json::Null, Json::Str)));
        f.push(("command".into(), Json::Str(command)));
    } else {
        f.push(("command".into(), Json::Str(command)));
        f.push(("error".into(), Json::Null));
    }
    Json::Obj(f).render()
}

async fn gathered(ctx: &Rc<ShardCtx>, detail: bool) -> Result<Gathered, String> {
    fourlw::gather_all(ctx, detail)
        .await
        .ok_or_else(|| "This ZooKeeper instance is not currently serving requests".to_string())
}

fn dir_sizes(ctx: &ShardCtx) -> (u64, u64) {
    let size = |p: &std::path::Path| crate::util::dir_size_bytes(&p.join("version-2"));
    (
        size(&ctx.settings.data_dir),
        size(&ctx.settings.data_log_dir),
    )
}

fn value_json(v: Value) -> Json {
    match v {
        Value::Int(i) => Json::Int(i),
        Value::Float(x) => Json::Float(x),
        Value::Str(s) => Json::Str(s),
    }
}

/// The brief per-connection fields `stats` lists, and `connections` before the details.
fn conn_json(c: &crate::server::msg::ConnReport, full: bool) -> Json {
    let mut o: Fields = Vec::new();
    let peer = c.peer.map(|p| p.to_string()).unwrap_or_default();
    field(&mut o, "remote_socket_address", Json::Str(peer));
    field(&mut o, "interest_ops", Json::Int(1));
    field(&mut o, "outstanding_requests", Json::Int(c.queued as i64));
    field(&mut o, "packets_received", Json::Int(c.received as i64));
    field(&mut o, "packets_sent", Json::Int(c.sent as i64));
    if full && c.session_id != 0 {
        field(&mut o, "session_id", Json::Int(c.session_id));
        field(&mut o, "last_operation", Json::str(c.last_op));
        field(&mut o, "established", Json::Int(c.established_ms));
        field(&mut o, "session_timeout", Json::Int(c.timeout_ms as i64));
        field(&mut o, "last_cxid", Json::Int(c.last_cxid as i64));
        field(&mut o, "last_zxid", Json::Int(c.last_zxid));
        field(&mut o, "last_response_time", Json::Int(c.last_response_ms));
        field(&mut o, "last_latency", Json::Int(c.last_latency_ms));
        field(&mut o, "min_latency", Json::Int(c.min_latency_ms));
        field(
            &mut o,
            "avg_latency",
            Json::Int(c.avg_latency_ms.round() as i64),
        );
        field(&mut o, "max_latency", Json::Int(c.max_latency_ms));
    }
    Json::Obj(o)
}

/// `srvr` / `stat`'s common part.
fn server_stats(ctx: &ShardCtx, g: &Gathered, f: &mut Fields) {
    let t = totals(g);
    let (data_bytes, log_bytes) = dir_sizes(ctx);
    let threshold_us = ctx.settings.config.fsync_warning_threshold_ms * 1000;
    let fsync = &g.zab.stats.fdatasync_us;
    let exceeded = fsync.count() - fsync.count_at_most(threshold_us);
    let response_sizes = || {
        Json::Obj(vec![
            ("last_buffer_size".into(), Json::Int(-1)),
            ("min_buffer_size".into(), Json::Int(-1)),
            ("max_buffer_size".into(), Json::Int(-1)),
        ])
    };
    let mut s: Fields = Vec::new();
    field(&mut s, "packets_sent", Json::Int(t.sent as i64));
    field(&mut s, "packets_received", Json::Int(t.received as i64));
    field(
        &mut s,
        "fsync_threshold_exceed_count",
        Json::Int(exceeded as i64),
    );
    field(&mut s, "client_response_stats", response_sizes());
    field(&mut s, "data_dir_size", Json::Int(data_bytes as i64));
    field(&mut s, "log_dir_size", Json::Int(log_bytes as i64));
    field(&mut s, "server_state", Json::str(g.zab.mode));
    field(&mut s, "last_processed_zxid", Json::Int(g.zab.last_zxid));
    field(
        &mut s,
        "outstanding_requests",
        Json::Int(t.outstanding as i64),
    );
    field(&mut s, "avg_latency", Json::Float(t.lat_avg));
    field(&mut s, "max_latency", Json::Int(t.lat_max));
    field(&mut s, "min_latency", Json::Int(t.lat_min));
    field(
        &mut s,
        "num_alive_client_connections",
        Json::Int(t.connections as i64),
    );
    field(&mut s, "uptime", Json::Int(crate::metrics::uptime_ms()));
    field(&mut s, "auth_failed_count", Json::Int(0));
    field(
        &mut s,
        "non_mtlsremote_conn_count",
        Json::Int(t.connections as i64),
    );
    field(&mut s, "non_mtlslocal_conn_count", Json::Int(0));
    field(&mut s, "provider_null", Json::Bool(false));
    field(f, "version", Json::Str(fourlw::version_line()));
    field(f, "read_only", Json::Bool(false));
    field(f, "server_stats", Json::Obj(s));
    field(f, "client_response", response_sizes());
    field(f, "node_count", Json::Int(node_count(g) as i64));
}

fn id_map(entries: impl Iterator<Item = (String, Vec<Json>)>) -> Json {
    Json::Obj(entries.map(|(k, v)| (k, Json::Arr(v))).collect())
}

/// Fills the command's fields; `Err` is the command's error text.
async fn fill(
    ctx: &Rc<ShardCtx>,
    name: &str,
    query: &[(String, String)],
    f: &mut Fields,
) -> Result<(), String> {
    let cfg = &ctx.settings.config;
    match name {
        "ruok" | "observer_connection_stat_reset" => {}
        "configuration" => {
            let port = cfg.client_endpoint().map_or(-1, |(_, p)| i64::from(p));
            field(f, "client_port", Json::Int(port));
            let dir = |p: &std::path::Path| Json::Str(p.join("version-2").display().to_string());
            field(f, "data_dir", dir(&ctx.settings.data_dir));
            field(f, "data_log_dir", dir(&ctx.settings.data_log_dir));
            field(f, "tick_time", Json::Int(cfg.tick_ms as i64));
            field(
                f,
                "max_client_cnxns",
                Json::Int(cfg.max_client_cnxns as i64),
            );
            let min = cfg.min_session_timeout_ms as i64;
            field(f, "min_session_timeout", Json::Int(min));
            let max = cfg.max_session_timeout_ms as i64;
            field(f, "max_session_timeout", Json::Int(max));
            field(f, "server_id", Json::Int(0));
            let backlog = cfg.client_port_listen_backlog as i64;
            field(f, "client_port_listen_backlog", Json::Int(backlog));
        }
        "connection_stat_reset" => fourlw::reset_conn_stats(ctx),
        "stat_reset" => fourlw::reset_server_stats(ctx),
        "connections" => {
            let g = gathered(ctx, false).await?;
            let conns = g.reports.iter().flat_map(|r| &r.conns);
            let list = conns.map(|c| conn_json(c, true)).collect();
            field(f, "connections", Json::Arr(list));
            field(f, "secure_connections", Json::Arr(Vec::new()));
        }
        "dirs" => {
            let (data_bytes, log_bytes) = dir_sizes(ctx);
            field(f, "datadir_size", Json::Int(data_bytes as i64));
            field(f, "logdir_size", Json::Int(log_bytes as i64));
        }
        "dump" => {
            let g = gathered(ctx, true).await?;
            let ints = |v: &[i64]| v.iter().map(|id| Json::Int(*id)).collect::<Vec<_>>();
            let expiry = g
                .zab
                .expiry_buckets
                .iter()
                .map(|(at, ids)| (at.to_string(), ints(ids)));
            field(f, "expiry_time_to_session_ids", id_map(expiry));
            let ephemerals = g.zab.ephemerals.iter().map(|(sid, paths)| {
                let paths = paths.iter().map(|p| Json::str(p.as_ref())).collect();
                (sid.to_string(), paths)
            });
            field(f, "session_id_to_ephemeral_paths", id_map(ephemerals));
        }
        "environment" => {
            for (k, v) in environment() {
                field(f, k, Json::Str(v));
            }
        }
        "get_trace_mask" => field(f, "tracemask", Json::Int(fourlw::TRACE_MASK_DEFAULT)),
        "set_trace_mask" => {
            let mask = query
                .iter()
                .find(|(k, _)| k == "traceMask")
                .and_then(|(_, v)| v.parse::<i64>().ok())
                .ok_or_else(|| "setTraceMask requires long traceMask argument".to_string())?;
            field(f, "tracemask", Json::Int(mask));
        }
        "hash" => field(f, "digests", Json::Arr(Vec::new())),
        "initial_configuration" => field(f, "initial_configuration", Json::str("")),
        "is_read_only" => field(f, "read_only", Json::Bool(false)),
        "last_snapshot" => {
            let g = gathered(ctx, false).await?;
            let last = &g.zab.stats.last_snapshot;
            field(f, "zxid", Json::Str(format!("{:x}", last.zxid)));
            field(f, "timestamp", Json::Int(last.time_ms / 1000));
        }
        "leader" => return Err("server is not initialized".into()),
        "monitor" => {
            let g = gathered(ctx, false).await?;
            for (k, v) in crate::metrics::collect(&g) {
                f.push((k, value_json(v)));
            }
        }
        "observers" => {
            field(f, "synced_observers", Json::Int(0));
            field(f, "observers", Json::Arr(Vec::new()));
        }
        "server_stats" => {
            let g = gathered(ctx, false).await?;
            server_stats(ctx, &g, f);
        }
        "stats" => {
            let g = gathered(ctx, false).await?;
            server_stats(ctx, &g, f);
            let conns = g.reports.iter().flat_map(|r| &r.conns);
            let list = conns.map(|c| conn_json(c, false)).collect();
            field(f, "connections", Json::Arr(list));
            field(f, "secure_connections", Json::Arr(Vec::new()));
        }
        "system_properties" => {
            for (k, v) in environment() {
                if !k.starts_with("zookeeper.") && !k.starts_with("host.") {
                    field(f, k, Json::Str(v));
                }
            }
        }
        "voting_view" => field(f, "current_config", Json::Obj(Vec::new())),
        "watch_summary" => {
            let g = gathered(ctx, false).await?;
            let t = totals(&g);
            field(f, "num_connections", Json::Int(t.watch_conns as i64));
            field(f, "num_paths", Json::Int(t.watch_paths as i64));
            field(f, "num_total_watches", Json::Int(t.reported_watches as i64));
        }
        "watches" => {
            let g = gathered(ctx, false).await?;
            let conns = g.reports.iter().flat_map(|r| &r.conns);
            let with_watches = conns.filter(|c| !c.watched_paths.is_empty());
            let entries = with_watches.map(|c| {
                let paths = c.watched_paths.iter().map(|p| Json::str(p.as_ref()));
                (c.session_id.to_string(), paths.collect())
            });
            field(f, "session_id_to_watched_paths", id_map(entries));
        }
        "watches_by_path" => {
            let g = gathered(ctx, false).await?;
            let all = g.reports.iter().flat_map(|r| &r.watchers_by_path);
            let entries = all.map(|(p, sessions)| {
                let ids = sessions.iter().map(|s| Json::Int(*s));
                (p.to_string(), ids.collect())
            });
            field(f, "path_to_session_ids", id_map(entries));
        }
        "zabstate" => {
            field(f, "voting", Json::Bool(false));
            field(f, "zabstate", Json::str(""));
        }
        _ => return Err(format!("Unknown command: {name}")),
    }
    Ok(())
}

/// ZooKeeper's `Environment` keys; the Java ones say Corral is not a JVM program.
fn environment() -> Vec<(&'static str, String)> {
    let na = || "n/a (Corral is not a JVM program)".to_string();
    let env = |k: &str| std::env::var(k).unwrap_or_default();
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    vec![
        ("zookeeper.version", fourlw::version_line()),
        ("host.name", crate::util::host_name()),
        ("java.version", na()),
        ("java.vendor", na()),
        ("java.home", na()),
        ("java.class.path", na()),
        ("java.library.path", na()),
        ("java.io.tmpdir", std::env::temp_dir().display().to_string()),
        ("java.compiler", "<NA>".to_string()),
        ("os.name", os_name()),
        ("os.arch", std::env::consts::ARCH.to_string()),
        ("os.version", os_release()),
        ("user.name", env("USER")),
        ("user.home", env("HOME")),
        ("user.dir", cwd),
        ("os.memory.free", na()),
        ("os.memory.max", na()),
        ("os.memory.total", na()),
    ]
}

/// `Linux`, as Java names the OS.
fn os_name() -> String {
    let os = std::env::consts::OS;
    let mut chars = os.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().collect::<String>() + chars.as_str(),
        None => String::new(),
    }
}

fn os_release() -> String {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aliases_map_to_primary_names() {
        assert_eq!(primary_name("mntr"), Some("monitor"));
        assert_eq!(primary_name("monitor"), Some("monitor"));
        assert_eq!(primary_name("conf"), Some("configuration"));
        assert_eq!(primary_name("config"), Some("configuration"));
        assert_eq!(primary_name("wchs"), Some("watch_summary"));
        assert_eq!(primary_name("nosuch"), None);
    }

    #[test]
    fn json_prints_like_jackson() {
        let j = Json::Obj(vec![
            ("a".into(), Json::Int(1)),
            (
                "b".into(),
                Json::Arr(vec![Json::str("x\"y"), Json::Float(2.0)]),
            ),
            ("c".into(), Json::Obj(Vec::new())),
            ("d".into(), Json::Null),
        ]);
        assert_eq!(
            j.render(),
            "{\n  \"a\" : 1,\n  \"b\" : [ \"x\\\"y\", 2.0 ],\n  \"c\" : { },\n  \"d\" : null\n}"
        );
    }
}
