//! The `berth` binary: one entry point for every role berth plays.
//!
//! Dispatch: when invoked as `berth-runc` (a symlink), the arguments are
//! those of runc and go straight to `berth oci`.
#![forbid(unsafe_code)]
#![deny(clippy::string_slice)]

mod agent_cmd;
mod build_cmd;
mod containers_cmd;
mod cp_cmd;
mod daemon_cmd;
mod events_cmd;
mod exec_cmd;
mod format;
mod images_cmd;
mod kube_dns;
mod logging;
mod network_cmd;
mod oci;
mod pod_cmd;
mod pull_cmd;
mod registry_cmd;
mod run_cmd;
mod server_cmd;
mod stats_cmd;
mod system_cmd;
mod volume_cmd;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
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

    /// Log at debug level (to stderr).
    #[arg(short = 'D', long, global = true)]
    debug: bool,

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
    /// Run a command in a new container from an image.
    Run(run_cmd::RunArgs),
    /// Create a new container (without starting it).
    Create(run_cmd::RunArgs),
    /// Copy files/folders between a container and the local filesystem.
    Cp(cp_cmd::CpArgs),
    /// Create a new image from a container's changes.
    Commit(cp_cmd::CommitArgs),
    /// Build an image from a Dockerfile.
    Build(build_cmd::BuildArgs),
    /// Update configuration of one or more containers.
    Update(cp_cmd::UpdateArgs),
    /// Inspect changes to files or directories on a container's filesystem.
    Diff {
        /// Container.
        container: String,
    },
    /// Export a container's filesystem as a tar archive.
    Export {
        /// Write to a file, instead of STDOUT.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// Container.
        container: String,
    },
    /// Get real time events from the engine.
    Events(events_cmd::EventsArgs),
    /// Execute a command in a running container.
    Exec(exec_cmd::ExecArgs),
    /// List containers.
    Ps(containers_cmd::PsArgs),
    /// Fetch the logs of a container.
    Logs(containers_cmd::LogsArgs),
    /// Start one or more stopped containers.
    Start(containers_cmd::ManyArgs),
    /// Stop one or more running containers.
    Stop(containers_cmd::ManyArgs),
    /// Restart one or more containers.
    Restart(containers_cmd::ManyArgs),
    /// Kill one or more running containers.
    Kill(containers_cmd::ManyArgs),
    /// Remove one or more containers.
    Rm(containers_cmd::ManyArgs),
    /// Pause all processes within one or more containers.
    Pause(containers_cmd::ManyArgs),
    /// Unpause all processes within one or more containers.
    Unpause(containers_cmd::ManyArgs),
    /// Block until one or more containers stop, then print their exit codes.
    Wait(containers_cmd::ManyArgs),
    /// Return low-level information on containers or images.
    Inspect(containers_cmd::InspectArgs),
    /// Rename a container.
    Rename {
        /// Container.
        container: String,
        /// New name.
        new_name: String,
    },
    /// Display a live stream of container(s) resource usage statistics.
    Stats(stats_cmd::StatsArgs),
    /// Display the running processes of a container.
    Top {
        /// Container.
        container: String,
    },
    /// The Docker Engine API daemon (for the docker CLI and SDKs).
    Daemon(daemon_cmd::DaemonArgs),
    /// The cluster's control plane: the Kubernetes API server over the cluster store.
    Server(server_cmd::ServerArgs),
    /// A node agent joined to a cluster's API server (`--server URL --token T`).
    Agent(agent_cmd::AgentArgs),
    /// Download an image from a registry.
    Pull(pull_cmd::PullArgs),
    /// Upload an image to a registry.
    Push(pull_cmd::PushArgs),
    /// Manage images.
    #[command(subcommand)]
    Image(ImageCommand),
    /// The OCI distribution registry.
    #[command(subcommand)]
    Registry(registry_cmd::RegistryCommand),
    /// List images.
    Images(images_cmd::ImagesArgs),
    /// Remove one or more images.
    Rmi(RmiArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Load images from a tar archive (docker-archive or oci-archive) or STDIN.
    Load(LoadArgs),
    /// Save images to a tar archive (streamed to STDOUT by default).
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Manage volumes.
    #[command(subcommand)]
    Volume(volume_cmd::VolumeCommand),
    /// Manage networks.
    #[command(subcommand)]
    Network(network_cmd::NetworkCommand),
    /// Manage berth (disk usage, prune).
    #[command(subcommand)]
    System(system_cmd::SystemCommand),
    /// Manage containers (prune).
    #[command(subcommand)]
    Container(system_cmd::ContainerCommand),
    /// Manage pods: sandboxes whose containers share a network namespace,
    /// IPC, host name and a cgroup parent.
    #[command(subcommand)]
    Pod(pod_cmd::PodCommand),
    /// List port mappings or a specific mapping for the container.
    Port {
        /// Container.
        container: String,
        /// PRIVATE_PORT[/PROTO].
        private_port: Option<String>,
    },
}

