//! zoo.cfg into a typed [`Config`].
//!
//! Owns: reading a ZooKeeper 3.8 zoo.cfg (Java-properties syntax, see `properties`), the
//! optional Corral tuning profile it names, the dynamic config file, and `<dataDir>/myid`;
//! checking every rule ZooKeeper's `QuorumPeerConfig` checks (and a few it leaves to runtime);
//! and rendering what the server reports back: the `conf` four-letter word and the
//! `/zookeeper/config` text. It does not open sockets or touch dataDir beyond reading myid.
//!
//! Matches `org.apache.zookeeper.server.quorum.QuorumPeerConfig` (keys, defaults, errors),
//! `ZooKeeperServer.dumpConf` / `QuorumPeer` (the `conf` output) and
//! `QuorumMaj.toString` (the membership text).
//!
//! Every key ZooKeeper 3.8 knows is accepted. Keys Corral acts on become typed fields (units
//! last: `tickTime` -> `tick_ms`); keys it knows but has no use for (TLS, SASL, JVM knobs) are
//! listed in [`Config::not_applicable`] for the server to log once; keys nobody knows are in
//! [`Config::unknown_keys`] (ZooKeeper ignores them too, as stray system properties). Keys in
//! Corral's own `corral.` namespace are checked strictly: a typo there is an error.
//!
//! Paths: `dataDir`, `dataLogDir` and `dynamicConfigFile` are kept as written; a relative one
//! is relative to the server's working directory, as in ZooKeeper (which hands the string to
//! `java.io.File`). Only `corral.profile` is resolved against the directory of the cfg file,
//! because a profile is shipped next to the configs that name it.
//!
//! Bounds: a config file (and a profile, and a dynamic file) may have at most
//! [`CONFIG_BYTES_MAX`] bytes; server ids are 1..=255; shard count at most [`SHARDS_MAX`].

mod build;
mod error;
mod keys;
mod membership;
mod properties;
mod whitelist;

pub use error::{ConfigError, Location};
pub use membership::{
    apply_reconfig, dynamic_file_name, edit_static_config, parse_membership_text,
    render_dynamic_file, render_membership, GroupSpec, Host, Membership, QuorumAddress,
    ReconfigChange, Role, ServerSpec, SERVER_ID_MAX, SERVER_ID_MAX_EXTENDED_TYPES,
};
pub use whitelist::FourLetterWhitelist;

use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

/// Largest config, profile or dynamic file read, in bytes.
pub const CONFIG_BYTES_MAX: u64 = 1 << 20;
/// Most shard executors a config may ask for.
pub const SHARDS_MAX: usize = 1024;
/// Default `tickTime` when the key is absent (ZooKeeper's `ZooKeeperServer.DEFAULT_TICK_TIME`).
pub const TICK_MS_DEFAULT: u32 = 3000;
/// Default `corral.snapshot.logInMemoryKb`: 1 GiB.
pub const SNAPSHOT_LOG_IN_MEMORY_KB_DEFAULT: u64 = 1 << 20;

/// Default `corral.client.maxOutputBytes`: 16 MiB.
pub const CLIENT_MAX_OUTPUT_BYTES_DEFAULT: u64 = 16 << 20;

/// Default `jute.maxbuffer`.
pub const JUTE_MAX_BUFFER_BYTES_DEFAULT: u32 = 0xfffff;
/// The Prometheus provider class; naming it in `metricsProvider.className` turns on Corral's
/// Prometheus endpoint.
pub const PROMETHEUS_PROVIDER_CLASS: &str =
    "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider";

/// A key that was read but is not a typed field, and where it was read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyAt {
    /// The key as written (with its `zookeeper.` prefix, if any).
    pub key: String,
    pub at: Location,
}

impl fmt::Display for KeyAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.at, self.key)
    }
}

/// How executors are pinned to cores (`corral.pinning`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pinning {
    /// No pinning: the OS schedules (right for pseudo-clusters on one host).
    Off,
    /// Pin the ZAB executor and the shards to distinct cores, chosen by the runtime.
    On,
    /// Pin to these cores, in this order (the runtime decides which executor takes which).
    Cores(Vec<usize>),
}

