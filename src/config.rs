//! Every knob of a node, with its unit in its name, its default, and its validation.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};

/// Limits the state machine enforces. They are compiled in rather than flags because every
/// replica must apply the same rule to the same entry.
pub mod state_limits {
    /// Longest lease a LOCK or RENEW may ask for (one week).
    pub const MAX_LOCK_TTL_MS: u64 = 7 * 24 * 3600 * 1000;
    /// Longest WAIT a LOCK may ask for (one day); `WAIT 0` waits without limit.
    pub const MAX_LOCK_WAIT_MS: u64 = 24 * 3600 * 1000;
    /// Most requests queued on one resource.
    pub const MAX_WAITERS_PER_RESOURCE: usize = 10_000;
    /// Longest owner name.
    pub const MAX_OWNER_BYTES: usize = 256;
    /// Longest resource name.
    pub const MAX_RESOURCE_BYTES: usize = 1024;
    /// Lua VM instructions one script may run (counted every 1000, so a script stops
    /// within 1000 instructions past it, at the same instruction on every node). Bytes
    /// built by `string.rep` count one instruction per 64. About 0.1 s of a tight loop.
    pub const MAX_SCRIPT_INSTRUCTIONS: u64 = 10_000_000;
    /// Bytes one script may allocate in the Lua heap. No garbage is collected while a
    /// script runs, so every node counts the same bytes (give or take strings the script
    /// shares with the node's earlier scripts, which Lua does not allocate twice).
    pub const MAX_SCRIPT_MEMORY_BYTES: usize = 64 * 1024 * 1024;
    /// Longest script body.
    pub const MAX_SCRIPT_BYTES: usize = 1024 * 1024;
    /// Scripts EVAL keeps in the replicated cache; past it the oldest EVAL'd one is
    /// dropped (Redis 7.4 evicts EVAL scripts past 500 too). SCRIPT LOAD'ed ones stay.
    pub const MAX_EVAL_SCRIPTS: usize = 500;
    /// Scripts SCRIPT LOAD may keep; past it SCRIPT LOAD is refused until SCRIPT FLUSH.
    pub const MAX_LOADED_SCRIPTS: usize = 10_000;
    /// Recent key removals remembered for WATCH (a removal older than these makes an EXEC
    /// that watched a missing key fail, never succeed wrongly). Persisted with every entry,
    /// so kept small.
    pub const MAX_TRACKED_REMOVALS: usize = 128;
    /// Most commands one MULTI may queue before EXEC.
    pub const MAX_QUEUED_COMMANDS: usize = 10_000;
    /// Compiled script functions a node keeps; past it the cache starts over (a node-local
    /// cost only).
    pub const MAX_COMPILED_SCRIPTS: usize = 1000;
    /// Most members one SRANDMEMBER with a negative count may draw (Redis has no bound:
    /// it streams the reply, where raftlock builds it whole).
    pub const MAX_RANDOM_MEMBERS: usize = 1 << 20;
    /// Most elements in one script reply.
    pub const MAX_SCRIPT_REPLY_ELEMENTS: usize = 1 << 20;
    /// Once the Lua heap has grown this much since the last full collection (one script's
    /// garbage, or many scripts' together), a full collection follows the script, so the
    /// heap a node carries between scripts stays small.
    pub const LUA_COLLECT_AFTER_BYTES: usize = 4 * 1024 * 1024;
    /// Once the Lua heap has grown this much since the collector's last incremental step,
    /// the next script is followed by one step, which works through about 2 KB (Lua 5.1's
    /// step size times its multiplier). Scripts that leave less garbage share a step.
    /// Measured with scripts the size of the Redlock release: 200k runs keep the heap
    /// within about 110 KB of its start on steps alone, and a step every 1 KB made a SET NX
    /// PX plus that release about 5-9% slower to apply (`examples/apply_bench.rs`).
    pub const LUA_STEP_AFTER_BYTES: usize = 4096;
    /// Redis's `proto-max-bulk-len` default: APPEND refuses to grow a string beyond it.
    pub const MAX_STRING_BYTES: usize = 512 * 1024 * 1024;
    /// Largest LCS table (cells, one per pair of prefixes: (len a + 1) x (len b + 1), 4
    /// bytes each; 64 MiB): LCS of longer strings is refused rather than let one command
    /// stall every replica's apply. Redis has no such limit.
    pub const MAX_LCS_CELLS: usize = 16 * 1024 * 1024;
    /// Deepest glob nesting (one level per `*` that had to be tried): deeper fails the
    /// match, as in Redis, so a hostile pattern cannot exhaust the stack.
    pub const MAX_GLOB_NESTING: u32 = 1000;
    /// The longest expiry grace one epoch op may ask for: a bound on how long a wrong value
    /// could freeze expiry.
    pub const MAX_EPOCH_GRACE_MS: u64 = 60_000;
    /// The longest session timeout an op may carry (`Config::session_timeout_ms`): a bound
    /// on how long a wrong value could keep a dead client's wait queued.
    pub const MAX_SESSION_TIMEOUT_MS: u64 = 3_600_000;
    /// The replay window docs/LOCKS.md recommends for Redlock clients pointed at every
    /// node of a cluster (`Config::redlock_replay_window_ms`, off by default): how long
    /// after a write carrying a lock token an identical copy sent to another node is
    /// answered as the write was (`state::replay`).
    pub const REPLAY_WINDOW_MS: u64 = 5_000;
    /// The longest replay window a node may be configured with: copies of one request
    /// arrive within a client's request timeout.
    pub const MAX_REPLAY_WINDOW_MS: u64 = 60_000;
    /// Writes the replay cache remembers at most (a node-local cost only).
    pub const MAX_REPLAY_ENTRIES: usize = 10_000;
    /// Largest request (all arguments) the replay cache keeps.
    pub const MAX_REPLAY_REQUEST_BYTES: usize = 4096;
    /// Largest string in a reply the replay cache keeps.
    pub const MAX_REPLAY_REPLY_BYTES: usize = 1024;
}

