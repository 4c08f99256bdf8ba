//! The `raftlock` binary: `raftlock serve` runs a node, `raftlock bench` measures one.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Every command allocates a little (argument vectors, replies, channels); mimalloc's
/// per-thread free lists make that markedly cheaper than glibc's malloc on the hot path.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use raftlock::config::{self, Config};

#[derive(Parser)]
#[command(
    name = "raftlock",
    version,
    about = "A consensus-backed lock server that speaks the Redis protocol"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a node (by default a single-node cluster on 127.0.0.1:6379, data in ./raftlock-data).
    #[command(args_override_self = true)]
    Serve(Box<ServeArgs>),
    /// Benchmark a server (raftlock or Redis) with lock workloads, as redis-benchmark does.
    #[command(disable_help_flag = true)]
    Bench(raftlock::bench::BenchArgs),
    /// Run a command while holding a lock: `raftlock run --lock NAME [--ttl 30s] [--wait
    /// 10s] -- CMD ARGS...` (the fencing token in RAFTLOCK_TOKEN; lease renewed; released
    /// at exit).
    #[command(disable_help_flag = true)]
    Run(raftlock::cli::RunArgs),
    /// Take a lock and print its token: `raftlock lock NAME --owner O [--ttl] [--wait]`.
    #[command(disable_help_flag = true)]
    Lock(ToolLine),
    /// Release a lock: `raftlock unlock NAME --owner O`.
    #[command(disable_help_flag = true)]
    Unlock(ToolLine),
    /// Show a lock's holders and waiters: `raftlock info NAME`.
    #[command(disable_help_flag = true)]
    Info(ToolLine),
    /// List every lock with its holders.
    #[command(disable_help_flag = true)]
    Locks(ToolLine),
    /// Cluster membership: `raftlock cluster status | add ID CLIENT RAFT | remove ID |
    /// transfer-leader [ID]`.
    #[command(disable_help_flag = true)]
    Cluster(ToolLine),
    /// Write a consistent copy of the whole state to a file: `raftlock backup FILE [-h H]
    /// [-p P] [-a PASS]`.
    #[command(disable_help_flag = true)]
    Backup(ToolLine),
    /// Make a new node's data dir from a backup: `raftlock restore FILE --data-dir D
    /// [--fence-floor TOKEN]`.
    Restore(raftlock::cli::RestoreArgs),
}

/// The words after a lock or cluster subcommand's name, parsed by `raftlock::cli`.
#[derive(Args)]
struct ToolLine {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    words: Vec<String>,
}

