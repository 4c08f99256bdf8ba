//! Writes the seed inputs of each target's corpus: real requests, replies, scripts,
//! snapshots and Raft frames, made by raftlock's own encoders so they stay valid as the
//! formats change. `make_seeds <corpus dir>` writes `<corpus dir>/<target>/seed-<name>`.
//! Not a fuzz target (`command_args` starts from nothing: its input is `arbitrary`'s).

use std::path::Path;

use bytes::{Bytes, BytesMut};
use raftlock::fuzzing::{sample_raft_frames, FrameKind};
use raftlock::reply::Reply;
use raftlock::resp::{encode, encode_request, Protocol};
use raftlock::state::{Batch, Keyspace};

fn main() {
    let dir = std::env::args()
        .nth(1)
        .expect("usage: make_seeds <corpus dir>");
    let dir = Path::new(&dir);
    let mut written = 0;
    let mut write = |target: &str, name: &str, data: &[u8]| {
        let target_dir = dir.join(target);
        std::fs::create_dir_all(&target_dir).expect("corpus directory");
        std::fs::write(target_dir.join(format!("seed-{name}")), data).expect("seed file");
        written += 1;
    };

    // resp_request: a control byte (limits, auth, cuts), then what a client sends.
    let mut pipeline = Vec::new();
    for argv in [
        &["SET", "k", "v", "PX", "30000", "NX"][..],
        &["LOCK", "res", "owner", "30000", "WAIT", "1000"],
        &["EVAL", REDLOCK_RELEASE, "1", "k", "v"],
    ] {
        encode_request(argv, &mut pipeline);
    }
    let requests: &[(&str, &[u8])] = &[
        (
            "multibulk",
            b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nhello\r\n",
        ),
        ("inline", b"SET k \"a b\\x41\\n\" 'it\\'s'\r\nPING\n"),
        ("empty", b"*0\r\n*-1\r\n\r\n   \n*1\r\n$4\r\nPING\r\n"),
        ("binary_bulk", b"*2\r\n$4\r\n\r\n\0*\r\n$0\r\n\r\n"),
        ("big_bulk_header", b"*1\r\n$500000000\r\nabc"),
        ("bad_count", b"*-0\r\n"),
        ("pipeline", &pipeline),
    ];
    for (name, stream) in requests {
        for control in [0u8, 1, 2, 0x5c] {
            let mut input = vec![control];
            input.extend_from_slice(stream);
            write("resp_request", &format!("{name}-{control:02x}"), &input);
        }
    }

    // resp_reply: mode 0 and raw replies, as the encoder writes them.
    let replies = [
        ("ok", Reply::Ok),
        ("error", Reply::error("NOTOWNER lock held by another owner")),
        ("token", Reply::Int(42)),
        ("bulk", Reply::bulk("a\r\nb")),
        ("nil", Reply::Nil),
        ("nil_array", Reply::NilArray),
        ("double", Reply::Double(1.5)),
        ("bool", Reply::Bool(true)),
        (
            "verbatim",
            Reply::Verbatim("txt".into(), Bytes::from("info")),
        ),
        (
            "lockinfo",
            Reply::Map(vec![
                (Reply::bulk("mode"), Reply::status("EX")),
                (
                    Reply::bulk("holders"),
                    Reply::Array(vec![Reply::bulk("owner")]),
                ),
                (Reply::bulk("token"), Reply::Int(7)),
            ]),
        ),
        (
            "withscores",
            Reply::Pairs(vec![(Reply::bulk("a"), Reply::Double(2.5))]),
        ),
        ("set", Reply::Set(vec![Reply::bulk("x")])),
        (
            "push",
            Reply::Push(vec![Reply::bulk("message"), Reply::bulk("ch")]),
        ),
    ];
    for (name, reply) in &replies {
        for (proto, tag) in [(Protocol::Resp2, "2"), (Protocol::Resp3, "3")] {
            let mut input = BytesMut::from(&[0u8][..]);
            encode(reply, proto, &mut input);
            write("resp_reply", &format!("{name}-resp{tag}"), &input);
        }
    }

    // lua_script: script, setup letters, numkeys, keys and arguments, NUL-separated.
    let scripts: &[(&str, &[&str])] = &[
        ("redlock_release", &[REDLOCK_RELEASE, "j", "1", "lock", "tok"]),
        ("redis_py_release", &[REDIS_PY_RELEASE, "j", "1", "lock", "tok"]),
        ("node_redlock_release", &[NODE_REDLOCK_RELEASE, "ja", "2", "lock", "k0", "tok"]),
        (
            "set_nx_px",
            &["return redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2])", "", "1", "k0", "v", "30000"],
        ),
        (
            "lock_and_info",
            &["redis.call('lock', KEYS[1], ARGV[1], 30000)\nreturn redis.call('lockinfo', KEYS[1])", "d", "1", "lock", "other"],
        ),
        (
            "pcall_wrongtype",
            &["local r = redis.pcall('incr', KEYS[1])\nreturn {r['err'] or r, redis.call('type', KEYS[1])['ok']}", "g", "1", "k2"],
        ),
        ("error_undoes", &["redis.call('del', KEYS[1])\nerror('boom')", "a", "1", "k0"]),
        (
            "cjson",
            &["return cjson.encode(cjson.decode(ARGV[1]))", "", "0", "{\"a\":[1,2.5,\"x\",null,true]}"],
        ),
        (
            "tables_and_types",
            &["local t = redis.call('hgetall', KEYS[1])\nreturn {#t, tostring(1.5), math.floor(2.7), redis.sha1hex('x'), redis.status_reply('OK')}", "h", "1", "k1"],
        ),
        ("zset", &["return redis.call('zrange', KEYS[1], 0, -1, 'withscores')", "i", "1", "{k}3"]),
        ("endless_loop", &["while true do end", "", "0"]),
        ("deep_recursion", &["local function f(n) return f(n + 1) + 1 end\nreturn f(1)", "", "0"]),
        ("string_rep", &["return #string.rep('x', 1e9)", "", "0"]),
        ("big_table", &["local t = {}\nfor i = 1, 1e8 do t[i] = i end\nreturn #t", "", "0"]),
        ("shebang_no_writes", &["#!lua flags=no-writes\nreturn redis.call('get', KEYS[1])", "a", "1", "k0"]),
        ("syntax_error", &["return (", "", "0"]),
        ("bad_numkeys", &["return 1", "", "-1"]),
    ];
    for (name, fields) in scripts {
        write("lua_script", name, fields.join("\0").as_bytes());
    }

    // snapshot_decode: the snapshots of small keyspaces, and raft_wire's InstallSnapshot.
    let mut keyspace = Keyspace::new();
    write("snapshot_decode", "empty", &keyspace.to_snapshot());
    let history: &[(u64, &[&str])] = &[
        (1_000, &["raftlock.epoch", "1", "1", "600"]),
        (1_000, &["raftlock.wallclock", "1700000000000"]),
        (1_000, &["set", "k0", "v", "px", "60000"]),
        (1_100, &["lock", "lock", "owner", "30000"]),
        (1_100, &["lock", "lock", "waiter", "30000", "WAIT", "10000"]),
        (1_200, &["rlock", "res", "reader", "30000"]),
        (1_300, &["rpush", "k2", "a", "b"]),
        (1_400, &["hset", "k1", "f", "v"]),
        (1_500, &["zadd", "{k}3", "1", "a", "2.5", "b"]),
        (1_600, &["script", "load", REDLOCK_RELEASE]),
        (1_700, &["del", "gone"]),
        (1_800, &["set", "gone", "x"]),
        (1_900, &["del", "gone"]),
    ];
    for (now_ms, argv) in history {
        keyspace.apply_batch(&Batch {
            now_ms: *now_ms,
            ops: vec![argv
                .iter()
                .map(|w| Bytes::from_static(w.as_bytes()))
                .collect()],
        });
    }
    let snapshot = keyspace.to_snapshot();
    write("snapshot_decode", "every_type", &snapshot);

    for (name, kind, frame) in sample_raft_frames(snapshot) {
        let side = match kind {
            FrameKind::Request => "request",
            FrameKind::Response => "response",
        };
        write("raft_wire", &format!("{side}-{name}"), &frame);
    }
    println!("wrote {written} seeds under {}", dir.display());
}

const REDLOCK_RELEASE: &str = r#"if redis.call("get",KEYS[1]) == ARGV[1] then return redis.call("del",KEYS[1]) else return 0 end"#;

const REDIS_PY_RELEASE: &str = r#"
        local token = redis.call('get', KEYS[1])
        if not token or token ~= ARGV[1] then
            return 0
        end
        redis.call('del', KEYS[1])
        return 1
    "#;

const NODE_REDLOCK_RELEASE: &str = r#"
  local count = 0
  for i, key in ipairs(KEYS) do
    -- Only remove entries for *this* lock value.
    if redis.call("get", key) == ARGV[1] then
      redis.pcall("del", key)
      count = count + 1
    end
  end

  -- Return the number of entries removed.
  return count
"#;
