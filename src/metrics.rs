//! The node's counters and histograms for Prometheus (`server::metrics` serves them).
//!
//! Everything here is a relaxed atomic, bumped where the work happens (the proposer, the
//! log store's fsync, apply, connections) and read only by a scrape: no lock, no
//! allocation and no hashing on the hot path. They are one process-wide set (`METRICS`),
//! as a process has one node: the log store and the state machine store feed it without
//! a handle threaded through openraft.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::LazyLock;
use std::time::Duration;

use crate::command::{CommandSpec, COMMANDS};

/// A histogram of fixed buckets, in integer units (nanoseconds, bytes, counts), exported
/// scaled (`scale`: seconds per nanosecond for times). One relaxed add per bucket, count
/// and sum per observation; the cumulative counts are computed at scrape.
#[derive(Debug)]
pub(crate) struct Histogram {
    /// Upper bounds of the buckets, in units, increasing; `+Inf` is implied.
    bounds: &'static [u64],
    /// Observations per bucket (not cumulative), one more than `bounds` for `+Inf`.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
    /// What one unit is in the exported unit.
    scale: f64,
}

/// A consistent-enough copy of a histogram for one scrape.
pub(crate) struct HistogramSnapshot {
    pub sum: f64,
    pub count: u64,
    /// `(upper bound, observations in this bucket)`, the last `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

impl Histogram {
    pub(crate) fn new(bounds: &'static [u64], scale: f64) -> Histogram {
        Histogram {
            bounds,
            buckets: (0..=bounds.len()).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            scale,
        }
    }

    /// A histogram of durations, observed with `observe_duration`, exported in seconds.
    pub(crate) fn seconds(bounds_ns: &'static [u64]) -> Histogram {
        Histogram::new(bounds_ns, 1e-9)
    }

    pub(crate) fn observe(&self, units: u64) {
        let bucket = self.bounds.partition_point(|bound| *bound < units);
        self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(units, Ordering::Relaxed);
    }

    pub(crate) fn observe_duration(&self, elapsed: Duration) {
        self.observe(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX));
    }

    pub(crate) fn snapshot(&self) -> HistogramSnapshot {
        let mut buckets: Vec<(f64, u64)> = self
            .bounds
            .iter()
            .map(|bound| *bound as f64 * self.scale)
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.buckets.iter().map(|b| b.load(Ordering::Relaxed)))
            .collect();
        // Observations land in a bucket before the count moves: a scrape between the two
        // must not show more in the buckets than in the count.
        let in_buckets: u64 = buckets.iter().map(|(_, n)| n).sum();
        let count = self.count.load(Ordering::Relaxed).max(in_buckets);
        if let Some(last) = buckets.last_mut() {
            last.1 += count - in_buckets;
        }
        HistogramSnapshot {
            sum: self.sum.load(Ordering::Relaxed) as f64 * self.scale,
            count,
            buckets,
        }
    }
}

const MS: u64 = 1_000_000;
const US: u64 = 1_000;

/// fsync, commit and apply: 50 µs to 5 s.
const LATENCY_NS: &[u64] = &[
    50 * US,
    100 * US,
    250 * US,
    500 * US,
    MS,
    2 * MS,
    5 * MS,
    10 * MS,
    25 * MS,
    50 * MS,
    100 * MS,
    250 * MS,
    500 * MS,
    1000 * MS,
    5000 * MS,
];

/// Lock waits and holds: 1 ms to 1 h.
const LOCK_TIME_NS: &[u64] = &[
    MS,
    5 * MS,
    10 * MS,
    50 * MS,
    100 * MS,
    500 * MS,
    1000 * MS,
    5000 * MS,
    10_000 * MS,
    30_000 * MS,
    60_000 * MS,
    300_000 * MS,
    3_600_000 * MS,
];

/// Entry sizes: 64 B to 16 MiB.
const ENTRY_BYTES: &[u64] = &[
    64,
    256,
    1024,
    4096,
    16 * 1024,
    64 * 1024,
    256 * 1024,
    1024 * 1024,
    4 * 1024 * 1024,
    16 * 1024 * 1024,
];

/// Entries or commands per fsync: 1 to 4096.
const PER_FSYNC: &[u64] = &[1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 4096];

/// Error codes counted by name; any other is counted as `other`. Redis's own codes, then
/// raftlock's (docs/OPERATIONS.md lists what each means).
pub(crate) const ERROR_CODES: &[&str] = &[
    "ERR",
    "WRONGTYPE",
    "NOSCRIPT",
    "NOAUTH",
    "WRONGPASS",
    "NOPERM",
    "EXECABORT",
    "BUSY",
    "MISCONF",
    "NOPROTO",
    "OOM",
    "LOADING",
    "NOTOWNER",
    "NOLEADER",
    "TRYAGAIN",
    "MOVED",
    "other",
];

/// The node's metrics (module doc).
pub(crate) struct Metrics {
    /// How long each fsync of the Raft log took.
    pub fsync: Histogram,
    /// Entries and client commands made durable by one fsync.
    pub entries_per_fsync: Histogram,
    pub commands_per_fsync: Histogram,
    /// Each appended entry's size as encoded in the log.
    pub entry_bytes: Histogram,
    /// From an entry's proposal to its replies (committed and applied), on the leader.
    pub commit: Histogram,
    /// Each call of apply (one or more committed entries).
    pub apply: Histogram,
    /// The last committed index openraft reported to the log store.
    pub commit_index: AtomicU64,
    /// Times this node saw a new leader (`server::metrics` watches for them).
    pub leader_changes: AtomicU64,
    /// Lock work done by this node's applies (`state::locks::Tally`).
    pub lock_grants: AtomicU64,
    pub lock_waits: AtomicU64,
    pub lease_expiries: AtomicU64,
    pub wait_timeouts: AtomicU64,
    pub lock_hold: Histogram,
    /// LOCK ... WAIT requests of this node's clients, from the request to their grant.
    pub lock_wait: Histogram,
    /// Commands by `COMMANDS` row, then the subcommand rows (`command_slot`).
    commands: Box<[AtomicU64]>,
    errors: Box<[AtomicU64]>,
}

