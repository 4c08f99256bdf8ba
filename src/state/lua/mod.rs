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

pub(crate) mod cjson;
pub(crate) mod convert;
pub(crate) mod native;
#[cfg(test)]
mod script_tests;

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ptr;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use mlua::{
    chunk::ChunkMode, Function, HookTriggers, Lua, LuaOptions, MultiValue, StdLib, Table, Value,
    VmState,
};

use super::Keyspace;
use crate::command::{self, Handler, REDIS_COMPAT_VERSION};
use crate::config::state_limits::{MAX_SCRIPT_INSTRUCTIONS, MAX_SCRIPT_MEMORY_BYTES};
use crate::reply::Reply;
use convert::{lua_to_arg, lua_to_reply, reply_to_lua, ReplyBudget};

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

/// What redis.call, redis.pcall and the `ctx` functions work on during one run.
struct Run<'a> {
    access: RefCell<Access<'a>>,
    inv: &'a Invocation<'a>,
    /// `redis.setresp(3)` was called.
    resp3: Cell<bool>,
    /// `math.random`'s state, seeded for every run from the op that runs it.
    rng: Cell<Rand48>,
    /// The prelude's `ctx` table, where redis.call leaves the error table it raises.
    ctx: &'a Table,
}

/// Where the functions made once in `Engine::build` find the current run: a `Run` whose
/// lifetime is erased, non-null only inside `RunSlot::scoped`.
#[derive(Default)]
struct RunSlot(AtomicPtr<()>);

/// Clears the `RunSlot` when `scoped` returns or unwinds.
struct ClearOnDrop<'s>(&'s RunSlot);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0 .0.store(ptr::null_mut(), Ordering::Release);
    }
}

