//! ACL LOG: this node's recent refusals and failed authentications, newest first, as
//! Redis keeps them (an entry like the previous one within a minute counts up instead
//! of being added). Node-local, like Redis's: each node logs what its clients did.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::reply::Reply;

/// Entries alike within this long are merged into one (Redis's 60 s).
const MERGE_WITHIN: Duration = Duration::from_secs(60);

struct Entry {
    id: u64,
    count: u64,
    reason: &'static str,
    context: &'static str,
    object: String,
    username: String,
    client_info: String,
    created: Instant,
    created_unix_ms: u64,
    updated_unix_ms: u64,
}

/// The node's ACL LOG, at most `max_len` entries.
pub struct AclLog {
    max_len: usize,
    inner: Mutex<(u64, VecDeque<Entry>)>,
}

fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What one refusal or failed AUTH records.
pub struct Event<'a> {
    /// `auth`, `command`, `key` or `channel`.
    pub reason: &'static str,
    /// `toplevel`, `multi` or `lua`.
    pub context: &'static str,
    pub object: &'a str,
    pub username: &'a str,
    pub client_info: String,
}

impl AclLog {
    pub fn new(max_len: usize) -> AclLog {
        AclLog {
            max_len,
            inner: Mutex::new((0, VecDeque::new())),
        }
    }

    pub fn add(&self, event: Event<'_>) {
        let now = Instant::now();
        let mut inner = self.inner.lock().expect("acl log lock");
        let (next_id, entries) = &mut *inner;
        let alike = entries.iter_mut().find(|e| {
            e.reason == event.reason
                && e.context == event.context
                && e.object == event.object
                && e.username == event.username
                && now.duration_since(e.created) < MERGE_WITHIN
        });
        if let Some(entry) = alike {
            entry.count += 1;
            entry.updated_unix_ms = unix_ms();
            entry.client_info = event.client_info;
            return;
        }
        let at = unix_ms();
        entries.push_front(Entry {
            id: *next_id,
            count: 1,
            reason: event.reason,
            context: event.context,
            object: event.object.to_owned(),
            username: event.username.to_owned(),
            client_info: event.client_info,
            created: now,
            created_unix_ms: at,
            updated_unix_ms: at,
        });
        *next_id += 1;
        entries.truncate(self.max_len);
    }

    pub fn reset(&self) {
        self.inner.lock().expect("acl log lock").1.clear();
    }

    /// ACL LOG [count]: the newest `count` entries as Redis 7.2 shows them.
    pub fn reply(&self, count: usize) -> Reply {
        let inner = self.inner.lock().expect("acl log lock");
        let now = Instant::now();
        Reply::Array(
            inner
                .1
                .iter()
                .take(count)
                .map(|e| {
                    let age = now.duration_since(e.created).as_secs_f64();
                    Reply::Map(vec![
                        (Reply::bulk("count"), Reply::Int(e.count as i64)),
                        (Reply::bulk("reason"), Reply::bulk(e.reason)),
                        (Reply::bulk("context"), Reply::bulk(e.context)),
                        (Reply::bulk("object"), Reply::bulk(e.object.clone())),
                        (Reply::bulk("username"), Reply::bulk(e.username.clone())),
                        (Reply::bulk("age-seconds"), Reply::Double(age)),
                        (
                            Reply::bulk("client-info"),
                            Reply::bulk(e.client_info.clone()),
                        ),
                        (Reply::bulk("entry-id"), Reply::Int(e.id as i64)),
                        (
                            Reply::bulk("timestamp-created"),
                            Reply::Int(e.created_unix_ms as i64),
                        ),
                        (
                            Reply::bulk("timestamp-last-updated"),
                            Reply::Int(e.updated_unix_ms as i64),
                        ),
                    ])
                })
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event<'a>(reason: &'static str, object: &'a str) -> Event<'a> {
        Event {
            reason,
            context: "toplevel",
            object,
            username: "alice",
            client_info: String::new(),
        }
    }

    fn counts(log: &AclLog) -> Vec<i64> {
        let Reply::Array(entries) = log.reply(10) else {
            panic!("an array")
        };
        entries
            .iter()
            .map(|e| match e {
                Reply::Map(fields) => match fields[0].1 {
                    Reply::Int(n) => n,
                    _ => panic!("count"),
                },
                _ => panic!("a map"),
            })
            .collect()
    }

    #[test]
    fn alike_entries_count_up_and_the_log_is_bounded() {
        let log = AclLog::new(2);
        log.add(event("auth", "AUTH"));
        log.add(event("auth", "AUTH"));
        assert_eq!(counts(&log), [2]);
        log.add(event("command", "del"));
        log.add(event("key", "k"));
        assert_eq!(counts(&log), [1, 1]);
        log.reset();
        assert!(counts(&log).is_empty());
    }
}
