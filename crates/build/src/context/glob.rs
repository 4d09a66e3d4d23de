//! Go's `filepath.Match` syntax for COPY/ADD sources: `*` (any run of
//! characters but `/`), `?` (one character but `/`), `[...]` classes
//! (`^` negates, `a-z` ranges, `\` escapes) and `\` escaping the next
//! character. Sources are matched one path component at a time, so a
//! wildcard never crosses `/`.

use super::ContextError;

/// One piece of a compiled `filepath.Match` pattern.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Tok {
    /// A literal character.
    Lit(char),
    /// `?`: one character that is not `/`.
    One,
    /// `*`: any run of characters without `/`.
    Star,
    /// `[...]`: one character in (or, negated, not in) the ranges.
    Class(Class),
}

/// A character class.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Class {
    pub negated: bool,
    pub ranges: Vec<(char, char)>,
}

impl Class {
    pub fn matches(&self, c: char) -> bool {
        self.ranges.iter().any(|(lo, hi)| *lo <= c && c <= *hi) != self.negated
    }
}

fn bad(pattern: &str) -> ContextError {
    ContextError::Pattern(format!("{pattern:?}: syntax error in pattern"))
}

/// Parses a class body after `[` (at `chars[i]`); returns the class and
/// the index after `]`. Go's rules: non-empty, `-` and `]` must be escaped
/// as range ends, `\` escapes.
pub(super) fn parse_class(
    chars: &[char],
    mut i: usize,
    pattern: &str,
) -> Result<(Class, usize), ContextError> {
    let mut negated = false;
    if chars.get(i) == Some(&'^') {
        negated = true;
        i += 1;
    }
    let mut ranges = Vec::new();
    let esc = |i: &mut usize| -> Result<char, ContextError> {
        let c = *chars.get(*i).ok_or_else(|| bad(pattern))?;
        if c == '-' || c == ']' {
            return Err(bad(pattern));
        }
        *i += 1;
        if c == '\\' {
            let e = *chars.get(*i).ok_or_else(|| bad(pattern))?;
            *i += 1;
            return Ok(e);
        }
        Ok(c)
    };
    loop {
        if chars.get(i) == Some(&']') && !ranges.is_empty() {
            return Ok((Class { negated, ranges }, i + 1));
        }
        let lo = esc(&mut i)?;
        let hi = if chars.get(i) == Some(&'-') {
            i += 1;
            esc(&mut i)?
        } else {
            lo
        };
        ranges.push((lo, hi));
    }
}

/// Compiles a `filepath.Match` pattern; a malformed one is an error
/// naming it.
pub(super) fn compile(pattern: &str) -> Result<Vec<Tok>, ContextError> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '*' => {
                out.push(Tok::Star);
                i += 1;
            }
            '?' => {
                out.push(Tok::One);
                i += 1;
            }
            '[' => {
                let (class, next) = parse_class(&chars, i + 1, pattern)?;
                out.push(Tok::Class(class));
                i = next;
            }
            '\\' => {
                let c = *chars.get(i + 1).ok_or_else(|| bad(pattern))?;
                out.push(Tok::Lit(c));
                i += 2;
            }
            c => {
                out.push(Tok::Lit(c));
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Whether `name` matches the compiled pattern (`/` is never matched by a
/// wildcard).
pub(super) fn matches(toks: &[Tok], name: &str) -> bool {
    let chars: Vec<char> = name.chars().collect();
    match_from(toks, &chars)
}

/// Tokens against the whole of `s`; memoised over (token, position), so
/// linear in tokens × characters whatever the stars.
fn match_from(toks: &[Tok], s: &[char]) -> bool {
    let w = s.len() + 1;
    let mut seen = vec![false; (toks.len() + 1) * w];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((t, p)) = stack.pop() {
        if std::mem::replace(&mut seen[t * w + p], true) {
            continue;
        }
        let c = s.get(p);
        match toks.get(t) {
            None => {
                if p == s.len() {
                    return true;
                }
            }
            Some(Tok::Star) => {
                stack.push((t + 1, p));
                if c.is_some_and(|c| *c != '/') {
                    stack.push((t, p + 1));
                }
            }
            Some(Tok::One) => {
                if c.is_some_and(|c| *c != '/') {
                    stack.push((t + 1, p + 1));
                }
            }
            Some(Tok::Lit(l)) => {
                if c == Some(l) {
                    stack.push((t + 1, p + 1));
                }
            }
            Some(Tok::Class(class)) => {
                if c.is_some_and(|c| class.matches(*c)) {
                    stack.push((t + 1, p + 1));
                }
            }
        }
    }
    false
}

/// Whether a source path has wildcards (`*`, `?`, `[`, not escaped), as
/// Docker decides whether to glob.
pub(super) fn has_wildcards(s: &str) -> bool {
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if matches!(c, '*' | '?' | '[') {
            return true;
        }
    }
    false
}

/// A literal component with its `\` escapes removed.
pub(super) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut escaped = false;
    for c in s.chars() {
        if !escaped && c == '\\' {
            escaped = true;
            continue;
        }
        escaped = false;
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        matches(&compile(p).unwrap(), s)
    }

    #[test]
    fn go_match_semantics() {
        assert!(m("*.rs", "main.rs"));
        assert!(!m("*.rs", "src/main.rs"), "* never crosses /");
        assert!(m("a?c", "abc"));
        assert!(!m("a?c", "a/c"));
        assert!(m("[a-c]x", "bx"));
        assert!(!m("[^a-c]x", "bx"));
        assert!(m("[^a-c]x", "dx"));
        assert!(m("\\*", "*"));
        assert!(!m("\\*", "a"));
        assert!(m("héllo*", "héllo wörld"));
        assert!(m("?", "é"), "? is one character, not one byte");
        assert!(m("*", ""));
        assert!(m("a*b*c", "aXbYbZc"));
        let long = "a".repeat(250);
        assert!(!m("a*a*a*a*a*a*a*b", &long), "no exponential backtracking");
    }

    #[test]
    fn malformed_patterns_are_refused() {
        for p in ["[", "[]", "[a", "a\\", "[-]", "[a-]", "[^]"] {
            let e = compile(p).unwrap_err().to_string();
            assert!(e.contains("syntax error in pattern"), "{p}: {e}");
        }
    }

    #[test]
    fn wildcard_detection_and_unescape() {
        assert!(has_wildcards("src/*.rs"));
        assert!(has_wildcards("a[bc]"));
        assert!(!has_wildcards("a\\*b"));
        assert!(!has_wildcards("plain/name"));
        assert_eq!(unescape("a\\*b"), "a*b");
    }
}
