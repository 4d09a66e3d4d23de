//! The shell patterns of `${V#pat}`, `${V%pat}` and `${V/pat/repl}`:
//! `*` (any run of characters), `?` (one character), `\` escapes (`\*`,
//! `\?`, `\\`; `\}` and `\/` stand for the character alone). Matching runs
//! a small automaton over characters, so it is linear in the pattern for
//! each character and never recurses.

/// A pattern that does not compile (a bad escape).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ShellPatternError(pub String);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tok {
    Star,
    Any,
    Lit(char),
}

/// A compiled pattern.
#[derive(Clone, Debug)]
pub(crate) struct Pattern {
    toks: Vec<Tok>,
}

impl Pattern {
    /// Compiles `pattern`.
    pub(crate) fn new(pattern: &str) -> Result<Pattern, ShellPatternError> {
        let mut toks = Vec::new();
        let mut it = pattern.chars().peekable();
        while let Some(c) = it.next() {
            match c {
                '*' => toks.push(Tok::Star),
                '?' => toks.push(Tok::Any),
                '\\' => match it.next() {
                    Some(n @ ('}' | '/' | '*' | '?' | '\\')) => toks.push(Tok::Lit(n)),
                    Some(n) => return Err(ShellPatternError(format!("invalid escape '\\{n}'"))),
                    None => {
                        return Err(ShellPatternError(
                            "invalid escape '\\' at the end of the pattern".into(),
                        ));
                    }
                },
                c => toks.push(Tok::Lit(c)),
            }
        }
        Ok(Pattern { toks })
    }

    fn reversed(&self) -> Pattern {
        Pattern {
            toks: self.toks.iter().rev().copied().collect(),
        }
    }

    /// Adds `j` and what it reaches without input to `set`.
    fn close(&self, set: &mut [bool], mut j: usize) {
        while j < set.len() && !set[j] {
            set[j] = true;
            if self.toks.get(j) == Some(&Tok::Star) {
                j += 1;
            } else {
                break;
            }
        }
    }

    /// For each `k` in `0..=text.len()`, whether the pattern matches
    /// exactly `text[..k]`.
    fn prefix_matches(&self, text: &[char]) -> Vec<bool> {
        let m = self.toks.len();
        let mut out = Vec::with_capacity(text.len() + 1);
        let mut cur = vec![false; m + 1];
        self.close(&mut cur, 0);
        out.push(cur[m]);
        for &c in text {
            let mut next = vec![false; m + 1];
            let mut any = false;
            for (j, tok) in self.toks.iter().enumerate() {
                if !cur.get(j).copied().unwrap_or(false) {
                    continue;
                }
                match *tok {
                    Tok::Star => self.close(&mut next, j),
                    Tok::Any => self.close(&mut next, j + 1),
                    Tok::Lit(l) if l == c => self.close(&mut next, j + 1),
                    Tok::Lit(_) => {}
                }
            }
            for &b in &next {
                any |= b;
            }
            out.push(next[m]);
            cur = next;
            if !any {
                // Nothing more can match: pad with false.
                out.resize(text.len() + 1, false);
                break;
            }
        }
        out
    }

    /// `${V#pat}` (shortest) and `${V##pat}` (longest): removes the
    /// matching prefix.
    pub(crate) fn trim_prefix(&self, value: &str, greedy: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let matches = self.prefix_matches(&chars);
        let k = if greedy {
            matches.iter().rposition(|&b| b)
        } else {
            matches.iter().position(|&b| b)
        };
        match k {
            Some(k) => chars.get(k..).unwrap_or_default().iter().collect(),
            None => value.to_string(),
        }
    }

    /// `${V%pat}` (shortest) and `${V%%pat}` (longest): removes the
    /// matching suffix.
    pub(crate) fn trim_suffix(&self, value: &str, greedy: bool) -> String {
        let rev: Vec<char> = value.chars().rev().collect();
        let matches = self.reversed().prefix_matches(&rev);
        let k = if greedy {
            matches.iter().rposition(|&b| b)
        } else {
            matches.iter().position(|&b| b)
        };
        match k {
            Some(k) => {
                let keep = rev.len().saturating_sub(k);
                value.chars().take(keep).collect()
            }
            None => value.to_string(),
        }
    }

    /// `${V/pat/repl}` (first match) and `${V//pat/repl}` (all): the
    /// leftmost, longest match is replaced.
    pub(crate) fn replace(&self, value: &str, replacement: &str, all: bool) -> String {
        let chars: Vec<char> = value.chars().collect();
        let mut out = String::new();
        let mut pos = 0;
        let mut last_end: Option<usize> = None;
        let mut replaced = false;
        while pos <= chars.len() {
            if replaced && !all {
                break;
            }
            let tail = chars.get(pos..).unwrap_or_default();
            let end = self.prefix_matches(tail).iter().rposition(|&b| b);
            match end {
                Some(len) if !(len == 0 && last_end == Some(pos)) => {
                    out.push_str(replacement);
                    replaced = true;
                    last_end = Some(pos + len);
                    if len == 0 {
                        if let Some(c) = chars.get(pos) {
                            out.push(*c);
                        }
                        pos += 1;
                    } else {
                        pos += len;
                    }
                }
                _ => {
                    if let Some(c) = chars.get(pos) {
                        out.push(*c);
                    }
                    pos += 1;
                }
            }
        }
        if pos < chars.len() {
            out.extend(chars.get(pos..).unwrap_or_default());
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Pattern {
        Pattern::new(s).expect("pattern")
    }

    #[test]
    fn trims() {
        let cases: &[(&str, &str, bool, bool, &str)] = &[
            // pattern, value, suffix?, greedy, expected
            ("*.", "a.b.c", false, false, "b.c"),
            ("*.", "a.b.c", false, true, "c"),
            (".*", "a.b.c", true, false, "a.b"),
            (".*", "a.b.c", true, true, "a"),
            ("x", "abc", false, false, "abc"),
            ("a?", "abc", false, false, "c"),
            ("", "abc", false, true, "abc"),
            ("*", "abc", false, true, ""),
            ("*", "abc", false, false, "abc"),
            ("\\*", "*abc", false, false, "abc"),
            ("값*", "값이다", false, false, "이다"),
            ("?", "é", true, false, ""),
        ];
        for &(pat, value, suffix, greedy, want) in cases {
            let got = if suffix {
                p(pat).trim_suffix(value, greedy)
            } else {
                p(pat).trim_prefix(value, greedy)
            };
            assert_eq!(got, want, "{pat} {value} suffix={suffix} greedy={greedy}");
        }
    }

    #[test]
    fn replaces() {
        let cases: &[(&str, &str, &str, bool, &str)] = &[
            ("o", "foo boo", "0", false, "f0o boo"),
            ("o", "foo boo", "0", true, "f00 b00"),
            ("o*", "foo boo", "X", false, "fX"),
            ("?o", "foo boo", "X", true, "Xo Xo"),
            ("z", "abc", "X", true, "abc"),
            ("", "ab", "-", true, "-a-b-"),
            ("b", "", "X", true, ""),
        ];
        for &(pat, value, repl, all, want) in cases {
            assert_eq!(
                p(pat).replace(value, repl, all),
                want,
                "{pat} {value} {all}"
            );
        }
    }

    #[test]
    fn bad_escape() {
        assert!(Pattern::new("\\a").is_err());
        assert!(Pattern::new("a\\").is_err());
        assert!(Pattern::new("\\}").is_ok());
    }
}
