//! zkCli's commands (`org.apache.zookeeper.cli.*Command`): parsing, the calls they
//! make, what they print where, and which failures they turn into which messages.
//!
//! Each command follows its Java class: the same option set and usage string, the same
//! checks in the same order (a check done at parse time in Java is done before any
//! call here too), output to the same stream (`Created /a` goes to stderr), and the
//! same uncaught cases (a non-numeric `-v` kills Java's zkCli with a
//! NumberFormatException; here it ends the run the same way).

use super::acl::parse_acl;
use super::format::{acl_entry, java_list, java_sort, stat_lines};
use super::options::{opt, CommandLine, OptSpec, Options};
use super::{config, err, out, out_raw, quota, Failure, Session};
use crate::client::path::validate_path;
use crate::client::Error;
use crate::proto::{add_watch_mode, watcher_type, Acl, CreateMode, ErrorCode, Stat};

/// One command of the command map: name and option string (usage = both).
pub struct CommandInfo {
    pub name: &'static str,
    pub options: &'static str,
}

pub const ADD_WATCH_USAGE_OPTIONS: &str = "[-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE";
pub const RECONFIG_USAGE_OPTIONS: &str = "[-s] [-v version] [[-file path] | [-members serverID=host:port1:port2;port3[,...]*]] | [-add serverId=host:port1:port2;port3[,...]]* [-remove serverId[,...]*]";

/// Every command zkCli knows, sorted by name as its usage lists them.
pub const COMMANDS: &[CommandInfo] = &[
    CommandInfo {
        name: "addWatch",
        options: ADD_WATCH_USAGE_OPTIONS,
    },
    CommandInfo {
        name: "addauth",
        options: "scheme auth",
    },
    CommandInfo {
        name: "close",
        options: "",
    },
    CommandInfo {
        name: "config",
        options: "[-c] [-w] [-s]",
    },
    CommandInfo {
        name: "connect",
        options: "host:port",
    },
    CommandInfo {
        name: "create",
        options: "[-s] [-e] [-c] [-t ttl] path [data] [acl]",
    },
    CommandInfo {
        name: "delete",
        options: "[-v version] path",
    },
    CommandInfo {
        name: "deleteall",
        options: "path [-b batch size]",
    },
    CommandInfo {
        name: "delquota",
        options: "[-n|-b|-N|-B] path",
    },
    CommandInfo {
        name: "get",
        options: "[-s] [-w] path",
    },
    CommandInfo {
        name: "getAcl",
        options: "[-s] path",
    },
    CommandInfo {
        name: "getAllChildrenNumber",
        options: "path",
    },
    CommandInfo {
        name: "getEphemerals",
        options: "path",
    },
    CommandInfo {
        name: "history",
        options: "",
    },
    CommandInfo {
        name: "listquota",
        options: "path",
    },
    CommandInfo {
        name: "ls",
        options: "[-s] [-w] [-R] path",
    },
    CommandInfo {
        name: "printwatches",
        options: "on|off",
    },
    CommandInfo {
        name: "quit",
        options: "",
    },
    CommandInfo {
        name: "reconfig",
        options: RECONFIG_USAGE_OPTIONS,
    },
    CommandInfo {
        name: "redo",
        options: "cmdno",
    },
    CommandInfo {
        name: "removewatches",
        options: "path [-c|-d|-a] [-l]",
    },
    CommandInfo {
        name: "set",
        options: "[-s] [-v version] path data",
    },
    CommandInfo {
        name: "setAcl",
        options: "[-s] [-v version] [-R] path acl",
    },
    CommandInfo {
        name: "setquota",
        options: "-n|-b|-N|-B val path",
    },
    CommandInfo {
        name: "stat",
        options: "[-w] path",
    },
    CommandInfo {
        name: "sync",
        options: "path",
    },
    CommandInfo {
        name: "version",
        options: "",
    },
    CommandInfo {
        name: "whoami",
        options: "",
    },
];