#[derive(Subcommand, Debug)]
enum ImageCommand {
    /// List images.
    #[command(visible_alias = "list")]
    Ls(images_cmd::ImagesArgs),
    /// Display detailed information on one or more images.
    Inspect(InspectArgs),
    /// Show the history of an image.
    History(HistoryArgs),
    /// Remove one or more images.
    #[command(visible_alias = "remove")]
    Rm(RmiArgs),
    /// Remove unused images.
    Prune(PruneArgs),
    /// Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE.
    Tag(TagArgs),
    /// Load images from a tar archive or STDIN.
    Load(LoadArgs),
    /// Save images to a tar archive.
    Save(SaveArgs),
    /// Import the contents from a tarball to create a filesystem image.
    Import(ImportArgs),
    /// Download an image from a registry.
    Pull(pull_cmd::PullArgs),
    /// Upload an image to a registry.
    Push(pull_cmd::PushArgs),
    /// Build an image from a Dockerfile.
    Build(Box<build_cmd::BuildArgs>),
}

#[derive(clap::Args, Debug)]
struct InspectArgs {
    /// Format the output using the given Go template.
    #[arg(short, long)]
    format: Option<String>,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct RmiArgs {
    /// Force removal of the image.
    #[arg(short, long)]
    force: bool,
    /// Do not delete untagged parents.
    #[arg(long)]
    no_prune: bool,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct TagArgs {
    /// SOURCE_IMAGE[:TAG]
    source: String,
    /// TARGET_IMAGE[:TAG]
    target: String,
}

#[derive(clap::Args, Debug)]
struct HistoryArgs {
    /// Print sizes and dates in human readable format.
    #[arg(short = 'H', long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    human: bool,
    /// Don't truncate output.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short, long)]
    quiet: bool,
    /// Image.
    image: String,
}

#[derive(clap::Args, Debug)]
struct PruneArgs {
    /// Remove all unused images, not just dangling ones.
    #[arg(short, long)]
    all: bool,
    /// Do not prompt for confirmation.
    #[arg(short, long)]
    force: bool,
    /// Filters (`until=24h`, `label=k=v`, `label!=k`).
    #[arg(long = "filter")]
    filter: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct LoadArgs {
    /// Read from a tar archive file (or an OCI layout directory), instead of STDIN.
    #[arg(short, long)]
    input: Option<PathBuf>,
    /// Suppress the load output.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(clap::Args, Debug)]
struct SaveArgs {
    /// Write to a file, instead of STDOUT.
    #[arg(short, long)]
    output: Option<PathBuf>,
    /// Archive format: docker-archive or oci-archive.
    #[arg(long, default_value = "docker-archive")]
    format: String,
    /// Images.
    #[arg(required = true)]
    images: Vec<String>,
}

#[derive(clap::Args, Debug)]
struct ImportArgs {
    /// Apply Dockerfile instruction to the created image.
    #[arg(short, long)]
    change: Vec<String>,
    /// Set commit message for imported image.
    #[arg(short, long)]
    message: Option<String>,
    /// Set platform if server is multi-platform capable.
    #[arg(long)]
    platform: Option<String>,
    /// File, or `-` for STDIN.
    file: String,
    /// REPOSITORY[:TAG]
    reference: Option<String>,
}

fn init_logging(debug: bool) {
    let filter = if debug {
        tracing_subscriber::EnvFilter::new("debug")
    } else {
        tracing_subscriber::EnvFilter::try_from_env("BERTH_LOG")
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"))
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .try_init();
}

fn image_command(root: &std::path::Path, cmd: ImageCommand) -> Result<()> {
    use images_cmd as ic;
    let engine = berth_engine::Engine::open(root)?;
    match cmd {
        ImageCommand::Ls(a) => ic::images(&engine, &a),
        ImageCommand::Inspect(a) => ic::inspect(engine.images(), &a.images, a.format.as_deref()),
        ImageCommand::History(a) => ic::history(&engine, &a.image, a.no_trunc, a.quiet, a.human),
        ImageCommand::Rm(a) => ic::rmi(&engine, &a.images, a.force, a.no_prune),
        ImageCommand::Prune(a) => {
            let _ = a.force;
            ic::prune(&engine, a.all, &a.filter)
        }
        ImageCommand::Tag(a) => {
            let target = berth_types::Reference::parse(&a.target)?;
            Ok(engine.tag_image(&a.source, &target)?)
        }
        ImageCommand::Load(a) => ic::load(&engine, a.input.as_deref(), a.quiet),
        ImageCommand::Save(a) => ic::save(&engine, &a.images, a.output.as_deref(), &a.format),
        ImageCommand::Import(a) => {
            if let Some(p) = &a.platform
                && !berth_types::image::Platform::parse(p)
                    .ok_or_else(|| anyhow::anyhow!("invalid platform {p:?} (os/arch[/variant])"))?
                    .matches(&berth_types::image::Platform::host())
            {
                anyhow::bail!(
                    "not supported yet: importing for platform {p} (this host is {})",
                    berth_types::image::Platform::host().display()
                );
            }
            ic::import(
                &engine,
                &a.file,
                a.reference.as_deref(),
                &a.change,
                a.message.as_deref(),
            )
        }
        ImageCommand::Pull(a) => pull_cmd::pull(&engine, &a),
        ImageCommand::Push(a) => pull_cmd::push(&engine, &a),
        ImageCommand::Build(a) => build_cmd::build(root, &a).map(|_| ()),
    }
}

fn dispatch(cli: Cli) -> Result<ExitCode> {
    let root = cli
        .root
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let ok = |r: Result<()>| r.map(|()| ExitCode::SUCCESS);
    match cli.command {
        Command::Oci { args } => Ok(oci::main("berth oci", cli.root, args)),
        Command::Run(a) => run_cmd::run(&root, a),
        Command::Create(a) => run_cmd::create(&root, a),
        Command::Exec(a) => exec_cmd::exec(&root, a),
        Command::Cp(a) => cp_cmd::cp(&root, &a),
        Command::Commit(a) => cp_cmd::commit(&root, &a),
        Command::Build(a) => build_cmd::build(&root, &a),
        Command::Update(a) => cp_cmd::update(&root, &a),
        Command::Diff { container } => cp_cmd::diff(&root, &container),
        Command::Export { output, container } => {
            cp_cmd::export(&root, output.as_deref(), &container)
        }
        Command::Events(a) => ok(events_cmd::events(&root, &a)),
        Command::Ps(a) => ok(containers_cmd::ps(&root, &a)),
        Command::Logs(a) => ok(containers_cmd::logs(&root, &a)),
        Command::Start(a) => containers_cmd::start(&root, &a),
        Command::Stop(a) => containers_cmd::stop(&root, &a),
        Command::Restart(a) => containers_cmd::restart(&root, &a),
        Command::Kill(a) => containers_cmd::kill(&root, &a),
        Command::Rm(a) => containers_cmd::rm(&root, &a),
        Command::Pause(a) => containers_cmd::pause(&root, &a, true),
        Command::Unpause(a) => containers_cmd::pause(&root, &a, false),
        Command::Wait(a) => containers_cmd::wait(&root, &a),
        Command::Inspect(a) => containers_cmd::inspect(&root, &a),
        Command::Rename {
            container,
            new_name,
        } => ok(containers_cmd::rename(&root, &container, &new_name)),
        Command::Stats(a) => stats_cmd::stats(&root, &a),
        Command::Top { container } => ok(containers_cmd::top(&root, &container)),
        Command::Daemon(a) => ok(daemon_cmd::run(&root, &a)),
        Command::Server(a) => ok(server_cmd::run(&root, &a)),
        Command::Agent(a) => ok(agent_cmd::run(&root, &a)),
        Command::Image(ImageCommand::Build(a)) => build_cmd::build(&root, &a),
        Command::Image(c) => ok(image_command(&root, c)),
        Command::Registry(c) => ok(registry_cmd::run(&root, c)),
        Command::Images(a) => ok(image_command(&root, ImageCommand::Ls(a))),
        Command::Rmi(a) => ok(image_command(&root, ImageCommand::Rm(a))),
        Command::Tag(a) => ok(image_command(&root, ImageCommand::Tag(a))),
        Command::History(a) => ok(image_command(&root, ImageCommand::History(a))),
        Command::Load(a) => ok(image_command(&root, ImageCommand::Load(a))),
        Command::Save(a) => ok(image_command(&root, ImageCommand::Save(a))),
        Command::Import(a) => ok(image_command(&root, ImageCommand::Import(a))),
        Command::Pull(a) => ok(image_command(&root, ImageCommand::Pull(a))),
        Command::Push(a) => ok(image_command(&root, ImageCommand::Push(a))),
        Command::Volume(c) => volume_cmd::run(&root, c),
        Command::Network(c) => network_cmd::run(&root, c),
        Command::System(c) => system_cmd::run(&root, c),
        Command::Container(c) => system_cmd::container(&root, c),
        Command::Pod(c) => pod_cmd::run(&root, c),
        Command::Port {
            container,
            private_port,
        } => network_cmd::port(&root, &container, private_port.as_deref()),
    }
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
    // A container's monitor (started by the engine): nothing else first.
    if args.get(1).is_some_and(|a| a == "monitor")
        && (args.len() == 4 || (args.len() == 6 && args[4] == "--exec"))
    {
        let root = PathBuf::from(&args[2]);
        let id = args[3].to_string_lossy().into_owned();
        let exec = args.get(5).map(|a| a.to_string_lossy().into_owned());
        berth_engine::monitor::main(&root, &id, exec.as_deref());
    }
    // The monitor again, handed back by its shim at the container's exit.
    if args.get(1).is_some_and(|a| a == "monitor") && args.get(4).is_some_and(|a| a == "--resume") {
        let root = PathBuf::from(&args[2]);
        let id = args[3].to_string_lossy().into_owned();
        let rest: Vec<String> = args[5..]
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        berth_engine::monitor::resume_main(&root, &id, &rest);
    }
    // The pause process of a pod sandbox sharing one process namespace.
    if let Some((root, id)) = berth_engine::sandbox::pause_request(&args) {
        berth_engine::sandbox::pause_main(&root, &id);
    }
    // One health check of a container (started by its monitor).
    if args.get(1).is_some_and(|a| a == "health-check") && args.len() == 4 {
        let id = args[3].to_string_lossy().into_owned();
        berth_engine::health::check_main(&PathBuf::from(&args[2]), &id);
    }
    // The root's embedded DNS server (started by the engine on demand).
    if args.get(1).is_some_and(|a| a == "dns-server") && args.len() == 3 {
        berth_engine::network::dns_server_main(&PathBuf::from(&args[2]));
    }
    // Fast path: `berth oci ...` skips clap's full parse of the top level.
    if args.get(1).is_some_and(|a| a == "oci") {
        let root = std::env::var_os("BERTH_ROOT").map(PathBuf::from);
        return oci::main("berth oci", root, args.split_off(2));
    }
    let cli = Cli::parse_from(args);
    init_logging(cli.debug);
    match dispatch(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("berth: {e:#}");
            ExitCode::from(exit_status_of(&e))
        }
    }
}

/// Docker's CLI exit statuses: 125 for berth's own errors (as `docker run`
/// does), 1 elsewhere.
fn exit_status_of(e: &anyhow::Error) -> u8 {
    if e.downcast_ref::<run_cmd::RunFailed>().is_some() {
        125
    } else {
        1
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
