//! The four-letter-word whitelist (`4lw.commands.whitelist`), as ZooKeeper's
//! `FourLetterCommands.isEnabled` builds it: a comma-separated list, blanks trimmed, `*`
//! meaning every command; `srvr` is always allowed (zkServer.sh status needs it), and `isro`
//! too when read-only mode is enabled. Unset means `srvr` alone. Names are matched exactly
//! (case-sensitive), unknown names are kept and simply never match a command.

use std::collections::BTreeSet;

/// Which four-letter words a server answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FourLetterWhitelist {
    /// `*` was listed.
    pub all: bool,
    /// The words listed, plus `srvr` (and `isro` in read-only mode).
    pub words: BTreeSet<String>,
}

impl FourLetterWhitelist {
    /// Parses the value of `4lw.commands.whitelist`; `None` for an unset key.
    pub fn parse(value: Option<&str>, read_only_mode_enabled: bool) -> FourLetterWhitelist {
        let mut whitelist = FourLetterWhitelist {
            all: false,
            words: BTreeSet::new(),
        };
        for word in value.unwrap_or("").split(',') {
            let word = word.trim();
            if word == "*" {
                whitelist.all = true;
            } else if !word.is_empty() {
                whitelist.words.insert(word.to_string());
            }
        }
        whitelist.words.insert("srvr".to_string());
        if read_only_mode_enabled {
            whitelist.words.insert("isro".to_string());
        }
        whitelist
    }

    /// Every command allowed (`*`).
    pub fn everything() -> FourLetterWhitelist {
        FourLetterWhitelist::parse(Some("*"), false)
    }

    /// Whether `word` (e.g. `ruok`) may run.
    pub fn allows(&self, word: &str) -> bool {
        self.all || self.words.contains(word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_srvr_only() {
        let w = FourLetterWhitelist::parse(None, false);
        assert!(w.allows("srvr"));
        assert!(!w.allows("ruok"));
        assert!(!w.allows("isro"));
        assert!(!w.all);
    }

    #[test]
    fn listed_words_plus_srvr() {
        let w = FourLetterWhitelist::parse(Some(" ruok , conf,,mntr "), false);
        for word in ["ruok", "conf", "mntr", "srvr"] {
            assert!(w.allows(word), "{word}");
        }
        assert!(!w.allows("dump"));
        assert!(
            !w.allows("RUOK"),
            "names are case-sensitive as in ZooKeeper"
        );
    }

    #[test]
    fn star_allows_everything() {
        let w = FourLetterWhitelist::parse(Some("ruok, *"), false);
        assert!(w.all);
        assert!(w.allows("dump") && w.allows("wchp") && w.allows("stmk"));
        assert!(FourLetterWhitelist::everything().allows("cons"));
    }

    #[test]
    fn read_only_mode_adds_isro() {
        let w = FourLetterWhitelist::parse(Some("ruok"), true);
        assert!(w.allows("isro") && w.allows("srvr") && w.allows("ruok"));
    }
}