pub fn usage_str(name: &str) -> String {
    let options = COMMANDS
        .iter()
        .find(|c| c.name == name)
        .map(|c| c.options)
        .unwrap_or("");
    format!("{name} {options}")
}

/// The text zkCli prints for `version`.
pub fn version_text() -> String {
    format!(
        "ZooKeeper CLI version: 3.8.0-corral-{}, built on Corral (no build date)",
        env!("CARGO_PKG_VERSION")
    )
}

const NO_OPTIONS: Options = Options {
    opts: &[],
    groups: &[],
};

fn options(opts: &'static [OptSpec]) -> Options {
    Options { opts, groups: &[] }
}

fn parse(options: &Options, args: &[String]) -> Result<CommandLine, Failure> {
    options.parse(args).map_err(|e| Failure::cli(e.to_string()))
}

/// Integer.parseInt; a failure is the uncaught NumberFormatException Java dies of.
fn parse_int_or_crash(text: &str) -> Result<i32, Failure> {
    text.parse::<i32>()
        .map_err(|_| Failure::number_format(text))
}

fn print_stat(stat: &Stat) {
    for line in stat_lines(stat, super::format::java_date) {
        out(&line);
    }
}

fn wrap(e: Error) -> Failure {
    Failure::Client(e)
}

/// The commands that go through the CLI command map (everything but connect,
/// history, redo, printwatches and quit, which the main loop handles).
pub fn is_cli_command(name: &str) -> bool {
    matches!(
        name,
        "close"
            | "create"
            | "delete"
            | "deleteall"
            | "set"
            | "get"
            | "ls"
            | "getAcl"
            | "setAcl"
            | "stat"
            | "sync"
            | "setquota"
            | "listquota"
            | "delquota"
            | "addauth"
            | "reconfig"
            | "config"
            | "removewatches"
            | "getEphemerals"
            | "getAllChildrenNumber"
            | "version"
            | "addWatch"
            | "whoami"
    )
}

/// The option set the command `name` parses its words with (None for the commands the
/// main loop handles, which take no options). Used by the fuzz entry point.
pub fn options_for(name: &str) -> Option<Options> {
    let opts: &'static [OptSpec] = match name {
        "ls" => LS_OPTS,
        "get" => GET_OPTS,
        "create" => CREATE_OPTS,
        "set" => SET_OPTS,
        "delete" => DELETE_OPTS,
        "deleteall" => DELETEALL_OPTS,
        "stat" => STAT_OPTS,
        "getAcl" => GETACL_OPTS,
        "setAcl" => SETACL_OPTS,
        "reconfig" => RECONFIG_OPTS,
        "config" => CONFIG_OPTS,
        "removewatches" => REMOVE_WATCHES_OPTS,
        "addWatch" => ADD_WATCH_OPTS,
        "setquota" => return Some(quota::SETQUOTA),
        "delquota" => return Some(quota::DELQUOTA),
        name if is_cli_command(name) => return Some(NO_OPTIONS),
        _ => return None,
    };
    Some(options(opts))
}

/// Runs one CLI command; `args[0]` is its name.
pub fn run(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    match args[0].as_str() {
        "ls" => ls(session, args),
        "get" => get(session, args),
        "create" => create(session, args),
        "set" => set(session, args),
        "delete" => delete(session, args),
        "deleteall" => deleteall(session, args),
        "stat" => stat(session, args),
        "getAcl" => get_acl(session, args),
        "setAcl" => set_acl(session, args),
        "sync" => sync(session, args),
        "setquota" => {
            let cl = parse(&quota::SETQUOTA, &args)?;
            if cl.args.len() < 2 {
                return Err(Failure::cli(quota::SETQUOTA_USAGE));
            }
            quota::setquota(session, &cl)
        }
        "listquota" => {
            let cl = parse(&NO_OPTIONS, &args)?;
            if cl.args.len() < 2 {
                return Err(Failure::cli(usage_str("listquota")));
            }
            quota::listquota(session, &cl)
        }
        "delquota" => {
            let cl = parse(&quota::DELQUOTA, &args)?;
            if cl.args.len() < 2 {
                return Err(Failure::cli(usage_str("delquota")));
            }
            quota::delquota(session, &cl)
        }
        "addauth" => addauth(session, args),
        "reconfig" => reconfig(session, args),
        "config" => get_config(session, args),
        "removewatches" => remove_watches(session, args),
        "getEphemerals" => get_ephemerals(session, args),
        "getAllChildrenNumber" => get_all_children_number(session, args),
        "version" => {
            let cl = parse(&NO_OPTIONS, &args)?;
            if cl.args.len() > 1 {
                return Err(Failure::cli(usage_str("version")));
            }
            out(&version_text());
            Ok(())
        }
        "addWatch" => add_watch(session, args),
        "whoami" => whoami(session),
        "close" => {
            session.close();
            Ok(())
        }
        other => Err(Failure::cli(format!("Command not found: {other}"))),
    }
}

