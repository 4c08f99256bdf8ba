//! The work left to do, shared by a workload's clients: a number of ops or a deadline.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// The work left to do: a number of ops to hand out, or a deadline.
pub struct Budget {
    remaining: AtomicU64,
    deadline: Option<Instant>,
    /// Ops finished so far, for the progress line.
    done: AtomicU64,
}

impl Budget {
    pub fn requests(n: u64) -> Budget {
        Budget {
            remaining: AtomicU64::new(n),
            deadline: None,
            done: AtomicU64::new(0),
        }
    }

    pub fn until(deadline: Instant) -> Budget {
        Budget {
            remaining: AtomicU64::new(0),
            deadline: Some(deadline),
            done: AtomicU64::new(0),
        }
    }

    /// How many of `want` ops a client may start now (0: stop).
    pub fn claim(&self, want: u64) -> u64 {
        if let Some(deadline) = self.deadline {
            return if Instant::now() < deadline { want } else { 0 };
        }
        match self
            .remaining
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |left| {
                (left > 0).then(|| left - left.min(want))
            }) {
            Ok(left) => left.min(want),
            Err(_) => 0,
        }
    }

    /// A deadline has passed: a client still retrying gives up.
    pub fn expired(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    pub fn finished(&self, ops: u64) {
        self.done.fetch_add(ops, Ordering::Relaxed);
    }

    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_request_budget_hands_out_exactly_n_ops() {
        let budget = Budget::requests(10);
        assert_eq!(budget.claim(4), 4);
        assert_eq!(budget.claim(4), 4);
        assert_eq!(budget.claim(4), 2);
        assert_eq!(budget.claim(4), 0);
        assert!(!budget.expired());
    }

    #[test]
    fn a_deadline_budget_stops_when_it_passes() {
        let budget = Budget::until(Instant::now() + Duration::from_secs(60));
        assert_eq!(budget.claim(16), 16);
        assert!(!budget.expired());
        let past = Budget::until(Instant::now() - Duration::from_millis(1));
        assert_eq!(past.claim(16), 0);
        assert!(past.expired());
    }
}
