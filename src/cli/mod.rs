//! Client subcommands of the `raftlock` binary, for shell scripts and operators, with
//! redis-cli's connection options (`-h -p -a --user --tls --cacert --cert --key`):
//!
//! - `raftlock run --lock NAME [--ttl 30s] [--wait 10s] -- CMD ARGS...` runs a command
//!   while holding a lock, as `flock` and `etcdctl lock` do (`run`).
//! - `raftlock lock NAME --owner O`, `unlock`, `info`, `locks`: one lock command each.
//! - `raftlock cluster status | add | remove | transfer-leader`: membership.
//! - `raftlock backup FILE`: a consistent copy of the state (RAFT.BACKUP) to a file;
//!   `raftlock restore FILE --data-dir D`: a new node's data dir from it.
//!
//! Times are milliseconds (`30000`) or carry a unit (`500ms`, `30s`, `5m`, `1h`).

mod run;

pub use run::{EXIT_ERROR, EXIT_LEASE_LOST, EXIT_NOT_GRANTED};

use std::time::Duration;

use anyhow::{bail, Context};
use clap::{Args, Parser, Subcommand};

use crate::bench::client::{Client, ConnectOptions};
use crate::bench::resp::Reply;

/// How long a command other than a blocking LOCK may take to be answered.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long RAFT.BACKUP may take: it copies, encodes and sends the whole state.
const BACKUP_TIMEOUT: Duration = Duration::from_secs(600);

/// Where the server is, spelled as redis-cli spells it.
#[derive(Debug, Clone, Args)]
pub struct Connection {
    /// Server hostname.
    #[arg(short = 'h', long = "host", default_value = "127.0.0.1", global = true)]
    pub host: String,
    /// Server port.
    #[arg(short = 'p', long = "port", default_value_t = 6379, global = true)]
    pub port: u16,
    /// Password for AUTH.
    #[arg(short = 'a', long = "pass", global = true)]
    pub password: Option<String>,
    /// ACL user to AUTH as (with -a).
    #[arg(long = "user", global = true)]
    pub user: Option<String>,
    /// Connect over TLS (with --cacert).
    #[arg(long = "tls", global = true)]
    pub tls: bool,
    /// The CA certificate file that signed the server's certificate.
    #[arg(long = "cacert", global = true)]
    pub cacert: Option<std::path::PathBuf>,
    /// A client certificate, for a server that asks for one (with --key).
    #[arg(long = "cert", global = true)]
    pub cert: Option<std::path::PathBuf>,
    /// The client certificate's private key.
    #[arg(long = "key", global = true)]
    pub key: Option<std::path::PathBuf>,
}

impl Connection {
    async fn connect(&self, reply_timeout: Duration) -> anyhow::Result<Client> {
        let tls = match (self.tls, &self.cacert) {
            (false, _) => None,
            (true, None) => {
                bail!("--tls needs --cacert (the CA that signed the server's certificate)")
            }
            (true, Some(ca)) => {
                let cert_and_key = match (&self.cert, &self.key) {
                    (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
                    (None, None) => None,
                    _ => bail!("--cert and --key go together"),
                };
                Some(crate::server::tls::client_connector(ca, cert_and_key)?)
            }
        };
        let options = ConnectOptions {
            tls,
            user: self.user.clone(),
            password: self.password.clone(),
        };
        Client::connect_with(&self.host, self.port, &options, reply_timeout).await
    }

    /// One command on a new connection; a server error is an error.
    async fn call(&self, args: &[&[u8]]) -> anyhow::Result<Reply> {
        let reply = self.connect(REPLY_TIMEOUT).await?.call(args).await?;
        if let Reply::Error(err) = &reply {
            bail!("{err}");
        }
        Ok(reply)
    }
}

/// `raftlock run`: a command run while holding a lock.
#[derive(Debug, Parser)]
#[command(name = "raftlock run", disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub connection: Connection,
    /// The lock (resource) to hold while the command runs.
    #[arg(long = "lock")]
    pub lock: String,
    /// The lease, renewed every third of it while the command runs.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub ttl: Duration,
    /// How long to wait for the lock (0: do not wait) [default: without limit].
    #[arg(long, value_parser = parse_duration)]
    pub wait: Option<Duration>,
    /// The owner name the lock is held under [default: host:pid:random].
    #[arg(long)]
    pub owner: Option<String>,
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,
    /// The command and its arguments.
    #[arg(last = true, required = true, num_args = 1..)]
    pub command: Vec<String>,
}

