//! One ACL user and Redis's rules that change it (`ACL SETUSER name rule...`, a line of an
//! ACL file): on/off, passwords (`>pass`, `<pass`, `#hash`, `!hash`, `nopass`,
//! `resetpass`), commands and categories (`+get`, `-@dangerous`, `+config|get`,
//! `allcommands`, `nocommands`), key patterns (`~lock:*`, `%R~`, `%W~`, `allkeys`,
//! `resetkeys`), channel patterns (`&chan*`, `allchannels`, `resetchannels`) and `reset`.
//! Pure: parsing, applying and describing, no I/O.

use sha2::{Digest, Sha256};

use super::categories;
use crate::command::{self, CommandSpec};

/// A rule on commands, applied in order: the last rule that names a command decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Target {
    All,
    Category(&'static str),
    /// A command (a container's subcommand row is named by its container too).
    Command(&'static str),
    /// `command|subcommand`.
    Subcommand(&'static str, String),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct CommandRule {
    pub(crate) allow: bool,
    pub(crate) target: Target,
}

/// A key pattern and what it lets through (`~` both, `%R~` reads, `%W~` writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct KeyPattern {
    pub(crate) pattern: String,
    pub(crate) read: bool,
    pub(crate) write: bool,
}

/// A user as `ACL SETUSER` leaves it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct User {
    pub(crate) name: String,
    pub(crate) enabled: bool,
    pub(crate) nopass: bool,
    /// SHA-256 of each password, lower-case hex, in the order they were added.
    pub(crate) passwords: Vec<String>,
    pub(crate) commands: Vec<CommandRule>,
    pub(crate) keys: Vec<KeyPattern>,
    pub(crate) channels: Vec<String>,
}

/// The SHA-256 of a password in lower-case hex, as Redis stores it.
pub fn password_hash(password: &[u8]) -> String {
    hex(&Sha256::digest(password))
}

pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_hash(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Redis's reason for a rule it refuses; the caller adds `Error in ACL SETUSER modifier`.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RuleError {
    Syntax,
    UnknownCommand,
    BadHash,
    NoSuchPassword,
    Selectors,
    KeyAfterAllKeys,
    ChannelAfterAllChannels,
}

impl RuleError {
    pub(crate) fn text(&self) -> &'static str {
        match self {
            RuleError::Syntax => "Syntax error",
            RuleError::UnknownCommand => "Unknown command or category name in ACL",
            RuleError::BadHash => "The password hash must be exactly 64 characters and contain only lowercase hexadecimal characters",
            RuleError::NoSuchPassword => {
                "The password you are trying to remove from the user does not exist"
            }
            RuleError::KeyAfterAllKeys => "Adding a pattern after the * pattern (or the 'allkeys' flag) is not valid and does not have any effect. Try 'resetkeys' to start with an empty list of patterns",
            RuleError::ChannelAfterAllChannels => "Adding a pattern after the * pattern (or the 'allchannels' flag) is not valid and does not have any effect. Try 'resetchannels' to start with an empty list of channels",
            RuleError::Selectors => "Selectors are not supported by raftlock",
        }
    }
}

impl User {
    /// A user as `ACL SETUSER` creates it: off, no password, no keys, no channels, no
    /// commands.
    pub fn new(name: &str) -> User {
        User {
            name: name.to_owned(),
            enabled: false,
            nopass: false,
            passwords: Vec::new(),
            commands: Vec::new(),
            keys: Vec::new(),
            channels: Vec::new(),
        }
    }

    /// Redis's `default` user: on, every command, key and channel; `nopass` unless a
    /// password (`requirepass`'s hash) is given.
    pub fn default_user(password_hash: Option<&str>) -> User {
        let mut user = User::new("default");
        for rule in ["on", "~*", "&*", "+@all"] {
            user.apply(rule).expect("a valid rule");
        }
        match password_hash {
            Some(hash) => user.passwords.push(hash.to_owned()),
            None => user.nopass = true,
        }
        user
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `password` opens this user (on, and nopass or one of its passwords).
    pub fn accepts(&self, password: &[u8]) -> bool {
        if !self.enabled {
            return false;
        }
        self.nopass || self.passwords.contains(&password_hash(password))
    }

    /// Every command, key and channel: nothing to check.
    pub fn unrestricted(&self) -> bool {
        let all_commands = matches!(
            self.commands.as_slice(),
            [CommandRule {
                allow: true,
                target: Target::All
            }]
        );
        all_commands
            && self
                .keys
                .iter()
                .any(|k| k.pattern == "*" && k.read && k.write)
            && self.channels.iter().any(|c| c == "*")
    }

    /// Applies rules in order, all or none (as Redis's ACL SETUSER): the first refused
    /// one is returned with its text.
    pub(crate) fn apply_all<'a>(
        &mut self,
        rules: impl IntoIterator<Item = &'a str>,
    ) -> Result<(), (String, RuleError)> {
        let mut changed = self.clone();
        for rule in rules {
            changed.apply(rule).map_err(|e| (rule.to_owned(), e))?;
        }
        *self = changed;
        Ok(())
    }

