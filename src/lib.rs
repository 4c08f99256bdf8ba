//! raftlock: a lock server that speaks the Redis protocol, every write a Raft entry.

pub(crate) mod args;
pub mod bench;
pub mod cli;
pub mod command;
pub mod config;
pub mod config_file;
pub(crate) mod fnv;
#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;
pub(crate) mod memory;
pub(crate) mod metrics;
pub(crate) mod raft;
pub mod reply;
pub mod resp;
pub mod server;
pub mod state;
