//! Corral: a ZooKeeper-compatible coordination server.
