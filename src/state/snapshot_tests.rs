use super::*;
use crate::state::tests::{argv, int, Harness};

/// `ks`'s entries as versions 5 and 6 stored them, in key order.
fn v6_entries(ks: &Keyspace) -> Vec<(Key, EntryV6)> {
    let mut entries: Vec<(Key, EntryV6)> = ks
        .replicated
        .entries
        .iter()
        .map(|(key, entry)| {
            let value = match &entry.value {
                Value::Str(s) => ValueV6::Str(s.clone()),
                Value::Lock(lock) => ValueV6::Lock(lock.into()),
                Value::Hash(hash) => ValueV6::Hash(hash.clone()),
                Value::Zset(zset) => ValueV6::Zset(zset.clone()),
                Value::List(list) => ValueV6::List((**list).clone()),
                Value::Set(_) => unreachable!("versions 5 and 6 had no sets"),
            };
            let entry = EntryV6 {
                value,
                deadline: entry.deadline,
                token: entry.token,
                revision: entry.revision,
            };
            (key.clone(), entry)
        })
        .collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn encode_old<M: Serialize>(version: u8, meta: M, ks: &Keyspace) -> Vec<u8> {
    let scripts: Vec<(&String, &StoredScript)> = Vec::new();
    let mut bytes = vec![version];
    codec()
        .serialize_into(&mut bytes, &(meta, v6_entries(ks), scripts))
        .unwrap();
    bytes
}

#[test]
fn a_version_5_snapshot_reads_with_no_wall_offset() {
    let mut h = Harness::new();
    h.write("set k v px 5000");
    h.write("lock res owner 60000");
    let ks = &h.ks;
    let meta = MetaV5 {
        fence_counter: ks.replicated.fence_counter,
        last_now_ms: ks.replicated.last_now_ms,
        revision_counter: ks.replicated.revision_counter,
        removals: ks.replicated.removals.clone(),
        expiry_hold: ks.replicated.hold,
    };
    let bytes = encode_old(SNAPSHOT_VERSION_WITHOUT_WALL_OFFSET, meta, ks);
    let restored = Keyspace::from_snapshot(&bytes).unwrap();
    assert_eq!(restored.wall_offset_ms(), 0);
    assert_eq!(restored.to_snapshot(), h.ks.to_snapshot());
    assert_eq!(
        restored.query(h.now_ms, &argv("pexpiretime k")),
        int(h.now_ms as i64 + 5000)
    );
}

/// Holds, waits and an unconfirmed upgrade written by version 6 (before sessions)
/// read back as they were, with no session: detached, and never reclaimed.
#[test]
fn a_version_6_snapshot_reads_with_no_sessions() {
    let mut h = Harness::new();
    for line in [
        "set k v px 5000",
        "rlock up a 60000",
        "rlock up b 60000",
        "lock up a 60000 wait 0",
        "lock up c 60000 wait 0",
        "unlock up b",
        "lock q x 60000",
        "lock q y 1000 wait 500",
    ] {
        h.write(line);
    }
    let ks = &h.ks;
    let meta = MetaV6 {
        fence_counter: ks.replicated.fence_counter,
        last_now_ms: ks.replicated.last_now_ms,
        revision_counter: ks.replicated.revision_counter,
        removals: ks.replicated.removals.clone(),
        expiry_hold: ks.replicated.hold,
        wall_offset_ms: 1234,
    };
    let bytes = encode_old(SNAPSHOT_VERSION_WITHOUT_SESSIONS, meta, ks);
    let mut restored = Harness {
        ks: Keyspace::from_snapshot(&bytes).unwrap(),
        now_ms: h.now_ms,
    };
    restored.ks.assert_consistent();
    assert_eq!(restored.ks.wall_offset_ms(), 1234);
    assert!(restored.ks.open_sessions().to_sorted().is_empty());
    // Nothing here had a session: the state is the same, bar the offset.
    h.ks.replicated.wall_offset_ms = 1234;
    assert_eq!(restored.ks.to_snapshot(), h.ks.to_snapshot());
    for r in ["up", "q"] {
        let line = format!("lockinfo {r}");
        assert_eq!(restored.read(&line), h.read(&line));
    }
    // The unconfirmed upgrade is still given back as the shared hold it was.
    assert_eq!(restored.write("lockcancel up a"), int(1));
    assert_eq!(h.write("lockcancel up a"), int(1));
    assert_eq!(restored.read("lockinfo up"), h.read("lockinfo up"));
    // A new term reclaims none of them: they have no session timeout to go by.
    restored.ks.apply_batch(&crate::state::Batch {
        now_ms: restored.now_ms,
        ops: vec![crate::state::hold::epoch_op(9, 9, 0)],
    });
    assert_eq!(restored.ks.next_deadline_ms(), h.ks.next_deadline_ms());
}

/// `Value` as version 7 had it before sets, variant for variant.
#[derive(Serialize)]
enum ValueBeforeSets<'a> {
    Str(&'a Bytes),
    Lock(&'a crate::state::locks::Lock),
    Hash(&'a hashes::Hash),
    Zset(&'a sorted_set::SortedSet),
    List(&'a VecDeque<Bytes>),
}

#[derive(Serialize)]
struct EntryBeforeSets<'a> {
    value: ValueBeforeSets<'a>,
    deadline: Option<NonZeroU64>,
    token: u64,
    revision: u64,
}

/// A version 7 snapshot written before sets existed (the enum without its last variant)
/// has the same bytes as today's encoding of the same state, and reads back whole.
#[test]
fn a_version_7_snapshot_from_before_sets_still_loads() {
    let mut h = Harness::new();
    for line in [
        "set s v px 5000",
        "hset h f 1",
        "zadd z 1.5 m",
        "rpush l a b",
        "lock res owner 60000",
    ] {
        h.write(line);
    }
    let ks = &h.ks;
    let mut entries: Vec<(&Key, EntryBeforeSets)> = ks
        .replicated
        .entries
        .iter()
        .map(|(key, entry)| {
            let value = match &entry.value {
                Value::Str(s) => ValueBeforeSets::Str(s),
                Value::Lock(lock) => ValueBeforeSets::Lock(lock),
                Value::Hash(hash) => ValueBeforeSets::Hash(hash),
                Value::Zset(zset) => ValueBeforeSets::Zset(zset),
                Value::List(list) => ValueBeforeSets::List(list),
                Value::Set(_) => unreachable!("no sets here"),
            };
            let entry = EntryBeforeSets {
                value,
                deadline: entry.deadline,
                token: entry.token,
                revision: entry.revision,
            };
            (key, entry)
        })
        .collect();
    entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let scripts: Vec<(&String, &StoredScript)> = Vec::new();
    let mut before_sets = vec![SNAPSHOT_VERSION_WITHOUT_ACL];
    codec()
        .serialize_into(&mut before_sets, &(ks.meta(), entries, scripts))
        .unwrap();
    let restored = Keyspace::from_snapshot(&before_sets).unwrap();
    restored.assert_consistent();
    // Version 7 has no users: it reads as the same state with none, written as 8.
    assert_eq!(restored.to_snapshot(), ks.to_snapshot());
    assert_eq!(
        restored.query(h.now_ms, &argv("lrange l 0 -1")),
        h.read("lrange l 0 -1")
    );
}

/// A snapshot from a later format (a newer raftlock, then a downgrade) is refused with
/// its version, never decoded as this format.
#[test]
fn a_snapshot_of_a_later_format_is_refused_not_misread() {
    let mut h = Harness::new();
    h.write("set k v");
    let mut bytes = h.ks.to_snapshot();
    bytes[0] = SNAPSHOT_VERSION + 1;
    let Err(err) = Keyspace::from_snapshot(&bytes) else {
        panic!("a snapshot of a later format was read");
    };
    assert!(matches!(err, StateError::UnsupportedVersion(v) if v == SNAPSHOT_VERSION + 1));
    assert!(err.to_string().contains("unsupported state format version"));
}

#[test]
fn a_length_prefix_larger_than_the_snapshot_is_refused_without_allocating_it() {
    // Found by the snapshot_decode fuzzer: a user line in format 8's ACL part whose
    // length says more than the snapshot holds.
    let bytes: &[u8] = &[
        8, 108, 39, 0, 0, 0, 3, 3, 160, 0, 0, 0, 0, 253, 253, 1, 253, 1, 0, 10, 253, 253, 253, 253,
        253, 253, 253, 253, 253, 1, 1, 0, 3, 0, 2, 0, 1, 13, 1, 114, 73, 6, 108, 0, 9, 1, 253, 114,
        0, 200, 202, 159, 23, 3, 0, 0, 6, 2, 9, 1, 253, 206, 184, 160, 14, 255, 255, 206, 184, 160,
        14, 255, 255, 255, 255, 9, 0, 1, 251, 72, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 255, 255,
        255, 246, 0, 0, 0, 0, 0, 0, 255, 255, 122, 9, 0, 1, 251, 72, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
        0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 4, 123, 23, 0, 46, 204, 1, 1, 102, 1, 118,
        0, 132, 1, 102, 197, 0, 0, 132, 0, 0, 100, 110, 0, 0, 100, 110,
    ];
    assert!(Keyspace::from_snapshot(bytes).is_err());
}
