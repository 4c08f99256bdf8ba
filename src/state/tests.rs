//! A harness that drives the keyspace the way Raft does (one entry per write, reads by
//! query), and the tests of what spans commands: time, expiry, tokens, persistence.

use bytes::Bytes;

use super::{Batch, Keyspace};
use crate::reply::Reply;

/// Splits a command line on spaces (test commands need no quoting).
pub fn argv(line: &str) -> Vec<Bytes> {
    line.split_whitespace()
        .map(|word| Bytes::copy_from_slice(word.as_bytes()))
        .collect()
}

/// `line` as the node proposes it for a client connection in session `id`
/// (`NODE:TERM:CONN`) with a 5 s session timeout.
/// Applies one entry at `now_ms` whose ops are `lines` (words split on spaces).
pub fn apply_lines(ks: &mut Keyspace, now_ms: u64, lines: &[&str]) {
    let ops = lines.iter().map(|line| argv(line)).collect();
    ks.apply_batch(&Batch { now_ms, ops });
}

pub fn in_session(id: &str, line: &str) -> Vec<Bytes> {
    let session = super::session::Session {
        id: super::session::SessionId::parse(id.as_bytes()).expect("a session id"),
        timeout_ms: 5_000,
    };
    super::session::session_op(&session, argv(line))
}

pub fn bulk(text: &str) -> Reply {
    Reply::Bulk(Bytes::copy_from_slice(text.as_bytes()))
}

pub fn int(n: i64) -> Reply {
    Reply::Int(n)
}

pub fn err(text: &str) -> Reply {
    Reply::error(text)
}

pub fn bulks(texts: &[&str]) -> Reply {
    Reply::Array(texts.iter().map(|text| bulk(text)).collect())
}

/// A keyspace and the leader's clock.
pub struct Harness {
    pub ks: Keyspace,
    pub now_ms: u64,
}

impl Harness {
    pub fn new() -> Harness {
        Harness {
            ks: Keyspace::new(),
            now_ms: 1_700_000_000_000,
        }
    }

    /// One write as its own entry at the current time.
    pub fn write(&mut self, line: &str) -> Reply {
        self.write_argv(argv(line))
    }

    /// One write given as separate arguments (for arguments with spaces).
    pub fn write_args(&mut self, args: &[&str]) -> Reply {
        self.write_argv(
            args.iter()
                .map(|arg| Bytes::from(arg.to_string()))
                .collect(),
        )
    }

    pub fn write_argv(&mut self, argv: Vec<Bytes>) -> Reply {
        let mut replies = self.ks.apply_batch(&Batch {
            now_ms: self.now_ms,
            ops: vec![argv],
        });
        assert_eq!(replies.len(), 1);
        replies.remove(0)
    }

    /// A read at the current time.
    pub fn read(&self, line: &str) -> Reply {
        self.ks.query(self.now_ms, &argv(line))
    }

    /// An empty entry (the leader's expiry tick) at the current time.
    pub fn tick(&mut self) {
        let replies = self.ks.apply_batch(&Batch {
            now_ms: self.now_ms,
            ops: Vec::new(),
        });
        assert!(replies.is_empty());
    }

    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
    }

    pub fn token(&self, key: &str) -> i64 {
        match self.read(&format!("fence {key}")) {
            Reply::Int(token) => token,
            other => panic!("no token for {key}: {other:?}"),
        }
    }
}

fn batch(now_ms: u64, lines: &[&str]) -> Batch {
    Batch {
        now_ms,
        ops: lines.iter().map(|line| argv(line)).collect(),
    }
}

#[test]
fn batch_gives_one_reply_per_op_in_order_reads_included() {
    let mut ks = Keyspace::new();
    let replies = ks.apply_batch(&batch(
        10,
        &["set a 1", "incr a", "get a", "incr a", "get a", "ping"],
    ));
    assert_eq!(
        replies,
        vec![
            Reply::Ok,
            int(2),
            bulk("2"),
            int(3),
            bulk("3"),
            err("ERR 'ping' is not a data command")
        ]
    );
}

