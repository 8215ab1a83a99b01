//! Corral: a ZooKeeper-compatible coordination server.

pub mod config;
