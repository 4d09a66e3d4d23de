//! Dockerfile lines as dockerd reads them for `--change`: logical lines
//! (escape-character continuations, comments, the `# escape=` directive),
//! instruction words with their leading `--flags`, whitespace-separated
//! words that keep their quotes, and the shell-like processing of a word
//! (quotes removed, escapes, `$VAR`, `${VAR}`, `${VAR:-x}`, `${VAR:+x}`,
//! `${VAR:?msg}` from the environment so far).

/// One instruction: its lower-case name, `--flags` and the rest of the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Instruction {
    /// `cmd`, `env`, … (lower case, as dockerd names it in errors).
    pub name: String,
    /// Leading `--name[=value]` words.
    pub flags: Vec<String>,
    /// The rest, trimmed.
    pub rest: String,
}

/// Nesting of `${A:-${B:-…}}` accepted.
const MAX_DEPTH: usize = 64;

fn directive(line: &str) -> Option<(String, String)> {
    let body = line.trim().strip_prefix('#')?.trim();
    let (k, v) = body.split_once('=')?;
    let k = k.trim();
    let v = v.trim();
    let mut chars = k.chars();
    let first_ok = chars.next().is_some_and(|c| c.is_ascii_alphabetic());
    (first_ok && chars.all(|c| c.is_ascii_alphanumeric()) && !v.is_empty())
        .then(|| (k.to_ascii_lowercase(), v.to_owned()))
}

/// Splits text into instructions. Returns them and the escape character.
pub(crate) fn instructions(text: &str) -> Result<(Vec<Instruction>, char), String> {
    let mut escape = '\\';
    let mut lines = text.split('\n').peekable();
    // parser directives: only comment lines at the very start
    while let Some(l) = lines.peek() {
        match directive(l) {
            Some((k, v)) => {
                if k == "escape" {
                    escape = match v.as_str() {
                        "`" => '`',
                        "\\" => '\\',
                        _ => return Err(format!("invalid ESCAPE '{v}'. Must be ` or \\")),
                    };
                }
                lines.next();
            }
            None => break,
        }
    }
    let mut out = Vec::new();
    let mut logical = String::new();
    let mut continuing = false;
    for raw in lines {
        let line = raw.trim_end_matches('\r');
        let trimmed = line.trim_start();
        if trimmed.starts_with('#') || (continuing && trimmed.trim().is_empty()) {
            // comments (also inside a continuation) and blank continuation lines
            continue;
        }
        let body = line.trim_end();
        match body.strip_suffix(escape) {
            Some(head) => {
                logical.push_str(head);
                continuing = true;
            }
            None => {
                logical.push_str(line);
                continuing = false;
                if !logical.trim().is_empty() {
                    out.push(split_instruction(&logical)?);
                }
                logical.clear();
            }
        }
    }
    // a continuation that never ended (even an empty one: dockerd names
    // its instruction "")
    if continuing || !logical.trim().is_empty() {
        out.push(split_instruction(&logical)?);
    }
    Ok((out, escape))
}

fn split_instruction(line: &str) -> Result<Instruction, String> {
    let line = line.trim();
    let (cmd, rest) = line.split_once(char::is_whitespace).unwrap_or((line, ""));
    let mut rest = rest.trim_start();
    let mut flags = Vec::new();
    // leading --flags, as dockerd's extractBuilderFlags
    while let Some(after) = rest.strip_prefix("--") {
        let (word, tail) = after.split_once(char::is_whitespace).unwrap_or((after, ""));
        if word.is_empty() {
            rest = tail.trim_start();
            break;
        }
        flags.push(word.to_owned());
        rest = tail.trim_start();
    }
    Ok(Instruction {
        name: cmd.to_lowercase(),
        flags,
        rest: rest.trim().to_owned(),
    })
}

