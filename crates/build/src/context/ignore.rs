//! `.dockerignore` (and `COPY --exclude`) patterns with Docker's semantics
//! (moby/patternmatcher): a pattern is cleaned like Go's `filepath.Clean`,
//! compiled the way patternmatcher turns it into a regular expression
//! (`*` and `?` never match `/`, `**` matches any number of directories,
//! `[...]` classes, `\` escapes), matched against the path and each of its
//! parent directories, with `!` exceptions re-including and the last
//! matching pattern deciding.

use super::ContextError;
use super::glob::{Class, parse_class};

/// A parsed set of `.dockerignore` rules.
#[derive(Clone, Debug, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    exceptions: bool,
}

/// How a pattern is matched (patternmatcher's match types).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// The path equals the pattern.
    Exact,
    /// `dir/**`: the path starts with the pattern less its `**`.
    Prefix,
    /// `**/name`: the path ends with the pattern less its `**`.
    Suffix,
    /// Anything else: the compiled tokens.
    Tokens,
}

/// One piece of a compiled pattern (a regular-expression equivalent).
#[derive(Clone, Debug)]
enum Tok {
    Lit(char),
    /// `?`: one character but `/`.
    One,
    /// `*`: characters but `/`.
    Star,
    /// `**` followed by more: `(.*/)?`.
    AnyDirs,
    /// A trailing `**` after wildcards: `.*`.
    All,
    /// `[...]`.
    Class(Class),
}

#[derive(Clone, Debug)]
struct Pattern {
    /// The cleaned pattern (without `!`).
    text: Vec<char>,
    exception: bool,
    kind: Kind,
    toks: Vec<Tok>,
}

/// Go's `filepath.Clean` on a slash-separated path.
pub(super) fn clean(p: &str) -> String {
    let rooted = p.starts_with('/');
    let mut parts: Vec<&str> = Vec::new();
    for c in p.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                if parts.last().is_some_and(|l| *l != "..") {
                    parts.pop();
                } else if !rooted {
                    parts.push("..");
                }
            }
            x => parts.push(x),
        }
    }
    let body = parts.join("/");
    match (rooted, body.is_empty()) {
        (true, _) => format!("/{body}"),
        (false, true) => ".".to_owned(),
        (false, false) => body,
    }
}

impl Pattern {
    fn new(raw: &str) -> Result<Option<Pattern>, ContextError> {
        let p = raw.trim();
        if p.is_empty() {
            return Ok(None);
        }
        let p = clean(p);
        let (exception, p) = match p.strip_prefix('!') {
            Some("") => {
                return Err(ContextError::Pattern(
                    "illegal exclusion pattern: \"!\"".to_owned(),
                ));
            }
            Some(rest) => (true, rest.to_owned()),
            None => (false, p),
        };
        // the syntax check patternmatcher does with filepath.Match
        super::glob::compile(&p)?;
        let text: Vec<char> = p.chars().collect();
        let (kind, toks) = compile(&text, &p)?;
        Ok(Some(Pattern {
            text,
            exception,
            kind,
            toks,
        }))
    }

    fn matches(&self, path: &[char]) -> bool {
        match self.kind {
            Kind::Exact => path == self.text.as_slice(),
            Kind::Prefix => {
                let n = self.text.len().saturating_sub(2);
                path.starts_with(&self.text[..n])
            }
            Kind::Suffix => {
                let suffix = &self.text[2.min(self.text.len())..];
                path.ends_with(suffix) || (suffix.first() == Some(&'/') && path == &suffix[1..])
            }
            Kind::Tokens => run(&self.toks, path, false),
        }
    }

    /// Whether some path below `dir` (given with a trailing `/`) could match.
    fn may_match_below(&self, dir_slash: &[char]) -> bool {
        match self.kind {
            Kind::Exact => self.text.starts_with(dir_slash),
            Kind::Prefix => {
                let n = self.text.len().saturating_sub(2);
                let prefix = &self.text[..n];
                prefix.starts_with(dir_slash) || dir_slash.starts_with(prefix)
            }
            Kind::Suffix => true,
            Kind::Tokens => run(&self.toks, dir_slash, true),
        }
    }
}