/// Time limits of cluster administration (RAFT.NODE, RAFT.TRANSFER-LEADER).
/// ACL limits: the node's ACL LOG and the brake on guessing passwords.
pub mod acl_limits {
    /// Most entries ACL LOG keeps (Redis's `acllog-max-len`, 128).
    pub const ACLLOG_MAX_LEN: usize = 128;
    /// A connection's failed AUTH (or HELLO ... AUTH) is answered after this delay,
    /// doubled for each further failure on the connection (`auth_failure_delay_ms`).
    pub const AUTH_FAILURE_DELAY_MS: u64 = 100;
    /// The most a failed AUTH is delayed, however many failures came before.
    pub const AUTH_FAILURE_DELAY_MAX_MS: u64 = 2_000;
    /// Bytes of an ACL file read at most (ACL LOAD, `--aclfile`).
    pub const MAX_ACLFILE_BYTES: u64 = 4 * 1024 * 1024;
    /// How often a node with `--aclfile` looks whether it leads, to seed the users.
    pub const SEED_POLL_MS: u64 = 200;

    /// The delay before answering the `failures`-th failed AUTH of a connection.
    pub fn auth_failure_delay_ms(failures: u32) -> u64 {
        let doublings = failures.saturating_sub(1).min(16);
        AUTH_FAILURE_DELAY_MS
            .saturating_mul(1 << doublings)
            .min(AUTH_FAILURE_DELAY_MAX_MS)
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn the_auth_delay_doubles_with_each_failure_up_to_its_cap() {
            let delays: Vec<u64> = (1..=7).map(auth_failure_delay_ms).collect();
            assert_eq!(delays, [100, 200, 400, 800, 1600, 2000, 2000]);
            assert_eq!(auth_failure_delay_ms(u32::MAX), AUTH_FAILURE_DELAY_MAX_MS);
        }
    }
}

pub mod cluster_admin {
    use std::time::Duration;

    /// How long a new node may take to catch up before RAFT.NODE ADD makes it a voter.
    pub const CATCH_UP_TIMEOUT: Duration = Duration::from_secs(60);
    /// How long a leadership transfer may take.
    pub const TRANSFER_TIMEOUT: Duration = Duration::from_secs(5);
    /// The longest RAFT.HOLD-ELECTIONS, and the hold a transfer asks for (as long as the
    /// transfer may take). A hold that outlives its transfer (the leader that asked died,
    /// say) delays an election by at most this much.
    pub const MAX_ELECTION_HOLD: Duration = Duration::from_secs(5);
    /// How often a node asked to lead starts a new election while it has not won.
    pub const ELECT_RETRY: Duration = Duration::from_millis(100);
    /// How long a leader waits for another follower to take up RAFT.HOLD-ELECTIONS.
    pub const HOLD_REQUEST_TIMEOUT: Duration = Duration::from_millis(500);
    /// How long a transferring leader waits for the writes in flight to commit (longer,
    /// and the transfer is refused), and then for the target to have every entry (longer,
    /// and it asks the target to stand anyway).
    pub const TRANSFER_CATCH_UP: Duration = Duration::from_secs(1);
}

/// Fixed parts of a graceful shutdown (`Config::shutdown_timeout_ms` bounds the whole).
/// A size as redis.conf writes it (`maxmemory 2gb`): a number of bytes, or with `k`,
/// `m`, `g` (powers of 1000) or `kb`, `mb`, `gb` (powers of 1024), in any case.
pub fn parse_memory(text: &str) -> Option<u64> {
    let lower = text.to_ascii_lowercase();
    let digits_end = lower
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(lower.len());
    let (number, unit) = lower.split_at(digits_end);
    let number: u64 = number.parse().ok()?;
    let multiplier: u64 = match unit {
        "" | "b" => 1,
        "k" => 1000,
        "kb" => 1024,
        "m" => 1000 * 1000,
        "mb" => 1024 * 1024,
        "g" => 1000 * 1000 * 1000,
        "gb" => 1024 * 1024 * 1024,
        _ => return None,
    };
    number.checked_mul(multiplier)
}

/// `maxmemory` (`server::memory_guard`).
pub mod memory_limits {
    /// How often the node's resident memory is compared with `maxmemory`, in ms.
    pub const CHECK_INTERVAL_MS: u64 = 100;
}

/// How a connection reads a client's pipeline.
pub mod pipeline {
    /// While replies are owed, a connection reads on what the client has already sent,
    /// without waiting, up to this many bytes (1 MiB) before it waits for those replies:
    /// enough to fill the next entries with small requests, while a pipeline of large
    /// values still goes to the log a few at a time (an entry of tens of megabytes would
    /// hold up the heartbeats behind it).
    pub const READ_AHEAD_BYTES: usize = 1024 * 1024;
}

pub mod shutdown {
    use std::time::Duration;

    /// Once the writes in flight have committed, how long the connections are given to
    /// send their replies before the node stops (loopback and LAN writes take far less).
    pub const REPLY_DRAIN: Duration = Duration::from_millis(200);
}