#[derive(Args)]
struct ServeArgs {
    /// Settings from a file, `name value` per line as in redis.conf (docs/OPERATIONS.md);
    /// flags given on the command line override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// This node's id in the cluster (a positive integer).
    #[arg(long, default_value_t = 1)]
    id: u64,
    /// Address for Redis clients.
    #[arg(long, default_value = "127.0.0.1:6379")]
    listen: SocketAddr,
    /// Address for Raft traffic between nodes [default: the client port + 10000].
    #[arg(long)]
    raft_listen: Option<SocketAddr>,
    /// Where the Raft log and the state live.
    #[arg(long, default_value = "raftlock-data")]
    data_dir: PathBuf,
    /// The voters that bootstrap the cluster: ID=CLIENT_ADDR/RAFT_ADDR,...
    #[arg(long)]
    initial_cluster: Option<String>,
    /// Start with no cluster and wait to be added by `RAFT.NODE ADD` on the cluster
    /// (instead of bootstrapping a single-node cluster). Excludes --initial-cluster.
    #[arg(long)]
    join: bool,
    /// The master name SENTINEL commands answer for.
    #[arg(long, default_value = "raftlock")]
    sentinel_master_name: String,
    /// Password clients must give with AUTH (user `default`).
    #[arg(long)]
    requirepass: Option<String>,
    /// Redis ACL file (`user <name> <rules...>` lines): seeds the replicated users once;
    /// ACL LOAD and ACL SAVE read and write it.
    #[arg(long)]
    aclfile: Option<std::path::PathBuf>,
    /// Log filter (error, warn, info, debug, trace, or a tracing directive); RUST_LOG works too.
    #[arg(long)]
    log_level: Option<String>,
    /// Most client connections at once.
    #[arg(long)]
    maxclients: Option<usize>,
    /// Threads running connections and Raft (0: one for a node alone, one per core for a
    /// cluster member).
    #[arg(long)]
    threads: Option<usize>,
    /// Largest bulk string a client may send, in bytes.
    #[arg(long)]
    max_bulk_bytes: Option<usize>,
    /// Most client commands gathered into one Raft entry.
    #[arg(long)]
    max_ops_per_entry: Option<usize>,
    /// Raft entries proposed and not yet applied at once.
    #[arg(long)]
    max_inflight_entries: Option<usize>,
    /// Runtime turns the proposer may wait for more writes before proposing an entry.
    #[arg(long)]
    proposal_linger_yields: Option<usize>,
    /// Applied entries between two snapshots.
    #[arg(long)]
    snapshot_every_entries: Option<u64>,
    /// Entries kept in the log behind a snapshot (a follower further behind catches up
    /// by snapshot).
    #[arg(long)]
    log_entries_kept_after_snapshot: Option<u64>,
    /// Free bytes the data dir's disk keeps: below them, writes are refused with MISCONF
    /// until space is freed (0: no check) [default: 134217728].
    #[arg(long)]
    min_free_disk_bytes: Option<u64>,
    /// How long a client may be gone before its session ends: a silent peer's connection
    /// is closed by TCP keepalive within about this long, and after a leader change a
    /// waiter queued through the old leader keeps its place this long for its client to
    /// send its request again [default: 10000].
    #[arg(long)]
    session_timeout_ms: Option<u64>,
    /// Redlock on the nodes of one cluster: how long after a write carrying a lock token
    /// an identical copy sent to another node is answered as the write was, when it finds
    /// its keys unchanged (0: answered as Redis would; 5000 suits Redlock) [default: 0].
    #[arg(long)]
    redlock_replay_window_ms: Option<u64>,
    /// The plain client port, on --listen's address (instead of --listen's port); 0
    /// closes it, for a node that serves clients over TLS only.
    #[arg(long)]
    port: Option<u16>,
    /// A TLS client port, on --listen's address.
    #[arg(long)]
    tls_port: Option<u16>,
    /// The node's certificate (PEM, chain included) for the TLS port and for relays.
    #[arg(long)]
    tls_cert_file: Option<PathBuf>,
    /// The certificate's private key (PEM).
    #[arg(long)]
    tls_key_file: Option<PathBuf>,
    /// CA certificates (PEM) that sign client certificates and other nodes' certificates.
    #[arg(long)]
    tls_ca_cert_file: Option<PathBuf>,
    /// Whether TLS clients must present a certificate signed by the CA: yes, no,
    /// optional [default: yes].
    #[arg(long)]
    tls_auth_clients: Option<String>,
    /// Whether this node relays to the leader's client address over TLS: yes, no
    /// [default: yes with --port 0, else no].
    #[arg(long)]
    tls_replication: Option<String>,
    /// Whether the Raft port speaks TLS, both ends presenting a certificate the CA
    /// signed: yes, no [default: no].
    #[arg(long)]
    tls_cluster: Option<String>,
    /// The secret every node of the cluster shares; each Raft connection opens with a
    /// challenge-response on it. Prefer --cluster-secret-file (not shown by ps).
    #[arg(long)]
    cluster_secret: Option<String>,
    /// A file holding the cluster secret (its first line).
    #[arg(long)]
    cluster_secret_file: Option<PathBuf>,
    /// The cluster's id, checked on every Raft connection [default: derived from
    /// --initial-cluster at bootstrap; kept in the data dir].
    #[arg(long)]
    cluster_id: Option<String>,
    /// Keyspace notifications this node publishes, in Redis's letters (KEA: all); CONFIG
    /// SET notify-keyspace-events changes it at run time [default: none].
    #[arg(long)]
    notify_keyspace_events: Option<String>,
    /// Refuse clients from other hosts while the default user needs no password (Redis's
    /// protected mode): yes or no [default: yes].
    #[arg(long)]
    protected_mode: Option<String>,
    /// Refuse commands that add data while resident memory is over this (bytes, or with
    /// a unit: 2gb, 500mb), as Redis's maxmemory with noeviction [default: 0, no limit].
    #[arg(long)]
    maxmemory: Option<String>,
    /// Serve Prometheus metrics (/metrics) and the live page (/) over HTTP on this
    /// address [default: off].
    #[arg(long)]
    metrics_listen: Option<SocketAddr>,
    /// The longest a graceful shutdown (SIGTERM, SIGINT, SHUTDOWN) may take: leadership
    /// handed over, writes in flight answered, the log flushed [default: 10000].
    #[arg(long)]
    shutdown_timeout_ms: Option<u64>,
    /// Requests at least this slow, in microseconds, go to SLOWLOG (negative: none, 0:
    /// all) [default: 10000].
    #[arg(long, allow_negative_numbers = true)]
    slowlog_log_slower_than: Option<i64>,
    /// Most requests SLOWLOG keeps [default: 128].
    #[arg(long)]
    slowlog_max_len: Option<usize>,
    /// Requests at least this slow, in microseconds, are logged as a warning (negative:
    /// none) [default: 1000000].
    #[arg(long, allow_negative_numbers = true)]
    slowlog_warn_slower_than: Option<i64>,
}

