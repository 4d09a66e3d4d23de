//! `berth oci` (and the `berth-runc` name): runc's command line over
//! berth's runtime library, flags and output as runc has them, so podman
//! (`--runtime`), conmon and the OCI runtime-tools suite can drive it.

use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use berth_runtime::state::Status;
use berth_runtime::{CreateOptions, ExecOptions, Runtime};
use clap::{Parser, Subcommand};

use crate::logging;

const SPEC_VERSION: &str = "1.2.0";

#[derive(Parser, Debug)]
#[command(
    name = "berth-runc",
    disable_version_flag = true,
    about = "berth's OCI runtime (runc-compatible)"
)]
struct OciCli {
    /// Directory for container state.
    #[arg(long, value_name = "DIR")]
    root: Option<PathBuf>,
    /// Log file (default: none; errors also go to stderr).
    #[arg(long, value_name = "FILE")]
    log: Option<PathBuf>,
    /// Log format: text or json.
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    log_format: String,
    /// Debug logging (and phase timings on stderr).
    #[arg(long)]
    debug: bool,
    /// Use systemd to manage cgroups (refused: berth uses cgroupfs).
    #[arg(long)]
    systemd_cgroup: bool,
    /// Path to criu (checkpoint/restore is not supported).
    #[arg(long, value_name = "PATH")]
    criu: Option<String>,
    /// Rootless mode: true, false or auto.
    #[arg(long, value_name = "MODE")]
    rootless: Option<String>,
    /// Print the version.
    #[arg(short = 'v', long)]
    version: bool,
    #[command(subcommand)]
    cmd: Option<Cmd>,
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// Bundle directory (holds config.json).
    #[arg(short = 'b', long, default_value = ".")]
    bundle: PathBuf,
    /// Unix socket to receive the terminal's master fd.
    #[arg(long, value_name = "PATH")]
    console_socket: Option<PathBuf>,
    /// File to write the init's pid to.
    #[arg(long, value_name = "PATH")]
    pid_file: Option<PathBuf>,
    /// Do not use pivot_root (MS_MOVE + chroot instead).
    #[arg(long)]
    no_pivot: bool,
    /// Do not create a new session keyring.
    #[arg(long)]
    no_new_keyring: bool,
    /// Pass this many extra fds (from 3) to the container.
    #[arg(long, default_value_t = 0)]
    preserve_fds: u32,
    /// Container id.
    id: String,
}

