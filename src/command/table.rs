//! One row per command. Handlers for data commands live in `crate::state`; the functions
//! of commands the node serves itself live in `crate::server::builtin`, named here.

use super::{Blocking, CommandSpec, Handler, Kind, Marks, ServeFn, TxnStep};
use crate::server::builtin::{connection as cx, node as nd};
use crate::state::{
    bits, hashes, key_commands as keys, list_edits, lists, locks::commands as locks,
    publish as pubsub, scripts, server_commands as sm, sets, string_ranges as ranges, strings, txn,
    zset_pops, zsets,
};

use Handler::{Read, Server, Write};

const W: &[&str] = &["write"];
const WF: &[&str] = &["write", "fast"];
const WD: &[&str] = &["write", "denyoom"];
const WDF: &[&str] = &["write", "denyoom", "fast"];
const R: &[&str] = &["readonly"];
const RF: &[&str] = &["readonly", "fast"];
const CONN: &[&str] = &["fast", "noscript", "loading", "stale"];
/// Allowed before AUTH (Redis's `no_auth`).
const CONN_NO_AUTH: &[&str] = &["fast", "noscript", "loading", "stale", "no_auth"];
const TXN_CONTROL: &[&str] = &["noscript", "loading", "stale", "fast"];
const ADMIN: &[&str] = &["admin", "noscript", "loading", "stale"];

const NONE: (i32, i32, i32) = (0, 0, 0);
const ONE: (i32, i32, i32) = (1, 1, 1);
const ALL: (i32, i32, i32) = (1, -1, 1);
const PAIRS: (i32, i32, i32) = (1, -1, 2);
/// Source and destination (LMOVE and friends).
const TWO: (i32, i32, i32) = (1, 2, 1);
/// Every argument but the last (BLPOP's keys before its timeout).
const ALL_BUT_LAST: (i32, i32, i32) = (1, -2, 1);
const SUB: &[&str] = &["pubsub", "noscript", "loading", "stale"];
const LOCKING: &[&str] = &["write", "blocking"];
const BLOCKING: &[&str] = &["write", "noscript", "blocking"];
const BLOCKING_D: &[&str] = &["write", "denyoom", "noscript", "blocking"];

/// A command of the state machine: a read or a write, as its handler says.
const fn cmd(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    group: &'static str,
    summary: &'static str,
    handler: Handler,
) -> CommandSpec {
    let kind = match handler {
        Read(_) => Kind::StateRead,
        Write(_) => Kind::StateWrite,
        Server => panic!("a command the node serves names its kind: conn, node or served"),
    };
    served(name, arity, flags, keys, group, summary, handler, kind)
}

#[allow(clippy::too_many_arguments)]
const fn served(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    group: &'static str,
    summary: &'static str,
    handler: Handler,
    kind: Kind,
) -> CommandSpec {
    CommandSpec {
        name,
        arity,
        flags,
        first_key: keys.0,
        last_key: keys.1,
        step: keys.2,
        group,
        summary,
        handler,
        kind,
        marks: Marks::NONE,
        numkeys_index: 0,
        subcommands: &[],
    }
}

/// A command on the connection's own state.
const fn conn(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    keys: (i32, i32, i32),
    group: &'static str,
    summary: &'static str,
    serve: ServeFn,
) -> CommandSpec {
    served(
        name,
        arity,
        flags,
        keys,
        group,
        summary,
        Server,
        Kind::Connection(serve),
    )
}

/// A command the node answers from what it knows itself.
const fn node(
    name: &'static str,
    arity: i32,
    flags: &'static [&'static str],
    group: &'static str,
    summary: &'static str,
    serve: ServeFn,
) -> CommandSpec {
    served(
        name,
        arity,
        flags,
        NONE,
        group,
        summary,
        Server,
        Kind::Node(serve),
    )
}

impl CommandSpec {
    /// How a connection serves this write, when not as a plain proposal.
    const fn kind(mut self, kind: Kind) -> CommandSpec {
        self.kind = kind;
        self
    }

    const fn marks(mut self, marks: Marks) -> CommandSpec {
        self.marks = marks;
        self
    }

    /// Keys counted by the argument at `index`, Redis's `movablekeys` (EVAL: index 2).
    const fn numkeys_at(mut self, index: usize) -> CommandSpec {
        self.numkeys_index = index;
        self
    }

    const fn with_subcommands(mut self, subcommands: &'static [CommandSpec]) -> CommandSpec {
        self.subcommands = subcommands;
        self
    }
}

