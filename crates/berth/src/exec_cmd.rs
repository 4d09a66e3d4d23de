//! `berth exec`: a command in a running container, through the engine
//! (no daemon needed), with docker's flags and exit codes.

use std::io::IsTerminal;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use berth_engine::Engine;
use berth_engine::exec::ExecRecord;
use clap::Args;

use crate::run_cmd::{RunFailed, relay};

/// `berth exec` flags (docker's names).
#[derive(Args, Debug)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Detached mode: run the command in the background.
    #[arg(short, long)]
    detach: bool,
    /// Override the key sequence for detaching.
    #[arg(long)]
    detach_keys: Option<String>,
    /// Keep STDIN open.
    #[arg(short, long)]
    interactive: bool,
    /// Allocate a pseudo-TTY.
    #[arg(short, long)]
    tty: bool,
    /// Username or UID (format: <name|uid>[:<group|gid>]).
    #[arg(short, long)]
    user: Option<String>,
    /// Working directory inside the container.
    #[arg(short, long)]
    workdir: Option<String>,
    /// Set environment variables.
    #[arg(short, long = "env")]
    env: Vec<String>,
    /// Read in a file of environment variables.
    #[arg(long = "env-file")]
    env_file: Vec<std::path::PathBuf>,
    /// Give extended privileges to the command.
    #[arg(long)]
    privileged: bool,
    /// The container.
    container: String,
    /// Command and arguments.
    #[arg(required = true, allow_hyphen_values = true)]
    command: Vec<String>,
}

fn failed(e: impl std::fmt::Display) -> anyhow::Error {
    RunFailed(e.to_string()).into()
}

/// Runs `berth exec`; the exit code is the command's.
pub fn exec(root: &Path, a: ExecArgs) -> Result<ExitCode> {
    if a.tty && !a.detach && !std::io::stdin().is_terminal() {
        return Err(failed("the input device is not a TTY"));
    }
    let engine = Engine::open(root).map_err(failed)?;
    let env = crate::run_cmd::environment(&a.env_file, &a.env)?;
    let console_size = crate::run_cmd::terminal_size(a.tty);
    let rec = ExecRecord {
        cmd: a.command.clone(),
        env,
        user: a.user.clone().unwrap_or_default(),
        working_dir: a.workdir.clone().unwrap_or_default(),
        tty: a.tty,
        attach_stdin: a.interactive && !a.detach,
        attach_stdout: !a.detach,
        attach_stderr: !a.detach,
        detach_keys: a.detach_keys.clone().unwrap_or_default(),
        console_size,
        privileged: a.privileged,
        ..Default::default()
    };
    let eid = engine.exec_create(&a.container, rec).map_err(failed)?;
    let mut attach = None;
    let started = engine.exec_start(&eid, || {
        if !a.detach {
            attach = engine.exec_attach(&eid, a.interactive, true, true);
        }
        Ok(())
    });
    if let Err(e) = started {
        // what dockerd answers too: the exec's record holds 126
        let code = engine
            .exec_inspect(&eid)
            .ok()
            .and_then(|r| r.exit_code)
            .unwrap_or(berth_engine::exec::START_FAILURE_CODE);
        eprintln!("berth: {e}");
        return Ok(ExitCode::from(code.clamp(1, 255) as u8));
    }
    if a.detach {
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(s) = attach {
        let keys = crate::run_cmd::detach_keys(a.detach_keys.as_deref())?;
        if relay(&engine, &a.container, s, a.tty, a.interactive, false, keys)? {
            // detached: the process runs on
            return Ok(ExitCode::SUCCESS);
        }
    }
    let code = engine
        .exec_inspect(&eid)
        .ok()
        .and_then(|r| r.exit_code)
        .unwrap_or(126);
    Ok(ExitCode::from(code.clamp(0, 255) as u8))
}
