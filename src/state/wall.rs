//! Wall-clock time for the commands that speak it (EXPIREAT, SET PXAT, EXPIRETIME, TIME in
//! scripts), kept apart from the cluster time that leases and TTLs count in.
//!
//! An entry's time is cluster time: it advances by the leader's monotonic clock and
//! never jumps with a wall clock (README, "Guarantees": leases count monotonic time). Clients still send and ask for
//! Unix times, so the state keeps one offset, `wall - cluster`, taken from the leader's
//! wall clock: a leader whose wall clock differs from the offset by more than
//! `WALL_OFFSET_TOLERANCE_MS` puts `raftlock.wallclock WALL_MS` at the head of its next
//! entry, and every replica sets the offset from it. A wall-clock step then moves where
//! an EXPIREAT lands and what EXPIRETIME answers, as it would in Redis, but never how long
//! a lease or a PX lasts. The op name is not in the command table: only the proposer
//! writes it.

use bytes::Bytes;

use super::now_i64;
use crate::args::parse_i64;
use crate::reply::Reply;

/// The internal op that records the leader's wall clock.
pub const WALL_OP: &str = "raftlock.wallclock";

/// Whether `argv` is the internal wall-clock op.
pub fn is_wall_op(argv: &[Bytes]) -> bool {
    argv.first()
        .is_some_and(|name| name.as_ref() == WALL_OP.as_bytes())
}

/// The op a leader proposes when its wall clock reads `wall_ms`.
pub fn wall_op(wall_ms: i64) -> Vec<Bytes> {
    vec![
        Bytes::from_static(WALL_OP.as_bytes()),
        Bytes::from(wall_ms.to_string()),
    ]
}

/// The offset `wall - cluster` that `raftlock.wallclock WALL_MS` sets at cluster time
/// `now_ms`, or the error reply for a malformed op.
pub(crate) fn offset_from_op(argv: &[Bytes], now_ms: u64) -> Result<i64, Reply> {
    let [_, wall_ms] = argv else {
        return Err(Reply::wrong_arity(WALL_OP));
    };
    let wall_ms = parse_i64(wall_ms).ok_or_else(Reply::not_integer)?;
    Ok(wall_ms.saturating_sub(now_i64(now_ms)))
}

/// Whether a leader whose wall clock gives `offset_ms` should send the op, the state
/// holding `state_offset_ms`.
pub fn needs_update(offset_ms: i64, state_offset_ms: i64, tolerance_ms: u64) -> bool {
    offset_ms.abs_diff(state_offset_ms) > tolerance_ms
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::tests::{argv, int, Harness};
    use crate::state::Batch;

    /// Applies an entry at the harness's time whose leader's wall clock reads `wall_ms`.
    fn entry_with_wall(h: &mut Harness, wall_ms: i64, lines: &[&str]) -> Vec<Reply> {
        let mut ops = vec![wall_op(wall_ms)];
        ops.extend(lines.iter().map(|line| argv(line)));
        let mut replies = h.ks.apply_batch(&Batch {
            now_ms: h.now_ms,
            ops,
        });
        replies.remove(0);
        replies
    }

    #[test]
    fn pxat_is_translated_from_the_leaders_wall_clock_to_cluster_time() {
        let mut h = Harness::new();
        // The leader's wall clock reads an hour ahead of cluster time.
        let wall = h.now_ms as i64 + 3_600_000;
        let replies = entry_with_wall(&mut h, wall, &[&format!("set k v pxat {}", wall + 5_000)]);
        assert_eq!(replies, vec![Reply::Ok]);
        // Five seconds of lease in cluster time, whatever the wall clock says.
        assert_eq!(h.read("pttl k"), int(5_000));
        assert_eq!(h.read("pexpiretime k"), int(wall + 5_000));
        h.advance(5_000);
        assert_eq!(h.read("exists k"), int(0));
    }

    #[test]
    fn expireat_in_the_wall_clocks_past_removes_the_key() {
        let mut h = Harness::new();
        let wall = h.now_ms as i64 - 86_400_000;
        h.write("set k v");
        let replies = entry_with_wall(&mut h, wall, &[&format!("pexpireat k {}", wall - 1)]);
        assert_eq!(replies, vec![int(1)]);
        assert_eq!(h.read("exists k"), int(0));
    }

    #[test]
    fn a_wall_clock_step_moves_expiretime_but_not_the_remaining_ttl() {
        let mut h = Harness::new();
        let wall = h.now_ms as i64;
        entry_with_wall(&mut h, wall, &["set k v px 10000"]);
        assert_eq!(h.read("pexpiretime k"), int(wall + 10_000));
        // The leader's wall clock steps ten minutes ahead.
        entry_with_wall(&mut h, wall + 600_000, &[]);
        assert_eq!(h.read("pttl k"), int(10_000));
        assert_eq!(h.read("pexpiretime k"), int(wall + 610_000));
        assert_eq!(h.read("exists k"), int(1));
    }

    #[test]
    fn the_offset_survives_a_snapshot() {
        let mut h = Harness::new();
        let wall = h.now_ms as i64 + 42_000;
        entry_with_wall(&mut h, wall, &["set k v px 1000"]);
        let restored = crate::state::Keyspace::from_snapshot(&h.ks.to_snapshot()).unwrap();
        assert_eq!(restored.wall_offset_ms(), 42_000);
        assert_eq!(
            restored.query(h.now_ms, &argv("pexpiretime k")),
            int(wall + 1_000)
        );
    }

    #[test]
    fn a_malformed_wall_op_changes_nothing() {
        let mut h = Harness::new();
        let replies = h.ks.apply_batch(&Batch {
            now_ms: h.now_ms,
            ops: vec![vec![Bytes::from_static(WALL_OP.as_bytes())]],
        });
        assert!(matches!(&replies[0], Reply::Error(_)));
        assert_eq!(h.ks.wall_offset_ms(), 0);
    }

    #[test]
    fn needs_update_only_beyond_the_tolerance() {
        assert!(!needs_update(10, 0, 10));
        assert!(needs_update(11, 0, 10));
        assert!(needs_update(-11, 0, 10));
        assert!(!needs_update(i64::MIN, i64::MIN, 0));
    }
}