/// The `cmd path [watch]` compatibility of ls, get and stat: a third word turns into
/// `-w` (Java overwrites `cmdArgs[2]`, whatever it held) after a deprecation notice.
fn retain_watch_compatibility(
    options: &Options,
    mut args: Vec<String>,
    cl: CommandLine,
    notice: &str,
) -> Result<CommandLine, Failure> {
    if cl.args.len() <= 2 {
        return Ok(cl);
    }
    args[2] = "-w".to_string();
    err(notice);
    parse(options, &args)
}

const LS_OPTS: &[OptSpec] = &[
    opt("?", false, "help"),
    opt("s", false, "stat"),
    opt("w", false, "watch"),
    opt("R", false, "recurse"),
];

/// HelpFormatter's output for `ls -?`.
const LS_HELP: &str =
    "usage: ls [options] path\n -?   help\n -R   recurse\n -s   stat\n -w   watch";

fn ls(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let o = options(LS_OPTS);
    let cl = parse(&o, &args)?;
    if cl.has("?") {
        out(LS_HELP);
    }
    let cl = retain_watch_compatibility(
        &o,
        args,
        cl,
        "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.",
    )?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("ls")));
    }
    let path = &cl.args[1];
    let watch = cl.has("w");
    if cl.has("R") {
        return visit_sub_tree_dfs(session, path, watch, &mut |p| {
            out(p);
            Ok(())
        });
    }
    validate_path(path).map_err(Failure::cli)?;
    let (mut children, stat) = session.zk().get_children2(path, watch).map_err(wrap)?;
    java_sort(&mut children);
    out(&java_list(&children));
    if cl.has("s") {
        print_stat(&stat);
    }
    Ok(())
}

/// ZKUtil.visitSubTreeDFS: reads the root's data (with the watch), visits the root,
/// then each node's sorted children before descending into them. Children that vanish
/// meanwhile are skipped. An explicit stack bounds memory by the tree, not the thread
/// stack.
pub fn visit_sub_tree_dfs(
    session: &Session,
    path: &str,
    watch: bool,
    visit: &mut dyn FnMut(&str) -> Result<(), Failure>,
) -> Result<(), Failure> {
    validate_path(path).map_err(Failure::cli)?;
    let zk = session.zk();
    zk.get_data(path, watch).map_err(wrap)?;
    visit(path)?;
    let children_of = |node: &str| -> Result<Vec<String>, Failure> {
        match zk.get_children2(node, watch) {
            Ok((mut children, _)) => {
                java_sort(&mut children);
                let base = if node == "/" { "" } else { node };
                Ok(children
                    .into_iter()
                    .map(|c| format!("{base}/{c}"))
                    .collect())
            }
            Err(e) if e.code() == Some(ErrorCode::NoNode) => Ok(Vec::new()),
            Err(e) => Err(wrap(e)),
        }
    };
    let first = children_of(path)?;
    for child in &first {
        visit(child)?;
    }
    let mut stack: Vec<(Vec<String>, usize)> = vec![(first, 0)];
    while let Some((nodes, next)) = stack.last_mut() {
        if *next >= nodes.len() {
            stack.pop();
            continue;
        }
        let node = nodes[*next].clone();
        *next += 1;
        let children = children_of(&node)?;
        for child in &children {
            visit(child)?;
        }
        stack.push((children, 0));
    }
    Ok(())
}

