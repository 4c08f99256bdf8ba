//! SLOWLOG: the node's recent slow requests, in Redis's reply shape, and a warning in the
//! log for very slow ones.
//!
//! A request's time runs from when the connection dispatches it to when its reply is
//! ready to be written: for a write, the proposal, the commit on a majority (fsyncs
//! included) and the apply; for a read, the read barrier. (Redis times only the
//! command's execution; raftlock's commands mostly wait on consensus, which is what an
//! operator looking for slow requests needs to see.) Commands that wait on purpose (LOCK
//! and RLOCK with WAIT, BLPOP and the other blocking pops) are not timed, as Redis does
//! not count the time a command spends blocked. The log is node-local, as in Redis.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::clients::ClientInfo;
use crate::command::{self, Blocking, Kind};
use crate::config::slowlog_entry::{MAX_ARGS, MAX_ARG_BYTES};
use crate::config::Config;
use crate::reply::Reply;

/// SLOWLOG GET's default count, as Redis.
const DEFAULT_GET_COUNT: usize = 10;

/// One slow request, as SLOWLOG GET shows it.
struct SlowEntry {
    id: u64,
    unix_secs: u64,
    duration_us: u64,
    argv: Vec<Bytes>,
    client_addr: String,
    client_name: String,
}

/// A request being timed: when it was dispatched, and its arguments as the log keeps
/// them.
pub(super) struct Timed {
    since: Instant,
    argv: Vec<Bytes>,
}

pub(super) struct SlowLog {
    /// Requests at least this slow are kept, in microseconds; negative: none. CONFIG SET
    /// changes it and `max_len`, as in Redis.
    log_slower_than_us: AtomicI64,
    /// Requests at least this slow are logged as a warning, in microseconds; negative: none.
    warn_slower_than_us: i64,
    max_len: AtomicUsize,
    /// Newest first.
    entries: Mutex<(u64, VecDeque<SlowEntry>)>,
}

impl SlowLog {
    pub(super) fn new(config: &Config) -> SlowLog {
        SlowLog {
            log_slower_than_us: AtomicI64::new(config.slowlog_log_slower_than_us),
            warn_slower_than_us: config.slowlog_warn_slower_than_us,
            max_len: AtomicUsize::new(config.slowlog_max_len),
            entries: Mutex::new((0, VecDeque::new())),
        }
    }

    pub(super) fn log_slower_than_us(&self) -> i64 {
        self.log_slower_than_us.load(Ordering::Relaxed)
    }

    pub(super) fn max_len(&self) -> usize {
        self.max_len.load(Ordering::Relaxed)
    }

    /// CONFIG SET slowlog-log-slower-than.
    pub(super) fn set_log_slower_than_us(&self, us: i64) {
        self.log_slower_than_us.store(us, Ordering::Relaxed);
    }

