//! The pre-check chain: what is refused before a command runs, decided from the command
//! table and from what the caller is, never from command names. Connections run the
//! whole chain (`admit`); scripts ask `runs_in_scripts`; MULTI's queue is one link of
//! it. Each link is a small function, tested alone, in Redis's order (as etcd chains its
//! appliers): arity, authentication, ACL, subscribe mode, MULTI. A cluster-slot check
//! will be a link too.

use bytes::Bytes;

use super::{CommandSpec, Marks};
use crate::acl::{self, Denied, User};
use crate::reply::Reply;

/// What the chain knows about the caller of a command.
#[derive(Clone, Copy, Debug, Default)]
pub struct Caller<'a> {
    /// The connection's ACL user when it is restricted; `None`: it may run anything.
    pub user: Option<&'a User>,
    pub authenticated: bool,
    /// A RESP2 connection with a subscription: only (un)subscribing, PING, QUIT and
    /// RESET are allowed.
    pub subscribe_mode: bool,
    /// Commands are being queued since MULTI.
    pub in_multi: bool,
}

/// The chain's decision.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Run the command now.
    Run,
    /// Queue it for EXEC and answer QUEUED.
    Queue,
    /// Answer `reply`; `dooms_multi`: an EXEC after it answers EXECABORT, as in Redis.
    Refuse { reply: Reply, dooms_multi: bool },
    /// The ACL refuses it (answer `Denied::reply`, log it); it dooms MULTI.
    Denied(Denied),
}

/// A link's refusal.
type Link = Result<(), Verdict>;

fn refuse(reply: Reply) -> Verdict {
    Verdict::Refuse {
        reply,
        dooms_multi: false,
    }
}

fn refuse_dooming(reply: Reply) -> Verdict {
    Verdict::Refuse {
        reply,
        dooms_multi: true,
    }
}

/// Runs the chain for a command a client sent (already resolved from the table).
pub fn admit(spec: &CommandSpec, argv: &[Bytes], caller: &Caller) -> Verdict {
    let chain = || -> Link {
        arity(spec, argv)?;
        authentication(spec, caller)?;
        permissions(spec, argv, caller)?;
        subscribe_mode(spec, caller)?;
        multi(spec, caller)
    };
    match chain() {
        Ok(()) => Verdict::Run,
        Err(verdict) => verdict,
    }
}

/// The right number of arguments for the table's arity.
fn arity(spec: &CommandSpec, argv: &[Bytes]) -> Link {
    if spec.arity_ok(argv.len()) {
        Ok(())
    } else {
        Err(refuse_dooming(Reply::wrong_arity(spec.name)))
    }
}

/// With a password set, only Redis's `no_auth` commands run before AUTH.
fn authentication(spec: &CommandSpec, caller: &Caller) -> Link {
    if caller.authenticated || spec.has_flag("no_auth") {
        Ok(())
    } else {
        Err(refuse(Reply::error("NOAUTH Authentication required.")))
    }
}

/// A restricted user runs only what its ACL rules allow. Redis's `no_auth` commands
/// (AUTH, HELLO, QUIT, RESET) are always allowed, and so are the internal TXN, whose
/// commands were checked when queued and are checked again as it is applied, and
/// REVISIONS (WATCH's read, WATCH being checked).
fn permissions(spec: &CommandSpec, argv: &[Bytes], caller: &Caller) -> Link {
    let Some(user) = caller.user else {
        return Ok(());
    };
    if spec.has_flag("no_auth") || spec.marks.contains(Marks::CHECKED_AT_APPLY) {
        return Ok(());
    }
    acl::check(user, spec, argv).map_err(Verdict::Denied)
}

/// RESP2's subscribe mode allows only the commands marked for it.
fn subscribe_mode(spec: &CommandSpec, caller: &Caller) -> Link {
    if !caller.subscribe_mode || spec.marks.contains(Marks::SUBSCRIBE_MODE) {
        return Ok(());
    }
    Err(refuse(Reply::Error(format!(
        "ERR Can't execute '{}': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET are allowed in this context",
        spec.name
    ))))
}

/// After MULTI, commands are queued, except those that steer the transaction; some may
/// not be queued at all.
fn multi(spec: &CommandSpec, caller: &Caller) -> Link {
    if !caller.in_multi || spec.marks.contains(Marks::NOT_QUEUED) {
        return Ok(());
    }
    if spec.marks.contains(Marks::NO_MULTI) {
        return Err(refuse_dooming(Reply::error(
            "ERR Command not allowed inside a transaction",
        )));
    }
    Err(Verdict::Queue)
}