    /// Applies one rule.
    pub(crate) fn apply(&mut self, rule: &str) -> Result<(), RuleError> {
        let lower = rule.to_ascii_lowercase();
        match lower.as_str() {
            "on" => self.enabled = true,
            "off" => self.enabled = false,
            "nopass" => {
                self.nopass = true;
                self.passwords.clear();
            }
            "resetpass" => {
                self.nopass = false;
                self.passwords.clear();
            }
            "allkeys" => self.apply("~*")?,
            "resetkeys" => self.keys.clear(),
            "allchannels" => self.apply("&*")?,
            "resetchannels" => self.channels.clear(),
            "allcommands" => self.apply("+@all")?,
            "nocommands" => self.apply("-@all")?,
            "reset" => {
                for rule in ["resetpass", "resetkeys", "resetchannels", "off", "-@all"] {
                    self.apply(rule)?;
                }
            }
            _ => return self.apply_with_argument(rule),
        }
        Ok(())
    }

    fn apply_with_argument(&mut self, rule: &str) -> Result<(), RuleError> {
        let (first, rest) = rule.split_at(rule.chars().next().map_or(0, char::len_utf8));
        match first {
            ">" => {
                let hash = password_hash(rest.as_bytes());
                self.add_password(hash);
            }
            "#" => {
                if !is_hash(rest) {
                    return Err(RuleError::BadHash);
                }
                self.add_password(rest.to_owned());
            }
            "<" => self.remove_password(&password_hash(rest.as_bytes()))?,
            "!" => {
                if !is_hash(rest) {
                    return Err(RuleError::BadHash);
                }
                self.remove_password(rest)?;
            }
            "~" => self.add_keys(rest, true, true)?,
            "%" => {
                let (perms, pattern) = rest.split_once('~').ok_or(RuleError::Syntax)?;
                let perms = perms.to_ascii_uppercase();
                if perms.is_empty() || !perms.bytes().all(|b| b == b'R' || b == b'W') {
                    return Err(RuleError::Syntax);
                }
                self.add_keys(pattern, perms.contains('R'), perms.contains('W'))?;
            }
            "&" => {
                if rest == "*" {
                    self.channels.clear();
                } else if self.channels.iter().any(|c| c == "*") {
                    return Err(RuleError::ChannelAfterAllChannels);
                }
                if !self.channels.iter().any(|c| c == rest) {
                    self.channels.push(rest.to_owned());
                }
            }
            "+" | "-" => self.add_command_rule(first == "+", rest)?,
            "(" => return Err(RuleError::Selectors),
            _ => return Err(RuleError::Syntax),
        }
        Ok(())
    }

    fn add_password(&mut self, hash: String) {
        self.nopass = false;
        if !self.passwords.contains(&hash) {
            self.passwords.push(hash);
        }
    }

    fn remove_password(&mut self, hash: &str) -> Result<(), RuleError> {
        let before = self.passwords.len();
        self.passwords.retain(|p| p != hash);
        if self.passwords.len() == before {
            return Err(RuleError::NoSuchPassword);
        }
        self.nopass = false;
        Ok(())
    }

    fn add_keys(&mut self, pattern: &str, read: bool, write: bool) -> Result<(), RuleError> {
        if pattern == "*" && read && write {
            self.keys.clear();
        } else if self
            .keys
            .iter()
            .any(|k| k.pattern == "*" && k.read && k.write)
        {
            return Err(RuleError::KeyAfterAllKeys);
        }
        match self.keys.iter_mut().find(|k| k.pattern == pattern) {
            Some(existing) => {
                existing.read |= read;
                existing.write |= write;
            }
            None => self.keys.push(KeyPattern {
                pattern: pattern.to_owned(),
                read,
                write,
            }),
        }
        Ok(())
    }

    fn add_command_rule(&mut self, allow: bool, what: &str) -> Result<(), RuleError> {
        let what = what.to_ascii_lowercase();
        let target = if let Some(category) = what.strip_prefix('@') {
            if category == "all" {
                Target::All
            } else {
                Target::Category(categories::named(category).ok_or(RuleError::UnknownCommand)?)
            }
        } else if let Some((name, sub)) = what.split_once('|') {
            let spec = known_command(name)?;
            if sub.is_empty() || sub.contains('|') {
                return Err(RuleError::Syntax);
            }
            Target::Subcommand(spec.name, sub.to_owned())
        } else {
            Target::Command(known_command(&what)?.name)
        };
        // A rule overrides every earlier one it covers entirely: drop them, so ACL LIST
        // stays short (as Redis's does).
        match &target {
            // No rule allows nothing: `-@all` is the empty list.
            Target::All if !allow => {
                self.commands.clear();
                return Ok(());
            }
            Target::All => self.commands.clear(),
            Target::Command(name) => self.commands.retain(|r| match &r.target {
                Target::Command(n) | Target::Subcommand(n, _) => n != name,
                _ => true,
            }),
            Target::Subcommand(..) | Target::Category(_) => {
                self.commands.retain(|r| r.target != target)
            }
        }
        self.commands.push(CommandRule { allow, target });
        Ok(())
    }

