//! `corral cli` against a running server: one-shot commands and piped sessions, with
//! the output and exit codes Apache ZooKeeper 3.8's zkCli gives (checked against the
//! real zkCli and a real ZooKeeper 3.8 server when these expectations were written).
//!
//! The server comes from `CORRAL_TEST_SERVER` (`host:port`); without it each test starts
//! its own Corral server. Each test works under its own root znode, named after the
//! test and the process, and removes it at the end.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::target;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn finish(output: Output) -> Run {
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// `corral cli -server <server> <words...>`
fn cli(server: &str, words: &[&str]) -> Run {
    let output = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("cli")
        .arg("-server")
        .arg(server)
        .args(words)
        .stdin(Stdio::null())
        .output()
        .expect("run corral cli");
    finish(output)
}

/// `corral cli -server <server>` with `lines` on stdin (not a terminal).
fn piped(server: &str, lines: &str) -> Run {
    let mut child = Command::new(env!("CARGO_BIN_EXE_corral"))
        .arg("cli")
        .arg("-server")
        .arg(server)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start corral cli");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(lines.as_bytes())
        .expect("write commands");
    finish(child.wait_with_output().expect("wait for corral cli"))
}

const CONNECTED: &str = "\nWATCHER::\n\nWatchedEvent state:SyncConnected type:None path:null\n";

/// A root znode for one test, deleted when dropped.
struct Root {
    server: String,
    path: String,
}

impl Root {
    fn new(server: &str, test: &str) -> Root {
        let path = format!("/corral-cli-{test}-{}", std::process::id());
        cli(server, &["deleteall", &path]);
        let r = cli(server, &["create", &path]);
        assert_eq!(r.code, 0, "create {path}: {}", r.stderr);
        Root {
            server: server.to_string(),
            path,
        }
    }

    fn at(&self, rest: &str) -> String {
        format!("{}{rest}", self.path)
    }
}

impl Drop for Root {
    fn drop(&mut self) {
        cli(&self.server, &["deleteall", &self.path]);
    }
}

fn connecting(server: &str) -> String {
    format!("Connecting to {server}\n")
}

/// The eleven StatPrinter lines, values aside.
fn assert_stat_lines(text: &str) {
    let keys = [
        "cZxid = 0x",
        "ctime = ",
        "mZxid = 0x",
        "mtime = ",
        "pZxid = 0x",
        "cversion = ",
        "dataVersion = ",
        "aclVersion = ",
        "ephemeralOwner = 0x",
        "dataLength = ",
        "numChildren = ",
    ];
    let lines: Vec<&str> = text.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.starts_with("cZxid = 0x"))
        .expect("stat lines");
    for (i, key) in keys.iter().enumerate() {
        assert!(
            lines[at + i].starts_with(key),
            "line {}: {:?}",
            at + i,
            lines[at + i]
        );
    }
}