/// Every command and subcommand row, in slot order: `COMMANDS`, then each container's
/// subcommands.
pub(crate) static COMMAND_ROWS: LazyLock<Vec<&'static CommandSpec>> = LazyLock::new(|| {
    COMMANDS
        .iter()
        .chain(COMMANDS.iter().flat_map(|spec| spec.subcommands.iter()))
        .collect()
});

pub(crate) static METRICS: LazyLock<Metrics> = LazyLock::new(|| Metrics {
    fsync: Histogram::seconds(LATENCY_NS),
    entries_per_fsync: Histogram::new(PER_FSYNC, 1.0),
    commands_per_fsync: Histogram::new(PER_FSYNC, 1.0),
    entry_bytes: Histogram::new(ENTRY_BYTES, 1.0),
    commit: Histogram::seconds(LATENCY_NS),
    apply: Histogram::seconds(LATENCY_NS),
    commit_index: AtomicU64::new(0),
    leader_changes: AtomicU64::new(0),
    lock_grants: AtomicU64::new(0),
    lock_waits: AtomicU64::new(0),
    lease_expiries: AtomicU64::new(0),
    wait_timeouts: AtomicU64::new(0),
    lock_hold: Histogram::seconds(LOCK_TIME_NS),
    lock_wait: Histogram::seconds(LOCK_TIME_NS),
    commands: (0..COMMAND_ROWS.len()).map(|_| AtomicU64::new(0)).collect(),
    errors: ERROR_CODES.iter().map(|_| AtomicU64::new(0)).collect(),
});

/// The slot of a row of the command table: its place in `COMMANDS` by address (no
/// hashing), or after them for a subcommand.
fn command_slot(spec: &'static CommandSpec) -> Option<usize> {
    let size = std::mem::size_of::<CommandSpec>();
    let base = COMMANDS.as_ptr() as usize;
    let addr = spec as *const CommandSpec as usize;
    if size > 0 && addr >= base && addr < base + std::mem::size_of_val(COMMANDS) {
        return Some((addr - base) / size);
    }
    COMMAND_ROWS
        .iter()
        .skip(COMMANDS.len())
        .position(|row| std::ptr::eq(*row, spec))
        .map(|i| i + COMMANDS.len())
}

/// The slot of an error's code (its first word) in `ERROR_CODES`.
pub(crate) fn error_slot(text: &str) -> usize {
    let code = text.split(' ').next().unwrap_or("");
    ERROR_CODES
        .iter()
        .position(|known| *known == code)
        .unwrap_or(ERROR_CODES.len() - 1)
}

impl Metrics {
    /// A client command resolved to `spec`.
    pub(crate) fn command(&self, spec: &'static CommandSpec) {
        if let Some(slot) = command_slot(spec) {
            self.commands[slot].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// An error reply sent to a client.
    pub(crate) fn error(&self, text: &str) {
        self.errors[error_slot(text)].fetch_add(1, Ordering::Relaxed);
    }

    /// `(command name, count)` for every command run at least once.
    pub(crate) fn commands_run(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        COMMAND_ROWS
            .iter()
            .zip(self.commands.iter())
            .map(|(spec, n)| (spec.name, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
    }

    /// `(error code, count)` for every code sent at least once.
    pub(crate) fn errors_sent(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        ERROR_CODES
            .iter()
            .zip(self.errors.iter())
            .map(|(code, n)| (*code, n.load(Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let h = Histogram::new(&[1, 4, 16], 1.0);
        for v in [0, 1, 2, 4, 5, 16, 17, 1000] {
            h.observe(v);
        }
        let s = h.snapshot();
        assert_eq!(s.count, 8);
        assert_eq!(s.sum, 1045.0);
        assert_eq!(
            s.buckets,
            vec![(1.0, 2), (4.0, 2), (16.0, 2), (f64::INFINITY, 2)]
        );
    }

    #[test]
    fn durations_are_exported_in_seconds() {
        let h = Histogram::seconds(LATENCY_NS);
        h.observe_duration(Duration::from_millis(3));
        let s = h.snapshot();
        assert!((s.sum - 0.003).abs() < 1e-12);
        let (bound, n) = s.buckets.iter().find(|(_, n)| *n > 0).copied().unwrap();
        assert_eq!((bound, n), (0.005, 1));
    }

    #[test]
    fn errors_are_counted_by_their_code() {
        assert_eq!(
            ERROR_CODES[error_slot("WRONGTYPE Operation against a key")],
            "WRONGTYPE"
        );
        assert_eq!(ERROR_CODES[error_slot("ERR syntax error")], "ERR");
        assert_eq!(ERROR_CODES[error_slot("NOTOWNER x")], "NOTOWNER");
        assert_eq!(ERROR_CODES[error_slot("SOMETHING else")], "other");
        assert_eq!(ERROR_CODES[error_slot("")], "other");
    }

    #[test]
    fn every_command_row_has_its_own_slot() {
        for (i, spec) in COMMAND_ROWS.iter().enumerate() {
            assert_eq!(command_slot(spec), Some(i), "{}", spec.name);
        }
        let set = crate::command::lookup(b"SET").unwrap();
        assert_eq!(COMMAND_ROWS[command_slot(set).unwrap()].name, "set");
    }
}
