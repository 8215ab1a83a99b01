//! `corral cli`: Corral's own zkCli, with Apache ZooKeeper 3.8's zkCli behaviour and
//! output (`org.apache.zookeeper.ZooKeeperMain` and `org.apache.zookeeper.cli`), no Java.
//!
//! Invocation: `[-server host:port[,host:port...][/chroot]] [-timeout ms] [-r]
//! [-client-configuration file] [-waitforconnection] [cmd args...]`. With a command it
//! runs that one command and exits with zkCli's code (0 ok, 1 failed, 127 unknown
//! command, 2 bad client configuration); without one it reads commands: with line
//! editing, history and the `[zk: host(STATE) n] ` prompt on a terminal, line by line
//! without a prompt otherwise (what the installed zkCli does when JLine is absent or
//! stdin is not a terminal), and exits with the last command's code.
//!
//! Output goes where zkCli sends it (results to stdout, errors and `Created /x` to
//! stderr); watch events print as `\nWATCHER::\n\nWatchedEvent state:... type:...
//! path:...`. Java prints events from its event thread whenever they arrive; since a
//! JVM takes far longer to connect than to parse a command, a one-shot command that
//! fails before talking to the server exits before the SyncConnected event shows, and
//! one that talks to the server shows it first. Corral connects in microseconds, so to
//! give the same output every time the events are held back until the first command
//! that talks to the server (at once on a terminal, where the user expects to see the
//! connection come up).
//!
//! Where Java's zkCli dies of an uncaught exception (`set -v x`, `redo x`, a malformed
//! `-server`), this prints the same first line (`Exception in thread "main" ...`) without
//! the stack trace and exits with 1, as the JVM does.
//!
//! Known differences from the Java zkCli (3.8.0 as packaged by Debian), and why:
//! - no log4j/SLF4J lines and no stack-trace lines: they are the JVM's, not zkCli's;
//! - `version` prints `3.8.0-corral-<crate version>` and no build date;
//! - event timing: Java prints events whenever its event thread gets to them, so their
//!   place relative to command output varies from run to run; here it is fixed as
//!   described above (the most frequent Java outcome). Likewise a watch event that
//!   arrives while `printwatches off` is in force is never printed, where Java may
//!   print it if `printwatches on` runs before its event thread looks at the flag;
//! - when several kinds of watch are removed at once, the `*WatchRemoved` events come
//!   in the order child, data, persistent (Java's order comes from a hash map);
//! - `-client-configuration` must name a readable file (else exit 2, as Java) but its
//!   settings are not used; SASL is never attempted;
//! - `-r` asks for a read-only-capable session, but a client connected to a read-only
//!   server does not go looking for a read-write one as Java's does;
//! - on a terminal, Ctrl-C drops the line being typed instead of ending the program.

mod acl;
mod commands;
mod config;
mod format;
mod options;
mod quota;
mod tokenize;