#[test]
fn batch_rejects_unknown_commands_and_wrong_arity() {
    let mut ks = Keyspace::new();
    let ops = vec![
        argv("nosuch a b"),
        Vec::new(),
        argv("set a"),
        argv("SET a 1"),
    ];
    let replies = ks.apply_batch(&Batch { now_ms: 1, ops });
    assert_eq!(
        replies[0],
        err("ERR unknown command 'nosuch', with args beginning with: 'a' 'b' ")
    );
    assert!(replies[1].is_error());
    assert_eq!(
        replies[2],
        err("ERR wrong number of arguments for 'set' command")
    );
    assert_eq!(replies[3], Reply::Ok);
}

#[test]
fn query_refuses_writes_and_checks_arity() {
    let ks = Keyspace::new();
    assert_eq!(
        ks.query(1, &argv("set a 1")),
        err("ERR 'set' is not a read command")
    );
    assert_eq!(
        ks.query(1, &argv("get")),
        err("ERR wrong number of arguments for 'get' command")
    );
    assert_eq!(ks.query(1, &argv("GET a")), Reply::Nil);
    assert!(ks.query(1, &[]).is_error());
}

#[test]
fn time_never_goes_back_across_entries() {
    let mut ks = Keyspace::new();
    ks.apply_batch(&batch(1_000, &["set k v px 500"]));
    assert_eq!(ks.last_now_ms(), 1_000);
    // An entry stamped earlier (a new leader with a slower clock) runs at the later time.
    let replies = ks.apply_batch(&batch(400, &["set other v px 100"]));
    assert_eq!(replies, vec![Reply::Ok]);
    assert_eq!(ks.last_now_ms(), 1_000);
    assert_eq!(ks.query(1_000, &argv("pttl other")), int(100));
    // A read stamped before the last entry also runs at the entry's time.
    assert_eq!(ks.query(900, &argv("pttl k")), int(500));
    ks.apply_batch(&batch(1_500, &[]));
    assert_eq!(ks.last_now_ms(), 1_500);
    assert_eq!(ks.key_count(1_500), 0);
}

#[test]
fn expired_keys_are_invisible_to_reads_before_any_entry_removes_them() {
    let mut h = Harness::new();
    h.write("set k v px 100");
    h.advance(99);
    assert_eq!(h.read("get k"), bulk("v"));
    h.advance(1);
    assert_eq!(h.read("get k"), Reply::Nil);
    assert_eq!(h.read("exists k"), int(0));
    assert_eq!(h.read("ttl k"), int(-2));
    assert_eq!(h.read("dbsize"), int(0));
    assert_eq!(h.read("keys *"), bulks(&[]));
    assert_eq!(h.read("fence k"), Reply::Nil);
    // Still held in memory until an entry passes the deadline.
    assert_eq!(h.ks.expires_count(), 1);
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms));
}

#[test]
fn next_entry_purges_expired_keys_and_records_their_removal() {
    let mut h = Harness::new();
    h.write("set a 1 px 100");
    h.write("set b 2 px 300");
    h.write("set c 3");
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + 100));
    h.advance(100);
    h.tick();
    assert_eq!(h.ks.expires_count(), 1);
    assert_eq!(h.ks.next_deadline_ms(), Some(h.now_ms + 200));
    assert_eq!(h.read("exists a b c"), int(2));
    h.advance(1_000);
    h.tick();
    assert_eq!(h.ks.next_deadline_ms(), None);
    assert_eq!(h.ks.key_count(h.now_ms), 1);
}

#[test]
fn writes_treat_expired_keys_as_missing() {
    let mut h = Harness::new();
    h.write("set k 10 px 50");
    h.advance(50);
    // Called directly (as a script would) without a purge first.
    let now = h.now_ms;
    assert_eq!(
        super::strings::incr(&mut h.ks, now, &argv("incr k")),
        int(1)
    );
    assert_eq!(h.read("ttl k"), int(-1));
    h.write("set n 1 px 10");
    h.advance(10);
    let now = h.now_ms;
    assert_eq!(
        super::strings::setnx(&mut h.ks, now, &argv("setnx n 2")),
        int(1)
    );
    assert_eq!(h.read("get n"), bulk("2"));
}