const GET_OPTS: &[OptSpec] = &[opt("s", false, "stats"), opt("w", false, "watch")];

fn get(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let o = options(GET_OPTS);
    let cl = parse(&o, &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("get")));
    }
    let cl = retain_watch_compatibility(
        &o,
        args,
        cl,
        "'get path [watch]' has been deprecated. Please use 'get [-s] [-w] path' instead.",
    )?;
    let path = &cl.args[1];
    let (data, stat) = session.zk().get_data(path, cl.has("w")).map_err(wrap)?;
    let text = match &data {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => "null".to_string(),
    };
    out(&text);
    if cl.has("s") {
        print_stat(&stat);
    }
    Ok(())
}

const CREATE_OPTS: &[OptSpec] = &[
    opt("e", false, "ephemeral"),
    opt("s", false, "sequential"),
    opt("c", false, "container"),
    opt("t", true, "ttl"),
];

fn create(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(CREATE_OPTS), &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("create")));
    }
    let (has_e, has_s, has_c, has_t) = (cl.has("e"), cl.has("s"), cl.has("c"), cl.has("t"));
    if has_c && (has_e || has_s) {
        return Err(Failure::cli(
            "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.",
        ));
    }
    let ttl_ms = if has_t {
        let text = cl.value("t").unwrap_or("");
        Some(
            text.parse::<i64>()
                .map_err(|_| Failure::cli("-t argument must be a long value"))?,
        )
    } else {
        None
    };
    if has_t && has_e {
        return Err(Failure::cli("TTLs cannot be used with Ephemeral znodes"));
    }
    if has_t && has_c {
        return Err(Failure::cli("TTLs cannot be used with Container znodes"));
    }
    let mode = match (has_e, has_s, has_c, has_t) {
        (true, true, _, _) => CreateMode::EphemeralSequential,
        (true, false, _, _) => CreateMode::Ephemeral,
        (false, true, _, true) => CreateMode::PersistentSequentialWithTtl,
        (false, true, _, false) => CreateMode::PersistentSequential,
        (false, false, true, _) => CreateMode::Container,
        (false, false, false, true) => CreateMode::PersistentWithTtl,
        (false, false, false, false) => CreateMode::Persistent,
    };
    if let Some(ttl) = ttl_ms {
        if ttl <= 0 || ttl > crate::client::TTL_MS_MAX {
            return Err(Failure::cli(format!(
                "ttl must be positive and cannot be larger than: {}",
                crate::client::TTL_MS_MAX
            )));
        }
    }
    let path = &cl.args[1];
    let data = cl.args.get(2).map(|d| d.as_bytes().to_vec());
    let acl = match cl.args.get(3) {
        Some(text) => {
            let (acl, warnings) = parse_acl(text);
            for w in warnings {
                err(&w);
            }
            acl
        }
        None => Acl::open_unsafe(),
    };
    let zk = session.zk();
    let created = if has_t {
        zk.create2(path, data.as_deref(), &acl, mode, ttl_ms)
            .map(|(p, _)| p)
    } else {
        zk.create(path, data.as_deref(), &acl, mode)
    };
    match created {
        Ok(p) => {
            err(&format!("Created {p}"));
            Ok(())
        }
        Err(e) => {
            match e.code() {
                Some(ErrorCode::EphemeralOnLocalSession) => {
                    err("Unable to create ephemeral node on a local session")
                }
                Some(ErrorCode::InvalidAcl) => err(&e.to_string()),
                _ => {}
            }
            Err(wrap(e))
        }
    }
}

const SET_OPTS: &[OptSpec] = &[opt("s", false, "stats"), opt("v", true, "version")];

