//! EVAL, EVALSHA, EVAL_RO, EVALSHA_RO and SCRIPT LOAD|EXISTS|FLUSH|KILL, and the script
//! cache they share.
//!
//! A script runs inside apply as one op of one entry, with the entry's time, so every node
//! computes the same reply and the same writes. Its writes apply all together or, if it
//! raises an error or is stopped, not at all. The cache (sha1 -> source) is replicated
//! state: SCRIPT LOAD and EVAL of a new body are writes, persisted with the keys, so
//! EVALSHA works on every node and after restarts. Compiled functions are per node.

use std::collections::{BTreeMap, HashMap};
use std::sync::OnceLock;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::lua::{native, sha1_hex, Access, Invocation};
use super::{invoked_as, run, wrong_arity, Keyspace};
use crate::args::parse_i64;
use crate::config::state_limits::{MAX_EVAL_SCRIPTS, MAX_LOADED_SCRIPTS, MAX_SCRIPT_BYTES};
use crate::reply::Reply;

/// One cached script, as persisted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredScript {
    pub source: Bytes,
    /// Loaded by SCRIPT LOAD: kept until SCRIPT FLUSH. Otherwise added by EVAL, and
    /// dropped, oldest first, once more than `MAX_EVAL_SCRIPTS` are.
    pub loaded: bool,
    /// When EVAL added it, for that order.
    pub seq: u64,
    /// Which known release script it is, if any: worked out on first use, not persisted.
    #[serde(skip)]
    pub native: NativeMemo,
}

impl StoredScript {
    fn new(source: &Bytes, loaded: bool, seq: u64) -> StoredScript {
        StoredScript {
            source: Bytes::copy_from_slice(source),
            loaded,
            seq,
            native: NativeMemo::default(),
        }
    }

    /// The known release script this is (`lua::native`), if it is one.
    fn release(&self) -> Option<native::Release> {
        *self
            .native
            .0
            .get_or_init(|| native::recognize(&self.source))
    }
}

/// `native::recognize` of a cached script, kept so that an EVALSHA does not tokenize the
/// text again. A cache, not part of the script: any two compare equal.
#[derive(Clone, Debug, Default)]
pub struct NativeMemo(OnceLock<Option<native::Release>>);

impl PartialEq for NativeMemo {
    fn eq(&self, _: &NativeMemo) -> bool {
        true
    }
}

impl Eq for NativeMemo {}

/// The replicated script cache and what changed in it since the store last persisted.
#[derive(Debug, Default)]
pub struct ScriptStore {
    pub(super) scripts: HashMap<String, StoredScript>,
    /// EVAL'd scripts by `seq`, oldest first.
    eval_order: BTreeMap<u64, String>,
    next_seq: u64,
}

impl ScriptStore {
    pub fn get(&self, sha: &str) -> Option<&StoredScript> {
        self.scripts.get(sha)
    }

    fn contains(&self, sha: &str) -> bool {
        self.scripts.contains_key(sha)
    }

    /// EVAL of a body not yet cached.
    fn add_eval(&mut self, sha: &str, source: &Bytes) {
        if self.contains(sha) {
            return;
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        self.eval_order.insert(seq, sha.to_string());
        self.put(sha.to_string(), StoredScript::new(source, false, seq));
        while self.eval_order.len() > MAX_EVAL_SCRIPTS {
            if let Some((_, oldest)) = self.eval_order.pop_first() {
                self.scripts.remove(&oldest);
            }
        }
    }

    /// SCRIPT LOAD: the script stays until SCRIPT FLUSH.
    fn load(&mut self, sha: &str, source: &Bytes) -> Result<(), Reply> {
        if let Some(script) = self.scripts.get_mut(sha) {
            if !script.loaded {
                script.loaded = true;
                self.eval_order.remove(&script.seq);
            }
            return Ok(());
        }
        let loaded = self.scripts.len() - self.eval_order.len();
        if loaded >= MAX_LOADED_SCRIPTS {
            return Err(Reply::Error(format!(
                "ERR too many loaded scripts (max {MAX_LOADED_SCRIPTS}): SCRIPT FLUSH first"
            )));
        }
        self.put(sha.to_string(), StoredScript::new(source, true, 0));
        Ok(())
    }

    fn put(&mut self, sha: String, script: StoredScript) {
        self.scripts.insert(sha, script);
    }

    fn flush(&mut self) {
        self.scripts.clear();
        self.eval_order.clear();
    }

    /// Adds a persisted script back (restore, snapshot install).
    pub(super) fn insert_loaded(&mut self, sha: String, script: StoredScript) {
        if !script.loaded {
            self.eval_order.insert(script.seq, sha.clone());
            self.next_seq = self.next_seq.max(script.seq + 1);
        }
        self.scripts.insert(sha, script);
    }
}

fn noscript() -> Reply {
    Reply::error("NOSCRIPT No matching script. Please use EVAL.")
}

/// The arguments every EVAL form shares.
struct EvalArgs<'a> {
    script: &'a Bytes,
    keys: &'a [Bytes],
    args: &'a [Bytes],
}

