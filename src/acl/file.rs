//! ACL files as Redis reads and writes them: one `user <name> <rules...>` line per user
//! (`--aclfile`, ACL LOAD, ACL SAVE). Blank lines and `#` comments are skipped.

use super::User;

/// A user's line, as ACL LIST shows it and ACL SAVE writes it.
pub fn line(user: &User) -> String {
    format!("user {} {}", user.name, user.describe())
}

/// The users of a file, or `line N: what is wrong`. A name twice is an error, as in Redis.
pub fn parse(text: &str) -> Result<Vec<User>, String> {
    let mut users: Vec<User> = Vec::new();
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut words = trimmed.split_whitespace();
        if words.next() != Some("user") {
            return Err(format!("line {number}: should start with user keyword"));
        }
        let Some(name) = words.next() else {
            return Err(format!("line {number}: user name is missing"));
        };
        if super::reserved_name(name) {
            return Err(format!("line {number}: the user name '{name}' is reserved"));
        }
        if users.iter().any(|u| u.name == name) {
            return Err(format!("line {number}: duplicate user '{name}' found"));
        }
        let mut user = if name == "default" {
            // Redis starts a file's `default` from scratch as it does any user.
            User::new("default")
        } else {
            User::new(name)
        };
        user.apply_all(words).map_err(|(rule, e)| {
            format!(
                "line {number}: Error in user declaration '{name}': {} ('{rule}')",
                e.text()
            )
        })?;
        users.push(user);
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_reads_back_what_it_wrote() {
        let text = "# users\nuser alice on >pw ~lock:* %R~ro:* &chan* -@all +lock +get\n\n\
                    user default on nopass ~* &* +@all\n";
        let users = parse(text).unwrap();
        assert_eq!(users.len(), 2);
        let written: Vec<String> = users.iter().map(line).collect();
        assert!(written[0].starts_with("user alice on #"), "{}", written[0]);
        assert!(
            written[0].ends_with(" ~lock:* %R~ro:* resetchannels &chan* -@all +lock +get"),
            "{}",
            written[0]
        );
        assert_eq!(written[1], "user default on nopass ~* &* +@all");
        assert_eq!(parse(&written.join("\n")).unwrap(), users);
    }

    #[test]
    fn bad_lines_are_named_by_number() {
        assert_eq!(
            parse("user a on\nbogus").unwrap_err(),
            "line 2: should start with user keyword"
        );
        assert!(parse("user a +nosuch").unwrap_err().starts_with(
            "line 1: Error in user declaration 'a': Unknown command or category name in ACL"
        ));
        assert_eq!(
            parse("user a on\nuser a off").unwrap_err(),
            "line 2: duplicate user 'a' found"
        );
    }
}