/// Words separated by whitespace; quotes and escapes stay in the words
/// (dockerd's `parseWords`).
pub(crate) fn words(rest: &str, escape: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut blank_ok = false;
    let mut quote: Option<char> = None;
    let mut it = rest.chars().peekable();
    while let Some(ch) = it.next() {
        if let Some(q) = quote {
            if ch == q {
                quote = None;
            }
            if ch == escape && q != '\'' {
                match it.next() {
                    None => continue,
                    // an escaped quote does not end the quoted part
                    Some(next) => {
                        word.push(ch);
                        word.push(next);
                        continue;
                    }
                }
            }
            word.push(ch);
            continue;
        }
        if !in_word {
            if ch.is_whitespace() {
                continue;
            }
            in_word = true;
        }
        if ch.is_whitespace() {
            if blank_ok || !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            in_word = false;
            blank_ok = false;
            continue;
        }
        if ch == '\'' || ch == '"' {
            quote = Some(ch);
            blank_ok = true;
        }
        if ch == escape {
            match it.next() {
                None => continue,
                Some(next) => {
                    word.push(ch);
                    word.push(next);
                    continue;
                }
            }
        }
        word.push(ch);
    }
    if in_word && (blank_ok || !word.is_empty()) {
        out.push(word);
    }
    out
}