#[derive(Subcommand, Debug)]
#[allow(clippy::large_enum_variant)] // parsed once per process
enum Cmd {
    /// Create a container (its process waits for `start`).
    Create(CreateArgs),
    /// Create and start a container, and wait for it unless detached.
    Run {
        #[command(flatten)]
        create: CreateArgs,
        /// Return once started.
        #[arg(short = 'd', long)]
        detach: bool,
        /// Keep the container's state after it exits.
        #[arg(long)]
        keep: bool,
        /// Accepted for compatibility.
        #[arg(long)]
        no_subreaper: bool,
    },
    /// Start a created container.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// Send a signal (default SIGTERM).
    Kill {
        /// Signal every process of the container.
        #[arg(short = 'a', long)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Delete containers.
    Delete {
        /// Kill a running container first.
        #[arg(short = 'f', long)]
        force: bool,
        #[arg(required = true)]
        ids: Vec<String>,
    },
    /// List containers.
    List {
        /// table or json.
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        /// Only ids.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Show a container's processes.
    Ps {
        /// table or json.
        #[arg(short = 'f', long, default_value = "table")]
        format: String,
        id: String,
        /// Options for ps(1) (default -ef).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// Run a process in a container.
    Exec {
        /// Unix socket to receive the terminal's master fd.
        #[arg(long, value_name = "PATH")]
        console_socket: Option<PathBuf>,
        /// Working directory.
        #[arg(long)]
        cwd: Option<PathBuf>,
        /// Environment variable (KEY=value), repeatable.
        #[arg(short = 'e', long = "env")]
        env: Vec<String>,
        /// Allocate a terminal.
        #[arg(short = 't', long)]
        tty: bool,
        /// uid[:gid].
        #[arg(short = 'u', long)]
        user: Option<String>,
        /// Supplementary group, repeatable.
        #[arg(short = 'g', long = "additional-gids")]
        additional_gids: Vec<u32>,
        /// process.json to run.
        #[arg(short = 'p', long)]
        process: Option<PathBuf>,
        /// Do not wait for the process.
        #[arg(short = 'd', long)]
        detach: bool,
        /// File to write the process's pid to.
        #[arg(long, value_name = "PATH")]
        pid_file: Option<PathBuf>,
        /// Capability to add, repeatable.
        #[arg(short = 'c', long = "cap")]
        cap: Vec<String>,
        /// Set no_new_privs.
        #[arg(long)]
        no_new_privs: bool,
        /// Pass this many extra fds (from 3).
        #[arg(long, default_value_t = 0)]
        preserve_fds: u32,
        /// Allow exec into a paused container.
        #[arg(long)]
        ignore_paused: bool,
        /// AppArmor profile (not available on this host).
        #[arg(long)]
        apparmor: Option<String>,
        /// SELinux label (not available on this host).
        #[arg(long)]
        process_label: Option<String>,
        /// Sub-cgroup to join.
        #[arg(long)]
        cgroup: Vec<String>,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        command: Vec<String>,
    },
    /// Write a default config.json.
    Spec {
        /// Where to write it.
        #[arg(short = 'b', long)]
        bundle: Option<PathBuf>,
        /// A spec for rootless containers.
        #[arg(long)]
        rootless: bool,
    },
    /// Freeze a container.
    Pause { id: String },
    /// Thaw a container.
    Resume { id: String },
    /// Print events (resource statistics).
    Events {
        /// Print statistics once and exit.
        #[arg(long)]
        stats: bool,
        /// Interval between statistics.
        #[arg(long, default_value = "5s")]
        interval: String,
        id: String,
    },
    /// Print what this runtime supports, as JSON.
    Features,
    /// Update a container's resources (not supported yet).
    Update {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Checkpoint a container (not supported).
    Checkpoint {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Restore a container (not supported).
    Restore {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

/// runc's flags are Go flags: `-bundle` means `--bundle`. Rewrites
/// single-dash long flags up to the first positional argument after the
/// subcommand.
fn normalize(args: Vec<OsString>) -> Vec<OsString> {
    const LONG: &[&str] = &[
        "root",
        "log",
        "log-format",
        "debug",
        "systemd-cgroup",
        "criu",
        "rootless",
        "version",
        "bundle",
        "console-socket",
        "pid-file",
        "no-pivot",
        "no-new-keyring",
        "preserve-fds",
        "detach",
        "keep",
        "no-subreaper",
        "all",
        "force",
        "format",
        "quiet",
        "cwd",
        "env",
        "tty",
        "user",
        "additional-gids",
        "process",
        "cap",
        "no-new-privs",
        "ignore-paused",
        "apparmor",
        "process-label",
        "cgroup",
        "stats",
        "interval",
        "help",
    ];
    let mut out = Vec::with_capacity(args.len());
    let mut seen_cmd = false;
    let mut done = false;
    let mut expect_value = false;
    for a in args {
        let s = a.to_string_lossy().into_owned();
        if done {
            out.push(a);
            continue;
        }
        if s == "--" {
            done = true;
            out.push(a);
            continue;
        }
        if let Some(rest) = s
            .strip_prefix('-')
            .filter(|r| !r.starts_with('-') && r.len() > 1)
        {
            let name = rest.split('=').next().unwrap_or(rest);
            if LONG.contains(&name) {
                expect_value = !rest.contains('=') && takes_value(name);
                out.push(OsString::from(format!("-{s}")));
                continue;
            }
        }
        if let Some(long) = s.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or("");
            expect_value = !s.contains('=') && takes_value(name);
            out.push(a);
            continue;
        }
        if s.starts_with('-') {
            out.push(a);
            continue;
        }
        if expect_value {
            expect_value = false;
            out.push(a);
            continue;
        }
        if seen_cmd {
            done = true;
        }
        seen_cmd = true;
        out.push(a);
    }
    out
}

fn takes_value(name: &str) -> bool {
    matches!(
        name,
        "root"
            | "log"
            | "log-format"
            | "criu"
            | "rootless"
            | "bundle"
            | "console-socket"
            | "pid-file"
            | "preserve-fds"
            | "format"
            | "cwd"
            | "env"
            | "user"
            | "additional-gids"
            | "process"
            | "cap"
            | "apparmor"
            | "process-label"
            | "cgroup"
            | "interval"
    )
}

/// Entry point; `default_root` is berth's global root (the OCI state goes
/// to `<root>/oci` unless `--root` names another directory).
pub fn main(prog: &str, global_root: Option<PathBuf>, args: Vec<OsString>) -> ExitCode {
    let mut full = vec![OsString::from(prog)];
    full.extend(normalize(args));
    let cli = match OciCli::try_parse_from(full) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 1 } else { 0 });
        }
    };
    let format = if cli.log_format == "json" {
        logging::Format::Json
    } else {
        logging::Format::Text
    };
    if cli.log_format != "json" && cli.log_format != "text" {
        eprintln!(
            "error: --log-format must be text or json, not {:?}",
            cli.log_format
        );
        return ExitCode::from(1);
    }
    if let Err(e) = logging::init(cli.log.as_deref(), format, cli.debug) {
        eprintln!("error: open log file: {e}");
        return ExitCode::from(1);
    }
    if cli.version {
        println!(
            "berth-runc version {}\nspec: {SPEC_VERSION}",
            env!("CARGO_PKG_VERSION")
        );
        return ExitCode::SUCCESS;
    }
    let Some(cmd) = cli.cmd else {
        let _ = <OciCli as clap::CommandFactory>::command().print_help();
        return ExitCode::from(1);
    };
    let state_dir = cli.root.clone().unwrap_or_else(|| {
        global_root
            .unwrap_or_else(|| PathBuf::from(crate::DEFAULT_ROOT))
            .join("oci")
    });
    let debug = cli.debug;
    let result = if cli.systemd_cgroup {
        Err(berth_runtime::Error::Unsupported(
            "the systemd cgroup driver (--systemd-cgroup): berth manages cgroups through cgroupfs"
                .into(),
        ))
    } else {
        run(cmd, &state_dir, debug)
    };
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("berth-runc: {e}");
            ExitCode::from(1)
        }
    }
}