use crate::client::{Client, ClientConfig, ConnectError, ConnectStringError, Error, WatchedEvent};
use crate::proto::ErrorCode;
use std::collections::HashMap;
use std::io::{BufRead, IsTerminal, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use tokenize::tokenize;

/// Exit code of a failed command (CliException's default).
pub const EXIT_FAILED: i32 = 1;
/// Exit code of an unknown command (CommandNotFoundException).
pub const EXIT_COMMAND_NOT_FOUND: i32 = 127;
/// Exit code of an invalid invocation (a bad `-client-configuration`).
pub const EXIT_INVALID_INVOCATION: i32 = 2;
/// Lines `history` shows besides the current one.
const HISTORY_SHOWN_MAX: i32 = 10;

/// Writes a line to stdout; a closed stdout is ignored, as Java's PrintStream does.
pub(crate) fn out(line: &str) {
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{line}");
}

/// Writes text without a newline to stdout, flushed at once.
pub(crate) fn out_raw(text: &str) {
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(text.as_bytes());
    let _ = o.flush();
}

/// Writes a line to stderr (after flushing stdout so a terminal shows both in order).
pub(crate) fn err(line: &str) {
    let _ = std::io::stdout().lock().flush();
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// Why a command did not finish normally.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A CliException: its message goes to stderr and the exit code is remembered.
    Cli { message: String, exit_code: i32 },
    /// A client error, printed as CliWrapperException prints it.
    Client(Error),
    /// An exception Java does not catch: `Exception in thread "main" <this>`, exit 1.
    Crash(String),
    /// The run ends now with this code (quit, or a crash already printed).
    Terminate(i32),
}

impl Failure {
    pub fn cli(message: impl Into<String>) -> Failure {
        Failure::Cli {
            message: message.into(),
            exit_code: EXIT_FAILED,
        }
    }

    pub fn number_format(input: &str) -> Failure {
        Failure::Crash(format!(
            "java.lang.NumberFormatException: For input string: \"{input}\""
        ))
    }

    pub fn from_client(e: Error) -> Failure {
        Failure::Client(e)
    }
}

/// CliWrapperException's message for a client error.
pub fn cli_wrapper_message(e: &Error) -> String {
    let (code, path) = match e {
        Error::Keeper { code, path } | Error::Multi { code, path, .. } => (*code, path),
        Error::InvalidArgument(msg) => return msg.clone(),
        Error::MalformedReply(d) => return d.to_string(),
    };
    let p = path.as_deref().unwrap_or("null");
    match code {
        ErrorCode::NoNode => format!("Node does not exist: {p}"),
        ErrorCode::NoChildrenForEphemerals => format!("Ephemerals cannot have children: {p}"),
        ErrorCode::NodeExists => format!("Node already exists: {p}"),
        ErrorCode::NotEmpty => format!("Node not empty: {p}"),
        ErrorCode::NotReadOnly => format!("Not a read-only call: {p}"),
        ErrorCode::InvalidAcl => format!("Acl is not valid : {p}"),
        ErrorCode::NoAuth => format!("Insufficient permission : {p}"),
        ErrorCode::BadArguments => format!("Arguments are not valid : {p}"),
        ErrorCode::BadVersion => format!("version No is not valid : {p}"),
        ErrorCode::ReconfigInProgress => {
            "Another reconfiguration is in progress -- concurrent reconfigs not supported (yet)"
                .to_string()
        }
        ErrorCode::NewConfigNoQuorum => "No quorum of new config is connected and up-to-date with the leader of last commmitted config - try invoking reconfiguration after new servers are connected and synced".to_string(),
        ErrorCode::QuotaExceeded => format!("Quota has exceeded : {p}"),
        _ => e.to_string(),
    }
}

/// Prints events as zkCli's watcher does, holding them back until the gate opens (see
/// the module doc).
pub(crate) struct Printer {
    print_watches: AtomicBool,
    gate_open: AtomicBool,
    /// Set when the run ends: Java's System.exit prints nothing more.
    silenced: AtomicBool,
    held: Mutex<Vec<WatchedEvent>>,
}

/// Events held while the gate is closed; a session has few state changes before its
/// first command, so this only bounds a misbehaving server.
const HELD_EVENTS_MAX: usize = 1024;

impl Printer {
    fn new(gate_open: bool) -> Printer {
        Printer {
            print_watches: AtomicBool::new(true),
            gate_open: AtomicBool::new(gate_open),
            silenced: AtomicBool::new(false),
            held: Mutex::new(Vec::new()),
        }
    }

    fn print(&self, event: &WatchedEvent) {
        if self.print_watches.load(Ordering::SeqCst) {
            out_raw(&format::event_block(event));
        }
    }

    fn on_event(&self, event: &WatchedEvent) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if self.silenced.load(Ordering::SeqCst) {
            return;
        }
        if self.gate_open.load(Ordering::SeqCst) {
            self.print(event);
        } else if held.len() < HELD_EVENTS_MAX {
            held.push(event.clone());
        }
    }

    pub fn open_gate(&self) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if self.gate_open.swap(true, Ordering::SeqCst) {
            return;
        }
        for event in held.drain(..) {
            if !self.silenced.load(Ordering::SeqCst) {
                self.print(&event);
            }
        }
    }

    /// Holds events again (a new session after `connect`), unless on a terminal.
    fn close_gate(&self, terminal: bool) {
        if !terminal {
            self.gate_open.store(false, Ordering::SeqCst);
        }
    }

    fn silence(&self) {
        let _held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        self.silenced.store(true, Ordering::SeqCst);
    }
}

