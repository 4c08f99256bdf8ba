//! What WATCH compares: each key's revision (`Keyspace::revision`), taken from one
//! counter on every change. A key that was missing when watched has no revision to
//! compare, so the keyspace also remembers its recent removals: a key created and removed
//! again between WATCH and EXEC then still fails the EXEC, as in Redis.

use std::collections::VecDeque;

use serde::{Deserialize, Serialize};

use super::Keyspace;
use crate::config::state_limits::MAX_TRACKED_REMOVALS;

/// The most recent removals, by a fixed hash of the key, bounded. Memory and the
/// persisted meta stay small whatever the keys; a hash collision or a forgotten removal
/// can only fail an EXEC that would have run, never run one that should fail.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Removals {
    /// `(key hash, revision of the removal)`, oldest first, one per hash.
    recent: VecDeque<(u64, u64)>,
    /// Every removal not in `recent` has a revision at or below this.
    floor: u64,
}

impl Removals {
    pub fn record(&mut self, key: &[u8], revision: u64) {
        let hash = key_hash(key);
        // At most one element per hash; a scan that only reads is cheaper than `retain`,
        // which moves every element it keeps.
        if let Some(at) = self.recent.iter().position(|&(h, _)| h == hash) {
            self.recent.remove(at);
        }
        self.recent.push_back((hash, revision));
        if self.recent.len() > MAX_TRACKED_REMOVALS {
            if let Some((_, forgotten)) = self.recent.pop_front() {
                self.floor = self.floor.max(forgotten);
            }
        }
    }

    /// FLUSHALL: every key counts as removed at `revision`.
    pub fn remove_all(&mut self, revision: u64) {
        self.recent.clear();
        self.floor = revision;
    }

    /// Whether `key` may have been removed after revision `since`.
    pub fn removed_since(&self, key: &[u8], since: u64) -> bool {
        let hash = key_hash(key);
        self.floor > since
            || self
                .recent
                .iter()
                .any(|&(h, revision)| h == hash && revision > since)
    }
}

/// FNV-1a: fixed across builds and platforms, unlike std's hasher, because the hashes are
/// persisted and every replica must decide alike.
fn key_hash(key: &[u8]) -> u64 {
    crate::fnv::hash(key)
}

/// Key revisions: every change of a key takes the next revision, which WATCH compares.
impl Keyspace {
    /// Records a change of `key` (written, or removed when it is no longer there): WATCH
    /// sees a new revision.
    pub(super) fn modified(&mut self, key: &[u8]) {
        self.notice_change(key, false);
        self.replicated.revision_counter += 1;
        match self.replicated.entries.get_mut(key) {
            Some(entry) => entry.revision = self.replicated.revision_counter,
            None => self
                .replicated
                .removals
                .record(key, self.replicated.revision_counter),
        }
    }

    /// Records the removal of `key`, just taken out of the map: `modified` without looking
    /// up a key known to be gone (a mass expiry removes keys by the hundred thousand).
    pub(super) fn removed(&mut self, key: &[u8]) {
        self.replicated.revision_counter += 1;
        self.replicated
            .removals
            .record(key, self.replicated.revision_counter);
    }

    /// The revision WATCH records for `key` at `now_ms`: the live entry's, or 0 when the
    /// key does not exist. With it goes the revision counter (`revision_counter`), the
    /// point after which a removal of a missing key counts as a change.
    pub(crate) fn revision(&self, key: &[u8], now_ms: u64) -> u64 {
        self.get(key, now_ms).map_or(0, |entry| entry.revision)
    }

    /// The revision counter: every modification from now on gets a larger revision.
    pub(crate) fn revision_counter(&self) -> u64 {
        self.replicated.revision_counter
    }

    /// Whether `key` is as WATCH saw it: the same revision, or, for a key that was
    /// missing (`revision` 0), still missing and not removed since `seen_at`. Called inside
    /// apply, after the entry's expiries, so every entry present is live.
    pub(crate) fn unchanged_since(&self, key: &[u8], revision: u64, seen_at: u64) -> bool {
        match self.replicated.entries.get(key) {
            Some(entry) => entry.revision == revision,
            None => revision == 0 && !self.replicated.removals.removed_since(key, seen_at),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_recent_removal_is_seen_and_an_older_one_is_not() {
        let mut r = Removals::default();
        r.record(b"a", 5);
        assert!(r.removed_since(b"a", 4));
        assert!(!r.removed_since(b"a", 5));
        assert!(!r.removed_since(b"b", 0));
    }

    #[test]
    fn forgotten_removals_raise_the_floor_so_nothing_is_missed() {
        let mut r = Removals::default();
        for i in 0..=MAX_TRACKED_REMOVALS as u64 {
            r.record(format!("k{i}").as_bytes(), i + 1);
        }
        assert_eq!(r.recent.len(), MAX_TRACKED_REMOVALS);
        assert!(
            r.removed_since(b"k0", 0),
            "forgotten, so counted as removed"
        );
        assert!(r.removed_since(b"never", 0));
        assert!(!r.removed_since(b"never", 1));
    }

    #[test]
    fn a_key_removed_again_keeps_one_place_at_the_newest_end() {
        let mut r = Removals::default();
        r.record(b"a", 1);
        for i in 0..MAX_TRACKED_REMOVALS as u64 - 1 {
            r.record(format!("k{i}").as_bytes(), i + 2);
        }
        let again = MAX_TRACKED_REMOVALS as u64 + 1;
        r.record(b"a", again);
        assert_eq!(r.recent.len(), MAX_TRACKED_REMOVALS, "one element for a");
        assert_eq!(r.recent.back(), Some(&(key_hash(b"a"), again)));
        // One more removal forgets the oldest (k0), not a, which moved to the end.
        r.record(b"b", again + 1);
        assert_eq!(r.floor, 2);
        assert!(r.removed_since(b"a", again - 1));
        assert!(!r.removed_since(b"a", again));
    }

    #[test]
    fn remove_all_counts_every_key() {
        let mut r = Removals::default();
        r.remove_all(9);
        assert!(r.removed_since(b"x", 8));
        assert!(!r.removed_since(b"x", 9));
    }
}