/// The value of `name` in `env` (`KEY=VALUE` entries; the first wins).
fn lookup<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter().find_map(|e| match e.split_once('=') {
        Some((k, v)) if k == name => Some(v),
        None if e == name => Some(""),
        _ => None,
    })
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a [String],
    escape: char,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Until `stop` (consumed) or the end (`stop` None).
    fn until(&mut self, stop: Option<char>, depth: usize) -> Result<String, String> {
        if depth > MAX_DEPTH {
            return Err("substitutions nested too deeply".into());
        }
        let mut out = String::new();
        loop {
            let Some(ch) = self.peek() else {
                return match stop {
                    None => Ok(out),
                    Some(_) => Err("syntax error: missing '}'".into()),
                };
            };
            if Some(ch) == stop {
                self.pos += 1;
                return Ok(out);
            }
            match ch {
                '\'' => {
                    self.pos += 1;
                    loop {
                        match self.next() {
                            None => {
                                return Err("unexpected end of statement while looking for matching single-quote".into());
                            }
                            Some('\'') => break,
                            Some(c) => out.push(c),
                        }
                    }
                }
                '"' => {
                    self.pos += 1;
                    loop {
                        match self.peek() {
                            None => {
                                return Err("unexpected end of statement while looking for matching double-quote".into());
                            }
                            Some('"') => {
                                self.pos += 1;
                                break;
                            }
                            Some('$') => out.push_str(&self.dollar(depth)?),
                            Some(c) => {
                                self.pos += 1;
                                if c == self.escape {
                                    match self.peek() {
                                        None => continue,
                                        Some(n) if n == '"' || n == '$' || n == self.escape => {
                                            self.pos += 1;
                                            out.push(n);
                                            continue;
                                        }
                                        Some(_) => {}
                                    }
                                }
                                out.push(c);
                            }
                        }
                    }
                }
                '$' => out.push_str(&self.dollar(depth)?),
                c if c == self.escape => {
                    self.pos += 1;
                    if let Some(n) = self.next() {
                        out.push(n);
                    }
                }
                c => {
                    self.pos += 1;
                    out.push(c);
                }
            }
        }
    }

    fn name(&mut self) -> String {
        let mut n = String::new();
        if let Some(c) = self.peek()
            && c.is_ascii_digit()
        {
            self.pos += 1;
            n.push(c);
            return n;
        }
        while let Some(c) = self.peek() {
            if c.is_alphanumeric() || c == '_' {
                n.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        n
    }

    fn dollar(&mut self, depth: usize) -> Result<String, String> {
        self.pos += 1; // '$'
        if self.peek() != Some('{') {
            let n = self.name();
            if n.is_empty() {
                return Ok("$".into());
            }
            return Ok(lookup(self.env, &n).unwrap_or("").to_owned());
        }
        self.pos += 1; // '{'
        let n = self.name();
        match self.next() {
            Some('}') => Ok(lookup(self.env, &n).unwrap_or("").to_owned()),
            Some(':') => {
                let modifier = self.next();
                let word = self.until(Some('}'), depth + 1)?;
                let value = lookup(self.env, &n).unwrap_or("");
                match modifier {
                    Some('-') => Ok(if value.is_empty() {
                        word
                    } else {
                        value.to_owned()
                    }),
                    Some('+') => Ok(if value.is_empty() {
                        String::new()
                    } else {
                        word
                    }),
                    Some('?') => {
                        if value.is_empty() {
                            Err(if word.is_empty() {
                                format!("{n}: is not allowed to be unset")
                            } else {
                                format!("{n}: {word}")
                            })
                        } else {
                            Ok(value.to_owned())
                        }
                    }
                    Some(m) => Err(format!("unsupported modifier ({m}) in substitution")),
                    None => Err("syntax error: missing '}'".into()),
                }
            }
            _ => Err("missing ':' in substitution".into()),
        }
    }
}

/// A word with quotes removed, escapes applied and variables of `env`
/// substituted (dockerd's `ProcessWord`).
pub(crate) fn process_word(word: &str, env: &[String], escape: char) -> Result<String, String> {
    let mut l = Lexer {
        chars: word.chars().collect(),
        pos: 0,
        env,
        escape,
    };
    l.until(None, 0)
        .map_err(|e| format!("failed to process {word:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(text: &str) -> Vec<(String, String)> {
        instructions(text)
            .unwrap()
            .0
            .into_iter()
            .map(|i| (i.name, i.rest))
            .collect()
    }

    #[test]
    fn lines_continuations_comments_and_directives() {
        assert_eq!(
            names("ENV A=1 \\\n  B=2\n# note\n\ncmd  x  "),
            [
                ("env".to_owned(), "A=1   B=2".to_owned()),
                ("cmd".to_owned(), "x".to_owned())
            ]
        );
        assert_eq!(
            names("# escape=`\nENV A=1 `\nB=2"),
            [("env".to_owned(), "A=1 B=2".to_owned())]
        );
        assert!(instructions("# escape=x\nENV A=1").is_err());
        assert!(names("# only a comment").is_empty());
        assert_eq!(names("\\"), [(String::new(), String::new())]);
        let (i, _) = instructions("HEALTHCHECK --interval=5s --retries=3 CMD true").unwrap();
        assert_eq!(i[0].flags, ["interval=5s", "retries=3"]);
        assert_eq!(i[0].rest, "CMD true");
        // multi-byte text never splits inside a character
        assert_eq!(names("ÉNV ü=€"), [("énv".to_owned(), "ü=€".to_owned())]);
    }

    #[test]
    fn words_keep_quotes() {
        assert_eq!(
            words(r#"A=1 B="two words" C=x\ y"#, '\\'),
            ["A=1", r#"B="two words""#, r"C=x\ y"]
        );
        assert_eq!(words("  a   b  ", '\\'), ["a", "b"]);
        assert_eq!(words(r#""""#, '\\'), [r#""""#]);
        assert!(words("", '\\').is_empty());
    }

    #[test]
    fn words_are_processed_like_dockerd() {
        let env = ["A=1".to_owned(), "E=".to_owned()];
        let p = |w: &str| process_word(w, &env, '\\');
        assert_eq!(p("$A").unwrap(), "1");
        assert_eq!(p("${A}x").unwrap(), "1x");
        assert_eq!(p("${Z:-def}").unwrap(), "def");
        assert_eq!(p("${E:-def}").unwrap(), "def");
        assert_eq!(p("${A:+alt}").unwrap(), "alt");
        assert_eq!(p("${Z:+alt}").unwrap(), "");
        assert_eq!(p(r"\$A").unwrap(), "$A");
        assert_eq!(p("'$A'").unwrap(), "$A");
        assert_eq!(p(r#""x\"y""#).unwrap(), "x\"y");
        assert_eq!(p(r#""a\b""#).unwrap(), r"a\b");
        assert_eq!(p("'it''s'").unwrap(), "its");
        assert_eq!(p("$").unwrap(), "$");
        assert_eq!(p("${A:-${Z:-${E:-deep}}}").unwrap(), "1");
        assert_eq!(
            p("${B:?err}").unwrap_err(),
            "failed to process \"${B:?err}\": B: err"
        );
        assert_eq!(
            p("${B").unwrap_err(),
            "failed to process \"${B\": missing ':' in substitution"
        );
        assert!(p("'open").unwrap_err().contains("matching single-quote"));
        assert!(p("\"open").unwrap_err().contains("matching double-quote"));
        let deep = format!("{}x{}", "${Z:-".repeat(100), "}".repeat(100));
        assert!(p(&deep).unwrap_err().contains("nested too deeply"));
        assert_eq!(p("ü€${A}").unwrap(), "ü€1");
    }
}
