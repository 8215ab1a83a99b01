//! The settings one server node runs with, derived from its zoo.cfg by
//! [`Settings::from_config`]. Executors share them read-only through an `Arc`.

use crate::runtime::CorePin;
use crate::zab::prep::PrepConfig;
use bytes::Bytes;
use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// `key=value` lines of the `conf` four-letter word.
    pub conf_lines: Vec<String>,
    pub mode_name: &'static str,
}

impl Settings {
    /// Settings for tests and the embedded default: one shard, unpinned, loopback.
    pub fn for_address(client_addr: SocketAddr, data_dir: PathBuf) -> Settings {
        Settings {
            client_addr,
            server_id: 1,
            shard_pins: vec![CorePin::Unpinned],
            zab_pin: CorePin::Unpinned,
            io_memory_bytes: 512 * 1024,
            tick_ms: 2000,
            min_session_timeout_ms: 4000,
            max_session_timeout_ms: 40000,
            max_frame_bytes: crate::proto::JUTE_MAX_BUFFER_DEFAULT,
            four_letter_whitelist: None,
            prep: PrepConfig::default(),
            super_digest: None,
            container_check_interval_ms: 60_000,
            container_max_per_minute: 10_000,
            container_max_never_used_interval_ms: 0,
            max_client_cnxns: 60,
            outstanding_per_conn_max: 1000,
            data_log_dir: data_dir.clone(),
            data_dir,
            config_node_data: Bytes::new(),
            conf_lines: Vec::new(),
            mode_name: "standalone",
        }
    }

    pub fn four_letter_allowed(&self, word: &str) -> bool {
        match &self.four_letter_whitelist {
            None => true,
            Some(set) => set.contains(word),
        }
    }
}
