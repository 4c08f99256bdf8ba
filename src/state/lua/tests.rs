use std::borrow::Cow;

use super::calls::without_wait;
use super::*;

/// A fresh engine with `source` compiled, and its sha1.
fn compiled(source: &[u8]) -> (Engine, String) {
    let mut engine = Engine::new();
    let sha = sha1_hex(source);
    engine.compile(&sha, source).unwrap();
    (engine, sha)
}

/// A read-only run of the script `sha` with these keys and arguments, at time 0.
fn read_run<'a>(sha: &'a str, keys: &'a [Bytes], args: &'a [Bytes]) -> Invocation<'a> {
    Invocation {
        sha,
        keys,
        args,
        now_ms: 0,
        read_only: true,
        seed: 0,
    }
}

#[test]
fn rand48_matches_libc_lrand48_from_seed_zero() {
    // srand48(0); lrand48() x3 with glibc: 366850414, 1610402721, 1293319190.
    let mut rng = Rand48::seeded(0);
    let max = f64::from(i32::MAX);
    let first = (rng.next_unit() * max).round() as i64;
    assert_eq!(first, 366_850_414);
}

#[test]
fn run_functions_outside_a_run_raise_an_error() {
    let ks = Keyspace::new();
    // A run that ends in an error leaves no run behind either.
    let (mut engine, sha) = compiled(b"error('boom')");
    let inv = read_run(&sha, &[], &[]);
    assert!(engine.run(Access::Read(&ks), &inv).is_err());
    assert!(engine.slot.0.load(Ordering::Relaxed).is_null());
    let error = engine
        .lua
        .load("return redis.call('ping')")
        .eval::<Value>()
        .unwrap_err();
    assert!(
        error.to_string().contains("no script is running"),
        "{error}"
    );
    let rand: Function = engine.ctx.raw_get("rand").unwrap();
    let error = rand.call::<f64>(()).unwrap_err();
    assert!(
        error.to_string().contains("no script is running"),
        "{error}"
    );
}

#[test]
fn the_collector_stays_stopped_after_a_run_and_its_step() {
    let ks = Keyspace::new();
    let (mut engine, sha) = compiled(b"local t = {} for i = 1, 1000 do t[i] = {} end return 1");
    let inv = read_run(&sha, &[], &[]);
    for _ in 0..50 {
        assert!(engine.run(Access::Read(&ks), &inv).is_ok());
    }
    assert_collector_stopped(&engine);
}

/// Scripts that each leave a few hundred bytes of garbage share steps, and the steps
/// keep up: after 20k of them the heap is back near where it started, though no
/// full collection ran (it would take 4 MB of growth).
#[test]
fn steps_paced_by_garbage_keep_the_heap_small() {
    let ks = Keyspace::new();
    let (mut engine, sha) = compiled(b"local t = {KEYS[1], ARGV[1], {}} return #t");
    engine.collect();
    let start = engine.lua.used_memory();
    let collected_at = engine.collected_at;
    let mut steps = 0;
    for i in 0..20_000u32 {
        let keys = [Bytes::from(format!("lock:{i}"))];
        let args = [Bytes::from(format!("token-{i}"))];
        let inv = read_run(&sha, &keys, &args);
        let stepped_at = engine.stepped_at;
        assert_eq!(engine.run(Access::Read(&ks), &inv), Ok(Reply::Int(3)));
        steps += usize::from(engine.stepped_at != stepped_at);
    }
    assert_eq!(engine.collected_at, collected_at, "no full collection ran");
    assert!(
        steps > 100 && steps < 20_000 / 2,
        "{steps} steps for 20k scripts"
    );
    assert!(
        engine.lua.used_memory() < start + 512 * 1024,
        "heap {} after 20k scripts, from {start}",
        engine.lua.used_memory()
    );
    assert_collector_stopped(&engine);
}

#[test]
fn the_collector_stays_stopped_after_a_full_collection() {
    let mut engine = Engine::new();
    engine.collect();
    assert_collector_stopped(&engine);
}

/// 100k empty tables of garbage: a running collector would keep the heap near its
/// size through them.
fn assert_collector_stopped(engine: &Engine) {
    let before = engine.lua.used_memory();
    engine
        .lua
        .load("for i = 1, 100000 do local t = {} end")
        .exec()
        .unwrap();
    assert!(engine.lua.used_memory() > before + 100_000 * 32);
}

#[test]
fn keys_and_argv_count_against_the_memory_limit() {
    let ks = Keyspace::new();
    let (mut engine, sha) = compiled(b"return #ARGV");
    // 17 distinct 4 MiB arguments: past the 64 MiB a script may allocate.
    let args: Vec<Bytes> = (0..17u8)
        .map(|i| Bytes::from(vec![b'a' + i; 4 << 20]))
        .collect();
    let inv = |args| read_run(&sha, &[], args);
    assert_eq!(
        engine.run(Access::Read(&ks), &inv(&args)),
        Err(Reply::Error(format!(
            "ERR Error running script {sha}, not enough memory"
        )))
    );
    assert_eq!(
        engine.run(Access::Read(&ks), &inv(&args[..2])),
        Ok(Reply::Int(2))
    );
}

#[test]
fn version_num_packs_three_parts() {
    assert_eq!(version_num("7.2.4"), 0x070204);
}

#[test]
fn wait_is_dropped_from_lock_requests_only() {
    let argv = |s: &str| -> Vec<Bytes> {
        s.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    };
    assert_eq!(
        *without_wait("lock", &argv("lock r o 100 WAIT 5 MODE PR")),
        argv("lock r o 100 MODE PR")
    );
    assert_eq!(
        *without_wait("set", &argv("set k WAIT")),
        argv("set k WAIT")
    );
    assert!(matches!(
        without_wait("del", &argv("del k")),
        Cow::Borrowed(_)
    ));
}