impl ServeArgs {
    fn into_config(self) -> anyhow::Result<Config> {
        let defaults = Config::default();
        let (listen, plain_port) = match self.port {
            Some(0) => (self.listen, false),
            Some(port) => (SocketAddr::new(self.listen.ip(), port), true),
            None => (self.listen, true),
        };
        let raft_listen = match self.raft_listen {
            Some(addr) => addr,
            None => {
                let port = listen.port().checked_add(10_000).ok_or_else(|| {
                    anyhow::anyhow!(
                        "--listen port {} + 10000 is out of range: give --raft-listen",
                        listen.port()
                    )
                })?;
                SocketAddr::new(listen.ip(), port)
            }
        };
        let initial_cluster = match &self.initial_cluster {
            Some(text) => config::parse_initial_cluster(text)?,
            None => Default::default(),
        };
        let mut resp = defaults.resp.clone();
        if let Some(n) = self.max_bulk_bytes {
            resp.max_bulk_bytes = n;
        }
        let tls = config::TlsSettings {
            port: self.tls_port,
            cert_file: self.tls_cert_file,
            key_file: self.tls_key_file,
            ca_cert_file: self.tls_ca_cert_file,
            auth_clients: match &self.tls_auth_clients {
                Some(text) => config::parse_tls_auth_clients(text)?,
                None => config::TlsAuthClients::Yes,
            },
            replication: match &self.tls_replication {
                Some(text) => config::parse_yes_no("tls-replication", text)?,
                None => !plain_port,
            },
            cluster: match &self.tls_cluster {
                Some(text) => config::parse_yes_no("tls-cluster", text)?,
                None => false,
            },
        };
        let cluster_secret = match (self.cluster_secret, &self.cluster_secret_file) {
            (Some(_), Some(_)) => {
                anyhow::bail!("give --cluster-secret or --cluster-secret-file, not both")
            }
            (Some(secret), None) => Some(secret),
            (None, Some(path)) => Some(config::read_secret_file(path)?),
            (None, None) => None,
        };
        let config = Config {
            id: self.id,
            listen,
            plain_port,
            tls,
            cluster_secret,
            cluster_id: self.cluster_id,
            raft_listen,
            data_dir: self.data_dir,
            initial_cluster,
            join: self.join,
            sentinel_master_name: self.sentinel_master_name,
            requirepass: self.requirepass,
            aclfile: self.aclfile,
            resp,
            max_clients: self.maxclients.unwrap_or(defaults.max_clients),
            threads: self.threads.unwrap_or(defaults.threads),
            max_ops_per_entry: self.max_ops_per_entry.unwrap_or(defaults.max_ops_per_entry),
            max_inflight_entries: self
                .max_inflight_entries
                .unwrap_or(defaults.max_inflight_entries),
            proposal_linger_yields: self
                .proposal_linger_yields
                .unwrap_or(defaults.proposal_linger_yields),
            snapshot_every_entries: self
                .snapshot_every_entries
                .unwrap_or(defaults.snapshot_every_entries),
            log_entries_kept_after_snapshot: self
                .log_entries_kept_after_snapshot
                .unwrap_or(defaults.log_entries_kept_after_snapshot),
            min_free_disk_bytes: self
                .min_free_disk_bytes
                .unwrap_or(defaults.min_free_disk_bytes),
            session_timeout_ms: self
                .session_timeout_ms
                .unwrap_or(defaults.session_timeout_ms),
            redlock_replay_window_ms: self
                .redlock_replay_window_ms
                .unwrap_or(defaults.redlock_replay_window_ms),
            notify_keyspace_events: self
                .notify_keyspace_events
                .unwrap_or(defaults.notify_keyspace_events),
            config_file: self
                .config
                .as_ref()
                .map(|path| std::path::absolute(path).unwrap_or_else(|_| path.clone())),
            maxmemory: match &self.maxmemory {
                Some(text) => config::parse_memory(text)
                    .ok_or_else(|| anyhow::anyhow!("--maxmemory '{text}' is not a size"))?,
                None => defaults.maxmemory,
            },
            protected_mode: match &self.protected_mode {
                Some(text) => config::parse_yes_no("protected-mode", text)?,
                None => defaults.protected_mode,
            },
            metrics_listen: self.metrics_listen,
            shutdown_timeout_ms: self
                .shutdown_timeout_ms
                .unwrap_or(defaults.shutdown_timeout_ms),
            slowlog_log_slower_than_us: self
                .slowlog_log_slower_than
                .unwrap_or(defaults.slowlog_log_slower_than_us),
            slowlog_max_len: self.slowlog_max_len.unwrap_or(defaults.slowlog_max_len),
            slowlog_warn_slower_than_us: self
                .slowlog_warn_slower_than
                .unwrap_or(defaults.slowlog_warn_slower_than_us),
            ..defaults
        };
        config.validate()?;
        Ok(config)
    }
}