fn create_options(a: CreateArgs) -> CreateOptions {
    CreateOptions {
        id: a.id,
        bundle: a.bundle,
        pid_file: a.pid_file,
        console_socket: a.console_socket,
        no_pivot: a.no_pivot,
        no_new_keyring: a.no_new_keyring,
        preserve_fds: a.preserve_fds,
        rootfs_mounts: Vec::new(),
        kill_with_parent: false,
    }
}

fn print_phases(rt: &Runtime) {
    let phases = rt.phases();
    let Some(first) = phases.first().map(|p| p.1) else {
        return;
    };
    let mut prev = first;
    let mut line = String::from("phases:");
    for (name, t) in &phases {
        line.push_str(&format!(" {name}=+{:.2}ms", (t - prev) as f64 / 1e6));
        prev = *t;
    }
    line.push_str(&format!(" total={:.2}ms", (prev - first) as f64 / 1e6));
    tracing::debug!("{line}");
}

fn run(cmd: Cmd, state_dir: &Path, debug: bool) -> berth_runtime::Result<i32> {
    use berth_runtime::Error;
    if let Cmd::Spec { bundle, rootless } = &cmd {
        let dir = bundle.clone().unwrap_or_else(|| PathBuf::from("."));
        let path = dir.join("config.json");
        if path.exists() {
            return Err(Error::Invalid(format!(
                "{} exists: remove it first",
                path.display()
            )));
        }
        std::fs::write(&path, berth_runtime::spec::default_spec_json(*rootless)).map_err(|e| {
            Error::Io {
                context: format!("write {}", path.display()),
                source: e,
            }
        })?;
        return Ok(0);
    }
    if let Cmd::Features = &cmd {
        println!(
            "{}",
            serde_json::to_string_pretty(&features()).expect("json")
        );
        return Ok(0);
    }
    let rt = Runtime::new(state_dir)?;
    let code = match cmd {
        Cmd::Create(a) => rt.create(&create_options(a)).map(|()| 0),
        Cmd::Run {
            create,
            detach,
            keep,
            ..
        } => {
            let id = create.id.clone();
            let r = rt.run(&create_options(create), detach);
            if keep && r.is_ok() && !detach {
                tracing::debug!("--keep: {id} was deleted on exit anyway");
            }
            r
        }
        Cmd::Start { id } => rt.start(&id).map(|()| 0),
        Cmd::State { id } => {
            let c = rt.get(&id)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&c.state.oci_state(c.status)).expect("json")
            );
            Ok(0)
        }
        Cmd::Kill { all, id, signal } => {
            let sig = parse_signal(signal.as_deref().unwrap_or("SIGTERM"))?;
            rt.kill(&id, sig, all).map(|()| 0)
        }
        Cmd::Delete { force, ids } => {
            let mut first_err = None;
            for id in &ids {
                if let Err(e) = rt.delete(id, force) {
                    if ids.len() == 1 {
                        return Err(e);
                    }
                    eprintln!("berth-runc: {e}");
                    first_err.get_or_insert(e);
                }
            }
            first_err.map_or(Ok(0), Err)
        }
        Cmd::List { format, quiet } => list(&rt, &format, quiet).map(|()| 0),
        Cmd::Ps {
            format,
            id,
            ps_args,
        } => ps(&rt, &id, &format, &ps_args).map(|()| 0),
        Cmd::Exec {
            console_socket,
            cwd,
            env,
            tty,
            user,
            additional_gids,
            process,
            detach,
            pid_file,
            cap,
            no_new_privs,
            preserve_fds,
            ignore_paused,
            apparmor,
            process_label,
            cgroup,
            id,
            command,
        } => {
            if apparmor.is_some() {
                return Err(Error::Unsupported(
                    "--apparmor: AppArmor is not enabled on this host".into(),
                ));
            }
            if !cgroup.is_empty() {
                return Err(Error::Unsupported("exec --cgroup (sub-cgroups)".into()));
            }
            let _ = process_label;
            let user = match user {
                None => None,
                Some(u) => Some(parse_user(&u)?),
            };
            let o = ExecOptions {
                process,
                args: command,
                cwd,
                env,
                tty,
                user,
                additional_gids,
                caps: cap,
                no_new_privs,
                detach,
                pid_file,
                console_socket,
                preserve_fds,
                ignore_paused,
            };
            rt.exec(&id, &o)
        }
        Cmd::Pause { id } => rt.pause(&id).map(|()| 0),
        Cmd::Resume { id } => rt.resume(&id).map(|()| 0),
        Cmd::Events {
            stats,
            interval,
            id,
        } => events(&rt, &id, stats, &interval).map(|()| 0),
        Cmd::Update { .. } => Err(Error::Unsupported(
            "update (change a container's resources)".into(),
        )),
        Cmd::Checkpoint { .. } | Cmd::Restore { .. } => {
            Err(Error::Unsupported("checkpoint/restore (CRIU)".into()))
        }
        Cmd::Spec { .. } | Cmd::Features => unreachable!("handled above"),
    };
    if debug {
        print_phases(&rt);
    }
    code
}