/// `ssl.clientAuth` (or `ssl.quorum.clientAuth`): whether the TLS server asks for a client
/// certificate. ZooKeeper's default is `need`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientAuth {
    /// No certificate is requested.
    None,
    /// A certificate is requested; a client without one is still served.
    Want,
    /// A client without a valid certificate is refused.
    #[default]
    Need,
}

/// One TLS context's files and switches (`ssl.*` or `ssl.quorum.*`). Corral reads PEM
/// stores only: the key store holds the private key and the certificate chain, the trust
/// store the CA certificates, as ZooKeeper's `PEM` store type does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslStores {
    /// `keyStore.location`.
    pub key_store_location: Option<PathBuf>,
    /// `keyStore.password` or `keyStore.passwordPath` is set (Corral cannot decrypt an
    /// encrypted key; an unencrypted key with a password is read as is).
    pub key_store_password_set: bool,
    /// `trustStore.location`.
    pub trust_store_location: Option<PathBuf>,
    /// `clientAuth` (default need).
    pub client_auth: ClientAuth,
    /// `hostnameVerification` (default true): a dialling server checks that the certificate
    /// of the server it calls names that server's host (quorum only).
    pub hostname_verification: bool,
}

impl Default for SslStores {
    fn default() -> SslStores {
        SslStores {
            key_store_location: None,
            key_store_password_set: false,
            trust_store_location: None,
            client_auth: ClientAuth::Need,
            hostname_verification: true,
        }
    }
}

/// Corral's own knobs, keys `corral.*`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CorralTuning {
    /// `corral.shards`: client-serving executors; 0 serves the client sessions on the ZAB
    /// executor (one executor in all). Default: cores - 1; 0 with 2 cores or fewer
    /// ([`default_shards`]).
    pub shards: usize,
    /// `corral.pinning`: `off` (default), `on`, or a comma list of core ids.
    pub pinning: Pinning,
    /// `corral.ioMemoryKb`: glommio io memory of the ZAB executor, KiB (default 512): the
    /// log's direct writes take their buffers from it. Shards get glommio's 64 KiB minimum.
    pub io_memory_kb: u32,
    /// `corral.ioRingDepth`: entries of each io_uring ring per executor (default 128, a
    /// power of two). How many I/O operations an executor can have in flight at once.
    pub io_ring_depth: u32,
    /// `corral.commit.maxBatch`: most records one group-commit fsync covers (default 256).
    pub commit_max_batch: u32,
    /// `corral.commit.maxWaitUs`: longest a record waits for a batch to fill (default 200).
    pub commit_max_wait_us: u32,
    /// `corral.snapshot.stepNodes`: nodes a snapshot in progress copies per turn of the ZAB
    /// loop (standalone) or of shard 0 (replicated), between write batches (default 1024:
    /// about 0.7 ms at a million znodes). Smaller: shorter pauses, longer snapshots.
    pub snapshot_step_nodes: u32,
    /// `corral.snapshot.logInMemoryKb`: a replicated server keeps the log records written
    /// since its newest snapshot in memory (to sync learners by DIFF and to settle its log
    /// at the next election); once they pass this many KiB it takes a snapshot, which lets
    /// them go, as `snapSizeLimitInKb` does for the log on disk (default 1 GiB). Bounds a
    /// server's memory under large values, where `snapCount` records could be gigabytes.
    /// Also the biggest DIFF a leader sends: a learner further behind gets a snapshot.
    pub snapshot_log_in_memory_kb: u64,
    /// `corral.zab.spinUs`: how long the ZAB executor polls for completions before it
    /// sleeps (default 0). On VMs a thread asleep in an fdatasync can wake only at the next
    /// timer tick; polling through the sync catches its completion at once, at the price of
    /// a busy core — for a dedicated ZAB core, not a pseudo-cluster.
    pub zab_spin_us: u32,
    /// `corral.client.maxOutputBytes`: replies and watch events one client connection may
    /// have waiting to be sent before the server closes it as not reading (default 16 MiB;
    /// never less than twice `jute.maxbuffer`, so the largest reply always fits).
    pub client_max_output_bytes: u64,
    /// `corral.releaseStartupCode`: a second after start, drop the page-table entries of
    /// the code only start-up ran, so an idle server keeps ~4 MiB less resident (default
    /// true; `runtime::release_code_pages`). False keeps all code mapped: rarely run code
    /// (election, sync) then stays protected from page-cache eviction.
    pub release_startup_code: bool,
    /// `corral.profile`: the tuning profile applied under this config, resolved.
    pub profile: Option<PathBuf>,
}

