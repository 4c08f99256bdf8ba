//! Where every piece of Raft state lives in the shared fjall database.
//!
//! Two keyspaces serve every group of the process; each key starts with the group id
//! (u64 big-endian) so that a group's keys are one contiguous, prefix-scannable range.
//!
//! - `raft_log`:   `group | index` (both big-endian) -> bincode `Entry`, so key order is
//!   log order.
//! - `raft_state`: `group | tag | suffix` -> the small records below and the state
//!   machine's data keys (`DATA`, suffixed by the keyspace's own key) and its scripts
//!   (`SCRIPT`, suffixed by the script's sha1 hex).

use super::GroupId;

pub(super) const LOG_KEYSPACE: &str = "raft_log";
pub(super) const STATE_KEYSPACE: &str = "raft_state";

/// Tags of `raft_state` records: the log store's...
pub(super) const VOTE: u8 = b'v';
pub(super) const COMMITTED: u8 = b'c';
pub(super) const LAST_PURGED: u8 = b'p';
/// ...and the state machine store's.
pub(super) const APPLIED: u8 = b'a';
pub(super) const KEYSPACE_META: u8 = b'm';
pub(super) const SNAPSHOT: u8 = b's';
pub(super) const DATA: u8 = b'd';
pub(super) const SCRIPT: u8 = b'l';

const GROUP_BYTES: usize = 8;
const LOG_KEY_BYTES: usize = GROUP_BYTES + 8;
/// Length of `group | DATA`, the part of a data key before the keyspace's own key.
pub(super) const DATA_PREFIX_BYTES: usize = GROUP_BYTES + 1;

pub(super) fn group_prefix(group: GroupId) -> [u8; GROUP_BYTES] {
    group.to_be_bytes()
}

pub(super) fn log_key(group: GroupId, index: u64) -> [u8; LOG_KEY_BYTES] {
    let mut key = [0; LOG_KEY_BYTES];
    key[..GROUP_BYTES].copy_from_slice(&group.to_be_bytes());
    key[GROUP_BYTES..].copy_from_slice(&index.to_be_bytes());
    key
}

/// `group | tag`: the key of a record, or the prefix of all data keys for `DATA`.
pub(super) fn record_key(group: GroupId, tag: u8) -> [u8; GROUP_BYTES + 1] {
    let mut key = [0; GROUP_BYTES + 1];
    key[..GROUP_BYTES].copy_from_slice(&group.to_be_bytes());
    key[GROUP_BYTES] = tag;
    key
}

pub(super) fn data_key(group: GroupId, user_key: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(DATA_PREFIX_BYTES + user_key.len());
    key.extend_from_slice(&record_key(group, DATA));
    key.extend_from_slice(user_key);
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

    #[test]
    fn data_keys_of_a_group_share_one_prefix() {
        let key = data_key(3, b"lock:a");
        assert!(key.starts_with(&record_key(3, DATA)));
        assert_eq!(&key[DATA_PREFIX_BYTES..], b"lock:a");
        assert!(!data_key(4, b"lock:a").starts_with(&record_key(3, DATA)));
    }
}
