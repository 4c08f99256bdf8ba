//! Cluster time: the clock every entry is stamped with (README, "Guarantees": leases count monotonic time).
//!
//! An entry's time is the previous entry's time plus the leader's monotonic time elapsed
//! since then, so a lease lasts at least its ttl by any monotonic clock: nothing here
//! reads a wall clock after the log's first entry, and no two machines' clocks are
//! compared. A new leader anchors at the time of the last entry it has applied: the time
//! that passed without a leader (or after the old leader's last entry) does not count,
//! which can only make a lease end late. The leader's wall clock travels separately, to
//! translate Unix times for clients (`state::wall`).
//!
//! Every time the server uses comes from here: the cluster clock (entries and reads,
//! `Node::clock_ms`, `Node::read_time_ms`) and the wall clock (`wall_clock_ms`,
//! `wall_clock_us`).

use std::sync::Mutex;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use super::Node;
use crate::state::Keyspace;

/// Microseconds since the Unix epoch by this node's wall clock (0 before the epoch).
pub fn wall_clock_us() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch by this node's wall clock. Used only to start a new
/// log's cluster time, to tell the state how Unix times map onto cluster time, and for
/// what clients ask of the wall clock itself (TIME, run ids).
pub fn wall_clock_ms() -> u64 {
    (wall_clock_us() / 1000) as u64
}

impl Node {
    /// This node's cluster clock now: the leader's clock, never behind the last applied
    /// entry (on a node that does not lead, that entry's time).
    pub(super) fn clock_ms(&self, ks: &Keyspace) -> u64 {
        self.clock.read_ms(self.group.term(), ks.last_now_ms())
    }

    /// The cluster time a read of `ks` runs at: the clock, but short of the next deadline
    /// no committed entry has passed yet. A key, lease or wait then ends for readers
    /// exactly when an entry ends it, so no read ever sees an end that a crash could undo
    /// (a restarted or new leader continues from the last entry's time): nothing read as
    /// gone comes back. The leader commits that entry as the deadline passes
    /// (`leadership::expiry_tick`), so reads see it at most a commit later.
    pub(super) fn read_time_ms(&self, ks: &Keyspace) -> u64 {
        let now_ms = self.clock_ms(ks);
        match ks.next_deadline_ms() {
            Some(due) if due <= now_ms => due.saturating_sub(1).max(ks.last_now_ms()),
            _ => now_ms,
        }
    }
}

/// A leader's point of reference: cluster time `cluster_ms` at monotonic instant `at`,
/// taken in Raft term `term`.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    term: u64,
    cluster_ms: u64,
    at: Instant,
}

impl Anchor {
    /// Cluster time at `now`. Whole milliseconds elapsed, rounded down: cluster time never
    /// runs faster than the monotonic clock.
    fn at(&self, now: Instant) -> u64 {
        let elapsed = now.saturating_duration_since(self.at).as_millis();
        self.cluster_ms
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }

    /// Cluster time at `now`, given that an entry stamped `applied_ms` was applied: an
    /// applied entry with a later time (stamped by an earlier leader, committed in this
    /// term) moves the anchor up to it. It was stamped before now, so following it keeps
    /// cluster time behind real time.
    fn advance(&mut self, applied_ms: u64, now: Instant) -> u64 {
        let ms = self.at(now);
        if ms >= applied_ms {
            return ms;
        }
        self.cluster_ms = applied_ms;
        self.at = now;
        applied_ms
    }
}

/// This node's cluster clock; only a leader advances it.
#[derive(Debug, Default)]
pub struct ClusterClock {
    anchor: Mutex<Option<Anchor>>,
}

impl ClusterClock {
    /// The time the leader of `term` stamps on an entry now; `applied_ms` is the time of
    /// the last entry this node applied.
    ///
    /// In a term it has not stamped before, the leader starts from `applied_ms` (or, for
    /// a log with no entry yet, from its wall clock, so cluster time starts near Unix
    /// time): the caller must have applied every entry of earlier terms first. Later
    /// entries in the term add the monotonic time elapsed since (`Anchor::advance`).
    pub fn stamp_ms(&self, term: u64, applied_ms: u64) -> u64 {
        self.stamp_at(term, applied_ms, Instant::now(), wall_clock_ms)
    }

