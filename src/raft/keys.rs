//! Where every piece of Raft state lives in the shared fjall database.
//!
//! Two keyspaces serve every group of the process; each key starts with the group id
//! (u64 big-endian) so that a group's keys are one contiguous, prefix-scannable range.
//!
//! - `raft_log`:   `group | index` (both big-endian) -> bincode `Entry`, so key order is
//!   log order.
//! - `raft_state`: `group | tag` -> the records below. The state machine itself lives in
//!   memory; what it keeps on disk is its latest snapshot, in a file of its own (see
//!   `state_store`), and the log after that snapshot is re-applied at start-up.

use super::GroupId;

pub(super) const LOG_KEYSPACE: &str = "raft_log";
pub(super) const STATE_KEYSPACE: &str = "raft_state";

/// Tags of `raft_state` records: the log store's...
pub(super) const VOTE: u8 = b'v';
pub(super) const COMMITTED: u8 = b'c';
pub(super) const LAST_PURGED: u8 = b'p';
/// ...and the state machine store's, read only in a data dir from before snapshot files,
/// which kept the snapshot here. (Tags `a`, `m`, `d` and `l` held the per-key state of
/// development versions that wrote every applied change; they are not reused.)
pub(super) const SNAPSHOT: u8 = b's';

/// The data dir's format version (`format`): one record for the whole dir, its key
/// longer than any `group | tag` key.
pub(super) const DATA_FORMAT: &[u8] = b"raftlock-data-format";

const GROUP_BYTES: usize = 8;
const LOG_KEY_BYTES: usize = GROUP_BYTES + 8;

pub(super) fn group_prefix(group: GroupId) -> [u8; GROUP_BYTES] {
    group.to_be_bytes()
}

pub(super) fn log_key(group: GroupId, index: u64) -> [u8; LOG_KEY_BYTES] {
    let mut key = [0; LOG_KEY_BYTES];
    key[..GROUP_BYTES].copy_from_slice(&group.to_be_bytes());
    key[GROUP_BYTES..].copy_from_slice(&index.to_be_bytes());
    key
}

/// `group | tag`: the key of a record.
pub(super) fn record_key(group: GroupId, tag: u8) -> [u8; GROUP_BYTES + 1] {
    let mut key = [0; GROUP_BYTES + 1];
    key[..GROUP_BYTES].copy_from_slice(&group.to_be_bytes());
    key[GROUP_BYTES] = tag;
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_keys_sort_by_group_then_index() {
        assert!(log_key(1, 255) < log_key(1, 256));
        assert!(log_key(1, u64::MAX) < log_key(2, 0));
        assert!(log_key(1, 7).starts_with(&group_prefix(1)));
    }
}