/// A checked server configuration. Build it with [`Config::load`] (or [`Config::parse`],
/// [`Config::embedded_default`]); every field then holds a usable value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// The cfg file read; `None` for the embedded default.
    pub source: Option<PathBuf>,

    // Time.
    /// `tickTime`: the base time unit (default 3000).
    pub tick_ms: u32,
    /// `initLimit`: ticks a follower may take to connect and sync (quorum mode only).
    pub init_limit_ticks: Option<u32>,
    /// `syncLimit`: ticks a follower may lag (quorum mode only).
    pub sync_limit_ticks: Option<u32>,
    /// `connectToLearnerMasterLimit` (defaults to `initLimit` when unset).
    pub connect_to_learner_master_limit_ticks: Option<u32>,
    /// `minSessionTimeout` (default 2 ticks).
    pub min_session_timeout_ms: u32,
    /// `maxSessionTimeout` (default 20 ticks).
    pub max_session_timeout_ms: u32,

    // Storage.
    /// `dataDir`: snapshots, myid, epoch files. Relative = relative to the working directory.
    pub data_dir: PathBuf,
    /// `dataLogDir`: transaction logs (default `data_dir`).
    pub data_log_dir: PathBuf,
    /// `snapCount`: snapshot after about this many txns (default 100000, at least 2).
    pub snap_count: u32,
    /// `snapSizeLimitInKb`: snapshot after about this much log (default 4 GiB); `None` = off.
    /// In replicated mode `corral.snapshot.logInMemoryKb` lowers it (and applies when off).
    pub snap_size_limit_kb: Option<u64>,
    /// `txnLogSizeLimitInKb`: roll the log past this size; `None` (default) = no limit.
    pub txn_log_size_limit_kb: Option<u64>,
    /// `commitLogCount`: committed proposals kept in memory for fast follower sync (500).
    pub commit_log_count: u32,
    /// `preAllocSize`: the size a txn log segment is preallocated with (zeros), KiB
    /// (default 65536; segments are capped at 64 MiB).
    pub pre_alloc_kb: u64,
    /// `forceSync` (`yes`/`no`, default yes): fsync the log before acknowledging.
    pub force_sync: bool,
    /// `fsync.warningthresholdms` (default 1000): log fsyncs slower than this.
    pub fsync_warning_threshold_ms: u64,
    /// `autopurge.snapRetainCount` (default 3, at least 3).
    pub autopurge_snap_retain_count: u32,
    /// `autopurge.purgeInterval` in hours; 0 (default) = no autopurge.
    pub autopurge_purge_interval_hours: u32,

    // Clients.
    /// `clientPort`; `None` when absent or 0.
    pub client_port: Option<u16>,
    /// `clientPortAddress` (needs `clientPort`); default all interfaces.
    pub client_port_address: Option<Host>,
    /// `secureClientPort`: clients connect over TLS here (see `ssl_client`).
    pub secure_client_port: Option<u16>,
    /// `secureClientPortAddress`.
    pub secure_client_port_address: Option<Host>,
    /// `ssl.*`: the secure client port's key store, trust store and client authentication.
    pub ssl_client: SslStores,
    /// `sslQuorum`: servers talk to each other over mutual TLS (see `ssl_quorum_stores`).
    pub ssl_quorum: bool,
    /// `ssl.quorum.*`: the quorum mesh's key store and trust store.
    pub ssl_quorum_stores: SslStores,
    /// `clientPortListenBacklog`; -1 (default) = the OS default.
    pub client_port_listen_backlog: i32,
    /// `maxClientCnxns`: connections per client IP, 0 = unlimited (default 60).
    pub max_client_cnxns: u32,
    /// `maxCnxns`: connections in total, 0 = unlimited (default).
    pub max_cnxns: u32,
    /// `globalOutstandingLimit` (default 1000).
    pub global_outstanding_limit: u32,
    /// `jute.maxbuffer`: largest frame or field (default 0xfffff).
    pub jute_max_buffer_bytes: u32,
    /// `largeRequestMaxBytes` (default 100 MiB).
    pub large_request_max_bytes: u32,
    /// `largeRequestThreshold`; `None` (default, -1) = no large-request throttling.
    pub large_request_threshold_bytes: Option<u32>,
    /// `localSessionsEnabled` (default false).
    pub local_sessions_enabled: bool,
    /// `localSessionsUpgradingEnabled` (default false).
    pub local_sessions_upgrading_enabled: bool,
    /// `readonlymode.enabled` (default false).
    pub read_only_mode_enabled: bool,

    // Features.
    /// `4lw.commands.whitelist` (default `srvr` only).
    pub four_letter_whitelist: FourLetterWhitelist,
    /// `extendedTypesEnabled`: TTL nodes (default false; server ids then at most 254).
    pub extended_types_enabled: bool,
    /// `skipACL` (`yes`/`no`, default no).
    pub skip_acl: bool,
    /// `enforceQuota`: hard quotas fail writes (default false).
    pub enforce_quota: bool,
    /// `DigestAuthenticationProvider.superDigest`: `user:base64sha1` granting super.
    pub super_digest: Option<String>,
    /// `X509AuthenticationProvider.superUser`: a TLS client certificate with this subject
    /// (RFC 2253, as the `x509` id prints it) also gets the id `super:` (empty, as in
    /// ZooKeeper 3.8.0), which every ACL lets through.
    pub x509_super_user: Option<String>,
    /// `DigestAuthenticationProvider.enabled` (default true).
    pub digest_auth_enabled: bool,
    /// `digest.enabled`: data-tree digests (default true).
    pub digest_enabled: bool,
    /// `znode.container.checkIntervalMs` (default 60000).
    pub container_check_interval_ms: u64,
    /// `znode.container.maxPerMinute` (default 10000).
    pub container_max_per_minute: u32,
    /// `znode.container.maxNeverUsedIntervalMs`; 0 (default) = never reap unused containers.
    pub container_max_never_used_interval_ms: u64,

    // Quorum.
    /// This server's id from `<dataDir>/myid`: required in quorum mode; read in standalone
    /// mode only when there are `server.N` lines and the file exists.
    pub server_id: Option<u64>,
    /// `standaloneEnabled` (default true): one participant runs standalone.
    pub standalone_enabled: bool,
    /// `reconfigEnabled` (default false).
    pub reconfig_enabled: bool,
    /// `electionAlg`: only 3.
    pub election_alg: u32,
    /// This server's role: its `server.N` line's, else `peerType` (default participant).
    pub peer_type: Role,
    /// `server.N` lines, sorted by id (from the dynamic file when there is one).
    pub servers: Vec<ServerSpec>,
    /// `group.N` lines (hierarchical quorum), sorted by id.
    pub groups: Vec<GroupSpec>,
    /// `weight.N` lines.
    pub weights: BTreeMap<u64, u64>,
    /// `dynamicConfigFile`.
    pub dynamic_config_file: Option<PathBuf>,
    /// Version of the membership: the hex suffix of a `*.dynamic.<hex>` file, else 0.
    pub config_version: u64,
    /// `multiAddress.enabled` (default false).
    pub multi_address_enabled: bool,
    /// `quorumListenOnAllIPs` (default false).
    pub quorum_listen_on_all_ips: bool,
    /// `syncEnabled` (default true): in ZooKeeper, whether observers persist txns. Corral's
    /// always do; `false` is only a warning ([`Config::warnings`]).
    pub sync_enabled: bool,
    /// `leaderServes` (`yes`/`no`, default yes): the leader accepts clients.
    pub leader_serves: bool,
    /// `cnxTimeout`: election connection timeout (default 5000).
    pub cnx_timeout_ms: u32,
    /// `observerMasterPort`: followers serve observers on this port.
    pub observer_master_port: Option<u16>,

    // Admin and metrics.
    /// `admin.enableServer` (default true).
    pub admin_enable_server: bool,
    /// `admin.serverAddress` (default 0.0.0.0).
    pub admin_server_address: Host,
    /// `admin.serverPort` (default 8080).
    pub admin_server_port: u16,
    /// `admin.idleTimeout` (default 30000).
    pub admin_idle_timeout_ms: u32,
    /// `admin.commandURL` (default `/commands`).
    pub admin_command_url: String,
    /// `metricsProvider.className` names the Prometheus provider.
    pub metrics_prometheus_enabled: bool,
    /// `metricsProvider.httpHost` (default 0.0.0.0).
    pub metrics_provider_http_host: Host,
    /// `metricsProvider.httpPort` (default 7000).
    pub metrics_provider_http_port: u16,

    /// `corral.*`.
    pub corral: CorralTuning,

    /// Keys ZooKeeper knows that Corral does not act on; log once.
    pub not_applicable: Vec<KeyAt>,
    /// Keys neither knows; log at warn.
    pub unknown_keys: Vec<KeyAt>,
    /// Values Corral adjusted or overrode, as ZooKeeper does (a snapRetainCount below 3, a
    /// key set twice); one line each, `file:line: ...`; log at warn.
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads and checks `path` (and the profile, dynamic file and myid it leads to).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = build::read_limited(path)?;
        Config::parse(&text, path)
    }

    /// Checks config text that was read from `path` (used in messages, and to find the
    /// profile). The profile, the dynamic file and myid are still read from disk.
    pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
        build::build(text, path, available_cores())
    }

    /// As [`Self::parse`], with the defaults of a host with `cores` cores (`corral tune`
    /// judges a host it describes, not the one it runs on).
    pub fn parse_for_cores(text: &str, path: &Path, cores: usize) -> Result<Config, ConfigError> {
        build::build(text, path, cores)
    }

    /// The configuration `corral server` runs with when given no file: a standalone server
    /// on 127.0.0.1:2181, `tickTime=2000`, `dataDir=./data` (relative to the working
    /// directory), every four-letter word allowed, the admin server on 127.0.0.1:8080.
    pub fn embedded_default() -> Config {
        let mut config = Config::defaults(PathBuf::from("./data"), available_cores());
        config.tick_ms = 2000;
        config.min_session_timeout_ms = 2 * 2000;
        config.max_session_timeout_ms = 20 * 2000;
        config.client_port = Some(2181);
        config.client_port_address = Some(Host::Ip([127, 0, 0, 1].into()));
        config.four_letter_whitelist = FourLetterWhitelist::everything();
        // A server for trying things out listens on loopback only, admin port included.
        config.admin_server_address = Host::Ip([127, 0, 0, 1].into());
        config
    }

    /// ZooKeeper's defaults for every field, given a data directory.
    fn defaults(data_dir: PathBuf, cores: usize) -> Config {
        Config {
            source: None,
            tick_ms: TICK_MS_DEFAULT,
            init_limit_ticks: None,
            sync_limit_ticks: None,
            connect_to_learner_master_limit_ticks: None,
            min_session_timeout_ms: 2 * TICK_MS_DEFAULT,
            max_session_timeout_ms: 20 * TICK_MS_DEFAULT,
            data_log_dir: data_dir.clone(),
            data_dir,
            snap_count: 100_000,
            snap_size_limit_kb: Some(4_194_304),
            txn_log_size_limit_kb: None,
            commit_log_count: 500,
            pre_alloc_kb: 65_536,
            force_sync: true,
            fsync_warning_threshold_ms: 1000,
            autopurge_snap_retain_count: 3,
            autopurge_purge_interval_hours: 0,
            client_port: None,
            client_port_address: None,
            secure_client_port: None,
            secure_client_port_address: None,
            ssl_client: SslStores::default(),
            ssl_quorum: false,
            ssl_quorum_stores: SslStores::default(),
            client_port_listen_backlog: -1,
            max_client_cnxns: 60,
            max_cnxns: 0,
            global_outstanding_limit: 1000,
            jute_max_buffer_bytes: JUTE_MAX_BUFFER_BYTES_DEFAULT,
            large_request_max_bytes: 100 * 1024 * 1024,
            large_request_threshold_bytes: None,
            local_sessions_enabled: false,
            local_sessions_upgrading_enabled: false,
            read_only_mode_enabled: false,
            four_letter_whitelist: FourLetterWhitelist::parse(None, false),
            extended_types_enabled: false,
            skip_acl: false,
            enforce_quota: false,
            super_digest: None,
            x509_super_user: None,
            digest_auth_enabled: true,
            digest_enabled: true,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            server_id: None,
            standalone_enabled: true,
            reconfig_enabled: false,
            election_alg: 3,
            peer_type: Role::Participant,
            servers: Vec::new(),
            groups: Vec::new(),
            weights: BTreeMap::new(),
            dynamic_config_file: None,
            config_version: 0,
            multi_address_enabled: false,
            quorum_listen_on_all_ips: false,
            sync_enabled: true,
            leader_serves: true,
            cnx_timeout_ms: 5000,
            observer_master_port: None,
            admin_enable_server: true,
            admin_server_address: Host::wildcard(),
            admin_server_port: 8080,
            admin_idle_timeout_ms: 30_000,
            admin_command_url: "/commands".to_string(),
            metrics_prometheus_enabled: false,
            metrics_provider_http_host: Host::wildcard(),
            metrics_provider_http_port: 7000,
            corral: CorralTuning {
                shards: default_shards(cores),
                pinning: Pinning::Off,
                io_memory_kb: 512,
                io_ring_depth: 128,
                commit_max_batch: 256,
                commit_max_wait_us: 200,
                snapshot_step_nodes: 1024,
                snapshot_log_in_memory_kb: SNAPSHOT_LOG_IN_MEMORY_KB_DEFAULT,
                zab_spin_us: 0,
                client_max_output_bytes: CLIENT_MAX_OUTPUT_BYTES_DEFAULT,
                release_startup_code: true,
                profile: None,
            },
            not_applicable: Vec::new(),
            unknown_keys: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Standalone (no quorum): no `server.N` lines, or `standaloneEnabled` with a single
    /// participant (observers are then ignored, as in ZooKeeper's `isDistributed`).
    pub fn is_standalone(&self) -> bool {
        let participants = self
            .servers
            .iter()
            .filter(|s| s.role == Role::Participant)
            .count();
        self.servers.is_empty() || (self.standalone_enabled && participants == 1)
    }

    /// This server's `server.N` line, in quorum mode.
    pub fn own_server(&self) -> Option<&ServerSpec> {
        let id = self.server_id?;
        self.servers.iter().find(|s| s.id == id)
    }

    /// Where clients connect, unresolved: `clientPort` (+ `clientPortAddress`, default
    /// 0.0.0.0), else the client part of this server's `server.N` line.
    pub fn client_endpoint(&self) -> Option<(Host, u16)> {
        if let Some(port) = self.client_port {
            let host = self
                .client_port_address
                .clone()
                .unwrap_or_else(Host::wildcard);
            return Some((host, port));
        }
        self.own_server().and_then(|s| s.client_address.clone())
    }

    /// The client listen address, a host name resolved (first address) through the system
    /// resolver. `Ok(None)` when the server has no plain client port.
    pub fn client_socket_addr(&self) -> io::Result<Option<SocketAddr>> {
        let Some((host, port)) = self.client_endpoint() else {
            return Ok(None);
        };
        match host {
            Host::Ip(ip) => Ok(Some(SocketAddr::new(ip, port))),
            Host::Name(name) => {
                let mut addrs = (name.as_str(), port).to_socket_addrs()?;
                match addrs.next() {
                    Some(addr) => Ok(Some(addr)),
                    None => Err(io::Error::new(
                        io::ErrorKind::NotFound,
                        format!("{name}: no address"),
                    )),
                }
            }
        }
    }

    /// The membership this config describes (version = [`Config::config_version`]).
    pub fn membership(&self) -> Membership {
        Membership {
            servers: self.servers.clone(),
            groups: self.groups.clone(),
            weights: self.weights.clone(),
            version: self.config_version,
        }
    }

    /// The data of `/zookeeper/config` at startup: empty when standalone, else the
    /// membership text (`server.1=127.0.0.1:2888:3888:participant` ... `version=0`).
    pub fn config_node_data(&self) -> String {
        if self.is_standalone() {
            return String::new();
        }
        render_membership(&self.membership())
    }

    /// The reply to the `conf` four-letter word, as ZooKeeper 3.8 writes it: `key=value`
    /// lines in its order (clientPort, secureClientPort, dataDir, dataDirSize, dataLogDir,
    /// dataLogSize, tickTime, maxClientCnxns, minSessionTimeout, maxSessionTimeout,
    /// clientPortListenBacklog, serverId), and in quorum mode initLimit, syncLimit,
    /// electionAlg, electionPort, quorumPort, peerType, then `membership: ` and the
    /// membership text (no trailing newline). Directories print as `<dir>/version-2`; sizes
    /// are the byte totals of those directories, measured by the caller; `membership` is the
    /// current one (it changes with reconfig). Absent ports print as -1; serverId is 0 when
    /// standalone.
    pub fn conf_lines(
        &self,
        data_dir_size_bytes: u64,
        data_log_size_bytes: u64,
        membership: &Membership,
    ) -> String {
        let port_or_minus_one = |port: Option<u16>| port.map_or(-1, i32::from);
        let standalone = self.is_standalone();
        let mut out = String::new();
        let mut line =
            |key: &str, value: &dyn fmt::Display| out.push_str(&format!("{key}={value}\n"));
        line(
            "clientPort",
            &port_or_minus_one(self.client_endpoint().map(|(_, port)| port)),
        );
        line(
            "secureClientPort",
            &port_or_minus_one(self.secure_client_port),
        );
        line("dataDir", &self.data_dir.join("version-2").display());
        line("dataDirSize", &data_dir_size_bytes);
        line("dataLogDir", &self.data_log_dir.join("version-2").display());
        line("dataLogSize", &data_log_size_bytes);
        line("tickTime", &self.tick_ms);
        line("maxClientCnxns", &self.max_client_cnxns);
        line("minSessionTimeout", &self.min_session_timeout_ms);
        line("maxSessionTimeout", &self.max_session_timeout_ms);
        line("clientPortListenBacklog", &self.client_port_listen_backlog);
        line(
            "serverId",
            &if standalone {
                0
            } else {
                self.server_id.unwrap_or(0)
            },
        );
        if standalone {
            return out;
        }
        let own = self.own_server();
        line("initLimit", &self.init_limit_ticks.unwrap_or(0));
        line("syncLimit", &self.sync_limit_ticks.unwrap_or(0));
        line("electionAlg", &self.election_alg);
        line(
            "electionPort",
            &port_or_minus_one(own.map(|s| s.election_port)),
        );
        line("quorumPort", &port_or_minus_one(own.map(|s| s.quorum_port)));
        line("peerType", &self.peer_type.ordinal());
        out.push_str("membership: \n");
        out.push_str(&render_membership(membership));
        out
    }
}

/// Default shard count for a host with `cores` cores: one core stays for the ZAB executor.
/// `corral.shards` when the config does not set it: cores - 1, or 0 (the sessions on the
/// ZAB executor) with 2 cores or fewer, standalone or replicated.
pub fn default_shards(cores: usize) -> usize {
    if cores <= SESSIONS_ON_ZAB_CORES_MAX {
        0
    } else {
        (cores - 1).min(SHARDS_MAX)
    }
}

/// Up to this many cores a server runs its client sessions on the ZAB executor by
/// default. On a 2-vCPU host one executor for everything measured better than ZAB + one
/// shard: standalone writes 133–134k against 101–106k ops/s and unloaded write latency
/// 222–233 against 290–304 µs, reads the same; the 3 + 1 pseudo-cluster wrote about 20 %
/// more (median 33 200 against 27 200 ops/s). Two executors there hand every request
/// across threads that share the two cores with the kernel's own work and the clients.
/// Shard 0 copies a replicated server's snapshots in steps (`ShardCtx::capture_snapshot`),
/// so on the ZAB executor the walk does not stall the ZAB loop.
pub const SESSIONS_ON_ZAB_CORES_MAX: usize = 2;

/// Cores this process may use (1 if the OS will not say).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests;
