//! `raftlock bench` options, spelled as redis-benchmark spells them where it has them.

use std::time::Duration;

use clap::{ArgAction, Parser, ValueEnum};

/// What one run measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Workload {
    /// `SET lock:<rand> token NX PX ttl`, then the Redlock compare-and-delete release.
    Setnx,
    /// Clients retry `SET NX PX` on `--resources` keys, sleeping `--backoff-ms` after a miss.
    SetnxContended,
    /// `LOCK res owner ttl` then `UNLOCK res owner` on random resources (raftlock only).
    Lock,
    /// `LOCK res owner ttl WAIT ms` then `UNLOCK` on `--resources` resources (raftlock only).
    LockContended,
    /// Linearizable reads of held locks: `FENCE` on raftlock, `GET` elsewhere.
    Get,
}

impl Workload {
    pub fn name(self) -> &'static str {
        match self {
            Workload::Setnx => "setnx",
            Workload::SetnxContended => "setnx-contended",
            Workload::Lock => "lock",
            Workload::LockContended => "lock-contended",
            Workload::Get => "get",
        }
    }

    /// Contended workloads count grants and wait for them one request at a time.
    pub fn is_contended(self) -> bool {
        matches!(self, Workload::SetnxContended | Workload::LockContended)
    }
}

/// Benchmark a raftlock (or Redis) server with lock workloads.
///
/// Each op of `setnx` and `lock` is an acquire plus its release; of the contended
/// workloads, one grant (its latency is the wait from the first request to the grant).
#[derive(Debug, Parser)]
#[command(name = "raftlock bench", disable_help_flag = true)]
pub struct BenchArgs {
    /// Server hostname.
    #[arg(short = 'h', long = "host", default_value = "127.0.0.1")]
    pub host: String,
    /// Server port.
    #[arg(short = 'p', long = "port", default_value_t = 6379)]
    pub port: u16,
    /// Password for AUTH.
    #[arg(short = 'a', long = "password")]
    pub password: Option<String>,
    /// Number of parallel connections.
    #[arg(short = 'c', long = "clients", default_value_t = 50,
          value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub clients: u32,
    /// Total number of ops per workload (ignored with --duration).
    #[arg(short = 'n', long = "requests", default_value_t = 100_000,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub requests: u64,
    /// Run each workload this many seconds instead of a number of ops.
    #[arg(long, value_parser = parse_duration_secs, conflicts_with = "requests")]
    pub duration: Option<Duration>,
    /// Ops each client sends at once (contended workloads always use 1).
    #[arg(short = 'P', long = "pipeline", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub pipeline: u32,
    /// Comma-separated workloads to run, in order.
    #[arg(
        short = 't',
        long = "tests",
        value_enum,
        value_delimiter = ',',
        default_value = "setnx,lock,lock-contended,get"
    )]
    pub workloads: Vec<Workload>,
    /// Resources shared by all clients in contended workloads, and locks held for `get`.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub resources: u32,
    /// Lease of every lock taken, in ms.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub ttl_ms: u64,
    /// `WAIT` timeout of a contended `LOCK`, in ms (a timed-out wait is retried).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub wait_ms: u64,
    /// Sleep after a failed `SET NX` in setnx-contended, in ms (as Redlock clients do).
    #[arg(long, default_value_t = 1)]
    pub backoff_ms: u64,
    /// Client threads (1, like redis-benchmark, leaves the most CPU to a local server).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub threads: u32,
    /// Output CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
    /// Print help.
    #[arg(long, action = ArgAction::Help)]
    help: Option<bool>,
}

fn parse_duration_secs(text: &str) -> Result<Duration, String> {
    let secs: f64 = text
        .parse()
        .map_err(|_| format!("`{text}` is not a number of seconds"))?;
    if !(secs > 0.0 && secs <= 86_400.0) {
        return Err("must be more than 0 and at most 86400 seconds".to_string());
    }
    Ok(Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<BenchArgs, clap::Error> {
        BenchArgs::try_parse_from(std::iter::once("bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults_follow_redis_benchmark() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.host, "127.0.0.1");
        assert_eq!(args.port, 6379);
        assert_eq!(args.clients, 50);
        assert_eq!(args.requests, 100_000);
        assert_eq!(args.pipeline, 1);
        assert_eq!(args.duration, None);
        assert!(!args.csv);
        assert_eq!(
            args.workloads,
            [
                Workload::Setnx,
                Workload::Lock,
                Workload::LockContended,
                Workload::Get
            ]
        );
    }

    #[test]
    fn short_h_is_the_host_as_in_redis_benchmark() {
        let args = parse(&[
            "-h", "10.0.0.7", "-p", "7001", "-c", "64", "-n", "2000", "-P", "16", "-a", "pw",
        ])
        .unwrap();
        assert_eq!(args.host, "10.0.0.7");
        assert_eq!(args.port, 7001);
        assert_eq!(args.clients, 64);
        assert_eq!(args.requests, 2000);
        assert_eq!(args.pipeline, 16);
        assert_eq!(args.password.as_deref(), Some("pw"));
    }

    #[test]
    fn long_help_still_works() {
        let err = parse(&["--help"]).unwrap_err();
        assert_eq!(err.kind(), clap::error::ErrorKind::DisplayHelp);
    }

    #[test]
    fn workloads_are_a_comma_separated_list() {
        let args = parse(&["-t", "lock-contended,setnx-contended,get"]).unwrap();
        assert_eq!(
            args.workloads,
            [
                Workload::LockContended,
                Workload::SetnxContended,
                Workload::Get
            ]
        );
        assert!(parse(&["-t", "lock,nosuch"]).is_err());
    }

    #[test]
    fn duration_takes_fractional_seconds_and_excludes_requests() {
        let args = parse(&["--duration", "2.5"]).unwrap();
        assert_eq!(args.duration, Some(Duration::from_millis(2500)));
        assert!(parse(&["--duration", "2", "-n", "10"]).is_err());
        assert!(parse(&["--duration", "0"]).is_err());
        assert!(parse(&["--duration", "-1"]).is_err());
        assert!(parse(&["--duration", "soon"]).is_err());
    }

    #[test]
    fn counts_must_be_positive() {
        for bad in [
            &["-c", "0"][..],
            &["-n", "0"],
            &["-P", "0"],
            &["--resources", "0"],
            &["--ttl-ms", "0"],
        ] {
            assert!(parse(bad).is_err(), "{bad:?} must be refused");
        }
    }

    #[test]
    fn contended_workloads_are_marked() {
        assert!(Workload::LockContended.is_contended());
        assert!(Workload::SetnxContended.is_contended());
        assert!(!Workload::Lock.is_contended());
        assert!(!Workload::Get.is_contended());
    }
}