fn init_logging(level: Option<&str>) {
    let filter = match level {
        Some(level) => tracing_subscriber::EnvFilter::new(level),
        None => tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,raftlock=info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// mimalloc's option number for `purge_delay` (`mi_option_purge_delay` in mimalloc.h, which
/// libmimalloc-sys does not name).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Turns transparent huge pages off for this process (see
/// `storage_memory::TRANSPARENT_HUGE_PAGES`), for the memory mapped already too: the
/// kernel checks the flag when it faults a page in. mimalloc's own option for it is read
/// when mimalloc starts, before `main`.
fn disable_transparent_huge_pages() {
    if config::storage_memory::TRANSPARENT_HUGE_PAGES
        || std::env::var_os("MIMALLOC_ALLOW_THP").is_some()
    {
        return;
    }
    #[cfg(target_os = "linux")]
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and reads or writes no memory of ours.
    unsafe {
        // On failure (an old kernel) huge pages stay on: slower snapshots, nothing worse.
        libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0);
    }
}

fn main() -> std::process::ExitCode {
    disable_transparent_huge_pages();
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets a plain integer option; mimalloc reads it when it next purges.
        unsafe {
            libmimalloc_sys::mi_option_set(
                MI_OPTION_PURGE_DELAY,
                config::storage_memory::ALLOCATOR_PURGE_DELAY_MS as _,
            )
        };
    }
    let cli = match with_config_file(std::env::args().collect()) {
        Ok(args) => Cli::parse_from(args),
        Err(err) => {
            eprintln!("raftlock: {err:#}");
            return std::process::ExitCode::from(2);
        }
    };
    match cli.command {
        Command::Serve(args) => {
            init_logging(args.log_level.as_deref());
            let result = args.into_config().and_then(|config| {
                tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(config.runtime_threads())
                    .enable_all()
                    .build()?
                    .block_on(raftlock::server::run(config))
            });
            match result {
                Ok(()) => std::process::ExitCode::SUCCESS,
                Err(err) => {
                    eprintln!("raftlock: {err:#}");
                    std::process::ExitCode::from(2)
                }
            }
        }
        Command::Run(args) => exit(raftlock::cli::run_command(args), "run"),
        Command::Lock(line) => tool("lock", line),
        Command::Unlock(line) => tool("unlock", line),
        Command::Info(line) => tool("info", line),
        Command::Locks(line) => tool("locks", line),
        Command::Cluster(line) => tool("cluster", line),
        Command::Backup(line) => tool("backup", line),
        Command::Restore(args) => exit(raftlock::cli::restore(args), "restore"),
        Command::Bench(args) => match raftlock::bench::run(args) {
            Ok(true) => std::process::ExitCode::SUCCESS,
            Ok(false) => std::process::ExitCode::from(1),
            Err(err) => {
                eprintln!("raftlock bench: {err:#}");
                std::process::ExitCode::from(2)
            }
        },
    }
}

/// A lock or cluster subcommand: its words parsed as `raftlock::cli::ToolArgs`.
fn tool(name: &str, line: ToolLine) -> std::process::ExitCode {
    let words = std::iter::once("raftlock".to_string())
        .chain(std::iter::once(name.to_string()))
        .chain(line.words);
    let args = raftlock::cli::ToolArgs::parse_from(words);
    exit(raftlock::cli::run_tool(args), name)
}

fn exit(result: anyhow::Result<u8>, name: &str) -> std::process::ExitCode {
    match result {
        Ok(code) => std::process::ExitCode::from(code),
        Err(err) => {
            eprintln!("raftlock {name}: {err:#}");
            std::process::ExitCode::from(raftlock::cli::EXIT_ERROR)
        }
    }
}

/// `raftlock serve --config FILE ...`: the file's settings as flags before the command
/// line's own, which so override them.
fn with_config_file(args: Vec<String>) -> anyhow::Result<Vec<String>> {
    if args.get(1).map(String::as_str) != Some("serve") {
        return Ok(args);
    }
    let path = args.iter().enumerate().skip(2).find_map(|(i, arg)| {
        if arg == "--config" {
            args.get(i + 1).cloned()
        } else {
            arg.strip_prefix("--config=").map(str::to_string)
        }
    });
    let Some(path) = path else {
        return Ok(args);
    };
    let from_file = raftlock::config_file::flags_from_file(std::path::Path::new(&path))?;
    Ok(args[..2]
        .iter()
        .cloned()
        .chain(from_file)
        .chain(args[2..].iter().cloned())
        .collect())
}
