//! `raftlock serve --config FILE`: settings in a file, one `name value` per line as in
//! redis.conf. Lines are split as Redis splits them (double quotes with `\n`, `\t`, `\"`,
//! `\\` and `\xHH` escapes, single quotes taken literally); `#` starts a comment line.
//!
//! A name is any long flag of `raftlock serve` without its dashes (`session-timeout-ms
//! 10000`, `initial-cluster ...`, `join yes`), or one of Redis's own names for the same
//! thing: `port` and `bind` (together `--listen`), `dir` (`--data-dir`), `loglevel`,
//! `proto-max-bulk-len` (`--max-bulk-bytes`), and the TLS settings under Redis's names
//! (`tls-port`, `tls-cert-file`, ...; `port 0` closes the plain port). The file becomes flags placed before those
//! of the command line, so a flag given on the command line overrides the file.

use anyhow::{bail, Context};

/// Long flags of `raftlock serve` that take a value, by name.
const VALUE_FLAGS: &[&str] = &[
    "id",
    "listen",
    "raft-listen",
    "data-dir",
    "initial-cluster",
    "sentinel-master-name",
    "requirepass",
    "log-level",
    "maxclients",
    "threads",
    "max-bulk-bytes",
    "max-ops-per-entry",
    "max-inflight-entries",
    "proposal-linger-yields",
    "snapshot-every-entries",
    "log-entries-kept-after-snapshot",
    "min-free-disk-bytes",
    "session-timeout-ms",
    "redlock-replay-window-ms",
    "tls-port",
    "tls-cert-file",
    "tls-key-file",
    "tls-ca-cert-file",
    "tls-auth-clients",
    "tls-replication",
    "tls-cluster",
    "cluster-secret",
    "cluster-secret-file",
    "cluster-id",
    "notify-keyspace-events",
    "protected-mode",
    "maxmemory",
    "metrics-listen",
    "shutdown-timeout-ms",
    "slowlog-log-slower-than",
    "slowlog-max-len",
    "slowlog-warn-slower-than",
    "aclfile",
];

/// Redis's names for settings raftlock has under another name.
const REDIS_NAMES: &[(&str, &str)] = &[
    ("dir", "data-dir"),
    ("proto-max-bulk-len", "max-bulk-bytes"),
];

/// The flags the file at `path` stands for, in its order.
pub fn flags_from_file(path: &std::path::Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the config file {}", path.display()))?;
    flags(&text).with_context(|| format!("in the config file {}", path.display()))
}

/// The flags `text` stands for.
pub fn flags(text: &str) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    let (mut bind, mut port) = (None, None);
    for (index, line) in text.lines().enumerate() {
        let line_no = index + 1;
        let words = split_line(line).map_err(|e| anyhow::anyhow!("line {line_no}: {e}"))?;
        let Some((name, args)) = words.split_first() else {
            continue;
        };
        let name = name.to_ascii_lowercase();
        let one = || -> anyhow::Result<String> {
            match args {
                [value] => Ok(value.clone()),
                _ => bail!("line {line_no}: '{name}' takes one value"),
            }
        };
        match name.as_str() {
            "port" => port = Some(one()?),
            // Redis binds every address listed; raftlock listens on one.
            "bind" => match args.first() {
                Some(address) => bind = Some(address.clone()),
                None => bail!("line {line_no}: 'bind' takes an address"),
            },
            "loglevel" => {
                let level = match one()?.to_ascii_lowercase().as_str() {
                    "debug" => "debug",
                    "verbose" | "notice" => "info",
                    "warning" => "warn",
                    "nothing" => "error",
                    other => bail!(
                        "line {line_no}: unknown loglevel '{other}' (debug, verbose, notice, warning, nothing)"
                    ),
                };
                out.extend(["--log-level".to_string(), level.to_string()]);
            }
            "join" => match one()?.to_ascii_lowercase().as_str() {
                "yes" => out.push("--join".to_string()),
                "no" => {}
                other => bail!("line {line_no}: 'join' is yes or no, not '{other}'"),
            },
            _ => {
                let flag = REDIS_NAMES
                    .iter()
                    .find(|(redis, _)| *redis == name)
                    .map(|(_, flag)| *flag)
                    .or_else(|| VALUE_FLAGS.iter().copied().find(|flag| *flag == name));
                let Some(flag) = flag else {
                    bail!(
                        "line {line_no}: unknown setting '{name}' (docs/OPERATIONS.md lists them)"
                    );
                };
                out.extend([format!("--{flag}"), one()?]);
            }
        }
    }
    // `port 0` closes the plain port (Redis's way to serve TLS only): --listen keeps
    // the address, --port 0 says so.
    if port.as_deref() == Some("0") {
        out.extend(["--port".to_string(), "0".to_string()]);
        port = None;
    }
    if bind.is_some() || port.is_some() {
        let bind = bind.unwrap_or_else(|| "127.0.0.1".to_string());
        let port = port.unwrap_or_else(|| "6379".to_string());
        let address = if bind.contains(':') {
            format!("[{bind}]:{port}")
        } else {
            format!("{bind}:{port}")
        };
        out.extend(["--listen".to_string(), address]);
    }
    Ok(out)
}