fn parse_signal(s: &str) -> berth_runtime::Result<i32> {
    s.parse::<berth_types::Signal>()
        .map(berth_types::Signal::number)
        .map_err(|_| berth_runtime::Error::Invalid(format!("unknown signal {s:?}")))
}

fn parse_user(u: &str) -> berth_runtime::Result<(u32, Option<u32>)> {
    let bad =
        || berth_runtime::Error::Invalid(format!("--user {u:?}: expected uid[:gid] (numbers)"));
    match u.split_once(':') {
        Some((a, b)) => Ok((
            a.parse().map_err(|_| bad())?,
            Some(b.parse().map_err(|_| bad())?),
        )),
        None => Ok((u.parse().map_err(|_| bad())?, None)),
    }
}

fn list(rt: &Runtime, format: &str, quiet: bool) -> berth_runtime::Result<()> {
    let all = rt.list()?;
    let mut out = std::io::stdout().lock();
    if quiet {
        for c in &all {
            let _ = writeln!(out, "{}", c.state.id);
        }
        return Ok(());
    }
    match format {
        "json" => {
            let v: Vec<_> = all.iter().map(|c| c.state.oci_state(c.status)).collect();
            let _ = writeln!(out, "{}", serde_json::to_string(&v).expect("json"));
        }
        "table" => {
            let mut rows = vec![
                ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
                    .map(String::from)
                    .to_vec(),
            ];
            for c in &all {
                let pid = if c.status == Status::Stopped {
                    0
                } else {
                    c.state.pid
                };
                rows.push(vec![
                    c.state.id.clone(),
                    pid.to_string(),
                    c.status.as_str().to_owned(),
                    c.state.bundle.display().to_string(),
                    c.state.created.clone(),
                    if c.state.owner.is_empty() {
                        "root".into()
                    } else {
                        c.state.owner.clone()
                    },
                ]);
            }
            let widths: Vec<usize> = (0..6)
                .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0).max(9) + 3)
                .collect();
            for r in rows {
                let mut line = String::new();
                for (i, cell) in r.iter().enumerate() {
                    if i == 5 {
                        line.push_str(cell);
                    } else {
                        line.push_str(&format!("{cell:<w$}", w = widths[i]));
                    }
                }
                let _ = writeln!(out, "{line}");
            }
        }
        other => {
            return Err(berth_runtime::Error::Invalid(format!(
                "invalid --format {other:?} (table or json)"
            )));
        }
    }
    Ok(())
}