/// What SLOWLOG keeps of a request's arguments: Redis's fixed limits, so the entries
/// read as Redis's do.
pub mod slowlog_entry {
    /// Arguments kept (Redis `SLOWLOG_ENTRY_MAX_ARGC`); the last one kept then says how
    /// many more there were.
    pub const MAX_ARGS: usize = 32;
    /// Bytes kept of one argument (Redis `SLOWLOG_ENTRY_MAX_STRING`).
    pub const MAX_ARG_BYTES: usize = 128;
}

/// How the Raft transport notices a connection that has stalled (a partition that drops
/// packets closes nothing) and a peer that is out of reach.
pub mod raft_transport {
    use std::time::Duration;

    /// A connection to a peer that has received nothing for this long when a call on it
    /// times out is closed, and the next call connects anew. Left alone, a stalled
    /// connection resumes only when TCP retransmits, at intervals that double up to
    /// minutes: after a 10 s partition, 3-6 s later.
    pub const LINK_STALL: Duration = Duration::from_millis(500);
    /// TCP_USER_TIMEOUT of every Raft connection, both ends: the kernel drops a connection
    /// whose sent data stays unacknowledged this long.
    pub const TCP_USER_TIMEOUT: Duration = Duration::from_secs(2);
    /// TCP keepalive of every Raft connection: a connection idle this long (whole seconds)
    /// is probed, so one whose peer vanished is dropped too (after `TCP_USER_TIMEOUT`).
    pub const KEEPALIVE_IDLE: Duration = Duration::from_secs(1);
    /// Time between keepalive probes (whole seconds: the kernel counts in seconds).
    pub const KEEPALIVE_INTERVAL: Duration = Duration::from_secs(1);
    /// How long the handshake that opens every Raft connection (`raft::handshake`: wire
    /// version, cluster id, cluster secret) may take, either end.
    pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
    /// A refused handshake is logged at most once per peer address in this long: a
    /// leader retries a refused follower at every heartbeat.
    pub const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);
    /// Longest cluster id (`--cluster-id`), in bytes.
    pub const MAX_CLUSTER_ID_BYTES: usize = 64;
}

/// How much memory fjall (the Raft log, its marks and the latest snapshot) may keep.
/// fjall's defaults (a 64 MiB memtable per keyspace, kept until flushed, plus sealed ones
/// waiting for the flush, and a 32 MiB block cache) cost well over 100 MB of RSS under a
/// write load; the snapshot is read only at start-up and the log is read back while
/// still in the memtable, so small buffers cost little.
pub mod storage_memory {
    /// Block cache shared by every keyspace, in bytes.
    pub const CACHE_BYTES: u64 = 8 * 1024 * 1024;
    /// Memtable size of the state keyspace (snapshots, votes, marks) at which it is sealed
    /// and flushed to a table on disk, in bytes.
    pub const MEMTABLE_BYTES: u64 = 8 * 1024 * 1024;
    /// The same for the Raft log's keyspace, which every write passes through. Each flush
    /// writes and fsyncs a table, and the log's own fsync that meets it waits several
    /// milliseconds: at 8 MB that was about once a second under load. 32 MB flushes a
    /// quarter as often; measured in alternating runs of `raftlock bench -t lock -c 64`,
    /// p99.9 8.8-9.8 ms against 9.6-14.0 ms and slightly more ops/s, for about 24 MB more
    /// memory under load.
    pub const LOG_MEMTABLE_BYTES: u64 = 32 * 1024 * 1024;
    /// Most bytes (as encoded in the log) of recently appended Raft entries each group
    /// keeps in memory, so that applying them does not read them back from fjall and
    /// decode them again. Entries beyond it are read from the log, as before.
    pub const LOG_CACHE_BYTES: usize = 16 * 1024 * 1024;
    /// How long memory the allocator (mimalloc) has freed stays mapped for reuse before it
    /// is returned to the operating system, in milliseconds (mimalloc's `purge_delay`,
    /// 1000 by default). At 1 s a busy node returned and faulted back in (zeroed) several
    /// hundred pages a second, about 3% of its CPU; the environment variable
    /// `MIMALLOC_PURGE_DELAY` overrides it.
    pub const ALLOCATOR_PURGE_DELAY_MS: i64 = 60_000;
    /// Whether a node lets the kernel back its memory with transparent huge pages (2 MiB
    /// pages, which mimalloc asks for). Off: with a million locks, each snapshot's copy of
    /// the state (about 120 MB, made on the node's one thread) took 300-470 ms with them,
    /// most of it the kernel faulting in and zeroing huge pages, and 80-130 ms without.
    /// When `MIMALLOC_ALLOW_THP` is set in the environment, mimalloc's option decides
    /// instead (`MIMALLOC_ALLOW_THP=1` turns them back on).
    pub const TRANSPARENT_HUGE_PAGES: bool = false;
}

/// When a group snapshots besides every `Config::snapshot_every_entries` entries: by the
/// bytes its log grew, while its state is small. Entries behind a snapshot are purged, and
/// an entry purged while its memtable is still in memory is never written to a table:
/// fjall's flush keeps only the removal. Otherwise every entry went through a table flush
/// and later compactions, whose writes made the log's fsync wait 50-95 ms at times (seen in
/// `scripts/bench.sh`'s later rounds; 6 ms at most with this pace).
pub mod snapshot_pace {
    /// A snapshot is built once this many bytes of entries (as encoded in the log) were
    /// appended since the last one: an eighth of `storage_memory::LOG_MEMTABLE_BYTES`, so
    /// most entries are purged before their memtable fills.
    pub const LOG_BYTES: u64 = 4 * 1024 * 1024;
    /// ... or this many times the last snapshot's size, if more: a state is not written
    /// out again for a log much smaller than itself.
    pub const SNAPSHOT_SIZE_FACTOR: u64 = 4;
    /// Pacing stops when that exceeds this many bytes of log (half of
    /// `storage_memory::LOG_MEMTABLE_BYTES`): the entries would reach a table before the
    /// purge anyway, and copying a large state (about 20 ms for 100k keys, on the apply
    /// path) would cost more than it saves. `Config::snapshot_every_entries` still holds.
    pub const MAX_PACED_LOG_BYTES: u64 = 16 * 1024 * 1024;
    /// How often a group checks its log's growth, in milliseconds.
    pub const CHECK_INTERVAL_MS: u64 = 100;
    /// A purge of at most this many entries removes them by key, without reading them:
    /// a scan for what exists read the entries already flushed to tables back from disk,
    /// on the node's one thread. A longer range (a follower that installed a snapshot far
    /// ahead of its log) is scanned, so it does not write removals for missing entries.
    pub const PURGE_BY_KEY_MAX_ENTRIES: u64 = 65_536;
}

