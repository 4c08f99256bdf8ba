//! Scripts driven through apply and query, as Raft drives them.

use bytes::Bytes;

use crate::reply::Reply;
use crate::state::tests::{argv, bulk, err, int, Harness};

const RELEASE: &str =
    "if redis.call('get',KEYS[1]) == ARGV[1] then return redis.call('del',KEYS[1]) else return 0 end";

fn eval(h: &mut Harness, script: &str, keys: &[&str], args: &[&str]) -> Reply {
    let numkeys = keys.len().to_string();
    let mut argv = vec!["eval", script, numkeys.as_str()];
    argv.extend_from_slice(keys);
    argv.extend_from_slice(args);
    h.write_args(&argv)
}

fn eval0(h: &mut Harness, script: &str) -> Reply {
    eval(h, script, &[], &[])
}

#[test]
fn redlock_release_deletes_only_the_owners_key() {
    let mut h = Harness::new();
    h.write("set lock owner-a px 10000");
    assert_eq!(eval(&mut h, RELEASE, &["lock"], &["owner-b"]), int(0));
    assert_eq!(h.read("get lock"), bulk("owner-a"));
    assert_eq!(eval(&mut h, RELEASE, &["lock"], &["owner-a"]), int(1));
    assert_eq!(h.read("get lock"), Reply::Nil);
}

