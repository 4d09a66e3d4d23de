//! From text to logical instructions: parser directives, comments, line
//! continuations (across comment and empty lines) and here-document
//! bodies, with line numbers. No instruction is interpreted here beyond
//! what finding here-documents needs.

use super::ast::Directives;
use super::shell::{Mode, lex_words};
use super::words::{parse_json, split_command};

/// One logical instruction.
#[derive(Clone, Debug)]
pub(crate) struct Node {
    /// 1-based first line.
    pub line: usize,
    /// 1-based last line (continuations, here-document bodies).
    pub end_line: usize,
    /// The instruction, continuations joined, trimmed.
    pub original: String,
    /// The keyword as written.
    pub keyword: String,
    /// Leading `--flags`, quotes removed.
    pub flags: Vec<String>,
    /// The rest after the flags, trimmed.
    pub args: String,
    /// Here-documents, in the order of their `<<` words.
    pub heredocs: Vec<RawHeredoc>,
}

/// A here-document as read (tabs not stripped yet).
#[derive(Clone, Debug)]
pub(crate) struct RawHeredoc {
    pub name: String,
    pub content: String,
    pub chomp: bool,
    pub expand: bool,
}

/// A problem found while reading lines: where and what.
#[derive(Clone, Debug)]
pub(crate) struct LineError {
    pub line: usize,
    pub text: String,
    pub message: String,
}

/// The logical instructions of a text.
#[derive(Debug)]
pub(crate) struct Lines {
    pub nodes: Vec<Node>,
    pub directives: Directives,
    pub warnings: Vec<String>,
}

/// Removes every trailing `\r` and `\n`.
fn trim_newline(s: &str) -> &str {
    s.trim_end_matches(['\r', '\n'])
}

fn is_comment(s: &str) -> bool {
    s.trim_start().starts_with('#')
}

/// Takes a trailing continuation (the escape character, then only spaces
/// and tabs) off `line`; `true` when the line ends the instruction. An
/// escaped escape character (`\\`) at the end is no continuation.
fn trim_continuation(line: &str, escape: char) -> (&str, bool) {
    let t = line.trim_end_matches([' ', '\t']);
    match t.strip_suffix(escape) {
        Some(before) if before.is_empty() || !before.ends_with(escape) => (before, false),
        _ => (line, true),
    }
}

/// Tracks parser directives at the top of the file.
struct DirectiveState {
    done: bool,
    seen: Vec<String>,
    directives: Directives,
}

impl DirectiveState {
    /// Looks at one line; directives stop at the first line that is not
    /// one (an instruction, another comment, a blank line).
    fn line(&mut self, line: &str) -> Result<(), String> {
        if self.done {
            return Ok(());
        }
        let Some(body) = line.strip_prefix('#') else {
            self.done = true;
            return Ok(());
        };
        let Some((key, value)) = parse_directive(body.trim_start()) else {
            self.done = true;
            return Ok(());
        };
        let key = key.to_ascii_lowercase();
        if !matches!(key.as_str(), "escape" | "syntax" | "check") {
            self.done = true;
            return Ok(());
        }
        if self.seen.contains(&key) {
            return Err(format!("only one {key} parser directive can be used"));
        }
        self.seen.push(key.clone());
        match key.as_str() {
            "escape" => {
                self.directives.escape = match value {
                    "\\" => '\\',
                    "`" => '`',
                    _ => {
                        return Err(format!(
                            "invalid escape token '{value}' does not match ` or \\"
                        ));
                    }
                };
            }
            "syntax" => self.directives.syntax = Some(value.to_string()),
            _ => self.directives.check = Some(value.to_string()),
        }
        Ok(())
    }
}

/// `key = value` with an ASCII key (`[A-Za-z][A-Za-z0-9]*`) and a
/// non-empty value (surrounding whitespace dropped).
fn parse_directive(s: &str) -> Option<(&str, &str)> {
    let key_len = s
        .char_indices()
        .take_while(|(i, c)| {
            if *i == 0 {
                c.is_ascii_alphabetic()
            } else {
                c.is_ascii_alphanumeric()
            }
        })
        .count();
    if key_len == 0 {
        return None;
    }
    let (key, rest) = s.split_at(key_len);
    let is_re_space = |c: char| matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ');
    let rest = rest.trim_start_matches(is_re_space).strip_prefix('=')?;
    let value = rest.trim_matches(is_re_space);
    if value.is_empty() {
        return None;
    }
    Some((key, value))
}

