//! The load loops: each client runs one of them until the shared budget (a number of ops,
//! or a deadline) is spent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use super::args::{BenchArgs, Workload};
pub use super::budget::Budget;
use super::client::Client;
pub use super::outcome::{ClientStats, Outcome};
use super::resp::Reply;
pub use super::rng::Rng;

/// The Redlock release: delete the key only if it still holds our token.
pub const RELEASE_SCRIPT: &str = "if redis.call(\"get\",KEYS[1]) == ARGV[1] then return redis.call(\"del\",KEYS[1]) else return 0 end";

/// Lease of the locks held while `get` reads them, in ms: longer than any sensible run.
const HELD_LOCK_TTL_MS: u64 = 600_000;

/// How a `setnx` lock is released on this server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Release {
    /// The compare-and-delete script, by its SHA1 (loaded with SCRIPT LOAD).
    EvalSha(String),
    /// Valkey's `DELIFEQ key token`.
    DelIfEq,
    /// No scripts: `GET`, then `DEL` if the token matches. Not atomic, and one more round
    /// trip than a script; the closest a server without EVAL allows.
    GetThenDel,
}

impl Release {
    pub fn name(&self) -> &'static str {
        match self {
            Release::EvalSha(_) => "EVALSHA",
            Release::DelIfEq => "DELIFEQ",
            Release::GetThenDel => "GET+DEL",
        }
    }
}

/// What the server offers, found out once before the workloads run.
#[derive(Debug, Clone)]
pub struct ServerKind {
    /// It has raftlock's commands (`FENCE`, `LOCK`).
    pub raftlock: bool,
    pub release: Release,
}

impl ServerKind {
    pub async fn probe(client: &mut Client, run_id: &str) -> anyhow::Result<ServerKind> {
        let probe_key = format!("lock:{run_id}:probe");
        let raftlock = !client
            .call(&[b"FENCE", probe_key.as_bytes()])
            .await?
            .is_unknown_command();
        let release = match client
            .call(&[b"SCRIPT", b"LOAD", RELEASE_SCRIPT.as_bytes()])
            .await?
        {
            Reply::Bulk(Some(sha)) => Release::EvalSha(String::from_utf8_lossy(&sha).into_owned()),
            _ => {
                let reply = client
                    .call(&[b"DELIFEQ", probe_key.as_bytes(), b"token"])
                    .await?;
                if matches!(reply, Reply::Int(_)) {
                    Release::DelIfEq
                } else {
                    Release::GetThenDel
                }
            }
        };
        Ok(ServerKind { raftlock, release })
    }
}

/// Everything a client loop needs, shared by all clients of one workload.
pub struct Plan {
    pub workload: Workload,
    pub budget: Budget,
    pub server: ServerKind,
    pub run_id: String,
    pub pipeline: u64,
    pub ttl_ms: Vec<u8>,
    pub wait_ms: Vec<u8>,
    pub backoff: Duration,
    /// Names of the contended resources, or of the locks held for `get`.
    pub resources: Vec<String>,
}

impl Plan {
    pub fn new(args: &BenchArgs, workload: Workload, server: ServerKind, run_id: &str) -> Plan {
        let budget = match args.duration {
            Some(duration) => Budget::until(Instant::now() + duration),
            None => Budget::requests(args.requests),
        };
        let kind = if workload == Workload::Get {
            "held"
        } else {
            "c"
        };
        Plan {
            workload,
            budget,
            server,
            run_id: run_id.to_string(),
            pipeline: if workload.is_contended() {
                1
            } else {
                u64::from(args.pipeline)
            },
            ttl_ms: args.ttl_ms.to_string().into_bytes(),
            wait_ms: args.wait_ms.to_string().into_bytes(),
            backoff: Duration::from_millis(args.backoff_ms),
            resources: (0..args.resources)
                .map(|i| format!("lock:{run_id}:{kind}{i}"))
                .collect(),
        }
    }

    fn owner(&self, client: usize) -> String {
        format!("bench-{}-{client}", self.run_id)
    }

    /// Holds the locks `get` reads (with a lease longer than the run).
    pub async fn hold_read_locks(&self, client: &mut Client) -> anyhow::Result<()> {
        let ttl = HELD_LOCK_TTL_MS.to_string();
        for name in &self.resources {
            let reply = if self.server.raftlock {
                client
                    .call(&[b"LOCK", name.as_bytes(), b"holder", ttl.as_bytes()])
                    .await?
            } else {
                client
                    .call(&[b"SET", name.as_bytes(), b"holder", b"PX", ttl.as_bytes()])
                    .await?
            };
            if matches!(reply, Reply::Error(_)) || reply.is_nil() {
                bail!("cannot hold {name} for the get workload: {reply:?}");
            }
        }
        Ok(())
    }

    pub async fn release_read_locks(&self, client: &mut Client) -> anyhow::Result<()> {
        for name in &self.resources {
            if self.server.raftlock {
                client.queue(&[b"UNLOCK", name.as_bytes(), b"holder"]);
            } else {
                client.queue(&[b"DEL", name.as_bytes()]);
            }
        }
        client.flush().await?;
        Ok(())
    }