/// Compiles a cleaned pattern the way patternmatcher builds its regular
/// expression, deciding the match type as it does.
fn compile(chars: &[char], text: &str) -> Result<(Kind, Vec<Tok>), ContextError> {
    let mut toks = Vec::new();
    let mut kind = Kind::Exact;
    let mut i = 0;
    let mut step = 0;
    while i < chars.len() {
        let ch = chars[i];
        i += 1;
        match ch {
            '*' if chars.get(i) == Some(&'*') => {
                i += 1;
                if chars.get(i) == Some(&'/') {
                    i += 1;
                }
                if i == chars.len() {
                    if kind == Kind::Exact {
                        kind = Kind::Prefix;
                    } else {
                        toks.push(Tok::All);
                        kind = Kind::Tokens;
                    }
                } else {
                    toks.push(Tok::AnyDirs);
                    kind = Kind::Tokens;
                }
                if step == 0 {
                    kind = Kind::Suffix;
                }
            }
            '*' => {
                toks.push(Tok::Star);
                kind = Kind::Tokens;
            }
            '?' => {
                toks.push(Tok::One);
                kind = Kind::Tokens;
            }
            '\\' => {
                // patternmatcher compares an escaped pattern as written
                // (its exact-match shortcut); berth matches the escape
                match chars.get(i) {
                    Some(c) => {
                        toks.push(Tok::Lit(*c));
                        i += 1;
                    }
                    None => toks.push(Tok::Lit('\\')),
                }
                kind = Kind::Tokens;
            }
            '[' => {
                let (class, next) = parse_class(chars, i, text)?;
                toks.push(Tok::Class(class));
                i = next;
                kind = Kind::Tokens;
            }
            ']' => {
                toks.push(Tok::Lit(']'));
                kind = Kind::Tokens;
            }
            c => toks.push(Tok::Lit(c)),
        }
        step += 1;
    }
    Ok((kind, toks))
}

/// Matches tokens against the whole of `s` (or, with `prefix`, whether
/// some continuation of `s` could match). Memoised: linear in
/// tokens × characters.
fn run(toks: &[Tok], s: &[char], prefix: bool) -> bool {
    let w = s.len() + 1;
    let mut seen = vec![false; (toks.len() + 1) * w];
    let mut stack = vec![(0usize, 0usize)];
    while let Some((t, p)) = stack.pop() {
        let idx = t * w + p;
        if seen[idx] {
            continue;
        }
        seen[idx] = true;
        if p == s.len() && (prefix || t == toks.len()) {
            return true;
        }
        let Some(tok) = toks.get(t) else {
            continue;
        };
        let c = s.get(p);
        match tok {
            Tok::Lit(l) => {
                if c == Some(l) {
                    stack.push((t + 1, p + 1));
                }
            }
            Tok::One => {
                if c.is_some_and(|c| *c != '/') {
                    stack.push((t + 1, p + 1));
                }
            }
            Tok::Class(class) => {
                if c.is_some_and(|c| class.matches(*c)) {
                    stack.push((t + 1, p + 1));
                }
            }
            Tok::Star => {
                stack.push((t + 1, p));
                if c.is_some_and(|c| *c != '/') {
                    stack.push((t, p + 1));
                }
            }
            Tok::All => {
                stack.push((t + 1, p));
                if c.is_some() {
                    stack.push((t, p + 1));
                }
            }
            Tok::AnyDirs => {
                // (.*/)? : nothing, or any run ending with '/'
                stack.push((t + 1, p));
                for (k, ch) in s.iter().enumerate().skip(p) {
                    if *ch == '/' {
                        stack.push((t + 1, k + 1));
                    }
                }
                if prefix {
                    // a continuation could still end the run with '/'
                    stack.push((t + 1, s.len()));
                }
            }
        }
    }
    false
}