fn set(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(SET_OPTS), &args)?;
    if cl.args.len() < 3 {
        return Err(Failure::cli(usage_str("set")));
    }
    let path = &cl.args[1];
    let data = cl.args[2].as_bytes();
    let version = match cl.value("v") {
        Some(v) => parse_int_or_crash(v)?,
        None => -1,
    };
    let stat = session
        .zk()
        .set_data(path, Some(data), version)
        .map_err(wrap)?;
    if cl.has("s") {
        print_stat(&stat);
    }
    Ok(())
}

const DELETE_OPTS: &[OptSpec] = &[opt("v", true, "version")];

fn delete(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(DELETE_OPTS), &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("delete")));
    }
    if cl.args.len() > 2 {
        // Java only warns; the extra word is not used as a version.
        err("'delete path [version]' has been deprecated. Please use 'delete [-v version] path' instead.");
    }
    let path = &cl.args[1];
    let version = match cl.value("v") {
        Some(v) => parse_int_or_crash(v)?,
        None => -1,
    };
    session.zk().delete(path, version).map_err(wrap)
}

const DELETEALL_OPTS: &[OptSpec] = &[opt("b", true, "batch size")];

/// ZKUtil.deleteRecursive's batches are sent with at most this many multis in flight in
/// Java; here they are sent one after another, which prints the same.
fn deleteall(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(DELETEALL_OPTS), &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("deleteall")));
    }
    let batch_size = match cl.value("b") {
        Some(b) => b
            .parse::<i32>()
            .map_err(|_| Failure::cli("-b argument must be an int value"))?,
        None => 1000,
    };
    let path = &cl.args[1];
    validate_path(path).map_err(Failure::cli)?;
    let zk = session.zk();
    // listSubTreeBFS
    let mut tree = vec![path.clone()];
    let mut at = 0;
    while at < tree.len() {
        let node = tree[at].clone();
        at += 1;
        let children = zk.get_children(&node, false).map_err(wrap)?;
        let base = if node == "/" { "" } else { node.as_str() };
        tree.extend(children.into_iter().map(|c| format!("{base}/{c}")));
    }
    let mut success = true;
    let mut ops = Vec::new();
    for (i, node) in tree.iter().enumerate().rev() {
        ops.push(crate::client::Op::Delete {
            path: node.clone(),
            version: -1,
        });
        if ops.len() as i64 == i64::from(batch_size) || i == 0 {
            if !success {
                break;
            }
            if zk.multi(&std::mem::take(&mut ops)).is_err() {
                success = false;
            }
        }
    }
    if !success {
        err("Failed to delete some node(s) in the subtree!");
    }
    Ok(())
}

const STAT_OPTS: &[OptSpec] = &[opt("w", false, "watch")];

fn stat(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let o = options(STAT_OPTS);
    let cl = parse(&o, &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("stat")));
    }
    let cl = retain_watch_compatibility(
        &o,
        args,
        cl,
        "'stat path [watch]' has been deprecated. Please use 'stat [-w] path' instead.",
    )?;
    let path = &cl.args[1];
    match session.zk().exists(path, cl.has("w")).map_err(wrap)? {
        Some(stat) => {
            print_stat(&stat);
            Ok(())
        }
        None => Err(Failure::Client(Error::Keeper {
            code: ErrorCode::NoNode,
            path: Some(path.clone()),
        })),
    }
}

const GETACL_OPTS: &[OptSpec] = &[opt("s", false, "stats")];

fn get_acl(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(GETACL_OPTS), &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("getAcl")));
    }
    let (acl, stat) = session.zk().get_acl(&cl.args[1]).map_err(wrap)?;
    for a in &acl {
        out(&acl_entry(a));
    }
    if cl.has("s") {
        print_stat(&stat);
    }
    Ok(())
}

const SETACL_OPTS: &[OptSpec] = &[
    opt("s", false, "stats"),
    opt("v", true, "version"),
    opt("R", false, "recursive"),
];

