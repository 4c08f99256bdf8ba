//! `raftlock run --lock NAME -- CMD ARGS...`: takes the lock (waiting in its queue), runs
//! the command with the fencing token in `RAFTLOCK_TOKEN`, renews the lease every third of
//! it while the command runs, and releases the lock when it exits. If the lease is lost
//! (a renewal refused, or none accepted before the lease ran out), the command gets
//! SIGTERM and `raftlock run` exits with `EXIT_LEASE_LOST`: it must not go on believing
//! it holds the lock. SIGTERM or SIGINT to `raftlock run` is passed on to the command.
//!
//! Exit code: the command's (128 + the signal if a signal ended it), or one of `EXIT_*`.

use std::time::Duration;

use anyhow::bail;
use tokio::process::Command;
use tokio::signal::unix::{signal, SignalKind};
use tokio::time::{sleep, sleep_until, Instant};

use super::{check_ttl, default_owner, lock_request, ms, Connection, RunArgs};
use crate::bench::client::Client;
use crate::bench::resp::Reply;

/// The lock was not granted within `--wait`.
pub const EXIT_NOT_GRANTED: u8 = 1;
/// The server could not be used (unreachable, an error reply, a bad argument).
pub const EXIT_ERROR: u8 = 2;
/// The lease was lost while the command ran; the command was sent SIGTERM.
pub const EXIT_LEASE_LOST: u8 = 3;

/// Between attempts while the server answers TRYAGAIN or cannot be reached.
const RETRY_DELAY: Duration = Duration::from_millis(200);
/// Extra time a blocking LOCK's reply may take beyond its WAIT.
const REPLY_GRACE: Duration = Duration::from_secs(30);
/// How long to wait for a reply to a LOCK that waits without limit.
const FOREVER: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Errors a client resends after: the node changed leader or is not ready.
fn is_transient(err: &str) -> bool {
    ["TRYAGAIN", "NOLEADER", "LOADING", "CLUSTERDOWN"]
        .iter()
        .any(|code| err.starts_with(code))
}

/// Takes the lock: its fencing token, or `None` if `wait` passed first. A LOCK answered
/// TRYAGAIN (its node stopped leading) or lost with its connection is sent again with the
/// same owner, which keeps its place in the queue.
pub async fn acquire(
    con: &Connection,
    name: &str,
    owner: &str,
    ttl: Duration,
    wait: Option<Duration>,
) -> anyhow::Result<Option<i64>> {
    check_ttl(ttl)?;
    let deadline = wait.map(|wait| Instant::now() + wait);
    loop {
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        // Once the wait has run out, one last try-lock.
        let argv = lock_request(name, owner, ttl, left);
        let argv: Vec<&[u8]> = argv.iter().map(Vec::as_slice).collect();
        let reply_timeout = left.map_or(FOREVER, |left| left + REPLY_GRACE);
        let outcome = match con.connect(reply_timeout).await {
            Ok(mut client) => client.call(&argv).await,
            Err(err) => Err(err),
        };
        match outcome {
            Ok(Reply::Int(token)) => return Ok(Some(token)),
            Ok(reply) if reply.is_nil() => return Ok(None),
            Ok(Reply::Error(err)) if is_transient(&err) => {}
            Ok(Reply::Error(err)) => bail!("LOCK {name}: {err}"),
            Ok(other) => bail!("LOCK {name}: unexpected reply {other:?}"),
            // The node went away: another may serve by now.
            Err(_) => {}
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            return Ok(None);
        }
        sleep(RETRY_DELAY).await;
    }
}

/// What one renewal found.
enum Renewal {
    Renewed,
    /// The server says the lock is no longer ours.
    Lost(String),
    /// No answer that decides (unreachable, TRYAGAIN): try again soon.
    Unknown,
}