#[test]
fn key_count_excludes_expired_keys_and_expires_count_counts_deadlines() {
    let mut h = Harness::new();
    h.write("mset a 1 b 2 c 3");
    h.write("pexpire a 10");
    h.write("pexpire b 1000");
    assert_eq!(h.ks.key_count(h.now_ms), 3);
    assert_eq!(h.ks.expires_count(), 2);
    assert_eq!(h.ks.key_count(h.now_ms + 10), 2);
    assert_eq!(h.ks.key_count(u64::MAX), 1);
}

#[test]
fn fencing_tokens_start_at_one_and_strictly_increase_per_key() {
    let mut h = Harness::new();
    h.write("set k a");
    assert_eq!(h.token("k"), 1);
    let mut last = 1;
    for line in [
        "set k b",
        "append k c",
        "set k 5",
        "incr k",
        "incrby k 2",
        "decr k",
        "decrby k 1",
        "getset k x",
        "mset k y",
        "setex k 100 z",
        "psetex k 100 z",
        "set k w keepttl",
    ] {
        h.write(line);
        let token = h.token("k");
        assert!(token > last, "{line}: {token} <= {last}");
        last = token;
    }
    // Deleting and recreating never reuses a token.
    h.write("del k");
    h.write("set k again");
    assert!(h.token("k") > last);
}

#[test]
fn changing_only_the_deadline_keeps_the_token() {
    let mut h = Harness::new();
    h.write("set k v");
    let token = h.token("k");
    for line in [
        "expire k 100",
        "pexpire k 5000",
        "persist k",
        "getex k px 100",
        "getex k persist",
        "get k",
        "rename k k",
    ] {
        h.write(line);
        assert_eq!(h.token("k"), token, "{line}");
    }
}

#[test]
fn refused_conditional_writes_keep_the_token() {
    let mut h = Harness::new();
    h.write("set k v");
    let token = h.token("k");
    assert_eq!(h.write("set k w nx"), Reply::Nil);
    assert_eq!(h.write("setnx k w"), int(0));
    assert_eq!(h.write("msetnx k w other x"), int(0));
    assert_eq!(h.write("set k w nx get"), bulk("v"));
    assert_eq!(h.token("k"), token);
}

#[test]
fn tokens_are_global_so_a_renamed_value_gets_a_fresh_one() {
    let mut h = Harness::new();
    h.write("set a 1");
    h.write("set b 2");
    let (a, b) = (h.token("a"), h.token("b"));
    assert!(b > a);
    h.write("rename a b");
    assert!(h.token("b") > b);
}

/// A history touching every kind of change: values, deadlines, removals, expiry.
fn history(h: &mut Harness) {
    for line in [
        "set a 1",
        "set b 2 px 500",
        "mset c 3 d 4 e 5",
        "incr a",
        "append c xyz",
        "expire d 100",
        "del e",
        "rename c c2",
        "set f 6 exat 1900000000",
        "getex f persist",
    ] {
        h.write(line);
        h.advance(7);
    }
    h.advance(600);
    h.tick();
    h.write("set g 7 px 10000");
}

#[test]
fn snapshot_round_trip_keeps_state_counters_and_bytes() {
    let mut h = Harness::new();
    history(&mut h);
    let snapshot = h.ks.to_snapshot();
    let image = h.ks.snapshot_image();
    let restored = Keyspace::from_snapshot(&snapshot).unwrap();
    assert_eq!(restored.to_snapshot(), snapshot);
    assert_eq!(restored.last_now_ms(), h.ks.last_now_ms());
    assert_eq!(restored.next_deadline_ms(), h.ks.next_deadline_ms());
    assert_eq!(restored.expires_count(), h.ks.expires_count());
    for key in ["a", "b", "c2", "d", "f", "g"] {
        let line = format!("fence {key}");
        assert_eq!(
            restored.query(h.now_ms, &argv(&line)),
            h.read(&line),
            "{key}"
        );
    }
    // The counter came along: the next write gets a token above every old one.
    let mut restored = Harness {
        ks: restored,
        now_ms: h.now_ms,
    };
    h.write("set z 1");
    restored.write("set z 1");
    assert_eq!(restored.token("z"), h.token("z"));
    // The copy a node snapshots is the state when it was taken, whatever apply does next.
    h.write("set a changed-after-the-copy");
    assert_eq!(image.encode(), snapshot);
}