#[test]
fn create_get_set_delete() {
    let target = target();
    let server = target.addr.clone();
    let root = Root::new(&server, "cgsd");
    let node = root.at("/a");

    let r = cli(&server, &["create", &node, "hello"]);
    assert_eq!(r.code, 0);
    assert_eq!(r.stdout, format!("{}{CONNECTED}", connecting(&server)));
    assert_eq!(r.stderr, format!("Created {node}\n"));

    let r = cli(&server, &["create", &node, "again"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, format!("Node already exists: {node}\n"));

    let r = cli(&server, &["get", &node]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stdout,
        format!("{}{CONNECTED}hello\n", connecting(&server))
    );

    let r = cli(&server, &["set", "-s", &node, "world"]);
    assert_eq!(r.code, 0);
    assert_stat_lines(&r.stdout);
    assert!(r.stdout.contains("\ndataVersion = 1\n"));
    assert!(r.stdout.contains("\ndataLength = 5\n"));

    let r = cli(&server, &["set", "-v", "7", &node, "x"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, format!("version No is not valid : {node}\n"));

    let r = cli(&server, &["get", "-s", &node]);
    assert!(r.stdout.contains("\nworld\ncZxid = 0x"));

    let r = cli(&server, &["create", &root.at("/a/b")]);
    assert_eq!(r.code, 0);
    let r = cli(&server, &["delete", &node]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, format!("Node not empty: {node}\n"));

    let r = cli(&server, &["deleteall", &node]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let r = cli(&server, &["stat", &node]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, format!("Node does not exist: {node}\n"));
}

#[test]
fn ls_forms() {
    let target = target();
    let server = target.addr.clone();
    let root = Root::new(&server, "ls");
    for child in ["/b", "/a", "/a/x", "/c"] {
        assert_eq!(cli(&server, &["create", &root.at(child)]).code, 0);
    }
    let r = cli(&server, &["ls", &root.path]);
    assert_eq!(
        r.stdout,
        format!("{}{CONNECTED}[a, b, c]\n", connecting(&server))
    );

    let r = cli(&server, &["ls", "-R", &root.path]);
    let expected: String = ["", "/a", "/b", "/c", "/a/x"]
        .iter()
        .map(|s| format!("{}\n", root.at(s)))
        .collect();
    assert_eq!(
        r.stdout,
        format!("{}{CONNECTED}{expected}", connecting(&server))
    );

    let r = cli(&server, &["ls", "-s", &root.path]);
    assert!(r.stdout.contains("[a, b, c]\ncZxid = 0x"));
    assert!(r.stdout.contains("\nnumChildren = 3\n"));

    let r = cli(&server, &["ls", &root.path, "watch"]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        "'ls path [watch]' has been deprecated. Please use 'ls [-w] path' instead.\n"
    );
}

#[test]
fn local_errors_and_exit_codes() {
    let target = target();
    let server = target.addr.clone();
    let r = cli(&server, &["ls"]);
    assert_eq!((r.code, r.stdout.clone()), (1, connecting(&server)));
    assert_eq!(r.stderr, "ls [-s] [-w] [-R] path\n");

    let r = cli(&server, &["ls", "-x", "/"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x\n"
    );

    let r = cli(&server, &["get", "bad"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, "Path must start with / character\n");

    let r = cli(&server, &["create", "/a//b"]);
    assert_eq!(
        r.stderr,
        "Invalid path string \"/a//b\" caused by empty node name specified @3\n"
    );

    let r = cli(&server, &["create", "-t", "abc", "/x"]);
    assert_eq!(r.stderr, "-t argument must be a long value\n");
    let r = cli(&server, &["create", "-c", "-s", "/x"]);
    assert_eq!(
        r.stderr,
        "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.\n"
    );

    let r = cli(&server, &["nosuchcommand"]);
    assert_eq!(r.code, 127);
    assert!(r.stderr.starts_with(
        "ZooKeeper -server host:port -client-configuration properties-file cmd args\n\taddWatch [-m mode] path"
    ));
    assert!(r
        .stderr
        .ends_with("\twhoami \nCommand not found: Command not found nosuchcommand\n"));

    let r = cli(&server, &["set", "-v", "x", "/a", "d"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "Exception in thread \"main\" java.lang.NumberFormatException: For input string: \"x\"\n"
    );

    let r = cli(&server, &["version"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("ZooKeeper CLI version: 3.8.0"));
}

#[test]
fn acl_commands() {
    let target = target();
    let server = target.addr.clone();
    let root = Root::new(&server, "acl");
    let node = root.at("/n");
    let r = cli(
        &server,
        &["create", &node, "x", "world:anyone:r,digest:bad"],
    );
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        format!("digest:bad does not have the form scheme:id:perm\nCreated {node}\n")
    );
    let r = cli(&server, &["getAcl", &node]);
    assert_eq!(
        r.stdout,
        format!("{}{CONNECTED}'world,'anyone\n: r\n", connecting(&server))
    );
    let r = cli(&server, &["set", &node, "y"]);
    assert_eq!(r.code, 1);
    assert_eq!(r.stderr, format!("Insufficient permission : {node}\n"));

    let r = cli(&server, &["create", &root.at("/bad"), "x", "foo"]);
    assert_eq!(r.code, 1);
    assert_eq!(
        r.stderr,
        "foo does not have the form scheme:id:perm\nKeeperErrorCode = InvalidACL\nAcl is not valid : null\n"
    );

    let open = root.at("/open");
    assert_eq!(cli(&server, &["create", &open]).code, 0);
    let r = cli(&server, &["setAcl", "-s", &open, "world:anyone:cdrwa"]);
    assert_eq!(r.code, 0);
    assert!(r.stdout.contains("\naclVersion = 1\n"));
    let r = cli(&server, &["getAcl", "-s", &open]);
    assert!(r.stdout.contains("'world,'anyone\n: cdrwa\ncZxid = 0x"));
}

#[test]
fn quota_commands() {
    let target = target();
    let server = target.addr.clone();
    let root = Root::new(&server, "quota");
    let node = root.at("/q");
    assert_eq!(cli(&server, &["create", &node]).code, 0);
    let r = cli(&server, &["setquota", "-n", "5", &node]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let r = cli(&server, &["listquota", &node]);
    assert_eq!(r.code, 0);
    assert_eq!(
        r.stderr,
        format!("absolute path is /zookeeper/quota{node}/zookeeper_limits\n")
    );
    assert!(r.stdout.contains(&format!(
        "Output quota for {node} count=5,bytes=-1=;byteHardLimit=-1;countHardLimit=-1\n"
    )));
    assert!(r.stdout.contains(&format!("Output stat for {node} count=")));

    let r = cli(&server, &["setquota", "-n", "5", "-b", "6", &node]);
    assert_eq!(
        r.stderr,
        "org.apache.commons.cli.AlreadySelectedException: The option 'b' was specified but an option from this group has already been selected: 'n'\n"
    );
    let r = cli(&server, &["delquota", &node]);
    assert_eq!((r.code, r.stderr.as_str()), (0, ""));
    let r = cli(&server, &["listquota", &node]);
    assert!(r
        .stderr
        .ends_with(&format!("quota for {node} does not exist.\n")));
    cli(
        &server,
        &["deleteall", &format!("/zookeeper/quota{}", root.path)],
    );
}

#[test]
fn piped_session_prints_watch_events_and_history() {
    let target = target();
    let server = target.addr.clone();
    let root = Root::new(&server, "piped");
    let node = root.at("/w");
    let script = format!(
        "create {node} 1\nget -w {node}\nset {node} 2\nprintwatches\nhistory\nredo 1\nget /nonexistent-corral\n"
    );
    let r = piped(&server, &script);
    let expected = format!(
        "{}Welcome to ZooKeeper!\nJLine support is disabled\n{CONNECTED}1\n\nWATCHER::\n\nWatchedEvent state:SyncConnected type:NodeDataChanged path:{node}\nprintwatches is on\n0 - create {node} 1\n1 - get -w {node}\n2 - set {node} 2\n3 - printwatches\n4 - history\n2\n",
        connecting(&server)
    );
    assert_eq!(r.stdout, expected);
    assert_eq!(
        r.stderr,
        format!("Created {node}\nNode does not exist: /nonexistent-corral\n")
    );
    // Interactive mode exits with the last command's code.
    assert_eq!(r.code, 1);
}

#[test]
fn chroot_is_client_side() {
    let target = target();
    let server = target.addr.clone();
    let root = Root::new(&server, "chroot");
    let chrooted = format!("{server}{}", root.path);
    let r = cli(&chrooted, &["create", "/x", "d"]);
    assert_eq!(r.stderr, "Created /x\n");
    let r = cli(&chrooted, &["ls", "/"]);
    assert!(r.stdout.ends_with("[x]\n"));
    let r = cli(&server, &["get", &root.at("/x")]);
    assert!(r.stdout.ends_with("\nd\n"));
}

#[test]
fn closed_session_says_not_connected() {
    let target = target();
    let server = target.addr.clone();
    let r = piped(&server, "close\nls /\n");
    assert_eq!(
        r.stdout,
        format!(
            "{}Welcome to ZooKeeper!\nJLine support is disabled\n{CONNECTED}\nWATCHER::\n\nWatchedEvent state:Closed type:None path:null\nNot connected\n",
            connecting(&server)
        )
    );
    assert_eq!(r.code, 0);
}
