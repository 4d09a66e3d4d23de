//! The builder: a parsed Dockerfile's stages run through the engine, the
//! way Docker's classic builder runs them (one image per step, RUN in a
//! container on the previous step's image, its changes committed as a
//! layer), with BuildKit's habits where users rely on them (only the stages
//! the target needs, `RUN --mount`, here-documents).
//!
//! Every step's result is recorded in berth's own build cache
//! ([`cache`]), keyed by everything that decides it; an image that merely
//! looks alike is never taken for a cached step (CVE-2024-24557).

pub mod cache;
mod copy;
mod error;
mod eval;
mod fetch;
mod instructions;
mod mounts;
mod options;
mod output;
mod run;
mod stage;
mod step;

use std::sync::atomic::{AtomicBool, Ordering};

use berth_engine::Engine;
use berth_types::Digest;

use crate::context::SourceTree;
use crate::dockerfile::{self, Dockerfile};

pub use error::BuildError;
pub use options::{BuildOptions, Puller, Secret, SecretSource, SshAgent};
pub use output::{Collect, Progress};

/// What a build made.
#[derive(Clone, Debug)]
pub struct Built {
    /// The image id.
    pub id: Digest,
    /// The names it was tagged with.
    pub tags: Vec<String>,
}

/// Builds the Dockerfile `file` (its text; `name` is how errors name it)
/// with `context` as the build context. Progress goes to `out` as Docker's
/// classic builder prints it; `cancel` stops the build at the next step
/// (and a running step's container).
pub fn build(
    engine: &Engine,
    context: &SourceTree,
    name: &str,
    file: &str,
    opts: &BuildOptions,
    out: &mut dyn Progress,
    cancel: &AtomicBool,
) -> Result<Built, BuildError> {
    let df: Dockerfile = dockerfile::parse(name, file).map_err(BuildError::Parse)?;
    for w in &df.warnings {
        out.warning(w);
    }
    let stop = AtomicBool::new(cancel.load(Ordering::Relaxed));
    let shared = stage::Shared::new(engine, context, &df, opts, &stop)?;
    let id = shared.run(out, cancel)?;
    let tags = opts.tags.iter().map(|t| t.familiar()).collect();
    Ok(Built { id, tags })
}

pub(crate) fn cancelled(cancel: &AtomicBool) -> Result<(), BuildError> {
    if cancel.load(Ordering::Relaxed) {
        Err(BuildError::Cancelled)
    } else {
        Ok(())
    }
}
