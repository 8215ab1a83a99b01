//! Splitting an interactive line into words, exactly as zkCli does.
//!
//! zkCli (`ZooKeeperMain.MyCommandOptions.parseCommand`) finds successive matches of the
//! regular expression `\s*([^"']\S*|"[^"]*"|'[^']*')\s*` and keeps group 1, then strips
//! one pair of matching surrounding quotes. Its quirks are part of the behaviour users
//! see, so this is a hand-written equivalent of that regex's backtracking rather than a
//! shell-like splitter:
//! - a line of blanks yields one word made of a single blank (the greedy leading `\s*`
//!   gives one back so that `[^"']` can match it), which then is an unknown command;
//! - an unclosed quote is skipped, except at the very start of a line after blanks,
//!   where the last blank and the rest of the word become one word (` "abc`);
//! - quotes inside a word are kept (`a"b c"` is `a"b` and `c"`).

/// Java's `\s`: space, tab, newline, vertical tab, form feed, carriage return.
fn is_java_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

fn is_quote(c: char) -> bool {
    c == '"' || c == '\''
}

/// Tries the regex at `start`; returns the group and the end of the whole match.
fn match_at(chars: &[char], start: usize) -> Option<(String, usize)> {
    let mut blank_end = start;
    while blank_end < chars.len() && is_java_space(chars[blank_end]) {
        blank_end += 1;
    }
    // Greedy `\s*` first, then give back one blank at a time (each given-back blank can
    // only start the first alternative, and does so at once).
    let mut q = blank_end;
    loop {
        if let Some(group_end) = group_at(chars, q) {
            let mut end = group_end;
            while end < chars.len() && is_java_space(chars[end]) {
                end += 1;
            }
            return Some((chars[q..group_end].iter().collect(), end));
        }
        if q == start {
            return None;
        }
        q -= 1;
    }
}

/// Group 1 of the regex starting exactly at `q`: its end, if it matches.
fn group_at(chars: &[char], q: usize) -> Option<usize> {
    let c = *chars.get(q)?;
    if !is_quote(c) {
        let mut end = q + 1;
        while end < chars.len() && !is_java_space(chars[end]) {
            end += 1;
        }
        return Some(end);
    }
    let close = chars[q + 1..].iter().position(|&d| d == c)?;
    Some(q + 1 + close + 1)
}

/// The words of `line` (an empty vector when nothing matches).
pub fn tokenize(line: &str) -> Vec<String> {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut at = 0;
    while at < chars.len() {
        match match_at(&chars, at) {
            Some((group, end)) => {
                words.push(strip_quotes(group));
                at = end;
            }
            // Matcher.find moves on one character when nothing matches here.
            None => at += 1,
        }
    }
    words
}

/// QUOTED_PATTERN `^(['"])(.*)(\1)$`: one pair of equal surrounding quotes goes.
fn strip_quotes(word: String) -> String {
    let mut chars = word.chars();
    match (chars.next(), chars.next_back()) {
        (Some(first), Some(last)) if is_quote(first) && first == last => chars.collect(),
        _ => word,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(line: &str) -> Vec<String> {
        tokenize(line)
    }

    #[test]
    fn plain_words_and_quotes() {
        assert_eq!(t("ls   /"), vec!["ls", "/"]);
        assert_eq!(
            t("  create /q \"hello world\" "),
            vec!["create", "/q", "hello world"]
        );
        assert_eq!(t("create /q 'a b'"), vec!["create", "/q", "a b"]);
        assert_eq!(t("set /a \"\""), vec!["set", "/a", ""]);
        assert_eq!(t("a\"b c\""), vec!["a\"b", "c\""]);
    }

    #[test]
    fn java_regex_quirks() {
        assert_eq!(t("   "), vec![" "]);
        assert_eq!(t("\t"), vec!["\t"]);
        assert_eq!(t(""), Vec::<String>::new());
        // The blank after `ls` belongs to the first match, so the unclosed quote is
        // skipped; at the start of a line the blank itself starts the word.
        assert_eq!(t("ls \"abc"), vec!["ls", "abc"]);
        assert_eq!(t(" \"abc"), vec![" \"abc"]);
        assert_eq!(t("\"abc"), vec!["abc"]);
        assert_eq!(t("\""), Vec::<String>::new());
        assert_eq!(t("get \"/a\"x"), vec!["get", "/a", "x"]);
    }
}
