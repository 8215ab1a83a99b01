//! The settings one server node runs with, derived from its zoo.cfg by
//! [`Settings::from_config`]. Executors share them read-only through an `Arc`.

use crate::config::{Config, Host, Pinning};
use crate::quorum::election::ElectionConfig;
use crate::quorum::peer::PeerConfig;
use crate::quorum::ServerId;
use crate::runtime::CorePin;
use crate::server::peers::MeshConfig;
use crate::zab::prep::PrepConfig;
use bytes::Bytes;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Settings {
    /// The plain client port; `None` with only a `secureClientPort`.
    pub client_addr: Option<SocketAddr>,
    /// The TLS client port (`secureClientPort`) and its TLS context.
    pub secure_client: Option<SecureClient>,
    pub server_id: u8,
    /// Placement of each shard executor (its length is the shard count: at least one, which
    /// runs on the ZAB executor when `sessions_on_zab`).
    pub shard_pins: Vec<CorePin>,
    /// `corral.shards=0`: the one shard's tasks run on the ZAB executor, no shard executor.
    pub sessions_on_zab: bool,
    pub zab_pin: CorePin,
    pub io_memory_bytes: usize,
    /// `corral.ioRingDepth`: io_uring entries per ring of each executor.
    pub io_ring_depth: usize,
    pub tick_ms: u32,
    pub min_session_timeout_ms: i32,
    pub max_session_timeout_ms: i32,
    /// `jute.maxbuffer`: the largest frame accepted from a client.
    pub max_frame_bytes: usize,
    /// Four-letter words allowed; `None` = all.
    pub four_letter_whitelist: Option<HashSet<String>>,
    pub prep: PrepConfig,
    /// `user:base64` digest granting the super identity.
    pub super_digest: Option<String>,
    pub container_check_interval_ms: i64,
    pub container_max_per_minute: u32,
    pub container_max_never_used_interval_ms: i64,
    /// `maxClientCnxns`: connections per client IP across all shards; 0 = unlimited.
    pub max_client_cnxns: usize,
    /// `maxCnxns`: client connections on this server in total; 0 = unlimited.
    pub max_cnxns: usize,
    /// This shard's share of `globalOutstandingLimit`: once the requests outstanding on a
    /// shard reach it, every connection of the shard with a request of its own outstanding
    /// stops reading until the count falls below it again.
    pub outstanding_per_shard_max: usize,
    /// `corral.client.maxOutputBytes`: output a connection may have waiting before it is
    /// closed as a client that does not read.
    pub max_output_bytes: usize,
    /// `dataDir`, absolute (see [`absolute`]).
    pub data_dir: PathBuf,
    /// `dataLogDir`, absolute.
    pub data_log_dir: PathBuf,
    /// Data of /zookeeper/config (empty in standalone mode).
    pub config_node_data: Bytes,
    /// How this server replicates; `None` when standalone.
    pub quorum: Option<QuorumSettings>,
    /// The zoo.cfg this server runs (for `conf`).
    pub config: Arc<Config>,
}

/// The secure client port.
#[derive(Debug, Clone)]
pub struct SecureClient {
    pub addr: SocketAddr,
    pub tls: Arc<crate::tls::rustls::ServerConfig>,
}

/// A replicated server's place in its ensemble.
#[derive(Debug, Clone)]
pub struct QuorumSettings {
    pub my_id: ServerId,
    /// Whom this server talks to, and where (the election port of each `server.N` line
    /// carries every server-to-server message, election and ZAB alike).
    pub mesh: MeshConfig,
    pub election: ElectionConfig,
    pub peer: PeerConfig,
}

/// The biggest DIFF a leader sends (bytes of records; a learner further behind is sent a
/// snapshot), which also bounds the committed records kept in memory for one.
fn diff_bytes_max(log_in_memory_kb: u64) -> usize {
    let in_memory_bytes =
        usize::try_from(log_in_memory_kb.saturating_mul(1024)).unwrap_or(usize::MAX);
    (crate::server::peers::OUTBOX_BYTES_HARD_MAX / 2).min(in_memory_bytes)
}

/// Committed proposals a leader keeps in memory to bring a lagging learner up by DIFF
/// (Java's `commitLogCount` is 500; a learner further behind needs a snapshot sent).
const COMMITTED_LOG_MAX: usize = 10_000;
/// Proposals in flight on the leader; the shards' per-connection limits bound it first.
const OUTSTANDING_PROPOSALS_MAX: usize = 1 << 20;

/// Why a valid zoo.cfg still cannot be served.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("{file}: no clientPort: this server would have no client port to listen on")]
    NoClientPort { file: String },
    #[error("{file}: cannot resolve the client address: {source}")]
    ClientAddress {
        file: String,
        source: std::io::Error,
    },
    #[error(
        "{file}: replicated mode needs this server's id (dataDir/myid) to match a server.N line"
    )]
    NotAMember { file: String },
    #[error("{file}: cannot resolve the election address of server.{id}: {reason}")]
    PeerAddress {
        file: String,
        id: u64,
        reason: String,
    },
    #[error("{file}: {reason}")]
    Quorum { file: String, reason: String },
    #[error("{file}: {source}")]
    Tls {
        file: String,
        source: crate::tls::TlsError,
    },
}