/// A connected client plus the printer its events go to.
pub(crate) struct Session {
    client: Client,
    printer: Arc<Printer>,
}

impl Session {
    /// The client, for a command that is about to talk to the server.
    pub fn zk(&self) -> &Client {
        self.printer.open_gate();
        &self.client
    }

    pub fn close(&self) {
        self.printer.open_gate();
        let _ = self.client.close();
    }

    fn is_alive(&self) -> bool {
        self.client.state().is_alive()
    }
}

/// The `-server`, `-timeout`, ... options and the command given on the command line.
struct MainOptions {
    server: String,
    timeout: String,
    read_only: bool,
    client_configuration: Option<String>,
    wait_for_connection: bool,
    command: Option<Vec<String>>,
}

/// MyCommandOptions.parseOptions: options until the first word not starting with `-`,
/// which starts the command. Unknown options are skipped; an option missing its value
/// is reported and the rest is ignored.
fn parse_main_options(args: &[String]) -> MainOptions {
    let mut o = MainOptions {
        server: "localhost:2181".to_string(),
        timeout: "30000".to_string(),
        read_only: false,
        client_configuration: None,
        wait_for_connection: false,
        command: None,
    };
    let mut it = args.iter();
    while let Some(opt) = it.next() {
        let value_target = match opt.as_str() {
            "-server" => Some(&mut o.server),
            "-timeout" => Some(&mut o.timeout),
            "-client-configuration" => None,
            "-r" => {
                o.read_only = true;
                continue;
            }
            "-waitforconnection" => {
                o.wait_for_connection = true;
                continue;
            }
            _ => None,
        };
        if opt == "-server" || opt == "-timeout" || opt == "-client-configuration" {
            match it.next() {
                Some(value) => match value_target {
                    Some(target) => *target = value.clone(),
                    None => o.client_configuration = Some(value.clone()),
                },
                None => {
                    err(&format!("Error: no argument found for option {opt}"));
                    return o;
                }
            }
            continue;
        }
        if !opt.starts_with('-') {
            let mut command = vec![opt.clone()];
            command.extend(it.cloned());
            o.command = Some(command);
            return o;
        }
    }
    o
}

struct ZkMain {
    options: MainOptions,
    /// Interactive on a terminal: events print as they come.
    terminal: bool,
    /// The connect string of the current session, as shown in the prompt.
    host: String,
    session: Option<Session>,
    printer: Arc<Printer>,
    history: HashMap<i32, String>,
    command_count: i32,
    exit_code: i32,
    /// The words of the last line that had any (parseCommand keeps them otherwise).
    current: Option<Vec<String>>,
}

/// What a line or command did to the run.
type Step = Result<(), Failure>;

impl ZkMain {
    fn prompt(&self) -> String {
        let state = self
            .session
            .as_ref()
            .map(|s| s.client.state().to_string())
            .unwrap_or_else(|| "CLOSED".to_string());
        format!("[zk: {}({}) {}] ", self.host, state, self.command_count)
    }

    /// ZooKeeperMain.connectToZK.
    fn connect_to_zk(&mut self, new_host: &str) -> Step {
        if let Some(session) = &self.session {
            if session.is_alive() {
                session.close();
            }
        }
        self.host = new_host.to_string();
        // The new session's SyncConnected shows with the next command that talks to the
        // server, as Java's usually does (see the module doc).
        self.printer.close_gate(self.terminal);
        if let Some(path) = &self.options.client_configuration {
            if !std::path::Path::new(path).is_file() {
                err(&format!(
                    "org.apache.zookeeper.server.quorum.QuorumPeerConfig$ConfigException: Error while processing {path}"
                ));
                return Err(Failure::Terminate(EXIT_INVALID_INVOCATION));
            }
        }
        let timeout_ms: i32 = self
            .options
            .timeout
            .parse()
            .map_err(|_| Failure::number_format(&self.options.timeout))?;
        let printer = Arc::clone(&self.printer);
        let config = ClientConfig {
            session_timeout_ms: timeout_ms,
            read_only: self.options.read_only,
            watcher: Some(Arc::new(move |e: &WatchedEvent| printer.on_event(e))),
            ..ClientConfig::default()
        };
        let client = Client::connect(new_host, config).map_err(|e| match e {
            ConnectError::ConnectString(ConnectStringError::InvalidPort(port)) => {
                Failure::number_format(&port)
            }
            ConnectError::ConnectString(other) => {
                Failure::Crash(format!("java.lang.IllegalArgumentException: {other}"))
            }
            ConnectError::Spawn(why) => Failure::Crash(format!(
                "java.lang.OutOfMemoryError: unable to create native thread: {why}"
            )),
        })?;
        let session = Session {
            client,
            printer: Arc::clone(&self.printer),
        };
        if self.options.wait_for_connection {
            self.printer.open_gate();
            let wait_ms = u64::try_from(timeout_ms).unwrap_or(0);
            if !session
                .client
                .wait_connected(Duration::from_millis(wait_ms))
            {
                session.close();
                self.session = Some(session);
                return Err(Failure::Crash(
                    "java.io.IOException: org.apache.zookeeper.KeeperException$ConnectionLossException: KeeperErrorCode = ConnectionLoss"
                        .to_string(),
                ));
            }
        }
        self.session = Some(session);
        Ok(())
    }