/// Scripts run inside apply; a script may not run another (Redis's `noscript`).
const SCRIPT_W: &[&str] = &[
    "noscript",
    "stale",
    "skip_monitor",
    "may_replicate",
    "no_mandatory_keys",
    "movablekeys",
];
const SCRIPT_R: &[&str] = &[
    "noscript",
    "stale",
    "skip_monitor",
    "no_mandatory_keys",
    "readonly",
    "movablekeys",
];

#[rustfmt::skip]
static SCRIPT_SUBCOMMANDS: &[CommandSpec] = &[
    cmd("script|load", 3, &["noscript", "stale"], NONE, "scripting", "Loads a server-side Lua script to the script cache.", Write(scripts::script_load)),
    cmd("script|exists", -3, &["noscript"], NONE, "scripting", "Determines whether server-side Lua scripts exist in the script cache.", Read(scripts::script_exists)),
    cmd("script|flush", -2, &["noscript"], NONE, "scripting", "Removes all server-side Lua scripts from the script cache.", Write(scripts::script_flush)),
    cmd("script|kill", 2, &["noscript", "allow_busy"], NONE, "scripting", "Terminates a server-side Lua script during execution.", Read(scripts::script_kill)),
];

#[rustfmt::skip]
pub static COMMANDS: &[CommandSpec] = &[
    // connection
    conn("ping", -1, CONN, NONE, "connection", "Returns the server's liveliness response.", cx::ping).marks(Marks::SUBSCRIBE_MODE),
    conn("echo", 2, CONN, NONE, "connection", "Returns the given string.", cx::echo),
    conn("hello", -1, CONN_NO_AUTH, NONE, "connection", "Handshakes with the server.", cx::hello),
    conn("auth", -2, CONN_NO_AUTH, NONE, "connection", "Authenticates the connection.", cx::auth),
    conn("select", 2, CONN, NONE, "connection", "Changes the selected database.", cx::select),
    conn("quit", -1, CONN_NO_AUTH, NONE, "connection", "Closes the connection.", cx::quit).marks(Marks::NOT_QUEUED.with(Marks::SUBSCRIBE_MODE)),
    conn("reset", 1, CONN_NO_AUTH, NONE, "connection", "Resets the connection.", cx::reset).marks(Marks::NOT_QUEUED.with(Marks::SUBSCRIBE_MODE)),
    conn("client", -2, CONN, NONE, "connection", "A container for client connection commands.", cx::client),
    // transactions
    conn("multi", 1, TXN_CONTROL, NONE, "transactions", "Starts a transaction.", cx::multi).marks(Marks::NOT_QUEUED),
    served("exec", 1, &["noscript", "loading", "stale"], NONE, "transactions", "Executes all commands in a transaction.", Server, Kind::Transaction(TxnStep::Exec)).marks(Marks::NOT_QUEUED),
    conn("discard", 1, TXN_CONTROL, NONE, "transactions", "Discards a transaction.", cx::discard).marks(Marks::NOT_QUEUED),
    served("watch", -2, TXN_CONTROL, ALL, "transactions", "Monitors changes to keys to determine the execution of a transaction.", Server, Kind::Transaction(TxnStep::Watch)).marks(Marks::NOT_QUEUED),
    conn("unwatch", 1, TXN_CONTROL, NONE, "transactions", "Forgets about watched keys of a transaction.", cx::unwatch),
    cmd("txn", -3, &["write", "noscript", "movablekeys"], NONE, "raftlock", "Internal: a transaction's queued commands and watched revisions, applied as one op (what EXEC proposes).", Write(txn::txn)),
    cmd("revisions", -2, &["readonly", "noscript", "fast"], ALL, "raftlock", "Internal: the revision counter and each key's revision (what WATCH reads).", Read(txn::revisions)),
    // pub/sub
    cmd("publish", 3, &["pubsub", "loading", "stale", "fast"], NONE, "pubsub", "Posts a message to a channel.", Write(pubsub::publish)).kind(Kind::Publish { sharded: false }),
    cmd("spublish", 3, &["pubsub", "loading", "stale", "fast"], ONE, "pubsub", "Post a message to a shard channel", Write(pubsub::publish)).kind(Kind::Publish { sharded: true }),
    conn("subscribe", -2, SUB, NONE, "pubsub", "Listens for messages published to channels.", cx::subscribe).marks(Marks::NO_MULTI.with(Marks::SUBSCRIBE_MODE)),
    conn("unsubscribe", -1, SUB, NONE, "pubsub", "Stops listening to messages posted to channels.", cx::unsubscribe).marks(Marks::NO_MULTI.with(Marks::SUBSCRIBE_MODE)),
    conn("psubscribe", -2, SUB, NONE, "pubsub", "Listens for messages published to channels that match one or more patterns.", cx::psubscribe).marks(Marks::NO_MULTI.with(Marks::SUBSCRIBE_MODE)),
    conn("punsubscribe", -1, SUB, NONE, "pubsub", "Stops listening to messages published to channels that match one or more patterns.", cx::punsubscribe).marks(Marks::NO_MULTI.with(Marks::SUBSCRIBE_MODE)),
    conn("ssubscribe", -2, SUB, ALL, "pubsub", "Listens for messages published to shard channels.", cx::ssubscribe).marks(Marks::NO_MULTI.with(Marks::SUBSCRIBE_MODE)),
    conn("sunsubscribe", -1, SUB, ALL, "pubsub", "Stops listening to messages posted to shard channels.", cx::sunsubscribe).marks(Marks::NO_MULTI.with(Marks::SUBSCRIBE_MODE)),
    node("pubsub", -2, &["pubsub", "loading", "stale"], "pubsub", "A container for Pub/Sub commands.", nd::pubsub),
    // server
    node("wait", 3, &["noscript"], "generic", "Blocks until the asynchronous replication of all preceding write commands sent by the connection is completed.", nd::wait),
    node("waitaof", 4, &["noscript"], "generic", "Blocks until all of the preceding write commands sent by the connection are written to the append-only file of the master and/or replicas.", nd::waitaof),
    node("command", -1, &["loading", "stale"], "server", "Returns detailed information about all commands.", nd::command),
    node("info", -1, &["loading", "stale"], "server", "Returns information and statistics about the server.", nd::info),
    node("time", 1, &["loading", "stale", "fast"], "server", "Returns the server time.", nd::time),
    node("config", -2, ADMIN, "server", "A container for server configuration commands.", nd::config),
    node("role", 1, &["noscript", "loading", "stale", "fast"], "server", "Returns the replication role.", nd::role),
    // cluster administration (RedisRaft style) and Sentinel-compatible discovery
    node("raft.node", -3, ADMIN, "cluster", "Adds (as a learner, then a voter) or removes a cluster member.", nd::raft_node),
    node("raft.transfer-leader", -1, ADMIN, "cluster", "Hands leadership to another voter (best effort).", nd::raft_transfer_leader),
    node("raft.elect", 1, ADMIN, "cluster", "Makes this node stand for election now.", nd::raft_elect),
    node("raft.hold-elections", 2, ADMIN, "cluster", "Keeps this node from standing for election for a while (leadership transfers).", nd::raft_hold_elections),
    node("raft.info", 1, &["loading", "stale"], "cluster", "Returns this node's view of the Raft group.", nd::raft_info),
    node("sentinel", -2, &["admin", "loading", "stale"], "sentinel", "Sentinel-compatible discovery of the current leader.", nd::sentinel),
    cmd("dbsize", 1, RF, NONE, "server", "Returns the number of keys in the database.", Read(sm::dbsize)),
    cmd("flushall", -1, W, NONE, "server", "Removes all keys from all databases.", Write(sm::flushall)),
    cmd("flushdb", -1, W, NONE, "server", "Removes all keys from the current database.", Write(sm::flushdb)),
    // keys
    cmd("del", -2, W, ALL, "generic", "Deletes one or more keys.", Write(keys::del)),
    cmd("unlink", -2, WF, ALL, "generic", "Deletes one or more keys.", Write(keys::del)),
    cmd("exists", -2, RF, ALL, "generic", "Determines whether one or more keys exist.", Read(keys::exists)),
    cmd("type", 2, RF, ONE, "generic", "Determines the type of value stored at a key.", Read(keys::type_of)),
    cmd("expire", -3, WF, ONE, "generic", "Sets the expiration time of a key in seconds.", Write(keys::expire)),
    cmd("pexpire", -3, WF, ONE, "generic", "Sets the expiration time of a key in milliseconds.", Write(keys::expire)),
    cmd("expireat", -3, WF, ONE, "generic", "Sets the expiration time of a key to a Unix timestamp.", Write(keys::expire)),
    cmd("pexpireat", -3, WF, ONE, "generic", "Sets the expiration time of a key to a Unix milliseconds timestamp.", Write(keys::expire)),
    cmd("expiretime", 2, RF, ONE, "generic", "Returns the expiration time of a key as a Unix timestamp.", Read(keys::ttl)),
    cmd("pexpiretime", 2, RF, ONE, "generic", "Returns the expiration time of a key as a Unix milliseconds timestamp.", Read(keys::ttl)),
    cmd("ttl", 2, RF, ONE, "generic", "Returns the expiration time in seconds of a key.", Read(keys::ttl)),
    cmd("pttl", 2, RF, ONE, "generic", "Returns the expiration time in milliseconds of a key.", Read(keys::ttl)),
    cmd("persist", 2, WF, ONE, "generic", "Removes the expiration time of a key.", Write(keys::persist)),
    cmd("keys", 2, R, NONE, "generic", "Returns all key names that match a pattern.", Read(keys::keys)),
    cmd("scan", -2, R, NONE, "generic", "Iterates over the key names in the database.", Read(keys::scan)),
    cmd("renamenx", 3, WF, TWO, "generic", "Renames a key only when the target key name doesn't exist.", Write(keys::rename)),
    cmd("copy", -3, WD, TWO, "generic", "Copies the value of a key to a new key.", Write(keys::copy)),
    cmd("touch", -2, RF, ALL, "generic", "Returns the number of existing keys out of those specified after updating the time they were last accessed.", Read(keys::exists)),
    cmd("randomkey", 1, R, NONE, "generic", "Returns a random key name from the database.", Read(keys::randomkey)),
    cmd("rename", 3, W, (1, 2, 1), "generic", "Renames a key and overwrites the destination.", Write(keys::rename)),
    // strings
    cmd("get", 2, RF, ONE, "string", "Returns the string value of a key.", Read(strings::get)),
    cmd("set", -3, WD, ONE, "string", "Sets the string value of a key, ignoring its type.", Write(strings::set)),
    cmd("setnx", 3, WDF, ONE, "string", "Set the string value of a key only when the key doesn't exist.", Write(strings::setnx)),
    cmd("setex", 4, WD, ONE, "string", "Sets the string value and expiration time of a key.", Write(strings::setex)),
    cmd("psetex", 4, WD, ONE, "string", "Sets both string value and expiration time in milliseconds of a key.", Write(strings::setex)),
    cmd("getdel", 2, WF, ONE, "string", "Returns the string value of a key after deleting the key.", Write(strings::getdel)),
    cmd("getex", -2, WF, ONE, "string", "Returns the string value of a key after setting its expiration time.", Write(strings::getex)),
    cmd("getset", 3, WDF, ONE, "string", "Returns the previous string value of a key after setting it to a new value.", Write(strings::getset)),
    cmd("mget", -2, RF, ALL, "string", "Atomically returns the string values of one or more keys.", Read(strings::mget)),
    cmd("mset", -3, WD, PAIRS, "string", "Atomically creates or modifies the string values of one or more keys.", Write(strings::mset)),
    cmd("msetnx", -3, WD, PAIRS, "string", "Atomically modifies the string values of one or more keys only when all keys don't exist.", Write(strings::msetnx)),
    cmd("incr", 2, WDF, ONE, "string", "Increments the integer value of a key by one.", Write(strings::incr)),
    cmd("incrby", 3, WDF, ONE, "string", "Increments the integer value of a key by a number.", Write(strings::incr)),
    cmd("decr", 2, WDF, ONE, "string", "Decrements the integer value of a key by one.", Write(strings::incr)),
    cmd("decrby", 3, WDF, ONE, "string", "Decrements a number from the integer value of a key.", Write(strings::incr)),
    cmd("append", 3, WDF, ONE, "string", "Appends a string to the value of a key.", Write(strings::append)),
    cmd("incrbyfloat", 3, WDF, ONE, "string", "Increment the floating point value of a key by a number. Uses 0 as initial value if the key doesn't exist.", Write(strings::incrbyfloat)),
    cmd("getrange", 4, R, ONE, "string", "Returns a substring of the string stored at a key.", Read(ranges::getrange)),
    cmd("substr", 4, R, ONE, "string", "Returns a substring from a string value.", Read(ranges::getrange)),
    cmd("setrange", 4, WD, ONE, "string", "Overwrites a part of a string value with another by an offset. Creates the key if it doesn't exist.", Write(ranges::setrange)),
    cmd("lcs", -3, R, TWO, "string", "Finds the longest common substring.", Read(ranges::lcs)),
    cmd("setbit", 4, WD, ONE, "bitmap", "Sets or clears the bit at offset of the string value. Creates the key if it doesn't exist.", Write(bits::setbit)),
    cmd("getbit", 3, RF, ONE, "bitmap", "Returns a bit value by offset.", Read(bits::getbit)),
    cmd("bitcount", -2, R, ONE, "bitmap", "Counts the number of set bits (population counting) in a string.", Read(bits::bitcount)),
    cmd("bitpos", -3, R, ONE, "bitmap", "Finds the first set (1) or clear (0) bit in a string.", Read(bits::bitpos)),
    cmd("bitop", -4, WD, (2, -1, 1), "bitmap", "Performs bitwise operations on multiple strings, and stores the result.", Write(bits::bitop)),
    cmd("strlen", 2, RF, ONE, "string", "Returns the length of a string value.", Read(strings::strlen)),
    cmd("delifeq", 3, WF, ONE, "string", "Deletes the key if its value equals the given string.", Write(strings::delifeq)),
    cmd("delex", -2, WF, ONE, "string", "Conditionally removes the key based on value comparison.", Write(strings::delex)),
    // hashes
    cmd("hset", -4, WDF, ONE, "hash", "Creates or modifies the value of a field in a hash.", Write(hashes::hset)),
    cmd("hmset", -4, WDF, ONE, "hash", "Sets the values of multiple fields.", Write(hashes::hset)),
    cmd("hsetnx", 4, WDF, ONE, "hash", "Sets the value of a field in a hash only when the field doesn't exist.", Write(hashes::hsetnx)),
    cmd("hget", 3, RF, ONE, "hash", "Returns the value of a field in a hash.", Read(hashes::hget)),
    cmd("hmget", -3, RF, ONE, "hash", "Returns the values of all fields in a hash.", Read(hashes::hmget)),
    cmd("hdel", -3, WF, ONE, "hash", "Deletes one or more fields and their values from a hash. Deletes the hash if no fields remain.", Write(hashes::hdel)),
    cmd("hexists", 3, RF, ONE, "hash", "Determines whether a field exists in a hash.", Read(hashes::hexists)),
    cmd("hincrby", 4, WDF, ONE, "hash", "Increments the integer value of a field in a hash by a number. Uses 0 as initial value if the field doesn't exist.", Write(hashes::hincrby)),
    cmd("hincrbyfloat", 4, WDF, ONE, "hash", "Increments the floating point value of a field by a number. Uses 0 as initial value if the field doesn't exist.", Write(hashes::hincrbyfloat)),
    cmd("hstrlen", 3, RF, ONE, "hash", "Returns the length of the value of a field.", Read(hashes::hstrlen)),
    cmd("hrandfield", -2, R, ONE, "hash", "Returns one or more random fields from a hash.", Read(hashes::hrandfield)),
    cmd("hscan", -3, R, ONE, "hash", "Iterates over fields and values of a hash.", Read(hashes::hscan)),
    cmd("hlen", 2, RF, ONE, "hash", "Returns the number of fields in a hash.", Read(hashes::hlen)),
    cmd("hgetall", 2, R, ONE, "hash", "Returns all fields and values in a hash.", Read(hashes::hgetall)),
    cmd("hkeys", 2, R, ONE, "hash", "Returns all fields in a hash.", Read(hashes::hkeys)),
    cmd("hvals", 2, R, ONE, "hash", "Returns all values in a hash.", Read(hashes::hkeys)),
    // sorted sets
    cmd("zadd", -4, WDF, ONE, "sorted-set", "Adds one or more members to a sorted set, or updates their scores. Creates the key if it doesn't exist.", Write(zsets::zadd)),
    cmd("zincrby", 4, WDF, ONE, "sorted-set", "Increments the score of a member in a sorted set.", Write(zsets::zincrby)),
    cmd("zmscore", -3, RF, ONE, "sorted-set", "Returns the score of one or more members in a sorted set.", Read(zsets::zmscore)),
    cmd("zpopmin", -2, WF, ONE, "sorted-set", "Returns the lowest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", Write(zset_pops::zpop)),
    cmd("zpopmax", -2, WF, ONE, "sorted-set", "Returns the highest-scoring members from a sorted set after removing them. Deletes the sorted set if the last member was popped.", Write(zset_pops::zpop)),
    cmd("zmpop", -4, &["write", "movablekeys"], NONE, "sorted-set", "Returns the highest- or lowest-scoring members from one or more sorted sets after removing them. Deletes the sorted set if the last member was popped.", Write(zset_pops::zmpop)).numkeys_at(1),
    cmd("bzpopmin", -3, &["write", "noscript", "fast", "blocking"], ALL_BUT_LAST, "sorted-set", "Removes and returns the member with the lowest score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Write(zset_pops::bzpop)).kind(Kind::BlockingWrite(Blocking::ListPop)),
    cmd("bzpopmax", -3, &["write", "noscript", "fast", "blocking"], ALL_BUT_LAST, "sorted-set", "Removes and returns the member with the highest score from one or more sorted sets. Blocks until a member available otherwise. Deletes the sorted set if the last element was popped.", Write(zset_pops::bzpop)).kind(Kind::BlockingWrite(Blocking::ListPop)),
    cmd("bzmpop", -5, &["write", "blocking", "movablekeys"], NONE, "sorted-set", "Removes and returns a member by score from one or more sorted sets. Blocks until a member is available otherwise. Deletes the sorted set if the last element was popped.", Write(zset_pops::zmpop)).numkeys_at(2).kind(Kind::BlockingWrite(Blocking::ListPop)),
    cmd("zrem", -3, WF, ONE, "sorted-set", "Removes one or more members from a sorted set. Deletes the sorted set if all members were removed.", Write(zsets::zrem)),
    cmd("zcard", 2, RF, ONE, "sorted-set", "Returns the number of members in a sorted set.", Read(zsets::zcard)),
    cmd("zscore", 3, RF, ONE, "sorted-set", "Returns the score of a member in a sorted set.", Read(zsets::zscore)),
    cmd("zrank", -3, RF, ONE, "sorted-set", "Returns the index of a member in a sorted set ordered by ascending scores.", Read(zsets::zrank)),
    cmd("zrevrank", -3, RF, ONE, "sorted-set", "Returns the index of a member in a sorted set ordered by descending scores.", Read(zsets::zrank)),
    cmd("zrange", -4, R, ONE, "sorted-set", "Returns members in a sorted set within a range of indexes or scores.", Read(zsets::zrange)),
    cmd("zrevrange", -4, R, ONE, "sorted-set", "Returns members in a sorted set within a range of indexes, in reverse order.", Read(zsets::zrange)),
    cmd("zrangebyscore", -4, R, ONE, "sorted-set", "Returns members in a sorted set within a range of scores.", Read(zsets::zrange)),
    cmd("zrevrangebyscore", -4, R, ONE, "sorted-set", "Returns members in a sorted set within a range of scores, in reverse order.", Read(zsets::zrange)),
    cmd("zremrangebyscore", 4, W, ONE, "sorted-set", "Removes members in a sorted set within a range of scores. Deletes the sorted set if all members were removed.", Write(zsets::zremrange)),
    cmd("zrangebylex", -4, R, ONE, "sorted-set", "Returns members in a sorted set within a lexicographical range.", Read(zsets::zrange)),
    cmd("zrevrangebylex", -4, R, ONE, "sorted-set", "Returns members in a sorted set within a lexicographical range in reverse order.", Read(zsets::zrange)),
    cmd("zremrangebylex", 4, W, ONE, "sorted-set", "Removes members in a sorted set within a lexicographical range. Deletes the sorted set if all members were removed.", Write(zsets::zremrange)),
    cmd("zremrangebyrank", 4, W, ONE, "sorted-set", "Removes members in a sorted set within a range of indexes. Deletes the sorted set if all members were removed.", Write(zsets::zremrange)),
    cmd("zlexcount", 4, RF, ONE, "sorted-set", "Returns the number of members in a sorted set within a lexicographical range.", Read(zsets::zlexcount)),
    cmd("zrandmember", -2, R, ONE, "sorted-set", "Returns one or more random members from a sorted set.", Read(zsets::zrandmember)),
    cmd("zscan", -3, R, ONE, "sorted-set", "Iterates over members and scores of a sorted set.", Read(zsets::zscan)),
    cmd("zunion", -3, &["readonly", "movablekeys"], NONE, "sorted-set", "Returns the union of multiple sorted sets.", Read(zsets::zalgebra)).numkeys_at(1),
    cmd("zinter", -3, &["readonly", "movablekeys"], NONE, "sorted-set", "Returns the intersect of multiple sorted sets.", Read(zsets::zalgebra)).numkeys_at(1),
    cmd("zdiff", -3, &["readonly", "movablekeys"], NONE, "sorted-set", "Returns the difference between multiple sorted sets.", Read(zsets::zalgebra)).numkeys_at(1),
    cmd("zintercard", -3, &["readonly", "movablekeys"], NONE, "sorted-set", "Returns the number of members of the intersect of multiple sorted sets.", Read(zsets::zintercard)).numkeys_at(1),
    cmd("zunionstore", -4, &["write", "denyoom", "movablekeys"], ONE, "sorted-set", "Stores the union of multiple sorted sets in a key.", Write(zsets::zalgebra_store)),
    cmd("zinterstore", -4, &["write", "denyoom", "movablekeys"], ONE, "sorted-set", "Stores the intersect of multiple sorted sets in a key.", Write(zsets::zalgebra_store)),
    cmd("zdiffstore", -4, &["write", "denyoom", "movablekeys"], ONE, "sorted-set", "Stores the difference of multiple sorted sets in a key.", Write(zsets::zalgebra_store)),
    cmd("zrangestore", -5, WD, TWO, "sorted-set", "Stores a range of members from sorted set in a key.", Write(zsets::zrangestore)),
    cmd("zcount", 4, RF, ONE, "sorted-set", "Returns the count of members in a sorted set that have scores within a range.", Read(zsets::zcount)),
    // sets
    cmd("sadd", -3, WDF, ONE, "set", "Adds one or more members to a set. Creates the key if it doesn't exist.", Write(sets::sadd)),
    cmd("srem", -3, WF, ONE, "set", "Removes one or more members from a set. Deletes the set if the last member was removed.", Write(sets::srem)),
    cmd("sismember", 3, RF, ONE, "set", "Determines whether a member belongs to a set.", Read(sets::sismember)),
    cmd("smismember", -3, RF, ONE, "set", "Determines whether multiple members belong to a set.", Read(sets::smismember)),
    cmd("smembers", 2, R, ONE, "set", "Returns all members of a set.", Read(sets::smembers)),
    cmd("scard", 2, RF, ONE, "set", "Returns the number of members in a set.", Read(sets::scard)),
    cmd("spop", -2, WF, ONE, "set", "Returns one or more random members from a set after removing them. Deletes the set if the last member was popped.", Write(sets::spop)),
    cmd("srandmember", -2, R, ONE, "set", "Get one or multiple random members from a set", Read(sets::srandmember)),
    cmd("sscan", -3, R, ONE, "set", "Iterates over members of a set.", Read(sets::sscan)),
    cmd("sinter", -2, R, ALL, "set", "Returns the intersect of multiple sets.", Read(sets::algebra)),
    cmd("sunion", -2, R, ALL, "set", "Returns the union of multiple sets.", Read(sets::algebra)),
    cmd("sdiff", -2, R, ALL, "set", "Returns the difference of multiple sets.", Read(sets::algebra)),
    cmd("sinterstore", -3, WD, ALL, "set", "Stores the intersect of multiple sets in a key.", Write(sets::algebra_store)),
    cmd("sunionstore", -3, WD, ALL, "set", "Stores the union of multiple sets in a key.", Write(sets::algebra_store)),
    cmd("sdiffstore", -3, WD, ALL, "set", "Stores the difference of multiple sets in a key.", Write(sets::algebra_store)),
    cmd("sintercard", -3, &["readonly", "movablekeys"], NONE, "set", "Returns the number of members of the intersect of multiple sets.", Read(sets::sintercard)).numkeys_at(1),
    cmd("smove", 4, WF, TWO, "set", "Moves a member from one set to another.", Write(sets::smove)),
    // lists
    cmd("lpush", -3, WDF, ONE, "list", "Prepends one or more elements to a list. Creates the key if it doesn't exist.", Write(lists::push)),
    cmd("rpush", -3, WDF, ONE, "list", "Appends one or more elements to a list. Creates the key if it doesn't exist.", Write(lists::push)),
    cmd("lpushx", -3, WDF, ONE, "list", "Prepends one or more elements to a list only when the list exists.", Write(lists::push)),
    cmd("rpushx", -3, WDF, ONE, "list", "Appends an element to a list only when the list exists.", Write(lists::push)),
    cmd("lpop", -2, WF, ONE, "list", "Returns the first elements in a list after removing it. Deletes the list if the last element was popped.", Write(lists::pop)),
    cmd("rpop", -2, WF, ONE, "list", "Returns and removes the last elements of a list. Deletes the list if the last element was popped.", Write(lists::pop)),
    cmd("llen", 2, RF, ONE, "list", "Returns the length of a list.", Read(lists::llen)),
    cmd("lrange", 4, R, ONE, "list", "Returns a range of elements from a list.", Read(lists::lrange)),
    cmd("lindex", 3, R, ONE, "list", "Returns an element from a list by its index.", Read(lists::lindex)),
    cmd("lrem", 4, W, ONE, "list", "Removes elements from a list. Deletes the list if the last element was removed.", Write(lists::lrem)),
    cmd("lset", 4, WD, ONE, "list", "Sets the value of an element in a list by its index.", Write(list_edits::lset)),
    cmd("linsert", 5, WD, ONE, "list", "Inserts an element before or after another element in a list.", Write(list_edits::linsert)),
    cmd("lpos", -3, R, ONE, "list", "Returns the index of matching elements in a list.", Read(list_edits::lpos)),
    cmd("lmpop", -4, &["write", "movablekeys"], NONE, "list", "Returns multiple elements from a list after removing them. Deletes the list if the last element was popped.", Write(list_edits::lmpop)).numkeys_at(1),
    cmd("blmpop", -5, &["write", "blocking", "movablekeys"], NONE, "list", "Pops the first element from one of multiple lists. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Write(list_edits::lmpop)).numkeys_at(2).kind(Kind::BlockingWrite(Blocking::ListPop)),
    cmd("ltrim", 4, W, ONE, "list", "Removes elements from both ends a list. Deletes the list if all elements were trimmed.", Write(lists::ltrim)),
    cmd("lmove", 5, WD, TWO, "list", "Returns an element after popping it from one list and pushing it to another. Deletes the list if the last element was moved.", Write(lists::lmove)),
    cmd("rpoplpush", 3, WD, TWO, "list", "Returns the last element of a list after removing and pushing it to another list. Deletes the list if the last element was popped.", Write(lists::rpoplpush)),
    cmd("blpop", -3, BLOCKING, ALL_BUT_LAST, "list", "Removes and returns the first element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Write(lists::blocking_pop)).kind(Kind::BlockingWrite(Blocking::ListPop)),
    cmd("brpop", -3, BLOCKING, ALL_BUT_LAST, "list", "Removes and returns the last element in a list. Blocks until an element is available otherwise. Deletes the list if the last element was popped.", Write(lists::blocking_pop)).kind(Kind::BlockingWrite(Blocking::ListPop)),
    cmd("blmove", 6, BLOCKING_D, TWO, "list", "Pops an element from a list, pushes it to another list and returns it. Blocks until an element is available otherwise. Deletes the list if the last element was moved.", Write(lists::blmove)).kind(Kind::BlockingWrite(Blocking::ListMove)),
    cmd("brpoplpush", 4, BLOCKING_D, TWO, "list", "Pops an element from a list, pushes it to another list and returns it. Block until an element is available otherwise. Deletes the list if the last element was popped.", Write(lists::brpoplpush)).kind(Kind::BlockingWrite(Blocking::ListMove)),
    // raftlock
    cmd("fence", 2, RF, ONE, "raftlock", "Returns the fencing token of the key's current value.", Read(strings::fence)),
    cmd("lock", -4, LOCKING, ONE, "raftlock", "Acquires a lock (exclusive, or shared with MODE PR), optionally waiting in FIFO order.", Write(locks::lock)).kind(Kind::BlockingWrite(Blocking::Lock)),
    cmd("rlock", -4, LOCKING, ONE, "raftlock", "Acquires a shared (PR) lock, optionally waiting in FIFO order.", Write(locks::lock)).kind(Kind::BlockingWrite(Blocking::Lock)),
    cmd("unlock", 3, WF, ONE, "raftlock", "Releases one hold of a lock.", Write(locks::unlock)),
    cmd("renew", 4, WF, ONE, "raftlock", "Extends the lease of a held lock.", Write(locks::renew)).kind(Kind::SessionWrite),
    cmd("lockcancel", 3, WF, ONE, "raftlock", "Leaves a lock's wait queue (what a disconnect does).", Write(locks::lockcancel)),
    cmd("lockinfo", 2, RF, ONE, "raftlock", "Returns a lock's mode, holders, token, ttl and waiters.", Read(locks::lockinfo)),
    cmd("checkfence", 3, RF, ONE, "raftlock", "Tells whether a fencing token is the current grant of a resource.", Read(locks::checkfence)),
    // scripting: keys are the numkeys arguments after the script (first key at index 3)
    cmd("eval", -3, SCRIPT_W, NONE, "scripting", "Executes a server-side Lua script.", Write(scripts::eval)).numkeys_at(2),
    cmd("evalsha", -3, SCRIPT_W, NONE, "scripting", "Executes a server-side Lua script by SHA1 digest.", Write(scripts::eval)).numkeys_at(2),
    cmd("eval_ro", -3, SCRIPT_R, NONE, "scripting", "Executes a read-only server-side Lua script.", Read(scripts::eval_ro)).numkeys_at(2),
    cmd("evalsha_ro", -3, SCRIPT_R, NONE, "scripting", "Executes a read-only server-side Lua script by SHA1 digest.", Read(scripts::eval_ro)).numkeys_at(2),
    served("script", -2, &[], NONE, "scripting", "A container for Lua scripts management commands.", Server, Kind::Container).with_subcommands(SCRIPT_SUBCOMMANDS),
];
