//! Command option parsing as zkCli's commands do it with Apache commons-cli 1.5's
//! `DefaultParser`: short options only (some of them several letters long, such as
//! reconfig's `-members`), options and arguments in any order, `-sw` as `-s -w`, `-t5`
//! and `-v=5` as options with values, a value may look like a negative number, `--`
//! ends option parsing, and option groups (setquota, delquota) allow one member.
//!
//! Errors carry commons-cli's exception class and message, because zkCli prints the
//! exception's `toString()`: `org.apache.commons.cli.UnrecognizedOptionException:
//! Unrecognized option: -x`.

/// One option: its name and whether it takes a value.
#[derive(Debug, Clone, Copy)]
pub struct OptSpec {
    pub name: &'static str,
    pub has_arg: bool,
    pub description: &'static str,
}

/// An option group: at most one member may be given; `required` means one must be.
#[derive(Debug, Clone, Copy)]
pub struct GroupSpec {
    pub members: &'static [&'static str],
    pub required: bool,
}

#[derive(Debug, Clone, Copy)]
pub struct Options {
    pub opts: &'static [OptSpec],
    pub groups: &'static [GroupSpec],
}

pub const fn opt(name: &'static str, has_arg: bool, description: &'static str) -> OptSpec {
    OptSpec {
        name,
        has_arg,
        description,
    }
}

/// The result of a parse: options in the order given (with their values) and the
/// remaining arguments (the command name is the first).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommandLine {
    opts: Vec<(&'static str, Option<String>)>,
    pub args: Vec<String>,
}

impl CommandLine {
    pub fn has(&self, name: &str) -> bool {
        self.opts.iter().any(|(n, _)| *n == name)
    }

    /// The first value given for `name` (commons-cli's getOptionValue).
    pub fn value(&self, name: &str) -> Option<&str> {
        self.opts
            .iter()
            .filter(|(n, _)| *n == name)
            .find_map(|(_, v)| v.as_deref())
    }
}

/// A commons-cli ParseException, printed as Java's `toString()`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("org.apache.commons.cli.{class}: {message}")]
pub struct ParseError {
    pub class: &'static str,
    pub message: String,
}

fn unrecognized(token: &str) -> ParseError {
    ParseError {
        class: "UnrecognizedOptionException",
        message: format!("Unrecognized option: {token}"),
    }
}

impl Options {
    fn find(&self, name: &str) -> Option<&'static OptSpec> {
        self.opts.iter().find(|o| o.name == name)
    }

    fn group_of(&self, name: &str) -> Option<&'static GroupSpec> {
        self.groups.iter().find(|g| g.members.contains(&name))
    }

    /// OptionGroup.toString(): `[-n num soft quota, -b bytes soft quota]`.
    fn group_text(&self, group: &GroupSpec) -> String {
        let items: Vec<String> = group
            .members
            .iter()
            .filter_map(|m| self.find(m))
            .map(|o| format!("-{} {}", o.name, o.description))
            .collect();
        format!("[{}]", items.join(", "))
    }

    pub fn parse(&self, tokens: &[String]) -> Result<CommandLine, ParseError> {
        let mut parser = Parser {
            options: self,
            line: CommandLine::default(),
            current: None,
            skip_parsing: false,
            selected: Vec::new(),
        };
        for token in tokens {
            parser.handle_token(token)?;
        }
        parser.check_required_arg()?;
        for group in self.groups.iter().filter(|g| g.required) {
            if !group.members.iter().any(|m| parser.line.has(m)) {
                return Err(ParseError {
                    class: "MissingOptionException",
                    message: format!("Missing required option: {}", self.group_text(group)),
                });
            }
        }
        Ok(parser.line)
    }
}

struct Parser<'a> {
    options: &'a Options,
    line: CommandLine,
    /// The option waiting for its value: index into `line.opts`.
    current: Option<usize>,
    skip_parsing: bool,
    /// (group index, selected member) pairs.
    selected: Vec<(usize, &'static str)>,
}

