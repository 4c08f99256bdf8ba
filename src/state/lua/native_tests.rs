use bytes::Bytes;

use super::{recognize, Release, KNOWN};
use crate::reply::Reply;
use crate::state::tests::Harness;

/// The texts as the libraries send them (their indentation and line breaks included).
const REDIS_PY: &str = "
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('del', KEYS[1])
        return 1
    ";
fn node_redlock() -> String {
    format!("\n  {}\n", super::NODE_REDLOCK_RELEASE)
}
const DOCS: &str = "if redis.call(\"get\",KEYS[1]) == ARGV[1] then\n    return redis.call(\"del\",KEYS[1])\nelse\n    return 0\nend";
const BENCH: &str = crate::bench::RELEASE_SCRIPT;
const ONE_LINE_SINGLE_QUOTES: &str =
        "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

#[test]
fn the_libraries_texts_are_recognised() {
    assert_eq!(recognize(REDIS_PY.as_bytes()), Some(Release::ReturnOne));
    assert_eq!(
        recognize(node_redlock().as_bytes()),
        Some(Release::CountKeys)
    );
    assert_eq!(recognize(DOCS.as_bytes()), Some(Release::ReturnDel));
    assert_eq!(recognize(BENCH.as_bytes()), Some(Release::ReturnDel));
    assert_eq!(
        recognize(ONE_LINE_SINGLE_QUOTES.as_bytes()),
        Some(Release::ReturnDel)
    );
    assert_eq!(
        recognize(node_redlock().replace("\n", "\r\n").as_bytes()),
        Some(Release::CountKeys)
    );
    for (text, release) in KNOWN {
        assert_eq!(recognize(text.as_bytes()), Some(*release), "{text}");
    }
}

#[test]
fn anything_but_whitespace_differing_runs_in_lua() {
    let near_misses = [
        // Quotes mixed within one script.
        DOCS.replacen('"', "'", 1),
        // A space inside a string: another command name.
        DOCS.replacen("\"get\"", "\" get\"", 1),
        // One token more, or less.
        DOCS.replacen("return 0", "return 0 + 0", 1),
        DOCS.replacen("else", "", 1),
        format!("{DOCS} -- done"),
        DOCS.replacen("KEYS[1]", "KEYS[2]", 1),
        DOCS.to_uppercase(),
        // The comment swallows the next line once the line break goes...
        node_redlock().replacen("value.\n", "value. ", 1),
        // ...including a lone carriage return, which ends a Lua comment too.
        node_redlock().replacen("Only remove", "Only\rremove", 1),
        node_redlock().replacen("Only remove", "Only keep", 1),
        REDIS_PY.replacen("return 1", "return 2", 1),
        String::new(),
        "return 1".to_string(),
    ];
    for text in near_misses {
        assert_eq!(recognize(text.as_bytes()), None, "{text:?}");
    }
}

fn bytes_of(words: &[&str]) -> Vec<Bytes> {
    words.iter().map(|w| Bytes::from(w.to_string())).collect()
}

/// A node that runs known scripts natively and one that runs everything in Lua, with
/// the same history.
fn pair(setup: &[&[&str]], advance_ms: u64) -> [Harness; 2] {
    let mut pair = [Harness::new(), Harness::new()];
    pair[1].ks.lua_only = true;
    for h in &mut pair {
        for command in setup {
            h.write_args(command);
        }
        h.now_ms += advance_ms;
        h.ks.take_events();
    }
    pair
}

/// Runs `argv` on both and checks they answer, change and announce the same.
fn same_on_both(pair: &mut [Harness; 2], argv: &[Bytes], what: &str) -> Reply {
    let replies: Vec<Reply> = pair
        .iter_mut()
        .map(|h| h.write_argv(argv.to_vec()))
        .collect();
    assert_eq!(replies[0], replies[1], "reply: {what}");
    assert!(
        pair[0].ks.to_snapshot() == pair[1].ks.to_snapshot(),
        "state: {what}"
    );
    let events: Vec<_> = pair.iter_mut().map(|h| h.ks.take_events()).collect();
    assert_eq!(events[0], events[1], "events: {what}");
    replies[0].clone()
}

