//! Raft: openraft type config, fjall log and state stores, network, snapshots.