impl Settings {
    /// The settings a zoo.cfg asks for.
    pub fn from_config(config: Config) -> Result<Settings, SettingsError> {
        let file = config
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "embedded default config".to_string());
        let quorum = if config.is_standalone() {
            None
        } else {
            Some(quorum_settings(&config, &file)?)
        };
        let client_addr = match config.client_socket_addr() {
            Ok(addr) => addr,
            Err(source) => return Err(SettingsError::ClientAddress { file, source }),
        };
        let secure_client = secure_client(&config, &file)?;
        if client_addr.is_none() && secure_client.is_none() {
            return Err(SettingsError::NoClientPort { file });
        }
        let shards = config.corral.shards.max(1);
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        // Pinning "on": the ZAB executor takes core 0, shards the following cores; with more
        // executors than cores they wrap around (still pinned, sharing cores).
        let (zab_pin, shard_pins) = match &config.corral.pinning {
            Pinning::Off => (CorePin::Unpinned, vec![CorePin::Unpinned; shards]),
            Pinning::On => (
                CorePin::Core(0),
                (0..shards)
                    .map(|i| CorePin::Core((i + 1) % cores))
                    .collect(),
            ),
            Pinning::Cores(list) => {
                let at = |i: usize| CorePin::Core(list[i % list.len()]);
                (at(0), (0..shards).map(|i| at(i + 1)).collect())
            }
        };
        let whitelist = &config.four_letter_whitelist;
        Ok(Settings {
            client_addr,
            secure_client,
            server_id: config.server_id.unwrap_or(1).clamp(1, 255) as u8,
            shard_pins,
            sessions_on_zab: config.corral.shards == 0,
            zab_pin,
            io_memory_bytes: config.corral.io_memory_kb as usize * 1024,
            io_ring_depth: config.corral.io_ring_depth as usize,
            tick_ms: config.tick_ms,
            min_session_timeout_ms: config.min_session_timeout_ms.min(i32::MAX as u32) as i32,
            max_session_timeout_ms: config.max_session_timeout_ms.min(i32::MAX as u32) as i32,
            max_frame_bytes: config.jute_max_buffer_bytes as usize,
            four_letter_whitelist: (!whitelist.all)
                .then(|| whitelist.words.iter().cloned().collect()),
            prep: PrepConfig {
                extended_types_enabled: config.extended_types_enabled,
                skip_acl: config.skip_acl,
                enforce_quota: config.enforce_quota,
                reconfig_enabled: config.reconfig_enabled,
            },
            super_digest: config.super_digest.clone(),
            container_check_interval_ms: config.container_check_interval_ms as i64,
            container_max_per_minute: config.container_max_per_minute,
            container_max_never_used_interval_ms: config.container_max_never_used_interval_ms
                as i64,
            max_client_cnxns: config.max_client_cnxns as usize,
            max_cnxns: config.max_cnxns as usize,
            outstanding_per_shard_max: (config.global_outstanding_limit as usize)
                .div_ceil(shards)
                .max(1),
            max_output_bytes: usize::try_from(config.corral.client_max_output_bytes)
                .unwrap_or(usize::MAX)
                .max(2 * config.jute_max_buffer_bytes as usize),
            data_dir: absolute(&config.data_dir),
            data_log_dir: absolute(&config.data_log_dir),
            config_node_data: Bytes::from(config.config_node_data()),
            quorum,
            config: Arc::new(config),
        })
    }

    pub fn four_letter_allowed(&self, word: &str) -> bool {
        match &self.four_letter_whitelist {
            None => true,
            Some(set) => set.contains(word),
        }
    }
}

/// The socket address of `host:port`, resolving a name (first address); `None` if it
/// does not resolve.
pub(super) fn resolve_host(host: &Host, port: u16) -> Option<SocketAddr> {
    match host {
        Host::Ip(ip) => Some(SocketAddr::new(*ip, port)),
        Host::Name(name) => std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
            .ok()?
            .next(),
    }
}

/// The secure client port's address and TLS context, when `secureClientPort` is set.
fn secure_client(config: &Config, file: &str) -> Result<Option<SecureClient>, SettingsError> {
    let Some(port) = config.secure_client_port else {
        return Ok(None);
    };
    let host = config
        .secure_client_port_address
        .clone()
        .unwrap_or_else(Host::wildcard);
    let addr = resolve_host(&host, port).ok_or_else(|| SettingsError::ClientAddress {
        file: file.to_string(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("secureClientPortAddress {host}: no address"),
        ),
    })?;
    let tls = crate::tls::server_config(&config.ssl_client, "ssl").map_err(|source| {
        SettingsError::Tls {
            file: file.to_string(),
            source,
        }
    })?;
    Ok(Some(SecureClient { addr, tls }))
}