#[test]
fn evalsha_runs_a_cached_script_and_noscript_otherwise() {
    let mut h = Harness::new();
    let sha = super::sha1_hex(RELEASE.as_bytes());
    assert_eq!(
        h.write_args(&["evalsha", &sha, "1", "lock", "me"]),
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    assert_eq!(h.write_args(&["script", "load", RELEASE]), bulk(&sha));
    h.write("set lock me");
    assert_eq!(
        h.write_args(&["evalsha", &sha.to_uppercase(), "1", "lock", "me"]),
        int(1)
    );
    assert_eq!(
        h.read(&format!("script exists {sha} {}", "0".repeat(40))),
        Reply::Array(vec![int(1), int(0)])
    );
}

#[test]
fn runtime_errors_read_as_redis_7() {
    let mut h = Harness::new();
    let script = "return nosuch";
    let sha = super::sha1_hex(script.as_bytes());
    assert_eq!(
        eval0(&mut h, script),
        err(&format!("ERR user_script:1: Script attempted to access nonexistent global variable 'nosuch' script: {sha}, on @user_script:1."))
    );
    let script = "x = 1";
    let sha = super::sha1_hex(script.as_bytes());
    assert_eq!(
        eval0(&mut h, script),
        err(&format!("ERR user_script:1: Attempt to modify a readonly table script: {sha}, on @user_script:1."))
    );
    let script = "\nreturn redis.call('nosuchcommand')";
    let sha = super::sha1_hex(script.as_bytes());
    assert_eq!(
        eval0(&mut h, script),
        err(&format!(
            "ERR Unknown Redis command called from script script: {sha}, on @user_script:2."
        ))
    );
    assert_eq!(
        eval0(&mut h, "return +"),
        err("ERR Error compiling script (new function): user_script:1: unexpected symbol near '+'")
    );
}

#[test]
fn an_infinite_loop_is_stopped_by_the_budget() {
    let mut h = Harness::new();
    let reply = eval0(&mut h, "while true do end");
    assert!(
        matches!(&reply, Reply::Error(e) if e.starts_with("ERR Script killed")),
        "{reply:?}"
    );
    let reply = eval0(
        &mut h,
        "while true do pcall(function() while true do end end) end",
    );
    assert!(
        matches!(&reply, Reply::Error(e) if e.starts_with("ERR Script killed")),
        "{reply:?}"
    );
    assert_eq!(eval0(&mut h, "return 1"), int(1));
}

/// EVAL with arguments that need not be text: `script`, `numkeys`, then `rest` as given.
fn eval_bytes(h: &mut Harness, script: &str, numkeys: usize, rest: &[&[u8]]) -> Reply {
    let mut op = vec![
        Bytes::from("eval"),
        Bytes::copy_from_slice(script.as_bytes()),
        Bytes::from(numkeys.to_string()),
    ];
    op.extend(rest.iter().map(|arg| Bytes::copy_from_slice(arg)));
    let mut replies = h.ks.apply_batch(&crate::state::Batch {
        now_ms: h.now_ms,
        ops: vec![op],
    });
    replies.pop().expect("one reply")
}

#[test]
fn argv_keeps_binary() {
    let mut h = Harness::new();
    let reply = eval_bytes(&mut h, "return ARGV[1]", 0, &[&[0u8, 255, 10]]);
    assert_eq!(reply, Reply::Bulk(Bytes::from(vec![0u8, 255, 10])));
}

#[test]
fn each_run_sees_only_its_own_keys_and_argv() {
    let mut h = Harness::new();
    assert_eq!(
        eval(
            &mut h,
            "KEYS[5] = 'x'; return #KEYS + #ARGV",
            &["a", "b"],
            &["c"]
        ),
        int(3)
    );
    assert_eq!(
        eval(&mut h, "return #KEYS * 10 + #ARGV", &["a"], &[]),
        int(10)
    );
    // A run that ends in redis.call's error, then one with neither KEYS nor ARGV.
    assert!(matches!(
        eval(
            &mut h,
            "return redis.call('nosuch', KEYS[1])",
            &["a"],
            &["b"]
        ),
        Reply::Error(_)
    ));
    assert_eq!(
        eval0(
            &mut h,
            "return {#KEYS, #ARGV, type(redis.pcall('get', 'k'))}"
        ),
        Reply::Array(vec![int(0), int(0), Reply::Bulk(Bytes::from("boolean"))])
    );
    // Text and other bytes in one table keep their order and their bytes.
    let reply = eval_bytes(
        &mut h,
        "return {KEYS[1], KEYS[2], KEYS[3], #KEYS}",
        3,
        &[b"k1", &[0xff, 0], b"k3"],
    );
    assert_eq!(
        reply,
        Reply::Array(vec![
            bulk("k1"),
            Reply::Bulk(Bytes::from(vec![0xffu8, 0])),
            bulk("k3"),
            int(3)
        ])
    );
}

fn sha(script: &str) -> String {
    super::sha1_hex(script.as_bytes())
}

/// The error a script raised, with Redis 7's location suffix for line `line`.
fn raised(script: &str, message: &str, line: u32) -> Reply {
    err(&format!(
        "{message} script: {}, on @user_script:{line}.",
        sha(script)
    ))
}

fn array(items: Vec<Reply>) -> Reply {
    Reply::Array(items)
}

#[test]
fn lua_values_become_replies_as_in_redis_resp2() {
    let mut h = Harness::new();
    let cases: &[(&str, Reply)] = &[
        ("return 3.99", int(3)),
        ("return -3.99", int(-3)),
        ("return 1e30", int(i64::MIN)),
        ("return 'text'", bulk("text")),
        ("return true", int(1)),
        ("return false", Reply::Nil),
        ("return nil", Reply::Nil),
        ("return", Reply::Nil),
        ("return {1, 2, nil, 4}", array(vec![int(1), int(2)])),
        (
            "return {1, {2, 'a'}, {}}",
            array(vec![int(1), array(vec![int(2), bulk("a")]), array(vec![])]),
        ),
        ("return {ok = 'fine'}", Reply::status("fine")),
        ("return {err = 'BAD thing'}", err("BAD thing")),
        ("return redis.status_reply('PONG')", Reply::status("PONG")),
        ("return redis.error_reply('My Error')", err("My Error")),
        ("return redis.error_reply('OOPS')", err("ERR OOPS")),
        (
            "return redis.error_reply(1)",
            err("ERR wrong number or type of arguments"),
        ),
        ("return {double = 1.5}", Reply::Double(1.5)),
        (
            "return {map = {a = 1}}",
            Reply::Map(vec![(bulk("a"), int(1))]),
        ),
        ("return {set = {a = true}}", Reply::Set(vec![bulk("a")])),
        (
            "return {big_number = '12345678901234567890'}",
            bulk("12345678901234567890"),
        ),
        (
            "return {verbatim_string = {format = 'txt', string = 'hi'}}",
            Reply::Verbatim("txt".into(), Bytes::from("hi")),
        ),
        (
            "return {true, false, 'x'}",
            array(vec![int(1), Reply::Nil, bulk("x")]),
        ),
        ("return function() end", Reply::Nil),
        ("return cjson.null", Reply::Nil),
    ];
    for (script, expected) in cases {
        assert_eq!(&eval0(&mut h, script), expected, "{script}");
    }
}

#[test]
fn lua_values_become_replies_as_in_redis_resp3() {
    let mut h = Harness::new();
    let cases: &[(&str, Reply)] = &[
        ("redis.setresp(3) return true", Reply::Bool(true)),
        ("redis.setresp(3) return false", Reply::Bool(false)),
        ("redis.setresp(3) return nil", Reply::Nil),
        ("redis.setresp(3) return 2.5", int(2)),
        ("redis.setresp(3) return {double = 2.5}", Reply::Double(2.5)),
        (
            "redis.setresp(3) return {1, true}",
            array(vec![int(1), Reply::Bool(true)]),
        ),
        ("redis.setresp(2) return true", int(1)),
    ];
    for (script, expected) in cases {
        assert_eq!(&eval0(&mut h, script), expected, "{script}");
    }
    assert_eq!(
        eval0(&mut h, "redis.setresp(4)"),
        raised("redis.setresp(4)", "ERR RESP version must be 2 or 3.", 1)
    );
}

#[test]
fn command_replies_become_lua_values_as_in_redis() {
    let mut h = Harness::new();
    h.write("set text abc");
    h.write("set n 5");
    let resp2: &[(&str, Reply)] = &[
        ("return redis.call('get', 'missing') == false", int(1)),
        ("return redis.call('set', 'k', 'v').ok", bulk("OK")),
        ("return type(redis.call('incr', 'n'))", bulk("number")),
        ("return redis.call('mget', 'text', 'missing', 'n')", array(vec![bulk("abc"), Reply::Nil, bulk("6")])),
        ("local r = redis.call('mget', 'missing', 'text') return r[1] == false and r[2] == 'abc'", int(1)),
        ("return redis.call('ping').ok", bulk("PONG")),
        ("return redis.call('echo', 'hi')", bulk("hi")),
        ("return redis.call('set', 'k', 1.5) and redis.call('get', 'k')", bulk("1.5")),
        ("return redis.call('set', 'k', 0.1) and redis.call('get', 'k')", bulk("0.10000000000000001")),
    ];
    for (script, expected) in resp2 {
        assert_eq!(&eval0(&mut h, script), expected, "{script}");
    }
    let resp3: &[(&str, Reply)] = &[
        (
            "redis.setresp(3) return redis.call('get', 'missing') == nil",
            Reply::Bool(true),
        ),
        (
            "redis.setresp(3) return redis.call('set', 'k', 'v').ok",
            bulk("OK"),
        ),
    ];
    for (script, expected) in resp3 {
        assert_eq!(&eval0(&mut h, script), expected, "{script}");
    }
    h.write("lock res owner 10000");
    let lockinfo =
        "redis.setresp(3) local info = redis.call('lockinfo', KEYS[1]) return info.map.mode";
    assert_eq!(eval(&mut h, lockinfo, &["res"], &[]), bulk("EX"));
    let lockinfo2 = "local info = redis.call('lockinfo', KEYS[1]) return {info[1], info[2]}";
    assert_eq!(
        eval(&mut h, lockinfo2, &["res"], &[]),
        array(vec![bulk("mode"), bulk("EX")])
    );
}

#[test]
fn every_reply_type_converts_to_lua_in_both_protocols() {
    use super::convert::reply_to_lua;
    use mlua::Lua;
    let lua = Lua::new();
    let show = |reply: Reply, resp3: bool| -> String {
        let value = reply_to_lua(&lua, &reply, resp3).unwrap();
        lua.load("local v = ... local function show(v) if type(v) ~= 'table' then return type(v) .. ':' .. tostring(v) end local keys = {} for k in pairs(v) do keys[#keys + 1] = tostring(k) end table.sort(keys) local out = {} for _, k in ipairs(keys) do out[#out + 1] = k .. '=' .. show(v[k] == nil and v[tonumber(k)] or v[k]) end return '{' .. table.concat(out, ',') .. '}' end return show(v)")
            .call::<String>(value)
            .unwrap()
    };
    let cases: Vec<(Reply, &str, &str)> = vec![
        (Reply::Ok, "{ok=string:OK}", "{ok=string:OK}"),
        (Reply::Int(7), "number:7", "number:7"),
        (Reply::Nil, "boolean:false", "nil:nil"),
        (Reply::NilArray, "boolean:false", "nil:nil"),
        (Reply::Double(1.5), "string:1.5", "{double=number:1.5}"),
        (Reply::Bool(true), "number:1", "boolean:true"),
        (
            Reply::Set(vec![bulk("a")]),
            "{1=string:a}",
            "{set={a=boolean:true}}",
        ),
        (
            Reply::Map(vec![(bulk("k"), Reply::Int(1))]),
            "{1=string:k,2=number:1}",
            "{map={k=number:1}}",
        ),
        (
            Reply::Verbatim("txt".into(), Bytes::from("hi")),
            "string:hi",
            "{verbatim_string={format=string:txt,string=string:hi}}",
        ),
        (
            Reply::error("ERR x"),
            "{err=string:ERR x}",
            "{err=string:ERR x}",
        ),
    ];
    for (reply, resp2, resp3) in cases {
        assert_eq!(show(reply.clone(), false), resp2, "{reply:?} in RESP2");
        assert_eq!(show(reply.clone(), true), resp3, "{reply:?} in RESP3");
    }
}

#[test]
fn call_raises_and_pcall_returns_error_tables() {
    let mut h = Harness::new();
    h.write("set text abc");
    let script = "return redis.call('incr', KEYS[1])";
    assert_eq!(
        eval(&mut h, script, &["text"], &[]),
        raised(script, "ERR value is not an integer or out of range", 1)
    );
    assert_eq!(
        eval(
            &mut h,
            "return redis.pcall('incr', KEYS[1])",
            &["text"],
            &[]
        ),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        eval(
            &mut h,
            "local r = redis.pcall('incr', KEYS[1]) return r.err",
            &["text"],
            &[]
        ),
        bulk("ERR value is not an integer or out of range")
    );
    assert_eq!(
        eval(
            &mut h,
            "local ok, e = pcall(redis.call, 'incr', KEYS[1]) return {tostring(ok), e}",
            &["text"],
            &[]
        ),
        array(vec![
            bulk("false"),
            bulk("ERR value is not an integer or out of range")
        ])
    );
    let script = "local ok, e = pcall(function() redis.call('incr', 'text') end)\nreturn e";
    assert_eq!(
        eval0(&mut h, script),
        bulk("ERR value is not an integer or out of range")
    );
    let wrong_type = "return redis.call('get', 'l')";
    h.write("lock l owner 1000");
    assert_eq!(
        eval0(&mut h, wrong_type),
        raised(
            wrong_type,
            "WRONGTYPE Operation against a key holding the wrong kind of value",
            1
        )
    );
    let custom = "error({err = 'MINE custom failure'})";
    assert_eq!(
        eval0(&mut h, custom),
        raised(custom, "MINE custom failure", 1)
    );
    let plain = "\n\nerror('boom')";
    assert_eq!(
        eval0(&mut h, plain),
        raised(plain, "ERR user_script:3: boom", 3)
    );
    let arity = "return redis.call('get')";
    assert_eq!(
        eval0(&mut h, arity),
        raised(
            arity,
            "ERR Wrong number of args calling Redis command from script",
            1
        )
    );
    let noscript = "return redis.call('eval', 'return 1', '0')";
    assert_eq!(
        eval0(&mut h, noscript),
        raised(
            noscript,
            "ERR This Redis command is not allowed from script",
            1
        )
    );
    let server = "return redis.call('info')";
    assert_eq!(
        eval0(&mut h, server),
        raised(
            server,
            "ERR This Redis command is not allowed from script",
            1
        )
    );
    let bad_arg = "return redis.call('get', {})";
    assert_eq!(
        eval0(&mut h, bad_arg),
        raised(
            bad_arg,
            "ERR Lua redis lib command arguments must be strings or integers",
            1
        )
    );
    let no_args = "return redis.call()";
    assert_eq!(
        eval0(&mut h, no_args),
        raised(
            no_args,
            "ERR Please specify at least one argument for this redis lib call",
            1
        )
    );
}

#[test]
fn numkeys_is_checked_as_redis_does() {
    let mut h = Harness::new();
    assert_eq!(
        h.write_args(&["eval", "return 1", "2", "a"]),
        err("ERR Number of keys can't be greater than number of args")
    );
    assert_eq!(
        h.write_args(&["eval", "return 1", "-1"]),
        err("ERR Number of keys can't be negative")
    );
    assert_eq!(
        h.write_args(&["eval", "return 1", "x"]),
        err("ERR value is not an integer or out of range")
    );
    assert_eq!(
        h.write_args(&[
            "eval",
            "return {KEYS[1], KEYS[2], ARGV[1], #ARGV}",
            "2",
            "a",
            "b",
            "c"
        ]),
        array(vec![bulk("a"), bulk("b"), bulk("c"), int(1)])
    );
    assert_eq!(
        h.write_args(&["evalsha", "abc", "0"]),
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
}

#[test]
fn sandbox_refuses_escapes() {
    let mut h = Harness::new();
    for name in [
        "os",
        "io",
        "debug",
        "require",
        "dofile",
        "loadfile",
        "load",
        "print",
        "collectgarbage",
        "getfenv",
        "setfenv",
        "newproxy",
        "module",
    ] {
        let script = format!("return {name}");
        assert_eq!(
            eval0(&mut h, &script),
            raised(&script, &format!("ERR user_script:1: Script attempted to access nonexistent global variable '{name}'"), 1),
        );
    }
    let script = "os.execute('touch /tmp/pwned')";
    assert!(
        matches!(eval0(&mut h, script), Reply::Error(e) if e.contains("nonexistent global variable 'os'"))
    );
    let script = "return io.open('/etc/passwd')";
    assert!(
        matches!(eval0(&mut h, script), Reply::Error(e) if e.contains("nonexistent global variable 'io'"))
    );
    let readonly = "Attempt to modify a readonly table";
    for script in [
        "x = 1",
        "KEYS = {}",
        "redis = nil",
        "redis.call = function() end",
        "string.len = nil",
        "math.random = function() return 4 end",
        "rawset(_G, 'x', 1)",
        "rawset(string, 'x', 1)",
        "table.insert(string, 1)",
        "loadstring('y = 1')()",
        "_G.x = 1",
    ] {
        assert!(
            matches!(eval0(&mut h, script), Reply::Error(e) if e.contains(readonly)),
            "{script}"
        );
    }
    assert!(matches!(
        eval0(&mut h, "setmetatable(_G, {})"),
        Reply::Error(e) if e.contains("cannot change a protected metatable")
    ));
    assert!(matches!(
        eval0(&mut h, "return getmetatable('').__index"),
        Reply::Error(e) if e.contains("attempt to index a boolean value")
    ));
    // Bytecode is refused; source chunks run in the sandbox.
    assert_eq!(
        eval0(
            &mut h,
            "return loadstring(string.dump(function() return 1 end))"
        ),
        Reply::Nil
    );
    assert_eq!(eval0(&mut h, "return loadstring('return 1 + 1')()"), int(2));
    // Nothing a script tried stuck for the next one.
    assert_eq!(
        eval0(
            &mut h,
            "return {type(string.len), type(redis.call), rawget(_G, 'x') == nil}"
        ),
        array(vec![bulk("function"), bulk("function"), int(1)])
    );
    assert_eq!(
        eval0(&mut h, "return tostring({})"),
        bulk("table: (address hidden)")
    );
    assert_eq!(
        eval0(
            &mut h,
            "return tostring(setmetatable({}, {__tostring = function() return 'me' end}))"
        ),
        bulk("me")
    );
}

#[test]
fn memory_bombs_and_runaway_loops_are_stopped() {
    let mut h = Harness::new();
    let doubling = "local s = string.rep('x', 1024 * 1024) while true do s = s .. s end";
    assert_eq!(
        eval0(&mut h, doubling),
        err(&format!(
            "ERR Error running script {}, not enough memory",
            sha(doubling)
        ))
    );
    let rep = "return #string.rep('x', 1e10)";
    assert!(matches!(eval0(&mut h, rep), Reply::Error(e) if e.starts_with("ERR Script killed")));
    let rep_loop = "while true do local s = string.rep('ab', 1e6) end";
    assert!(
        matches!(eval0(&mut h, rep_loop), Reply::Error(e) if e.starts_with("ERR Script killed"))
    );
    let coroutine_loop =
        "local co = coroutine.create(function() while true do end end) return coroutine.resume(co)";
    assert!(
        matches!(eval0(&mut h, coroutine_loop), Reply::Error(e) if e.starts_with("ERR Script killed"))
    );
    let xpcall_loop =
        "while true do xpcall(function() while true do end end, function(e) return e end) end";
    assert!(
        matches!(eval0(&mut h, xpcall_loop), Reply::Error(e) if e.starts_with("ERR Script killed"))
    );
    // The state is usable afterwards: the heap went back down, the budget is fresh.
    assert_eq!(
        eval0(&mut h, "return #string.rep('x', 1000000)"),
        int(1_000_000)
    );
    assert_eq!(
        eval0(
            &mut h,
            "local n = 0 for i = 1, 100000 do n = n + i end return n"
        ),
        int(5_000_050_000)
    );
}

#[test]
fn a_failed_script_leaves_no_trace() {
    let mut h = Harness::new();
    h.write("set keep 1 px 100000");
    h.write("set other 2");
    h.write("lock held owner 10000");
    let keep_token = h.token("keep");
    let script = "redis.call('set', 'keep', 'changed')\n\
                  redis.call('del', 'other')\n\
                  redis.call('set', 'new', 'x', 'px', '5')\n\
                  redis.call('pexpire', 'keep', '1')\n\
                  redis.call('unlock', 'held', 'owner')\n\
                  redis.call('lock', 'fresh', 'me', '1000')\n\
                  redis.call('flushall')\n\
                  redis.call('set', 'after-flush', '1')\n\
                  error('undo all of it')";
    h.write_args(&["script", "load", script]);
    let before = h.ks.to_snapshot();
    let reply = h.write_args(&["evalsha", &sha(script), "0"]);
    assert_eq!(
        reply,
        raised(script, "ERR user_script:9: undo all of it", 9)
    );
    assert_eq!(
        h.ks.to_snapshot(),
        before,
        "state and fence counter are as before"
    );
    assert!(
        h.ks.take_events().is_empty(),
        "no lock events escape a failed script"
    );
    h.ks.assert_consistent();
    assert_eq!(h.token("keep"), keep_token);
    h.write("set next 1");
    // keep, other and the lock took tokens 1 to 3; the failed script's are given back.
    assert_eq!(h.token("next"), keep_token + 3);
    // A snapshot holds the rolled-back keys, not the script's.
    let restored = crate::state::Keyspace::from_snapshot(&h.ks.to_snapshot()).unwrap();
    assert_eq!(
        restored.query(h.now_ms, &argv("exists after-flush fresh")),
        int(0)
    );
}

#[test]
fn a_successful_script_applies_all_its_writes() {
    let mut h = Harness::new();
    let script =
        "redis.call('set', 'a', '1') redis.call('incr', 'a') return redis.call('get', 'a')";
    assert_eq!(eval0(&mut h, script), bulk("2"));
    assert_eq!(h.read("get a"), bulk("2"));
    // An error reply the script returns (not raises) keeps its writes, as in Redis.
    let script = "redis.call('set', 'b', '1') return redis.error_reply('NOPE kept')";
    assert_eq!(eval0(&mut h, script), err("NOPE kept"));
    assert_eq!(h.read("get b"), bulk("1"));
    // A caught error keeps the writes around it.
    let script = "redis.call('set', 'c', '1') pcall(redis.call, 'incr', 'nosuch', 'x') return 1";
    assert_eq!(eval0(&mut h, script), int(1));
    assert_eq!(h.read("get c"), bulk("1"));
}

#[test]
fn lock_wait_inside_a_script_is_a_try_lock() {
    let mut h = Harness::new();
    h.write("lock res first 10000");
    let script = "return redis.call('lock', KEYS[1], ARGV[1], '1000', 'WAIT', '0')";
    assert_eq!(eval(&mut h, script, &["res"], &["second"]), Reply::Nil);
    let info = h.read("lockinfo res");
    let Reply::Map(fields) = info else {
        panic!("lockinfo: {info:?}")
    };
    assert!(
        fields.contains(&(bulk("waiters"), array(vec![]))),
        "nobody queued: {fields:?}"
    );
    h.write("unlock res first");
    assert!(matches!(
        eval(&mut h, script, &["res"], &["second"]),
        Reply::Int(_)
    ));
}

#[test]
fn scripts_see_the_entry_time_and_a_fixed_random_sequence() {
    let mut h = Harness::new();
    let now = h.now_ms;
    assert_eq!(
        eval0(&mut h, "return redis.call('time')"),
        array(vec![
            bulk(&(now / 1000).to_string()),
            bulk(&(now % 1000 * 1000).to_string())
        ])
    );
    // Each run draws other numbers (Redis 7 does not reseed between scripts), and every
    // replica the same ones: the seed comes from the op's place in the log.
    let random = "return {math.random(1000000), math.random(1000000), math.random(1000000)}";
    let first = eval0(&mut h, random);
    h.advance(1000);
    assert_ne!(eval0(&mut h, random), first, "the same numbers twice");
    let run_at = |index: u64| {
        let mut ks = crate::state::Keyspace::new();
        let eval: Vec<Bytes> = ["eval", random, "0"]
            .iter()
            .map(|arg| Bytes::from(arg.to_string()))
            .collect();
        ks.apply_entry(
            index,
            &crate::state::Batch {
                now_ms: 5,
                ops: vec![eval.clone(), eval],
            },
        )
    };
    let (seventh, eighth) = (run_at(7), run_at(8));
    assert_eq!(run_at(7), seventh, "replicas draw the same numbers");
    assert_ne!(
        seventh[0], seventh[1],
        "two scripts of one entry draw the same"
    );
    assert_ne!(seventh, eighth, "two entries draw the same");
    let seeded = "math.randomseed(42) return math.random(1000000)";
    assert_eq!(eval0(&mut h, seeded), eval0(&mut h, seeded));
    assert!(matches!(
        eval0(&mut h, "return math.random(0)"),
        Reply::Error(e) if e.contains("bad argument #1 to 'random' (interval is empty)")
    ));
    assert!(matches!(
        eval0(&mut h, "return math.random()"),
        Reply::Int(0)
    ));
}

#[test]
fn redis_helpers_behave_as_in_redis() {
    let mut h = Harness::new();
    assert_eq!(
        eval0(&mut h, "return redis.sha1hex('')"),
        bulk("da39a3ee5e6b4b0d3255bfef95601890afd80709")
    );
    assert_eq!(
        eval0(&mut h, "redis.log(redis.LOG_WARNING, 'hello') return 1"),
        int(1)
    );
    let log = "redis.log(redis.LOG_WARNING)";
    assert_eq!(
        eval0(&mut h, log),
        raised(log, "ERR redis.log() requires two arguments or more.", 1)
    );
    assert_eq!(eval0(&mut h, "return redis.REDIS_VERSION"), bulk("7.2.4"));
    assert_eq!(eval0(&mut h, "return redis.replicate_commands()"), int(1));
    assert_eq!(
        eval0(&mut h, "redis.set_repl(redis.REPL_ALL) return 1"),
        int(1)
    );
    assert_eq!(eval0(&mut h, "return redis.acl_check_cmd('get')"), int(1));
    assert_eq!(eval0(&mut h, "return unpack({1, 2})"), int(1));
    assert_eq!(
        eval0(&mut h, "return select('#', unpack({1, 2, 3}))"),
        int(3)
    );
}

#[test]
fn cjson_encodes_and_decodes_like_lua_cjson() {
    let mut h = Harness::new();
    let cases: &[(&str, Reply)] = &[
        ("return cjson.encode({1, 2, 3})", bulk("[1,2,3]")),
        ("return cjson.encode({a = 1})", bulk("{\"a\":1}")),
        ("return cjson.encode({})", bulk("{}")),
        ("return cjson.encode('a/b\"\\n')", bulk("\"a\\/b\\\"\\n\"")),
        ("return cjson.encode({1.5, true, cjson.null})", bulk("[1.5,true,null]")),
        ("return cjson.encode(0.1)", bulk("0.1")),
        ("return cjson.encode({[1] = 'a', [3] = 'c'})", bulk("[\"a\",null,\"c\"]")),
        ("local t = cjson.decode('{\"a\":[1,2,null],\"b\":\"\\\\u00e9\"}') return {t.a[1], t.a[3] == cjson.null, t.b}", array(vec![int(1), int(1), bulk("é")])),
        ("return cjson.decode('[1, 2.5, \"x\"]')", array(vec![int(1), int(2), bulk("x")])),
        ("return cjson.decode('true')", int(1)),
    ];
    for (script, expected) in cases {
        assert_eq!(&eval0(&mut h, script), expected, "{script}");
    }
    assert!(matches!(
        eval0(&mut h, "return cjson.decode('{\"a\":}')"),
        Reply::Error(e) if e.contains("Expected value but found T_OBJ_END at character 6")
    ));
    assert!(matches!(
        eval0(&mut h, "return cjson.encode({[100] = 1})"),
        Reply::Error(e) if e.contains("Cannot serialise table: excessively sparse array")
    ));
    assert!(matches!(
        eval0(&mut h, "return cjson.encode(function() end)"),
        Reply::Error(e) if e.contains("Cannot serialise function: type not supported")
    ));
}

#[test]
fn eval_ro_reads_and_refuses_writes() {
    let mut h = Harness::new();
    h.write("set k v");
    let q = |h: &Harness, args: &[&str]| -> Reply {
        let argv: Vec<Bytes> = args.iter().map(|a| Bytes::from(a.to_string())).collect();
        h.ks.query(h.now_ms, &argv)
    };
    assert_eq!(
        q(
            &h,
            &["eval_ro", "return redis.call('get', KEYS[1])", "1", "k"]
        ),
        bulk("v")
    );
    let write = "return redis.call('set', 'k', 'w')";
    assert_eq!(
        q(&h, &["eval_ro", write, "0"]),
        raised(
            write,
            "ERR Write commands are not allowed from read-only scripts.",
            1
        )
    );
    assert_eq!(
        q(&h, &["evalsha_ro", &sha(write), "0"]),
        err("NOSCRIPT No matching script. Please use EVAL.")
    );
    let shebang = "#!lua flags=no-writes\nreturn redis.call('get', 'k')";
    assert_eq!(q(&h, &["eval_ro", shebang, "0"]), bulk("v"));
    let writer = "#!lua\nreturn 1";
    assert_eq!(
        q(&h, &["eval_ro", writer, "0"]),
        err("ERR Can not execute a script with write flag using *_ro command.")
    );
    // A no-writes script refuses writes under plain EVAL too.
    let no_writes = "#!lua flags=no-writes\nreturn redis.call('set', 'k', 'x')";
    assert_eq!(
        eval0(&mut h, no_writes),
        raised(
            no_writes,
            "ERR Write commands are not allowed from read-only scripts.",
            2
        )
    );
    assert_eq!(
        eval0(&mut h, "#!lua flags=bogus\nreturn 1"),
        err("ERR Unexpected flag in script shebang: bogus")
    );
    let reads = h.ks.to_snapshot();
    assert_eq!(q(&h, &["eval_ro", "return 1", "0"]), int(1));
    assert_eq!(h.ks.to_snapshot(), reads, "EVAL_RO changes no state");
}

#[test]
fn script_cache_survives_snapshots_and_restores_byte_exact() {
    let mut h = Harness::new();
    assert_eq!(
        h.write_args(&["script", "load", RELEASE]),
        bulk(&sha(RELEASE))
    );
    eval0(&mut h, "return 'evaluated'");
    h.write("set lock me");
    let snapshot = h.ks.to_snapshot();
    let restored = crate::state::Keyspace::from_snapshot(&snapshot).unwrap();
    assert_eq!(restored.to_snapshot(), snapshot);
    let mut h2 = Harness {
        ks: restored,
        now_ms: h.now_ms,
    };
    assert_eq!(
        h2.write_args(&["evalsha", &sha(RELEASE), "1", "lock", "me"]),
        int(1)
    );
    assert_eq!(
        h2.write_args(&["evalsha", &sha("return 'evaluated'"), "0"]),
        bulk("evaluated")
    );
}

#[test]
fn script_flush_empties_the_cache_and_is_persisted() {
    let mut h = Harness::new();
    h.write_args(&["script", "load", RELEASE]);
    assert_eq!(h.write("script flush"), Reply::Ok);
    assert_eq!(h.write("script flush async"), Reply::Ok);
    assert_eq!(
        h.write("script flush now"),
        err("ERR SCRIPT FLUSH only support SYNC|ASYNC option")
    );
    assert_eq!(
        h.read(&format!("script exists {}", sha(RELEASE))),
        array(vec![int(0)])
    );
    let restored = crate::state::Keyspace::from_snapshot(&h.ks.to_snapshot()).unwrap();
    assert_eq!(
        restored.query(h.now_ms, &argv(&format!("script exists {}", sha(RELEASE)))),
        array(vec![int(0)])
    );
    assert_eq!(
        h.read("script kill"),
        err("NOTBUSY No scripts in execution right now.")
    );
    assert_eq!(
        h.write("script"),
        err("ERR wrong number of arguments for 'script' command")
    );
    assert_eq!(
        h.write("script load"),
        err("ERR wrong number of arguments for 'script|load' command")
    );
}

#[test]
fn eval_keeps_the_newest_scripts_and_loaded_ones_stay() {
    use crate::config::state_limits::MAX_EVAL_SCRIPTS;
    let mut h = Harness::new();
    h.write_args(&["script", "load", "return 'pinned'"]);
    for i in 0..=MAX_EVAL_SCRIPTS {
        eval0(&mut h, &format!("return {i}"));
    }
    let exists = |h: &Harness, script: &str| h.read(&format!("script exists {}", sha(script)));
    assert_eq!(
        exists(&h, "return 0"),
        array(vec![int(0)]),
        "the oldest was dropped"
    );
    assert_eq!(exists(&h, "return 1"), array(vec![int(1)]));
    assert_eq!(
        exists(&h, &format!("return {MAX_EVAL_SCRIPTS}")),
        array(vec![int(1)])
    );
    assert_eq!(exists(&h, "return 'pinned'"), array(vec![int(1)]));
    let snapshot = h.ks.to_snapshot();
    let mut h2 = Harness {
        ks: crate::state::Keyspace::from_snapshot(&snapshot).unwrap(),
        now_ms: h.now_ms,
    };
    eval0(&mut h, "return 'one more'");
    eval0(&mut h2, "return 'one more'");
    assert_eq!(
        h.ks.to_snapshot(),
        h2.ks.to_snapshot(),
        "eviction order survives a snapshot"
    );
}

#[test]
fn replicas_agree_on_every_script_reply_and_state() {
    let scripts = [
        "redis.call('set', KEYS[1], ARGV[1]) return redis.call('incr', KEYS[2])",
        "return {math.random(), math.random(100)}",
        "return redis.call('time')",
        "local t = {} for i = 1, 50 do t[#t + 1] = redis.call('incr', 'counter') end return t",
        "return cjson.encode({a = {1, 2}, b = 'x', c = true})",
        "while true do end",
        "redis.call('set', 'partial', '1') error('fails')",
        "return tostring({}) .. tostring(print)",
        "local w = setmetatable({}, {__mode = 'v'}) w[1] = {} for i = 1, 20000 do local x = {i} end return w[1] ~= nil",
        "return redis.call('lock', 'L', ARGV[1], '100', 'WAIT', '50')",
    ];
    let mut one = crate::state::Keyspace::new();
    let mut two = crate::state::Keyspace::new();
    let mut now = 1_700_000_000_000u64;
    for round in 0..3 {
        for (i, script) in scripts.iter().enumerate() {
            now += 7;
            let owner = format!("o{round}{i}");
            let batch = crate::state::Batch {
                now_ms: now,
                ops: vec![
                    ["eval", script, "2", "a", "counter", owner.as_str()]
                        .iter()
                        .map(|s| Bytes::from(s.to_string()))
                        .collect(),
                    vec![
                        Bytes::from("set"),
                        Bytes::from("b"),
                        Bytes::from(owner.clone()),
                    ],
                ],
            };
            assert_eq!(one.apply_batch(&batch), two.apply_batch(&batch), "{script}");
            assert_eq!(one.to_snapshot(), two.to_snapshot(), "{script}");
            assert_eq!(one.take_events(), two.take_events());
        }
        // A node that restarts has a fresh Lua state, and must still agree.
        two = crate::state::Keyspace::from_snapshot(&two.to_snapshot()).unwrap();
    }
}

#[test]
fn a_failed_script_rolls_back_lists_hashes_and_sorted_sets() {
    let mut h = Harness::new();
    h.write("rpush l a");
    h.write("hset h f 1");
    h.write("zadd z 1 m");
    let script = "redis.call('rpush', 'l', 'b')\n\
                  redis.call('lpop', 'l')\n\
                  redis.call('rpush', 'l2', 'x')\n\
                  redis.call('hset', 'h', 'f', '2', 'g', '3')\n\
                  redis.call('hincrby', 'h2', 'n', '1')\n\
                  redis.call('zadd', 'z', '5', 'm', '6', 'n')\n\
                  redis.call('zrem', 'z', 'm')\n\
                  error('undo')";
    // EVAL caches the script body (as Redis does) even when the script fails.
    h.write_args(&["script", "load", script]);
    let before = h.ks.to_snapshot();
    let reply = h.write_args(&["evalsha", &sha(script), "0"]);
    assert!(reply.is_error(), "{reply:?}");
    assert_eq!(h.ks.to_snapshot(), before);
    h.ks.assert_consistent();
}
