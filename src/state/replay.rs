//! Redlock on the nodes of one cluster: a write that a client sent to every node is
//! answered alike by all of them.
//!
//! A Redlock client (node-redlock, redlock-py, pottery, aioredlock, redis-semaphore...)
//! sends the same request to N independent Redis servers and holds the lock if a majority
//! grants it. Pointed at the N nodes of one raftlock cluster, its N copies are N entries of
//! one log: the first takes the lock, and every later copy finds the lock taken (SET NX
//! answers nil, the acquire script 0, the release script 0), so the client never reaches
//! its majority. The copies are one request, though: they carry the client's random
//! token, and each finds the state exactly as the first left it.
//!
//! The rule: a write whose non-key arguments include a token (see `is_token`) and which
//! names keys is remembered with its reply and what its keys looked like after it. A later
//! identical write (same command and arguments) within the replay window that finds those
//! keys unchanged since, and itself changes nothing, is answered with the first one's
//! reply. It still runs, as any write does, so every replica applies exactly what it would
//! without the rule: only the reply differs, and only on the node the cache is on. The
//! cache is node-local (not in snapshots); a node that restarted, or took over, between two
//! copies answers the later one as Redis would, which costs that client a vote, never a
//! second owner.
//!
//! Why it is safe: the replayed reply is true of the state the copy found. The key holds
//! the client's token with the lease the first copy gave it, and nothing has touched it
//! since. The lease counts from the first copy, which Redlock clients account for: they
//! measure validity from before they sent the first copy. A write that changes anything
//! (an extend, a second INCR) is answered as it ran. Requests without a token (`SET lock 1
//! NX`) are never replayed, so plain SET NX keeps its meaning for ordinary values.

use std::collections::{HashMap, VecDeque};

use bytes::Bytes;

use crate::command::CommandSpec;
use crate::config::state_limits::{
    MAX_REPLAY_ENTRIES, MAX_REPLAY_REPLY_BYTES, MAX_REPLAY_REQUEST_BYTES, REPLAY_WINDOW_MS,
};
use crate::reply::Reply;

/// Shortest and longest argument that can be a token.
const TOKEN_BYTES: std::ops::RangeInclusive<usize> = 16..=256;
/// A token has at least this many different bytes: random, not a word repeated.
const TOKEN_DISTINCT_BYTES: usize = 8;

/// Whether `arg` looks like a Redlock token: 16 to 256 bytes of the characters random ids
/// are written in (hex, base64, UUIDs, `uuid:thread` as Redisson writes them), with at
/// least 8 different ones. Lock libraries make theirs from 16 or more random bytes.
pub(crate) fn is_token(arg: &[u8]) -> bool {
    if !TOKEN_BYTES.contains(&arg.len()) {
        return false;
    }
    let mut seen = [false; 256];
    let mut distinct = 0;
    for &byte in arg {
        if !(byte.is_ascii_alphanumeric() || b"+/=_:-".contains(&byte)) {
            return false;
        }
        if !seen[byte as usize] {
            seen[byte as usize] = true;
            distinct += 1;
        }
    }
    distinct >= TOKEN_DISTINCT_BYTES
}

/// The keys of a write the rule applies to, or `None`: a write that names keys and has a
/// token among its other arguments (a script's ARGV, SET's value).
pub(crate) fn replayable_keys(spec: &CommandSpec, argv: &[Bytes]) -> Option<Vec<Bytes>> {
    if !spec.is_write() {
        return None;
    }
    let keys: Vec<&Bytes> = spec.keys(argv).collect();
    if keys.is_empty() {
        return None;
    }
    let is_key = |arg: &Bytes| keys.iter().any(|key| std::ptr::eq(*key, arg));
    // A script's own text or sha1 is not the client's token.
    let first_arg = if spec.numkeys_index > 0 {
        spec.numkeys_index + 1
    } else {
        1
    };
    let has_token = argv
        .iter()
        .skip(first_arg)
        .any(|arg| !is_key(arg) && is_token(arg));
    has_token.then(|| keys.into_iter().cloned().collect())
}