fn set_acl(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(SETACL_OPTS), &args)?;
    if cl.args.len() < 3 {
        return Err(Failure::cli(usage_str("setAcl")));
    }
    let path = &cl.args[1];
    let (acl, warnings) = parse_acl(&cl.args[2]);
    for w in warnings {
        err(&w);
    }
    let version = match cl.value("v") {
        Some(v) => parse_int_or_crash(v)?,
        None => -1,
    };
    let zk = session.zk();
    if cl.has("R") {
        return visit_sub_tree_dfs(session, path, false, &mut |p| {
            // Java prints each failure without a newline and goes on.
            if let Err(e) = zk.set_acl(p, &acl, version) {
                out_raw(&e.to_string());
            }
            Ok(())
        });
    }
    let stat = zk.set_acl(path, &acl, version).map_err(wrap)?;
    if cl.has("s") {
        print_stat(&stat);
    }
    Ok(())
}

fn sync(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&NO_OPTIONS, &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("sync")));
    }
    match session.zk().sync(&cl.args[1]) {
        Ok(_) => out("Sync is OK"),
        Err(Error::InvalidArgument(msg)) => return Err(Failure::cli(msg)),
        Err(e) => {
            let rc = e.code().map(ErrorCode::code).unwrap_or(0);
            out(&format!("Sync has failed. rc={rc}"));
        }
    }
    Ok(())
}

fn addauth(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&NO_OPTIONS, &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("addauth")));
    }
    let auth = cl.args.get(2).map(|a| a.as_bytes()).unwrap_or(b"");
    session.zk().add_auth(&cl.args[1], auth);
    Ok(())
}

const RECONFIG_OPTS: &[OptSpec] = &[
    opt("s", false, "stats"),
    opt("v", true, "required current config version"),
    opt("file", true, "path of config file to parse for membership"),
    opt(
        "members",
        true,
        "comma-separated list of config strings for non-incremental reconfig",
    ),
    opt(
        "add",
        true,
        "comma-separated list of config strings for new servers",
    ),
    opt(
        "remove",
        true,
        "comma-separated list of server IDs to remove",
    ),
];

fn reconfig(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(RECONFIG_OPTS), &args)?;
    let non_incremental = cl.has("file") || cl.has("members");
    let incremental = cl.has("add") || cl.has("remove");
    if !non_incremental && !incremental {
        return Err(Failure::cli(usage_str("reconfig")));
    }
    let version = match cl.value("v") {
        Some(v) => i64::from_str_radix(v, 16)
            .map_err(|_| Failure::cli("-v must be followed by a long (configuration version)"))?,
        None => -1,
    };
    if non_incremental && incremental {
        return Err(Failure::cli("Can't use -file or -members together with -add or -remove (mixing incremental and non-incremental modes is not allowed)"));
    }
    if cl.has("file") && cl.has("members") {
        return Err(Failure::cli(
            "Can't use -file and -members together (conflicting non-incremental modes)",
        ));
    }
    let joining = cl.value("add").map(str::to_lowercase);
    let leaving = cl.value("remove").map(str::to_lowercase);
    let mut members = cl.value("members").map(str::to_lowercase);
    if let Some(file) = cl.value("file") {
        let text = std::fs::read_to_string(file).map_err(|e| {
            let why = match e.kind() {
                std::io::ErrorKind::NotFound => "No such file or directory".to_string(),
                std::io::ErrorKind::PermissionDenied => "Permission denied".to_string(),
                _ => e.to_string(),
            };
            Failure::cli(format!("Error processing {file}{file} ({why})"))
        })?;
        members = Some(
            config::members_from_file_text(&text)
                .map_err(|why| Failure::cli(format!("Error processing {file}{why}")))?,
        );
    }
    let (data, stat) = session
        .zk()
        .reconfig(
            joining.as_deref(),
            leaving.as_deref(),
            members.as_deref(),
            version,
        )
        .map_err(wrap)?;
    let text = String::from_utf8_lossy(data.as_deref().unwrap_or(b"null")).into_owned();
    out(&format!("Committed new configuration:\n{text}"));
    if cl.has("s") {
        print_stat(&stat);
    }
    Ok(())
}

