//! The Dockerfile parser (placeholder: being written).

use super::ast::*;

/// A parse error: the file, the line and the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct ParseError {
    /// The file name as the user gave it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The offending line's text.
    pub text: String,
    /// What is wrong.
    pub message: String,
}

/// Parses a whole Dockerfile.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
    let _ = text;
    Err(ParseError {
        file: file.into(),
        line: 1,
        text: String::new(),
        message: "not supported yet".into(),
    })
}