/// A write the cache remembers: what it was, what its keys were after it, its reply.
#[derive(Debug)]
struct Recorded {
    argv: Vec<Bytes>,
    /// Each key and its revision after the write (0: missing).
    keys: Vec<(Bytes, u64)>,
    /// The revision counter after the write: a missing key removed since is a change.
    seen_at: u64,
    reply: Reply,
    applied_ms: u64,
}

/// A remembered write that a copy may be answered with: its keys and reply.
pub(crate) struct Earlier {
    pub keys: Vec<(Bytes, u64)>,
    pub seen_at: u64,
    pub reply: Reply,
}

/// The recent replayable writes, by a hash of their arguments, oldest first in `order`.
#[derive(Debug)]
pub(crate) struct ReplayCache {
    window_ms: u64,
    by_hash: HashMap<u64, Recorded>,
    order: VecDeque<(u64, u64)>,
}

impl Default for ReplayCache {
    fn default() -> ReplayCache {
        ReplayCache {
            window_ms: REPLAY_WINDOW_MS,
            by_hash: HashMap::new(),
            order: VecDeque::new(),
        }
    }
}

/// The request as the cache compares it: an EVAL as the EVALSHA of its script, since a
/// client sends EVALSHA to the nodes that have the script and EVAL to those that answered
/// NOSCRIPT (and the first EVAL gives the script to every node).
fn canonical(argv: &[Bytes]) -> Vec<Bytes> {
    let mut out = argv.to_vec();
    if out.len() >= 2 && out[0].eq_ignore_ascii_case(b"eval") {
        out[0] = Bytes::from_static(b"evalsha");
        out[1] = Bytes::from(super::lua::sha1_hex(&out[1]));
    } else if out[0].eq_ignore_ascii_case(b"evalsha") && out.len() >= 2 {
        out[1] = Bytes::from(out[1].to_ascii_lowercase());
    }
    out
}

fn hash_argv(argv: &[Bytes]) -> u64 {
    let mut bytes = Vec::with_capacity(argv.iter().map(|a| a.len() + 8).sum());
    for (i, arg) in argv.iter().enumerate() {
        bytes.extend_from_slice(&(arg.len() as u64).to_le_bytes());
        if i == 0 {
            bytes.extend(arg.iter().map(u8::to_ascii_lowercase));
        } else {
            bytes.extend_from_slice(arg);
        }
    }
    crate::fnv::hash(&bytes)
}

fn same_request(a: &[Bytes], b: &[Bytes]) -> bool {
    a.len() == b.len()
        && a[0].eq_ignore_ascii_case(&b[0])
        && a[1..].iter().zip(&b[1..]).all(|(x, y)| x == y)
}

impl ReplayCache {
    /// 0 turns the rule off.
    pub fn set_window_ms(&mut self, window_ms: u64) {
        self.window_ms = window_ms;
        if window_ms == 0 {
            self.by_hash.clear();
            self.order.clear();
        }
    }

    pub fn enabled(&self) -> bool {
        self.window_ms > 0
    }

    /// The write identical to `argv` applied within the window before `now_ms`, if any.
    pub fn earlier(&mut self, argv: &[Bytes], now_ms: u64) -> Option<Earlier> {
        self.forget_before(now_ms);
        let argv = canonical(argv);
        let recorded = self.by_hash.get(&hash_argv(&argv))?;
        same_request(&recorded.argv, &argv).then(|| Earlier {
            keys: recorded.keys.clone(),
            seen_at: recorded.seen_at,
            reply: recorded.reply.clone(),
        })
    }

    /// Remembers a write that ran: its keys' revisions and the counter after it, its
    /// reply. Large requests and replies are not kept.
    pub fn record(
        &mut self,
        argv: &[Bytes],
        keys: Vec<(Bytes, u64)>,
        seen_at: u64,
        reply: &Reply,
        now_ms: u64,
    ) {
        let request_bytes: usize = argv.iter().map(Bytes::len).sum();
        if request_bytes > MAX_REPLAY_REQUEST_BYTES || !reply_is_small(reply) {
            return;
        }
        let argv = canonical(argv);
        let hash = hash_argv(&argv);
        self.by_hash.insert(
            hash,
            Recorded {
                argv,
                keys,
                seen_at,
                reply: reply.clone(),
                applied_ms: now_ms,
            },
        );
        self.order.push_back((now_ms, hash));
        while self.order.len() > MAX_REPLAY_ENTRIES {
            self.pop_oldest();
        }
    }