impl Parser<'_> {
    fn is_short_option(&self, token: &str) -> bool {
        let Some(name) = token.strip_prefix('-') else {
            return false;
        };
        if name.is_empty() {
            return false;
        }
        let name = name.split('=').next().unwrap_or(name);
        if self.options.find(name).is_some() {
            return true;
        }
        name.chars()
            .next()
            .is_some_and(|c| self.options.find(&c.to_string()).is_some())
    }

    /// DefaultParser.isArgument: not an option, or a negative number.
    fn is_argument(&self, token: &str) -> bool {
        !self.is_short_option(token) || token.parse::<f64>().is_ok()
    }

    fn check_required_arg(&self) -> Result<(), ParseError> {
        if let Some(i) = self.current {
            return Err(ParseError {
                class: "MissingArgumentException",
                message: format!("Missing argument for option: {}", self.line.opts[i].0),
            });
        }
        Ok(())
    }

    fn handle_option(&mut self, spec: &'static OptSpec) -> Result<(), ParseError> {
        self.check_required_arg()?;
        if let Some(group) = self.options.group_of(spec.name) {
            let gi = self
                .options
                .groups
                .iter()
                .position(|g| std::ptr::eq(g, group))
                .unwrap_or(0);
            match self.selected.iter().find(|(g, _)| *g == gi) {
                Some((_, sel)) if *sel != spec.name => {
                    return Err(ParseError {
                        class: "AlreadySelectedException",
                        message: format!(
                            "The option '{}' was specified but an option from this group has already been selected: '{}'",
                            spec.name, sel
                        ),
                    })
                }
                Some(_) => {}
                None => self.selected.push((gi, spec.name)),
            }
        }
        self.line.opts.push((spec.name, None));
        self.current = spec.has_arg.then_some(self.line.opts.len() - 1);
        Ok(())
    }

    fn add_value(&mut self, value: &str) {
        if let Some(i) = self.current.take() {
            self.line.opts[i].1 = Some(strip_leading_and_trailing_quotes(value));
        }
    }

    fn handle_unknown(&mut self, token: &str) -> Result<(), ParseError> {
        if token.starts_with('-') && token.len() > 1 {
            return Err(unrecognized(token));
        }
        self.line.args.push(token.to_string());
        Ok(())
    }

    fn handle_token(&mut self, token: &str) -> Result<(), ParseError> {
        if self.skip_parsing {
            self.line.args.push(token.to_string());
        } else if token == "--" {
            self.skip_parsing = true;
        } else if self.current.is_some() && self.is_argument(token) {
            self.add_value(token);
        } else if token.starts_with("--") {
            // No option of zkCli has a long name, so every long option is unknown.
            self.check_required_arg()?;
            return Err(unrecognized(token));
        } else if token.starts_with('-') && token != "-" {
            self.handle_short(token)?;
        } else {
            self.handle_unknown(token)?;
        }
        Ok(())
    }

    fn handle_short(&mut self, token: &str) -> Result<(), ParseError> {
        let t = &token[1..];
        match t.find('=') {
            None => {
                if let Some(spec) = self.options.find(t) {
                    return self.handle_option(spec);
                }
                if t.chars().count() == 1 {
                    return self.handle_unknown(token);
                }
                self.handle_concatenated(token)
            }
            Some(eq) => {
                let (name, value) = (&t[..eq], &t[eq + 1..]);
                match self.options.find(name) {
                    Some(spec) if name.chars().count() == 1 && spec.has_arg => {
                        self.handle_option(spec)?;
                        self.add_value(value);
                        Ok(())
                    }
                    _ => {
                        self.check_required_arg()?;
                        Err(unrecognized(token))
                    }
                }
            }
        }
    }

    /// `-sw` = `-s -w`; `-t5` = `-t 5` (the rest of the token is the value).
    fn handle_concatenated(&mut self, token: &str) -> Result<(), ParseError> {
        let chars: Vec<(usize, char)> = token.char_indices().collect();
        for (k, &(_, c)) in chars.iter().enumerate().skip(1) {
            let Some(spec) = self.options.find(&c.to_string()) else {
                return self.handle_unknown_concatenated(token);
            };
            self.handle_option(spec)?;
            if self.current.is_some() && k + 1 < chars.len() {
                let rest_at = chars[k + 1].0;
                self.add_value(&token[rest_at..]);
                break;
            }
        }
        Ok(())
    }

    fn handle_unknown_concatenated(&mut self, token: &str) -> Result<(), ParseError> {
        self.check_required_arg()?;
        Err(unrecognized(token))
    }
}

