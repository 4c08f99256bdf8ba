//! What each client saw, and a workload's result summed over its clients.

use std::time::Duration;

use super::args::Workload;
use super::resp::Reply;
use super::stats::{Latencies, LatencySummary};
use super::workload::Plan;

/// What one client saw.
#[derive(Default)]
pub struct ClientStats {
    pub latencies: Latencies,
    /// Uncontended workloads: the acquire alone (`SET NX` or `LOCK`), without the release.
    pub acquire: Latencies,
    /// Ops done (for contended workloads: grants).
    pub ops: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    /// Uncontended acquires that found the lock taken (a random name collided).
    pub busy: u64,
    /// `SET NX` attempts that failed and were retried after a sleep.
    pub retries: u64,
    /// `LOCK ... WAIT` requests that timed out and were sent again.
    pub timeouts: u64,
}

impl ClientStats {
    pub(super) fn error(&mut self, what: impl Into<String>) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(what.into());
        }
    }

    /// Counts a reply that is an error or not what `expected` accepts.
    pub(super) fn check(
        &mut self,
        reply: &Reply,
        command: &str,
        expected: impl Fn(&Reply) -> bool,
    ) {
        match reply {
            Reply::Error(err) => self.error(format!("{command}: {err}")),
            other if !expected(other) => self.error(format!("{command}: unexpected {other:?}")),
            _ => {}
        }
    }
}

/// The result of one workload, summed over its clients.
pub struct Outcome {
    pub workload: Workload,
    pub clients: u32,
    pub pipeline: u64,
    pub ops: u64,
    pub elapsed: Duration,
    pub latency: LatencySummary,
    /// Ops (grants) of each client.
    pub per_client: Vec<u64>,
    pub errors: u64,
    pub first_error: Option<String>,
    /// What else the reader needs to know: how locks were released, retries, timeouts.
    pub note: String,
    /// The server cannot run this workload (the note says why).
    pub skipped: bool,
}

impl Outcome {
    pub fn skipped(workload: Workload, clients: u32, why: &str) -> Outcome {
        Outcome {
            workload,
            clients,
            pipeline: 0,
            ops: 0,
            elapsed: Duration::ZERO,
            latency: LatencySummary::default(),
            per_client: Vec::new(),
            errors: 0,
            first_error: None,
            note: format!("skipped: {why}"),
            skipped: true,
        }
    }

    pub fn from_clients(plan: &Plan, elapsed: Duration, results: Vec<ClientStats>) -> Outcome {
        let mut latencies = Latencies::default();
        let mut acquire = Latencies::default();
        let (mut busy, mut retries, mut timeouts, mut errors) = (0, 0, 0, 0);
        let mut first_error = None;
        for r in &results {
            latencies.merge(&r.latencies);
            acquire.merge(&r.acquire);
            busy += r.busy;
            retries += r.retries;
            timeouts += r.timeouts;
            errors += r.errors;
            if first_error.is_none() {
                first_error.clone_from(&r.first_error);
            }
        }
        let mut notes = Vec::new();
        match plan.workload {
            Workload::Setnx | Workload::SetnxContended => {
                notes.push(format!("release={}", plan.server.release.name()));
            }
            Workload::Get => notes.push(
                if plan.server.raftlock {
                    "reads=FENCE"
                } else {
                    "reads=GET"
                }
                .to_string(),
            ),
            Workload::Lock | Workload::LockContended => {}
        }
        if plan.workload.is_contended() {
            notes.push(format!("resources={}", plan.resources.len()));
        }
        if plan.workload == Workload::SetnxContended {
            notes.push(format!("retries={retries}"));
        }
        if timeouts > 0 {
            notes.push(format!("wait-timeouts={timeouts}"));
        }
        if busy > 0 {
            notes.push(format!("busy={busy}"));
        }
        if matches!(plan.workload, Workload::Setnx | Workload::Lock) {
            let a = acquire.summary();
            notes.push(format!(
                "acquire_p50_ms={:.3} acquire_p99_ms={:.3}",
                a.p50_ms, a.p99_ms
            ));
        }
        Outcome {
            workload: plan.workload,
            clients: results.len() as u32,
            pipeline: plan.pipeline,
            ops: results.iter().map(|r| r.ops).sum(),
            elapsed,
            latency: latencies.summary(),
            per_client: results.iter().map(|r| r.ops).collect(),
            errors,
            first_error,
            note: notes.join(" "),
            skipped: false,
        }
    }

    pub fn ops_per_sec(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ops as f64 / secs
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_keep_the_first_error_and_count_all() {
        let mut stats = ClientStats::default();
        stats.check(&Reply::Int(0), "UNLOCK", |r| *r == Reply::Int(0));
        stats.check(&Reply::Error("NOLEADER no leader".into()), "LOCK", |_| true);
        stats.check(&Reply::Int(3), "UNLOCK", |r| *r == Reply::Int(0));
        assert_eq!(stats.errors, 2);
        assert_eq!(
            stats.first_error.as_deref(),
            Some("LOCK: NOLEADER no leader")
        );
    }
}