    fn forget_before(&mut self, now_ms: u64) {
        while let Some(&(applied_ms, _)) = self.order.front() {
            if applied_ms.saturating_add(self.window_ms) >= now_ms {
                break;
            }
            self.pop_oldest();
        }
    }

    /// Drops the oldest record, unless a later write under the same hash replaced it.
    fn pop_oldest(&mut self) {
        if let Some((applied_ms, hash)) = self.order.pop_front() {
            if self
                .by_hash
                .get(&hash)
                .is_some_and(|r| r.applied_ms == applied_ms)
            {
                self.by_hash.remove(&hash);
            }
        }
    }
}

/// Replies worth keeping: the integers, statuses, nils and short strings lock scripts and
/// SET answer with.
fn reply_is_small(reply: &Reply) -> bool {
    match reply {
        Reply::Bulk(b) => b.len() <= MAX_REPLAY_REPLY_BYTES,
        Reply::Status(s) | Reply::Error(s) => s.len() <= MAX_REPLAY_REPLY_BYTES,
        Reply::Array(items) => items.len() <= 16 && items.iter().all(reply_is_small),
        Reply::Blocked => false,
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_long_random_ids_and_ordinary_values_are_not() {
        for token in [
            "2f1e5b1c9a7d4e3f8b6a0c1d2e3f4a5b", // node-redlock: 16 bytes, hex
            "QmFzZTY0IHJhbmRvbSBieXRlcw==",     // redlock-py: base64
            "9b2d3f1e-7c4a-4e8b-9a1d-2c3e4f5a6b7c", // pottery, aioredlock: uuid4
            "7c4a9b2d-3f1e-4e8b-9a1d-2c3e4f5a6b7c:57", // Redisson: uuid:thread
        ] {
            assert!(is_token(token.as_bytes()), "{token}");
        }
        for value in [
            "1",
            "locked",
            "worker-7",
            "aaaaaaaaaaaaaaaaaaaaaaaa",
            "hello world, this is text",
            "host.example.com-12345678",
        ] {
            assert!(!is_token(value.as_bytes()), "{value}");
        }
        assert!(!is_token("x".repeat(300).as_bytes()));
    }

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    const TOKEN: &str = "2f1e5b1c9a7d4e3f8b6a0c1d2e3f4a5b";

    #[test]
    fn only_keyed_writes_with_a_token_outside_their_keys_are_replayable() {
        let spec = |name: &str| crate::command::lookup(name.as_bytes()).unwrap();
        let set = argv(&["SET", "res", TOKEN, "NX", "PX", "30000"]);
        assert_eq!(replayable_keys(spec("set"), &set), Some(argv(&["res"])));
        let plain = argv(&["SET", "res", "1", "NX", "PX", "30000"]);
        assert_eq!(replayable_keys(spec("set"), &plain), None);
        let script = argv(&[
            "EVALSHA",
            "a".repeat(40).as_str(),
            "1",
            "res",
            TOKEN,
            "30000",
        ]);
        assert_eq!(
            replayable_keys(spec("evalsha"), &script),
            Some(argv(&["res"]))
        );
        // The sha1 alone is not a token; nor is a key that looks like one.
        let sha_only = argv(&["EVALSHA", &"0123456789abcdef".repeat(2), "1", "res", "1"]);
        assert_eq!(replayable_keys(spec("evalsha"), &sha_only), None);
        let token_key = argv(&["DEL", TOKEN]);
        assert_eq!(replayable_keys(spec("del"), &token_key), None);
        let no_keys = argv(&["EVAL", "return 1", "0", TOKEN]);
        assert_eq!(replayable_keys(spec("eval"), &no_keys), None);
        let read = argv(&["GET", TOKEN]);
        assert_eq!(replayable_keys(spec("get"), &read), None);
    }

    #[test]
    fn the_cache_finds_the_same_request_within_the_window_only() {
        let mut cache = ReplayCache::default();
        cache.set_window_ms(1000);
        let set = argv(&["SET", "res", TOKEN, "NX", "PX", "30000"]);
        cache.record(&set, vec![(Bytes::from("res"), 7)], 7, &Reply::Ok, 100);
        let same_in_lower_case = argv(&["set", "res", TOKEN, "NX", "PX", "30000"]);
        let earlier = cache
            .earlier(&same_in_lower_case, 900)
            .expect("within the window");
        assert_eq!(earlier.reply, Reply::Ok);
        assert_eq!(earlier.keys, vec![(Bytes::from("res"), 7)]);
        let other = argv(&["SET", "res", TOKEN, "NX", "PX", "30001"]);
        assert!(cache.earlier(&other, 900).is_none());
        assert!(cache.earlier(&set, 1101).is_none(), "past the window");
        assert!(cache.order.is_empty() && cache.by_hash.is_empty());
    }

    use crate::state::tests::{bulk, int, Harness};

    /// node-redlock's acquire and release scripts, as it sends them.
    const ACQUIRE: &str = "for i, key in ipairs(KEYS) do if redis.call('exists', key) == 1 then return 0 end end for i, key in ipairs(KEYS) do redis.call('set', key, ARGV[1], 'PX', ARGV[2]) end return #KEYS";
    const RELEASE: &str = "local count = 0 for _, key in ipairs(KEYS) do if redis.call('get', key) == ARGV[1] then redis.pcall('del', key) count = count + 1 end end return count";

    #[test]
    fn copies_of_a_set_nx_px_are_granted_alike_and_other_owners_are_refused() {
        let mut h = Harness::new();
        let acquire = ["SET", "res", TOKEN, "NX", "PX", "30000"];
        assert_eq!(h.write_args(&acquire), Reply::Ok);
        h.advance(5);
        assert_eq!(h.write_args(&acquire), Reply::Ok, "the second node's copy");
        assert_eq!(h.write_args(&acquire), Reply::Ok, "the third node's copy");
        // The lease counts from the first copy.
        assert_eq!(h.read("PTTL res"), int(29_995));
        let other = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
        assert_eq!(
            h.write_args(&["SET", "res", other, "NX", "PX", "30000"]),
            Reply::Nil
        );
        // An ordinary value keeps SET NX's meaning.
        assert_eq!(h.write("SET plain 1 NX PX 30000"), Reply::Ok);
        assert_eq!(h.write("SET plain 1 NX PX 30000"), Reply::Nil);
    }

    #[test]
    fn a_copy_that_finds_the_key_changed_is_answered_as_it_ran() {
        let mut h = Harness::new();
        let acquire = ["SET", "res", TOKEN, "NX", "PX", "30000"];
        assert_eq!(h.write_args(&acquire), Reply::Ok);
        // Released and taken by another owner between the copies.
        assert_eq!(h.write("DEL res"), int(1));
        assert_eq!(h.write("SET res someone-else"), Reply::Ok);
        assert_eq!(h.write_args(&acquire), Reply::Nil);
        // Released, then the late copy: it takes the free lock, as it would in Redis.
        assert_eq!(h.write("DEL res"), int(1));
        assert_eq!(h.write_args(&acquire), Reply::Ok);
        assert_eq!(h.read("GET res"), bulk(TOKEN));
    }

    #[test]
    fn a_copy_past_the_window_or_with_the_rule_off_is_answered_as_redis_would() {
        let mut h = Harness::new();
        let acquire = ["SET", "res", TOKEN, "NX", "PX", "30000"];
        assert_eq!(h.write_args(&acquire), Reply::Ok);
        h.advance(REPLAY_WINDOW_MS + 1);
        assert_eq!(h.write_args(&acquire), Reply::Nil);

        let mut off = Harness::new();
        off.ks.set_replay_window_ms(0);
        assert_eq!(off.write_args(&acquire), Reply::Ok);
        assert_eq!(off.write_args(&acquire), Reply::Nil);
    }

    #[test]
    fn node_redlock_scripts_acquire_and_release_on_every_copy() {
        let mut h = Harness::new();
        let acquire = ["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"];
        for copy in 0..3 {
            assert_eq!(h.write_args(&acquire), int(1), "acquire copy {copy}");
        }
        let rival = [
            "EVAL",
            ACQUIRE,
            "1",
            "res",
            "0f1e2d3c4b5a69788796a5b4c3d2e1f0",
            "30000",
        ];
        assert_eq!(h.write_args(&rival), int(0));
        let release = ["EVAL", RELEASE, "1", "res", TOKEN];
        for copy in 0..3 {
            assert_eq!(h.write_args(&release), int(1), "release copy {copy}");
        }
        assert_eq!(h.read("EXISTS res"), int(0));
        // The rival's copies now find a free lock: its first retry takes it.
        assert_eq!(h.write_args(&rival), int(1));
    }

    #[test]
    fn a_release_copy_after_another_client_took_the_lock_is_answered_released_and_frees_nothing() {
        let mut h = Harness::new();
        let rival_token = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
        assert_eq!(
            h.write_args(&["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"]),
            int(1)
        );
        let release = ["EVAL", RELEASE, "1", "res", TOKEN];
        assert_eq!(h.write_args(&release), int(1), "the first copy releases");
        // The rival's acquire lands between the holder's release copies.
        assert_eq!(
            h.write_args(&["EVAL", ACQUIRE, "1", "res", rival_token, "30000"]),
            int(1)
        );
        assert_eq!(
            h.write_args(&release),
            int(1),
            "a later copy: released, as the first"
        );
        assert_eq!(
            h.read("GET res"),
            bulk(rival_token),
            "the rival's lock stays"
        );
        // An acquire copy that finds the lock another's is refused, whatever it got first.
        assert_eq!(
            h.write_args(&["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"]),
            int(0)
        );
    }

    #[test]
    fn an_evalsha_copy_of_an_eval_is_the_same_request() {
        let mut h = Harness::new();
        assert_eq!(
            h.write_args(&["EVAL", ACQUIRE, "1", "res", TOKEN, "30000"]),
            int(1)
        );
        let sha = crate::state::lua::sha1_hex(ACQUIRE.as_bytes());
        let upper = sha.to_ascii_uppercase();
        for sha in [&sha, &upper] {
            let copy = ["EVALSHA", sha.as_str(), "1", "res", TOKEN, "30000"];
            assert_eq!(h.write_args(&copy), int(1));
        }
    }

    #[test]
    fn a_copy_that_changes_something_is_answered_as_it_ran() {
        let mut h = Harness::new();
        // An extend: every copy runs and moves the lease, each answered as it ran.
        let extend = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
        assert_eq!(
            h.write_args(&["SET", "res", TOKEN, "PX", "1000"]),
            Reply::Ok
        );
        h.advance(500);
        assert_eq!(
            h.write_args(&["EVAL", extend, "1", "res", TOKEN, "30000"]),
            int(1)
        );
        h.advance(100);
        assert_eq!(
            h.write_args(&["EVAL", extend, "1", "res", TOKEN, "30000"]),
            int(1)
        );
        assert_eq!(
            h.read("PTTL res"),
            int(30_000),
            "the later copy moved the lease"
        );
        // A counter with a token among its arguments counts every copy.
        let incr = "return redis.call('incrby', KEYS[1], 1)";
        assert_eq!(h.write_args(&["EVAL", incr, "1", "n", TOKEN]), int(1));
        assert_eq!(h.write_args(&["EVAL", incr, "1", "n", TOKEN]), int(2));
    }

    #[test]
    fn the_cache_is_bounded_and_a_zero_window_turns_it_off() {
        let mut cache = ReplayCache::default();
        for i in 0..MAX_REPLAY_ENTRIES + 10 {
            let request = argv(&["SET", &format!("k{i}"), TOKEN]);
            cache.record(&request, Vec::new(), 0, &Reply::Ok, 1);
        }
        assert_eq!(cache.order.len(), MAX_REPLAY_ENTRIES);
        assert!(cache.by_hash.len() <= MAX_REPLAY_ENTRIES);
        cache.set_window_ms(0);
        assert!(!cache.enabled());
        assert!(cache.by_hash.is_empty());
    }
}