fn ps(rt: &Runtime, id: &str, format: &str, args: &[String]) -> berth_runtime::Result<()> {
    let pids = rt.pids(id)?;
    match format {
        "json" => {
            println!("{}", serde_json::to_string(&pids).expect("json"));
            Ok(())
        }
        "table" => {
            let args: Vec<String> = if args.is_empty() {
                vec!["-ef".into()]
            } else {
                args.to_vec()
            };
            let out = std::process::Command::new("ps")
                .args(&args)
                .output()
                .map_err(|e| berth_runtime::Error::Io {
                    context: "run ps".into(),
                    source: e,
                })?;
            if !out.status.success() {
                return Err(berth_runtime::Error::Invalid(format!(
                    "ps {}: {}",
                    args.join(" "),
                    String::from_utf8_lossy(&out.stderr).trim()
                )));
            }
            let text = String::from_utf8_lossy(&out.stdout);
            let mut lines = text.lines();
            let header = lines.next().unwrap_or("");
            let col = header
                .split_whitespace()
                .position(|h| h == "PID")
                .ok_or_else(|| {
                    berth_runtime::Error::Invalid("ps output has no PID column".into())
                })?;
            println!("{header}");
            for l in lines {
                if let Some(p) = l
                    .split_whitespace()
                    .nth(col)
                    .and_then(|p| p.parse::<i32>().ok())
                    && pids.contains(&p)
                {
                    println!("{l}");
                }
            }
            Ok(())
        }
        other => Err(berth_runtime::Error::Invalid(format!(
            "invalid --format {other:?} (table or json)"
        ))),
    }
}

/// A runc `--interval` (a Go duration: `5s`, `100ms`, `1m30s`), which must be positive.
fn parse_interval(s: &str) -> Option<Duration> {
    let ns = berth_docker_api::syntax::parse_duration(s).ok()?;
    (ns > 0).then(|| Duration::from_nanos(ns as u64))
}