    /// Runs client number `index` until the budget is spent.
    pub async fn run_client(
        self: Arc<Self>,
        index: usize,
        mut client: Client,
    ) -> anyhow::Result<ClientStats> {
        let mut rng = Rng::new(&self.run_id, index);
        let mut stats = ClientStats::default();
        let owner = self.owner(index);
        let result = match self.workload {
            Workload::Setnx => self.setnx(&mut client, &mut rng, &owner, &mut stats).await,
            Workload::SetnxContended => {
                self.setnx_contended(&mut client, &mut rng, &owner, &mut stats)
                    .await
            }
            Workload::Lock => self.lock(&mut client, &mut rng, &owner, &mut stats).await,
            Workload::LockContended => {
                self.lock_contended(&mut client, &mut rng, &owner, &mut stats)
                    .await
            }
            Workload::Get => self.get(&mut client, &mut rng, &mut stats).await,
        };
        result.with_context(|| format!("client {index}"))?;
        Ok(stats)
    }

    fn random_resource(&self, rng: &mut Rng) -> &str {
        &self.resources[rng.below(self.resources.len())]
    }

    /// Acquire with `SET NX PX`, release by the compare-and-delete; `pipeline` pairs at once.
    async fn setnx(
        &self,
        client: &mut Client,
        rng: &mut Rng,
        owner: &str,
        stats: &mut ClientStats,
    ) -> anyhow::Result<()> {
        let mut seq = 0u64;
        loop {
            let n = self.budget.claim(self.pipeline);
            if n == 0 {
                return Ok(());
            }
            let start = Instant::now();
            let locks: Vec<(String, String)> = (0..n)
                .map(|_| {
                    seq += 1;
                    (
                        format!("lock:{:016x}", rng.next()),
                        format!("{owner}:{seq}"),
                    )
                })
                .collect();
            for (key, token) in &locks {
                client.queue(&[
                    b"SET",
                    key.as_bytes(),
                    token.as_bytes(),
                    b"NX",
                    b"PX",
                    &self.ttl_ms,
                ]);
            }
            let replies = client.flush().await?;
            stats.acquire.record_n(start.elapsed(), n);
            let mut held = Vec::with_capacity(locks.len());
            for (reply, lock) in replies.iter().zip(&locks) {
                if reply.is_nil() {
                    stats.busy += 1;
                } else {
                    stats.check(reply, "SET NX", Reply::is_ok);
                    if reply.is_ok() {
                        held.push(lock);
                    }
                }
            }
            release(client, &self.server.release, &held, stats).await?;
            stats.latencies.record_n(start.elapsed(), n);
            stats.ops += n;
            self.budget.finished(n);
        }
    }

    /// `LOCK` on random resources, then `UNLOCK`; `pipeline` pairs at once.
    async fn lock(
        &self,
        client: &mut Client,
        rng: &mut Rng,
        owner: &str,
        stats: &mut ClientStats,
    ) -> anyhow::Result<()> {
        loop {
            let n = self.budget.claim(self.pipeline);
            if n == 0 {
                return Ok(());
            }
            let start = Instant::now();
            let resources: Vec<String> = (0..n)
                .map(|_| format!("lock:{:016x}", rng.next()))
                .collect();
            for resource in &resources {
                client.queue(&[b"LOCK", resource.as_bytes(), owner.as_bytes(), &self.ttl_ms]);
            }
            let replies = client.flush().await?;
            stats.acquire.record_n(start.elapsed(), n);
            let mut unlocks = 0;
            for (reply, resource) in replies.iter().zip(&resources) {
                if reply.is_nil() {
                    stats.busy += 1;
                } else {
                    stats.check(reply, "LOCK", |r| matches!(r, Reply::Int(_)));
                    if matches!(reply, Reply::Int(_)) {
                        client.queue(&[b"UNLOCK", resource.as_bytes(), owner.as_bytes()]);
                        unlocks += 1;
                    }
                }
            }
            if unlocks > 0 {
                for reply in client.flush().await? {
                    stats.check(&reply, "UNLOCK", |r| *r == Reply::Int(0));
                }
            }
            stats.latencies.record_n(start.elapsed(), n);
            stats.ops += n;
            self.budget.finished(n);
        }
    }

    /// `LOCK ... WAIT` on one of few resources, then `UNLOCK`: the server queues waiters.
    async fn lock_contended(
        &self,
        client: &mut Client,
        rng: &mut Rng,
        owner: &str,
        stats: &mut ClientStats,
    ) -> anyhow::Result<()> {
        while self.budget.claim(1) == 1 {
            let resource = self.random_resource(rng).as_bytes();
            let start = Instant::now();
            let granted = loop {
                let reply = client
                    .call(&[
                        b"LOCK",
                        resource,
                        owner.as_bytes(),
                        &self.ttl_ms,
                        b"WAIT",
                        &self.wait_ms,
                    ])
                    .await?;
                match reply {
                    Reply::Int(_) => break true,
                    nil if nil.is_nil() => {
                        stats.timeouts += 1;
                        if self.budget.expired() {
                            break false;
                        }
                    }
                    other => {
                        stats.check(&other, "LOCK WAIT", |_| false);
                        break false;
                    }
                }
            };
            if granted {
                stats.latencies.record(start.elapsed());
                stats.ops += 1;
                self.budget.finished(1);
                let reply = client
                    .call(&[b"UNLOCK", resource, owner.as_bytes()])
                    .await?;
                stats.check(&reply, "UNLOCK", |r| *r == Reply::Int(0));
            }
        }
        Ok(())
    }

