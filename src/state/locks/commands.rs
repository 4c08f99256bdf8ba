//! raftlock's lock commands: LOCK, RLOCK, UNLOCK, RENEW, LOCKINFO, CHECKFENCE, LOCKCANCEL.
//!
//! LOCK, RLOCK, RENEW and LOCKCANCEL also run inside a client's session
//! (`state::session`): the `_in` forms take the session the node named for the client.

use bytes::Bytes;

use super::{Acquire, Lock, LockMode, NotOwner, Request};
use crate::args::{parse_i64, Args};
use crate::config::state_limits::{
    MAX_LOCK_TTL_MS, MAX_LOCK_WAIT_MS, MAX_OWNER_BYTES, MAX_RESOURCE_BYTES,
    MAX_WAITERS_PER_RESOURCE,
};
use crate::reply::Reply;
use crate::state::session::{SessionId, SessionRef};
use crate::state::{invoked_as, run, wrong_arity, Keyspace, Value};

fn not_owner() -> Reply {
    Reply::error("NOTOWNER the lock is not held by this owner")
}

fn check_names(resource: &[u8], owner: &[u8]) -> Result<(), Reply> {
    if resource.len() > MAX_RESOURCE_BYTES {
        return Err(Reply::Error(format!(
            "ERR resource name longer than {MAX_RESOURCE_BYTES} bytes"
        )));
    }
    if owner.is_empty() || owner.len() > MAX_OWNER_BYTES {
        return Err(Reply::Error(format!(
            "ERR owner must be 1 to {MAX_OWNER_BYTES} bytes"
        )));
    }
    Ok(())
}

/// A positive number of milliseconds up to `max`.
fn parse_ms(arg: &[u8], what: &str, allow_zero: bool, max: u64) -> Result<u64, Reply> {
    let ms = parse_i64(arg).ok_or_else(Reply::not_integer)?;
    if ms < 0 || (ms == 0 && !allow_zero) || ms as u64 > max {
        return Err(Reply::Error(format!(
            "ERR invalid {what}: must be {} to {max} ms",
            if allow_zero { 0 } else { 1 }
        )));
    }
    Ok(ms as u64)
}

/// The parsed form of `LOCK resource owner ttl_ms [WAIT timeout_ms] [MODE EX|PR]` and
/// `RLOCK resource owner ttl_ms [WAIT timeout_ms]`. The connection parses it too, to know
/// whether a request may block and on which resource and owner.
pub struct LockArgs<'a> {
    pub resource: &'a Bytes,
    pub owner: &'a Bytes,
    pub ttl_ms: u64,
    /// `None`: try-lock; `Some(0)`: wait without limit; `Some(t)`: wait t ms.
    pub wait_ms: Option<u64>,
    pub mode: LockMode,
}

