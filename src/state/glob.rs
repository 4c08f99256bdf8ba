//! Redis's glob matcher (`stringmatchlen` in util.c), byte for byte, so KEYS and SCAN
//! MATCH select exactly the keys Redis would, odd patterns included.

/// Whether `string` matches the glob `pattern`: `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, and
/// `\` to quote the next byte. Case-sensitive, byte-wise.
pub fn matches(pattern: &[u8], string: &[u8]) -> bool {
    let mut skip_longer = false;
    match_from(pattern, string, &mut skip_longer, 0)
}

use crate::config::state_limits::MAX_GLOB_NESTING as MAX_NESTING;

/// `skip_longer` is Redis's `skipLongerMatches`: once the rest of the pattern after a `*`
/// failed to match anywhere in the rest of the string, an earlier `*` taking more bytes
/// cannot help, which keeps patterns like `a*a*a*a*b` linear rather than exponential.
fn match_from(pattern: &[u8], string: &[u8], skip_longer: &mut bool, nesting: u32) -> bool {
    if nesting > MAX_NESTING {
        return false;
    }
    // Redis reads the C string's terminating NUL past the end; so do we.
    let at = |i: usize| pattern.get(i).copied().unwrap_or(0);
    let (mut p, mut s) = (0usize, 0usize);
    while p < pattern.len() && s < string.len() {
        match pattern[p] {
            b'*' => {
                while p < pattern.len() && at(p + 1) == b'*' {
                    p += 1;
                }
                if pattern.len() - p == 1 {
                    return true;
                }
                while s < string.len() {
                    if match_from(&pattern[p + 1..], &string[s..], skip_longer, nesting + 1) {
                        return true;
                    }
                    if *skip_longer {
                        return false;
                    }
                    s += 1;
                }
                *skip_longer = true;
                return false;
            }
            b'?' => s += 1,
            b'[' => {
                let c = string[s];
                p += 1;
                let negate = at(p) == b'^';
                if negate {
                    p += 1;
                }
                let mut matched = false;
                loop {
                    let left = pattern.len() - p;
                    if at(p) == b'\\' && left >= 2 {
                        p += 1;
                        if pattern[p] == c {
                            matched = true;
                        }
                    } else if at(p) == b']' {
                        break;
                    } else if left == 0 {
                        // Unterminated class: step back so the increment below ends the
                        // pattern exactly at its end.
                        p -= 1;
                        break;
                    } else if left >= 3 && pattern[p + 1] == b'-' {
                        let (lo, hi) = (
                            pattern[p].min(pattern[p + 2]),
                            pattern[p].max(pattern[p + 2]),
                        );
                        p += 2;
                        if (lo..=hi).contains(&c) {
                            matched = true;
                        }
                    } else if pattern[p] == c {
                        matched = true;
                    }
                    p += 1;
                }
                if matched == negate {
                    return false;
                }
                s += 1;
            }
            b'\\' => {
                if pattern.len() - p >= 2 {
                    p += 1;
                }
                if pattern[p] != string[s] {
                    return false;
                }
                s += 1;
            }
            literal => {
                if literal != string[s] {
                    return false;
                }
                s += 1;
            }
        }
        p += 1;
        if s == string.len() {
            while at(p) == b'*' {
                p += 1;
            }
            break;
        }
    }
    p == pattern.len() && s == string.len()
}

#[cfg(test)]
mod tests {
    use super::matches;

    fn m(pattern: &str, string: &str) -> bool {
        matches(pattern.as_bytes(), string.as_bytes())
    }

    #[test]
    fn star_matches_any_run_including_empty() {
        assert!(m("*", "anything"));
        assert!(m("h*llo", "hllo"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("a*", "a"));
        assert!(m("**a**", "a"));
        assert!(m("*a*b*", "xxaxxbxx"));
        assert!(!m("*a*b*", "xxbxxaxx"));
        assert!(!m("a*", "ba"));
    }

    #[test]
    fn question_mark_matches_exactly_one_byte() {
        assert!(m("h?llo", "hello"));
        assert!(m("h?llo", "hallo"));
        assert!(!m("h?llo", "hllo"));
        assert!(!m("?", ""));
    }

    #[test]
    fn classes_ranges_and_negation() {
        assert!(m("h[ae]llo", "hello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(!m("h[a-b]llo", "hcllo"));
        // A reversed range is swapped, as in Redis.
        assert!(m("[z-a]", "m"));
        assert!(m("[\\]]", "]"));
        assert!(m("[a\\-z]", "-"));
        assert!(!m("[a\\-z]", "b"));
    }

    #[test]
    fn backslash_quotes_the_next_byte() {
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("\\?x", "?x"));
        assert!(m("a\\", "a\\"));
    }

    #[test]
    fn unterminated_class_matches_like_redis() {
        // Redis treats "[abc" as the class [abc] running to the end of the pattern.
        assert!(m("[abc", "a"));
        assert!(!m("[abc", "d"));
        assert!(!m("x[", "x["));
        assert!(!m("x[", "xa"));
        assert!(m("[^", "a"));
    }

    #[test]
    fn empty_string_matches_no_pattern_as_in_redis() {
        // Redis's matcher never matches an empty string; KEYS and SCAN special-case "*".
        assert!(!m("*", ""));
        assert!(!m("**", ""));
        assert!(m("", ""));
        assert!(!m("", "a"));
    }

    #[test]
    fn trailing_stars_match_the_empty_rest() {
        assert!(m("abc*", "abc"));
        assert!(m("abc***", "abc"));
        assert!(!m("abc*d", "abc"));
    }

    #[test]
    fn matching_is_byte_wise_and_case_sensitive() {
        assert!(!m("A", "a"));
        assert!(matches(b"\xff*", b"\xff\x00\x01"));
        assert!(matches(b"[\x00-\x02]", b"\x01"));
    }

    #[test]
    fn pathological_patterns_finish_quickly() {
        let string = "a".repeat(10_000);
        let pattern = format!("{}b", "a*".repeat(50));
        assert!(!m(&pattern, &string));
        let deep = "*a".repeat(2000);
        assert!(!m(&deep, &string));
    }
}