    /// CONFIG SET slowlog-max-len: the log is trimmed at once.
    pub(super) fn set_max_len(&self, len: usize) {
        self.max_len.store(len, Ordering::Relaxed);
        self.entries().1.truncate(len);
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, (u64, VecDeque<SlowEntry>)> {
        // Entries are plain data, whole even if a holder panicked.
        self.entries
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Starts timing `argv`, or `None` if nothing would record it (no log, no warning,
    /// or a command that waits on purpose).
    pub(super) fn start(&self, argv: &[Bytes]) -> Option<Timed> {
        if self.log_slower_than_us() < 0 && self.warn_slower_than_us < 0 {
            return None;
        }
        if waits_on_purpose(argv) {
            return None;
        }
        Some(Timed {
            since: Instant::now(),
            argv: clip_argv(argv),
        })
    }

    /// The request `timed` has its reply: kept and warned about if it was slow enough.
    pub(super) fn finish(&self, timed: Timed, client: &Mutex<ClientInfo>) {
        let took = timed.since.elapsed();
        let us = i64::try_from(took.as_micros()).unwrap_or(i64::MAX);
        let log_slower_than_us = self.log_slower_than_us();
        let keep = log_slower_than_us >= 0 && us >= log_slower_than_us;
        let warn = self.warn_slower_than_us >= 0 && us >= self.warn_slower_than_us;
        if !keep && !warn {
            return;
        }
        let (client_addr, client_name) = {
            let info = client.lock().unwrap_or_else(|p| p.into_inner());
            (info.addr.to_string(), info.name.clone())
        };
        if warn {
            let words: Vec<String> = timed
                .argv
                .iter()
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            tracing::warn!(
                took_ms = took.as_millis() as u64,
                client = %client_addr,
                request = %words.join(" "),
                "slow request"
            );
        }
        if keep {
            self.keep(timed.argv, took, client_addr, client_name);
        }
    }

    fn keep(&self, argv: Vec<Bytes>, took: Duration, client_addr: String, client_name: String) {
        let max_len = self.max_len();
        if max_len == 0 {
            return;
        }
        let unix_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let mut guard = self.entries();
        let (next_id, entries) = &mut *guard;
        entries.push_front(SlowEntry {
            id: *next_id,
            unix_secs,
            duration_us: took.as_micros() as u64,
            argv,
            client_addr,
            client_name,
        });
        *next_id += 1;
        entries.truncate(max_len);
    }
}

/// LOCK/RLOCK with WAIT, and the blocking list pops: their time is mostly waiting.
fn waits_on_purpose(argv: &[Bytes]) -> bool {
    match command::lookup(&argv[0]).map(|spec| spec.kind) {
        Some(Kind::BlockingWrite(Blocking::Lock)) => {
            argv.iter().skip(4).any(|a| a.eq_ignore_ascii_case(b"WAIT"))
        }
        Some(Kind::BlockingWrite(_)) => true,
        _ => false,
    }
}

/// The arguments as Redis's slow log keeps them: at most 32 (the 32nd then says
/// `... (N more arguments)`), each at most 128 bytes (then `... (N more bytes)`), and
/// passwords (AUTH, HELLO's AUTH) as `(redacted)`.
fn clip_argv(argv: &[Bytes]) -> Vec<Bytes> {
    let kept = argv.len().min(MAX_ARGS);
    let secret = |i: usize| {
        let name = &argv[0];
        (name.eq_ignore_ascii_case(b"AUTH") && i > 0)
            || (name.eq_ignore_ascii_case(b"HELLO")
                && argv
                    .iter()
                    .take(i)
                    .rev()
                    .take(2)
                    .any(|a| a.eq_ignore_ascii_case(b"AUTH")))
    };
    (0..kept)
        .map(|i| {
            if kept < argv.len() && i == kept - 1 {
                return Bytes::from(format!("... ({} more arguments)", argv.len() - kept + 1));
            }
            if secret(i) {
                return Bytes::from_static(b"(redacted)");
            }
            let arg = &argv[i];
            if arg.len() > MAX_ARG_BYTES {
                let mut clipped = arg[..MAX_ARG_BYTES].to_vec();
                clipped.extend_from_slice(
                    format!("... ({} more bytes)", arg.len() - MAX_ARG_BYTES).as_bytes(),
                );
                Bytes::from(clipped)
            } else {
                arg.clone()
            }
        })
        .collect()
}

/// SLOWLOG GET [count] | LEN | RESET | HELP.
pub(super) fn slowlog_command(log: &SlowLog, argv: &[Bytes]) -> Reply {
    let sub = argv[1].to_ascii_uppercase();
    let arity = || {
        Reply::Error(format!(
            "ERR wrong number of arguments for 'slowlog|{}' command",
            String::from_utf8_lossy(&argv[1]).to_ascii_lowercase()
        ))
    };
    match sub.as_slice() {
        b"GET" if argv.len() <= 3 => {
            let count = match argv.get(2) {
                None => DEFAULT_GET_COUNT,
                Some(arg) => match crate::args::parse_i64(arg) {
                    Some(-1) => usize::MAX,
                    Some(n) if n >= 0 => n as usize,
                    _ => return Reply::error("ERR count should be greater than or equal to -1"),
                },
            };
            let guard = log.entries();
            Reply::Array(guard.1.iter().take(count).map(entry_reply).collect())
        }
        b"LEN" if argv.len() == 2 => Reply::Int(log.entries().1.len() as i64),
        b"RESET" if argv.len() == 2 => {
            log.entries().1.clear();
            Reply::Ok
        }
        b"HELP" if argv.len() == 2 => Reply::Array(
            [
                "SLOWLOG <subcommand> [<arg> [value] [opt] ...]. Subcommands are:",
                "GET [<count>]",
                "    Return top <count> entries from the slowlog (default: 10, -1 mean all).",
                "    Entries are made of:",
                "    id, timestamp, time in microseconds, arguments array, client IP and port,",
                "    client name",
                "LEN",
                "    Return the length of the slowlog.",
                "RESET",
                "    Reset the slowlog.",
                "HELP",
                "    Prints this help.",
            ]
            .iter()
            .map(|line| Reply::Status((*line).to_string()))
            .collect(),
        ),
        // Redis 7.0's words for a GET with too many arguments.
        b"GET" => Reply::Error(format!(
            "ERR unknown subcommand or wrong number of arguments for '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
        b"LEN" | b"RESET" | b"HELP" => arity(),
        _ => Reply::Error(format!(
            "ERR unknown subcommand '{}'. Try SLOWLOG HELP.",
            String::from_utf8_lossy(&argv[1])
        )),
    }
}

fn entry_reply(entry: &SlowEntry) -> Reply {
    Reply::Array(vec![
        Reply::Int(entry.id as i64),
        Reply::Int(entry.unix_secs as i64),
        Reply::Int(entry.duration_us as i64),
        Reply::Array(entry.argv.iter().cloned().map(Reply::Bulk).collect()),
        Reply::Bulk(Bytes::from(entry.client_addr.clone())),
        Reply::Bulk(Bytes::from(entry.client_name.clone())),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(words: &[&str]) -> Vec<Bytes> {
        words.iter().map(|w| Bytes::from(w.to_string())).collect()
    }

    #[test]
    fn arguments_are_clipped_as_redis_clips_them() {
        let many: Vec<String> = (0..40).map(|i| i.to_string()).collect();
        let mut words = vec!["SADD"];
        words.extend(many.iter().map(String::as_str));
        let clipped = clip_argv(&argv(&words));
        assert_eq!(clipped.len(), 32);
        assert_eq!(clipped[30], "29");
        assert_eq!(clipped[31], "... (10 more arguments)");
        let long = "x".repeat(200);
        let clipped = clip_argv(&argv(&["SET", "k", &long]));
        assert_eq!(
            clipped[2],
            format!("{}... (72 more bytes)", "x".repeat(128)).as_str()
        );
        assert_eq!(
            clip_argv(&argv(&["SET", "k", "v"])),
            argv(&["SET", "k", "v"])
        );
        // Exactly 32 arguments are kept whole.
        let exact: Vec<&str> = std::iter::once("DEL")
            .chain(many[..31].iter().map(String::as_str))
            .collect();
        assert_eq!(clip_argv(&argv(&exact)).len(), 32);
        assert_eq!(clip_argv(&argv(&exact))[31], "30");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            clip_argv(&argv(&["AUTH", "user", "pw"])),
            argv(&["AUTH", "(redacted)", "(redacted)"])
        );
        assert_eq!(
            clip_argv(&argv(&[
                "HELLO", "3", "AUTH", "default", "pw", "SETNAME", "n"
            ])),
            argv(&[
                "HELLO",
                "3",
                "AUTH",
                "(redacted)",
                "(redacted)",
                "SETNAME",
                "n"
            ])
        );
    }

    #[test]
    fn only_requests_that_wait_on_purpose_are_left_untimed() {
        assert!(waits_on_purpose(&argv(&["BLPOP", "l", "0"])));
        assert!(waits_on_purpose(&argv(&[
            "lock", "r", "o", "1000", "wait", "0"
        ])));
        assert!(!waits_on_purpose(&argv(&["LOCK", "r", "o", "1000"])));
        // A resource or owner named WAIT is not a wait.
        assert!(!waits_on_purpose(&argv(&["LOCK", "wait", "wait", "1000"])));
        assert!(!waits_on_purpose(&argv(&["SET", "k", "v"])));
    }
}