    /// ZooKeeperMain.processCmd: runs the current words and records the exit code.
    fn process_cmd(&mut self) -> Step {
        match self.process_zk_cmd() {
            Ok(()) => {
                self.exit_code = 0;
                Ok(())
            }
            Err(Failure::Cli { message, exit_code }) => {
                self.exit_code = exit_code;
                err(&message);
                Ok(())
            }
            Err(Failure::Client(e)) => {
                self.exit_code = EXIT_FAILED;
                err(&cli_wrapper_message(&e));
                Ok(())
            }
            Err(other) => Err(other),
        }
    }

    fn usage() {
        err("ZooKeeper -server host:port -client-configuration properties-file cmd args");
        for c in commands::COMMANDS {
            err(&format!("\t{} {}", c.name, c.options));
        }
    }

    /// ZooKeeperMain.processZKCmd.
    fn process_zk_cmd(&mut self) -> Step {
        let Some(args) = self.current.clone() else {
            // Java dereferences the missing word list.
            return Err(Failure::Crash("java.lang.NullPointerException".to_string()));
        };
        let Some(cmd) = args.first().cloned() else {
            Self::usage();
            return Err(Failure::cli("No command entered"));
        };
        if !commands::COMMANDS.iter().any(|c| c.name == cmd) {
            Self::usage();
            return Err(Failure::Cli {
                message: format!("Command not found: Command not found {cmd}"),
                exit_code: EXIT_COMMAND_NOT_FOUND,
            });
        }
        match cmd.as_str() {
            "quit" => {
                if let Some(session) = &self.session {
                    session.close();
                }
                return Err(Failure::Terminate(self.exit_code));
            }
            "redo" if args.len() >= 2 => {
                let i = java_integer_decode(&args[1])
                    .ok_or_else(|| Failure::number_format(&args[1]))?;
                if self.command_count <= i || i < 0 {
                    return Err(Failure::cli("Command index out of range"));
                }
                let line = self.history.get(&i).cloned().unwrap_or_default();
                let words = tokenize(&line);
                if !words.is_empty() {
                    self.current = Some(words);
                }
                if self
                    .current
                    .as_ref()
                    .and_then(|w| w.first())
                    .map(String::as_str)
                    == Some("redo")
                {
                    return Err(Failure::cli("No redoing redos"));
                }
                self.history.insert(self.command_count, line);
                self.process_cmd()?;
            }
            "history" => {
                for i in (self.command_count - HISTORY_SHOWN_MAX)..=self.command_count {
                    if i < 0 {
                        continue;
                    }
                    let line = self.history.get(&i).map(String::as_str).unwrap_or("null");
                    out(&format!("{i} - {line}"));
                }
            }
            "printwatches" => {
                if args.len() == 1 {
                    let on = self.printer.print_watches.load(Ordering::SeqCst);
                    out(&format!(
                        "printwatches is {}",
                        if on { "on" } else { "off" }
                    ));
                } else {
                    self.printer
                        .print_watches
                        .store(args[1] == "on", Ordering::SeqCst);
                }
            }
            "connect" => {
                let host = args.get(1).cloned().unwrap_or_else(|| self.host.clone());
                self.connect_to_zk(&host)?;
            }
            _ => {}
        }
        let Some(session) = self.session.as_ref().filter(|s| s.is_alive()) else {
            out("Not connected");
            return Ok(());
        };
        if commands::is_cli_command(&cmd) {
            commands::run(session, args)?;
        }
        Ok(())
    }

