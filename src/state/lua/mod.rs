//! The Lua 5.1 engine that runs EVAL scripts inside apply, and its bridge to the command
//! table (`redis.call`).
//!
//! One Lua state per node, created on first use, holds the compiled scripts: it is a
//! cache, not replicated state (the sources are, in `ScriptStore`). Everything that could
//! make two nodes answer a script differently is pinned down:
//! - no clock, no I/O, no `os`/`io`/`debug`/`collectgarbage`; `math.random` is Redis's
//!   rand48 seeded from the op that runs the script (`Keyspace::script_seed`); TIME
//!   inside a script is the entry's time;
//! - globals and library tables are read-only proxies, so no script leaves anything
//!   behind for the next one (a node that restarted has a fresh state and must agree);
//! - an instruction budget, counted by a Lua count hook, stops a runaway script at the
//!   same instruction on every node; bytes built by `string.rep` count against it too;
//! - the garbage collector never runs on its own, only between scripts (an incremental
//!   step after every `LUA_STEP_AFTER_BYTES` of garbage, a full collection now and then):
//!   weak tables cannot show a node's collection timing, and the memory a script may
//!   allocate is counted from its start, the same bytes on every node (give or take
//!   strings the script shares with the node's earlier scripts, which Lua does not
//!   allocate twice);
//! - `tostring` of a table, function or coroutine hides its address.
//!
//! One source of difference is left to script authors, as in Redis: the order in which
//! `pairs` visits keys that are tables or functions follows their addresses.

mod bitop;
mod calls;
pub(crate) mod cjson;
mod cmsgpack;
pub(crate) mod convert;
mod errors;
pub(crate) mod native;
#[cfg(test)]
mod script_tests;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mlua::{
    chunk::ChunkMode, Function, HookTriggers, Lua, LuaOptions, StdLib, Table, Value, VmState,
};

use super::Keyspace;
use crate::command::{self, REDIS_COMPAT_VERSION};
use crate::config::state_limits::{MAX_SCRIPT_INSTRUCTIONS, MAX_SCRIPT_MEMORY_BYTES};
use crate::reply::Reply;
use calls::{register_redis_call, register_run_functions, Rand48, Run, RunSlot};
use convert::{lua_to_arg, lua_to_reply, ReplyBudget};
use errors::{error_location, lua_error_text, script_error};

const PRELUDE: &str = include_str!("prelude.lua");
/// The prelude's chunk name; frames from it are skipped when an error is located.
const PRELUDE_SOURCE: &str = "=raftlock";
/// The chunk name Redis gives scripts, so errors read `user_script:1: ...`.
const SCRIPT_CHUNK_NAME: &str = "@user_script";
/// The count hook runs every this many VM instructions.
const HOOK_EVERY_INSTRUCTIONS: u32 = 1000;
/// Bytes `string.rep` may build per instruction of budget it is charged.
const REP_BYTES_PER_INSTRUCTION: f64 = 64.0;
use crate::config::state_limits::{
    LUA_COLLECT_AFTER_BYTES as COLLECT_AFTER_BYTES, LUA_STEP_AFTER_BYTES as STEP_AFTER_BYTES,
    MAX_COMPILED_SCRIPTS, MAX_SCRIPT_REPLY_ELEMENTS as MAX_REPLY_ELEMENTS,
};

/// The keyspace as a script may touch it: EVAL runs in apply with the keyspace to itself;
/// EVAL_RO runs as a read, beside other readers.
pub(crate) enum Access<'a> {
    Write(&'a mut Keyspace),
    Read(&'a Keyspace),
}

/// One run of a compiled script.
pub(crate) struct Invocation<'a> {
    pub sha: &'a str,
    pub keys: &'a [Bytes],
    pub args: &'a [Bytes],
    /// The entry's time (a write) or the read's time.
    pub now_ms: u64,
    /// EVAL_RO, or a script whose shebang says `no-writes`: write commands are refused.
    pub read_only: bool,
    /// Where `math.random` starts (`Keyspace::script_seed`).
    pub seed: u64,
}

#[derive(Default)]
struct Budget {
    used: AtomicU64,
    killed: AtomicBool,
}

impl Budget {
    fn reset(&self) {
        self.used.store(0, Ordering::Relaxed);
        self.killed.store(false, Ordering::Relaxed);
    }