/// The lock and membership subcommands.
#[derive(Debug, Parser)]
#[command(name = "raftlock", disable_help_flag = true)]
pub struct ToolArgs {
    #[command(flatten)]
    pub connection: Connection,
    #[command(subcommand)]
    pub tool: Tool,
}

#[derive(Debug, Subcommand)]
pub enum Tool {
    /// Take a lock and print its fencing token (exit 1 if not granted in time).
    Lock {
        name: String,
        #[arg(long)]
        owner: String,
        #[arg(long, default_value = "30s", value_parser = parse_duration)]
        ttl: Duration,
        /// How long to wait (0: do not wait) [default: without limit].
        #[arg(long, value_parser = parse_duration)]
        wait: Option<Duration>,
    },
    /// Release one hold of a lock; prints the holds left (0: released).
    Unlock {
        name: String,
        #[arg(long)]
        owner: String,
    },
    /// A lock's mode, holders (owner, token, lease left) and waiters.
    Info { name: String },
    /// Every lock, with its mode and holders.
    Locks,
    /// Cluster membership.
    #[command(subcommand)]
    Cluster(ClusterTool),
    /// Write a consistent copy of the whole state (RAFT.BACKUP) to FILE, atomically.
    Backup { file: std::path::PathBuf },
}

/// `raftlock restore`: a new node's data dir from a backup file.
#[derive(Debug, Parser)]
#[command(name = "raftlock restore")]
pub struct RestoreArgs {
    /// The backup file (`raftlock backup`).
    pub file: std::path::PathBuf,
    /// The new node's data dir; it must not hold a node's data yet. Start the node with
    /// `raftlock serve --data-dir` this dir (every node of a new cluster restored from the
    /// same file, with the same --initial-cluster).
    #[arg(long)]
    pub data_dir: std::path::PathBuf,
    /// Fencing tokens after the restore are above this one (give the old cluster's last
    /// token if it went on granting after the backup) [default: the backup's counter].
    #[arg(long)]
    pub fence_floor: Option<u64>,
}

/// Runs `raftlock restore`; the exit code.
pub fn restore(args: RestoreArgs) -> anyhow::Result<u8> {
    let bytes =
        std::fs::read(&args.file).with_context(|| format!("reading {}", args.file.display()))?;
    let restored = crate::raft::restore::prepare(&args.data_dir, &bytes, args.fence_floor)
        .with_context(|| format!("{}", args.file.display()))?;
    emit(&format!(
        "restored {} keys into {} (next fencing token above {}); start the node with --data-dir {}\n",
        restored.keys,
        args.data_dir.display(),
        restored.fence_counter,
        args.data_dir.display()
    ));
    Ok(0)
}

#[derive(Debug, Subcommand)]
pub enum ClusterTool {
    /// This node's view of the cluster (RAFT.INFO).
    Status,
    /// Add a node started with --join: learner, caught up, then voter.
    Add {
        id: u64,
        client_addr: String,
        raft_addr: String,
    },
    /// Remove a node from the cluster.
    Remove { id: u64 },
    /// Move the leadership to another voter (the most caught-up one by default).
    TransferLeader { id: Option<u64> },
}

/// A duration in milliseconds, or with a unit: `ms`, `s`, `m`, `h`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = number
        .parse()
        .map_err(|_| format!("invalid duration {text:?}: a number, then ms, s, m or h"))?;
    let ms_per_unit = match unit {
        "" | "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "invalid duration {text:?}: the unit is ms, s, m or h"
            ))
        }
    };
    number
        .checked_mul(ms_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("duration {text:?} is too long"))
}

fn ms(duration: Duration) -> String {
    duration.as_millis().to_string()
}

/// Runs a subcommand; the process's exit code.
pub fn run_tool(args: ToolArgs) -> anyhow::Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(tool(args))
}

/// Runs `raftlock run`; the exit code (the command's, or `run::EXIT_*`).
pub fn run_command(args: RunArgs) -> anyhow::Result<u8> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run::run(args))
}

