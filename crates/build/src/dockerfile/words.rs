//! Splitting an instruction's text the way Docker's parser does: the
//! keyword, the `--flags`, quote-aware words (quotes kept), JSON arrays,
//! flag values, Go durations and "did you mean" suggestions.

use std::time::Duration;

/// Docker's "whitespace" between a keyword and its arguments and between
/// plain words (`[\t\v\f\r ]`).
pub(crate) fn is_ws(c: char) -> bool {
    matches!(c, '\t' | '\u{b}' | '\u{c}' | '\r' | ' ')
}

/// Splits on runs of [`is_ws`] (no empty words).
pub(crate) fn ws_split(s: &str) -> Vec<String> {
    s.split(is_ws)
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// A logical line's keyword (as written), its `--flags` (quotes removed)
/// and the rest (trimmed).
pub(crate) fn split_command(line: &str, escape: char) -> (String, Vec<String>, String) {
    let line = line.trim();
    let (keyword, rest) = match line.split_once(is_ws) {
        Some((k, r)) => (k, r.trim_start_matches(is_ws)),
        None => (line, ""),
    };
    let (args, flags) = extract_flags(rest, escape);
    (keyword.to_string(), flags, args.trim().to_string())
}

/// Takes the leading `--name[=value]` words off `line`. A `--` word ends
/// the flags (and is dropped).
pub(crate) fn extract_flags(line: &str, escape: char) -> (String, Vec<String>) {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = line.chars().collect();
    let rest = |from: usize| -> String { chars.get(from..).unwrap_or_default().iter().collect() };
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut buf = String::new();
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut pos = 0;
    while pos <= chars.len() {
        let ch = chars.get(pos).copied();
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if c.is_whitespace() {
                pos += 1;
                continue;
            }
            if c != '-' || chars.get(pos + 1) != Some(&'-') {
                return (rest(pos), words);
            }
            phase = Phase::Word;
        }
        let Some(mut c) = ch else {
            if buf != "--" && (blank_ok || !buf.is_empty()) {
                words.push(std::mem::take(&mut buf));
            }
            break;
        };
        if phase == Phase::Word {
            if c.is_whitespace() {
                if buf == "--" {
                    return (rest(pos), words);
                }
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                buf.clear();
                blank_ok = false;
                phase = Phase::Spaces;
                pos += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
                pos += 1;
                continue;
            }
            if c == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                pos += 1;
                c = chars.get(pos).copied().unwrap_or(c);
            }
            buf.push(c);
            pos += 1;
            continue;
        }
        // In quotes.
        if c == quote {
            phase = Phase::Word;
            pos += 1;
            continue;
        }
        if c == escape {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            pos += 1;
            c = chars.get(pos).copied().unwrap_or(c);
        }
        buf.push(c);
        pos += 1;
    }
    (String::new(), words)
}

/// Splits into words on whitespace outside quotes, keeping the quotes and
/// escapes in the words (they are removed at expansion time). Used by
/// `ENV`, `LABEL` and `ARG`.
pub(crate) fn parse_words(rest: &str, escape: char) -> Vec<String> {
    #[derive(PartialEq)]
    enum Phase {
        Spaces,
        Word,
        Quote,
    }
    let chars: Vec<char> = rest.chars().collect();
    let mut words = Vec::new();
    let mut phase = Phase::Spaces;
    let mut quote = '\0';
    let mut blank_ok = false;
    let mut buf = String::new();
    let mut pos = 0;
    while pos <= chars.len() {
        let ch = chars.get(pos).copied();
        if phase == Phase::Spaces {
            let Some(c) = ch else { break };
            if c.is_whitespace() {
                pos += 1;
                continue;
            }
            phase = Phase::Word;
        }
        let Some(mut c) = ch else {
            if blank_ok || !buf.is_empty() {
                words.push(std::mem::take(&mut buf));
            }
            break;
        };
        if phase == Phase::Word {
            if c.is_whitespace() {
                phase = Phase::Spaces;
                if blank_ok || !buf.is_empty() {
                    words.push(std::mem::take(&mut buf));
                }
                buf.clear();
                blank_ok = false;
                pos += 1;
                continue;
            }
            if c == '\'' || c == '"' {
                quote = c;
                blank_ok = true;
                phase = Phase::Quote;
            }
            if c == escape {
                if pos + 1 == chars.len() {
                    pos += 1;
                    continue;
                }
                buf.push(c);
                pos += 1;
                c = chars.get(pos).copied().unwrap_or(c);
            }
            buf.push(c);
            pos += 1;
            continue;
        }
        // In quotes.
        if c == quote {
            phase = Phase::Word;
        }
        if c == escape && quote != '\'' {
            if pos + 1 == chars.len() {
                phase = Phase::Word;
                pos += 1;
                continue;
            }
            buf.push(c);
            pos += 1;
            c = chars.get(pos).copied().unwrap_or(c);
        }
        buf.push(c);
        pos += 1;
    }
    words
}

/// Docker's message for a JSON array holding something else than strings.
pub(crate) const NOT_STRING_ARRAY: &str =
    "when using JSON array syntax, arrays must be comprised of strings only";