const CONFIG_OPTS: &[OptSpec] = &[
    opt("s", false, "stats"),
    opt("w", false, "watch"),
    opt("c", false, "client connection string"),
];

fn get_config(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(CONFIG_OPTS), &args)?;
    let (data, stat) = session.zk().get_config(cl.has("w")).map_err(wrap)?;
    let text = match &data {
        Some(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        None => "null".to_string(),
    };
    if cl.has("c") {
        out(&config::client_config_str(&text));
    } else {
        out(&text);
    }
    if cl.has("s") {
        print_stat(&stat);
    }
    Ok(())
}

const REMOVE_WATCHES_OPTS: &[OptSpec] = &[
    opt("c", false, "child watcher type"),
    opt("d", false, "data watcher type"),
    opt("a", false, "any watcher type"),
    opt(
        "l",
        false,
        "remove locally when there is no server connection",
    ),
];

fn remove_watches(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(REMOVE_WATCHES_OPTS), &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("removewatches")));
    }
    let kind = if cl.has("c") {
        watcher_type::CHILDREN
    } else if cl.has("d") {
        watcher_type::DATA
    } else {
        watcher_type::ANY
    };
    session
        .zk()
        .remove_watches(&cl.args[1], kind, cl.has("l"))
        .map_err(wrap)
}

fn get_ephemerals(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&NO_OPTIONS, &args)?;
    let prefix = cl.args.get(1).map(String::as_str).unwrap_or("/");
    let ephemerals = session.zk().get_ephemerals(prefix).map_err(wrap)?;
    out(&java_list(&ephemerals));
    Ok(())
}

fn get_all_children_number(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&NO_OPTIONS, &args)?;
    if cl.args.len() < 2 {
        return Err(Failure::cli(usage_str("getAllChildrenNumber")));
    }
    let n = session
        .zk()
        .get_all_children_number(&cl.args[1])
        .map_err(wrap)?;
    out(&n.to_string());
    Ok(())
}

const ADD_WATCH_OPTS: &[OptSpec] = &[opt("m", true, "")];

fn add_watch(session: &Session, args: Vec<String>) -> Result<(), Failure> {
    let cl = parse(&options(ADD_WATCH_OPTS), &args)?;
    if cl.args.len() != 2 {
        return Err(Failure::cli(usage_str("addWatch")));
    }
    let mode = match cl.value("m") {
        None => add_watch_mode::PERSISTENT_RECURSIVE,
        Some(m) => match m.to_uppercase().as_str() {
            "PERSISTENT" => add_watch_mode::PERSISTENT,
            "PERSISTENT_RECURSIVE" => add_watch_mode::PERSISTENT_RECURSIVE,
            _ => return Err(Failure::cli(usage_str("addWatch"))),
        },
    };
    match session.zk().add_watch(&cl.args[1], mode) {
        Ok(()) => Ok(()),
        // AddWatchCommand does not catch IllegalArgumentException: Java dies of it.
        Err(Error::InvalidArgument(msg)) => Err(Failure::Crash(format!(
            "java.lang.IllegalArgumentException: {msg}"
        ))),
        Err(e) => Err(wrap(e)),
    }
}

fn whoami(session: &Session) -> Result<(), Failure> {
    let infos = session.zk().who_am_i().map_err(wrap)?;
    out("Auth scheme: User");
    for info in infos {
        out(&format!("{}: {}", info.auth_scheme, info.user));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn command_table_is_sorted_and_complete() {
        let names: Vec<&str> = COMMANDS.iter().map(|c| c.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        for c in COMMANDS {
            let main_loop = matches!(
                c.name,
                "connect" | "history" | "redo" | "printwatches" | "quit"
            );
            assert_eq!(is_cli_command(c.name), !main_loop, "{}", c.name);
        }
        assert_eq!(usage_str("close"), "close ");
        assert_eq!(usage_str("ls"), "ls [-s] [-w] [-R] path");
    }
}