/// commons-cli's Util.stripLeadingAndTrailingQuotes, applied to option values.
fn strip_leading_and_trailing_quotes(value: &str) -> String {
    if value.len() > 1 && value.starts_with('"') && value.ends_with('"') {
        let inner = &value[1..value.len() - 1];
        if !inner.contains('"') {
            return inner.to_string();
        }
    }
    value.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LS: Options = Options {
        opts: &[
            opt("?", false, "help"),
            opt("s", false, "stat"),
            opt("w", false, "watch"),
            opt("R", false, "recurse"),
        ],
        groups: &[],
    };
    const CREATE: Options = Options {
        opts: &[
            opt("e", false, "ephemeral"),
            opt("s", false, "sequential"),
            opt("c", false, "container"),
            opt("t", true, "ttl"),
        ],
        groups: &[],
    };
    const QUOTA: Options = Options {
        opts: &[
            opt("n", true, "num soft quota"),
            opt("b", true, "bytes soft quota"),
            opt("N", true, "num hard quota"),
            opt("B", true, "bytes hard quota"),
        ],
        groups: &[GroupSpec {
            members: &["n", "b", "N", "B"],
            required: true,
        }],
    };
    const RECONFIG: Options = Options {
        opts: &[
            opt("s", false, "stats"),
            opt("v", true, "required current config version"),
            opt("file", true, "path of config file to parse for membership"),
            opt("members", true, "members"),
            opt("add", true, "add"),
            opt("remove", true, "remove"),
        ],
        groups: &[],
    };

    fn words(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_string).collect()
    }

    #[test]
    fn options_and_args_mix() {
        let cl = LS.parse(&words("ls / -s -w")).unwrap();
        assert_eq!(cl.args, vec!["ls", "/"]);
        assert!(cl.has("s") && cl.has("w") && !cl.has("R"));
        let cl = LS.parse(&words("ls -sR /")).unwrap();
        assert!(cl.has("s") && cl.has("R"));
        let cl = CREATE.parse(&words("create -t5 /a")).unwrap();
        assert_eq!(cl.value("t"), Some("5"));
        let cl = CREATE.parse(&words("create -t -5 /a")).unwrap();
        assert_eq!(cl.value("t"), Some("-5"));
        let cl = CREATE.parse(&words("create -- -e")).unwrap();
        assert_eq!(cl.args, vec!["create", "-e"]);
        let cl = RECONFIG.parse(&words("reconfig -members a -s")).unwrap();
        assert_eq!(cl.value("members"), Some("a"));
        assert!(cl.has("s"));
    }

    #[test]
    fn errors_read_as_commons_cli() {
        assert_eq!(
            LS.parse(&words("ls -x /")).unwrap_err().to_string(),
            "org.apache.commons.cli.UnrecognizedOptionException: Unrecognized option: -x"
        );
        assert_eq!(
            CREATE.parse(&words("create -t")).unwrap_err().to_string(),
            "org.apache.commons.cli.MissingArgumentException: Missing argument for option: t"
        );
        assert_eq!(
            CREATE.parse(&words("create -t -e /a")).unwrap_err().message,
            "Missing argument for option: t"
        );
        assert_eq!(
            QUOTA.parse(&words("setquota /a")).unwrap_err().to_string(),
            "org.apache.commons.cli.MissingOptionException: Missing required option: [-n num soft quota, -b bytes soft quota, -N num hard quota, -B bytes hard quota]"
        );
        assert_eq!(
            QUOTA.parse(&words("setquota -n 5 -b 6 /a")).unwrap_err().to_string(),
            "org.apache.commons.cli.AlreadySelectedException: The option 'b' was specified but an option from this group has already been selected: 'n'"
        );
        assert!(QUOTA.parse(&words("setquota -n 5 -n 6 /a")).is_ok());
        assert_eq!(
            LS.parse(&words("ls --long /")).unwrap_err().message,
            "Unrecognized option: --long"
        );
        assert_eq!(
            LS.parse(&words("ls -1 /")).unwrap_err().message,
            "Unrecognized option: -1"
        );
        let cl = LS.parse(&words("ls - /")).unwrap();
        assert_eq!(cl.args, vec!["ls", "-", "/"]);
    }
}
