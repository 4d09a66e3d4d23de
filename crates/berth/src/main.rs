//! The `berth` binary: one entry point for every role berth plays.
//!
//! Dispatch: when invoked as `berth-runc` (a symlink), the arguments are
//! those of runc and go straight to `berth oci`.
#![forbid(unsafe_code)]

mod logging;
mod oci;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Default state root.
pub const DEFAULT_ROOT: &str = "/var/lib/berth";

#[derive(Parser, Debug)]
#[command(
    name = "berth",
    version,
    about = "berth: an OCI runtime, image store, registry, Docker-compatible engine and \
             Kubernetes-compatible cluster in one binary",
    propagate_version = true
)]
struct Cli {
    /// Directory holding all of berth's state.
    #[arg(long, global = true, env = "BERTH_ROOT", value_name = "DIR")]
    root: Option<PathBuf>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The OCI runtime, with runc's command line (`berth oci --help`).
    #[command(disable_help_flag = true, disable_version_flag = true)]
    Oci {
        /// runc-style arguments.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<OsString>,
    },
}

fn main() -> ExitCode {
    let mut args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if argv0 == "berth-runc" || argv0 == "runc" {
        let root = std::env::var_os("BERTH_ROOT").map(PathBuf::from);
        return oci::main(&argv0, root, args.split_off(1));
    }
    // Fast path: `berth oci ...` skips clap's full parse of the top level.
    if args.get(1).is_some_and(|a| a == "oci") {
        let root = std::env::var_os("BERTH_ROOT").map(PathBuf::from);
        return oci::main("berth oci", root, args.split_off(2));
    }
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Oci { args } => oci::main("berth oci", cli.root, args),
    }
}
