//! Connection and server commands: PING, ECHO, HELLO, AUTH, SELECT, QUIT, RESET, CLIENT,
//! COMMAND, INFO, TIME, CONFIG GET, ROLE. Expected replies are Redis 7's.

mod common;

use std::collections::BTreeMap;

use common::{bulk, map_entries, run, run_err, unix_ms, value_text, Server};
use redis::Value;

fn status(text: &str) -> Value {
    Value::SimpleString(text.to_string())
}

fn hello_fields(value: Value) -> BTreeMap<String, Value> {
    map_entries(value).into_iter().collect()
}

/// Checks the fields every HELLO reply carries, whatever the protocol.
fn check_hello(fields: &BTreeMap<String, Value>, proto: i64, client_id: i64) {
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    for name in [
        "id", "mode", "modules", "proto", "role", "server", "version",
    ] {
        assert!(names.contains(&name), "HELLO lacks {name}: {fields:?}");
    }
    assert_eq!(fields["server"], bulk("redis"));
    let version = value_text(&fields["version"]);
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "version is x.y.z: {version}"
    );
    assert_eq!(fields["proto"], Value::Int(proto));
    assert_eq!(fields["id"], Value::Int(client_id));
    assert_eq!(fields["mode"], bulk("standalone"));
    assert_eq!(fields["role"], bulk("master"));
    assert_eq!(fields["modules"], Value::Array(vec![]));
}

const NO_PASSWORD: &str = "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?";
const WRONGPASS: &str = "WRONGPASS invalid username-password pair or user is disabled.";
const NOAUTH: &str = "NOAUTH Authentication required.";

#[test]
fn ping_and_echo() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["PING"]), status("PONG"));
    assert_eq!(
        run::<Value>(&mut con, &["ping", "hello world"]),
        bulk("hello world")
    );
    assert_eq!(run::<Value>(&mut con, &["PING", ""]), bulk(""));
    assert_eq!(
        run_err(&mut con, &["PING", "a", "b"]),
        "ERR wrong number of arguments for 'ping' command"
    );
    assert_eq!(run::<Value>(&mut con, &["ECHO", "hi"]), bulk("hi"));
    assert_eq!(run::<Value>(&mut con, &["ECHO", ""]), bulk(""));
    assert_eq!(
        run_err(&mut con, &["ECHO"]),
        "ERR wrong number of arguments for 'echo' command"
    );
    assert_eq!(
        run_err(&mut con, &["ECHO", "a", "b"]),
        "ERR wrong number of arguments for 'echo' command"
    );
}

