//! Why a build failed, in Docker's words.

use crate::context::ContextError;
use crate::dockerfile::ParseError;

/// A build failure.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The Dockerfile does not parse.
    #[error("{0}")]
    Parse(ParseError),
    /// An instruction is wrong at build time (a bad flag value, an
    /// unknown stage, a variable error), with its line.
    #[error("Dockerfile:{line}: {message}")]
    Instruction {
        /// 1-based line.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// Asked for something berth does not do yet.
    #[error("not supported yet: {0}")]
    NotSupported(String),
    /// A RUN step exited non-zero.
    #[error("The command '{command}' returned a non-zero code: {code}")]
    Failed {
        /// The command as Docker prints it (`/bin/sh -c false`).
        command: String,
        /// Its exit code.
        code: i32,
    },
    /// The base image is missing and could not be pulled.
    #[error("{0}")]
    Image(String),
    /// COPY/ADD sources.
    #[error("{0}")]
    Context(#[from] ContextError),
    /// The engine failed.
    #[error("{0}")]
    Engine(#[from] berth_engine::Error),
    /// The client went away or the build was interrupted.
    #[error("build cancelled")]
    Cancelled,
    /// A local I/O failure.
    #[error("{0}: {1}")]
    Io(String, std::io::Error),
}

impl BuildError {
    /// The exit code for `errorDetail.code` (a RUN's own code, else 1).
    pub fn code(&self) -> i32 {
        match self {
            BuildError::Failed { code, .. } => *code,
            _ => 1,
        }
    }

    /// Whether the fault is the request's (a bad Dockerfile or context:
    /// docker's 400) rather than the daemon's.
    pub fn is_invalid(&self) -> bool {
        matches!(
            self,
            BuildError::Parse(_) | BuildError::Instruction { .. } | BuildError::Context(_)
        )
    }
}

pub(crate) fn at(line: usize, message: impl Into<String>) -> BuildError {
    BuildError::Instruction {
        line,
        message: message.into(),
    }
}