/// Whether a script may call the command (Redis's `noscript` flag).
pub fn runs_in_scripts(spec: &CommandSpec) -> bool {
    !spec.has_flag("noscript")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn spec(name: &str) -> &'static CommandSpec {
        lookup(name.as_bytes()).expect("in the table")
    }

    const CLIENT: Caller = Caller {
        user: None,
        authenticated: true,
        subscribe_mode: false,
        in_multi: false,
    };

    fn refusal(verdict: Verdict) -> (String, bool) {
        match verdict {
            Verdict::Refuse {
                reply: Reply::Error(text),
                dooms_multi,
            } => (text, dooms_multi),
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn wrong_arity_is_refused_and_dooms_multi() {
        assert_eq!(arity(spec("get"), &argv("get k")), Ok(()));
        let (text, dooms) = refusal(arity(spec("get"), &argv("get")).unwrap_err());
        assert_eq!(text, "ERR wrong number of arguments for 'get' command");
        assert!(dooms);
    }

    #[test]
    fn before_auth_only_no_auth_commands_run() {
        let anonymous = Caller {
            authenticated: false,
            ..CLIENT
        };
        for name in ["auth", "hello", "quit", "reset"] {
            assert_eq!(authentication(spec(name), &anonymous), Ok(()), "{name}");
        }
        for name in ["get", "ping", "lock", "multi", "command"] {
            let (text, dooms) = refusal(authentication(spec(name), &anonymous).unwrap_err());
            assert_eq!(text, "NOAUTH Authentication required.", "{name}");
            assert!(!dooms);
        }
        assert_eq!(authentication(spec("get"), &CLIENT), Ok(()));
    }

    #[test]
    fn subscribe_mode_allows_subscriptions_ping_quit_and_reset() {
        let subscribed = Caller {
            subscribe_mode: true,
            ..CLIENT
        };
        for name in [
            "subscribe",
            "unsubscribe",
            "psubscribe",
            "punsubscribe",
            "ssubscribe",
            "sunsubscribe",
            "ping",
            "quit",
            "reset",
        ] {
            assert_eq!(subscribe_mode(spec(name), &subscribed), Ok(()), "{name}");
        }
        let (text, _) = refusal(subscribe_mode(spec("get"), &subscribed).unwrap_err());
        assert!(text.starts_with("ERR Can't execute 'get'"), "{text}");
        assert_eq!(subscribe_mode(spec("get"), &CLIENT), Ok(()));
    }

    #[test]
    fn multi_queues_all_but_the_commands_that_steer_it() {
        let queuing = Caller {
            in_multi: true,
            ..CLIENT
        };
        for name in ["get", "set", "lock", "ping", "publish", "eval", "info"] {
            assert_eq!(multi(spec(name), &queuing), Err(Verdict::Queue), "{name}");
        }
        for name in ["exec", "discard", "multi", "watch", "quit", "reset"] {
            assert_eq!(multi(spec(name), &queuing), Ok(()), "{name}");
        }
        let (text, dooms) = refusal(multi(spec("subscribe"), &queuing).unwrap_err());
        assert_eq!(text, "ERR Command not allowed inside a transaction");
        assert!(dooms);
        assert_eq!(multi(spec("get"), &CLIENT), Ok(()));
    }

    #[test]
    fn admit_runs_the_links_in_redis_order() {
        assert_eq!(admit(spec("get"), &argv("get k"), &CLIENT), Verdict::Run);
        // Arity before authentication: a malformed command dooms MULTI even then.
        let anonymous_queuing = Caller {
            user: None,
            authenticated: false,
            subscribe_mode: false,
            in_multi: true,
        };
        let (text, dooms) = refusal(admit(spec("get"), &argv("get"), &anonymous_queuing));
        assert!(text.starts_with("ERR wrong number"), "{text}");
        assert!(dooms);
        // Authentication before queueing.
        let (text, _) = refusal(admit(spec("get"), &argv("get k"), &anonymous_queuing));
        assert!(text.starts_with("NOAUTH"), "{text}");
        let queuing = Caller {
            in_multi: true,
            ..CLIENT
        };
        assert_eq!(admit(spec("get"), &argv("get k"), &queuing), Verdict::Queue);
        assert_eq!(admit(spec("exec"), &argv("exec"), &queuing), Verdict::Run);
    }

    #[test]
    fn scripts_may_not_call_noscript_commands() {
        assert!(runs_in_scripts(spec("get")));
        assert!(runs_in_scripts(spec("lock")));
        for name in ["blpop", "multi", "eval", "subscribe", "watch"] {
            assert!(!runs_in_scripts(spec(name)), "{name}");
        }
    }
}

#[cfg(test)]
mod acl_tests {
    use super::*;
    use crate::command::lookup;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    #[test]
    fn a_restricted_user_is_refused_after_authentication_and_before_queueing() {
        let mut alice = User::new("alice");
        alice
            .apply_all(["on", "~lock:*", "+lock", "+multi"])
            .unwrap();
        let caller = Caller {
            user: Some(&alice),
            authenticated: true,
            subscribe_mode: false,
            in_multi: true,
        };
        let get = lookup(b"get").unwrap();
        assert_eq!(
            admit(get, &argv("get k"), &caller),
            Verdict::Denied(Denied::Command("get".into()))
        );
        let lock = lookup(b"lock").unwrap();
        assert_eq!(
            admit(lock, &argv("lock other o 10"), &caller),
            Verdict::Denied(Denied::Key("other".into()))
        );
        assert_eq!(
            admit(lock, &argv("lock lock:1 o 10"), &caller),
            Verdict::Queue
        );
        // AUTH is never refused by the ACL; TXN is checked when applied.
        let auth = lookup(b"auth").unwrap();
        assert_eq!(permissions(auth, &argv("auth a b"), &caller), Ok(()));
        let txn = lookup(b"txn").unwrap();
        assert_eq!(permissions(txn, &argv("txn 0 1 2 get k"), &caller), Ok(()));
    }
}
