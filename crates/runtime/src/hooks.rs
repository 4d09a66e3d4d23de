//! Running OCI hooks: the container state on stdin, the hook's own args
//! and env, an optional timeout.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use oci_spec::runtime::Hook;

use crate::error::{Error, Result};

/// Which lifecycle point a hook belongs to (for messages).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// `prestart` (deprecated; run with createRuntime).
    Prestart,
    /// `createRuntime`.
    CreateRuntime,
    /// `createContainer`.
    CreateContainer,
    /// `startContainer`.
    StartContainer,
    /// `poststart`.
    Poststart,
    /// `poststop`.
    Poststop,
}

impl Stage {
    fn name(self) -> &'static str {
        match self {
            Stage::Prestart => "prestart",
            Stage::CreateRuntime => "createRuntime",
            Stage::CreateContainer => "createContainer",
            Stage::StartContainer => "startContainer",
            Stage::Poststart => "poststart",
            Stage::Poststop => "poststop",
        }
    }
}

/// Runs `hooks` in order with `state` (JSON) on stdin; stops at the first
/// failure.
pub fn run_all(stage: Stage, hooks: &[Hook], state: &str) -> Result<()> {
    for (i, h) in hooks.iter().enumerate() {
        run_one(h, state).map_err(|m| {
            Error::Hook(format!(
                "{} hook #{i} ({}) failed: {m}",
                stage.name(),
                h.path().display()
            ))
        })?;
    }
    Ok(())
}

/// Runs every hook, logging failures instead of stopping (poststart and
/// poststop semantics).
pub fn run_all_logged(stage: Stage, hooks: &[Hook], state: &str) {
    for (i, h) in hooks.iter().enumerate() {
        if let Err(m) = run_one(h, state) {
            tracing::warn!(
                "{} hook #{i} ({}) failed: {m}",
                stage.name(),
                h.path().display()
            );
        }
    }
}

fn run_one(h: &Hook, state: &str) -> std::result::Result<(), String> {
    let mut cmd = Command::new(h.path());
    if let Some(args) = h.args()
        && let Some((first, rest)) = args.split_first()
    {
        cmd.arg0(first);
        cmd.args(rest);
    }
    cmd.env_clear();
    for kv in h.env().iter().flatten() {
        if let Some((k, v)) = kv.split_once('=') {
            cmd.env(k, v);
        }
    }
    // Output goes to an in-memory file: a chatty hook can never block on a
    // full pipe, and its words end up in the error message.
    let out_file: std::fs::File =
        rustix::fs::memfd_create("berth-hook-output", rustix::fs::MemfdFlags::CLOEXEC)
            .map_err(|e| format!("memfd: {e}"))?
            .into();
    let out_clone = out_file.try_clone().map_err(|e| format!("dup: {e}"))?;
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::from(out_clone))
        .stderr(Stdio::from(
            out_file.try_clone().map_err(|e| format!("dup: {e}"))?,
        ));
    let mut child = cmd.spawn().map_err(|e| format!("cannot start: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook may exit without reading its stdin; that is fine.
        let _ = stdin.write_all(state.as_bytes());
    }
    let deadline = h
        .timeout()
        .map(|t| Instant::now() + Duration::from_secs(t.max(1) as u64));
    let mut delay = Duration::from_micros(100);
    let status = loop {
        match child.try_wait() {
            Ok(Some(s)) => break s,
            Ok(None) => {}
            Err(e) => return Err(format!("wait: {e}")),
        }
        if deadline.is_some_and(|d| Instant::now() >= d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("timed out after {}s", h.timeout().unwrap_or(0)));
        }
        std::thread::sleep(delay);
        delay = (delay * 2).min(Duration::from_millis(10));
    };
    if status.success() {
        return Ok(());
    }
    let mut out = String::new();
    let mut f = out_file;
    let _ = std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(0));
    let _ = f.take(4096).read_to_string(&mut out);
    let out = out.trim();
    Err(if out.is_empty() {
        format!("{status}")
    } else {
        format!("{status}: {out}")
    })
}