/// `script numkeys key... arg...`, checked in Redis's order and words.
fn parse_eval(argv: &[Bytes]) -> Result<EvalArgs<'_>, Reply> {
    let [_, script, numkeys, rest @ ..] = argv else {
        return Err(wrong_arity(argv));
    };
    let numkeys = parse_i64(numkeys).ok_or_else(Reply::not_integer)?;
    if numkeys > rest.len() as i64 {
        return Err(Reply::error(
            "ERR Number of keys can't be greater than number of args",
        ));
    }
    let Ok(numkeys) = usize::try_from(numkeys) else {
        return Err(Reply::error("ERR Number of keys can't be negative"));
    };
    let (keys, args) = rest.split_at(numkeys);
    Ok(EvalArgs { script, keys, args })
}

/// EVALSHA's digest as the cache keys it: Redis compares it lower-cased.
fn normalize_sha(sha: &[u8]) -> Option<String> {
    (sha.len() == 40).then(|| String::from_utf8_lossy(sha).to_ascii_lowercase())
}

fn check_size(body: &[u8]) -> Result<(), Reply> {
    if body.len() > MAX_SCRIPT_BYTES {
        return Err(Reply::Error(format!(
            "ERR script body longer than {MAX_SCRIPT_BYTES} bytes"
        )));
    }
    Ok(())
}

/// What a Redis 7 shebang line (`#!lua flags=no-writes`) says about a script.
struct Shebang {
    /// Where the Lua code starts: the shebang is cut, its newline kept, so line numbers
    /// stay the user's.
    body_offset: usize,
    /// A shebang was given (the script is not "legacy").
    present: bool,
    no_writes: bool,
}

fn parse_shebang(source: &[u8]) -> Result<Shebang, Reply> {
    if !source.starts_with(b"#!") {
        return Ok(Shebang {
            body_offset: 0,
            present: false,
            no_writes: false,
        });
    }
    let end = source
        .iter()
        .position(|&b| b == b'\n')
        .unwrap_or(source.len());
    let line = String::from_utf8_lossy(&source[2..end]);
    let mut parts = line.split(' ').filter(|p| !p.is_empty());
    let engine = parts.next().unwrap_or("");
    if engine != "lua" {
        return Err(Reply::Error(format!(
            "ERR Unexpected engine in script shebang: {engine}"
        )));
    }
    let mut no_writes = false;
    for part in parts {
        let Some(flags) = part.strip_prefix("flags=") else {
            return Err(Reply::Error(format!(
                "ERR Unknown lua shebang option: {part}"
            )));
        };
        for flag in flags.split(',').filter(|f| !f.is_empty()) {
            match flag {
                "no-writes" => no_writes = true,
                "allow-oom" | "allow-stale" | "no-cluster" | "allow-cross-slot-keys" => {}
                _ => {
                    return Err(Reply::Error(format!(
                        "ERR Unexpected flag in script shebang: {flag}"
                    )))
                }
            }
        }
    }
    Ok(Shebang {
        body_offset: end,
        present: true,
        no_writes,
    })
}

/// EVAL script numkeys [key ...] [arg ...], EVALSHA sha1 numkeys [key ...] [arg ...]
///
/// Keys are the `numkeys` arguments after the script (first key at index 3). EVAL of a
/// new body adds it to the cache, even if it then fails at run time (as Redis does).
pub fn eval(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let call = parse_eval(argv)?;
        let by_sha = invoked_as(argv, "evalsha");
        let (sha, source, release) = if by_sha {
            let sha = normalize_sha(call.script).ok_or_else(noscript)?;
            let script = ks.replicated.scripts.get(&sha).ok_or_else(noscript)?;
            let (source, release) = (script.source.clone(), script.release());
            (sha, source, release)
        } else {
            check_size(call.script)?;
            let sha = sha1_hex(call.script);
            let release = match ks.replicated.scripts.get(&sha) {
                Some(script) => script.release(),
                None => native::recognize(call.script),
            };
            (sha, call.script.clone(), release)
        };
        let shebang = parse_shebang(&source)?;
        let invocation = Invocation {
            sha: &sha,
            keys: call.keys,
            args: call.args,
            now_ms,
            read_only: shebang.no_writes,
            seed: ks.script_seed(now_ms),
        };
        if let Some(reply) = run_natively(ks, &shebang, release, &invocation) {
            if !by_sha {
                ks.replicated.scripts.add_eval(&sha, &source);
            }
            return Ok(reply);
        }
        let mut engine = ks.runtime.lua.take();
        if let Err(error) = engine.compile(&sha, &source[shebang.body_offset..]) {
            ks.runtime.lua.put(engine);
            return Err(error);
        }
        if !by_sha {
            ks.replicated.scripts.add_eval(&sha, &source);
        }
        ks.begin_undo();
        let outcome = engine.run(Access::Write(ks), &invocation);
        if outcome.is_ok() {
            ks.commit_undo();
        } else {
            ks.rollback_undo();
        }
        ks.runtime.lua.put(engine);
        outcome
    })
}