mod tls;
pub use tls::{
    parse_tls_auth_clients, parse_yes_no, read_secret_file, tls_limits, TlsAuthClients, TlsSettings,
};

/// The metrics and live-page listener (`Config::metrics_listen`, `server::metrics`).
pub mod metrics_limits {
    /// Holds whose start a node remembers to time them (`raftlock_lock_hold_duration_seconds`):
    /// 16-32 bytes of node-local memory each. Holds granted past it are counted but not
    /// timed.
    pub const MAX_TIMED_HOLDS: usize = 1_000_000;
    /// Locks the live page lists (the busiest: most waiters, then most holders).
    pub const PAGE_LOCKS: usize = 20;
    /// Waiters the live page lists for one lock (in queue order; it counts them all).
    pub const PAGE_WAITERS_PER_LOCK: usize = 10;
    /// Locks the live page looks at to find the busiest, under the keyspace's read lock
    /// (which apply waits for): the locks with waiters first, then held ones.
    pub const PAGE_SCAN_LOCKS: usize = 10_000;
    /// How often the live page's event stream sends the node's view when it changed, in
    /// milliseconds.
    pub const PAGE_EVENTS_INTERVAL_MS: u64 = 200;
    /// The event stream's keep-alive comment when nothing changed, in milliseconds.
    pub const PAGE_KEEPALIVE_MS: u64 = 15_000;
    /// Most HTTP connections the listener serves at once; more wait to be accepted.
    pub const MAX_HTTP_CONNECTIONS: usize = 64;
    /// How long an HTTP request's head may take to arrive, in milliseconds.
    pub const HTTP_HEADER_TIMEOUT_MS: u64 = 5_000;
}

/// A cluster member as `--initial-cluster` names it: `ID=CLIENT_ADDR/RAFT_ADDR`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Member {
    pub client_addr: SocketAddr,
    pub raft_addr: SocketAddr,
}

/// Limits on what a client may send, with Redis's defaults.
#[derive(Clone, Debug)]
pub struct RespLimits {
    /// Largest bulk string argument (Redis `proto-max-bulk-len`, 512 MB).
    pub max_bulk_bytes: usize,
    /// Most arguments in one multibulk request (Redis accepts up to 2^31-1 once
    /// authenticated; 1M bounds what one request can make the server allocate).
    pub max_multibulk_len: usize,
    /// Longest inline command line (Redis `PROTO_INLINE_MAX_SIZE`, 64 KB).
    pub max_inline_bytes: usize,
}

impl Default for RespLimits {
    fn default() -> Self {
        RespLimits {
            max_bulk_bytes: 512 * 1024 * 1024,
            max_multibulk_len: 1024 * 1024,
            max_inline_bytes: 64 * 1024,
        }
    }
}

