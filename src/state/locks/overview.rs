//! What the node's metrics and live page show of the locks: the waiters queued, the
//! longest queue, and the busiest locks with their holders and waiters. A read of the
//! keyspace that looks at a bounded number of locks, so a scrape never holds apply up
//! for long.

use serde::Serialize;

use super::Lock;
use crate::state::{Keyspace, Value};

/// One lock as the live page shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LockView {
    pub resource: String,
    /// `EX`, `PR`, or `none` (only waiters).
    pub mode: &'static str,
    pub holders: Vec<HolderView>,
    /// The first waiters in queue order (at most `waiters_shown`).
    pub waiters: Vec<WaiterView>,
    pub waiting: usize,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HolderView {
    pub owner: String,
    pub mode: &'static str,
    pub token: u64,
    /// Lease left, in ms of cluster time.
    pub ttl_ms: u64,
    pub count: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WaiterView {
    pub owner: String,
    pub mode: &'static str,
}

/// The locks looked at, summed, and the busiest of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct LockOverview {
    /// Requests queued, over the locks with waiters looked at.
    pub waiters: usize,
    pub longest_queue: usize,
    /// Whether some locks were left out (more than the scan bound).
    pub partial: bool,
    pub busiest: Vec<LockView>,
}

impl Keyspace {
    /// The locks with waiters, then the held ones, at most `scan` in all, as of `now_ms`;
    /// the `top` busiest (most waiters, then most holders, then by name) in detail.
    pub fn lock_overview(
        &self,
        now_ms: u64,
        scan: usize,
        top: usize,
        waiters_shown: usize,
    ) -> LockOverview {
        let now_ms = now_ms.max(self.replicated.last_now_ms);
        let mut overview = LockOverview::default();
        let queued = self.replicated.queued.iter().map(|key| &key[..]);
        let held = self
            .replicated
            .lock_timers
            .slots()
            .filter_map(|slot| self.replicated.entries.get_index(slot))
            .map(|(key, _)| &key[..])
            .filter(|key| !self.replicated.queued.contains(*key));
        let hold = self.replicated.hold;
        let mut candidates: Vec<(usize, usize, &[u8], &Lock)> = Vec::new();
        for (seen, key) in queued.chain(held).enumerate() {
            if seen == scan {
                overview.partial = true;
                break;
            }
            let Some(Value::Lock(lock)) = self.get(key, now_ms).map(|e| &e.value) else {
                continue;
            };
            let waiting = lock.queue.len();
            overview.waiters += waiting;
            overview.longest_queue = overview.longest_queue.max(waiting);
            let holding = lock
                .holders
                .iter()
                .filter(|h| hold.live(h.lease_deadline_ms, now_ms))
                .count();
            if waiting + holding > 0 {
                candidates.push((waiting, holding, key, lock));
            }
        }
        candidates.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1)).then(a.2.cmp(b.2)));
        overview.busiest = candidates
            .into_iter()
            .take(top)
            .map(|(waiting, _, key, lock)| self.view(key, lock, waiting, now_ms, waiters_shown))
            .collect();
        overview
    }

    fn view(&self, key: &[u8], lock: &Lock, waiting: usize, now_ms: u64, shown: usize) -> LockView {
        let hold = self.replicated.hold;
        let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let holders: Vec<HolderView> = lock
            .holders
            .iter()
            .filter(|h| hold.live(h.lease_deadline_ms, now_ms))
            .map(|h| HolderView {
                owner: text(&h.owner),
                mode: h.mode.name(),
                token: h.token,
                ttl_ms: h.lease_deadline_ms.saturating_sub(now_ms),
                count: h.count,
            })
            .collect();
        let mode = if holders.iter().any(|h| h.mode == "EX") {
            "EX"
        } else if holders.is_empty() {
            "none"
        } else {
            "PR"
        };
        LockView {
            resource: text(key),
            mode,
            holders,
            waiters: lock
                .queue
                .iter()
                .take(shown)
                .map(|w| WaiterView {
                    owner: text(&w.owner),
                    mode: w.mode.name(),
                })
                .collect(),
            waiting,
        }
    }

    /// Client sessions open now (holders and waiters attached to a connection).
    pub fn open_session_count(&self) -> usize {
        self.replicated.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use crate::state::tests::apply_lines as apply;
    use crate::state::Keyspace;

    #[test]
    fn the_busiest_locks_come_first_with_holders_and_waiters() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            1000,
            &[
                "lock quiet a 5000",
                "lock busy a 5000",
                "lock busy b 5000 WAIT 0",
                "lock busy c 5000 WAIT 0",
                "set plain v",
            ],
        );
        let o = ks.lock_overview(1500, 100, 10, 1);
        assert_eq!((o.waiters, o.longest_queue, o.partial), (2, 2, false));
        let names: Vec<_> = o.busiest.iter().map(|l| l.resource.as_str()).collect();
        assert_eq!(names, ["busy", "quiet"]);
        let busy = &o.busiest[0];
        assert_eq!(busy.mode, "EX");
        assert_eq!(busy.holders[0].owner, "a");
        assert_eq!(busy.holders[0].ttl_ms, 4500);
        assert_eq!(busy.waiting, 2);
        assert_eq!(busy.waiters.len(), 1, "only the first waiter is shown");
        assert_eq!(busy.waiters[0].owner, "b");

        let bounded = ks.lock_overview(1500, 1, 10, 1);
        assert!(bounded.partial);
        assert_eq!(bounded.busiest.len(), 1);
        let top = ks.lock_overview(1500, 100, 1, 1);
        assert_eq!(top.busiest.len(), 1);
    }

    #[test]
    fn expired_leases_are_not_shown() {
        let mut ks = Keyspace::new();
        apply(&mut ks, 1000, &["lock r a 100"]);
        assert_eq!(ks.lock_overview(1050, 100, 10, 5).busiest.len(), 1);
        assert!(ks.lock_overview(1200, 100, 10, 5).busiest.is_empty());
    }
}
