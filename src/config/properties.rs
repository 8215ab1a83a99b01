//! A `java.util.Properties` lexer that keeps line numbers, for zoo.cfg and the files it names.
//!
//! The grammar is the one `Properties.load` documents, which ZooKeeper's `QuorumPeerConfig`
//! uses to read zoo.cfg:
//! - natural lines end at `\n`, `\r` or `\r\n`;
//! - a line whose first non-blank character is `#` or `!` is a comment, and so is a line of
//!   blanks (space, tab, form feed); a comment never continues onto the next line;
//! - a line ending in an odd number of backslashes continues on the next natural line, whose
//!   leading blanks are dropped (a continuation line starting with `#` is text, not a comment);
//! - the key runs to the first unescaped `=`, `:` or blank; then blanks, at most one `=` or
//!   `:`, and blanks are skipped; the rest of the logical line is the value;
//! - escapes: `\t`, `\n`, `\r`, `\f`, `\uXXXX` (UTF-16, surrogate pairs joined), and `\c` for
//!   any other `c` is `c` itself; a backslash at the very end of the file is dropped.
//!
//! Then, as `QuorumPeerConfig.parseProperties` does, key and value are trimmed of everything
//! up to and including the space character (Java's `String.trim`).
//!
//! Why not the `java-properties` crate: to read UTF-8 it needs an `encoding_rs` encoding
//! passed in (the crate does not re-export one, and its default is windows-1252, which would
//! garble non-ASCII paths); a lone surrogate and line numbers of escape errors are reported
//! here precisely; and this lexer has no panicking path, which matters for a fuzz target.
//!
//! Encoding: Java reads zoo.cfg as ISO-8859-1. Corral reads UTF-8, and falls back to
//! ISO-8859-1 for a file that is not valid UTF-8, so both kinds of files keep working.

use std::borrow::Cow;

/// One `key=value` pair and the natural line its key starts on (1-based).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub key: String,
    pub value: String,
    pub line: u32,
}

/// A malformed escape, on the natural line where its logical line starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    pub line: u32,
    pub message: String,
}

/// Decodes file bytes: UTF-8 when valid, else ISO-8859-1 (each byte is one code point).
pub(crate) fn decode_text(bytes: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => Cow::Owned(bytes.iter().map(|&b| char::from(b)).collect()),
    }
}

/// Splits `text` into entries, in file order (duplicates kept; the caller decides who wins).
pub(crate) fn parse(text: &str) -> Result<Vec<Entry>, SyntaxError> {
    let mut entries = Vec::new();
    let mut lines = NaturalLines::new(text);
    while let Some((line_number, line)) = lines.next() {
        let start = line.trim_start_matches(is_blank);
        if start.is_empty() || start.starts_with('#') || start.starts_with('!') {
            continue;
        }
        let mut logical = String::from(start);
        while ends_in_odd_backslashes(&logical) {
            logical.pop();
            match lines.next() {
                Some((_, next)) => logical.push_str(next.trim_start_matches(is_blank)),
                // Java drops a backslash left dangling at the end of the file.
                None => break,
            }
        }
        let (raw_key, raw_value) = split_key_value(&logical);
        let key = unescape(raw_key, line_number)?;
        let value = unescape(raw_value, line_number)?;
        entries.push(Entry {
            key: java_trim(&key).to_string(),
            value: java_trim(&value).to_string(),
            line: line_number,
        });
    }
    Ok(entries)
}

/// The blanks of the properties grammar: space, tab, form feed.
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t' || c == '\x0c'
}

/// Java's `String.trim`: strips every char up to U+0020 from both ends.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn ends_in_odd_backslashes(s: &str) -> bool {
    s.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Iterates natural lines with 1-based numbers; the numbers saturate rather than wrap.
struct NaturalLines<'a> {
    rest: &'a str,
    number: u32,
    done: bool,
}

impl<'a> NaturalLines<'a> {
    fn new(text: &'a str) -> Self {
        NaturalLines {
            rest: text,
            number: 0,
            done: false,
        }
    }
}

impl<'a> Iterator for NaturalLines<'a> {
    type Item = (u32, &'a str);

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        self.number = self.number.saturating_add(1);
        match self.rest.find(['\n', '\r']) {
            Some(end) => {
                let line = &self.rest[..end];
                let terminator = if self.rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                self.rest = &self.rest[end + terminator..];
                Some((self.number, line))
            }
            None => {
                self.done = true;
                if self.rest.is_empty() {
                    return None;
                }
                Some((self.number, self.rest))
            }
        }
    }
}