#[derive(Clone, Debug)]
pub struct Config {
    pub id: u64,
    pub listen: SocketAddr,
    pub raft_listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Voters that bootstrap the cluster on first start, by id.
    pub initial_cluster: BTreeMap<u64, Member>,
    /// Start empty and wait to be added by `RAFT.NODE ADD` on the cluster's leader,
    /// rather than bootstrap a cluster.
    pub join: bool,
    /// The master name SENTINEL commands answer for.
    pub sentinel_master_name: String,
    pub requirepass: Option<String>,
    /// Redis's ACL file (`user <name> <rules...>` lines): seeds the replicated users once,
    /// and is what ACL LOAD reads and ACL SAVE writes.
    pub aclfile: Option<PathBuf>,
    pub resp: RespLimits,
    /// Most client connections at once (Redis `maxclients`, 10000).
    pub max_clients: usize,
    /// Threads that run connections and Raft (tokio workers). 0, the default, is `auto`
    /// (`Config::runtime_threads`): one thread for a node that is its own cluster, one
    /// per core for a member of a larger one.
    pub threads: usize,
    /// Most client commands gathered into one Raft entry (the group commit).
    pub max_ops_per_entry: usize,
    /// Most Raft entries proposed and not yet applied at once. One is the default: with
    /// openraft 0.9 each entry costs its own append and fsync, so letting writes gather
    /// behind the entry in flight makes fewer, larger entries (measured: 1 beat 4 and 16).
    pub max_inflight_entries: usize,
    /// Turns (yields) of the runtime the proposer may take, while fewer writes wait than
    /// the last entry carried, before it proposes the next entry: a few microseconds each,
    /// enough for clients answered by the last entry to have their next writes read into
    /// this one. 0 proposes at once.
    pub proposal_linger_yields: usize,
    /// Most commands waiting for the proposer before new ones are pushed back.
    pub proposal_queue_len: usize,
    /// How often the leader checks for passed deadlines when nothing else is written.
    pub expiry_tick_ms: u64,
    /// While any key, lease or wait has a deadline, the longest the leader goes without
    /// stamping an entry. Cluster time stands still between entries as far as a new
    /// leader knows (it continues from the last entry's time), so this bounds how much
    /// later than due a failover makes a lease end.
    pub time_checkpoint_ms: u64,
    /// How far (ms) the leader's wall clock may move from the wall-clock offset the state
    /// holds before the next entry carries it again (`state::wall`): the error allowed in
    /// where an EXPIREAT or PXAT lands. Leases never depend on it.
    pub wall_offset_tolerance_ms: u64,
    /// Raft heartbeat interval.
    pub heartbeat_interval_ms: u64,
    /// How long the leader holds back a follower's news of a new commit index when it has
    /// no entries to send it, so that the next entry carries it rather than a message of
    /// its own. Under load that halves the messages per entry; when writes stop, followers
    /// apply the last entry (and their subscribers hear its messages) this much later.
    pub commit_notify_delay_ms: u64,
    /// Raft election timeout range.
    pub election_timeout_min_ms: u64,
    pub election_timeout_max_ms: u64,
    /// A snapshot is built after this many applied entries since the last one.
    pub snapshot_every_entries: u64,
    /// Entries kept in the log behind a snapshot, for slow followers.
    pub log_entries_kept_after_snapshot: u64,
    /// How long a command waits for a leader before failing with NOLEADER.
    pub leader_wait_ms: u64,
    /// How long a proposed write may take to commit before it is answered TRYAGAIN (a
    /// leader cut off from its majority never commits).
    pub commit_timeout_ms: u64,
    /// Most replies one connection may owe before its further requests wait to be read
    /// (bounds the memory a pipelining client can pin).
    pub max_pending_replies_per_client: usize,
    /// Most bytes of messages queued for one subscriber before it is disconnected (Redis
    /// `client-output-buffer-limit pubsub`, whose hard limit is 32 MB).
    pub pubsub_output_limit_bytes: usize,
    /// Below this many free bytes on the data dir's disk, client writes are refused with
    /// MISCONF (reads go on) until space is freed: room for the log to reach its next
    /// flush and a snapshot to be written. 0 turns the check off.
    pub min_free_disk_bytes: u64,
    /// How often the data dir's free space is measured.
    pub disk_check_interval_ms: u64,
    /// How long a client may be gone before its session ends (README "Locks"): TCP
    /// keepalive closes a connection whose peer stops answering within about this long
    /// (`Config::keepalive`), and after a leader change a waiter queued through the old
    /// leader keeps its place this long for its client to send its request again. Carried
    /// in each lock op, so the node that made a session decides its timeout.
    pub session_timeout_ms: u64,
    /// Redlock on the nodes of one cluster (`state::replay`, docs/LOCKS.md): how long
    /// after a write that carries a lock token an identical copy that finds its keys
    /// unchanged and changes nothing is answered as the write was. 0: every copy is
    /// answered as Redis would (SET NX of a taken key: nil), the default.
    pub redlock_replay_window_ms: u64,
    /// Whether the plain (non-TLS) client port on `listen` is open (Redis's `port 0`
    /// closes it).
    pub plain_port: bool,
    pub tls: TlsSettings,
    /// The secret every node of the cluster shares: each Raft connection opens with a
    /// challenge-response on it (`raft::handshake`). None: the Raft port is
    /// unauthenticated (a warning at start).
    pub cluster_secret: Option<String>,
    /// The cluster's id, when given (`--cluster-id`); otherwise derived at bootstrap
    /// (`raft::cluster_id`). Kept in the data dir either way.
    pub cluster_id: Option<String>,
    /// Redis's `notify-keyspace-events` at start (`state::notify`): the classes of
    /// keyspace notifications this node publishes, `""` for none (the default). CONFIG
    /// SET changes it while the node runs.
    pub notify_keyspace_events: String,
    /// Redis's `protected-mode`: while the `default` user needs no password, clients
    /// from other hosts (not the cluster's members) are refused with `-DENIED`. On by
    /// default, as in Redis; CONFIG SET changes it.
    pub protected_mode: bool,
    /// Redis's `maxmemory`, in bytes (0, the default: no limit): while the node's resident
    /// memory is over it, commands that add data answer `-OOM` (the `noeviction` policy;
    /// nothing is evicted). CONFIG SET changes it.
    pub maxmemory: u64,
    /// The file `--config` named, which CONFIG REWRITE updates (absolute).
    pub config_file: Option<PathBuf>,
    /// Where to serve Prometheus metrics (`/metrics`) and the live page (`/`, `/events`)
    /// over HTTP; `None`, the default, serves neither.
    pub metrics_listen: Option<SocketAddr>,
    /// The longest a graceful shutdown (SIGTERM, SIGINT, SHUTDOWN) may take, in
    /// milliseconds: handing leadership over, the writes in flight committing and their
    /// replies sent, the log flushed. Past it the node exits anyway (still with every
    /// acknowledged write on a majority's disks).
    pub shutdown_timeout_ms: u64,
    /// Requests that take at least this long, in microseconds, are kept in the node's
    /// SLOWLOG (Redis `slowlog-log-slower-than`; negative: none, 0: every request).
    pub slowlog_log_slower_than_us: i64,
    /// Most requests SLOWLOG keeps, the oldest dropped first (Redis `slowlog-max-len`).
    pub slowlog_max_len: usize,
    /// Requests that take at least this long, in microseconds, are logged as a warning
    /// with their arguments (negative: none).
    pub slowlog_warn_slower_than_us: i64,
}

