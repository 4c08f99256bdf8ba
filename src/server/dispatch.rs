//! Dispatch: one request becomes the reply it is owed. The command table resolves it, the
//! pre-check chain (`command::check`) admits, queues or refuses it, and the command's
//! kind, read from the table, says how it is served (`plan`); nothing here looks at
//! command names.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::blocking_lock::{self, LockRequest};
use super::blocking_pop;
use super::multi::{self, Executed};
use super::pending::Pending;
use super::routing::{data_reply, relay_rx};
use super::{Node, Route, Session, Step};
use crate::command::check::{self, Verdict};
use crate::command::{self, Blocking, CommandSpec, Handler, Kind, ReadFn, ServeFn, TxnStep};
use crate::metrics::METRICS;
use crate::reply::Reply;
use crate::resp::Protocol;
use crate::state::lists::BlockingPop;

/// What the connection does after queueing a request.
pub(super) enum Next {
    /// Parse the next request.
    Parse,
    /// Answer everything queued first: nothing behind a blocking request runs before it
    /// is answered, as in Redis.
    Resolve,
    /// Answer everything queued, then close (QUIT, a protocol error).
    Close,
}

/// How an admitted command is served, from its kind in the table.
#[derive(Debug)]
enum Plan {
    /// The node serves it on the connection's session.
    Serve(ServeFn),
    Watch,
    Exec,
    /// Proposed (or relayed), answered with this node's subscriber count.
    Publish {
        sharded: bool,
    },
    /// Served by the leader: proposed here, or relayed when another node leads.
    Data(Data),
    /// Resolved to a container: `command::resolve` never returns one.
    Unknown,
}

/// How a data command is served on the leader.
#[derive(Debug)]
enum Data {
    /// After a read barrier, with the reads queued next to it.
    Read(ReadFn),
    /// As an op of an entry: a write, or a read pipelined behind a write.
    Propose,
    /// As an op in the connection's lock session (RENEW).
    ProposeInSession,
    /// LOCK, RLOCK: in the session, waiting on the connection if it has WAIT.
    Lock,
    /// A blocking pop that joins the lines of its keys.
    ListPop(BlockingPop, Blocking),
}

/// How `spec` is served. `behind_write`: a request pipelined before this one awaits its
/// entry.
fn plan(spec: &CommandSpec, argv: &[Bytes], behind_write: bool) -> Plan {
    match spec.kind {
        Kind::Connection(serve) | Kind::Node(serve) => Plan::Serve(serve),
        Kind::Transaction(TxnStep::Watch) => Plan::Watch,
        Kind::Transaction(TxnStep::Exec) => Plan::Exec,
        Kind::Publish { sharded } => Plan::Publish { sharded },
        Kind::Container => Plan::Unknown,
        // A read pipelined behind a write goes into the log with it, as an op of the same
        // or a later entry: applied in order, it sees exactly what was written before it,
        // needs no read barrier of its own, and the writes behind it need not wait for
        // one (SET, GET, SET, GET, ... batches as writes alone do).
        Kind::StateRead => match spec.handler {
            Handler::Read(read) if !behind_write => Plan::Data(Data::Read(read)),
            _ => Plan::Data(Data::Propose),
        },
        Kind::StateWrite => Plan::Data(Data::Propose),
        Kind::SessionWrite => Plan::Data(Data::ProposeInSession),
        Kind::BlockingWrite(Blocking::Lock) => Plan::Data(Data::Lock),
        // A pop with arguments the state machine refuses is answered by its error.
        Kind::BlockingWrite(blocking) => match BlockingPop::parse(argv) {
            Some(pop) => Plan::Data(Data::ListPop(pop, blocking)),
            None => Plan::Data(Data::Propose),
        },
    }
}

/// Whether the request must wait until everything pipelined before it is answered: WATCH
/// reads revisions that must include that client's own writes.
pub(super) fn waits_for_pipeline(argv: &[Bytes]) -> bool {
    command::lookup(&argv[0])
        .is_some_and(|spec| matches!(spec.kind, Kind::Transaction(TxnStep::Watch)))
}