/// Splits a logical line (leading blanks already gone) into raw key and raw value.
fn split_key_value(logical: &str) -> (&str, &str) {
    let mut key_end = logical.len();
    let mut escaped = false;
    for (index, c) in logical.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        if c == '\\' {
            escaped = true;
        } else if c == '=' || c == ':' || is_blank(c) {
            key_end = index;
            break;
        }
    }
    let key = &logical[..key_end];
    let mut rest = logical[key_end..].trim_start_matches(is_blank);
    if let Some(stripped) = rest.strip_prefix(['=', ':']) {
        rest = stripped.trim_start_matches(is_blank);
    }
    (key, rest)
}

/// Resolves escapes. `line` is only used to place errors.
fn unescape(raw: &str, line: u32) -> Result<String, SyntaxError> {
    if !raw.contains('\\') {
        return Ok(raw.to_string());
    }
    let mut out = String::with_capacity(raw.len());
    let mut chars = raw.chars();
    // A high surrogate from `\uD8xx`, waiting for its low half.
    let mut pending_high: Option<u16> = None;
    while let Some(c) = chars.next() {
        if c != '\\' {
            if pending_high.is_some() {
                return Err(lone_surrogate(line));
            }
            out.push(c);
            continue;
        }
        let Some(escaped) = chars.next() else {
            // `parse` already dropped a backslash left at the end of the file, as Java does;
            // drop one here too rather than invent a character.
            break;
        };
        if escaped != 'u' {
            if pending_high.is_some() {
                return Err(lone_surrogate(line));
            }
            out.push(match escaped {
                't' => '\t',
                'n' => '\n',
                'r' => '\r',
                'f' => '\x0c',
                other => other,
            });
            continue;
        }
        let mut unit: u16 = 0;
        for _ in 0..4 {
            let digit = chars
                .next()
                .and_then(|d| d.to_digit(16))
                .ok_or_else(|| SyntaxError {
                    line,
                    message: "malformed \\uXXXX escape: expected four hex digits".to_string(),
                })?;
            // Four hex digits fit in 16 bits: the shift never loses a set bit.
            unit = (unit << 4) | digit as u16;
        }
        match (pending_high.take(), unit) {
            (None, 0xD800..=0xDBFF) => pending_high = Some(unit),
            (None, 0xDC00..=0xDFFF) => return Err(lone_surrogate(line)),
            (None, _) => match char::from_u32(u32::from(unit)) {
                Some(decoded) => out.push(decoded),
                None => return Err(lone_surrogate(line)),
            },
            (Some(high), 0xDC00..=0xDFFF) => {
                let code =
                    0x10000 + ((u32::from(high) - 0xD800) << 10) + (u32::from(unit) - 0xDC00);
                match char::from_u32(code) {
                    Some(decoded) => out.push(decoded),
                    None => return Err(lone_surrogate(line)),
                }
            }
            (Some(_), _) => return Err(lone_surrogate(line)),
        }
    }
    if pending_high.is_some() {
        return Err(lone_surrogate(line));
    }
    Ok(out)
}