/// TCP keepalive for client and relay connections, derived from `session_timeout_ms`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Keepalive {
    /// Silence before the first probe.
    pub idle: Duration,
    /// Between probes.
    pub interval: Duration,
    /// Probes unanswered before the kernel closes the connection.
    pub retries: u32,
    /// How long sent data may stay unacknowledged before the kernel closes the connection
    /// (`TCP_USER_TIMEOUT`): keepalive probes only an idle connection.
    pub user_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            id: 1,
            listen: "127.0.0.1:6379".parse().expect("literal address"),
            raft_listen: "127.0.0.1:16379".parse().expect("literal address"),
            data_dir: PathBuf::from("raftlock-data"),
            initial_cluster: BTreeMap::new(),
            join: false,
            sentinel_master_name: "raftlock".into(),
            requirepass: None,
            aclfile: None,
            resp: RespLimits::default(),
            max_clients: 10_000,
            threads: 0,
            max_ops_per_entry: 1024,
            max_inflight_entries: 1,
            proposal_linger_yields: 16,
            proposal_queue_len: 65_536,
            expiry_tick_ms: 50,
            time_checkpoint_ms: 1_000,
            wall_offset_tolerance_ms: 10,
            heartbeat_interval_ms: 100,
            commit_notify_delay_ms: 2,
            election_timeout_min_ms: 300,
            election_timeout_max_ms: 600,
            snapshot_every_entries: 50_000,
            log_entries_kept_after_snapshot: 1_000,
            leader_wait_ms: 3_000,
            commit_timeout_ms: 5_000,
            max_pending_replies_per_client: 4_096,
            pubsub_output_limit_bytes: 32 * 1024 * 1024,
            min_free_disk_bytes: 128 * 1024 * 1024,
            disk_check_interval_ms: 250,
            session_timeout_ms: 10_000,
            redlock_replay_window_ms: 0,
            plain_port: true,
            tls: TlsSettings::default(),
            cluster_secret: None,
            cluster_id: None,
            notify_keyspace_events: String::new(),
            protected_mode: true,
            maxmemory: 0,
            config_file: None,
            metrics_listen: None,
            shutdown_timeout_ms: 10_000,
            slowlog_log_slower_than_us: 10_000,
            slowlog_max_len: 128,
            slowlog_warn_slower_than_us: 1_000_000,
        }
    }
}

/// The longest SLOWLOG a node may keep (`Config::slowlog_max_len`), in entries.
pub const MAX_SLOWLOG_LEN: usize = 1_000_000;

/// The shortest `session_timeout_ms`: the kernel counts keepalive times in whole seconds,
/// and needs one of silence and one probe.
pub const MIN_SESSION_TIMEOUT_MS: u64 = 2_000;

impl Config {
    /// The members that bootstrap the cluster: `--initial-cluster`, or this node alone;
    /// none for a node that waits to be added (`--join`).
    /// The runtime's worker threads. One thread keeps every hand-off between a connection,
    /// the proposer, Raft and apply on one thread, as Redis's one event loop does: measured
    /// on 2 cores with 64 clients, a single node served 10-40% more lock pairs and 25-40%
    /// more contended grants than with two. A node with peers gets one per core instead, so
    /// a long apply (a script near its budget, a snapshot of a large keyspace) never holds
    /// up its heartbeats and votes (on a 3-node cluster, one thread was only ~4% faster).
    pub fn runtime_threads(&self) -> usize {
        if self.threads > 0 {
            return self.threads;
        }
        let alone = !self.join && self.initial_cluster.len() <= 1;
        if alone {
            1
        } else {
            std::thread::available_parallelism().map_or(2, |n| n.get())
        }
    }

    /// Keepalive that closes a connection whose peer stopped answering about
    /// `session_timeout_ms` after it last heard from it: half of it silent, the rest
    /// probing (at least one probe; the kernel counts whole seconds). 10 s: 5 s, then five
    /// probes a second apart.
    pub fn keepalive(&self) -> Keepalive {
        let total_s = (self.session_timeout_ms / 1000).max(2);
        let idle_s = total_s / 2;
        let probing_s = total_s - idle_s;
        let interval_s = (probing_s / 3).max(1);
        Keepalive {
            idle: Duration::from_secs(idle_s),
            interval: Duration::from_secs(interval_s),
            retries: u32::try_from(probing_s / interval_s).unwrap_or(u32::MAX),
            user_timeout: Duration::from_millis(self.session_timeout_ms),
        }
    }

    pub fn bootstrap_members(&self) -> Option<BTreeMap<u64, Member>> {
        if self.join {
            None
        } else if self.initial_cluster.is_empty() {
            Some(BTreeMap::from([(
                self.id,
                Member {
                    client_addr: self.client_addr(),
                    raft_addr: self.raft_listen,
                },
            )]))
        } else {
            Some(self.initial_cluster.clone())
        }
    }