impl<'a> LockArgs<'a> {
    pub fn parse(argv: &'a [Bytes]) -> Result<LockArgs<'a>, Reply> {
        let mut args = Args::new(argv);
        let resource = args.next_bytes().map_err(|_| wrong_arity(argv))?;
        let owner = args.next_bytes().map_err(|_| wrong_arity(argv))?;
        let ttl = args.next_bytes().map_err(|_| wrong_arity(argv))?;
        check_names(resource, owner)?;
        let ttl_ms = parse_ms(ttl, "ttl", false, MAX_LOCK_TTL_MS)?;
        let shared_command = invoked_as(argv, "rlock");
        let mut parsed = LockArgs {
            resource,
            owner,
            ttl_ms,
            wait_ms: None,
            mode: if shared_command {
                LockMode::Shared
            } else {
                LockMode::Exclusive
            },
        };
        while !args.is_empty() {
            if args.eat("WAIT") && parsed.wait_ms.is_none() {
                parsed.wait_ms = Some(parse_ms(
                    args.next_bytes()?,
                    "wait timeout",
                    true,
                    MAX_LOCK_WAIT_MS,
                )?);
            } else if !shared_command && args.eat("MODE") {
                let mode = args.next_bytes()?;
                parsed.mode = if mode.eq_ignore_ascii_case(b"EX") {
                    LockMode::Exclusive
                } else if mode.eq_ignore_ascii_case(b"PR") {
                    LockMode::Shared
                } else {
                    return Err(Reply::error("ERR unknown lock mode: use EX or PR"));
                };
            } else {
                return Err(Reply::syntax_error());
            }
        }
        Ok(parsed)
    }
}

/// LOCK / RLOCK: the grant's token; nil for a try-lock that could not be granted;
/// `Blocked` when the request joined the queue (the node answers it on grant or timeout).
pub fn lock(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    lock_in(ks, now_ms, argv, None)
}

/// LOCK / RLOCK in `session`: the owner's hold and wait move to it.
pub fn lock_in(
    ks: &mut Keyspace,
    now_ms: u64,
    argv: &[Bytes],
    session: Option<&SessionRef>,
) -> Reply {
    run(|| {
        let args = LockArgs::parse(argv)?;
        let wait = args
            .wait_ms
            .map(|ms| (ms > 0).then(|| now_ms.saturating_add(ms)));
        let request = Request {
            owner: args.owner,
            mode: args.mode,
            ttl_ms: args.ttl_ms,
            wait,
            session,
        };
        let outcome = ks
            .with_lock(args.resource, now_ms, true, |lock, fx| {
                lock.acquire(request, MAX_WAITERS_PER_RESOURCE, now_ms, fx)
            })?
            .expect("created when missing");
        Ok(match outcome {
            Acquire::Granted { token } => Reply::Int(token as i64),
            Acquire::Busy => Reply::Nil,
            Acquire::Queued => Reply::Blocked,
            Acquire::QueueFull => Reply::Error(format!(
                "ERR too many waiters on this resource (max {MAX_WAITERS_PER_RESOURCE})"
            )),
        })
    })
}

/// UNLOCK resource owner: the holds the owner has left (0 = released), or NOTOWNER.
pub fn unlock(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, resource, owner] = argv else {
            return Err(wrong_arity(argv));
        };
        match ks.with_lock(resource, now_ms, false, |lock, fx| {
            lock.release(owner, now_ms, fx)
        })? {
            Some(Ok(remaining)) => Ok(Reply::Int(remaining as i64)),
            Some(Err(NotOwner)) | None => Err(not_owner()),
        }
    })
}

/// RENEW resource owner ttl_ms: 1 when the lease was extended, 0 when nobody holds the
/// lock any more (it expired), NOTOWNER when someone else holds it.
pub fn renew(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    renew_in(ks, now_ms, argv, None)
}

/// RENEW in `session`: the hold moves to it.
pub fn renew_in(
    ks: &mut Keyspace,
    now_ms: u64,
    argv: &[Bytes],
    session: Option<&SessionRef>,
) -> Reply {
    run(|| {
        let [_, resource, owner, ttl] = argv else {
            return Err(wrong_arity(argv));
        };
        check_names(resource, owner)?;
        let ttl_ms = parse_ms(ttl, "ttl", false, MAX_LOCK_TTL_MS)?;
        match ks.with_lock(resource, now_ms, false, |lock, fx| {
            lock.renew(owner, ttl_ms, session, now_ms, fx)
        })? {
            Some(Ok(true)) => Ok(Reply::Int(1)),
            Some(Ok(false)) | None => Ok(Reply::Int(0)),
            Some(Err(NotOwner)) => Err(not_owner()),
        }
    })
}

/// LOCKCANCEL resource owner: what a node proposes when a client waiting on the lock goes
/// away. The owner leaves the queue; a grant that reached it while it was leaving, and that
/// the owner never used, is given back. 1 if anything changed.
pub fn lockcancel(ks: &mut Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    lockcancel_in(ks, now_ms, argv, None)
}

/// LOCKCANCEL of the connection `session`: only a wait or grant still in that session is
/// cancelled, as the owner may have asked again from a new connection meanwhile.
pub fn lockcancel_in(
    ks: &mut Keyspace,
    now_ms: u64,
    argv: &[Bytes],
    session: Option<&SessionId>,
) -> Reply {
    run(|| {
        let [_, resource, owner] = argv else {
            return Err(wrong_arity(argv));
        };
        let changed = ks
            .with_lock(resource, now_ms, false, |lock, fx| {
                lock.cancel_wait(owner, session, now_ms, fx)
            })?
            .unwrap_or(false);
        Ok(Reply::Int(changed as i64))
    })
}

fn live_lock<'a>(ks: &'a Keyspace, key: &[u8], now_ms: u64) -> Result<Option<&'a Lock>, Reply> {
    match ks.get(key, now_ms) {
        None => Ok(None),
        Some(entry) => match &entry.value {
            Value::Lock(lock) => Ok(Some(lock)),
            _ => Err(Reply::wrong_type()),
        },
    }
}

fn ms_left(deadline_ms: u64, now_ms: u64) -> i64 {
    deadline_ms.saturating_sub(now_ms) as i64
}

