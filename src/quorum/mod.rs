//! Replication between Corral servers (sans-IO): the quorum wire and leader election.
//!
//! - [`wire`]: the server-to-server frame (magic, version, type, length, crc32c) and every
//!   message ZAB needs between peers, with an incremental [`wire::Decoder`].
//! - [`election`]: fast leader election as a state machine (ZooKeeper's
//!   `FastLeaderElection`): notifications and the current time in, sends and a decision out.
//!
//! Nothing here opens sockets, reads clocks or draws random numbers; the runtime (a later
//! slice) carries frames between peers and calls `tick` when [`election::Election::poll_timeout`]
//! says so. Discovery, synchronisation and broadcast come next (`docs/replication.md`).

pub mod election;
pub mod peer;
pub mod wire;

#[cfg(test)]
mod cluster_sim;
#[cfg(test)]
mod election_sim;
#[cfg(test)]
mod wire_tests;

/// A server id: N of a `server.N` line (1..=255; 0 is never a member and marks "no vote").
pub type ServerId = u64;
