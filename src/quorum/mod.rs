//! Replication between Corral servers (sans-IO): the quorum wire, leader election, and ZAB's
//! discovery, synchronisation and broadcast.
//!
//! - [`wire`]: the server-to-server frame (magic, version, type, length, crc32c) and every
//!   message ZAB needs between peers, with an incremental [`wire::Decoder`].
//! - [`election`]: fast leader election as a state machine (ZooKeeper's
//!   `FastLeaderElection`): notifications and the current time in, sends and a decision out.
//! - [`peer`]: the roles after a decision, [`peer::Leader`] and [`peer::Learner`] (follower
//!   or observer), as ZooKeeper's Zab 1.0: epochs, DIFF / TRUNC / SNAP, pipelined
//!   PROPOSAL / ACK / COMMIT, INFORM; messages, fsync completions and ticks in, sends, log
//!   writes, epoch writes and committed records out.
//!
//! Nothing here opens sockets, reads clocks or draws random numbers; the runtime
//! (`server::replicated`, over `server::peers`) carries frames between peers and calls `tick` when [`election::Election::poll_timeout`]
//! says so. The simulations ([`election_sim`], [`cluster_sim`]) drive them on a fake clock,
//! network and disk, in `cargo test` and in `corral sim`; see `docs/replication.md`.

pub mod cluster_sim;
pub mod election;
pub mod election_sim;
pub mod peer;
mod sim_rng;
pub mod wire;

#[cfg(test)]
mod wire_tests;

/// A server id: N of a `server.N` line (1..=255; 0 is never a member and marks "no vote").
pub type ServerId = u64;