async fn tool(args: ToolArgs) -> anyhow::Result<u8> {
    let con = &args.connection;
    match args.tool {
        Tool::Lock {
            name,
            owner,
            ttl,
            wait,
        } => match run::acquire(con, &name, &owner, ttl, wait).await? {
            Some(token) => {
                emit(&format!("{token}\n"));
                Ok(0)
            }
            None => {
                eprintln!("raftlock lock: {name} was not granted in time");
                Ok(run::EXIT_NOT_GRANTED)
            }
        },
        Tool::Unlock { name, owner } => {
            let reply = con
                .call(&[b"UNLOCK", name.as_bytes(), owner.as_bytes()])
                .await?;
            emit(&format!("{}\n", text(&reply)));
            Ok(0)
        }
        Tool::Info { name } => {
            let reply = con.call(&[b"LOCKINFO", name.as_bytes()]).await?;
            if reply.is_nil() {
                eprintln!("raftlock info: nobody holds or waits for {name}");
                return Ok(1);
            }
            emit(&lock_info(&name, &reply));
            Ok(0)
        }
        Tool::Locks => {
            for name in lock_names(con).await? {
                let reply = con.call(&[b"LOCKINFO", name.as_bytes()]).await?;
                if !reply.is_nil() {
                    emit(&lock_info(&name, &reply));
                }
            }
            Ok(0)
        }
        Tool::Backup { file } => {
            let reply = con
                .connect(BACKUP_TIMEOUT)
                .await?
                .call(&[b"RAFT.BACKUP"])
                .await?;
            let bytes = match reply {
                Reply::Bulk(Some(bytes)) => bytes,
                Reply::Error(err) => bail!("{err}"),
                other => bail!("unexpected reply to RAFT.BACKUP: {other:?}"),
            };
            crate::backup_file::decode(&bytes).context("the backup received")?;
            crate::backup_file::write_atomically(&file, &bytes)
                .with_context(|| format!("writing {}", file.display()))?;
            emit(&format!(
                "wrote {} ({} bytes)\n",
                file.display(),
                bytes.len()
            ));
            Ok(0)
        }
        Tool::Cluster(cluster) => {
            let reply = match cluster {
                ClusterTool::Status => con.call(&[b"RAFT.INFO"]).await?,
                ClusterTool::Add {
                    id,
                    client_addr,
                    raft_addr,
                } => {
                    let id = id.to_string();
                    con.call(&[
                        b"RAFT.NODE",
                        b"ADD",
                        id.as_bytes(),
                        client_addr.as_bytes(),
                        raft_addr.as_bytes(),
                    ])
                    .await?
                }
                ClusterTool::Remove { id } => {
                    let id = id.to_string();
                    con.call(&[b"RAFT.NODE", b"REMOVE", id.as_bytes()]).await?
                }
                ClusterTool::TransferLeader { id } => match id {
                    Some(id) => {
                        let id = id.to_string();
                        con.call(&[b"RAFT.TRANSFER-LEADER", id.as_bytes()]).await?
                    }
                    None => con.call(&[b"RAFT.TRANSFER-LEADER"]).await?,
                },
            };
            emit(&format!("{}\n", text(&reply).trim_end()));
            Ok(0)
        }
    }
}

/// Writes to stdout; a closed pipe (`raftlock locks | head`) is not an error.
fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Every key of type lock, by SCAN.
async fn lock_names(con: &Connection) -> anyhow::Result<Vec<String>> {
    let mut client = con.connect(REPLY_TIMEOUT).await?;
    let mut names = Vec::new();
    let mut cursor = "0".to_string();
    loop {
        let reply = client
            .call(&[
                b"SCAN",
                cursor.as_bytes(),
                b"COUNT",
                b"1000",
                b"TYPE",
                b"lock",
            ])
            .await?;
        let Reply::Array(Some(parts)) = reply else {
            bail!("unexpected SCAN reply: {reply:?}");
        };
        let [next, Reply::Array(Some(keys))] = parts.as_slice() else {
            bail!("unexpected SCAN reply shape");
        };
        names.extend(keys.iter().map(text));
        cursor = text(next);
        if cursor == "0" {
            break;
        }
    }
    names.sort();
    Ok(names)
}

