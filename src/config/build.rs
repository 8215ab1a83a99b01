//! Entries -> [`Config`]: profile include, last-wins merge, typed values, cross-key rules,
//! dynamic file, myid.
//!
//! Order of work, and so which error wins when a file has several faults:
//! 1. lex the cfg; if it names `corral.profile`, lex the profile and put its entries first;
//! 2. merge: for each setting the last line wins (a profile's line is overridden silently, a
//!    key repeated in one file draws a warning);
//! 3. each setting, in file order: typed and range-checked, or recorded as not applicable or
//!    unknown;
//! 4. whole-config rules: dataDir set, address needs port, session timeouts, members
//!    (from the dynamic file when set), quorum limits, myid, client port.

use super::error::{ConfigError, Location};
use super::keys::{self, KeyKind};
use super::membership::{
    self, MemberError, Role, ServerSpec, SERVER_ID_MAX, SERVER_ID_MAX_EXTENDED_TYPES,
};
use super::properties::{self, Entry};
use super::whitelist::FourLetterWhitelist;
use super::{
    ClientAuth, Config, Host, KeyAt, Pinning, CONFIG_BYTES_MAX, PROMETHEUS_PROVIDER_CLASS,
    SHARDS_MAX, SNAPSHOT_LOG_IN_MEMORY_KB_DEFAULT,
};
use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};

const POSITIVE: &str = "a positive integer";
const NON_NEGATIVE: &str = "a non-negative integer";
const PORT_OR_ZERO: &str = "a port number (0-65535)";
const PORT: &str = "a port number (1-65535)";
const TRUE_FALSE: &str = "true or false";
const YES_NO: &str = "yes or no";
const TIMEOUT: &str = "a non-negative integer, or -1 for the default";
const HOST: &str = "an IP address or host name";

/// Java ints: ZooKeeper reads most numbers with `Integer.parseInt`.
const JAVA_INT_MAX: i64 = i32::MAX as i64;

/// `corral.ioRingDepth` bounds: io_uring takes at most 32768 entries, and glommio's
/// executors need a few submissions in flight of their own.
const IO_RING_DEPTH_MIN: u32 = 8;
const IO_RING_DEPTH_MAX: u32 = 32_768;

/// The known `corral.` keys, for the unknown-key message.
const CORRAL_KEYS: &str =
    "corral.shards, corral.pinning, corral.ioMemoryKb, corral.ioRingDepth, corral.commit.maxBatch, corral.commit.maxWaitUs, corral.snapshot.stepNodes, corral.snapshot.logInMemoryKb, corral.zab.spinUs, corral.client.maxOutputBytes, corral.releaseStartupCode, corral.profile";

/// The ZooKeeper class names meaning "no HTTP metrics".
const PLAIN_PROVIDER_CLASSES: &[&str] = &[
    "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider",
    "org.apache.zookeeper.metrics.impl.NullMetricsProvider",
];

/// One surviving `key=value`, with its origin.
struct Setting {
    key: String,
    value: String,
    at: Location,
}

impl Setting {
    fn invalid(&self, expected: &'static str) -> ConfigError {
        ConfigError::InvalidValue {
            at: self.at.clone(),
            key: self.key.clone(),
            expected,
            value: self.value.clone(),
        }
    }

    fn inconsistent(&self, message: String) -> ConfigError {
        ConfigError::Inconsistent {
            at: self.at.clone(),
            key: self.key.clone(),
            message,
        }
    }

    fn bad_member(&self, error: MemberError) -> ConfigError {
        ConfigError::BadMember {
            at: self.at.clone(),
            key: self.key.clone(),
            value: self.value.clone(),
            reason: error.0,
        }
    }

    /// An integer as `Integer.parseInt` / `Long.parseLong` read it (optional sign, digits).
    fn integer(&self, expected: &'static str) -> Result<i64, ConfigError> {
        parse_java_integer(&self.value).ok_or_else(|| self.invalid(expected))
    }

    fn in_range(&self, min: i64, max: i64, expected: &'static str) -> Result<i64, ConfigError> {
        let n = self.integer(expected)?;
        if n < min || n > max {
            return Err(self.invalid(expected));
        }
        Ok(n)
    }

    fn positive_u32(&self) -> Result<u32, ConfigError> {
        Ok(u32::try_from(self.in_range(1, JAVA_INT_MAX, POSITIVE)?).unwrap_or(u32::MAX))
    }

    fn non_negative_u32(&self) -> Result<u32, ConfigError> {
        Ok(u32::try_from(self.in_range(0, JAVA_INT_MAX, NON_NEGATIVE)?).unwrap_or(u32::MAX))
    }

    fn non_negative_u64(&self) -> Result<u64, ConfigError> {
        Ok(u64::try_from(self.in_range(0, i64::MAX, NON_NEGATIVE)?).unwrap_or(u64::MAX))
    }

    fn positive_u64(&self) -> Result<u64, ConfigError> {
        Ok(u64::try_from(self.in_range(1, i64::MAX, POSITIVE)?).unwrap_or(u64::MAX))
    }

    /// 0 means "no port" (ZooKeeper's own convention for clientPort).
    fn optional_port(&self) -> Result<Option<u16>, ConfigError> {
        let port = u16::try_from(self.in_range(0, 65535, PORT_OR_ZERO)?).unwrap_or(0);
        Ok((port != 0).then_some(port))
    }

    fn port(&self) -> Result<u16, ConfigError> {
        Ok(u16::try_from(self.in_range(1, 65535, PORT)?).unwrap_or(1))
    }

    /// `Boolean.parseBoolean`-style keys, strict: anything but true/false is refused.
    fn true_false(&self) -> Result<bool, ConfigError> {
        if self.value.eq_ignore_ascii_case("true") {
            Ok(true)
        } else if self.value.eq_ignore_ascii_case("false") {
            Ok(false)
        } else {
            Err(self.invalid(TRUE_FALSE))
        }
    }