/// Splits a line into words as redis.conf is split; an empty list for a blank or comment
/// line.
fn split_line(line: &str) -> Result<Vec<String>, String> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return Ok(Vec::new());
    }
    let mut words = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        let Some(&first) = chars.peek() else {
            return Ok(words);
        };
        let mut word = String::new();
        match first {
            '"' => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("unbalanced quotes".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some('n') => word.push('\n'),
                            Some('t') => word.push('\t'),
                            Some('r') => word.push('\r'),
                            Some('x') => {
                                let hex: String = chars.by_ref().take(2).collect();
                                let byte = u8::from_str_radix(&hex, 16)
                                    .map_err(|_| format!("bad escape \\x{hex}"))?;
                                word.push(byte as char);
                            }
                            Some(other) => word.push(other),
                            None => return Err("unbalanced quotes".into()),
                        },
                        Some(c) => word.push(c),
                    }
                }
            }
            '\'' => {
                chars.next();
                loop {
                    match chars.next() {
                        None => return Err("unbalanced quotes".into()),
                        Some('\'') => break,
                        Some(c) => word.push(c),
                    }
                }
            }
            _ => {
                while let Some(&c) = chars.peek() {
                    if c.is_whitespace() {
                        break;
                    }
                    word.push(c);
                    chars.next();
                }
                words.push(word);
                continue;
            }
        }
        // A closing quote must end the word, as in Redis.
        if chars.peek().is_some_and(|c| !c.is_whitespace()) {
            return Err("closing quote must be followed by a space".into());
        }
        words.push(word);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flags_of(text: &str) -> Vec<String> {
        flags(text).unwrap_or_else(|e| panic!("{e:#}"))
    }

    #[test]
    fn raftlock_flag_names_and_redis_names_become_flags_in_order() {
        let text = "# a comment\n\nrequirepass \"s3cret pass\"\nsession-timeout-ms 5000\n\
                    dir /var/lib/raftlock\nPROTO-MAX-BULK-LEN 1024\nloglevel notice\n\
                    join yes\nport 7000\nbind 0.0.0.0 ::1\n";
        assert_eq!(
            flags_of(text),
            [
                "--requirepass",
                "s3cret pass",
                "--session-timeout-ms",
                "5000",
                "--data-dir",
                "/var/lib/raftlock",
                "--max-bulk-bytes",
                "1024",
                "--log-level",
                "info",
                "--join",
                "--listen",
                "0.0.0.0:7000",
            ]
        );
        assert_eq!(flags_of("port 7001"), ["--listen", "127.0.0.1:7001"]);
        assert_eq!(
            flags_of("aclfile /etc/raftlock/users.acl"),
            ["--aclfile", "/etc/raftlock/users.acl"]
        );
        assert_eq!(flags_of("bind ::1\nport 7001"), ["--listen", "[::1]:7001"]);
    }

    #[test]
    fn tls_settings_take_redis_names_and_port_0_closes_the_plain_port() {
        let text = "bind 10.0.0.1\nport 0\ntls-port 6380\ntls-cert-file /etc/r/node.crt\n\
                    tls-key-file /etc/r/node.key\ntls-ca-cert-file /etc/r/ca.crt\n\
                    tls-auth-clients optional\ncluster-secret-file /etc/r/secret\n";
        assert_eq!(
            flags_of(text),
            [
                "--tls-port",
                "6380",
                "--tls-cert-file",
                "/etc/r/node.crt",
                "--tls-key-file",
                "/etc/r/node.key",
                "--tls-ca-cert-file",
                "/etc/r/ca.crt",
                "--tls-auth-clients",
                "optional",
                "--cluster-secret-file",
                "/etc/r/secret",
                "--port",
                "0",
                "--listen",
                "10.0.0.1:6379",
            ]
        );
    }

    #[test]
    fn lines_split_as_redis_conf_splits_them() {
        assert_eq!(
            split_line("  a  'b c'  \"d\\te\\x41\" ").unwrap(),
            ["a", "b c", "d\teA"]
        );
        assert_eq!(split_line("# all comment").unwrap(), Vec::<String>::new());
        assert!(split_line("a \"open").is_err());
        assert!(split_line("a 'x'y").is_err());
    }

    #[test]
    fn unknown_settings_and_wrong_arity_name_their_line() {
        let err = |text: &str| format!("{:#}", flags(text).unwrap_err());
        assert!(err("port 1\nnosuch 1").contains("line 2: unknown setting 'nosuch'"));
        assert!(err("requirepass a b").contains("line 1: 'requirepass' takes one value"));
        assert!(err("loglevel loud").contains("unknown loglevel"));
        assert!(err("join maybe").contains("yes or no"));
    }
}