    fn stamp_at(
        &self,
        term: u64,
        applied_ms: u64,
        now: Instant,
        wall_ms: impl FnOnce() -> u64,
    ) -> u64 {
        let mut anchor = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        match anchor.as_mut() {
            Some(current) if current.term == term => current.advance(applied_ms, now),
            _ => {
                let start = if applied_ms == 0 {
                    wall_ms()
                } else {
                    applied_ms
                };
                *anchor = Some(Anchor {
                    term,
                    cluster_ms: start,
                    at: now,
                });
                start
            }
        }
    }

    /// Whether this node has stamped an entry in `term` (it leads in it).
    pub fn anchored_in(&self, term: u64) -> bool {
        let anchor = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        anchor.is_some_and(|current| current.term == term)
    }

    /// The time a read runs at on the leader of `term`: its clock if it has stamped an
    /// entry in this term, never below `applied_ms`; on any other node, `applied_ms`.
    pub fn read_ms(&self, term: u64, applied_ms: u64) -> u64 {
        self.read_at(term, applied_ms, Instant::now())
    }

    fn read_at(&self, term: u64, applied_ms: u64, now: Instant) -> u64 {
        let mut anchor = self.anchor.lock().unwrap_or_else(|e| e.into_inner());
        match anchor.as_mut() {
            Some(current) if current.term == term => current.advance(applied_ms, now),
            _ => applied_ms,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn no_wall_clock() -> u64 {
        panic!("the wall clock is read only for a log with no entry")
    }

    #[test]
    fn a_new_log_starts_at_the_wall_clock_then_advances_by_monotonic_time() {
        let clock = ClusterClock::default();
        let t0 = Instant::now();
        assert_eq!(clock.stamp_at(1, 0, t0, || 1_000_000), 1_000_000);
        let later = t0 + Duration::from_millis(250);
        assert_eq!(
            clock.stamp_at(1, 1_000_000, later, no_wall_clock),
            1_000_250
        );
        assert_eq!(clock.read_at(1, 1_000_000, later), 1_000_250);
    }

    #[test]
    fn a_new_term_continues_from_the_last_applied_entry_not_from_elapsed_time() {
        let clock = ClusterClock::default();
        let t0 = Instant::now();
        clock.stamp_at(1, 5_000, t0, no_wall_clock);
        // Ten seconds later this node leads again in term 3; the last entry it applied
        // was stamped at 6_000. The ten seconds do not count.
        let later = t0 + Duration::from_secs(10);
        assert_eq!(clock.stamp_at(3, 6_000, later, no_wall_clock), 6_000);
        assert_eq!(
            clock.stamp_at(3, 6_000, later + Duration::from_millis(7), no_wall_clock),
            6_007
        );
    }

    #[test]
    fn a_later_applied_time_moves_the_anchor_up() {
        let clock = ClusterClock::default();
        let t0 = Instant::now();
        clock.stamp_at(2, 1_000, t0, no_wall_clock);
        // An entry of an earlier leader, stamped 9_000, was committed in this term.
        assert_eq!(
            clock.stamp_at(2, 9_000, t0 + Duration::from_millis(1), no_wall_clock),
            9_000
        );
        assert_eq!(
            clock.stamp_at(2, 9_000, t0 + Duration::from_millis(11), no_wall_clock),
            9_010
        );
    }

    #[test]
    fn reads_on_a_node_that_has_not_stamped_in_this_term_use_the_applied_time() {
        let clock = ClusterClock::default();
        let t0 = Instant::now();
        assert_eq!(clock.read_at(1, 700, t0), 700);
        clock.stamp_at(1, 700, t0, no_wall_clock);
        // A follower in term 2 never runs its own clock ahead.
        assert_eq!(clock.read_at(2, 800, t0 + Duration::from_secs(5)), 800);
    }

    #[test]
    fn time_never_goes_back_within_a_term() {
        let clock = ClusterClock::default();
        let t0 = Instant::now();
        let mut last = 0u64;
        for step in 0..100u64 {
            let now = t0 + Duration::from_micros(step * 370);
            let stamped = clock.stamp_at(4, last.saturating_sub(3), now, || 10);
            assert!(stamped >= last);
            last = stamped;
        }
    }
}
