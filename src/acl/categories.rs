//! ACL categories: Redis's, plus raftlock's `@raftlock` (LOCK, UNLOCK, RENEW, FENCE,
//! ...). A command's categories come from its row of the command table
//! (`CommandSpec::acl_categories`).

use crate::command::{CommandSpec, COMMANDS};

/// Every category, in Redis's order (ACL CAT), raftlock's last.
pub(crate) const ALL: &[&str] = &[
    "keyspace",
    "read",
    "write",
    "set",
    "sortedset",
    "list",
    "hash",
    "string",
    "bitmap",
    "hyperloglog",
    "geo",
    "stream",
    "pubsub",
    "admin",
    "fast",
    "slow",
    "blocking",
    "dangerous",
    "connection",
    "transaction",
    "scripting",
    "raftlock",
];

/// The category named `name` (without its `@`), ignoring case.
pub(crate) fn named(name: &str) -> Option<&'static str> {
    ALL.iter().copied().find(|c| c.eq_ignore_ascii_case(name))
}

/// The categories of a command, without their `@`.
pub(crate) fn of(spec: &CommandSpec) -> Vec<&'static str> {
    spec.acl_categories()
        .into_iter()
        .map(|c| c.trim_start_matches('@'))
        .collect()
}

/// The names of the commands in `category` (a container's subcommands as
/// `container|sub`), as ACL CAT lists them.
pub(crate) fn commands_in(category: &str) -> Vec<&'static str> {
    let mut names = Vec::new();
    for spec in COMMANDS {
        if spec.subcommands.is_empty() {
            if of(spec).contains(&category) {
                names.push(spec.name);
            }
        } else {
            for sub in spec.subcommands {
                if of(sub).contains(&category) {
                    names.push(sub.name);
                }
            }
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::lookup;

    fn categories(name: &str) -> Vec<&'static str> {
        of(lookup(name.as_bytes()).expect("in the table"))
    }

    #[test]
    fn categories_are_redis_s_for_redis_commands() {
        assert_eq!(categories("get"), ["read", "string", "fast"]);
        assert_eq!(categories("set"), ["write", "string", "slow"]);
        assert_eq!(categories("del"), ["write", "keyspace", "slow"]);
        assert_eq!(categories("sadd"), ["write", "set", "fast"]);
        assert_eq!(
            categories("keys"),
            ["read", "keyspace", "slow", "dangerous"]
        );
        // Redis's json names these beyond what flags and group give.
        assert_eq!(
            categories("flushall"),
            ["write", "slow", "keyspace", "dangerous"]
        );
        assert_eq!(categories("dbsize"), ["read", "fast", "keyspace"]);
        assert_eq!(categories("role"), ["fast", "admin", "dangerous"]);
        assert_eq!(categories("config"), ["slow", "admin", "dangerous"]);
        assert_eq!(categories("blpop"), ["write", "list", "slow", "blocking"]);
        assert_eq!(categories("publish"), ["pubsub", "fast"]);
    }

    #[test]
    fn lock_commands_are_in_raftlock_s_own_category() {
        assert_eq!(
            categories("lock"),
            ["write", "raftlock", "slow", "blocking"]
        );
        assert_eq!(categories("unlock"), ["write", "raftlock", "fast"]);
        assert_eq!(categories("lockinfo"), ["read", "raftlock", "fast"]);
        let locks = commands_in("raftlock");
        for name in ["lock", "rlock", "unlock", "renew", "fence", "checkfence"] {
            assert!(locks.contains(&name), "{name}");
        }
    }

    #[test]
    fn names_are_found_ignoring_case() {
        assert_eq!(named("Dangerous"), Some("dangerous"));
        assert_eq!(named("raftlock"), Some("raftlock"));
        assert_eq!(named("nosuch"), None);
    }
}