#[test]
fn a_corrupt_snapshot_is_an_error_not_a_panic() {
    assert!(Keyspace::from_snapshot(&[]).is_err());
    assert!(Keyspace::from_snapshot(&[9, 1, 2]).is_err());
    assert!(Keyspace::from_snapshot(&[1, 0xff, 0xff, 0xff]).is_err());
    let mut snapshot = Keyspace::new().to_snapshot();
    snapshot.push(0);
    assert!(Keyspace::from_snapshot(&snapshot).is_err());
}

#[test]
fn same_batches_give_same_replies_and_byte_equal_snapshots() {
    let batches: Vec<Batch> = (0..50u64)
        .map(|i| {
            let lines: Vec<String> = (0..8u64)
                .map(|j| match (i * 8 + j) % 7 {
                    0 => format!("set k{} v{} px {}", j, i, 20 + i),
                    1 => format!("incrby n{} {}", j % 3, i),
                    2 => format!("append k{} x", (j + 1) % 8),
                    3 => format!("del k{}", (i + j) % 8),
                    4 => format!("getex k{} px 30", j),
                    5 => format!("rename k{} r{}", j, i % 5),
                    _ => format!("msetnx m{} 1 m{} 2", i % 9, j),
                })
                .collect();
            let refs: Vec<&str> = lines.iter().map(String::as_str).collect();
            batch(1_000 + i * 13, &refs)
        })
        .collect();
    let mut one = Keyspace::new();
    let mut two = Keyspace::new();
    for batch in &batches {
        assert_eq!(one.apply_batch(batch), two.apply_batch(batch));
        assert_eq!(one.to_snapshot(), two.to_snapshot());
    }
    assert!(one.key_count(one.last_now_ms()) > 0);
}

#[test]
fn handlers_never_panic_on_short_or_odd_argv() {
    // Subcommands (`script|load`) are invoked as the container's name then theirs.
    let specs: Vec<(&crate::command::CommandSpec, Vec<Bytes>)> = crate::command::COMMANDS
        .iter()
        .flat_map(|spec| {
            let own = (spec, vec![Bytes::from(spec.name)]);
            let subs = spec.subcommands.iter().map(|sub| {
                let words = sub.name.split('|').map(Bytes::from).collect();
                (sub, words)
            });
            std::iter::once(own).chain(subs)
        })
        .filter(|(spec, _)| !matches!(spec.handler, crate::command::Handler::Server))
        .collect();
    let shapes: [&[&str]; 6] = [
        &[],
        &["k"],
        &["k", "1"],
        &["k", "-1", "nx", "xx"],
        &["k", "v", "ex"],
        &["k", "v", "px", "9223372036854775807", "get", "keepttl"],
    ];
    let mut h = Harness::new();
    h.write("set k 1");
    for (spec, name) in specs {
        for shape in shapes {
            let mut argv = name.clone();
            argv.extend(shape.iter().map(|arg| Bytes::from(*arg)));
            // Straight to the handlers, skipping the arity check dispatch would do.
            match spec.handler {
                crate::command::Handler::Read(read) => {
                    read(&h.ks, h.now_ms, &argv);
                }
                crate::command::Handler::Write(write) => {
                    write(&mut h.ks, h.now_ms, &argv);
                }
                crate::command::Handler::Server => {}
            }
        }
    }
}

/// A tiny deterministic generator (an LCG), so the mixed-history test needs no crate.
pub struct Lcg(pub u64);

impl Lcg {
    pub fn next(&mut self, below: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        ((self.0 >> 33) % below as u64) as usize
    }

    pub fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[self.next(from.len())]
    }
}

