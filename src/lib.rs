//! Corral: a ZooKeeper-compatible coordination server on a thread-per-core io_uring runtime.
//!
//! See `docs/ARCHITECTURE.md` for the map. In one paragraph: shard executors own client
//! connections and serve reads from their replica of the data tree; one ZAB executor
//! validates writes into idempotent transactions, orders them by zxid and delivers the
//! committed stream to every shard, which applies it, fires watches and answers the writer.

pub mod cli;
pub mod client;
pub mod config;
pub mod jute;
pub mod metrics;
pub mod proto;
pub mod quorum;
pub mod runtime;
pub mod server;
pub mod session;
pub mod shard;
pub mod storage;
pub mod tls;
pub mod tree;
pub mod util;
pub mod zab;