    /// `SET NX PX` on one of few keys, retried after a short sleep until it succeeds, then
    /// released: how Redlock clients contend on plain Redis.
    async fn setnx_contended(
        &self,
        client: &mut Client,
        rng: &mut Rng,
        owner: &str,
        stats: &mut ClientStats,
    ) -> anyhow::Result<()> {
        let mut seq = 0u64;
        while self.budget.claim(1) == 1 {
            let key = self.random_resource(rng).to_string();
            seq += 1;
            let token = format!("{owner}:{seq}");
            let start = Instant::now();
            let granted = loop {
                let reply = client
                    .call(&[
                        b"SET",
                        key.as_bytes(),
                        token.as_bytes(),
                        b"NX",
                        b"PX",
                        &self.ttl_ms,
                    ])
                    .await?;
                if reply.is_ok() {
                    break true;
                }
                if !reply.is_nil() {
                    stats.check(&reply, "SET NX", |_| false);
                    break false;
                }
                stats.retries += 1;
                if self.budget.expired() {
                    break false;
                }
                tokio::time::sleep(self.backoff).await;
            };
            if granted {
                stats.latencies.record(start.elapsed());
                stats.ops += 1;
                self.budget.finished(1);
                release(client, &self.server.release, &[&(key, token)], stats).await?;
            }
        }
        Ok(())
    }

    /// Linearizable reads of the held locks: `FENCE` on raftlock, `GET` elsewhere.
    async fn get(
        &self,
        client: &mut Client,
        rng: &mut Rng,
        stats: &mut ClientStats,
    ) -> anyhow::Result<()> {
        let read: &[u8] = if self.server.raftlock {
            b"FENCE"
        } else {
            b"GET"
        };
        loop {
            let n = self.budget.claim(self.pipeline);
            if n == 0 {
                return Ok(());
            }
            let start = Instant::now();
            for _ in 0..n {
                client.queue(&[read, self.random_resource(rng).as_bytes()]);
            }
            for reply in client.flush().await? {
                stats.check(&reply, "read", |_| true);
            }
            stats.latencies.record_n(start.elapsed(), n);
            stats.ops += n;
            self.budget.finished(n);
        }
    }
}

/// Releases `held` (key, token) locks taken with `SET NX`, all at once.
async fn release(
    client: &mut Client,
    how: &Release,
    held: &[&(String, String)],
    stats: &mut ClientStats,
) -> anyhow::Result<()> {
    if held.is_empty() {
        return Ok(());
    }
    let released = |r: &Reply| *r == Reply::Int(1);
    match how {
        Release::EvalSha(sha) => {
            for (key, token) in held.iter() {
                client.queue(&[
                    b"EVALSHA",
                    sha.as_bytes(),
                    b"1",
                    key.as_bytes(),
                    token.as_bytes(),
                ]);
            }
            let replies = client.flush().await?;
            for (reply, (key, token)) in replies.into_iter().zip(held.iter().copied()) {
                let reply = match reply {
                    // The script cache was flushed: send the script itself.
                    Reply::Error(err) if err.starts_with("NOSCRIPT") => {
                        client
                            .call(&[
                                b"EVAL",
                                RELEASE_SCRIPT.as_bytes(),
                                b"1",
                                key.as_bytes(),
                                token.as_bytes(),
                            ])
                            .await?
                    }
                    other => other,
                };
                stats.check(&reply, "EVALSHA release", released);
            }
        }
        Release::DelIfEq => {
            for (key, token) in held.iter() {
                client.queue(&[b"DELIFEQ", key.as_bytes(), token.as_bytes()]);
            }
            for reply in client.flush().await? {
                stats.check(&reply, "DELIFEQ", released);
            }
        }
        Release::GetThenDel => {
            for (key, _) in held.iter() {
                client.queue(&[b"GET", key.as_bytes()]);
            }
            let replies = client.flush().await?;
            let mut deletes = 0;
            for (reply, (key, token)) in replies.iter().zip(held.iter().copied()) {
                if *reply == Reply::Bulk(Some(token.as_bytes().to_vec())) {
                    client.queue(&[b"DEL", key.as_bytes()]);
                    deletes += 1;
                } else {
                    stats.check(reply, "GET before DEL", |_| false);
                }
            }
            if deletes > 0 {
                for reply in client.flush().await? {
                    stats.check(&reply, "DEL", released);
                }
            }
        }
    }
    Ok(())
}