/// LOCKINFO resource: a map of mode, holders, token, ttl and waiters, as of `now_ms`
/// (leases and waits that ended are left out even before the entry that ends them); nil
/// when the resource is neither held nor waited for. Each holder and waiter ends with its
/// session (nil without one) and whether that session is attached (1) or not (0): the
/// fields come after the ones LOCKINFO had before sessions, so readers of the flat RESP2
/// array by position still find those where they were.
pub fn lockinfo(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, resource] = argv else {
            return Err(wrong_arity(argv));
        };
        let Some(lock) = live_lock(ks, resource, now_ms)? else {
            return Ok(Reply::Nil);
        };
        let hold = ks.expiry_hold();
        let holders: Vec<_> = lock
            .holders
            .iter()
            .filter(|h| hold.live(h.lease_deadline_ms, now_ms))
            .collect();
        let waiters: Vec<_> = lock
            .queue
            .iter()
            .filter(|w| {
                [w.wait_deadline_ms, w.reclaim_deadline_ms]
                    .into_iter()
                    .flatten()
                    .all(|t| hold.live(t, now_ms))
            })
            .collect();
        if holders.is_empty() && waiters.is_empty() {
            return Ok(Reply::Nil);
        }
        let mode = if holders.iter().any(|h| h.mode == LockMode::Exclusive) {
            "EX"
        } else if holders.is_empty() {
            "none"
        } else {
            "PR"
        };
        let token = holders.iter().map(|h| h.token as i64).max();
        let ttl = holders
            .iter()
            .map(|h| ms_left(h.lease_deadline_ms, now_ms))
            .max();
        let field = |name: &str| Reply::bulk(name.to_string());
        let session = |session: Option<&SessionRef>| {
            [
                (
                    field("session"),
                    session.map_or(Reply::Nil, |s| Reply::bulk(s.id.to_string())),
                ),
                (
                    field("attached"),
                    Reply::Int(ks.open_sessions().attached(session) as i64),
                ),
            ]
        };
        Ok(Reply::Map(vec![
            (field("mode"), Reply::bulk(mode)),
            (
                field("holders"),
                Reply::Array(
                    holders
                        .iter()
                        .map(|h| {
                            let mut fields = vec![
                                (
                                    field("owner"),
                                    Reply::Bulk(Bytes::copy_from_slice(&h.owner)),
                                ),
                                (field("mode"), Reply::bulk(h.mode.name())),
                                (field("count"), Reply::Int(h.count as i64)),
                                (field("token"), Reply::Int(h.token as i64)),
                                (
                                    field("ttl"),
                                    Reply::Int(ms_left(h.lease_deadline_ms, now_ms)),
                                ),
                            ];
                            fields.extend(session(h.session.as_ref()));
                            Reply::Map(fields)
                        })
                        .collect(),
                ),
            ),
            (field("token"), token.map_or(Reply::Nil, Reply::Int)),
            (field("ttl"), Reply::Int(ttl.unwrap_or(-2))),
            (
                field("waiters"),
                Reply::Array(
                    waiters
                        .iter()
                        .map(|w| {
                            let mut fields = vec![
                                (field("owner"), Reply::Bulk(w.owner.clone())),
                                (field("mode"), Reply::bulk(w.mode.name())),
                                (
                                    field("wait"),
                                    Reply::Int(
                                        w.wait_deadline_ms.map_or(-1, |t| ms_left(t, now_ms)),
                                    ),
                                ),
                            ];
                            fields.extend(session(w.session.as_ref()));
                            Reply::Map(fields)
                        })
                        .collect(),
                ),
            ),
        ]))
    })
}

/// CHECKFENCE resource token: 1 if `token` belongs to a current hold of the lock, or is
/// the token of the current value of a plain key (a `SET NX PX` lock); 0 otherwise.
pub fn checkfence(ks: &Keyspace, now_ms: u64, argv: &[Bytes]) -> Reply {
    run(|| {
        let [_, resource, token] = argv else {
            return Err(wrong_arity(argv));
        };
        let token = parse_i64(token).ok_or_else(Reply::not_integer)?;
        let Ok(token) = u64::try_from(token) else {
            return Ok(Reply::Int(0));
        };
        let current = match ks.get(resource, now_ms) {
            None => false,
            Some(entry) => match &entry.value {
                Value::Lock(lock) => lock.is_current_token(token, now_ms, &ks.expiry_hold()),
                _ => entry.token == token,
            },
        };
        Ok(Reply::Int(current as i64))
    })
}

#[cfg(test)]
#[path = "commands_tests.rs"]
mod tests;
