//! `raftlock bench`: lock workloads against a raftlock or Redis server, in the manner of
//! redis-benchmark (`-h -p -c -n/--duration -P -t --csv`), reporting ops/s, latency
//! percentiles from an HDR histogram and the fairness of grants across clients.
//!
//! The client is a small hand-written RESP client with pipelining, so the numbers measure
//! the server and the wire, not a client library.

mod args;
mod budget;
pub(crate) mod client;
mod outcome;
mod report;
pub(crate) mod resp;
mod rng;
mod stats;
mod workload;

pub use workload::RELEASE_SCRIPT;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;

pub use args::{BenchArgs, Workload};
use client::Client;
use workload::{Outcome, Plan, ServerKind};

/// Extra time granted to a reply beyond any wait the request itself asks for.
const REPLY_GRACE: Duration = Duration::from_secs(30);

/// How often the progress line is redrawn.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// Runs the benchmark on its own runtime. `Ok(false)` when a workload saw errors.
pub fn run(args: BenchArgs) -> anyhow::Result<bool> {
    let runtime = if args.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(args.threads as usize)
            .enable_all()
            .build()?
    };
    runtime.block_on(run_workloads(args))
}

async fn run_workloads(args: BenchArgs) -> anyhow::Result<bool> {
    let run_id = run_id();
    let reply_timeout = Duration::from_millis(args.wait_ms) + REPLY_GRACE;
    let connect = || {
        Client::connect(
            &args.host,
            args.port,
            args.password.as_deref(),
            reply_timeout,
        )
    };
    let mut control = connect().await?;
    let server = ServerKind::probe(&mut control, &run_id).await?;

    let mut out = std::io::stdout().lock();
    if args.csv {
        writeln!(out, "{}", report::CSV_HEADER)?;
    } else {
        let length = match args.duration {
            Some(d) => format!("{:.1} s per workload", d.as_secs_f64()),
            None => format!("{} ops per workload", args.requests),
        };
        writeln!(
            out,
            "raftlock bench: {}:{}, {} clients, pipeline {}, {length}; server: {}, setnx release: {}",
            args.host,
            args.port,
            args.clients,
            args.pipeline,
            if server.raftlock { "raftlock" } else { "redis (no LOCK)" },
            server.release.name(),
        )?;
        writeln!(out, "{}", report::table_header())?;
    }
    out.flush()?;
    drop(out);

    let mut clean = true;
    for &workload in &args.workloads {
        let outcome =
            if matches!(workload, Workload::Lock | Workload::LockContended) && !server.raftlock {
                Outcome::skipped(
                    workload,
                    args.clients,
                    "the server has no LOCK command (compare with setnx-contended)",
                )
            } else {
                run_one(workload, &server, &run_id, &args, &mut control, &connect).await?
            };
        let mut out = std::io::stdout().lock();
        if args.csv {
            writeln!(out, "{}", report::csv_row(&outcome))?;
        } else {
            writeln!(out, "{}", report::table_row(&outcome))?;
        }
        out.flush()?;
        if outcome.errors > 0 {
            clean = false;
            eprintln!(
                "raftlock bench: {} had {} errors; the first: {}",
                workload.name(),
                outcome.errors,
                outcome.first_error.as_deref().unwrap_or("?")
            );
        }
    }
    if !args.csv {
        println!(
            "(one op = acquire + release; for the contended workloads one grant, and the \
             latency is the wait from the first request to the grant)"
        );
    }
    Ok(clean)
}

async fn run_one<F, Fut>(
    workload: Workload,
    server: &ServerKind,
    run_id: &str,
    args: &BenchArgs,
    control: &mut Client,
    connect: &F,
) -> anyhow::Result<Outcome>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Client>>,
{
    let name = workload.name();
    let mut clients = Vec::with_capacity(args.clients as usize);
    for _ in 0..args.clients {
        clients.push(connect().await?);
    }
    // After connecting: a --duration deadline counts from here.
    let plan = Arc::new(Plan::new(args, workload, server.clone(), run_id));
    if workload == Workload::Get {
        plan.hold_read_locks(control).await?;
    }
    let start = Instant::now();
    let progress = std::io::stderr()
        .is_terminal()
        .then(|| tokio::spawn(show_progress(plan.clone(), start)));
    let tasks: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, client)| tokio::spawn(plan.clone().run_client(i, client)))
        .collect();
    let mut results = Vec::with_capacity(tasks.len());
    let mut failure = None;
    for task in tasks {
        match task.await.context("a benchmark client panicked")? {
            Ok(stats) => results.push(stats),
            Err(err) => failure = failure.or(Some(err)),
        }
    }
    let elapsed = start.elapsed();
    if let Some(progress) = progress {
        progress.abort();
        eprint!("\r\x1b[K");
    }
    if let Some(err) = failure {
        return Err(err.context(format!("workload {name} stopped")));
    }
    if plan.workload == Workload::Get {
        plan.release_read_locks(control).await?;
    }
    Ok(Outcome::from_clients(&plan, elapsed, results))
}

/// Redraws `workload: N ops, R ops/s` on stderr until aborted.
async fn show_progress(plan: Arc<Plan>, start: Instant) {
    loop {
        tokio::time::sleep(PROGRESS_EVERY).await;
        let secs = start.elapsed().as_secs_f64();
        let done = plan.budget.done();
        eprint!(
            "\r\x1b[K{}: {done} ops in {secs:.1} s, {:.0} ops/s",
            plan.workload.name(),
            done as f64 / secs
        );
    }
}

/// Short and distinct per run, so names of one run never meet another's.
fn run_id() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut rng = workload::Rng::new(&format!("{nanos}-{}", std::process::id()), 0);
    format!("{:08x}", rng.next() as u32)
}