    pub fn validate(&self) -> anyhow::Result<()> {
        if self.id == 0 {
            bail!("--id must be a positive integer");
        }
        if !self.initial_cluster.is_empty() {
            let me = self.initial_cluster.get(&self.id).with_context(|| {
                format!(
                    "--initial-cluster does not list this node's --id {}",
                    self.id
                )
            })?;
            if me.client_addr != self.client_addr() || me.raft_addr != self.raft_listen {
                bail!(
                    "--initial-cluster gives node {} the addresses {}/{}, but --listen/--raft-listen say {}/{}",
                    self.id, me.client_addr, me.raft_addr, self.client_addr(), self.raft_listen
                );
            }
        }
        if self.join && !self.initial_cluster.is_empty() {
            bail!("--join and --initial-cluster exclude each other: a joining node is added by RAFT.NODE ADD");
        }
        if self.sentinel_master_name.is_empty()
            || !self
                .sentinel_master_name
                .bytes()
                .all(|b| b.is_ascii_graphic())
        {
            bail!("--sentinel-master-name must be non-empty, without spaces or control characters");
        }
        if self.listen == self.raft_listen {
            bail!("--listen and --raft-listen must differ");
        }
        self.tls.validate(self.plain_port, self.listen.port())?;
        if let Some(id) = &self.cluster_id {
            crate::raft::cluster_id::check_text(id)?;
        }
        if self.cluster_secret.as_deref() == Some("") {
            bail!("--cluster-secret must not be empty");
        }
        if crate::state::notify::parse_classes(self.notify_keyspace_events.as_bytes()).is_none() {
            bail!(
                "notify-keyspace-events '{}': invalid event class character; use 'Ag$lshzxeKEtmdn'",
                self.notify_keyspace_events
            );
        }
        if let Some(metrics) = self.metrics_listen {
            if metrics == self.listen || metrics == self.raft_listen {
                bail!("--metrics-listen must differ from --listen and --raft-listen");
            }
        }
        if self.redlock_replay_window_ms > state_limits::MAX_REPLAY_WINDOW_MS {
            bail!(
                "--redlock-replay-window-ms must be at most {}",
                state_limits::MAX_REPLAY_WINDOW_MS
            );
        }
        if self.election_timeout_min_ms <= self.heartbeat_interval_ms
            || self.election_timeout_max_ms <= self.election_timeout_min_ms
        {
            bail!("need heartbeat_interval_ms < election_timeout_min_ms < election_timeout_max_ms");
        }
        if self.commit_notify_delay_ms >= self.heartbeat_interval_ms {
            bail!("need commit_notify_delay_ms < heartbeat_interval_ms");
        }
        if self.max_ops_per_entry == 0
            || self.max_inflight_entries == 0
            || self.max_clients == 0
            || self.max_pending_replies_per_client == 0
            || self.pubsub_output_limit_bytes == 0
        {
            bail!("max_ops_per_entry, max_inflight_entries, max_clients, max_pending_replies_per_client and pubsub_output_limit_bytes must be positive");
        }
        if self.slowlog_max_len > MAX_SLOWLOG_LEN {
            bail!("--slowlog-max-len must be at most {MAX_SLOWLOG_LEN}");
        }
        if self.shutdown_timeout_ms == 0 {
            bail!("--shutdown-timeout-ms must be positive");
        }
        if !(MIN_SESSION_TIMEOUT_MS..=state_limits::MAX_SESSION_TIMEOUT_MS)
            .contains(&self.session_timeout_ms)
        {
            bail!(
                "--session-timeout-ms must be {MIN_SESSION_TIMEOUT_MS} to {} ms",
                state_limits::MAX_SESSION_TIMEOUT_MS
            );
        }
        Ok(())
    }
}

/// Parses `--initial-cluster 1=127.0.0.1:7001/127.0.0.1:8001,2=...`.
pub fn parse_initial_cluster(text: &str) -> anyhow::Result<BTreeMap<u64, Member>> {
    let mut members = BTreeMap::new();
    for item in text.split(',').filter(|s| !s.trim().is_empty()) {
        let (id, addrs) = item
            .split_once('=')
            .with_context(|| format!("'{item}' is not ID=CLIENT_ADDR/RAFT_ADDR"))?;
        let id: u64 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id > 0)
            .with_context(|| format!("'{id}' is not a positive node id"))?;
        let (client, raft) = addrs
            .split_once('/')
            .with_context(|| format!("'{item}' is not ID=CLIENT_ADDR/RAFT_ADDR"))?;
        let member = Member {
            client_addr: client
                .trim()
                .parse()
                .with_context(|| format!("'{client}' is not an IP:PORT address"))?,
            raft_addr: raft
                .trim()
                .parse()
                .with_context(|| format!("'{raft}' is not an IP:PORT address"))?,
        };
        if members.insert(id, member).is_some() {
            bail!("node id {id} appears twice in --initial-cluster");
        }
    }
    if members.is_empty() {
        bail!("--initial-cluster lists no nodes");
    }
    Ok(members)
}

#[cfg(test)]
mod tests {
    #[test]
    fn memory_sizes_read_as_redis_conf_writes_them() {
        assert_eq!(super::parse_memory("1024"), Some(1024));
        assert_eq!(super::parse_memory("2gb"), Some(2 << 30));
        assert_eq!(super::parse_memory("100MB"), Some(100 << 20));
        assert_eq!(super::parse_memory("5k"), Some(5000));
        assert_eq!(super::parse_memory("1m"), Some(1_000_000));
        for bad in [
            "",
            "mb",
            "1.5gb",
            "10 mb",
            "-1",
            "1tb",
            "99999999999999999999gb",
        ] {
            assert_eq!(super::parse_memory(bad), None, "{bad:?}");
        }
    }

    use super::*;

    #[test]
    fn auto_threads_are_one_alone_and_one_per_core_in_a_cluster() {
        let alone = Config::default();
        assert_eq!(alone.runtime_threads(), 1);
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        let member = Config {
            initial_cluster: parse_initial_cluster(
                "1=127.0.0.1:7001/127.0.0.1:8001,2=127.0.0.1:7002/127.0.0.1:8002",
            )
            .unwrap(),
            ..Config::default()
        };
        assert_eq!(member.runtime_threads(), cores);
        let joining = Config {
            join: true,
            ..Config::default()
        };
        assert_eq!(joining.runtime_threads(), cores);
        let explicit = Config {
            threads: 3,
            ..member
        };
        assert_eq!(explicit.runtime_threads(), 3);
    }