#[test]
fn mixed_histories_keep_index_persistence_and_replicas_consistent() {
    const COMMANDS: &[&str] = &[
        "set",
        "setnx",
        "setex",
        "psetex",
        "getdel",
        "getex",
        "getset",
        "mset",
        "msetnx",
        "incr",
        "incrby",
        "decr",
        "decrby",
        "append",
        "del",
        "unlink",
        "expire",
        "pexpire",
        "expireat",
        "pexpireat",
        "persist",
        "rename",
        "flushall",
        "get",
        "mget",
        "strlen",
        "exists",
        "type",
        "ttl",
        "pttl",
        "expiretime",
        "pexpiretime",
        "keys",
        "scan",
        "fence",
        "dbsize",
    ];
    const ARGS: &[&str] = &[
        "a",
        "b",
        "c",
        "d",
        "1",
        "-1",
        "0",
        "10",
        "100",
        "1700000000",
        "1700000000100",
        "9223372036854775807",
        "-9223372036854775808",
        "nx",
        "xx",
        "gt",
        "lt",
        "get",
        "ex",
        "px",
        "exat",
        "pxat",
        "keepttl",
        "persist",
        "count",
        "match",
        "*",
        "x",
        "",
    ];
    let mut rng = Lcg(7);
    let mut one = Keyspace::new();
    let mut two = Keyspace::new();
    let mut now_ms = 1_700_000_000_000u64;
    let mut succeeded = 0;
    // Restored from a snapshot after every entry, then fed the next entry like the others:
    // WATCH outcomes depend on revisions and removals, which must survive a restart.
    let mut reloaded = Keyspace::new();
    // Revisions read between entries, for the next entry's transaction to watch.
    let mut watches: Vec<crate::state::txn::Watch> = Vec::new();
    for _ in 0..400 {
        // Ops of the right arity, the first argument a key; reads run after the entry.
        let (mut ops, mut reads) = (Vec::new(), Vec::new());
        for _ in 0..rng.next(8) {
            let name = rng.pick(COMMANDS);
            let spec = crate::command::lookup(name.as_bytes()).unwrap();
            let argc = match spec.arity {
                n if n >= 0 => n as usize,
                n => (-n) as usize + rng.next(4),
            };
            let mut op = vec![Bytes::from(name)];
            if argc > 1 {
                op.push(Bytes::from(rng.pick(&["a", "b", "c", "d"])));
            }
            while op.len() < argc {
                op.push(Bytes::from(rng.pick(ARGS)));
            }
            if spec.is_write() {
                ops.push(op);
            } else {
                reads.push(op);
            }
        }
        if rng.next(3) == 0 && !ops.is_empty() {
            // Some of the ops become one transaction that watches what was read before.
            let split = rng.next(ops.len());
            let tx = crate::state::txn::Transaction {
                watches: std::mem::take(&mut watches),
                commands: ops.split_off(split),
            };
            ops.push(tx.encode());
        }
        // Time mostly moves on, sometimes stamps lower (a new leader's slower clock).
        now_ms = (now_ms + rng.next(300) as u64).saturating_sub(rng.next(3) as u64 * 50);
        let entry = Batch { now_ms, ops };
        let replies = one.apply_batch(&entry);
        assert_eq!(replies, two.apply_batch(&entry));
        assert_eq!(replies, reloaded.apply_batch(&entry));
        let seen_at = one.revision_counter();
        watches = ["a", "b", "c", "d"][..rng.next(4)]
            .iter()
            .map(|key| crate::state::txn::Watch {
                key: Bytes::from(*key),
                revision: one.revision(key.as_bytes(), now_ms),
                seen_at,
            })
            .collect();
        succeeded += replies.iter().filter(|reply| !reply.is_error()).count();
        for op in &reads {
            assert_eq!(one.query(now_ms, op), two.query(now_ms, op));
        }
        one.assert_consistent();
        let snapshot = one.to_snapshot();
        assert_eq!(two.to_snapshot(), snapshot);
        // What a node snapshots: a copy taken under the lock, encoded later.
        assert_eq!(one.snapshot_image().encode(), snapshot);
        let from_snapshot = Keyspace::from_snapshot(&snapshot).unwrap();
        from_snapshot.assert_consistent();
        assert_eq!(from_snapshot.to_snapshot(), snapshot);
        reloaded = from_snapshot;
    }
    // Enough of the generated writes did something for the history to mean something.
    assert!(succeeded > 300, "only {succeeded} writes succeeded");
}

/// A million held locks are a million entries: their size is the memory budget (docs/PERFORMANCE.md, Memory).
#[test]
fn an_entry_stays_small() {
    assert_eq!(std::mem::size_of::<super::Value>(), 56);
    // 80, and 8 for the lock timer's position.
    assert_eq!(std::mem::size_of::<super::Entry>(), 88);
}