/// Turns one request into the reply it is owed, and says what to do next.
/// `behind_write`: a request pipelined before this one awaits its entry.
pub(super) async fn dispatch(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
    behind_write: bool,
) -> (Pending, Next) {
    node.stats
        .commands_processed
        .fetch_add(1, Ordering::Relaxed);
    let proto = session.protocol;
    let spec = match command::resolve(&argv) {
        Ok(spec) => spec,
        Err(reply) => {
            session.doom_transaction();
            return ready(reply, proto);
        }
    };
    METRICS.command(spec);
    {
        let mut info = session.client.lock().expect("client lock");
        info.last_active = Instant::now();
        if info.last_command != spec.name {
            spec.name.clone_into(&mut info.last_command);
        }
    }
    match check::admit(spec, &argv, &session.caller()) {
        Verdict::Run => {}
        Verdict::Queue => {
            let queued = session.multi.as_mut().expect("queued only inside MULTI");
            return ready(queued.queue(argv), proto);
        }
        Verdict::Refuse { reply, dooms_multi } => {
            if dooms_multi {
                session.doom_transaction();
            }
            return ready(reply, proto);
        }
    }
    match plan(spec, &argv, behind_write) {
        Plan::Serve(serve) => {
            let step = serve(node, session, &argv);
            // The reply of HELLO is in the protocol it switched to.
            let proto = session.protocol;
            match step {
                Step::Reply(reply) => ready(reply, proto),
                Step::Many(replies) => (Pending::Many(replies, proto), Next::Parse),
                Step::ReplyAndClose(reply) => (Pending::Ready(reply, proto), Next::Close),
                Step::Later(reply) => (Pending::Relayed(reply, proto), Next::Parse),
            }
        }
        Plan::Watch => ready(multi::watch(node, session, &argv[1..]).await, proto),
        Plan::Exec => match multi::exec(node, session).await {
            Executed::Now(reply) => ready(reply, proto),
            Executed::Proposed { reply, slots } => (
                Pending::Exec {
                    reply,
                    slots,
                    proto,
                },
                Next::Parse,
            ),
        },
        Plan::Publish { sharded } => {
            let channel = argv[1].clone();
            match data_reply(node, session, argv).await {
                Ok(reply) => (
                    Pending::Publish {
                        reply,
                        channel,
                        sharded,
                        proto,
                    },
                    Next::Parse,
                ),
                Err(reply) => ready(reply, proto),
            }
        }
        Plan::Unknown => ready(command::unknown_command(&argv), proto),
        Plan::Data(data) => match node.route().await {
            Ok(Route::Local) => serve_data(node, session, argv, data).await,
            Ok(Route::Leader(leader)) => (relay(node, session, leader, argv).await, Next::Parse),
            Err(reply) => ready(reply, proto),
        },
    }
}

fn ready(reply: Reply, proto: Protocol) -> (Pending, Next) {
    (Pending::Ready(reply, proto), Next::Parse)
}

/// Serves a data command on this node, the leader.
async fn serve_data(
    node: &Arc<Node>,
    session: &mut Session,
    argv: Vec<Bytes>,
    data: Data,
) -> (Pending, Next) {
    let proto = session.protocol;
    match data {
        Data::Read(read) => (Pending::Read(argv, read, proto), Next::Parse),
        Data::Propose => (
            Pending::Write(node.proposer.propose(argv).await, proto),
            Next::Parse,
        ),
        Data::ProposeInSession => {
            let (_, op) = blocking_lock::in_session(node, session, argv);
            (
                Pending::Write(node.proposer.propose(op).await, proto),
                Next::Parse,
            )
        }
        // As in Redis, nothing the client pipelined behind a request that may block runs
        // before it is answered: its critical section must not start before its grant.
        Data::Lock => match blocking_lock::lock_request(node, session, argv).await {
            LockRequest::Write(reply) => (Pending::Write(reply, proto), Next::Parse),
            LockRequest::Wait(wait) => (Pending::LockWait(wait, proto), Next::Resolve),
        },
        Data::ListPop(pop, blocking) => {
            let pop = blocking_pop::blocking_pop_request(node, argv, pop, blocking).await;
            (Pending::ListPop(pop, proto), Next::Resolve)
        }
    }
}