    #[test]
    fn initial_cluster_parses_members() {
        let m = parse_initial_cluster(
            "1=127.0.0.1:7001/127.0.0.1:8001,2=127.0.0.1:7002/127.0.0.1:8002",
        )
        .unwrap();
        assert_eq!(m.len(), 2);
        assert_eq!(m[&2].raft_addr, "127.0.0.1:8002".parse().unwrap());
    }

    #[test]
    fn initial_cluster_rejects_bad_values() {
        assert!(parse_initial_cluster("").is_err());
        assert!(parse_initial_cluster("x=127.0.0.1:1/127.0.0.1:2").is_err());
        assert!(parse_initial_cluster("0=127.0.0.1:1/127.0.0.1:2").is_err());
        assert!(parse_initial_cluster("1=127.0.0.1:1").is_err());
        assert!(parse_initial_cluster("1=nohost/127.0.0.1:2").is_err());
        assert!(
            parse_initial_cluster("1=127.0.0.1:1/127.0.0.1:2,1=127.0.0.1:3/127.0.0.1:4").is_err()
        );
    }

    #[test]
    fn keepalive_gives_up_on_a_silent_peer_within_the_session_timeout() {
        let keepalive = |session_timeout_ms| {
            let k = Config {
                session_timeout_ms,
                ..Config::default()
            }
            .keepalive();
            (k.idle.as_secs(), k.interval.as_secs(), k.retries)
        };
        assert_eq!(keepalive(10_000), (5, 1, 5));
        assert_eq!(keepalive(2_000), (1, 1, 1));
        assert_eq!(keepalive(3_500), (1, 1, 2));
        assert_eq!(keepalive(60_000), (30, 10, 3));
        for ms in [2_000, 2_500, 10_000, 61_000, 3_600_000] {
            let (idle, interval, retries) = keepalive(ms);
            let gives_up_s = idle + interval * u64::from(retries);
            // Never later than the timeout, and less than one probe interval earlier.
            assert!(gives_up_s * 1000 <= ms, "{ms}");
            assert!((gives_up_s + interval) * 1000 > ms, "{ms}");
        }
        for (ms, valid) in [
            (1_999, false),
            (2_000, true),
            (3_600_000, true),
            (3_600_001, false),
        ] {
            let c = Config {
                session_timeout_ms: ms,
                ..Config::default()
            };
            assert_eq!(c.validate().is_ok(), valid, "{ms}");
        }
    }

    #[test]
    fn validate_checks_own_entry() {
        let mut c = Config {
            initial_cluster: parse_initial_cluster("2=127.0.0.1:7002/127.0.0.1:8002").unwrap(),
            ..Config::default()
        };
        assert!(c.validate().is_err());
        c.id = 2;
        assert!(c.validate().is_err(), "addresses differ from --listen");
        c.listen = "127.0.0.1:7002".parse().unwrap();
        c.raft_listen = "127.0.0.1:8002".parse().unwrap();
        assert!(c.validate().is_ok());
    }

    #[test]
    fn tls_settings_are_checked_and_port_0_advertises_the_tls_port() {
        let with_cert = TlsSettings {
            port: Some(6380),
            cert_file: Some("node.crt".into()),
            key_file: Some("node.key".into()),
            ..TlsSettings::default()
        };
        let tls_only = Config {
            plain_port: false,
            tls: with_cert.clone(),
            ..Config::default()
        };
        assert!(tls_only.validate().is_ok());
        assert_eq!(tls_only.client_addr(), "127.0.0.1:6380".parse().unwrap());
        assert_eq!(
            tls_only.bootstrap_members().unwrap()[&1].client_addr.port(),
            6380
        );
        let both = Config {
            tls: with_cert.clone(),
            ..Config::default()
        };
        assert_eq!(both.client_addr(), both.listen);
        let err = |c: Config| format!("{:#}", c.validate().unwrap_err());
        assert!(err(Config {
            plain_port: false,
            ..Config::default()
        })
        .contains("give --tls-port"));
        assert!(err(Config {
            tls: TlsSettings {
                key_file: None,
                ..with_cert.clone()
            },
            ..Config::default()
        })
        .contains("go together"));
        assert!(err(Config {
            tls: TlsSettings {
                replication: true,
                ..with_cert.clone()
            },
            ..Config::default()
        })
        .contains("--tls-replication needs --tls-ca-cert-file"));
        assert!(err(Config {
            tls: TlsSettings {
                port: Some(6379),
                ..with_cert
            },
            ..Config::default()
        })
        .contains("must differ from the plain port"));
        assert_eq!(
            parse_tls_auth_clients("OPTIONAL").unwrap(),
            TlsAuthClients::Optional
        );
        assert!(parse_tls_auth_clients("maybe").is_err());
    }

    #[test]
    fn a_joining_node_bootstraps_nothing() {
        let single = Config::default();
        assert_eq!(single.bootstrap_members().map(|m| m.len()), Some(1));
        let joining = Config {
            join: true,
            ..Config::default()
        };
        assert!(joining.validate().is_ok());
        assert_eq!(joining.bootstrap_members(), None);
        let both = Config {
            id: 2,
            listen: "127.0.0.1:7002".parse().unwrap(),
            raft_listen: "127.0.0.1:8002".parse().unwrap(),
            initial_cluster: parse_initial_cluster("2=127.0.0.1:7002/127.0.0.1:8002").unwrap(),
            join: true,
            ..Config::default()
        };
        assert!(both.validate().is_err());
    }
}