    /// ZooKeeperMain.executeLine.
    fn execute_line(&mut self, line: &str) -> Step {
        if line.is_empty() {
            return Ok(());
        }
        let words = tokenize(line);
        if !words.is_empty() {
            self.current = Some(words);
        }
        self.history.insert(self.command_count, line.to_string());
        let step = self.process_cmd();
        self.command_count += 1;
        step
    }

    fn run_lines(&mut self) -> Step {
        let stdin = std::io::stdin();
        if stdin.is_terminal() {
            out("JLine support is enabled");
            return self.run_terminal();
        }
        out("JLine support is disabled");
        let mut reader = stdin.lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return Ok(()),
                Ok(_) => {}
            }
            if buf.last() == Some(&b'\n') {
                buf.pop();
                if buf.last() == Some(&b'\r') {
                    buf.pop();
                }
            }
            let line = String::from_utf8_lossy(&buf).into_owned();
            self.execute_line(&line)?;
        }
    }

    fn run_terminal(&mut self) -> Step {
        let mut editor = match rustyline::DefaultEditor::new() {
            Ok(e) => e,
            Err(e) => {
                err(&format!("cannot start line editing: {e}"));
                return Ok(());
            }
        };
        loop {
            let prompt = self.prompt();
            match editor.readline(&prompt) {
                Ok(line) => {
                    if !line.trim().is_empty() {
                        let _ = editor.add_history_entry(line.as_str());
                    }
                    self.execute_line(&line)?;
                }
                // Ctrl-C drops the line being typed, as shells do.
                Err(rustyline::error::ReadlineError::Interrupted) => continue,
                Err(_) => return Ok(()),
            }
        }
    }

    /// Ends the run like System.exit: no more output, and the session is left to expire
    /// on the server (Java does not close it either).
    fn finish(&mut self, code: i32) -> i32 {
        self.printer.silence();
        if let Some(session) = self.session.take() {
            session.client.disconnect();
        }
        let _ = std::io::stdout().lock().flush();
        code
    }
}

/// Java's Integer.decode: optional sign, then `0x`/`0X`/`#` hex, `0` octal or decimal.
fn java_integer_decode(text: &str) -> Option<i32> {
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) =
        if let Some(d) = rest.strip_prefix("0x").or_else(|| rest.strip_prefix("0X")) {
            (16, d)
        } else if let Some(d) = rest.strip_prefix('#') {
            (16, d)
        } else if rest.len() > 1 && rest.starts_with('0') {
            (8, &rest[1..])
        } else {
            (10, rest)
        };
    if digits.is_empty() || digits.starts_with('-') || digits.starts_with('+') {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    let value = if negative { -magnitude } else { magnitude };
    i32::try_from(value).ok()
}

/// The parsers `corral cli` runs on a line before anything reaches a server, in one call,
/// for the fuzz target `zkcli_command` (fuzz/). Not an API: it only promises not to panic.
#[doc(hidden)]
pub mod fuzz_api {
    /// Splits `line` as zkCli does, reads the invocation options from the words, parses
    /// the command's options, and runs the argument parsers the commands use (paths,
    /// ACLs, integers, quota texts, membership files) on every argument and value.
    pub fn parse_line(line: &str) {
        // The whole input as the text of a file the CLI reads (`reconfig -file`,
        // `-client-configuration`) or of a quota node.
        let _ = super::config::members_from_file_text(line);
        let _ = super::config::client_config_str(line);
        let _ = super::quota::StatsTrack::parse(line).map(|t| t.to_string());
        let words = super::tokenize(line);
        let main = super::parse_main_options(&words);
        let _ = super::java_integer_decode(&main.timeout);
        let Some(command) = main.command else {
            return;
        };
        let Some(options) = super::commands::options_for(&command[0]) else {
            let _ = super::commands::usage_str(&command[0]);
            return;
        };
        let values: Vec<String> = match options.parse(&command) {
            Ok(cl) => {
                let names = options.opts.iter().map(|o| o.name);
                let mut v: Vec<String> = names
                    .filter_map(|n| cl.value(n).map(str::to_string))
                    .collect();
                v.extend(cl.args.iter().skip(1).cloned());
                v
            }
            Err(e) => {
                let _ = e.to_string();
                command[1..].to_vec()
            }
        };
        for v in &values {
            let _ = crate::client::path::validate_path(v);
            let _ = super::acl::parse_acl(v);
            let _ = super::java_integer_decode(v);
            let _ = i64::from_str_radix(v, 16);
            let _ = super::quota::StatsTrack::parse(v).map(|t| t.to_string());
        }
    }
}

