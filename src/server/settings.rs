//! The settings one server node runs with, derived from its zoo.cfg by
//! [`Settings::from_config`]. Executors share them read-only through an `Arc`.

use crate::config::{Config, Pinning};
use crate::runtime::CorePin;
use crate::zab::prep::PrepConfig;
use bytes::Bytes;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Settings {
    pub client_addr: SocketAddr,
    pub server_id: u8,
    /// Placement of each shard executor (its length is the shard count).
    pub shard_pins: Vec<CorePin>,
    pub zab_pin: CorePin,
    pub io_memory_bytes: usize,
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
    /// Per client IP; 0 = unlimited.
    pub max_client_cnxns: usize,
    /// Most requests one connection may have outstanding before its reads pause.
    pub outstanding_per_conn_max: usize,
    pub data_dir: PathBuf,
    pub data_log_dir: PathBuf,
    /// Data of /zookeeper/config (empty in standalone mode).
    pub config_node_data: Bytes,
    pub mode_name: &'static str,
    /// The zoo.cfg this server runs (for `conf`).
    pub config: Arc<Config>,
}

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
    #[error("{file}: server.N lines describe a replicated ensemble, and replication is not implemented yet; remove them to run standalone")]
    QuorumNotSupported { file: String },
}

impl Settings {
    /// The settings a zoo.cfg asks for.
    pub fn from_config(config: Config) -> Result<Settings, SettingsError> {
        let file = config
            .source
            .as_ref()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|| "embedded default config".to_string());
        if !config.is_standalone() {
            return Err(SettingsError::QuorumNotSupported { file });
        }
        let client_addr = match config.client_socket_addr() {
            Ok(Some(addr)) => addr,
            Ok(None) => return Err(SettingsError::NoClientPort { file }),
            Err(source) => return Err(SettingsError::ClientAddress { file, source }),
        };
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
            server_id: config.server_id.unwrap_or(1).clamp(1, 255) as u8,
            shard_pins,
            zab_pin,
            io_memory_bytes: config.corral.io_memory_kb as usize * 1024,
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
            outstanding_per_conn_max: (config.global_outstanding_limit as usize).max(1),
            data_dir: config.data_dir.clone(),
            data_log_dir: config.data_log_dir.clone(),
            config_node_data: Bytes::from(config.config_node_data()),
            mode_name: "standalone",
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