#[test]
fn hello_2_and_hello_3_describe_the_server_and_switch_protocol() {
    let server = Server::start();
    let mut con = server.connect();
    let id: i64 = run(&mut con, &["CLIENT", "ID"]);

    let reply: Value = run(&mut con, &["HELLO", "2"]);
    assert!(
        matches!(reply, Value::Array(_)),
        "RESP2 HELLO is a flat array: {reply:?}"
    );
    check_hello(&hello_fields(reply), 2, id);

    let reply: Value = run(&mut con, &["HELLO", "3"]);
    assert!(
        matches!(reply, Value::Map(_)),
        "RESP3 HELLO is a map: {reply:?}"
    );
    check_hello(&hello_fields(reply), 3, id);
    // HELLO without a version reports the protocol in use.
    check_hello(&hello_fields(run(&mut con, &["HELLO"])), 3, id);

    assert_eq!(
        run_err(&mut con, &["HELLO", "4"]),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        run_err(&mut con, &["HELLO", "1"]),
        "NOPROTO unsupported protocol version"
    );
    assert_eq!(
        run_err(&mut con, &["HELLO", "abc"]),
        "ERR Protocol version is not an integer or out of range"
    );
    assert_eq!(
        run_err(&mut con, &["HELLO", "3", "FOO"]),
        "ERR Syntax error in HELLO option 'FOO'"
    );
    assert_eq!(
        run_err(&mut con, &["HELLO", "3", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    // A failed HELLO changes nothing.
    check_hello(&hello_fields(run(&mut con, &["HELLO"])), 3, id);
    assert_eq!(run::<Value>(&mut con, &["CLIENT", "GETNAME"]), Value::Nil);

    let reply: Value = run(&mut con, &["HELLO", "2", "SETNAME", "app"]);
    check_hello(&hello_fields(reply), 2, id);
    assert_eq!(run::<Value>(&mut con, &["CLIENT", "GETNAME"]), bulk("app"));
}

#[test]
fn hello_3_switches_the_wire_format_to_resp3() {
    let server = Server::start();
    let mut raw = server.raw_client();
    let hello = raw.call("HELLO 3\r\n");
    assert!(
        hello.starts_with("%7\r\n"),
        "HELLO 3 is a 7-entry map: {hello:?}"
    );
    assert!(hello.contains("$5\r\nproto\r\n:3\r\n"), "{hello:?}");
    assert!(
        hello.contains("$4\r\nrole\r\n$6\r\nmaster\r\n"),
        "{hello:?}"
    );
    assert!(hello.ends_with("$7\r\nmodules\r\n*0\r\n"), "{hello:?}");

    assert_eq!(raw.call("GET nokey\r\n"), "_\r\n", "RESP3 null");
    assert_eq!(raw.call("SET k v\r\n"), "+OK\r\n");
    assert_eq!(raw.call("GET k\r\n"), "$1\r\nv\r\n");
    assert_eq!(raw.call("MGET k nokey\r\n"), "*2\r\n$1\r\nv\r\n_\r\n");
    assert_eq!(
        raw.call("CONFIG GET maxclients\r\n"),
        "%1\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n",
        "CONFIG GET is a map in RESP3"
    );
    let info = raw.call("CLIENT INFO\r\n");
    assert!(
        info.starts_with('='),
        "CLIENT INFO is a verbatim string in RESP3: {info:?}"
    );
    assert!(info.contains("txt:id="), "{info:?}");
    assert!(info.contains("resp=3"), "{info:?}");

    let hello = raw.call("HELLO 2\r\n");
    assert!(
        hello.starts_with("*14\r\n"),
        "HELLO 2 is a 14-element array: {hello:?}"
    );
    assert_eq!(raw.call("GET nokey\r\n"), "$-1\r\n", "RESP2 null bulk");
    assert_eq!(
        raw.call("CONFIG GET maxclients\r\n"),
        "*2\r\n$10\r\nmaxclients\r\n$5\r\n10000\r\n"
    );
    let info = raw.call("CLIENT INFO\r\n");
    assert!(
        info.starts_with('$'),
        "CLIENT INFO is a bulk string in RESP2: {info:?}"
    );
    assert!(info.contains("resp=2"), "{info:?}");
    assert!(
        info.ends_with("\n\r\n"),
        "CLIENT INFO ends with a newline: {info:?}"
    );
}

#[test]
fn the_redis_crate_speaks_resp3() {
    let server = Server::start();
    let mut con = server.connect_resp3();
    let id: i64 = run(&mut con, &["CLIENT", "ID"]);
    check_hello(&hello_fields(run(&mut con, &["HELLO"])), 3, id);
    assert_eq!(
        run::<Value>(&mut con, &["SET", "k", "v", "EX", "100"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));
    assert_eq!(run::<Value>(&mut con, &["GET", "missing"]), Value::Nil);
    assert_eq!(run::<Value>(&mut con, &["INCR", "n"]), Value::Int(1));
    assert_eq!(run::<Value>(&mut con, &["EXISTS", "k", "n"]), Value::Int(2));
    assert_eq!(
        run::<Value>(&mut con, &["MGET", "k", "missing"]),
        Value::Array(vec![bulk("v"), Value::Nil])
    );
    let config: Value = run(&mut con, &["CONFIG", "GET", "maxclients"]);
    assert_eq!(
        config,
        Value::Map(vec![(bulk("maxclients"), bulk("10000"))])
    );
    let info: Value = run(&mut con, &["CLIENT", "INFO"]);
    assert!(matches!(info, Value::VerbatimString { .. }), "{info:?}");
    assert!(value_text(&info).contains("resp=3"));
    let info: Value = run(&mut con, &["INFO", "server"]);
    assert!(value_text(&info).contains("redis_version:"));
    let docs: Value = run(&mut con, &["COMMAND", "DOCS", "get"]);
    assert!(
        matches!(docs, Value::Map(_)),
        "COMMAND DOCS is a map in RESP3: {docs:?}"
    );
    assert_eq!(
        run_err(&mut con, &["GET"]),
        "ERR wrong number of arguments for 'get' command"
    );
}

#[test]
fn auth_is_required_when_the_server_has_a_password() {
    let server = Server::start_with(&["--requirepass", "secret"]);
    let mut con = server.connect();
    assert_eq!(run_err(&mut con, &["GET", "k"]), NOAUTH);
    assert_eq!(run_err(&mut con, &["SET", "k", "v"]), NOAUTH);
    assert_eq!(run_err(&mut con, &["AUTH", "wrong"]), WRONGPASS);
    assert_eq!(run_err(&mut con, &["AUTH", "default", "wrong"]), WRONGPASS);
    assert_eq!(run_err(&mut con, &["AUTH", "nobody", "secret"]), WRONGPASS);
    assert_eq!(run_err(&mut con, &["GET", "k"]), NOAUTH);
    assert_eq!(run::<Value>(&mut con, &["AUTH", "secret"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "v"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));
    // A failed AUTH after a good one does not log the connection out.
    assert_eq!(run_err(&mut con, &["AUTH", "wrong"]), WRONGPASS);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));

    let mut other = server.connect();
    assert_eq!(run_err(&mut other, &["GET", "k"]), NOAUTH);
    assert_eq!(
        run::<Value>(&mut other, &["AUTH", "default", "secret"]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut other, &["GET", "k"]), bulk("v"));

    // The password in the URL: the redis crate authenticates on connect.
    let mut by_url = redis::Client::open(server.url_with_password("secret"))
        .and_then(|c| c.get_connection())
        .expect("connect with password");
    assert_eq!(run::<Value>(&mut by_url, &["GET", "k"]), bulk("v"));

    // RESET logs the connection out again.
    assert_eq!(run::<Value>(&mut con, &["RESET"]), status("RESET"));
    assert_eq!(run_err(&mut con, &["GET", "k"]), NOAUTH);
}

#[test]
fn hello_can_authenticate_and_name_the_connection() {
    let server = Server::start_with(&["--requirepass", "secret"]);
    let mut con = server.connect();
    let err = run_err(&mut con, &["HELLO", "3"]);
    assert!(
        err.starts_with("NOAUTH HELLO must be called with the client already authenticated"),
        "{err}"
    );
    assert_eq!(
        run_err(&mut con, &["HELLO", "3", "AUTH", "default", "wrong"]),
        WRONGPASS
    );
    assert_eq!(run_err(&mut con, &["GET", "k"]), NOAUTH);
    let reply: Value = run(
        &mut con,
        &["HELLO", "3", "AUTH", "default", "secret", "SETNAME", "app"],
    );
    assert!(matches!(reply, Value::Map(_)));
    let fields = hello_fields(reply);
    assert_eq!(fields["proto"], Value::Int(3));
    assert_eq!(run::<Value>(&mut con, &["CLIENT", "GETNAME"]), bulk("app"));
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), Value::Nil);

    // RESP3 straight from the URL, with the password.
    let url = format!("{}?protocol=resp3", server.url_with_password("secret"));
    let mut resp3 = redis::Client::open(url)
        .and_then(|c| c.get_connection())
        .expect("RESP3 with password");
    assert_eq!(run::<Value>(&mut resp3, &["SET", "k", "v"]), Value::Okay);
    check_hello(
        &hello_fields(run(&mut resp3, &["HELLO"])),
        3,
        run(&mut resp3, &["CLIENT", "ID"]),
    );
}

#[test]
fn auth_without_a_configured_password_is_an_error() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run_err(&mut con, &["AUTH", "x"]), NO_PASSWORD);
    assert_eq!(
        run_err(&mut con, &["AUTH"]),
        "ERR wrong number of arguments for 'auth' command"
    );
    assert_eq!(run::<Value>(&mut con, &["PING"]), status("PONG"));
}