    /// ZooKeeper's `"yes".equals(...)` keys (skipACL, forceSync, leaderServes). Strict: a
    /// `skipACL=true` does nothing in ZooKeeper, so Corral refuses it rather than guess.
    fn yes_no(&self) -> Result<bool, ConfigError> {
        if self.value.eq_ignore_ascii_case("yes") {
            Ok(true)
        } else if self.value.eq_ignore_ascii_case("no") {
            Ok(false)
        } else {
            Err(self.invalid(YES_NO))
        }
    }

    fn host(&self) -> Result<Host, ConfigError> {
        Host::parse(&self.value).ok_or_else(|| self.invalid(HOST))
    }

    fn path(&self) -> Result<PathBuf, ConfigError> {
        if self.value.is_empty() {
            return Err(self.invalid("a path"));
        }
        Ok(PathBuf::from(&self.value))
    }
}

/// `[+-]digits`, as Java's `Long.parseLong`; `None` on anything else or overflow.
fn parse_java_integer(text: &str) -> Option<i64> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `Integer.decode`, used by ZooKeeper for `jute.maxbuffer`: decimal, `0x`/`0X`/`#` hex,
/// leading-zero octal, optional sign.
fn parse_java_decode(text: &str) -> Option<i64> {
    let (negative, body) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text),
    };
    let (radix, digits) =
        if let Some(hex) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
            (16, hex)
        } else if let Some(hex) = body.strip_prefix('#') {
            (16, hex)
        } else if body.len() > 1 && body.starts_with('0') {
            (8, &body[1..])
        } else {
            (10, body)
        };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Reads a file of at most `CONFIG_BYTES_MAX` bytes as text.
pub(super) fn read_limited(path: &Path) -> Result<String, ConfigError> {
    let file_name = path.display().to_string();
    let unreadable = |source| ConfigError::Unreadable {
        file: file_name.clone(),
        source,
    };
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let mut bytes = Vec::new();
    file.take(CONFIG_BYTES_MAX + 1)
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    let size_bytes = bytes.len() as u64;
    if size_bytes > CONFIG_BYTES_MAX {
        return Err(ConfigError::TooLarge {
            file: file_name,
            size_bytes,
            limit_bytes: CONFIG_BYTES_MAX,
        });
    }
    Ok(properties::decode_text(&bytes).into_owned())
}

fn lex(text: &str, file: &str) -> Result<Vec<Entry>, ConfigError> {
    properties::parse(text).map_err(|e| ConfigError::Syntax {
        at: Location::line(file, e.line),
        message: e.message,
    })
}

/// Settings that take effect after every line is read (they depend on each other).
#[derive(Default)]
struct Pending {
    tick: Option<(i64, Location)>,
    data_dir: Option<(PathBuf, Location)>,
    data_log_dir: Option<PathBuf>,
    client_port_address: Option<Location>,
    secure_client_port_address: Option<Location>,
    min_session_timeout: Option<(i64, Location)>,
    max_session_timeout: Option<(i64, Location)>,
    init_limit: Option<(u32, Location)>,
    sync_limit: Option<(u32, Location)>,
    peer_type: Option<(Role, Location)>,
    /// Where `syncEnabled` and `corral.snapshot.logInMemoryKb` were last set: their
    /// warnings are about the value in force, not one a later line overrode.
    sync_enabled_at: Option<Location>,
    log_in_memory_at: Option<Location>,
    whitelist: Option<String>,
    shards: Option<(usize, Location)>,
    pinning: Option<(Vec<usize>, Location)>,
    dynamic_config_file: Option<Location>,
    servers: Vec<Setting>,
    groups: Vec<Setting>,
    weights: Vec<Setting>,
}

/// Builds a config from the text of `path`, on a host with `cores` cores.
pub(super) fn build(text: &str, path: &Path, cores: usize) -> Result<Config, ConfigError> {
    let file = path.display().to_string();
    let main_entries = lex(text, &file)?;

    // 1. Profile first, so the cfg's own lines override it.
    let mut sourced: Vec<(Entry, String)> = Vec::new();
    let mut profile_path = None;
    if let Some(entry) = main_entries
        .iter()
        .rev()
        .find(|e| e.key == "corral.profile")
    {
        let at = Location::line(&file, entry.line);
        if entry.value.is_empty() {
            return Err(ConfigError::InvalidValue {
                at,
                key: entry.key.clone(),
                expected: "a path",
                value: String::new(),
            });
        }
        let resolved = resolve_beside(path, Path::new(&entry.value));
        let profile_file = resolved.display().to_string();
        let profile_text = read_limited(&resolved)?;
        for profile_entry in lex(&profile_text, &profile_file)? {
            if profile_entry.key == "corral.profile" {
                return Err(ConfigError::Inconsistent {
                    at: Location::line(&profile_file, profile_entry.line),
                    key: profile_entry.key,
                    message: "a profile cannot include another profile".to_string(),
                });
            }
            sourced.push((profile_entry, profile_file.clone()));
        }
        profile_path = Some(resolved);
    }
    sourced.extend(main_entries.into_iter().map(|e| (e, file.clone())));

    // 2. Last line wins per setting.
    let mut warnings = Vec::new();
    let mut latest: HashMap<KeyKind<'_>, usize> = HashMap::new();
    let mut keep = vec![true; sourced.len()];
    for (index, (entry, origin)) in sourced.iter().enumerate() {
        if let Some(previous) = latest.insert(keys::classify(&entry.key), index) {
            keep[previous] = false;
            let (earlier, earlier_origin) = &sourced[previous];
            if earlier_origin == origin {
                warnings.push(format!(
                    "{origin}:{}: {} is set again (first on line {}); the later value wins",
                    entry.line, entry.key, earlier.line
                ));
            }
        }
    }
    drop(latest);
    let settings: Vec<Setting> = sourced
        .into_iter()
        .zip(keep)
        .filter(|(_, keep)| *keep)
        .map(|((entry, origin), _)| Setting {
            at: Location::line(&origin, entry.line),
            key: entry.key,
            value: entry.value,
        })
        .collect();

    // 3. Each setting on its own.
    let mut config = Config::defaults(PathBuf::new(), cores);
    config.source = Some(path.to_path_buf());
    config.warnings = warnings;
    config.corral.profile = profile_path;
    let mut pending = Pending::default();
    for setting in settings {
        let kind = keys::classify(&setting.key);
        let used = match kind {
            KeyKind::PeerConfig(key) => {
                apply_peer_config(key, &setting, &mut config, &mut pending)?
            }
            KeyKind::System(key) => apply_system(key, &setting, &mut config, &mut pending)?,
            KeyKind::Corral(key) => apply_corral(key, &setting, &mut config, &mut pending)?,
            KeyKind::Server(_) | KeyKind::Group(_) | KeyKind::Weight(_) => true,
        };
        let record = KeyAt {
            key: setting.key.clone(),
            at: setting.at.clone(),
        };
        match kind {
            KeyKind::Server(_) => pending.servers.push(setting),
            KeyKind::Group(_) => pending.groups.push(setting),
            KeyKind::Weight(_) => pending.weights.push(setting),
            _ if used => {}
            _ if keys::is_not_applicable(kind) => config.not_applicable.push(record),
            _ => config.unknown_keys.push(record),
        }
    }

    // 4. Whole-config rules.
    finish(config, pending, &file, cores)
}