    /// Counts `instructions`; past the budget the script is killed, and stays killed.
    fn charge(&self, instructions: u64) -> mlua::Result<()> {
        let used = self.used.fetch_add(instructions, Ordering::Relaxed) + instructions;
        if used > MAX_SCRIPT_INSTRUCTIONS || self.killed.load(Ordering::Relaxed) {
            self.killed.store(true, Ordering::Relaxed);
            return Err(mlua::Error::runtime(
                "Script killed: instruction budget exhausted",
            ));
        }
        Ok(())
    }
}

/// A node's Lua state with its compiled scripts.
pub(crate) struct Engine {
    lua: Lua,
    /// The proxy environment every script runs in.
    env: Table,
    /// `xpcall(f, handler)` from the prelude.
    runner: Function,
    /// The prelude's per-run context table (`ctx.pending`).
    ctx: Table,
    /// The real globals, where each run's KEYS and ARGV go.
    globals: Table,
    compiled: HashMap<String, Function>,
    budget: Arc<Budget>,
    /// The heap's size after the last full collection (or the state's creation).
    collected_at: usize,
    /// The heap's size after the collector's last step or full collection.
    stepped_at: usize,
    /// The run redis.call and friends work on, set by `call`.
    slot: Arc<RunSlot>,
}

/// The engine's place in the keyspace. A mutex, because EVAL_RO runs beside other reads;
/// EVAL has the keyspace to itself and takes the engine out while the script runs.
#[derive(Default)]
pub(crate) struct EngineSlot(Mutex<Option<Engine>>);

impl std::fmt::Debug for EngineSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EngineSlot")
    }
}

impl EngineSlot {
    /// Takes the engine out (a new one if there is none yet).
    pub(crate) fn take(&mut self) -> Engine {
        let slot = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
        slot.take().unwrap_or_else(Engine::new)
    }

    pub(crate) fn put(&mut self, engine: Engine) {
        *self.0.get_mut().unwrap_or_else(|p| p.into_inner()) = Some(engine);
    }

    /// Drops the Lua state: SCRIPT FLUSH, as Redis resets its Lua state.
    pub(crate) fn reset(&mut self) {
        *self.0.get_mut().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Runs `f` with the engine from a shared reference (EVAL_RO).
    pub(crate) fn with<R>(&self, f: impl FnOnce(&mut Engine) -> R) -> R {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        f(slot.get_or_insert_with(Engine::new))
    }
}

pub(crate) fn sha1_hex(data: &[u8]) -> String {
    sha1_smol::Sha1::from(data).digest().to_string()
}

impl Engine {
    /// A new sandboxed state. It cannot fail short of the process running out of memory,
    /// which is a panic anyway.
    pub(crate) fn new() -> Engine {
        Engine::build().expect("a fresh Lua state with the raftlock prelude")
    }