fn events(rt: &Runtime, id: &str, once: bool, interval: &str) -> berth_runtime::Result<()> {
    let every = parse_interval(interval)
        .ok_or_else(|| berth_runtime::Error::Invalid(format!("invalid --interval {interval:?}")))?;
    loop {
        let stats = rt.stats(id)?;
        let ev = serde_json::json!({"type": "stats", "id": id, "data": stats});
        println!("{ev}");
        if once {
            return Ok(());
        }
        std::thread::sleep(every);
        if rt
            .get(id)
            .map(|c| c.status == Status::Stopped)
            .unwrap_or(true)
        {
            return Ok(());
        }
    }
}

fn features() -> serde_json::Value {
    serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": SPEC_VERSION,
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async", "atime", "bind", "defaults", "dev", "diratime", "dirsync", "exec",
            "iversion", "lazytime", "loud", "mand", "noatime", "nodev", "nodiratime", "noexec",
            "noiversion", "nolazytime", "nomand", "norelatime", "nostrictatime", "nosuid",
            "nosymfollow", "private", "ratime", "rbind", "rdev", "rdiratime", "relatime", "remount",
            "rexec", "rnoatime", "rnodev", "rnodiratime", "rnoexec", "rnorelatime", "rnostrictatime",
            "rnosuid", "rnosymfollow", "ro", "rprivate", "rrelatime", "rro", "rrw", "rshared",
            "rslave", "rstrictatime", "rsuid", "rsymfollow", "runbindable", "rw", "shared", "silent",
            "slave", "strictatime", "suid", "symfollow", "sync", "tmpcopyup", "unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": (0..=40).map(berth_runtime::caps::name_of).collect::<Vec<_>>(),
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS",
                    "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT",
                    "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86",
                    "SCMP_ARCH_X86_64"],
                "supportedFlags": ["SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
                    "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        },
        "annotations": {"org.opencontainers.runtime-spec.features.version": SPEC_VERSION}
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(v: &[&str]) -> Vec<String> {
        normalize(v.iter().map(OsString::from).collect())
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect()
    }

    #[test]
    fn go_style_flags_are_rewritten_until_the_first_positional() {
        assert_eq!(
            n(&[
                "-root",
                "/r",
                "create",
                "-bundle",
                "/b",
                "-pid-file=/p",
                "id"
            ]),
            [
                "--root",
                "/r",
                "create",
                "--bundle",
                "/b",
                "--pid-file=/p",
                "id"
            ]
        );
        assert_eq!(
            n(&["exec", "-t", "id", "ls", "-format"]),
            ["exec", "-t", "id", "ls", "-format"]
        );
        assert_eq!(n(&["kill", "id", "KILL"]), ["kill", "id", "KILL"]);
    }

    #[test]
    fn signals() {
        assert_eq!(parse_signal("KILL").unwrap(), 9);
        assert_eq!(parse_signal("SIGTERM").unwrap(), 15);
        assert_eq!(parse_signal("usr1").unwrap(), 10);
        assert_eq!(parse_signal("9").unwrap(), 9);
        assert_eq!(parse_signal("RTMIN+2").unwrap(), 36);
        assert!(parse_signal("NOPE").is_err());
        assert!(parse_signal("0").is_err());
        assert!(parse_signal("65").is_err());
    }

    #[test]
    fn users_and_durations() {
        assert_eq!(parse_user("1000").unwrap(), (1000, None));
        assert_eq!(parse_user("1000:100").unwrap(), (1000, Some(100)));
        assert!(parse_user("bob").is_err());
        assert_eq!(parse_interval("5s"), Some(Duration::from_secs(5)));
        assert_eq!(parse_interval("100ms"), Some(Duration::from_millis(100)));
        assert_eq!(parse_interval("1m30s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_interval("x"), None);
        assert_eq!(parse_interval("0s"), None);
    }
}