/// Splits `text` into logical instructions. `escape` is the escape
/// character before any `# escape=` directive.
pub(crate) fn split(text: &str, escape: char) -> Result<Lines, LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let phys: Vec<&str> = text.split_inclusive('\n').collect();
    let mut dirs = DirectiveState {
        done: false,
        seen: Vec::new(),
        directives: Directives {
            escape,
            ..Directives::default()
        },
    };
    let mut nodes = Vec::new();
    let mut warnings = Vec::new();
    let mut i = 0;
    let err = |line: usize, message: String| LineError {
        line,
        text: phys
            .get(line.saturating_sub(1))
            .map(|l| trim_newline(l).to_string())
            .unwrap_or_default(),
        message,
    };
    while let Some(raw) = phys.get(i) {
        i += 1;
        let start = i;
        let token = trim_newline(raw).trim_start();
        dirs.line(token).map_err(|m| err(start, m))?;
        let esc = dirs.directives.escape;
        let token = if is_comment(token) { "" } else { token };
        let (first, mut eol) = trim_continuation(token, esc);
        if eol && first.is_empty() {
            continue;
        }
        let mut line = first.to_string();
        let mut empty_continuation = false;
        while !eol {
            let Some(raw) = phys.get(i) else { break };
            i += 1;
            let l = trim_newline(raw);
            if is_comment(l) {
                continue;
            }
            if l.trim_start().is_empty() {
                empty_continuation = true;
                continue;
            }
            let (part, e) = trim_continuation(l, esc);
            line.push_str(part);
            eol = e;
        }
        if empty_continuation {
            warnings.push(format!(
                "line {i}: empty continuation line found in: {} (empty continuation lines will become errors in a future release)",
                line.trim()
            ));
        }
        let (keyword, flags, args) = split_command(&line, esc);
        let mut heredocs = Vec::new();
        if line.contains("<<") && can_contain_heredoc(&keyword, &args, esc) {
            for mut doc in heredocs_from_line(&line, esc).map_err(|m| err(start, m))? {
                let mut terminated = false;
                while let Some(raw) = phys.get(i) {
                    i += 1;
                    let l = trim_newline(raw);
                    let candidate = if doc.chomp {
                        l.trim_start_matches('\t')
                    } else {
                        l
                    };
                    if candidate == doc.name {
                        terminated = true;
                        break;
                    }
                    doc.content.push_str(l);
                    doc.content.push('\n');
                }
                if !terminated {
                    return Err(err(start, "unterminated heredoc".into()));
                }
                heredocs.push(doc);
            }
        }
        nodes.push(Node {
            line: start,
            end_line: i.max(start),
            original: line.trim().to_string(),
            keyword,
            flags,
            args,
            heredocs,
        });
    }
    Ok(Lines {
        nodes,
        directives: dirs.directives,
        warnings,
    })
}

/// `RUN`, `COPY` and `ADD` in shell form (and `ONBUILD` of those) may
/// carry here-documents.
fn can_contain_heredoc(keyword: &str, args: &str, escape: char) -> bool {
    let k = keyword.to_ascii_lowercase();
    if k == "onbuild" {
        let (k2, _, a2) = split_command(args, escape);
        return can_contain_heredoc_plain(&k2, &a2);
    }
    can_contain_heredoc_plain(&k, args)
}

fn can_contain_heredoc_plain(keyword: &str, args: &str) -> bool {
    matches!(
        keyword.to_ascii_lowercase().as_str(),
        "run" | "copy" | "add"
    ) && !matches!(parse_json(args), Ok(Some(_)))
}

/// The here-documents a line introduces, in order.
fn heredocs_from_line(line: &str, escape: char) -> Result<Vec<RawHeredoc>, String> {
    let mode = Mode {
        raw_quotes: true,
        raw_escapes: true,
        skip_unset: true,
        ..Mode::default()
    };
    let words = lex_words(line, escape, mode).unwrap_or_default();
    let mut docs = Vec::new();
    for w in words {
        if let Some(doc) = parse_heredoc(&w, escape)? {
            docs.push(doc);
        }
    }
    Ok(docs)
}

/// A `[n]<<[-]WORD` word: the delimiter without quotes, whether it was
/// quoted (no expansion) and whether tabs are stripped (`<<-`). `None`
/// when the word is no here-document.
pub(crate) fn parse_heredoc(word: &str, escape: char) -> Result<Option<RawHeredoc>, String> {
    let w = word.trim_start_matches(|c: char| c.is_ascii_digit());
    let Some(w) = w.strip_prefix("<<") else {
        return Ok(None);
    };
    let (chomp, w) = match w.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, w),
    };
    let rest = w.trim_start_matches(['\t', '\n', '\u{c}', '\r', ' ']);
    if rest.is_empty() || rest.contains('<') {
        return Ok(None);
    }
    let plain = Mode {
        skip_unset: true,
        ..Mode::default()
    };
    let Some(words) = lex_words(rest, escape, plain) else {
        return Err(format!("failed to process heredoc word {rest:?}"));
    };
    let [name] = words.as_slice() else {
        return Ok(None);
    };
    let raw_mode = Mode {
        raw_quotes: true,
        ..plain
    };
    let raw = lex_words(rest, escape, raw_mode).unwrap_or_default();
    let [raw_name] = raw.as_slice() else {
        return Err(format!(
            "internal lexing of heredoc produced inconsistent results: {rest}"
        ));
    };
    let quotes = |s: &str| s.chars().filter(|c| *c == '\'' || *c == '"').count();
    Ok(Some(RawHeredoc {
        name: name.clone(),
        content: String::new(),
        chomp,
        expand: quotes(name) == quotes(raw_name),
    }))
}

/// Strips the leading tabs of every line (`<<-`).
pub(crate) fn chomp(content: &str) -> String {
    content
        .split_inclusive('\n')
        .map(|l| l.trim_start_matches('\t'))
        .collect()
}