    /// Whether the user may run `spec` (its subcommand being `argv[1]`, if any).
    pub(crate) fn may_run(&self, spec: &CommandSpec, sub: Option<&[u8]>) -> bool {
        let (parent, own_sub) = match spec.name.split_once('|') {
            Some((parent, sub)) => (parent, Some(sub.as_bytes())),
            None => (spec.name, sub),
        };
        let mut allowed = false;
        for rule in &self.commands {
            let hit = match &rule.target {
                Target::All => true,
                Target::Category(category) => categories::of(spec).contains(category),
                Target::Command(name) => *name == parent,
                Target::Subcommand(name, wanted) => {
                    *name == parent
                        && own_sub.is_some_and(|s| s.eq_ignore_ascii_case(wanted.as_bytes()))
                }
            };
            if hit {
                allowed = rule.allow;
            }
        }
        allowed
    }

    /// The rules that make this user from nothing, as ACL LIST shows them after the name.
    pub fn describe(&self) -> String {
        let mut words = vec![if self.enabled { "on" } else { "off" }.to_owned()];
        if self.nopass {
            words.push("nopass".into());
        }
        words.extend(self.passwords.iter().map(|p| format!("#{p}")));
        let keys = self.describe_keys();
        if !keys.is_empty() {
            words.push(keys);
        }
        words.push(self.describe_channels());
        words.push(self.describe_commands());
        words.join(" ")
    }

    pub(crate) fn describe_keys(&self) -> String {
        let words: Vec<String> = self
            .keys
            .iter()
            .map(|k| match (k.read, k.write) {
                (true, true) => format!("~{}", k.pattern),
                (true, false) => format!("%R~{}", k.pattern),
                _ => format!("%W~{}", k.pattern),
            })
            .collect();
        words.join(" ")
    }

    /// `&*`, or `resetchannels` followed by the patterns, as Redis 7 shows them.
    pub(crate) fn describe_channels(&self) -> String {
        if self.channels.iter().any(|c| c == "*") {
            return "&*".into();
        }
        let mut words = vec!["resetchannels".to_owned()];
        words.extend(self.channels.iter().map(|c| format!("&{c}")));
        words.join(" ")
    }

    /// Channel patterns as ACL GETUSER shows them (`&*`, `&chan*`), without a reset.
    pub(crate) fn channel_patterns(&self) -> String {
        let words: Vec<String> = self.channels.iter().map(|c| format!("&{c}")).collect();
        words.join(" ")
    }

    pub(crate) fn describe_commands(&self) -> String {
        let mut words = Vec::new();
        if !matches!(self.commands.first(), Some(r) if r.target == Target::All) {
            words.push("-@all".to_owned());
        }
        for rule in &self.commands {
            let sign = if rule.allow { '+' } else { '-' };
            words.push(match &rule.target {
                Target::All => format!("{sign}@all"),
                Target::Category(c) => format!("{sign}@{c}"),
                Target::Command(n) => format!("{sign}{n}"),
                Target::Subcommand(n, s) => format!("{sign}{n}|{s}"),
            });
        }
        words.join(" ")
    }

    pub(crate) fn may_read_or_write(&self, key: &[u8], write: bool) -> bool {
        self.keys.iter().any(|k| {
            (if write { k.write } else { k.read })
                && crate::state::glob::matches(k.pattern.as_bytes(), key)
        })
    }

    /// PUBLISH and SUBSCRIBE name channels, matched against the patterns; PSUBSCRIBE
    /// names patterns, allowed only as written in a rule (or with `&*`).
    pub(crate) fn may_use_channel(&self, channel: &[u8], literal: bool) -> bool {
        self.channels.iter().any(|c| {
            c == "*"
                || if literal {
                    c.as_bytes() == channel
                } else {
                    crate::state::glob::matches(c.as_bytes(), channel)
                }
        })
    }
}

/// A command named in a rule: one of the table's, or a container's subcommand row.
fn known_command(name: &str) -> Result<&'static CommandSpec, RuleError> {
    command::lookup(name.as_bytes()).ok_or(RuleError::UnknownCommand)
}

#[cfg(test)]
#[path = "user_tests.rs"]
mod tests;
