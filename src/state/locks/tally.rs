//! What this node's applies did to locks, for its metrics: holds granted, requests queued,
//! leases that ran out, waits that timed out, and how long each hold lasted. Node-local
//! (in the keyspace's `Runtime`): never in a snapshot, never the cause of a reply. The
//! node drains it after each apply (`Keyspace::take_lock_tally`).

use std::collections::HashMap;

use crate::config::metrics_limits::MAX_TIMED_HOLDS;

/// Counts since the last drain, and the start of every hold being timed.
#[derive(Debug, Default)]
pub struct Tally {
    pub grants: u64,
    pub waits: u64,
    pub lease_expiries: u64,
    pub wait_timeouts: u64,
    /// How long each hold that ended lasted, in ms of cluster time.
    pub hold_ms: Vec<u64>,
    /// The cluster time each current hold began, by its fencing token (unique per grant).
    /// Holds granted before this keyspace was loaded (a restart, a snapshot installed) are
    /// not in it, and so not timed.
    started_ms: HashMap<u64, u64>,
}

impl Tally {
    /// A hold was granted (a new holder, or a shared hold upgraded with a new token).
    pub(crate) fn granted(&mut self, token: u64, now_ms: u64) {
        self.grants += 1;
        if self.started_ms.len() < MAX_TIMED_HOLDS {
            self.started_ms.insert(token, now_ms);
        }
    }

    /// A reentrant hold: counted, but the hold began with its first grant.
    pub(crate) fn granted_again(&mut self) {
        self.grants += 1;
    }

    /// An upgrade gave the hold of `old` the token `new`; it began when `old` did.
    pub(crate) fn retoken(&mut self, old: u64, new: u64, now_ms: u64) {
        self.grants += 1;
        let began = self.started_ms.remove(&old).unwrap_or(now_ms);
        if self.started_ms.len() < MAX_TIMED_HOLDS {
            self.started_ms.insert(new, began);
        }
    }

    /// The hold with `token` ended (released, expired, deleted or given back).
    pub(crate) fn ended(&mut self, token: u64, now_ms: u64) {
        if let Some(began) = self.started_ms.remove(&token) {
            self.hold_ms.push(now_ms.saturating_sub(began));
        }
    }

    /// The hold with `token` ran out of lease.
    pub(crate) fn expired(&mut self, token: u64, now_ms: u64) {
        self.lease_expiries += 1;
        self.ended(token, now_ms);
    }

    /// Takes the counts and durations since the last call; the running holds stay.
    pub fn take(&mut self) -> Tally {
        Tally {
            grants: std::mem::take(&mut self.grants),
            waits: std::mem::take(&mut self.waits),
            lease_expiries: std::mem::take(&mut self.lease_expiries),
            wait_timeouts: std::mem::take(&mut self.wait_timeouts),
            hold_ms: std::mem::take(&mut self.hold_ms),
            started_ms: HashMap::new(),
        }
    }

    /// Whether anything happened since the last `take`.
    pub fn is_empty(&self) -> bool {
        self.grants == 0
            && self.waits == 0
            && self.lease_expiries == 0
            && self.wait_timeouts == 0
            && self.hold_ms.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use crate::state::tests::apply_lines as apply;
    use crate::state::Keyspace;

    #[test]
    fn grants_waits_expiries_and_hold_times_are_counted_where_they_are_applied() {
        let mut ks = Keyspace::new();
        apply(
            &mut ks,
            1000,
            &[
                "lock r a 100",
                "lock r a 100",
                "lock r b 100 WAIT 50",
                "lock r c 1000 WAIT 0",
                "lock q x 5000",
            ],
        );
        let t = ks.take_lock_tally();
        assert_eq!((t.grants, t.waits), (3, 2), "a reentrant hold is a grant");
        assert!(t.hold_ms.is_empty());
        // b's wait ends at 1050; a's lease at 1100, and c is granted.
        apply(&mut ks, 1200, &["unlock q x"]);
        let t = ks.take_lock_tally();
        assert_eq!((t.wait_timeouts, t.lease_expiries, t.grants), (1, 1, 1));
        let mut held = t.hold_ms.clone();
        held.sort_unstable();
        assert_eq!(
            held,
            [200, 200],
            "q held by UNLOCK, r by expiry, both from 1000"
        );
        apply(&mut ks, 1500, &["unlock r c"]);
        let t = ks.take_lock_tally();
        assert_eq!(t.hold_ms, [300]);
        assert_eq!(t.lease_expiries, 0);
        assert!(ks.take_lock_tally().is_empty());
    }
}
