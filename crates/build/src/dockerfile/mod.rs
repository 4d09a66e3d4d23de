//! The Dockerfile: its syntax tree ([`ast`]), the parser ([`parse`]) and
//! the word expansion Docker applies to some instructions ([`shell`]).

pub mod ast;
mod glob;
mod lines;
pub mod parse;
pub mod shell;
mod words;

pub use ast::*;
pub use parse::{ParseError, parse, parse_instruction};
