//! Locks as a data type: one lock's rules (`lock`), the commands that use them
//! (`commands`), and the timers that end leases and waits (`timers`).

pub mod commands;
pub mod lock;
pub(crate) mod timers;

pub use commands::LockArgs;
pub(crate) use lock::v6;
pub use lock::{Acquire, Effects, Lock, LockEvent, LockMode};
