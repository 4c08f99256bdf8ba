//! What the fuzz targets share: comparing replies, checking a keyspace's snapshot, and
//! building commands that are likely to mean something to the state machine.

use arbitrary::Arbitrary;
use bytes::Bytes;
use raftlock::command::COMMANDS;
use raftlock::reply::Reply;
use raftlock::state::Keyspace;

/// Equal replies, where a NaN double equals a NaN (`Reply`'s `==` says it does not).
pub fn same_reply(a: &Reply, b: &Reply) -> bool {
    let all = |a: &[Reply], b: &[Reply]| {
        a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_reply(a, b))
    };
    let pairs = |a: &[(Reply, Reply)], b: &[(Reply, Reply)]| {
        a.len() == b.len()
            && a.iter()
                .zip(b)
                .all(|((ak, av), (bk, bv))| same_reply(ak, bk) && same_reply(av, bv))
    };
    match (a, b) {
        (Reply::Double(a), Reply::Double(b)) => a == b || (a.is_nan() && b.is_nan()),
        (Reply::Array(a), Reply::Array(b))
        | (Reply::Set(a), Reply::Set(b))
        | (Reply::Push(a), Reply::Push(b)) => all(a, b),
        (Reply::Map(a), Reply::Map(b)) | (Reply::Pairs(a), Reply::Pairs(b)) => pairs(a, b),
        _ => a == b,
    }
}

/// The keyspace's snapshot, after checking that it decodes to a keyspace with the same
/// snapshot and that the copy-then-encode path gives the same bytes.
pub fn snapshot_round_trip(keyspace: &Keyspace) -> Vec<u8> {
    let bytes = keyspace.to_snapshot();
    assert!(
        keyspace.snapshot_image().encode() == bytes,
        "snapshot_image().encode() differs from to_snapshot()"
    );
    let restored = Keyspace::from_snapshot(&bytes).expect("a keyspace's own snapshot decodes");
    assert!(
        restored.to_snapshot() == bytes,
        "a decoded snapshot encodes differently"
    );
    bytes
}

/// Internal ops the proposer writes at the head of an entry (a new leader's epoch, the
/// leader's wall clock), which the fuzzer should reach as easily as any command.
const INTERNAL_OPS: &[&str] = &["raftlock.epoch", "raftlock.wallclock"];

/// Every name the command table knows, subcommands as two words (`script load`), then
/// the internal ops.
pub fn command_names() -> Vec<Vec<&'static str>> {
    let mut names = Vec::new();
    for spec in COMMANDS {
        names.push(vec![spec.name]);
        for sub in spec.subcommands {
            names.push(sub.name.split('|').collect());
        }
    }
    names.extend(INTERNAL_OPS.iter().map(|op| vec![*op]));
    names
}

/// Options and values the commands parse, so the fuzzer finds them without guessing.
const WORDS: &[&str] = &[
    "NX",
    "XX",
    "GT",
    "LT",
    "CH",
    "INCR",
    "EX",
    "PX",
    "EXAT",
    "PXAT",
    "KEEPTTL",
    "PERSIST",
    "GET",
    "IFEQ",
    "IFNE",
    "WAIT",
    "MODE",
    "PR",
    "WITHSCORES",
    "WITHSCORE",
    "LIMIT",
    "BYSCORE",
    "BYLEX",
    "REV",
    "COUNT",
    "MATCH",
    "TYPE",
    "LEFT",
    "RIGHT",
    "BEFORE",
    "AFTER",
    "RANK",
    "MAXLEN",
    "SYNC",
    "ASYNC",
    "FLUSH",
    "LOAD",
    "EXISTS",
    "KILL",
    "string",
    "lock",
    "list",
    "hash",
    "zset",
    "*",
    "k*",
    "[a",
    "(1",
    "-",
    "+",
    "+inf",
    "-inf",
    "inf",
    "nan",
    "0",
    "-1",
    "1",
    "2",
    "10",
    "100",
    "1000",
    "30000",
    "1.5",
    "-0",
    "0.1",
    "1e3",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "",
];

/// Keys the commands share, so they meet each other's data (WRONGTYPE, expiry, locks).
pub const KEYS: &[&str] = &["k0", "k1", "k2", "{k}3", "lock", "res"];

/// One argument: mostly a shared key, a number or a known word, sometimes any bytes.
#[derive(Arbitrary, Debug)]
pub enum Arg {
    Key(u8),
    Word(u8),
    Int(i64),
    Small(u8),
    Bytes(Vec<u8>),
}

impl Arg {
    pub fn to_bytes(&self) -> Bytes {
        match self {
            Arg::Key(i) => Bytes::from_static(KEYS[*i as usize % KEYS.len()].as_bytes()),
            Arg::Word(i) => Bytes::from_static(WORDS[*i as usize % WORDS.len()].as_bytes()),
            Arg::Int(n) => Bytes::from(n.to_string()),
            Arg::Small(n) => Bytes::from(n.to_string()),
            Arg::Bytes(bytes) => Bytes::copy_from_slice(bytes),
        }
    }
}

/// One command: a name from the table, picked by index, and its arguments.
#[derive(Arbitrary, Debug)]
pub struct Op {
    pub command: u16,
    pub args: Vec<Arg>,
}

impl Op {
    pub fn argv(&self, names: &[Vec<&'static str>]) -> Vec<Bytes> {
        let name = &names[self.command as usize % names.len()];
        name.iter()
            .map(|word| Bytes::from_static(word.as_bytes()))
            .chain(self.args.iter().map(Arg::to_bytes))
            .collect()
    }
}
