//! Locks as a data type: who holds a lock (`holders`), who waits for it (`queue`), the
//! rules of one lock (`lock`) and what it does as client sessions end and come back
//! (`sessions`), the commands that use them (`commands`), the timers that end leases and
//! waits (`timers`), what the metrics and live page show of them (`overview`), the lock as snapshot format 6 stored it (`snapshot_v6`), and this
//! node's count of what its applies did to locks, for its metrics (`tally`).

pub mod commands;
mod holders;
pub mod lock;
pub(crate) mod overview;
mod queue;
mod sessions;
pub(crate) mod snapshot_v6;
mod tally;
pub(crate) mod timers;

pub use commands::LockArgs;
pub use holders::LockMode;
pub use lock::{Acquire, Effects, Lock, LockEvent, NotOwner, Request};
pub use queue::Queue;
pub use tally::Tally;
