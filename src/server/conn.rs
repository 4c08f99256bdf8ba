//! One client connection: parse every request the socket has delivered, dispatch each
//! (`dispatch`) and queue its reply in order (`pending`), then resolve the queue and send
//! all replies with one write (`wire`). When the client leaves, what it still waits for
//! is cancelled and its lock session detached.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;

use super::blocking_lock::current_term;
use super::clients::ClientHandle;
use super::dispatch::{dispatch, waits_for_pipeline, Next};
use super::pending::{awaits_an_entry, is_write, resolve, Pending};
use super::slowlog::Timed;
use super::subscribe_commands;
use super::wire::{flush, read_now, read_or_deliver, Disconnected, Wire, READ_CHUNK_BYTES};
use super::{Node, Session};
use crate::config::pipeline::READ_AHEAD_BYTES;
use crate::resp::RequestParser;
use crate::state::session as sessions;

/// Serves one client, over plain TCP or TLS (`wire`), until it leaves.
pub(super) async fn serve(node: Arc<Node>, mut wire: Wire, client: ClientHandle) {
    let (id, peer) = {
        let info = client.lock().expect("client lock");
        (info.id, info.addr.ip())
    };
    if node.protected_refuses(peer) {
        wire.output.extend_from_slice(super::protected::DENIED);
        let _ = flush(&mut wire).await;
        wire.shutdown().await;
        node.clients.unregister(id);
        return;
    }
    let default_is_open = node.user("default").is_some_and(|u| u.nopass && u.enabled);
    let mut session = Session::new(id, default_is_open, client);
    let mut parser = RequestParser::new(node.config.resp.clone());
    let mut queue: VecDeque<Pending> = VecDeque::new();
    // A request taken off the wire but not dispatched yet (see `write_after_read`).
    let mut held: Option<Vec<Bytes>> = None;
    let max_pending = node.config.max_pending_replies_per_client;
    // Beside `queue`, one per request: its SLOWLOG timing, if it is timed.
    let mut timed: VecDeque<Option<Timed>> = VecDeque::new();
    'serve: loop {
        // What the queue holds, kept as requests join it (every resolve empties it):
        // whether a request awaits an entry (a read behind it goes through the log) and
        // whether a read waits for its barrier (a write must not overtake it).
        let mut behind_write = false;
        let mut reads_queued = false;
        let mut read_ahead = 0;
        let mut closing = false;
        // The bytes left unparsed when the parser asked for more: waiting for a relayed or
        // blocked reply reads the socket too, so the next read is needed only if nothing
        // arrived meanwhile.
        let mut need_input: Option<usize> = None;
        while queue.len() < max_pending {
            // Redis's tighter limits for clients that have not authenticated yet.
            parser.set_auth_required(!session.authenticated);
            let request = match held.take() {
                Some(argv) => Ok(Some(argv)),
                None => parser.next_request(&mut wire.input),
            };
            match request {
                Ok(Some(argv)) => {
                    if reads_queued && is_write(&argv) {
                        // The reads queued so far must not see this write: serve them
                        // first, then propose it.
                        held = Some(argv);
                        break;
                    }
                    // WATCH reads revisions once everything pipelined before it is done,
                    // so it sees that client's own writes.
                    if !queue.is_empty()
                        && waits_for_pipeline(&argv)
                        && resolve_all(&node, &mut queue, &mut wire, &mut session, &mut timed)
                            .await
                            .is_err()
                    {
                        break 'serve;
                    }
                    if queue.is_empty() {
                        (behind_write, reads_queued) = (false, false);
                    }
                    let timing = node.slowlog.start(&argv);
                    let (pending, next) = dispatch(&node, &mut session, argv, behind_write).await;
                    behind_write |= awaits_an_entry(&pending);
                    reads_queued |= matches!(pending, Pending::Read(..));
                    queue.push_back(pending);
                    timed.push_back(timing);
                    match next {
                        Next::Parse => {}
                        Next::Resolve => break,
                        Next::Close => {
                            closing = true;
                            break;
                        }
                    }
                }
                Ok(None) => {
                    // With replies still owed, take what else the client has sent before
                    // waiting for them (up to READ_AHEAD_BYTES): a long pipeline then
                    // fills the next entries while these commit, rather than one socket
                    // read per round trip.
                    if !queue.is_empty() && read_ahead < READ_AHEAD_BYTES {
                        let read = read_now(&mut wire).await;
                        if read > 0 {
                            read_ahead += read;
                            continue;
                        }
                    }
                    need_input = Some(wire.input.len());
                    break;
                }
                Err(err) => {
                    node.stats.protocol_errors.fetch_add(1, Ordering::Relaxed);
                    queue.push_back(Pending::Ready(err.to_reply(), session.protocol));
                    timed.push_back(None);
                    closing = true;
                    break;
                }
            }
        }
        if resolve_all(&node, &mut queue, &mut wire, &mut session, &mut timed)
            .await
            .is_err()
        {
            break;
        }
        if flush(&mut wire).await.is_err() || closing {
            break;
        }
        if need_input == Some(wire.input.len()) {
            if wire.input.capacity() - wire.input.len() < READ_CHUNK_BYTES / 4 {
                wire.input.reserve(READ_CHUNK_BYTES);
            }
            match read_or_deliver(&mut wire, &mut session.subs, session.protocol).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    }
    subscribe_commands::leave_all(&node, session.id, &mut session.subs);
    // Requests still queued (the client left mid-pipeline) are abandoned; queued lock
    // waits among them leave the queue through a committed entry.
    for pending in queue {
        match pending {
            Pending::LockWait(wait, _) => wait.abandon(&node).await,
            Pending::ListPop(pop, _) => pop.abandon(&node),
            _ => {}
        }
    }
    // Its holds stay (their leases end them), detached: LOCKINFO shows it. (Once the
    // term has moved on, the new leader's first entry has closed the session already.)
    if let Some(id) = session.lock_session {
        if current_term(&node) == id.term {
            drop(node.proposer.propose(sessions::detach_op(id)).await);
        }
    }
    wire.shutdown().await;
    node.clients.unregister(session.id);
}

/// Resolves everything queued, in order; SLOWLOG takes the answered requests' times.
async fn resolve_all(
    node: &Arc<Node>,
    queue: &mut VecDeque<Pending>,
    wire: &mut Wire,
    session: &mut Session,
    timed: &mut VecDeque<Option<Timed>>,
) -> Result<(), Disconnected> {
    let client = session.client.clone();
    resolve(
        node,
        queue,
        wire,
        &mut session.lock_session,
        &mut |answered| finish_timed(node, &client, timed, answered),
    )
    .await
}

/// The first `answered` requests of the connection's queue have their replies: SLOWLOG
/// takes their times.
fn finish_timed(
    node: &Node,
    client: &ClientHandle,
    timed: &mut VecDeque<Option<Timed>>,
    answered: usize,
) {
    for timing in timed.drain(..answered.min(timed.len())).flatten() {
        node.slowlog.finish(timing, client);
    }
}
