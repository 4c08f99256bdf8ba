//! What a script calls into the node: `redis.call` and `redis.pcall`, which run a
//! command through the command table with Redis's rules for scripts, and the prelude's
//! `ctx` functions (`setresp`, `rand`, `srand`), each acting on the run under way.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::ptr;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use mlua::{Lua, MultiValue, Table, Value};

use super::convert::{lua_to_arg, reply_to_lua};
use super::errors::error_location;
use super::{Access, Invocation};
use crate::command::{self, Handler};
use crate::reply::Reply;

/// What redis.call, redis.pcall and the `ctx` functions work on during one run.
pub(super) struct Run<'a> {
    pub(super) access: RefCell<Access<'a>>,
    pub(super) inv: &'a Invocation<'a>,
    /// `redis.setresp(3)` was called.
    pub(super) resp3: Cell<bool>,
    /// `math.random`'s state, seeded for every run from the op that runs it.
    pub(super) rng: Cell<Rand48>,
    /// The prelude's `ctx` table, where redis.call leaves the error table it raises.
    pub(super) ctx: &'a Table,
}

/// Where the functions made once in `Engine::build` find the current run: a `Run` whose
/// lifetime is erased, non-null only inside `RunSlot::scoped`.
#[derive(Default)]
pub(super) struct RunSlot(pub(super) AtomicPtr<()>);

/// Clears the `RunSlot` when `scoped` returns or unwinds.
pub(super) struct ClearOnDrop<'s>(&'s RunSlot);

impl Drop for ClearOnDrop<'_> {
    fn drop(&mut self) {
        self.0 .0.store(ptr::null_mut(), Ordering::Release);
    }
}

impl RunSlot {
    /// Runs `f` with `run` published in the slot; the slot is null again once this
    /// returns, by value or by panic.
    pub(super) fn scoped<R>(&self, run: &Run<'_>, f: impl FnOnce() -> R) -> R {
        let previous = self
            .0
            .swap(run as *const Run<'_> as *mut (), Ordering::Release);
        debug_assert!(previous.is_null(), "script runs do not nest");
        let _clear = ClearOnDrop(self);
        f()
    }

    /// Calls `f` with the current run; a Lua error when no script is running.
    pub(super) fn with<R>(&self, f: impl FnOnce(&Run<'_>) -> mlua::Result<R>) -> mlua::Result<R> {
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

/// `ctx.setresp`, `ctx.rand` and `ctx.srand`, made once per Lua state; each acts on the
/// current run.
pub(super) fn register_run_functions(
    lua: &Lua,
    ctx: &Table,
    slot: &Arc<RunSlot>,
) -> mlua::Result<()> {
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
pub(super) fn register_redis_call(
    lua: &Lua,
    redis: &Table,
    slot: &Arc<RunSlot>,
) -> mlua::Result<()> {
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
pub(super) fn run_command(
    lua: &Lua,
    run: &Run<'_>,
    argv: &MultiValue,
) -> mlua::Result<(Reply, Value)> {
    let reply = match script_argv(argv) {
        Ok(argv) => call_command(&mut run.access.borrow_mut(), run.inv, &argv),
        Err(reply) => reply,
    };
    let value = reply_to_lua(lua, &reply, run.resp3.get())?;
    Ok((reply, value))
}

/// redis.call's arguments as a command line, or Redis's error for a bad one.
pub(super) fn script_argv(argv: &MultiValue) -> Result<Vec<Bytes>, Reply> {
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
pub(super) fn call_command(access: &mut Access<'_>, inv: &Invocation<'_>, argv: &[Bytes]) -> Reply {
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
        _ if !command::check::runs_in_scripts(spec) => {
            return Reply::error("ERR This Redis command is not allowed from script")
        }
        (Handler::Read(read), Access::Read(ks)) => read(ks, now_ms, argv),
        (Handler::Read(read), Access::Write(ks)) => read(ks, now_ms, argv),
        (Handler::Write(_), Access::Read(_)) => return read_only_refusal(),
        (Handler::Write(_), Access::Write(_)) if inv.read_only => return read_only_refusal(),
        (Handler::Write(write), Access::Write(ks)) => {
            let argv = without_wait(spec.name, argv);
            ks.noticing(spec, &argv, |ks| write(ks, now_ms, &argv))
        }
    };
    match reply {
        Reply::Blocked => Reply::error("ERR blocking commands cannot block inside a script"),
        reply => reply,
    }
}

pub(super) fn read_only_refusal() -> Reply {
    Reply::error("ERR Write commands are not allowed from read-only scripts.")
}

/// LOCK/RLOCK without their `WAIT timeout` option: a try-lock. Other commands' arguments
/// come back as they are, uncopied.
pub(super) fn without_wait<'a>(name: &str, argv: &'a [Bytes]) -> Cow<'a, [Bytes]> {
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
pub(super) fn server_command(name: &str, wall_ms: i64, argv: &[Bytes]) -> Reply {
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
pub(super) struct Rand48(u64);

impl Rand48 {
    pub(super) fn seeded(seed: i32) -> Rand48 {
        Rand48((u64::from(seed as u32) << 16) | 0x330E)
    }

    /// Redis's `math.random()` value: `(lrand48() % INT32_MAX) / INT32_MAX`.
    pub(super) fn next_unit(&mut self) -> f64 {
        const MASK: u64 = (1 << 48) - 1;
        self.0 = self.0.wrapping_mul(0x5_DEEC_E66D).wrapping_add(0xB) & MASK;
        let value = (self.0 >> 17) as i64;
        let max = i64::from(i32::MAX);
        (value % max) as f64 / max as f64
    }
}