/// `relative` against the directory holding `cfg`; absolute paths unchanged.
fn resolve_beside(cfg: &Path, relative: &Path) -> PathBuf {
    match cfg.parent() {
        Some(dir) if relative.is_relative() => dir.join(relative),
        _ => relative.to_path_buf(),
    }
}

/// `QuorumPeerConfig` keys. Returns whether Corral uses the key.
fn apply_peer_config(
    key: &str,
    s: &Setting,
    c: &mut Config,
    p: &mut Pending,
) -> Result<bool, ConfigError> {
    match key {
        "tickTime" => {
            let tick = s.integer(POSITIVE)?;
            if tick == 0 {
                return Err(ConfigError::NotSet {
                    at: s.at.clone(),
                    key: s.key.clone(),
                });
            }
            if !(1..=JAVA_INT_MAX).contains(&tick) {
                return Err(s.invalid(POSITIVE));
            }
            p.tick = Some((tick, s.at.clone()));
        }
        "initLimit" => p.init_limit = Some((s.non_negative_u32()?, s.at.clone())),
        "syncLimit" => p.sync_limit = Some((s.non_negative_u32()?, s.at.clone())),
        "connectToLearnerMasterLimit" => {
            c.connect_to_learner_master_limit_ticks = Some(s.positive_u32()?)
        }
        "dataDir" => p.data_dir = Some((s.path()?, s.at.clone())),
        "dataLogDir" => p.data_log_dir = Some(s.path()?),
        "clientPort" => c.client_port = s.optional_port()?,
        "clientPortAddress" => {
            c.client_port_address = Some(s.host()?);
            p.client_port_address = Some(s.at.clone());
        }
        "secureClientPort" => c.secure_client_port = s.optional_port()?,
        "sslQuorum" => c.ssl_quorum = s.true_false()?,
        "secureClientPortAddress" => {
            c.secure_client_port_address = Some(s.host()?);
            p.secure_client_port_address = Some(s.at.clone());
        }
        "clientPortListenBacklog" => {
            let backlog = s.in_range(-1, JAVA_INT_MAX, "an integer, -1 for the OS default")?;
            c.client_port_listen_backlog = i32::try_from(backlog).unwrap_or(-1);
        }
        "maxClientCnxns" => c.max_client_cnxns = s.non_negative_u32()?,
        "maxCnxns" => c.max_cnxns = s.non_negative_u32()?,
        "minSessionTimeout" => {
            p.min_session_timeout = Some((s.in_range(-1, JAVA_INT_MAX, TIMEOUT)?, s.at.clone()))
        }
        "maxSessionTimeout" => {
            p.max_session_timeout = Some((s.in_range(-1, JAVA_INT_MAX, TIMEOUT)?, s.at.clone()))
        }
        "electionAlg" => {
            let expected = "3 (the only election algorithm ZooKeeper 3.8 supports)";
            c.election_alg = u32::try_from(s.in_range(3, 3, expected)?).unwrap_or(3);
        }
        "quorumListenOnAllIPs" => c.quorum_listen_on_all_ips = s.true_false()?,
        "peerType" => {
            let role = Role::parse(&s.value).ok_or_else(|| s.invalid("participant or observer"))?;
            p.peer_type = Some((role, s.at.clone()));
        }
        "syncEnabled" => {
            c.sync_enabled = s.true_false()?;
            p.sync_enabled_at = Some(s.at.clone());
        }
        "dynamicConfigFile" => {
            c.dynamic_config_file = Some(s.path()?);
            p.dynamic_config_file = Some(s.at.clone());
        }
        "autopurge.snapRetainCount" => {
            let count = s.non_negative_u32()?;
            if count < 3 {
                c.warnings.push(format!(
                    "{}: {} is {count}, below the minimum of 3; using 3",
                    s.at, s.key
                ));
            }
            c.autopurge_snap_retain_count = count.max(3);
        }
        "autopurge.purgeInterval" => {
            // ZooKeeper treats any value <= 0 as "no autopurge".
            let hours = s.in_range(i64::MIN, JAVA_INT_MAX, "an integer (hours, 0 = off)")?;
            c.autopurge_purge_interval_hours = u32::try_from(hours.max(0)).unwrap_or(0);
        }
        "standaloneEnabled" => c.standalone_enabled = s.true_false()?,
        "reconfigEnabled" => c.reconfig_enabled = s.true_false()?,
        "localSessionsEnabled" => c.local_sessions_enabled = s.true_false()?,
        "localSessionsUpgradingEnabled" => c.local_sessions_upgrading_enabled = s.true_false()?,
        "observerMasterPort" => c.observer_master_port = s.optional_port()?,
        "multiAddress.enabled" => c.multi_address_enabled = s.true_false()?,
        "metricsProvider.className" => {
            if s.value == PROMETHEUS_PROVIDER_CLASS {
                c.metrics_prometheus_enabled = true;
            } else if PLAIN_PROVIDER_CLASSES.contains(&s.value.as_str()) {
                c.metrics_prometheus_enabled = false;
            } else {
                // A custom Java provider: nothing Corral can load.
                return Ok(false);
            }
        }
        "metricsProvider.httpHost" => c.metrics_provider_http_host = s.host()?,
        "metricsProvider.httpPort" => c.metrics_provider_http_port = s.port()?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// ZooKeeper system properties (`zookeeper.` already stripped). Returns whether used.
fn apply_system(
    key: &str,
    s: &Setting,
    c: &mut Config,
    p: &mut Pending,
) -> Result<bool, ConfigError> {
    match key {
        "snapCount" => {
            let count = s.in_range(i64::from(i32::MIN), JAVA_INT_MAX, "an integer, at least 2")?;
            if count < 2 {
                c.warnings.push(format!(
                    "{}: {} is {count}, below the minimum of 2; using 2",
                    s.at, s.key
                ));
            }
            c.snap_count = u32::try_from(count.max(2)).unwrap_or(2);
        }
        "snapSizeLimitInKb" => {
            let kb = s.integer("an integer (KiB, <= 0 = off)")?;
            c.snap_size_limit_kb = u64::try_from(kb).ok().filter(|&kb| kb > 0);
        }
        "txnLogSizeLimitInKb" => {
            let kb = s.integer("an integer (KiB, <= 0 = off)")?;
            c.txn_log_size_limit_kb = u64::try_from(kb).ok().filter(|&kb| kb > 0);
        }
        "commitLogCount" => c.commit_log_count = s.positive_u32()?,
        "preAllocSize" => c.pre_alloc_kb = s.positive_u64()?,
        "forceSync" => c.force_sync = s.yes_no()?,
        "fsync.warningthresholdms" => c.fsync_warning_threshold_ms = s.non_negative_u64()?,
        "globalOutstandingLimit" => c.global_outstanding_limit = s.positive_u32()?,
        "4lw.commands.whitelist" => p.whitelist = Some(s.value.clone()),
        "admin.enableServer" => c.admin_enable_server = s.true_false()?,
        "admin.serverAddress" => c.admin_server_address = s.host()?,
        "admin.serverPort" => c.admin_server_port = s.port()?,
        "admin.idleTimeout" => c.admin_idle_timeout_ms = s.positive_u32()?,
        "admin.commandURL" => {
            if !s.value.starts_with('/') {
                return Err(s.invalid("a URL path starting with /"));
            }
            c.admin_command_url = s.value.clone();
        }
        "enforceQuota" => c.enforce_quota = s.true_false()?,
        "skipACL" => c.skip_acl = s.yes_no()?,
        "extendedTypesEnabled" => c.extended_types_enabled = s.true_false()?,
        "digest.enabled" => c.digest_enabled = s.true_false()?,
        "DigestAuthenticationProvider.enabled" => c.digest_auth_enabled = s.true_false()?,
        "DigestAuthenticationProvider.superDigest" => {
            let well_formed = matches!(s.value.split_once(':'), Some((user, digest)) if !user.is_empty() && !digest.is_empty());
            if !well_formed {
                return Err(
                    s.invalid("user:base64digest (as DigestAuthenticationProvider prints it)")
                );
            }
            c.super_digest = Some(s.value.clone());
        }
        "X509AuthenticationProvider.superUser" => {
            c.x509_super_user = Some(s.value.clone()).filter(|v| !v.is_empty())
        }
        "leaderServes" => c.leader_serves = s.yes_no()?,
        "cnxTimeout" => c.cnx_timeout_ms = s.positive_u32()?,
        "largeRequestMaxBytes" => c.large_request_max_bytes = s.positive_u32()?,
        "largeRequestThreshold" => {
            let bytes = s.in_range(-1, JAVA_INT_MAX, "a positive integer, or -1 for off")?;
            c.large_request_threshold_bytes = u32::try_from(bytes).ok().filter(|&b| b > 0);
        }
        "jute.maxbuffer" => {
            let expected = "a positive integer (decimal or 0x hex)";
            let bytes = parse_java_decode(&s.value).ok_or_else(|| s.invalid(expected))?;
            if !(1..=JAVA_INT_MAX).contains(&bytes) {
                return Err(s.invalid(expected));
            }
            c.jute_max_buffer_bytes = u32::try_from(bytes).unwrap_or(u32::MAX);
        }
        "readonlymode.enabled" => c.read_only_mode_enabled = s.true_false()?,
        k if k.starts_with("ssl.") => return apply_ssl(k, s, c),
        "znode.container.checkIntervalMs" => {
            c.container_check_interval_ms = u64::from(s.positive_u32()?)
        }
        "znode.container.maxPerMinute" => c.container_max_per_minute = s.positive_u32()?,
        "znode.container.maxNeverUsedIntervalMs" => {
            c.container_max_never_used_interval_ms = s.non_negative_u64()?
        }
        _ => return Ok(false),
    }
    Ok(true)
}

/// `ssl.*` and `ssl.quorum.*` (`zookeeper.` already stripped). Returns whether used; the
/// TLS knobs Corral leaves to rustls (protocols, cipher suites, CRL, OCSP) are not.
fn apply_ssl(key: &str, s: &Setting, c: &mut Config) -> Result<bool, ConfigError> {
    let (stores, name) = match key.strip_prefix("ssl.quorum.") {
        Some(name) => (&mut c.ssl_quorum_stores, name),
        None => (&mut c.ssl_client, key.strip_prefix("ssl.").unwrap_or(key)),
    };
    match name {
        "keyStore.location" => stores.key_store_location = Some(s.path()?),
        "trustStore.location" => stores.trust_store_location = Some(s.path()?),
        "keyStore.password" | "keyStore.passwordPath" => {
            stores.key_store_password_set = !s.value.is_empty()
        }
        // A PEM trust store holds no secret: its password is not needed.
        "trustStore.password" | "trustStore.passwordPath" => {}
        "keyStore.type" | "trustStore.type" => {
            // ZooKeeper's default (unset) guesses from the file name; Corral reads PEM.
            if !s.value.is_empty() && !s.value.eq_ignore_ascii_case("PEM") {
                return Err(s.invalid(
                    "PEM (Corral reads PEM stores only; convert a JKS or PKCS12 store with keytool or openssl)",
                ));
            }
        }
        "clientAuth" => {
            stores.client_auth = match s.value.to_ascii_lowercase().as_str() {
                // ZooKeeper reads an empty value as the default.
                "" | "need" => ClientAuth::Need,
                "want" => ClientAuth::Want,
                "none" => ClientAuth::None,
                _ => return Err(s.invalid("none, want or need")),
            }
        }
        "hostnameVerification" => stores.hostname_verification = s.true_false()?,
        _ => return Ok(false),
    }
    Ok(true)
}

/// `corral.*` keys: strictly checked; an unknown one is an error.
fn apply_corral(
    key: &str,
    s: &Setting,
    c: &mut Config,
    p: &mut Pending,
) -> Result<bool, ConfigError> {
    match key {
        "corral.shards" => {
            let shards = s.in_range(
                0,
                SHARDS_MAX as i64,
                "a shard count from 0 (client sessions on the ZAB executor) to 1024",
            )?;
            p.shards = Some((usize::try_from(shards).unwrap_or(1), s.at.clone()));
        }
        "corral.pinning" => {
            c.corral.pinning = match s.value.to_ascii_lowercase().as_str() {
                "off" => Pinning::Off,
                "on" => Pinning::On,
                _ => {
                    let cores = parse_core_list(&s.value).ok_or_else(|| {
                        s.invalid("off, on, or a comma list of distinct core ids")
                    })?;
                    p.pinning = Some((cores.clone(), s.at.clone()));
                    Pinning::Cores(cores)
                }
            };
        }
        "corral.ioMemoryKb" => {
            let kb = s.in_range(1, 1 << 20, "a size in KiB from 1 to 1048576")?;
            c.corral.io_memory_kb = u32::try_from(kb).unwrap_or(512);
        }
        "corral.ioRingDepth" => {
            let entries = s.in_range(
                IO_RING_DEPTH_MIN.into(),
                IO_RING_DEPTH_MAX.into(),
                "a power of two from 8 to 32768",
            )?;
            let entries = u32::try_from(entries).unwrap_or(IO_RING_DEPTH_MIN);
            if !entries.is_power_of_two() {
                return Err(s.invalid("a power of two from 8 to 32768"));
            }
            c.corral.io_ring_depth = entries;
        }
        "corral.commit.maxBatch" => {
            let records = s.in_range(1, 65_536, "a record count from 1 to 65536")?;
            c.corral.commit_max_batch = u32::try_from(records).unwrap_or(256);
        }
        "corral.commit.maxWaitUs" => {
            let us = s.in_range(0, 1_000_000, "microseconds from 0 to 1000000")?;
            c.corral.commit_max_wait_us = u32::try_from(us).unwrap_or(200);
        }
        "corral.zab.spinUs" => {
            let us = s.in_range(0, 1_000_000, "microseconds from 0 to 1000000")?;
            c.corral.zab_spin_us = u32::try_from(us).unwrap_or(0);
        }
        "corral.snapshot.stepNodes" => {
            let nodes = s.in_range(1, 1_000_000, "a node count from 1 to 1000000")?;
            c.corral.snapshot_step_nodes = u32::try_from(nodes).unwrap_or(1024);
        }
        "corral.snapshot.logInMemoryKb" => {
            let kb = s.in_range(1, 1 << 32, "a size in KiB from 1 to 2^32")?;
            c.corral.snapshot_log_in_memory_kb =
                u64::try_from(kb).unwrap_or(SNAPSHOT_LOG_IN_MEMORY_KB_DEFAULT);
            p.log_in_memory_at = Some(s.at.clone());
        }
        "corral.client.maxOutputBytes" => {
            let bytes = s.in_range(65_536, 1 << 40, "a size in bytes from 65536 to 2^40")?;
            c.corral.client_max_output_bytes = u64::try_from(bytes).unwrap_or(16 << 20);
        }
        "corral.releaseStartupCode" => c.corral.release_startup_code = s.true_false()?,
        // Already applied before the merge; here it only needs to count as used.
        "corral.profile" => {}
        _ => {
            return Err(ConfigError::UnknownCorralKey {
                at: s.at.clone(),
                key: s.key.clone(),
                known: CORRAL_KEYS,
            })
        }
    }
    Ok(true)
}

/// `0,2,3`: distinct core ids, at least one.
fn parse_core_list(text: &str) -> Option<Vec<usize>> {
    let mut cores = Vec::new();
    for item in text.split(',') {
        let item = item.trim();
        if item.is_empty() || !item.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let core: usize = item.parse().ok()?;
        if cores.contains(&core) {
            return None;
        }
        cores.push(core);
    }
    Some(cores)
}

/// The whole-config rules, after every line has been read.
fn finish(mut c: Config, mut p: Pending, file: &str, cores: usize) -> Result<Config, ConfigError> {
    let whole_file = Location::file(file);

    let Some((data_dir, data_dir_at)) = p.data_dir.take() else {
        return Err(ConfigError::NotSet {
            at: whole_file,
            key: "dataDir".to_string(),
        });
    };
    c.data_log_dir = p.data_log_dir.take().unwrap_or_else(|| data_dir.clone());
    c.data_dir = data_dir;

    if let (Some(at), None) = (&p.client_port_address, c.client_port) {
        return Err(ConfigError::Inconsistent {
            at: at.clone(),
            key: "clientPortAddress".to_string(),
            message: "clientPortAddress is set but clientPort is not set".to_string(),
        });
    }
    if let (Some(at), None) = (&p.secure_client_port_address, c.secure_client_port) {
        return Err(ConfigError::Inconsistent {
            at: at.clone(),
            key: "secureClientPortAddress".to_string(),
            message: "secureClientPortAddress is set but secureClientPort is not set".to_string(),
        });
    }

    // Session timeouts, from the tick.
    let tick = p
        .tick
        .as_ref()
        .map_or(i64::from(c.tick_ms), |(tick, _)| *tick);
    c.tick_ms = u32::try_from(tick).unwrap_or(c.tick_ms);
    let resolve_timeout = |setting: &Option<(i64, Location)>, ticks: i64| match setting {
        Some((ms, _)) if *ms >= 0 => *ms,
        _ => tick.saturating_mul(ticks),
    };
    let min_ms = resolve_timeout(&p.min_session_timeout, 2);
    let max_ms = resolve_timeout(&p.max_session_timeout, 20);
    if min_ms > max_ms {
        let at = p
            .max_session_timeout
            .as_ref()
            .or(p.min_session_timeout.as_ref())
            .or(p.tick.as_ref())
            .map_or_else(|| whole_file.clone(), |(_, at)| at.clone());
        return Err(ConfigError::Inconsistent {
            at,
            key: "minSessionTimeout".to_string(),
            message: format!(
                "minSessionTimeout ({min_ms} ms) must not be larger than maxSessionTimeout ({max_ms} ms)"
            ),
        });
    }
    c.min_session_timeout_ms = u32::try_from(min_ms).unwrap_or(u32::MAX);
    c.max_session_timeout_ms = u32::try_from(max_ms).unwrap_or(u32::MAX);

    c.four_letter_whitelist =
        FourLetterWhitelist::parse(p.whitelist.as_deref(), c.read_only_mode_enabled);

    members(&mut c, &mut p)?;

    let standalone = c.is_standalone();
    if !standalone {
        c.init_limit_ticks = Some(required_limit(
            p.init_limit.take(),
            "initLimit",
            &whole_file,
        )?);
        c.sync_limit_ticks = Some(required_limit(
            p.sync_limit.take(),
            "syncLimit",
            &whole_file,
        )?);
    } else {
        c.init_limit_ticks = p.init_limit.take().map(|(n, _)| n).filter(|&n| n > 0);
        c.sync_limit_ticks = p.sync_limit.take().map(|(n, _)| n).filter(|&n| n > 0);
    }

    if let Some((role, _)) = &p.peer_type {
        c.peer_type = *role;
    }
    // ZooKeeper reads myid whenever it exists and requires it only in quorum mode; a
    // standalone server with server.N lines uses it just to find its own line.
    let myid_present = !c.servers.is_empty() && c.data_dir.join("myid").is_file();
    if !standalone || myid_present {
        let id = read_myid(&c, &data_dir_at)?;
        match c.servers.iter().find(|s| s.id == id) {
            Some(own) => {
                if let Some((role, at)) = &p.peer_type {
                    if *role != own.role && !standalone {
                        c.warnings.push(format!(
                            "{at}: peerType is {} but server.{id} is {}; the server line wins",
                            role.as_str(),
                            own.role.as_str()
                        ));
                    }
                }
                if !standalone {
                    c.peer_type = own.role;
                }
                check_own_client_address(&c, own, &p)?;
                c.server_id = Some(id);
            }
            None if standalone => c.warnings.push(format!(
                "{}: myid {id} matches no server.N line; running standalone",
                c.data_dir.join("myid").display()
            )),
            None => {
                return Err(ConfigError::MyidNotListed {
                    at: data_dir_at,
                    id,
                    path: c.data_dir.join("myid").display().to_string(),
                })
            }
        }
    }

    // A quorum member may serve no clients (ZooKeeper allows it); a standalone server must.
    if standalone && c.client_endpoint().is_none() && c.secure_client_port.is_none() {
        return Err(ConfigError::Inconsistent {
            at: whole_file,
            key: "clientPort".to_string(),
            message: "no client port: set clientPort, secureClientPort, or a ;clientPort part on this server's server.N line"
                .to_string(),
        });
    }

    if let Some((shards, _)) = p.shards {
        c.corral.shards = shards;
    }
    if let Some((list, at)) = &p.pinning {
        if let Some(missing) = list.iter().find(|&&core| core >= cores) {
            return Err(ConfigError::Inconsistent {
                at: at.clone(),
                key: "corral.pinning".to_string(),
                message: format!("core {missing} does not exist (this host has {cores} cores)"),
            });
        }
    }
    if let (false, Some(at)) = (c.sync_enabled, &p.sync_enabled_at) {
        // ZooKeeper's observers then keep no log and take no snapshots. Corral's always log
        // and snapshot: an observer that a reconfig makes a voter must not hold a log with
        // a hole in it.
        c.warnings.push(format!(
            "{at}: syncEnabled is false, which Corral does not support; observers log and snapshot every txn"
        ));
    }
    let log_in_memory_kb = c.corral.snapshot_log_in_memory_kb;
    if let (true, Some(at)) = (log_in_memory_kb < LOG_IN_MEMORY_KB_LOW, &p.log_in_memory_at) {
        c.warnings.push(format!(
            "{at}: corral.snapshot.logInMemoryKb is {log_in_memory_kb}: a replicated server then snapshots every {log_in_memory_kb} KiB of log, and sends a snapshot to a learner behind by more"
        ));
    }
    Ok(c)
}

/// Below this `corral.snapshot.logInMemoryKb` (1 MiB) the config warns: meant for tests.
const LOG_IN_MEMORY_KB_LOW: u64 = 1024;

fn required_limit(
    setting: Option<(u32, Location)>,
    key: &str,
    whole_file: &Location,
) -> Result<u32, ConfigError> {
    match setting {
        Some((ticks, _)) if ticks > 0 => Ok(ticks),
        Some((_, at)) => Err(ConfigError::NotSet {
            at,
            key: key.to_string(),
        }),
        None => Err(ConfigError::NotSet {
            at: whole_file.clone(),
            key: key.to_string(),
        }),
    }
}

/// Parses `server.N`, `group.N`, `weight.N` (from the dynamic file when one is named) and
/// checks them together.
fn members(c: &mut Config, p: &mut Pending) -> Result<(), ConfigError> {
    if let Some(dynamic_at) = p.dynamic_config_file.clone() {
        if let Some(first) = p.servers.iter().chain(&p.groups).chain(&p.weights).next() {
            return Err(first.inconsistent(format!(
                "must be in the dynamic config file, since dynamicConfigFile is set ({})",
                dynamic_at
            )));
        }
        let dynamic_path = c.dynamic_config_file.clone().unwrap_or_default();
        let dynamic_file = dynamic_path.display().to_string();
        let text = read_limited(&dynamic_path)?;
        let mut latest: BTreeMap<String, Setting> = BTreeMap::new();
        for entry in lex(&text, &dynamic_file)? {
            let setting = Setting {
                at: Location::line(&dynamic_file, entry.line),
                key: entry.key,
                value: entry.value,
            };
            match keys::classify(&setting.key) {
                KeyKind::Server(_) | KeyKind::Group(_) | KeyKind::Weight(_) => {}
                _ if setting.key == "version" => return Err(setting.inconsistent(
                    "a dynamic file has no version line; its version is the hex suffix of its name"
                        .to_string(),
                )),
                _ => {
                    return Err(setting.inconsistent(
                        "only server.N, group.N and weight.N lines belong in a dynamic config file"
                            .to_string(),
                    ))
                }
            }
            latest.insert(setting.key.clone(), setting);
        }
        let mut settings: Vec<Setting> = latest.into_values().collect();
        settings.sort_by_key(|s| s.at.line);
        for setting in settings {
            match keys::classify(&setting.key) {
                KeyKind::Server(_) => p.servers.push(setting),
                KeyKind::Group(_) => p.groups.push(setting),
                _ => p.weights.push(setting),
            }
        }
        c.config_version = version_from_file_name(&dynamic_path);
    }

    let id_max = if c.extended_types_enabled {
        SERVER_ID_MAX_EXTENDED_TYPES
    } else {
        SERVER_ID_MAX
    };
    let id_expected = if c.extended_types_enabled {
        "a server id from 1 to 254 (extendedTypesEnabled)"
    } else {
        "a server id from 1 to 255"
    };
    let member_id = |s: &Setting, prefix: &str, max: u64, expected: &'static str| {
        let text = s.key.strip_prefix(prefix).unwrap_or("");
        membership::parse_member_id(text, max).ok_or_else(|| ConfigError::InvalidValue {
            at: s.at.clone(),
            key: s.key.clone(),
            expected,
            value: text.to_string(),
        })
    };

    let mut servers: BTreeMap<u64, (ServerSpec, Location)> = BTreeMap::new();
    for s in &p.servers {
        let id = member_id(s, "server.", id_max, id_expected)?;
        let spec = membership::parse_server(id, &s.value, c.multi_address_enabled)
            .map_err(|e| s.bad_member(e))?;
        servers.insert(id, (spec, s.at.clone()));
    }
    let mut groups = BTreeMap::new();
    for s in &p.groups {
        let id = member_id(s, "group.", u64::MAX, "a group id")?;
        groups.insert(
            id,
            membership::parse_group(id, &s.value).map_err(|e| s.bad_member(e))?,
        );
    }
    let mut weights = BTreeMap::new();
    for s in &p.weights {
        let id = member_id(s, "weight.", SERVER_ID_MAX, "a server id from 1 to 255")?;
        let weight = u64::try_from(s.in_range(0, i64::MAX, NON_NEGATIVE)?).unwrap_or(1);
        weights.insert(id, weight);
    }

    let first_member_at = || {
        servers
            .values()
            .map(|(_, at)| at.clone())
            .next()
            .or_else(|| p.groups.first().map(|s| s.at.clone()))
            .or_else(|| p.weights.first().map(|s| s.at.clone()))
    };
    let specs: Vec<ServerSpec> = servers.values().map(|(spec, _)| spec.clone()).collect();
    let groups: Vec<_> = groups.into_values().collect();
    if let Err(MemberError(message)) = membership::check_groups(&specs, &groups, &weights) {
        return Err(ConfigError::Inconsistent {
            at: first_member_at().unwrap_or_else(|| Location::file(&c.source_name())),
            key: "group".to_string(),
            message,
        });
    }
    if !specs.is_empty() && specs.iter().all(|s| s.role == Role::Observer) {
        return Err(ConfigError::Inconsistent {
            at: first_member_at().unwrap_or_else(|| Location::file(&c.source_name())),
            key: "server".to_string(),
            message: "observers without participants is an invalid configuration".to_string(),
        });
    }
    check_port_clashes(&servers)?;

    c.servers = specs;
    c.groups = groups;
    c.weights = weights;
    Ok(())
}

/// Two members on one host cannot share a quorum or election port (a pseudo-cluster typo).
fn check_port_clashes(servers: &BTreeMap<u64, (ServerSpec, Location)>) -> Result<(), ConfigError> {
    let mut seen: HashMap<(String, u16), u64> = HashMap::new();
    for (id, (spec, at)) in servers {
        let first = membership::QuorumAddress {
            host: spec.host.clone(),
            quorum_port: spec.quorum_port,
            election_port: spec.election_port,
        };
        for address in std::iter::once(&first).chain(&spec.extra_addresses) {
            for port in [address.quorum_port, address.election_port] {
                if let Some(other) = seen.insert((address.host.to_string(), port), *id) {
                    if other != *id {
                        return Err(ConfigError::Inconsistent {
                            at: at.clone(),
                            key: format!("server.{id}"),
                            message: format!(
                                "port {port} on {} is also used by server.{other}",
                                address.host
                            ),
                        });
                    }
                }
            }
        }
    }
    Ok(())
}

/// `zoo.cfg.dynamic.100000000` -> 0x100000000; 0 for any other name.
fn version_from_file_name(path: &Path) -> u64 {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    match name.rsplit_once(".dynamic.") {
        Some((_, hex)) => u64::from_str_radix(hex, 16).unwrap_or(0),
        None => 0,
    }
}

/// Reads `<dataDir>/myid`: first line, decimal, 1..=255 (254 with extended types).
fn read_myid(c: &Config, data_dir_at: &Location) -> Result<u64, ConfigError> {
    let path = c.data_dir.join("myid");
    let path_name = path.display().to_string();
    if !path.is_file() {
        return Err(ConfigError::MyidMissing {
            at: data_dir_at.clone(),
            path: path_name,
        });
    }
    let text = read_limited(&path)?;
    let first = text.lines().next().unwrap_or("").trim();
    let (max, reason) = if c.extended_types_enabled {
        (
            SERVER_ID_MAX_EXTENDED_TYPES,
            "expected a server id from 1 to 254 (extendedTypesEnabled)",
        )
    } else {
        (SERVER_ID_MAX, "expected a server id from 1 to 255")
    };
    membership::parse_member_id(first, max).ok_or_else(|| ConfigError::BadMyid {
        path: path_name,
        content: first.to_string(),
        reason: reason.to_string(),
    })
}

/// `clientPort`/`clientPortAddress` and this server's `;client` part must agree (ZooKeeper:
/// "client address for this server ... is different from client address found in dynamic
/// file").
fn check_own_client_address(c: &Config, own: &ServerSpec, p: &Pending) -> Result<(), ConfigError> {
    let (Some(port), Some((own_host, own_port))) = (c.client_port, &own.client_address) else {
        return Ok(());
    };
    let host = c.client_port_address.clone().unwrap_or_else(Host::wildcard);
    if port == *own_port && host == *own_host {
        return Ok(());
    }
    let at = p
        .servers
        .iter()
        .find(|s| {
            s.key
                .strip_prefix("server.")
                .and_then(|n| membership::parse_member_id(n, SERVER_ID_MAX))
                == Some(own.id)
        })
        .map_or_else(|| Location::file(&c.source_name()), |s| s.at.clone());
    Err(ConfigError::Inconsistent {
        at,
        key: format!("server.{}", own.id),
        message: format!(
            "client address {} differs from clientPort/clientPortAddress {}",
            own_host.java_form_with_port(*own_port),
            host.java_form_with_port(port)
        ),
    })
}

impl Config {
    fn source_name(&self) -> String {
        self.source
            .as_ref()
            .map_or_else(String::new, |p| p.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_integer_forms() {
        assert_eq!(parse_java_integer("42"), Some(42));
        assert_eq!(parse_java_integer("+42"), Some(42));
        assert_eq!(parse_java_integer("-1"), Some(-1));
        for bad in [
            "",
            "+",
            "-",
            "4 2",
            "0x10",
            "1e3",
            "١٢",
            "99999999999999999999",
        ] {
            assert_eq!(parse_java_integer(bad), None, "{bad}");
        }
    }

    #[test]
    fn java_decode_forms() {
        assert_eq!(parse_java_decode("1048575"), Some(1_048_575));
        assert_eq!(parse_java_decode("0xfffff"), Some(0xfffff));
        assert_eq!(parse_java_decode("0XFFFFF"), Some(0xfffff));
        assert_eq!(parse_java_decode("#10"), Some(16));
        assert_eq!(parse_java_decode("010"), Some(8));
        assert_eq!(parse_java_decode("0"), Some(0));
        assert_eq!(parse_java_decode("-0x10"), Some(-16));
        for bad in ["", "0x", "09", "abc", "1_000", "--1"] {
            assert_eq!(parse_java_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn core_lists() {
        assert_eq!(parse_core_list("0, 2,3"), Some(vec![0, 2, 3]));
        assert_eq!(parse_core_list("1,1"), None);
        assert_eq!(parse_core_list("1,,2"), None);
        assert_eq!(parse_core_list("a"), None);
        assert_eq!(parse_core_list("-1"), None);
    }

    #[test]
    fn dynamic_file_versions() {
        assert_eq!(
            version_from_file_name(Path::new("conf/zoo.cfg.dynamic.100000000")),
            0x1_0000_0000
        );
        assert_eq!(version_from_file_name(Path::new("zoo.cfg.dynamic.next")), 0);
        assert_eq!(version_from_file_name(Path::new("members.cfg")), 0);
    }
}