/// The quorum part of the settings: the mesh addresses, the election and ZAB timings.
fn quorum_settings(config: &Config, file: &str) -> Result<QuorumSettings, SettingsError> {
    let me = config
        .own_server()
        .ok_or_else(|| SettingsError::NotAMember {
            file: file.to_string(),
        })?;
    let resolve = |id: u64, host: &Host, port: u16| -> Result<SocketAddr, SettingsError> {
        let err = |reason: String| SettingsError::PeerAddress {
            file: file.to_string(),
            id,
            reason,
        };
        match host {
            Host::Ip(ip) => Ok(SocketAddr::new(*ip, port)),
            Host::Name(name) => std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), port))
                .map_err(|e| err(e.to_string()))?
                .next()
                .ok_or_else(|| err(format!("{name}: no address"))),
        }
    };
    let mut listen = resolve(me.id, &me.host, me.election_port)?;
    if config.quorum_listen_on_all_ips {
        listen.set_ip(std::net::IpAddr::from([0, 0, 0, 0]));
    }
    let mut peers = Vec::new();
    for s in config.servers.iter().filter(|s| s.id != me.id) {
        peers.push((s.id, resolve(s.id, &s.host, s.election_port)?));
    }
    let membership = config.membership();
    let tick_ms = i64::from(config.tick_ms);
    let init_limit_ticks = config.init_limit_ticks.unwrap_or(10);
    let sync_limit_ticks = config.sync_limit_ticks.unwrap_or(5);
    let election =
        ElectionConfig::from_membership(&membership, tick_ms, init_limit_ticks, sync_limit_ticks)
            .map_err(|e| SettingsError::Quorum {
            file: file.to_string(),
            reason: e.to_string(),
        })?;
    // Servers refuse peers of another ensemble: the id is a digest of the members' ids and
    // election addresses, the same on every server of one static configuration.
    let mut digest = Vec::new();
    for s in &config.servers {
        digest.extend_from_slice(
            format!("{}={}:{};", s.id, s.host.java_form(), s.election_port).as_bytes(),
        );
    }
    // With reconfigEnabled the membership changes, and a server joins with a config naming
    // itself: the id then only says "a reconfigurable Corral ensemble".
    if config.reconfig_enabled {
        digest = b"corral reconfigurable ensemble".to_vec();
    }
    let cluster_id = u64::from(crc32c::crc32c(&digest));
    // A proposal carries one txn: any record the log takes (the sequencer refuses a write
    // whose txn would be bigger), and a forwarded request is at most a jute.maxbuffer
    // request's worth; 64 KiB more for the message's own fields.
    let payload_bytes_max = (config.jute_max_buffer_bytes as u64)
        .max(crate::storage::txn_log::RECORD_BYTES_MAX as u64)
        .saturating_add(64 * 1024)
        .min(u64::from(crate::quorum::wire::PAYLOAD_BYTES_LIMIT))
        as u32;
    let tls = if config.ssl_quorum {
        let tls =
            crate::tls::MeshTls::from_stores(&config.ssl_quorum_stores).map_err(|source| {
                SettingsError::Tls {
                    file: file.to_string(),
                    source,
                }
            })?;
        Some(tls)
    } else {
        None
    };
    // Half of what the mesh queues for one peer at most, and no more than the log a server
    // keeps in memory (`corral.snapshot.logInMemoryKb`).
    let diff_bytes_max = diff_bytes_max(config.corral.snapshot_log_in_memory_kb);
    Ok(QuorumSettings {
        my_id: me.id,
        mesh: MeshConfig {
            my_id: me.id,
            cluster_id,
            listen,
            peers,
            payload_bytes_max,
            accept_strangers: config.reconfig_enabled,
            tls,
        },
        peer: PeerConfig {
            my_id: me.id,
            quorum: election.quorum.clone(),
            observers: election.observers.clone(),
            tick_ms,
            init_limit_ticks,
            sync_limit_ticks,
            committed_log_max: COMMITTED_LOG_MAX,
            diff_bytes_max,
            // Committed records stay in memory only as far back as a DIFF may reach.
            committed_log_bytes_max: diff_bytes_max,
            outstanding_max: OUTSTANDING_PROPOSALS_MAX,
            accept_non_members: config.reconfig_enabled,
        },
        election,
    })
}

/// `dir` made absolute against the working directory. glommio's `Directory::open` (the
/// log's directory fsync) opens a relative path against no directory (`openat` with fd
/// -1), so a relative `dataDir`, such as the embedded default config's `./data`, failed
/// the first log sync with `EBADF`. Unchanged if the working directory cannot be read (the
/// open then fails and names the path).
pub fn absolute(dir: &std::path::Path) -> PathBuf {
    std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_diff_is_bounded_by_the_outbox_and_by_the_log_kept_in_memory() {
        let outbox_half = crate::server::peers::OUTBOX_BYTES_HARD_MAX / 2;
        assert_eq!(
            diff_bytes_max(1 << 20),
            outbox_half,
            "1 GiB: the outbox binds"
        );
        assert_eq!(diff_bytes_max(262_144), 256 << 20);
        assert_eq!(diff_bytes_max(u64::MAX), outbox_half, "no overflow");
    }
}