/// Runs zkCli with `args` (the words after `corral cli`); returns the exit code.
pub fn run(args: &[String]) -> i32 {
    let options = parse_main_options(args);
    let interactive_terminal = options.command.is_none() && std::io::stdin().is_terminal();
    let mut main = ZkMain {
        terminal: interactive_terminal,
        host: String::new(),
        session: None,
        printer: Arc::new(Printer::new(interactive_terminal)),
        history: HashMap::new(),
        command_count: 0,
        exit_code: 0,
        current: options.command.clone(),
        options,
    };
    out(&format!("Connecting to {}", main.options.server));
    let server = main.options.server.clone();
    let step = main.connect_to_zk(&server).and_then(|()| {
        if main.options.command.is_none() {
            out("Welcome to ZooKeeper!");
            main.run_lines()
        } else {
            main.process_cmd()
        }
    });
    let code = match step {
        Ok(()) => main.exit_code,
        Err(Failure::Terminate(code)) => code,
        Err(Failure::Crash(text)) => {
            err(&format!("Exception in thread \"main\" {text}"));
            EXIT_FAILED
        }
        Err(Failure::Cli { message, exit_code }) => {
            err(&message);
            exit_code
        }
        Err(Failure::Client(e)) => {
            err(&cli_wrapper_message(&e));
            EXIT_FAILED
        }
    };
    main.finish(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        s.split_whitespace().map(str::to_string).collect()
    }

    #[test]
    fn main_options_stop_at_the_command() {
        let o = parse_main_options(&words("-server h:1/x -timeout 5 -r -foo ls -s /"));
        assert_eq!(o.server, "h:1/x");
        assert_eq!(o.timeout, "5");
        assert!(o.read_only);
        assert_eq!(o.command, Some(words("ls -s /")));
        let o = parse_main_options(&words("-waitforconnection"));
        assert!(o.wait_for_connection);
        assert_eq!(o.command, None);
        assert_eq!(o.server, "localhost:2181");
    }

    #[test]
    fn wrapper_messages_match_zkcli() {
        let e = |code, path: Option<&str>| Error::Keeper {
            code,
            path: path.map(str::to_string),
        };
        assert_eq!(
            cli_wrapper_message(&e(ErrorCode::NoNode, Some("/a"))),
            "Node does not exist: /a"
        );
        assert_eq!(
            cli_wrapper_message(&e(ErrorCode::InvalidAcl, None)),
            "Acl is not valid : null"
        );
        assert_eq!(
            cli_wrapper_message(&e(ErrorCode::NoWatcher, Some("/w"))),
            "KeeperErrorCode = No such watcher for /w"
        );
        assert_eq!(
            cli_wrapper_message(&e(ErrorCode::AuthFailed, Some("/"))),
            "KeeperErrorCode = AuthFailed for /"
        );
        assert_eq!(
            cli_wrapper_message(&Error::InvalidArgument(
                "Path must start with / character".into()
            )),
            "Path must start with / character"
        );
    }

    #[test]
    fn integer_decode_like_java() {
        assert_eq!(java_integer_decode("12"), Some(12));
        assert_eq!(java_integer_decode("-3"), Some(-3));
        assert_eq!(java_integer_decode("0x10"), Some(16));
        assert_eq!(java_integer_decode("#f"), Some(15));
        assert_eq!(java_integer_decode("010"), Some(8));
        assert_eq!(java_integer_decode("0"), Some(0));
        assert_eq!(java_integer_decode("x"), None);
        assert_eq!(java_integer_decode(""), None);
        assert_eq!(java_integer_decode("99999999999"), None);
    }
}