    fn build() -> mlua::Result<Engine> {
        let lua = Lua::new_with(
            StdLib::TABLE | StdLib::STRING | StdLib::MATH,
            LuaOptions::new(),
        )?;
        lua.set_memory_limit(MAX_SCRIPT_MEMORY_BYTES)?;
        let budget = Arc::new(Budget::default());
        let run = Arc::new(RunSlot::default());
        let ctx = lua.create_table()?;
        register_run_functions(&lua, &ctx, &run)?;
        let rust = lua.create_table()?;
        rust.raw_set("ctx", &ctx)?;
        let b = budget.clone();
        rust.raw_set(
            "killed",
            lua.create_function(move |_, ()| Ok(b.killed.load(Ordering::Relaxed)))?,
        )?;
        let b = budget.clone();
        rust.raw_set(
            "charge",
            lua.create_function(move |_, bytes: f64| {
                b.charge((bytes / REP_BYTES_PER_INSTRUCTION) as u64)
            })?,
        )?;
        rust.raw_set(
            "sha1hex",
            lua.create_function(|_, s: mlua::LuaString| Ok(sha1_hex(&s.as_bytes())))?,
        )?;
        rust.raw_set(
            "error_text",
            lua.create_function(|_, s: mlua::LuaString| {
                Ok(convert::error_reply_text(&s.to_string_lossy()))
            })?,
        )?;
        rust.raw_set(
            "command_exists",
            lua.create_function(|_, name: Value| {
                Ok(lua_to_arg(&name).is_some_and(|name| command::lookup(&name).is_some()))
            })?,
        )?;
        rust.raw_set("version", REDIS_COMPAT_VERSION)?;
        rust.raw_set("version_num", version_num(REDIS_COMPAT_VERSION))?;
        rust.raw_set(
            "where",
            lua.create_function(|lua, ()| Ok(error_location(lua)))?,
        )?;
        cjson::register(&lua, &rust)?;
        bitop::register(&lua, &rust)?;
        rust.raw_set("bit_names", lua.create_sequence_from(bitop::NAMES)?)?;
        cmsgpack::register(&lua, &rust)?;
        let (env, runner, redis): (Table, Function, Table) =
            lua.load(PRELUDE).set_name(PRELUDE_SOURCE).call(rust)?;
        register_redis_call(&lua, &redis, &run)?;
        let b = budget.clone();
        lua.set_global_hook(
            HookTriggers::new().every_nth_instruction(HOOK_EVERY_INSTRUCTIONS),
            move |_, _| {
                b.charge(u64::from(HOOK_EVERY_INSTRUCTIONS))?;
                Ok(VmState::Continue)
            },
        )?;
        // For good: `collect` is the only collector.
        lua.gc_stop();
        Ok(Engine {
            collected_at: lua.used_memory(),
            stepped_at: lua.used_memory(),
            globals: lua.globals(),
            lua,
            env,
            runner,
            ctx,
            compiled: HashMap::new(),
            budget,
            slot: run,
        })
    }

    /// Compiles `source` as Redis does (one chunk named `@user_script`), keeping the
    /// function under `sha`. The error is Redis's reply to a script that does not compile.
    pub(crate) fn compile(&mut self, sha: &str, source: &[u8]) -> Result<(), Reply> {
        if self.compiled.contains_key(sha) {
            return Ok(());
        }
        if self.compiled.len() >= MAX_COMPILED_SCRIPTS {
            self.compiled.clear();
            self.collect();
        }
        let compiled = self
            .lua
            .load(source)
            .set_name(SCRIPT_CHUNK_NAME)
            .set_mode(ChunkMode::Text)
            .set_environment(self.env.clone())
            .into_function();
        match compiled {
            Ok(function) => {
                self.compiled.insert(sha.to_string(), function);
                if self.lua.used_memory() > self.collected_at.saturating_add(COLLECT_AFTER_BYTES) {
                    self.collect();
                }
                Ok(())
            }
            Err(error) => {
                if matches!(error, mlua::Error::MemoryError(_)) {
                    self.collect();
                }
                Err(Reply::Error(format!(
                    "ERR Error compiling script (new function): {}",
                    lua_error_text(&error)
                )))
            }
        }
    }

    /// Runs a compiled script. `Ok`: it returned (its reply may be an error it chose to
    /// return); `Err`: it raised an error or was stopped, and its writes must be undone.
    pub(crate) fn run(&mut self, access: Access<'_>, inv: &Invocation<'_>) -> Result<Reply, Reply> {
        let Some(function) = self.compiled.get(inv.sha) else {
            return Err(Reply::error(
                "NOSCRIPT No matching script. Please use EVAL.",
            ));
        };
        self.budget.reset();
        let base = self.lua.used_memory();
        let limit = base.saturating_add(MAX_SCRIPT_MEMORY_BYTES);
        let outcome = self.call(function, access, inv, limit);
        if outcome.is_err() {
            // The runner clears KEYS, ARGV and a pending error table itself, unless it
            // failed before the script ran. No limit while Rust clears up: mlua then
            // skips guarding each call against a memory error. Compiles until the next
            // run get this run's limit.
            let _ = self.lua.set_memory_limit(0);
            let _ = self.ctx.raw_set("pending", Value::Nil);
            let _ = self.globals.raw_set("KEYS", Value::Nil);
            let _ = self.globals.raw_set("ARGV", Value::Nil);
            let _ = self.lua.set_memory_limit(limit);
        }
        let killed = self.budget.killed.load(Ordering::Relaxed);
        let failed = !matches!(outcome, Ok((true, _)));
        let since = base.min(self.collected_at);
        if failed || self.lua.used_memory() > since.saturating_add(COLLECT_AFTER_BYTES) {
            // After a memory error especially: the heap must not stay at its limit.
            self.collect();
        } else if self.lua.used_memory() >= self.stepped_at.saturating_add(STEP_AFTER_BYTES) {
            self.step();
        }
        match outcome {
            Ok((true, reply)) => Ok(reply),
            Ok((false, _)) | Err(_) if killed => Err(Reply::Error(format!(
                "ERR Script killed: it ran past the budget of {MAX_SCRIPT_INSTRUCTIONS} instructions, script: {}",
                inv.sha
            ))),
            Ok((false, error)) => Err(error),
            Err(error) => {
                Err(Reply::Error(format!(
                    "ERR Error running script {}, {}",
                    inv.sha,
                    lua_error_text(&error)
                )))
            }
        }
    }