async fn renew(client: &mut Option<Client>, con: &Connection, argv: &[&[u8]]) -> Renewal {
    if client.is_none() {
        *client = con.connect(super::REPLY_TIMEOUT).await.ok();
    }
    let Some(open) = client.as_mut() else {
        return Renewal::Unknown;
    };
    match open.call(argv).await {
        Ok(Reply::Int(1)) => Renewal::Renewed,
        Ok(Reply::Int(_)) => Renewal::Lost("nobody holds the lock any more".into()),
        Ok(Reply::Error(err)) if is_transient(&err) => Renewal::Unknown,
        Ok(Reply::Error(err)) => Renewal::Lost(err),
        Ok(other) => Renewal::Lost(format!("unexpected reply {other:?}")),
        Err(_) => {
            *client = None;
            Renewal::Unknown
        }
    }
}

pub async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let con = &args.connection;
    let owner = match &args.owner {
        Some(owner) => owner.clone(),
        None => default_owner()?,
    };
    let name = &args.lock;
    let Some(token) = acquire(con, name, &owner, args.ttl, args.wait).await? else {
        eprintln!("raftlock run: {name} was not granted in time");
        return Ok(EXIT_NOT_GRANTED);
    };
    // The lease began when the grant was applied, a moment before its reply. Without an
    // accepted renewal, the command is stopped a sixth of the lease before it ends, so
    // it has time to stop before anyone else can be granted the lock.
    let margin = args.ttl / 6;
    let mut lease_end = Instant::now() + args.ttl;

    let (program, program_args) = args.command.split_first().expect("clap requires one");
    let mut child = match Command::new(program)
        .args(program_args)
        .env("RAFTLOCK_TOKEN", token.to_string())
        .env("RAFTLOCK_LOCK", name)
        .env("RAFTLOCK_OWNER", &owner)
        .spawn()
    {
        Ok(child) => child,
        Err(err) => {
            release(con, name, &owner).await;
            bail!("cannot run {program}: {err}");
        }
    };
    let pid = child
        .id()
        .expect("a child that has not been waited for has a pid") as i32;
    let terminate = || {
        // SAFETY: kill(2) with our own child's pid and a signal number; no memory.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    };

    let mut sigterm = signal(SignalKind::terminate())?;
    let mut sigint = signal(SignalKind::interrupt())?;
    let ttl_ms = ms(args.ttl);
    let renew_argv: [&[u8]; 4] = [
        b"RENEW",
        name.as_bytes(),
        owner.as_bytes(),
        ttl_ms.as_bytes(),
    ];
    let mut renewer: Option<Client> = None;
    let mut next_renewal = Instant::now() + args.ttl / 3;
    let mut lost: Option<String> = None;

    let status = loop {
        tokio::select! {
            status = child.wait() => break status?,
            _ = sigterm.recv() => terminate(),
            _ = sigint.recv() => terminate(),
            _ = sleep_until(next_renewal), if lost.is_none() => {
                let asked = Instant::now();
                match renew(&mut renewer, con, &renew_argv).await {
                    Renewal::Renewed => {
                        // Renewed from its entry's time, which is after `asked`.
                        lease_end = asked + args.ttl;
                        next_renewal = asked + args.ttl / 3;
                    }
                    Renewal::Lost(why) => lost = Some(why),
                    Renewal::Unknown if Instant::now() + margin >= lease_end => {
                        lost = Some("no renewal was accepted before the lease ran out".into());
                    }
                    Renewal::Unknown => next_renewal = Instant::now() + RETRY_DELAY,
                }
                if let Some(why) = &lost {
                    eprintln!("raftlock run: lost the lease on {name} ({why}); stopping the command");
                    terminate();
                }
            }
        }
    };
    if lost.is_some() {
        return Ok(EXIT_LEASE_LOST);
    }
    release(con, name, &owner).await;
    Ok(exit_code(status))
}

/// UNLOCK, once; a failure only means the lease ends the hold instead.
async fn release(con: &Connection, name: &str, owner: &str) {
    match con
        .call(&[b"UNLOCK", name.as_bytes(), owner.as_bytes()])
        .await
    {
        Ok(_) => {}
        Err(err) => {
            eprintln!("raftlock run: could not release {name} ({err:#}); its lease will end it")
        }
    }
}

fn exit_code(status: std::process::ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code as u8,
        (None, Some(signal)) => 128u8.wrapping_add(signal as u8),
        (None, None) => EXIT_ERROR,
    }
}