/// A known lock-release script, run without Lua (`lua::native`); None runs it in Lua.
fn run_natively(
    ks: &mut Keyspace,
    shebang: &Shebang,
    release: Option<native::Release>,
    invocation: &Invocation<'_>,
) -> Option<Reply> {
    #[cfg(any(test, fuzzing))]
    if ks.lua_only {
        return None;
    }
    // A restricted user's script runs in Lua, where each redis.call is checked.
    if shebang.present || ks.caller().is_some() {
        return None;
    }
    native::run(release?, ks, invocation)
}

/// EVAL_RO and EVALSHA_RO: a read; write commands inside are refused. A body EVAL_RO
/// has not seen is compiled on this node but not added to the replicated cache (a read
/// changes no state): SCRIPT LOAD it for EVALSHA_RO.
pub fn eval_ro(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let call = parse_eval(argv)?;
        let (sha, source) = if invoked_as(argv, "evalsha_ro") {
            let sha = normalize_sha(call.script).ok_or_else(noscript)?;
            let source = ks
                .replicated
                .scripts
                .get(&sha)
                .ok_or_else(noscript)?
                .source
                .clone();
            (sha, source)
        } else {
            check_size(call.script)?;
            (sha1_hex(call.script), call.script.clone())
        };
        let shebang = parse_shebang(&source)?;
        if shebang.present && !shebang.no_writes {
            return Err(Reply::error(
                "ERR Can not execute a script with write flag using *_ro command.",
            ));
        }
        let invocation = Invocation {
            sha: &sha,
            keys: call.keys,
            args: call.args,
            now_ms,
            read_only: true,
            seed: ks.script_seed(now_ms),
        };
        ks.runtime.lua.with(|engine| {
            engine.compile(&sha, &source[shebang.body_offset..])?;
            engine.run(Access::Read(ks), &invocation)
        })
    })
}

/// SCRIPT LOAD script: its sha1, once it compiles.
pub fn script_load(ks: &mut Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, _, body] = argv else {
            return Err(wrong_arity(argv));
        };
        check_size(body)?;
        let shebang = parse_shebang(body)?;
        let sha = sha1_hex(body);
        let mut engine = ks.runtime.lua.take();
        let compiled = engine.compile(&sha, &body[shebang.body_offset..]);
        ks.runtime.lua.put(engine);
        compiled?;
        ks.replicated.scripts.load(&sha, body)?;
        Ok(Reply::bulk(sha))
    })
}

/// SCRIPT EXISTS sha1 [sha1 ...]: 1 or 0 for each.
pub fn script_exists(ks: &Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    let [_, _, shas @ ..] = argv else {
        return wrong_arity(argv);
    };
    if shas.is_empty() {
        return wrong_arity(argv);
    }
    Reply::Array(
        shas.iter()
            .map(|sha| {
                let known =
                    normalize_sha(sha).is_some_and(|sha| ks.replicated.scripts.contains(&sha));
                Reply::Int(known as i64)
            })
            .collect(),
    )
}

/// SCRIPT FLUSH [ASYNC | SYNC]: empties the cache on every node, and each node's Lua
/// state starts over, as Redis's does.
pub fn script_flush(ks: &mut Keyspace, _now_ms: u64, argv: &[Bytes]) -> Reply {
    match argv {
        [_, _] => {}
        [_, _, mode]
            if mode.eq_ignore_ascii_case(b"sync") || mode.eq_ignore_ascii_case(b"async") => {}
        [_, _, _] => return Reply::error("ERR SCRIPT FLUSH only support SYNC|ASYNC option"),
        _ => return wrong_arity(argv),
    }
    ks.replicated.scripts.flush();
    ks.runtime.lua.reset();
    Reply::Ok
}

/// SCRIPT KILL: scripts run inside apply and stop at their instruction budget, so none
/// is ever running for a client to kill.
pub fn script_kill(_ks: &Keyspace, _now_ms: u64, _argv: &[Bytes]) -> Reply {
    Reply::error("NOTBUSY No scripts in execution right now.")
}
