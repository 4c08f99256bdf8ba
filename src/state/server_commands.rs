//! Whole-keyspace commands.

use bytes::Bytes;

use super::{wrong_arity, Keyspace};
use crate::reply::Reply;

/// DBSIZE: keys that exist now.
pub fn dbsize(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    if argv.len() != 1 {
        return wrong_arity(argv);
    }
    Reply::Int(ks.key_count(now_ms) as i64)
}

/// FLUSHALL [ASYNC | SYNC]. There is one database, so FLUSHDB is the same command. Both
/// modes free the keys at once; the fence counter stays, so tokens are never reused.
pub fn flushall(ks: &mut Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    let known_mode = match argv {
        [_] => true,
        [_, mode] => mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async"),
        _ => false,
    };
    if !known_mode {
        return Reply::syntax_error();
    }
    ks.clear();
    Reply::Ok
}

/// FLUSHDB [ASYNC | SYNC]
pub fn flushdb(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    flushall(ks, now_ms, argv)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{bulk, err, int, Harness};
    use crate::reply::Reply;

    #[test]
    fn dbsize_counts_live_keys() {
        let mut h = Harness::new();
        assert_eq!(h.read("dbsize"), int(0));
        h.write("mset a 1 b 2");
        h.write("set c 3 px 10");
        assert_eq!(h.read("dbsize"), int(3));
        h.advance(10);
        assert_eq!(h.read("dbsize"), int(2));
    }

    #[test]
    fn flushall_and_flushdb_remove_everything_but_keep_the_counter() {
        let mut h = Harness::new();
        h.write("mset a 1 b 2");
        h.write("set c 3 ex 10");
        let token = h.token("c");
        assert_eq!(h.write("flushall"), Reply::Ok);
        assert_eq!(h.read("dbsize"), int(0));
        assert_eq!(h.ks.expires_count(), 0);
        assert_eq!(h.ks.next_deadline_ms(), None);
        h.write("set a 1");
        assert!(h.token("a") > token);
        assert_eq!(h.write("flushdb async"), Reply::Ok);
        assert_eq!(h.write("FLUSHALL SYNC"), Reply::Ok);
        assert_eq!(h.write("flushall now"), err("ERR syntax error"));
        assert_eq!(h.write("flushdb sync async"), err("ERR syntax error"));
    }

    #[test]
    fn flushall_gives_the_keyspace_memory_back() {
        let mut h = Harness::new();
        for i in 0..1000 {
            h.write(&format!("set k{i} v px 100000"));
            h.write(&format!("lock l{i} owner 100000"));
        }
        assert!(h.ks.replicated.entries.capacity() >= 2000);
        assert_eq!(h.write("flushall"), Reply::Ok);
        assert_eq!(h.ks.replicated.entries.capacity(), 0);
        assert_eq!(h.ks.replicated.lock_timers.heap_capacity(), 0);
        h.write("set a 1");
        assert_eq!(h.read("get a"), bulk("1"));
    }
}