/// A reply as plain text: strings as they are, integers as numbers, nil as `(nil)`.
fn text(reply: &Reply) -> String {
    match reply {
        Reply::Status(s) | Reply::Error(s) => s.clone(),
        Reply::Int(n) => n.to_string(),
        Reply::Bulk(Some(bytes)) => String::from_utf8_lossy(bytes).into_owned(),
        Reply::Bulk(None) | Reply::Array(None) => "(nil)".to_string(),
        Reply::Array(Some(items)) => items.iter().map(text).collect::<Vec<_>>().join(" "),
    }
}

/// LOCKINFO's field/value list as `name` followed by indented `field: value` lines, each
/// holder and waiter on a line of its own.
fn lock_info(name: &str, reply: &Reply) -> String {
    let mut out = format!("{name}\n");
    let Reply::Array(Some(fields)) = reply else {
        return out;
    };
    for pair in fields.chunks(2) {
        let [field, value] = pair else { continue };
        match value {
            Reply::Array(Some(entries)) if entries.iter().any(|e| matches!(e, Reply::Array(_))) => {
                out.push_str(&format!("  {}:\n", text(field)));
                for entry in entries {
                    out.push_str(&format!("    {}\n", pairs(entry)));
                }
            }
            _ => out.push_str(&format!("  {}: {}\n", text(field), text(value))),
        }
    }
    out
}

/// A flat field/value array as `field=value field=value`.
fn pairs(reply: &Reply) -> String {
    match reply {
        Reply::Array(Some(items)) => items
            .chunks(2)
            .map(|pair| match pair {
                [field, value] => format!("{}={}", text(field), text(value)),
                [alone] => text(alone),
                _ => String::new(),
            })
            .collect::<Vec<_>>()
            .join(" "),
        other => text(other),
    }
}

/// The LOCK request for `wait`: without limit (`WAIT 0`), a try-lock (`Some(0)`), or a
/// timeout.
fn lock_request(name: &str, owner: &str, ttl: Duration, wait: Option<Duration>) -> Vec<Vec<u8>> {
    let mut argv = vec![
        b"LOCK".to_vec(),
        name.as_bytes().to_vec(),
        owner.as_bytes().to_vec(),
        ms(ttl).into_bytes(),
    ];
    match wait {
        None => argv.extend([b"WAIT".to_vec(), b"0".to_vec()]),
        Some(wait) if wait.is_zero() => {}
        Some(wait) => argv.extend([b"WAIT".to_vec(), ms(wait).into_bytes()]),
    }
    argv
}

fn check_ttl(ttl: Duration) -> anyhow::Result<()> {
    if ttl < Duration::from_millis(300) {
        bail!("--ttl must be at least 300ms: it is renewed every third of it");
    }
    Ok(())
}

/// The default owner: this host, this process and a random part, so two runs never share
/// a hold by accident.
fn default_owner() -> anyhow::Result<String> {
    let mut random = [0u8; 8];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut random))
        .context("reading /dev/urandom")?;
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "localhost".to_string());
    Ok(format!(
        "{host}:{}:{:016x}",
        std::process::id(),
        u64::from_le_bytes(random)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_milliseconds_or_carry_a_unit() {
        assert_eq!(parse_duration("1500"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        for bad in ["", "s", "1.5s", "10d", "-1", "99999999999999999999h"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_lock_request_waits_without_limit_not_at_all_or_for_a_time() {
        let words = |wait| {
            lock_request("job", "me", Duration::from_secs(30), wait)
                .into_iter()
                .map(|w| String::from_utf8(w).unwrap())
                .collect::<Vec<_>>()
                .join(" ")
        };
        assert_eq!(words(None), "LOCK job me 30000 WAIT 0");
        assert_eq!(words(Some(Duration::ZERO)), "LOCK job me 30000");
        assert_eq!(
            words(Some(Duration::from_millis(1500))),
            "LOCK job me 30000 WAIT 1500"
        );
    }

    #[test]
    fn lockinfo_prints_a_line_per_field_and_per_holder() {
        let bulk = |s: &str| Reply::Bulk(Some(s.as_bytes().to_vec()));
        let reply = Reply::Array(Some(vec![
            bulk("mode"),
            bulk("EX"),
            bulk("holders"),
            Reply::Array(Some(vec![Reply::Array(Some(vec![
                bulk("owner"),
                bulk("a"),
                bulk("token"),
                Reply::Int(5),
            ]))])),
        ]));
        assert_eq!(
            lock_info("job", &reply),
            "job\n  mode: EX\n  holders:\n    owner=a token=5\n"
        );
    }
}