/// Redis 7 without requirepass: the `default` user is `nopass`, so AUTH and HELLO AUTH
/// with user `default` succeed with any password; other users do not exist.
#[test]
fn without_a_password_the_default_user_accepts_any_password() {
    let server = Server::start();
    let mut con = server.connect();
    let id: i64 = run(&mut con, &["CLIENT", "ID"]);
    assert_eq!(run_err(&mut con, &["AUTH", "nobody", "x"]), WRONGPASS);
    assert_eq!(
        run_err(&mut con, &["HELLO", "3", "AUTH", "nobody", "x"]),
        WRONGPASS
    );
    assert_eq!(
        run::<Value>(&mut con, &["AUTH", "default", "x"]),
        Value::Okay
    );
    let reply: Value = run(&mut con, &["HELLO", "3", "AUTH", "default", "x"]);
    check_hello(&hello_fields(reply), 3, id);
}

#[test]
fn select_accepts_only_database_zero() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["SELECT", "0"]), Value::Okay);
    assert_eq!(
        run_err(&mut con, &["SELECT", "1"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        run_err(&mut con, &["SELECT", "15"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        run_err(&mut con, &["SELECT", "-1"]),
        "ERR DB index is out of range"
    );
    assert_eq!(
        run_err(&mut con, &["SELECT", "abc"]),
        "ERR value is not an integer or out of range"
    );
    assert_eq!(
        run_err(&mut con, &["SELECT"]),
        "ERR wrong number of arguments for 'select' command"
    );
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "v"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));
}

#[test]
fn quit_replies_ok_and_closes_without_running_what_follows() {
    let server = Server::start();
    let mut raw = server.raw_client();
    assert_eq!(raw.call("SET before 1\r\n"), "+OK\r\n");
    raw.send(b"QUIT\r\nSET after 1\r\n");
    assert_eq!(raw.frame_text(), "+OK\r\n");
    assert!(raw.closed_by_server(), "QUIT closes the connection");

    let mut multibulk = server.raw_client();
    multibulk.send(b"*1\r\n$4\r\nQUIT\r\n");
    assert_eq!(multibulk.frame_text(), "+OK\r\n");
    assert!(multibulk.closed_by_server());

    let mut con = server.connect();
    assert_eq!(run::<Value>(&mut con, &["GET", "before"]), bulk("1"));
    assert_eq!(run::<Value>(&mut con, &["GET", "after"]), Value::Nil);
}

#[test]
fn reset_returns_the_connection_to_its_initial_state() {
    let server = Server::start();
    let mut raw = server.raw_client();
    assert!(raw.call("HELLO 3 SETNAME app\r\n").starts_with("%7\r\n"));
    assert_eq!(raw.call("CLIENT GETNAME\r\n"), "$3\r\napp\r\n");
    assert_eq!(raw.call("RESET\r\n"), "+RESET\r\n");
    assert_eq!(
        raw.call("CLIENT GETNAME\r\n"),
        "$-1\r\n",
        "name cleared, back to RESP2"
    );
    assert_eq!(raw.call("GET nokey\r\n"), "$-1\r\n");
    assert!(raw.call("HELLO\r\n").contains("$5\r\nproto\r\n:2\r\n"));
    assert_eq!(raw.call("PING\r\n"), "+PONG\r\n");
}

#[test]
fn client_id_setname_getname_setinfo_info_and_list() {
    let server = Server::start();
    let mut con = server.connect();
    let mut other = server.connect();
    let id: i64 = run(&mut con, &["CLIENT", "ID"]);
    let other_id: i64 = run(&mut other, &["client", "id"]);
    assert!(
        id > 0 && other_id > 0 && id != other_id,
        "ids {id} and {other_id}"
    );
    assert_eq!(
        run::<i64>(&mut con, &["CLIENT", "ID"]),
        id,
        "the id is stable"
    );

    assert_eq!(run::<Value>(&mut con, &["CLIENT", "GETNAME"]), Value::Nil);
    assert_eq!(
        run::<Value>(&mut con, &["CLIENT", "SETNAME", "worker-1"]),
        Value::Okay
    );
    assert_eq!(
        run::<Value>(&mut con, &["CLIENT", "GETNAME"]),
        bulk("worker-1")
    );
    assert_eq!(
        run_err(&mut con, &["CLIENT", "SETNAME", "a b"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        run_err(&mut con, &["CLIENT", "SETNAME", "a\nb"]),
        "ERR Client names cannot contain spaces, newlines or special characters."
    );
    assert_eq!(
        run::<Value>(&mut con, &["CLIENT", "GETNAME"]),
        bulk("worker-1")
    );

    assert_eq!(
        run::<Value>(&mut con, &["CLIENT", "SETINFO", "LIB-NAME", "mylib"]),
        Value::Okay
    );
    assert_eq!(
        run::<Value>(&mut con, &["CLIENT", "SETINFO", "lib-ver", "1.2.3"]),
        Value::Okay
    );
    assert_eq!(
        run_err(&mut con, &["CLIENT", "SETINFO", "FOO", "x"]),
        "ERR Unrecognized option 'FOO'"
    );

    let info: Value = run(&mut con, &["CLIENT", "INFO"]);
    assert!(
        matches!(info, Value::BulkString(_)),
        "CLIENT INFO in RESP2: {info:?}"
    );
    let info = value_text(&info);
    assert!(info.starts_with(&format!("id={id} ")), "{info:?}");
    assert!(info.contains(" name=worker-1 "), "{info:?}");
    assert!(info.contains(" addr=127.0.0.1:"), "{info:?}");
    assert!(
        info.ends_with('\n') && info.matches('\n').count() == 1,
        "{info:?}"
    );

    let list: Value = run(&mut con, &["CLIENT", "LIST"]);
    assert!(
        matches!(list, Value::BulkString(_)),
        "CLIENT LIST in RESP2: {list:?}"
    );
    let list = value_text(&list);
    let lines: Vec<&str> = list.lines().collect();
    assert!(lines.len() >= 2, "{list:?}");
    assert!(lines
        .iter()
        .any(|l| l.starts_with(&format!("id={id} ")) && l.contains(" name=worker-1 ")));
    assert!(lines
        .iter()
        .any(|l| l.starts_with(&format!("id={other_id} "))));
    // A closed connection leaves the list (eventually: the server notices the close).
    drop(other);
    let mut gone = false;
    for _ in 0..100 {
        let list: String = run(&mut con, &["CLIENT", "LIST"]);
        if !list
            .lines()
            .any(|l| l.starts_with(&format!("id={other_id} ")))
        {
            gone = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert!(gone, "client {other_id} still listed after it closed");

    // Setting an empty name clears it.
    assert_eq!(
        run::<Value>(&mut con, &["CLIENT", "SETNAME", ""]),
        Value::Okay
    );
    assert_eq!(run::<Value>(&mut con, &["CLIENT", "GETNAME"]), Value::Nil);
}

#[test]
fn client_no_evict_and_no_touch_are_accepted() {
    let server = Server::start();
    let mut con = server.connect();
    for args in [
        ["CLIENT", "NO-EVICT", "on"],
        ["CLIENT", "NO-EVICT", "off"],
        ["CLIENT", "NO-TOUCH", "ON"],
        ["CLIENT", "NO-TOUCH", "OFF"],
    ] {
        assert_eq!(
            run::<Value>(&mut con, &args),
            Value::Okay,
            "{}",
            args.join(" ")
        );
    }
}

#[test]
fn unknown_client_subcommand_is_an_error_and_the_connection_stays_usable() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run_err(&mut con, &["CLIENT", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try CLIENT HELP."
    );
    assert_eq!(
        run_err(&mut con, &["CLIENT"]),
        "ERR wrong number of arguments for 'client' command"
    );
    assert_eq!(
        run_err(&mut con, &["CLIENT", "GETNAME", "extra"]),
        "ERR wrong number of arguments for 'client|getname' command"
    );
    assert_eq!(run::<Value>(&mut con, &["PING"]), status("PONG"));
    assert_eq!(run::<Value>(&mut con, &["SET", "k", "v"]), Value::Okay);
    assert_eq!(run::<Value>(&mut con, &["GET", "k"]), bulk("v"));
}

/// Commands lock libraries rely on; each must be in the command table.
const REQUIRED_COMMANDS: &[&str] = &[
    "ping",
    "echo",
    "hello",
    "auth",
    "select",
    "quit",
    "reset",
    "client",
    "command",
    "info",
    "dbsize",
    "time",
    "flushall",
    "flushdb",
    "config",
    "role",
    "del",
    "unlink",
    "exists",
    "type",
    "expire",
    "pexpire",
    "expireat",
    "pexpireat",
    "expiretime",
    "pexpiretime",
    "ttl",
    "pttl",
    "persist",
    "keys",
    "scan",
    "rename",
    "get",
    "set",
    "setnx",
    "setex",
    "psetex",
    "getdel",
    "getex",
    "getset",
    "mget",
    "mset",
    "msetnx",
    "incr",
    "incrby",
    "decr",
    "decrby",
    "append",
    "strlen",
    "fence",
];

#[test]
fn command_count_list_info_and_docs_describe_the_command_table() {
    let server = Server::start();
    let mut con = server.connect();
    let count: i64 = run(&mut con, &["COMMAND", "COUNT"]);
    // COMMAND LIST names subcommands too (`config|get`), so it may be longer.
    let list: Vec<String> = run(&mut con, &["COMMAND", "LIST"]);
    assert!(
        list.len() as i64 >= count,
        "COMMAND LIST: {} < {count}",
        list.len()
    );
    for name in REQUIRED_COMMANDS {
        assert!(
            list.iter().any(|n| n == name),
            "COMMAND LIST lacks {name}: {list:?}"
        );
    }
    let all: Vec<Value> = run(&mut con, &["COMMAND"]);
    assert_eq!(
        all.len() as i64,
        count,
        "COMMAND describes COMMAND COUNT commands"
    );

    let infos: Vec<Value> = run(
        &mut con,
        &["COMMAND", "INFO", "get", "SET", "nosuch", "mset"],
    );
    assert_eq!(infos.len(), 4);
    let expect = [
        ("get", 2, 1, 1, 1),
        ("set", -3, 1, 1, 1),
        ("mset", -3, 1, -1, 2),
    ];
    for (info, (name, arity, first, last, step)) in
        [&infos[0], &infos[1], &infos[3]].into_iter().zip(expect)
    {
        let Value::Array(fields) = info else {
            panic!("COMMAND INFO entry is an array: {info:?}");
        };
        assert!(fields.len() >= 6, "{fields:?}");
        assert_eq!(fields[0], bulk(name));
        assert_eq!(fields[1], Value::Int(arity), "arity of {name}");
        assert!(
            matches!(fields[2], Value::Array(_) | Value::Set(_)),
            "flags of {name}: {:?}",
            fields[2]
        );
        assert_eq!(fields[3], Value::Int(first), "first key of {name}");
        assert_eq!(fields[4], Value::Int(last), "last key of {name}");
        assert_eq!(fields[5], Value::Int(step), "key step of {name}");
    }
    let Value::Array(get_fields) = &infos[0] else {
        unreachable!()
    };
    let Value::Array(flags) = &get_fields[2] else {
        panic!("flags are an array in RESP2: {:?}", get_fields[2]);
    };
    assert!(
        flags.contains(&status("readonly")),
        "GET is readonly: {flags:?}"
    );
    assert_eq!(infos[2], Value::Nil, "unknown command gives nil");

    let docs = map_entries(run(&mut con, &["COMMAND", "DOCS", "get"]));
    assert_eq!(docs.len(), 1);
    assert_eq!(docs[0].0, "get");
    let get_docs: BTreeMap<String, Value> = map_entries(docs[0].1.clone()).into_iter().collect();
    assert!(get_docs.contains_key("summary"), "{get_docs:?}");
    assert_eq!(get_docs.get("group"), Some(&bulk("string")), "{get_docs:?}");
    // redis-cli asks for every command's docs at start.
    let all_docs = map_entries(run(&mut con, &["COMMAND", "DOCS"]));
    for name in REQUIRED_COMMANDS {
        assert!(
            all_docs.iter().any(|(n, _)| n == name),
            "COMMAND DOCS lacks {name}"
        );
    }
    assert!(map_entries(run(&mut con, &["COMMAND", "DOCS", "nosuch"])).is_empty());
    assert_eq!(
        run_err(&mut con, &["COMMAND", "FOO"]),
        "ERR unknown subcommand 'FOO'. Try COMMAND HELP."
    );
}

/// One COMMAND INFO entry's flags (field 3) and ACL categories (field 7), as text.
fn flags_and_categories(con: &mut redis::Connection, name: &str) -> (Vec<String>, Vec<String>) {
    let infos: Vec<Value> = run(con, &["COMMAND", "INFO", name]);
    let Some(Value::Array(fields)) = infos.into_iter().next() else {
        panic!("COMMAND INFO {name} is an array");
    };
    let texts = |value: &Value| -> Vec<String> {
        match value {
            Value::Array(items) | Value::Set(items) => items.iter().map(value_text).collect(),
            other => panic!("a list of names: {other:?}"),
        }
    };
    (texts(&fields[2]), texts(&fields[6]))
}

#[test]
fn command_info_reports_the_tables_flags_and_redis_acl_categories() {
    let server = Server::start();
    let mut con = server.connect();
    let (flags, categories) = flags_and_categories(&mut con, "get");
    assert!(flags.contains(&"readonly".to_string()), "{flags:?}");
    assert_eq!(categories, ["@read", "@string", "@fast"]);
    let (flags, categories) = flags_and_categories(&mut con, "lock");
    assert!(flags.contains(&"blocking".to_string()), "{flags:?}");
    assert_eq!(categories, ["@write", "@raftlock", "@slow", "@blocking"]);
    let (flags, _) = flags_and_categories(&mut con, "auth");
    assert!(flags.contains(&"no_auth".to_string()), "{flags:?}");
}

#[test]
fn raftlocks_internal_ops_are_unknown_commands_to_clients() {
    let server = Server::start();
    let mut con = server.connect();
    let ops = [
        "raftlock.epoch",
        "raftlock.wallclock",
        "raftlock.session",
        "raftlock.detach",
        "raftlock.reattach",
    ];
    for op in ops {
        assert_eq!(
            run_err(&mut con, &[op, "1", "2"]),
            format!("ERR unknown command '{op}', with args beginning with: '1' '2' ")
        );
        let script = format!("return redis.call('{op}', '1')");
        let error = run_err(&mut con, &["EVAL", &script, "0"]);
        assert!(
            error.contains("Unknown Redis command called from script"),
            "{op} from a script: {error}"
        );
    }
    let list: Vec<String> = run(&mut con, &["COMMAND", "LIST"]);
    assert!(
        !list.iter().any(|name| name.starts_with("raftlock.")),
        "{list:?}"
    );
}

fn info_text(con: &mut redis::Connection, args: &[&str]) -> String {
    let reply: Value = run(con, args);
    assert!(
        matches!(reply, Value::BulkString(_)),
        "INFO in RESP2 is a bulk string: {reply:?}"
    );
    value_text(&reply)
}

/// `field:value` lines of an INFO text.
fn info_fields(text: &str) -> BTreeMap<String, String> {
    text.split("\r\n")
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(|line| line.split_once(':'))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn info_reports_every_section() {
    let server = Server::start();
    let mut con = server.connect();
    let text = info_text(&mut con, &["INFO"]);
    for section in [
        "Server",
        "Clients",
        "Memory",
        "Stats",
        "Persistence",
        "Replication",
        "Raft",
        "Keyspace",
    ] {
        assert!(
            text.split("\r\n")
                .any(|line| line == format!("# {section}")),
            "INFO lacks section {section}:\n{text}"
        );
    }
    for line in text
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        assert!(line.contains(':'), "INFO line is field:value: {line:?}");
    }
    let fields = info_fields(&text);
    assert_eq!(
        fields.get("role").map(String::as_str),
        Some("master"),
        "{text}"
    );
    assert_eq!(
        fields.get("aof_enabled").map(String::as_str),
        Some("1"),
        "{text}"
    );
    assert_eq!(
        fields.get("connected_slaves").map(String::as_str),
        Some("0"),
        "{text}"
    );
    assert_eq!(
        fields.get("tcp_port"),
        Some(&server.port.to_string()),
        "{text}"
    );
    // Fields monitoring tools read.
    for field in [
        "redis_version",
        "process_id",
        "uptime_in_seconds",
        "connected_clients",
        "maxclients",
        "used_memory",
        "total_connections_received",
        "total_commands_processed",
        "rejected_connections",
        "master_repl_offset",
    ] {
        assert!(fields.contains_key(field), "INFO lacks {field}:\n{text}");
    }
    assert_eq!(fields.get("maxclients").map(String::as_str), Some("10000"));
    let clients: i64 = fields["connected_clients"]
        .parse()
        .expect("connected_clients");
    assert!(clients >= 1, "{text}");

    let processed: i64 = fields["total_commands_processed"].parse().expect("a count");
    run::<()>(&mut con, &["PING"]);
    let later = info_fields(&info_text(&mut con, &["INFO", "stats"]));
    let processed_later: i64 = later["total_commands_processed"].parse().expect("a count");
    assert!(
        processed_later > processed,
        "{processed_later} <= {processed}"
    );

    // Keyspace: absent while empty, then Redis's db0 line.
    assert!(!info_fields(&info_text(&mut con, &["INFO", "keyspace"])).contains_key("db0"));
    run::<()>(&mut con, &["MSET", "a", "1", "b", "2"]);
    run::<()>(&mut con, &["SET", "c", "3", "EX", "1000"]);
    let keyspace = info_text(&mut con, &["INFO", "keyspace"]);
    let db0 = info_fields(&keyspace)
        .get("db0")
        .cloned()
        .unwrap_or_default();
    assert!(db0.starts_with("keys=3,expires=1,avg_ttl="), "{keyspace}");

    // One section by name, in any case.
    let server_only = info_text(&mut con, &["INFO", "SERVER"]);
    assert!(server_only.starts_with("# Server\r\n"), "{server_only}");
    assert!(!server_only.contains("# Clients"), "{server_only}");
    let replication = info_text(&mut con, &["info", "replication"]);
    assert!(replication.contains("role:master\r\n"), "{replication}");
    assert!(!replication.contains("# Server"), "{replication}");
    let raft = info_text(&mut con, &["INFO", "raft"]);
    assert!(raft.starts_with("# Raft\r\n"), "{raft}");
    let persistence = info_text(&mut con, &["INFO", "persistence"]);
    assert!(persistence.contains("aof_enabled:1\r\n"), "{persistence}");
    for all in ["all", "everything", "default"] {
        let text = info_text(&mut con, &["INFO", all]);
        assert!(
            text.contains("# Server") && text.contains("# Keyspace"),
            "INFO {all}"
        );
    }
}

#[test]
fn time_returns_unix_seconds_and_microseconds() {
    let server = Server::start();
    let mut con = server.connect();
    let reply: Value = run(&mut con, &["TIME"]);
    let Value::Array(parts) = reply else {
        panic!("TIME is an array: {reply:?}");
    };
    assert_eq!(parts.len(), 2);
    assert!(
        parts.iter().all(|p| matches!(p, Value::BulkString(_))),
        "{parts:?}"
    );
    let seconds: i64 = value_text(&parts[0]).parse().expect("seconds");
    let micros: i64 = value_text(&parts[1]).parse().expect("microseconds");
    let now = unix_ms() / 1000;
    assert!((seconds - now).abs() <= 60, "TIME {seconds} vs local {now}");
    assert!((0..1_000_000).contains(&micros), "{micros}");
}

#[test]
fn config_get_returns_matching_parameters() {
    let server = Server::start();
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["CONFIG", "GET", "maxclients"]),
        Value::Array(vec![bulk("maxclients"), bulk("10000")])
    );
    let max = map_entries(run(&mut con, &["CONFIG", "GET", "max*"]));
    assert!(max.iter().any(|(name, _)| name == "maxclients"), "{max:?}");
    assert!(
        max.iter().all(|(name, _)| name.starts_with("max")),
        "{max:?}"
    );
    let upper = map_entries(run(&mut con, &["CONFIG", "GET", "MAXCLIENTS"]));
    assert_eq!(
        upper.len(),
        1,
        "parameter names are case-insensitive: {upper:?}"
    );
    assert!(map_entries(run(&mut con, &["CONFIG", "GET", "nosuchparameter"])).is_empty());
    let all = map_entries(run(&mut con, &["CONFIG", "GET", "*"]));
    assert!(all.len() >= max.len() && all.iter().any(|(n, _)| n == "maxclients"));
    assert_eq!(
        run_err(&mut con, &["CONFIG", "GET"]),
        "ERR wrong number of arguments for 'config|get' command"
    );
    // CONFIG SET is refused in Redis's words.
    assert_eq!(
        run_err(&mut con, &["CONFIG", "SET", "foo", "bar"]),
        "ERR Unknown option or number of arguments for CONFIG SET - 'foo'"
    );
    assert_eq!(
        run_err(&mut con, &["CONFIG", "SET", "MAXCLIENTS", "5"]),
        "ERR CONFIG SET failed (possibly related to argument 'maxclients') - can't set immutable config"
    );
}

#[test]
fn config_get_reflects_command_line_limits() {
    let server = Server::start_with(&["--maxclients", "77"]);
    let mut con = server.connect();
    assert_eq!(
        run::<Value>(&mut con, &["CONFIG", "GET", "maxclients"]),
        Value::Array(vec![bulk("maxclients"), bulk("77")])
    );
}

#[test]
fn role_is_master_on_a_single_node() {
    let server = Server::start();
    let mut con = server.connect();
    let reply: Value = run(&mut con, &["ROLE"]);
    let Value::Array(parts) = reply else {
        panic!("ROLE is an array: {reply:?}");
    };
    assert_eq!(parts.len(), 3, "[master, offset, replicas]: {parts:?}");
    assert_eq!(parts[0], bulk("master"));
    assert!(matches!(parts[1], Value::Int(n) if n >= 0), "{parts:?}");
    assert!(matches!(&parts[2], Value::Array(_)), "{parts:?}");
}

/// A node turns transparent huge pages off for itself (`TRANSPARENT_HUGE_PAGES` in
/// src/config.rs): with them, each snapshot of a large state spent most of its time in the
/// kernel faulting in and zeroing 2 MiB pages on the node's one thread. Linux reports the
/// process's setting as `THP_enabled` in /proc/PID/status.
#[test]
fn a_node_runs_without_transparent_huge_pages() {
    let server = Server::start();
    let mut con = server.connect();
    run::<()>(&mut con, &["SET", "k", "v"]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid()))
        .expect("the node's /proc status");
    let thp = status
        .lines()
        .find_map(|line| line.strip_prefix("THP_enabled:"))
        .map(str::trim);
    assert_eq!(thp, Some("0"), "{status}");
}

#[test]
fn info_counts_errors_by_code_and_cpu_time() {
    let server = Server::start();
    let mut con = server.connect();
    let _: () = run(&mut con, &["SET", "k", "v"]);
    let _ = common::run_err(&mut con, &["INCR", "k"]);
    let _ = common::run_err(&mut con, &["LPUSH", "k", "x"]);
    let _ = common::run_err(&mut con, &["LPUSH", "k", "y"]);
    let fields = info_fields(&info_text(&mut con, &["INFO"]));
    assert_eq!(
        fields.get("errorstat_ERR").map(String::as_str),
        Some("count=1")
    );
    assert_eq!(
        fields.get("errorstat_WRONGTYPE").map(String::as_str),
        Some("count=2")
    );
    let user: f64 = fields["used_cpu_user"].parse().expect("seconds");
    assert!(user > 0.0, "the node used some CPU: {fields:?}");
    assert!(fields.contains_key("used_cpu_sys_children"));
    let only = info_fields(&info_text(&mut con, &["INFO", "errorstats"]));
    assert_eq!(only.len(), 2, "{only:?}");
}

#[test]
fn over_maxmemory_commands_that_add_data_answer_oom_and_the_rest_go_on() {
    // Any process is over a megabyte: the limit holds from the start.
    let server = Server::start_with(&["--maxmemory", "1mb"]);
    let mut con = server.connect();
    let oom = "OOM command not allowed when used memory > 'maxmemory'.";
    assert_eq!(common::run_err(&mut con, &["SET", "k", "v"]), oom);
    assert_eq!(common::run_err(&mut con, &["RPUSH", "l", "x"]), oom);
    // Reads, deletes and the lock commands go on: a holder can always renew and release.
    let missing: Option<String> = run(&mut con, &["GET", "k"]);
    assert_eq!(missing, None);
    let _: i64 = run(&mut con, &["DEL", "k"]);
    let token: i64 = run(&mut con, &["LOCK", "job", "a", "10000"]);
    assert!(token > 0);
    let fields = info_fields(&info_text(&mut con, &["INFO", "memory"]));
    assert_eq!(fields["maxmemory"], "1048576");
    assert_eq!(fields["maxmemory_policy"], "noeviction");
    // CONFIG SET lifts it at once.
    let _: () = run(&mut con, &["CONFIG", "SET", "maxmemory", "0"]);
    let _: () = run(&mut con, &["SET", "k", "v"]);
    let limit: Vec<String> = run(&mut con, &["CONFIG", "GET", "maxmemory"]);
    assert_eq!(limit, ["maxmemory", "0"]);
    let err = common::run_err(
        &mut con,
        &["CONFIG", "SET", "maxmemory-policy", "allkeys-lru"],
    );
    assert!(err.contains("only 'noeviction'"), "{err}");
}