/// Sends a data command to the leader on this client's relay, connecting it first.
async fn relay(
    node: &Arc<Node>,
    session: &mut Session,
    leader: SocketAddr,
    argv: Vec<Bytes>,
) -> Pending {
    let proto = session.protocol;
    match relay_rx(node, session, leader, argv).await {
        Ok(rx) => Pending::Relayed(rx, proto),
        Err(reply) => Pending::Ready(reply, proto),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(line: &str) -> Vec<Bytes> {
        line.split(' ')
            .map(|w| Bytes::copy_from_slice(w.as_bytes()))
            .collect()
    }

    fn plan_of(line: &str, behind_write: bool) -> Plan {
        let argv = argv(line);
        let spec = command::resolve(&argv).expect("in the table");
        plan(spec, &argv, behind_write)
    }

    #[test]
    fn a_read_waits_for_a_barrier_unless_it_is_behind_a_write() {
        assert!(matches!(plan_of("get k", false), Plan::Data(Data::Read(_))));
        assert!(matches!(plan_of("get k", true), Plan::Data(Data::Propose)));
        assert!(matches!(
            plan_of("script exists abc", true),
            Plan::Data(Data::Propose)
        ));
    }

    #[test]
    fn writes_are_proposed_and_renew_in_the_lock_session() {
        assert!(matches!(
            plan_of("set k v", false),
            Plan::Data(Data::Propose)
        ));
        assert!(matches!(
            plan_of("script load x", false),
            Plan::Data(Data::Propose)
        ));
        assert!(matches!(
            plan_of("renew r o 1000", false),
            Plan::Data(Data::ProposeInSession)
        ));
    }

    #[test]
    fn lock_requests_are_served_as_locks() {
        for line in ["lock r o 1000", "lock r o 1000 WAIT 10", "rlock r o 1000"] {
            assert!(
                matches!(plan_of(line, false), Plan::Data(Data::Lock)),
                "{line}"
            );
        }
    }

    #[test]
    fn blocking_pops_join_their_lines_unless_their_arguments_are_refused() {
        assert!(matches!(
            plan_of("blpop a b 0", false),
            Plan::Data(Data::ListPop(_, Blocking::ListPop))
        ));
        assert!(matches!(
            plan_of("brpoplpush a b 1", false),
            Plan::Data(Data::ListPop(_, Blocking::ListMove))
        ));
        assert!(matches!(
            plan_of("blmove a b LEFT NOWHERE 1", false),
            Plan::Data(Data::Propose)
        ));
    }

    #[test]
    fn publish_watch_exec_and_node_commands_are_planned_by_kind() {
        assert!(matches!(
            plan_of("publish c m", false),
            Plan::Publish { sharded: false }
        ));
        assert!(matches!(
            plan_of("spublish c m", false),
            Plan::Publish { sharded: true }
        ));
        assert!(matches!(plan_of("watch k", false), Plan::Watch));
        assert!(matches!(plan_of("exec", false), Plan::Exec));
        for line in [
            "ping",
            "hello 3",
            "info",
            "subscribe c",
            "raft.info",
            "multi",
        ] {
            assert!(matches!(plan_of(line, false), Plan::Serve(_)), "{line}");
        }
    }

    #[test]
    fn only_watch_waits_for_the_pipeline() {
        assert!(waits_for_pipeline(&argv("WATCH k")));
        assert!(!waits_for_pipeline(&argv("get k")));
        assert!(!waits_for_pipeline(&argv("nosuch")));
    }
}
