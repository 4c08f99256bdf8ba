//! `maxmemory` with Redis's `noeviction` policy: while the node's resident memory is over
//! the limit, commands Redis marks `denyoom` (SET, LPUSH, HSET, ...) are refused with
//! Redis's `-OOM` error before they are proposed, and everything else goes on: reads,
//! DEL and the other commands that free memory, and raftlock's lock commands, so a holder
//! can always renew and release. Nothing is ever evicted. Memory is measured on a task of
//! its own (`memory_limits::CHECK_INTERVAL_MS`), not per write.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use crate::command;
use crate::config::memory_limits::CHECK_INTERVAL_MS;
use crate::reply::Reply;

/// Redis's words.
pub(super) const OOM: &str = "OOM command not allowed when used memory > 'maxmemory'.";

#[derive(Debug, Default)]
pub struct MemoryGuard {
    /// The limit in bytes; 0: none (CONFIG SET changes it).
    max_bytes: AtomicU64,
    over: AtomicBool,
}

impl MemoryGuard {
    /// Measures now, then every `CHECK_INTERVAL_MS` while the guard is in use.
    pub fn start(max_bytes: u64) -> Arc<MemoryGuard> {
        let guard = Arc::new(MemoryGuard {
            max_bytes: AtomicU64::new(max_bytes),
            over: AtomicBool::new(false),
        });
        guard.measure();
        super::disk::measure_every(
            &guard,
            Duration::from_millis(CHECK_INTERVAL_MS),
            MemoryGuard::measure,
        );
        guard
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes.load(Ordering::Relaxed)
    }

    /// CONFIG SET maxmemory: in effect at once.
    pub fn set_max_bytes(&self, bytes: u64) {
        self.max_bytes.store(bytes, Ordering::Relaxed);
        self.measure();
    }

    fn measure(&self) {
        let max = self.max_bytes();
        let over = max > 0 && crate::memory::resident_bytes() > max;
        let was = self.over.swap(over, Ordering::Relaxed);
        if over && !was {
            tracing::warn!(
                maxmemory = max,
                "used memory is over maxmemory: commands that add data are refused (OOM)"
            );
        }
    }

    /// The refusal of `argv`, if memory is over the limit and the command adds data.
    pub fn refusal(&self, argv: &[Bytes]) -> Option<Reply> {
        if !self.over.load(Ordering::Relaxed) {
            return None;
        }
        let denied = argv
            .first()
            .and_then(|name| command::lookup(name))
            .is_some_and(|spec| spec.has_flag("denyoom"));
        denied.then(|| Reply::error(OOM))
    }
}
