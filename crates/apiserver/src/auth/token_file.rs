//! kube-apiserver's static token file (`--token-auth-file`): CSV lines of
//! `token,user,uid,"group1,group2"`. The group column is optional; further columns are
//! ignored. Blank lines and lines starting with `#` are skipped. A line with fewer than
//! three columns or broken quoting is an error naming the line; an empty token is
//! skipped with a warning; a repeated token keeps the last line (with a warning).

use std::collections::HashMap;
use std::path::Path;

use super::AuthError;
use super::authn::UserInfo;
use super::fsutil::read_text;

/// The users of a static token file, by token.
#[derive(Clone, Default)]
pub struct StaticTokens {
    users: HashMap<String, UserInfo>,
}

impl std::fmt::Debug for StaticTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the tokens.
        f.debug_struct("StaticTokens")
            .field("tokens", &self.users.len())
            .finish()
    }
}

impl StaticTokens {
    /// Reads and parses the token file at `path`.
    pub fn load(path: &Path) -> Result<StaticTokens, AuthError> {
        let text = read_text(path)?;
        StaticTokens::parse(&text, &path.display().to_string())
    }

    /// Parses token file text; `source` names it in errors.
    pub fn parse(text: &str, source: &str) -> Result<StaticTokens, AuthError> {
        let mut users = HashMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_no = index + 1;
            let trimmed = line.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let error = |reason: String| AuthError::TokenFile {
                path: source.to_string(),
                line: line_no,
                reason,
            };
            let fields = split_csv_line(line).map_err(error)?;
            if fields.len() < 3 {
                return Err(error(format!(
                    "needs at least 3 columns (token, user name, user uid), found {}",
                    fields.len()
                )));
            }
            let mut fields = fields.into_iter();
            let (token, name, uid) = match (fields.next(), fields.next(), fields.next()) {
                (Some(t), Some(n), Some(u)) => (t, n, u),
                _ => continue,
            };
            if token.is_empty() {
                tracing::warn!(
                    source,
                    line = line_no,
                    "empty token in the token file; line skipped"
                );
                continue;
            }
            let groups = fields
                .next()
                .map(|g| {
                    g.split(',')
                        .map(str::trim)
                        .filter(|g| !g.is_empty())
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let user = UserInfo {
                username: name,
                uid,
                groups,
                ..UserInfo::default()
            };
            if users.insert(token, user).is_some() {
                tracing::warn!(
                    source,
                    line = line_no,
                    "duplicate token in the token file; the later line wins"
                );
            }
        }
        Ok(StaticTokens { users })
    }

    /// The user of `token`, if the file has it.
    pub fn get(&self, token: &str) -> Option<&UserInfo> {
        self.users.get(token)
    }

    /// How many tokens the file holds.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// Whether the file holds no tokens.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }
}

/// Splits one CSV line as Go's encoding/csv does with leading spaces trimmed: fields
/// separated by commas, a field starting with `"` quoted (`""` inside is a quote).
fn split_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            let column = fields.len() + 1;
            loop {
                match chars.next() {
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                    None => return Err(format!("column {column}: unterminated quoted field")),
                }
            }
            match chars.next() {
                None => {
                    fields.push(field);
                    return Ok(fields);
                }
                Some(',') => fields.push(field),
                Some(c) => {
                    return Err(format!(
                        "column {column}: {c:?} after the closing quote (expected a comma)"
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim_end_matches('\r').to_string());
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field);
                        break;
                    }
                    Some('"') => {
                        return Err(format!(
                            "column {}: a quote inside an unquoted field",
                            fields.len() + 1
                        ));
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kubes_format() {
        let text = "\
# comment
tok1,alice,100
tok2,bob,101,\"devs,ops\"

tok3, carol ,102,admins,ignored
\"to,k4\",dave,103,\"\"
";
        let t = StaticTokens::parse(text, "tokens.csv").unwrap();
        assert_eq!(t.len(), 4);
        let alice = t.get("tok1").unwrap();
        assert_eq!(
            (alice.username.as_str(), alice.uid.as_str()),
            ("alice", "100")
        );
        assert!(alice.groups.is_empty());
        assert_eq!(t.get("tok2").unwrap().groups, vec!["devs", "ops"]);
        // Leading spaces are trimmed (as Go's TrimLeadingSpace), trailing kept.
        assert_eq!(t.get("tok3").unwrap().username, "carol ");
        assert_eq!(t.get("tok3").unwrap().groups, vec!["admins"]);
        assert_eq!(t.get("to,k4").unwrap().username, "dave");
        assert!(t.get("tok5").is_none());
    }

    #[test]
    fn multibyte_text_and_escaped_quotes() {
        let text = "jeton,zoë,7,\"équipe,\"\"ops\"\",日本\"\r\n";
        let t = StaticTokens::parse(text, "t").unwrap();
        let user = t.get("jeton").unwrap();
        assert_eq!(user.username, "zoë");
        assert_eq!(user.groups, vec!["équipe", "\"ops\"", "日本"]);
    }

    #[test]
    fn bad_lines_are_named() {
        let err = StaticTokens::parse("ok,a,1\nshort,b\n", "tokens.csv")
            .unwrap_err()
            .to_string();
        assert_eq!(
            err,
            "token file tokens.csv, line 2: needs at least 3 columns (token, user name, user uid), found 2"
        );
        let err = StaticTokens::parse("a,\"b,1\n", "f")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("unterminated"),
            "{err}"
        );
        let err = StaticTokens::parse("\n\nt,ü\"x,1\n", "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("line 3") && err.contains("column 2"), "{err}");
        let err = StaticTokens::parse("t,\"u\"x,1\n", "f")
            .unwrap_err()
            .to_string();
        assert!(err.contains("after the closing quote"), "{err}");
    }

    #[test]
    fn empty_tokens_are_skipped_and_duplicates_keep_the_last() {
        let t = StaticTokens::parse(",nobody,0\nt,first,1\nt,second,2\n", "f").unwrap();
        assert_eq!(t.len(), 1);
        assert_eq!(t.get("t").unwrap().username, "second");
        assert!(t.get("").is_none());
    }

    #[test]
    fn load_names_the_file() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("tokens.csv");
        std::fs::write(&path, "x\n").unwrap();
        let err = StaticTokens::load(&path).unwrap_err().to_string();
        assert!(err.contains("tokens.csv, line 1"), "{err}");
        let missing = StaticTokens::load(&tmp.path().join("nope"))
            .unwrap_err()
            .to_string();
        assert!(
            missing.contains("reading") && missing.contains("nope"),
            "{missing}"
        );
    }
}