    /// One incremental step of the collector, taken once scripts have left about
    /// `STEP_AFTER_BYTES` of garbage, so garbage is freed a little at a time rather than
    /// all at once: a full collection of several MB stalls the node's thread for
    /// milliseconds, which every client in flight then waits out. A step after every
    /// script did twice or more the work the garbage needed. The collector stays
    /// stopped after it.
    fn step(&mut self) {
        let _ = self.lua.gc_step();
        // A step rearms Lua 5.1's collector.
        self.lua.gc_stop();
        self.stepped_at = self.lua.used_memory();
    }

    /// A full collection; the collector stays stopped after it.
    fn collect(&mut self) {
        let _ = self.lua.gc_collect();
        // A full collection restarts Lua 5.1's collector.
        self.lua.gc_stop();
        self.collected_at = self.lua.used_memory();
        self.stepped_at = self.collected_at;
    }

    /// Calls the script under the prelude's error handler with this run's KEYS, ARGV and
    /// context, with the heap limited to `limit` bytes. `(true, reply)` on return,
    /// `(false, error reply)` on error.
    fn call(
        &self,
        function: &Function,
        access: Access<'_>,
        inv: &Invocation<'_>,
        limit: usize,
    ) -> mlua::Result<(bool, Reply)> {
        let lua = &self.lua;
        // KEYS and ARGV are built with no limit set, so mlua need not guard each call
        // against a memory error; their bytes still count against `limit`, checked once.
        lua.set_memory_limit(0)?;
        let keys = sequence_of_strings(lua, inv.keys)?;
        let argv = sequence_of_strings(lua, inv.args)?;
        if lua.used_memory() > limit {
            return Err(mlua::Error::MemoryError("not enough memory".to_string()));
        }
        lua.set_memory_limit(limit)?;
        let run = Run {
            access: RefCell::new(access),
            inv,
            resp3: Cell::new(false),
            // Redis seeds with an int: the seed's low 32 bits.
            rng: Cell::new(Rand48::seeded(inv.seed as i32)),
            ctx: &self.ctx,
        };
        let (ok, value): (bool, Value) = self
            .slot
            .scoped(&run, || self.runner.call((function, keys, argv)))?;
        if ok {
            let mut budget = ReplyBudget {
                left: MAX_REPLY_ELEMENTS,
            };
            return Ok((true, lua_to_reply(&value, run.resp3.get(), 0, &mut budget)));
        }
        Ok((false, script_error(&value, inv.sha)))
    }
}

/// A fresh Lua array of `items` (KEYS or ARGV). mlua pushes a `str` straight onto the Lua
/// stack, and other bytes through a string handle each, which costs about as much again:
/// text, the usual case, takes the short road. Lua sees the same bytes either way.
fn sequence_of_strings(lua: &Lua, items: &[Bytes]) -> mlua::Result<Table> {
    if items.iter().all(|item| std::str::from_utf8(item).is_ok()) {
        return lua.create_sequence_from(
            items
                .iter()
                .map(|item| std::str::from_utf8(item).unwrap_or_default()),
        );
    }
    let table = lua.create_table_with_capacity(items.len(), 0)?;
    for (i, item) in items.iter().enumerate() {
        table.raw_set(i + 1, lua.create_string(item)?)?;
    }
    Ok(table)
}

/// `REDIS_VERSION_NUM`: 7.2.4 is 0x070204.
fn version_num(version: &str) -> i64 {
    version
        .split('.')
        .take(3)
        .fold(0, |acc, part| acc * 256 + part.parse::<i64>().unwrap_or(0))
}

#[cfg(test)]
mod tests;