#[test]
fn native_runs_answer_change_and_announce_what_lua_runs_do() {
    let setups: &[(&str, &[&[&str]], u64)] = &[
        ("missing", &[], 0),
        (
            "held",
            &[&["set", "lock", "tok"], &["set", "lock2", "tok"]],
            0,
        ),
        (
            "someone else's",
            &[&["set", "lock", "other"], &["set", "lock2", "tok"]],
            0,
        ),
        ("with a lease", &[&["set", "lock", "tok", "px", "10000"]], 0),
        ("expired", &[&["set", "lock", "tok", "px", "100"]], 1_000),
        (
            "a list",
            &[&["rpush", "lock", "tok"], &["set", "lock2", "tok"]],
            0,
        ),
        ("a hash", &[&["hset", "lock", "f", "tok"]], 0),
        ("a raftlock lock", &[&["lock", "lock", "tok", "10000"]], 0),
    ];
    let calls: &[(&[&str], &[&str])] = &[
        (&["lock"], &["tok"]),
        (&["lock"], &["other"]),
        (&["lock", "lock2"], &["tok"]),
        (&["lock2", "lock"], &["tok", "extra"]),
        (&["lock"], &[]),
        (&[], &["tok"]),
    ];
    let node_redlock = node_redlock();
    let scripts = [DOCS, BENCH, ONE_LINE_SINGLE_QUOTES, REDIS_PY, &node_redlock];
    let mut native_ran = 0;
    for script in scripts {
        for (setup_name, setup, advance_ms) in setups {
            for (keys, args) in calls {
                let what = format!("{script:?} on {setup_name}, KEYS {keys:?} ARGV {args:?}");
                let mut pair = pair(setup, *advance_ms);
                let numkeys = keys.len().to_string();
                let mut eval = vec!["eval", script, numkeys.as_str()];
                eval.extend_from_slice(keys);
                eval.extend_from_slice(args);
                let first = same_on_both(&mut pair, &bytes_of(&eval), &what);
                // Again, by sha, on what the first run left.
                let sha = super::super::sha1_hex(script.as_bytes());
                eval[0] = "evalsha";
                eval[1] = &sha;
                same_on_both(&mut pair, &bytes_of(&eval), &what);
                if matches!(first, Reply::Int(1)) {
                    native_ran += 1;
                }
            }
        }
    }
    // The comparisons above include runs that released something.
    assert!(native_ran > 10, "{native_ran}");
}

#[test]
fn a_known_release_runs_without_lua_and_gives_up_where_lua_would_fail() {
    let keys = bytes_of(&["lock"]);
    let args = bytes_of(&["tok"]);
    let mut h = Harness::new();
    let inv = super::Invocation {
        sha: "",
        keys: &keys,
        args: &args,
        now_ms: h.now_ms,
        read_only: false,
        seed: 0,
    };
    for script in [DOCS, REDIS_PY, &node_redlock()] {
        let release = recognize(script.as_bytes()).unwrap();
        h.write("set lock tok");
        assert_eq!(super::run(release, &mut h.ks, &inv), Some(Reply::Int(1)));
        assert_eq!(h.read("exists lock"), Reply::Int(0));
        assert_eq!(super::run(release, &mut h.ks, &inv), Some(Reply::Int(0)));
        // GET fails with WRONGTYPE: Lua raises, so Lua must run it, on untouched state.
        h.write("rpush lock tok");
        let before = h.ks.to_snapshot();
        assert_eq!(super::run(release, &mut h.ks, &inv), None);
        assert!(h.ks.to_snapshot() == before);
        h.write("del lock");
    }
}