impl Ignore {
    /// Docker's `.dockerignore` rules (moby/patternmatcher semantics: each
    /// line a pattern, `#` comments, blank lines skipped, leading/trailing
    /// whitespace trimmed, paths cleaned (`filepath.Clean`), leading `/`
    /// removed, Go `filepath.Match` syntax plus `**` matching any number of
    /// directories, `!` exceptions re-including, last match wins; a pattern
    /// matching a directory excludes everything below it).
    pub fn parse(text: &str) -> Result<Ignore, ContextError> {
        let mut lines = Vec::new();
        for (n, line) in text.split('\n').enumerate() {
            let mut line = line.strip_suffix('\r').unwrap_or(line);
            if n == 0 {
                line = line.strip_prefix('\u{feff}').unwrap_or(line);
            }
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (invert, mut p) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim().to_owned()),
                None => (false, line.to_owned()),
            };
            if !p.is_empty() {
                p = clean(&p);
                if p.len() > 1
                    && let Some(rest) = p.strip_prefix('/')
                {
                    p = rest.to_owned();
                }
            }
            lines.push(if invert { format!("!{p}") } else { p });
        }
        Ignore::from_patterns(&lines)
    }

    /// Patterns as given (`COPY --exclude`), each like one line of a
    /// `.dockerignore` without comment handling.
    pub fn from_patterns(patterns: &[String]) -> Result<Ignore, ContextError> {
        let mut out = Ignore::empty();
        for p in patterns {
            let p = p.trim();
            let p = match p.strip_prefix('/') {
                Some(rest) if !rest.is_empty() => rest,
                _ => p,
            };
            if let Some(pat) = Pattern::new(p)? {
                out.exceptions |= pat.exception;
                out.patterns.push(pat);
            }
        }
        Ok(out)
    }

    /// No rules: nothing is excluded.
    pub fn empty() -> Ignore {
        Ignore::default()
    }

    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Whether the context-relative path (slash-separated, no leading `./`
    /// or `/`) is excluded.
    pub fn is_excluded(&self, rel: &str) -> bool {
        if self.patterns.is_empty() {
            return false;
        }
        let cleaned = clean(rel);
        let rel = cleaned.trim_start_matches('/');
        if rel.is_empty() || rel == "." {
            return false;
        }
        let path: Vec<char> = rel.chars().collect();
        // the parent directories: "a", "a/b", … (not the path itself)
        let parents: Vec<usize> = path
            .iter()
            .enumerate()
            .filter(|(_, c)| **c == '/')
            .map(|(i, _)| i)
            .collect();
        let mut matched = false;
        for pat in &self.patterns {
            // an exclusion only matters while not excluded, an exception
            // only once excluded
            if pat.exception != matched {
                continue;
            }
            let hit = pat.matches(&path) || parents.iter().any(|end| pat.matches(&path[..*end]));
            if hit {
                matched = !pat.exception;
            }
        }
        matched
    }

    /// Whether a walk must still descend into an excluded directory because
    /// an exception (`!pattern`) may re-include something below it.
    pub fn must_descend(&self, dir_rel: &str) -> bool {
        if !self.exceptions {
            return false;
        }
        let cleaned = clean(dir_rel);
        let dir = cleaned.trim_start_matches('/');
        let mut slash: Vec<char> = if dir.is_empty() || dir == "." {
            Vec::new()
        } else {
            dir.chars().collect()
        };
        if !slash.is_empty() {
            slash.push('/');
        }
        self.patterns
            .iter()
            .filter(|p| p.exception)
            .any(|p| p.may_match_below(&slash))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ig(text: &str) -> Ignore {
        Ignore::parse(text).unwrap()
    }

    #[test]
    fn clean_like_go() {
        assert_eq!(clean("a//b/./c/.."), "a/b");
        assert_eq!(clean("/../a"), "/a");
        assert_eq!(clean("../a"), "../a");
        assert_eq!(clean(""), ".");
        assert_eq!(clean("a/"), "a");
    }

    #[test]
    fn basic_rules() {
        let i = ig("# comment\n\n  *.log  \n/build\nnode_modules/\n");
        assert!(i.is_excluded("app.log"));
        assert!(!i.is_excluded("src/app.log"), "* does not cross /");
        assert!(i.is_excluded("build"));
        assert!(i.is_excluded("build/out/x.o"), "below an excluded dir");
        assert!(i.is_excluded("node_modules/x/y.js"));
        assert!(!i.is_excluded("src/main.rs"));
        assert!(!i.is_excluded("# comment"));
    }

    #[test]
    fn comment_only_at_line_start() {
        let i = ig("  #keep\n");
        assert!(i.is_excluded("#keep"), "an indented # is a pattern");
    }

    #[test]
    fn double_star() {
        let i = ig("**/*.tmp\n");
        assert!(i.is_excluded("a.tmp"));
        assert!(i.is_excluded("x/y/z/a.tmp"));
        assert!(!i.is_excluded("a.tmpx"));
        let i = ig("docs/**\n");
        assert!(i.is_excluded("docs/a/b"));
        let i = ig("a/**/z\n");
        assert!(i.is_excluded("a/z"));
        assert!(i.is_excluded("a/b/c/z"));
        assert!(!i.is_excluded("b/z"));
        let i = ig("**\n");
        assert!(i.is_excluded("anything/at/all"));
        let i = ig("**/secret\n");
        assert!(i.is_excluded("secret"));
        assert!(i.is_excluded("deep/secret"));
        assert!(i.is_excluded("deep/secret/inner"));
    }

    #[test]
    fn exceptions_and_last_match_wins() {
        let i = ig("*.md\n!README.md\n");
        assert!(i.is_excluded("CHANGES.md"));
        assert!(!i.is_excluded("README.md"));
        let i = ig("!README.md\n*.md\n");
        assert!(i.is_excluded("README.md"), "the later pattern wins");
        let i = ig("docs\n!docs/keep\n");
        assert!(i.is_excluded("docs"));
        assert!(i.is_excluded("docs/other"));
        assert!(!i.is_excluded("docs/keep"));
        assert!(!i.is_excluded("docs/keep/inner.txt"));
        assert!(i.must_descend("docs"));
        assert!(!i.must_descend("src"));
        let i = ig("*\n!**/*.rs\n");
        assert!(i.must_descend("anything"));
        assert!(!i.is_excluded("a/b.rs"));
        assert!(i.is_excluded("a/b.txt"));
        let i = ig("vendor\n!vendor/*/keep\n");
        assert!(i.must_descend("vendor"));
        assert!(i.must_descend("vendor/x"));
        assert!(!i.must_descend("other"));
        let i = ig("vendor\n");
        assert!(
            !i.must_descend("vendor"),
            "no exceptions: nothing to find below"
        );
    }

    #[test]
    fn errors_and_odd_input() {
        let e = Ignore::parse("!\n").unwrap_err().to_string();
        assert!(e.contains("illegal exclusion pattern"), "{e}");
        let e = Ignore::parse("[\n").unwrap_err().to_string();
        assert!(e.contains("syntax error in pattern"), "{e}");
        let i = ig("\u{feff}a.txt\r\nb.txt\r\n");
        assert!(i.is_excluded("a.txt") && i.is_excluded("b.txt"));
        let i = ig("./a/../b\n/c\n");
        assert!(i.is_excluded("b") && i.is_excluded("c"));
        let i = ig("dossier-é/*.txt\n");
        assert!(i.is_excluded("dossier-é/ü.txt"));
        assert!(!Ignore::empty().is_excluded("x"));
    }

    #[test]
    fn classes_and_escapes() {
        let i = ig("file[0-9].txt\n\\*literal\n");
        assert!(i.is_excluded("file3.txt"));
        assert!(!i.is_excluded("filex.txt"));
        assert!(i.is_excluded("*literal"));
    }
}