/// `Ok(Some(words))` when `rest` is a JSON array of strings (exec form),
/// `Ok(None)` when it is not JSON at all (shell form), an error when it is
/// a JSON array with other elements (Docker refuses those).
pub(crate) fn parse_json(rest: &str) -> Result<Option<Vec<String>>, String> {
    let rest = rest.trim_start();
    if !rest.starts_with('[') {
        return Ok(None);
    }
    let Ok(values) = serde_json::from_str::<Vec<serde_json::Value>>(rest) else {
        return Ok(None);
    };
    values
        .into_iter()
        .map(|v| match v {
            serde_json::Value::String(s) => Ok(s),
            _ => Err(NOT_STRING_ARRAY.to_string()),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// How a flag takes its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum FlagKind {
    /// `--name` or `--name=true|false`.
    Bool,
    /// `--name=value`, once.
    String,
    /// `--name=value`, repeatable.
    Strings,
}

/// Parsed flags: per declared name, the values given (bools as
/// `"true"`/`"false"`).
#[derive(Debug, Default)]
pub(crate) struct Flags {
    values: Vec<(&'static str, Vec<String>)>,
}

impl Flags {
    /// Parses `args` (the `--flags` of a line) against the declared ones,
    /// with Docker's errors.
    pub(crate) fn parse(
        args: &[String],
        declared: &[(&'static str, FlagKind)],
    ) -> Result<Flags, String> {
        let mut flags = Flags::default();
        for a in args {
            if a == "--" {
                break;
            }
            let Some(body) = a.strip_prefix("--") else {
                return Err(format!("arg should start with -- : {a}"));
            };
            let (name, value) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let Some(&(decl, kind)) = declared.iter().find(|(n, _)| *n == name) else {
                let mut msg = format!("unknown flag: --{name}");
                let names: Vec<&str> = declared.iter().map(|(n, _)| *n).collect();
                if let Some(s) = suggest(name, &names, true) {
                    msg.push_str(&format!(" (did you mean {s}?)"));
                }
                return Err(msg);
            };
            let slot = match flags.values.iter().position(|(n, _)| *n == decl) {
                Some(i) => {
                    if kind != FlagKind::Strings {
                        return Err(format!("duplicate flag specified: --{name}"));
                    }
                    i
                }
                None => {
                    flags.values.push((decl, Vec::new()));
                    flags.values.len() - 1
                }
            };
            let v = match (kind, value) {
                (FlagKind::Bool, Some("")) => {
                    return Err(format!("missing a value on flag: --{name}"));
                }
                (FlagKind::Bool, v) => match v.unwrap_or("").to_lowercase().as_str() {
                    "true" | "" => "true".to_string(),
                    "false" => "false".to_string(),
                    _ => {
                        return Err(format!(
                            "expecting boolean value for flag --{name}, not: {}",
                            v.unwrap_or("")
                        ));
                    }
                },
                (_, None) => return Err(format!("missing a value on flag: --{name}")),
                (_, Some(v)) => v.to_string(),
            };
            if let Some((_, vals)) = flags.values.get_mut(slot) {
                vals.push(v);
            }
        }
        Ok(flags)
    }

    /// The value of a string flag, if given.
    pub(crate) fn string(&self, name: &str) -> Option<String> {
        self.all(name).last().cloned()
    }

    /// Every value of a repeatable flag, in order.
    pub(crate) fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    }

    /// A bool flag (false when not given).
    pub(crate) fn bool(&self, name: &str) -> bool {
        self.string(name).as_deref() == Some("true")
    }
}

/// A close match for `word` among `options` (edit distance under 3), its
/// case following `word`'s when not case sensitive; `None` for an exact
/// match or nothing close.
pub(crate) fn suggest(word: &str, options: &[&str], case_sensitive: bool) -> Option<String> {
    let norm = |s: &str| {
        if case_sensitive {
            s.to_string()
        } else {
            s.to_lowercase()
        }
    };
    let w = norm(word);
    let mut best: Option<String> = None;
    let mut min = 3;
    for opt in options {
        let o = norm(opt);
        if o == w {
            return None;
        }
        let d = levenshtein(&w, &o);
        if d < min {
            min = d;
            best = Some(if case_sensitive {
                o
            } else if word == word.to_lowercase() {
                o.to_lowercase()
            } else if word == word.to_uppercase() {
                o.to_uppercase()
            } else {
                o
            });
        }
    }
    best
}

fn levenshtein(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

pub(crate) use berth_types::time::parse_go_duration;

/// A `HEALTHCHECK` interval flag: empty or zero means "not set" (the base
/// image's value), below 1ms is Docker's error.
pub(crate) fn parse_interval(
    flag: &str,
    value: Option<String>,
) -> Result<Option<Duration>, String> {
    let Some(v) = value.filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let ns = parse_go_duration(&v)?;
    if ns == 0 {
        return Ok(None);
    }
    if ns < 1_000_000 {
        return Err(format!("Interval {flag:?} cannot be less than 1ms"));
    }
    Ok(Some(Duration::from_nanos(ns.unsigned_abs())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let ok: &[(&str, i64)] = &[
            ("0", 0),
            ("30s", 30_000_000_000),
            ("1m30s", 90_000_000_000),
            ("500ms", 500_000_000),
            ("1.5h", 5_400_000_000_000),
            (".5s", 500_000_000),
            ("1.s", 1_000_000_000),
            ("2h45m", 9_900_000_000_000),
            ("-1s", -1_000_000_000),
            ("+3us", 3_000),
            ("3µs", 3_000),
            ("1ns", 1),
        ];
        for &(s, want) in ok {
            assert_eq!(parse_go_duration(s), Ok(want), "{s}");
        }
        let bad: &[(&str, &str)] = &[
            ("", "invalid duration"),
            ("1", "missing unit"),
            ("1x", "unknown unit \"x\""),
            ("s", "invalid duration"),
            (".s", "invalid duration"),
            ("9999999999999999999h", "invalid duration"),
            ("1h-1m", "unknown unit \"h-\""),
            ("삼s", "invalid duration"),
        ];
        for &(s, want) in bad {
            let e = parse_go_duration(s).expect_err(s);
            assert!(e.contains(want), "{s}: {e}");
        }
    }

    #[test]
    fn flags_extraction() {
        let cases: &[(&str, &[&str], &str)] = &[
            ("--a=1 --b rest of it", &["--a=1", "--b"], "rest of it"),
            ("no flags", &[], "no flags"),
            ("--x=\"a b\" y", &["--x=a b"], "y"),
            ("--x='a b'", &["--x=a b"], ""),
            ("-- --not-a-flag", &[], " --not-a-flag"),
            ("--a -x", &["--a"], "-x"),
            ("--é=ü x", &["--é=ü"], "x"),
            ("--a\\ b c", &["--a b"], "c"),
        ];
        for &(line, flags, rest) in cases {
            let (r, f) = extract_flags(line, '\\');
            assert_eq!(f, flags, "{line}");
            assert_eq!(r, rest, "{line}");
        }
    }

    #[test]
    fn words_keep_quotes() {
        let cases: &[(&str, &[&str])] = &[
            ("a=1 b=\"x y\"", &["a=1", "b=\"x y\""]),
            ("a='x y' c", &["a='x y'", "c"]),
            ("a=x\\ y", &["a=x\\ y"]),
            ("키=\"값\" 이름=값", &["키=\"값\"", "이름=값"]),
            ("a=\"q\\\"q\"", &["a=\"q\\\"q\""]),
            ("a=\"\"", &["a=\"\""]),
            ("x\\", &["x"]),
        ];
        for &(line, want) in cases {
            assert_eq!(parse_words(line, '\\'), want, "{line}");
        }
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            parse_json(r#"["a", "b c"]"#),
            Ok(Some(vec!["a".to_string(), "b c".to_string()]))
        );
        assert_eq!(parse_json(" [ ] "), Ok(Some(vec![])));
        assert_eq!(parse_json("echo [a]"), Ok(None));
        assert_eq!(parse_json("[a]"), Ok(None));
        assert_eq!(parse_json("['a']"), Ok(None));
        assert_eq!(parse_json(r#"["a""#), Ok(None));
        for bad in [
            r#"["a", 1]"#,
            r#"["a", null]"#,
            r#"[["a"]]"#,
            r#"[{}]"#,
            "[true]",
        ] {
            assert_eq!(parse_json(bad), Err(NOT_STRING_ARRAY.to_string()), "{bad}");
        }
    }

    #[test]
    fn flag_parsing() {
        let decl = [
            ("from", FlagKind::String),
            ("link", FlagKind::Bool),
            ("exclude", FlagKind::Strings),
        ];
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let f = Flags::parse(
            &a(&["--from=b", "--link", "--exclude=x", "--exclude=y"]),
            &decl,
        )
        .expect("flags");
        assert_eq!(f.string("from").as_deref(), Some("b"));
        assert!(f.bool("link"));
        assert_eq!(f.all("exclude"), vec!["x", "y"]);
        let f = Flags::parse(&a(&["--link=FALSE"]), &decl).expect("flags");
        assert!(!f.bool("link"));
        let errs: &[(&[&str], &str)] = &[
            (&["--fro=x"], "unknown flag: --fro (did you mean from?)"),
            (&["--zzz"], "unknown flag: --zzz"),
            (
                &["--from=a", "--from=b"],
                "duplicate flag specified: --from",
            ),
            (&["--from"], "missing a value on flag: --from"),
            (&["--link="], "missing a value on flag: --link"),
            (
                &["--link=yes"],
                "expecting boolean value for flag --link, not: yes",
            ),
        ];
        for &(args, want) in errs {
            assert_eq!(
                Flags::parse(&a(args), &decl).map(|_| ()),
                Err(want.to_string())
            );
        }
    }

    #[test]
    fn suggestions() {
        let opts = ["RUN", "COPY", "FROM"];
        assert_eq!(suggest("RUNN", &opts, false).as_deref(), Some("RUN"));
        assert_eq!(suggest("runn", &opts, false).as_deref(), Some("run"));
        assert_eq!(suggest("XYZABC", &opts, false), None);
    }
}