impl RunSlot {
    /// Runs `f` with `run` published in the slot; the slot is null again once this
    /// returns, by value or by panic.
    fn scoped<R>(&self, run: &Run<'_>, f: impl FnOnce() -> R) -> R {
        let previous = self
            .0
            .swap(run as *const Run<'_> as *mut (), Ordering::Release);
        debug_assert!(previous.is_null(), "script runs do not nest");
        let _clear = ClearOnDrop(self);
        f()
    }

    /// Calls `f` with the current run; a Lua error when no script is running.
    fn with<R>(&self, f: impl FnOnce(&Run<'_>) -> mlua::Result<R>) -> mlua::Result<R> {
        let run = self.0.load(Ordering::Acquire) as *const Run<'_>;
        if run.is_null() {
            return Err(mlua::Error::runtime("no script is running"));
        }
        // SAFETY: the slot is non-null only inside `scoped`, which borrows the `Run` for
        // its whole span and nulls the slot before returning or unwinding, so the `Run`
        // and everything it borrows are alive here. The functions that call this are
        // only called by Lua code that `scoped`'s caller (`Engine::call`) runs, on its
        // thread, while it holds the engine exclusively. `f` is generic over the `Run`'s
        // lifetime, so nothing borrowed from it escapes.
        f(unsafe { &*run })
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

/// `ctx.setresp`, `ctx.rand` and `ctx.srand`, made once per Lua state; each acts on the
/// current run.
fn register_run_functions(lua: &Lua, ctx: &Table, slot: &Arc<RunSlot>) -> mlua::Result<()> {
    let s = slot.clone();
    ctx.raw_set(
        "setresp",
        lua.create_function(move |_, resp: i64| {
            s.with(|run| {
                run.resp3.set(resp == 3);
                Ok(())
            })
        })?,
    )?;
    let s = slot.clone();
    ctx.raw_set(
        "rand",
        lua.create_function(move |_, ()| {
            s.with(|run| {
                let mut state = run.rng.get();
                let r = state.next_unit();
                run.rng.set(state);
                Ok(r)
            })
        })?,
    )?;
    let s = slot.clone();
    ctx.raw_set(
        "srand",
        lua.create_function(move |_, seed: f64| {
            s.with(|run| {
                // luaL_checkint: a C int.
                run.rng.set(Rand48::seeded(seed as i64 as i32));
                Ok(())
            })
        })?,
    )
}

/// redis.call and redis.pcall, made once per Lua state and put in the real `redis` table;
/// each runs its command against the current run's keyspace.
fn register_redis_call(lua: &Lua, redis: &Table, slot: &Arc<RunSlot>) -> mlua::Result<()> {
    let s = slot.clone();
    redis.raw_set(
        "call",
        lua.create_function(move |lua, argv: MultiValue| {
            s.with(|run| {
                let (reply, value) = run_command(lua, run, &argv)?;
                let Reply::Error(text) = reply else {
                    return Ok(value);
                };
                // Raise Redis's error table, located at the calling line.
                if let Value::Table(error) = &value {
                    if let (Some(source), Some(line)) = error_location(lua) {
                        error.raw_set("source", source)?;
                        error.raw_set("line", line)?;
                    }
                }
                run.ctx.raw_set("pending", value)?;
                Err(mlua::Error::runtime(text))
            })
        })?,
    )?;
    let s = slot.clone();
    redis.raw_set(
        "pcall",
        lua.create_function(move |lua, argv: MultiValue| {
            s.with(|run| Ok(run_command(lua, run, &argv)?.1))
        })?,
    )
}

/// One redis.call or redis.pcall: the command's reply, and the reply as the script sees it.
fn run_command(lua: &Lua, run: &Run<'_>, argv: &MultiValue) -> mlua::Result<(Reply, Value)> {
    let reply = match script_argv(argv) {
        Ok(argv) => call_command(&mut run.access.borrow_mut(), run.inv, &argv),
        Err(reply) => reply,
    };
    let value = reply_to_lua(lua, &reply, run.resp3.get())?;
    Ok((reply, value))
}

/// Redis's reply for an error that ended a script: the error table's message, with
/// `script: <sha>, on <source>:<line>.` when the handler located it.
fn script_error(value: &Value, sha: &str) -> Reply {
    match value {
        Value::Table(error) => {
            let message: Option<mlua::LuaString> = error.raw_get("err").ok();
            let message =
                message.map_or_else(|| "ERR unknown error".to_string(), |m| m.to_string_lossy());
            let source: Option<mlua::LuaString> = error.raw_get("source").ok();
            let line: Option<i64> = error.raw_get("line").ok();
            match (source, line) {
                (Some(source), Some(line)) => Reply::Error(format!(
                    "{message} script: {sha}, on {}:{line}.",
                    source.to_string_lossy()
                )),
                _ => Reply::Error(message),
            }
        }
        Value::String(text) => Reply::Error(format!(
            "ERR Error running script {sha}, {}",
            text.to_string_lossy()
        )),
        _ => Reply::Error(format!("ERR Error running script {sha}, execution failure")),
    }
}

/// The source and line of the innermost frame that is script code (neither C nor the
/// prelude), for the error handler.
fn error_location(lua: &Lua) -> (Option<String>, Option<i64>) {
    for level in 1.. {
        let frame = lua.inspect_stack(level, |debug| {
            let source = debug.source();
            let script = source.what != "C"
                && source
                    .source
                    .as_deref()
                    .is_some_and(|s| s != PRELUDE_SOURCE);
            script.then(|| {
                (
                    source.source.as_deref().map(str::to_string),
                    debug.current_line().map(|l| l as i64),
                )
            })
        });
        match frame {
            None => break,
            Some(Some(found)) => return found,
            Some(None) => {}
        }
    }
    (None, None)
}

/// Lua's own message for a compile or runtime error, without mlua's decoration.
fn lua_error_text(error: &mlua::Error) -> String {
    match error {
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(message) => message.clone(),
        mlua::Error::MemoryError(_) => "not enough memory".to_string(),
        mlua::Error::CallbackError { cause, .. } => lua_error_text(cause),
        other => other.to_string(),
    }
}

/// `REDIS_VERSION_NUM`: 7.2.4 is 0x070204.
fn version_num(version: &str) -> i64 {
    version
        .split('.')
        .take(3)
        .fold(0, |acc, part| acc * 256 + part.parse::<i64>().unwrap_or(0))
}

/// redis.call's arguments as a command line, or Redis's error for a bad one.
fn script_argv(argv: &MultiValue) -> Result<Vec<Bytes>, Reply> {
    if argv.is_empty() {
        return Err(Reply::error(
            "ERR Please specify at least one argument for this redis lib call",
        ));
    }
    argv.iter()
        .map(lua_to_arg)
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| {
            Reply::error("ERR Lua redis lib command arguments must be strings or integers")
        })
}

/// Runs one command for redis.call, through the command table, with Redis's rules for
/// scripts. Blocking forms run as their non-blocking ones: a LOCK's WAIT is dropped, so
/// the lock is tried and nil comes back when it is taken; nothing inside a script can
/// join a queue.
fn call_command(access: &mut Access<'_>, inv: &Invocation<'_>, argv: &[Bytes]) -> Reply {
    let spec = match command::resolve(argv) {
        Ok(spec) => spec,
        Err(_) if command::lookup(&argv[0]).is_none() => {
            return Reply::error("ERR Unknown Redis command called from script")
        }
        Err(reply) => return reply,
    };
    if !spec.arity_ok(argv.len()) {
        return Reply::error("ERR Wrong number of args calling Redis command from script");
    }
    let now_ms = inv.now_ms;
    let reply = match (spec.handler, access) {
        // Before the noscript check: PING and ECHO are allowed in Redis scripts.
        (Handler::Server, access) => {
            let wall_ms = match access {
                Access::Read(ks) => ks.wall_ms_from_cluster(now_ms),
                Access::Write(ks) => ks.wall_ms_from_cluster(now_ms),
            };
            server_command(spec.name, wall_ms, argv)
        }
        _ if spec.flags.contains(&"noscript") => {
            return Reply::error("ERR This Redis command is not allowed from script")
        }
        (Handler::Read(read), Access::Read(ks)) => read(ks, now_ms, argv),
        (Handler::Read(read), Access::Write(ks)) => read(ks, now_ms, argv),
        (Handler::Write(_), Access::Read(_)) => return read_only_refusal(),
        (Handler::Write(_), Access::Write(_)) if inv.read_only => return read_only_refusal(),
        (Handler::Write(write), Access::Write(ks)) => {
            let argv = without_wait(spec.name, argv);
            write(ks, now_ms, &argv)
        }
    };
    match reply {
        Reply::Blocked => Reply::error("ERR blocking commands cannot block inside a script"),
        reply => reply,
    }
}

fn read_only_refusal() -> Reply {
    Reply::error("ERR Write commands are not allowed from read-only scripts.")
}

/// LOCK/RLOCK without their `WAIT timeout` option: a try-lock. Other commands' arguments
/// come back as they are, uncopied.
fn without_wait<'a>(name: &str, argv: &'a [Bytes]) -> Cow<'a, [Bytes]> {
    if !matches!(name, "lock" | "rlock") {
        return Cow::Borrowed(argv);
    }
    let mut out = Vec::with_capacity(argv.len());
    let mut rest = argv.iter();
    // resource, owner and ttl come first; options follow in any order.
    out.extend(rest.by_ref().take(4).cloned());
    while let Some(arg) = rest.next() {
        if arg.eq_ignore_ascii_case(b"WAIT") {
            rest.next();
        } else {
            out.push(arg.clone());
        }
    }
    Cow::Owned(out)
}

/// The node-served commands a script may call, answered from the script's own context.
fn server_command(name: &str, wall_ms: i64, argv: &[Bytes]) -> Reply {
    match name {
        "ping" if argv.len() == 1 => Reply::status("PONG"),
        "ping" => Reply::Bulk(argv[1].clone()),
        "echo" => Reply::Bulk(argv[1].clone()),
        // The entry's time in the leader's wall clock, the same on every node.
        "time" => Reply::Array(vec![
            Reply::bulk(wall_ms.div_euclid(1000).to_string()),
            Reply::bulk((wall_ms.rem_euclid(1000) * 1000).to_string()),
        ]),
        _ => Reply::error("ERR This Redis command is not allowed from script"),
    }
}

/// Redis's rand48 (`redisLrand48`), which its `math.random` uses in place of libc's.
#[derive(Clone, Copy)]
struct Rand48(u64);

impl Rand48 {
    fn seeded(seed: i32) -> Rand48 {
        Rand48((u64::from(seed as u32) << 16) | 0x330E)
    }

    /// Redis's `math.random()` value: `(lrand48() % INT32_MAX) / INT32_MAX`.
    fn next_unit(&mut self) -> f64 {
        const MASK: u64 = (1 << 48) - 1;
        self.0 = self.0.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & MASK;
        let value = (self.0 >> 17) as i64;
        let max = i64::from(i32::MAX);
        (value % max) as f64 / max as f64
    }
}

#[cfg(test)]
mod tests;