fn lone_surrogate(line: u32) -> SyntaxError {
    SyntaxError {
        line,
        message: "\\uXXXX escape is half of a UTF-16 surrogate pair".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(text: &str) -> Vec<(String, String, u32)> {
        parse(text)
            .expect("valid properties")
            .into_iter()
            .map(|e| (e.key, e.value, e.line))
            .collect()
    }

    fn one(k: &str, v: &str, line: u32) -> (String, String, u32) {
        (k.to_string(), v.to_string(), line)
    }

    #[test]
    fn separators_equals_colon_and_blank() {
        assert_eq!(
            pairs("a=1\nb:2\nc 3\nd = 4\ne\t:\t5\nf   =   6  \n"),
            vec![
                one("a", "1", 1),
                one("b", "2", 2),
                one("c", "3", 3),
                one("d", "4", 4),
                one("e", "5", 5),
                one("f", "6", 6),
            ]
        );
    }

    #[test]
    fn only_the_first_separator_counts() {
        assert_eq!(
            pairs("a==b\nc=d=e\nf::g"),
            vec![one("a", "=b", 1), one("c", "d=e", 2), one("f", ":g", 3)]
        );
    }

    #[test]
    fn key_without_value() {
        assert_eq!(
            pairs("lonely\nspaced   \n"),
            vec![one("lonely", "", 1), one("spaced", "", 2)]
        );
    }

    #[test]
    fn comments_and_blank_lines_are_skipped_but_counted() {
        let text = "# comment\n  ! bang comment\n\n   \n\tkey=value\n";
        assert_eq!(pairs(text), vec![one("key", "value", 5)]);
    }

    #[test]
    fn hash_after_a_value_is_part_of_the_value() {
        assert_eq!(
            pairs("a=1 # not a comment"),
            vec![one("a", "1 # not a comment", 1)]
        );
    }

    #[test]
    fn line_endings_lf_cr_crlf() {
        assert_eq!(
            pairs("a=1\r\nb=2\rc=3\nd=4"),
            vec![
                one("a", "1", 1),
                one("b", "2", 2),
                one("c", "3", 3),
                one("d", "4", 4)
            ]
        );
    }

    #[test]
    fn continuation_joins_lines_and_drops_leading_blanks() {
        let text = "server.1=127.0.0.1:\\\n    2888:3888\nnext=1\n";
        assert_eq!(
            pairs(text),
            vec![
                one("server.1", "127.0.0.1:2888:3888", 1),
                one("next", "1", 3)
            ]
        );
    }

    #[test]
    fn continuation_in_the_key() {
        assert_eq!(
            pairs("client\\\n  Port=2181"),
            vec![one("clientPort", "2181", 1)]
        );
    }

    #[test]
    fn even_backslashes_do_not_continue() {
        assert_eq!(
            pairs("a=x\\\\\nb=y"),
            vec![one("a", "x\\", 1), one("b", "y", 2)]
        );
    }

    #[test]
    fn continued_line_starting_with_hash_is_text() {
        assert_eq!(pairs("a=1\\\n#2"), vec![one("a", "1#2", 1)]);
    }

    #[test]
    fn comment_ending_in_backslash_does_not_swallow_the_next_line() {
        assert_eq!(pairs("# note \\\nb=2"), vec![one("b", "2", 2)]);
    }

    #[test]
    fn backslash_at_end_of_file_is_dropped() {
        assert_eq!(pairs("a=1\\"), vec![one("a", "1", 1)]);
    }

    #[test]
    fn continuation_then_empty_line_ends_the_value() {
        assert_eq!(
            pairs("a=1\\\n\nb=2"),
            vec![one("a", "1", 1), one("b", "2", 3)]
        );
    }

    #[test]
    fn escapes_in_keys_and_values() {
        assert_eq!(
            pairs("my\\ key=a\\tb\nk\\=ey=\\u0041\\u00e9\nx\\:y=\\z\n"),
            vec![
                one("my key", "a\tb", 1),
                one("k=ey", "A\u{e9}", 2),
                one("x:y", "z", 3)
            ]
        );
    }

    #[test]
    fn escaped_newline_survives_in_the_middle() {
        assert_eq!(pairs("a=1\\n2"), vec![one("a", "1\n2", 1)]);
    }

    #[test]
    fn surrogate_pairs_join() {
        assert_eq!(pairs("a=\\uD83D\\uDE00"), vec![one("a", "\u{1F600}", 1)]);
    }

    #[test]
    fn lone_surrogates_are_errors() {
        for text in [
            "a=\\uD83D",
            "a=\\uDE00",
            "a=\\uD83Dx",
            "a=\\uD83D\\u0041",
            "a=\\uD83D\\n",
        ] {
            let err = parse(text).expect_err(text);
            assert_eq!(err.line, 1);
            assert!(err.message.contains("surrogate"), "{text}: {}", err.message);
        }
    }

    #[test]
    fn malformed_unicode_escape_names_its_line() {
        let err = parse("a=1\nb=\\u12\nc=3").expect_err("short escape");
        assert_eq!(err.line, 2);
        assert!(err.message.contains("four hex digits"));
        assert_eq!(parse("a=\\uzzzz").expect_err("not hex").line, 1);
    }

    #[test]
    fn values_are_trimmed_like_java_trim() {
        assert_eq!(
            pairs("a=  x  \t\nb=\\u0020y\\u0020"),
            vec![one("a", "x", 1), one("b", "y", 2)]
        );
    }

    #[test]
    fn duplicates_are_all_returned_in_order() {
        assert_eq!(pairs("a=1\na=2"), vec![one("a", "1", 1), one("a", "2", 2)]);
    }

    #[test]
    fn latin1_fallback_for_invalid_utf8() {
        assert_eq!(decode_text(b"dataDir=/d\xe9"), "dataDir=/d\u{e9}");
        assert_eq!(
            decode_text("dataDir=/d\u{e9}".as_bytes()),
            "dataDir=/d\u{e9}"
        );
    }

    #[test]
    fn empty_and_blank_input() {
        assert!(pairs("").is_empty());
        assert!(pairs("\n\n  \n").is_empty());
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        // A cheap sweep over short inputs built from the characters the grammar cares about.
        let alphabet = [
            'a', '=', ':', ' ', '\\', 'u', 'D', '8', '\n', '\r', '#', '!', 'F',
        ];
        let mut text = String::new();
        for seed in 0u32..20_000 {
            text.clear();
            let mut x = seed;
            for _ in 0..8 {
                text.push(alphabet[(x % alphabet.len() as u32) as usize]);
                x /= alphabet.len() as u32;
            }
            let _ = parse(&text);
        }
    }
}
