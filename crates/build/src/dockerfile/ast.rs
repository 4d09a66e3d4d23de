//! A parsed Dockerfile. Words are kept as written (after line joining,
//! before variable expansion): Docker expands them at build time, with the
//! environment and build arguments in effect at that step, and only for the
//! instructions and flags that allow it ([`crate::dockerfile::shell`]).

use std::time::Duration;

/// A whole Dockerfile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dockerfile {
    /// Parser directives from the top of the file.
    pub directives: Directives,
    /// `ARG`s before the first `FROM` (usable in `FROM` lines; a stage sees
    /// their values only when it declares them again without a value).
    pub meta_args: Vec<Located<Vec<ArgDecl>>>,
    /// The stages in file order (index 0 first).
    pub stages: Vec<Stage>,
    /// Things Docker warns about but builds anyway (an ignored `# syntax=`,
    /// an empty continuation line, a deprecated `MAINTAINER`, …).
    pub warnings: Vec<String>,
}

/// Parser directives (`# escape=`, `# syntax=`, `# check=`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Directives {
    /// The escape character: `\` (default) or `` ` ``.
    pub escape: char,
    /// `# syntax=` (accepted; berth has one frontend and reports it ignored).
    pub syntax: Option<String>,
    /// `# check=` (accepted, kept).
    pub check: Option<String>,
}

impl Default for Directives {
    fn default() -> Directives {
        Directives {
            escape: '\\',
            syntax: None,
            check: None,
        }
    }
}

/// Something with the place it was written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Located<T> {
    /// 1-based line of the instruction's first line.
    pub line: usize,
    /// 1-based line of its last line (continuations, here-documents).
    pub end_line: usize,
    /// The instruction as written, continuations joined (what Docker's
    /// `Step N/M : …` line shows).
    pub original: String,
    /// What it says.
    pub value: T,
}

/// One `FROM` and the instructions up to the next.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stage {
    /// The `FROM` line.
    pub from: Located<From>,
    /// The instructions after it.
    pub instructions: Vec<Located<Instruction>>,
}

/// `FROM [--platform=P] IMAGE [AS NAME]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct From {
    /// The image (unexpanded: meta args apply).
    pub image: String,
    /// `AS name`, lower-cased as Docker does.
    pub name: Option<String>,
    /// `--platform` (unexpanded).
    pub platform: Option<String>,
}

/// `ARG NAME[=default]` (one `ARG` line may declare several).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArgDecl {
    /// The name.
    pub name: String,
    /// The default (unexpanded), if one is given.
    pub default: Option<String>,
}

/// A command in exec (JSON) or shell form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `["a", "b"]`: run as is.
    Exec(Vec<String>),
    /// `a b`: run by the stage's `SHELL` (continuations joined as Docker
    /// joins them).
    Shell(String),
}

/// A here-document (`<<EOF`, `<<-EOF`, `<<"EOF"`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Heredoc {
    /// The delimiter word, without quotes.
    pub name: String,
    /// The body, each line ending in `\n` (tabs already stripped for `<<-`).
    pub content: String,
    /// Whether variables in the body are expanded (the delimiter was not
    /// quoted).
    pub expand: bool,
}

/// `RUN`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Run {
    /// What to run. With here-documents in shell form, the command line
    /// still holds the `<<EOF` words, as BuildKit keeps them.
    pub command: Command,
    /// Here-documents, in order.
    pub heredocs: Vec<Heredoc>,
    /// `--mount=…` values (unexpanded, unparsed).
    pub mounts: Vec<String>,
    /// `--network=default|none|host`.
    pub network: Option<String>,
    /// `--security=insecure|sandbox`.
    pub security: Option<String>,
}

/// `COPY` and `ADD`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Copy {
    /// Sources (unexpanded; for `ADD` maybe URLs). Here-document sources
    /// appear here as their `<<NAME` word and in `heredocs`.
    pub sources: Vec<String>,
    /// Destination (unexpanded).
    pub dest: String,
    /// Here-documents used as sources.
    pub heredocs: Vec<Heredoc>,
    /// `--from=` (a stage name or index, or an image).
    pub from: Option<String>,
    /// `--chown=`.
    pub chown: Option<String>,
    /// `--chmod=`.
    pub chmod: Option<String>,
    /// `--link`.
    pub link: bool,
    /// `--parents`.
    pub parents: bool,
    /// `--exclude=` (repeatable).
    pub exclude: Vec<String>,
    /// `ADD --checksum=`.
    pub checksum: Option<String>,
    /// `ADD --keep-git-dir`.
    pub keep_git_dir: bool,
}

/// `HEALTHCHECK`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Healthcheck {
    /// `HEALTHCHECK NONE`: the base image's check is switched off.
    None,
    /// `HEALTHCHECK [options] CMD …`.
    Check {
        /// The test (exec form becomes `["CMD", …]`, shell form
        /// `["CMD-SHELL", "…"]` in the image).
        command: Command,
        /// `--interval`.
        interval: Option<Duration>,
        /// `--timeout`.
        timeout: Option<Duration>,
        /// `--start-period`.
        start_period: Option<Duration>,
        /// `--start-interval`.
        start_interval: Option<Duration>,
        /// `--retries`.
        retries: Option<u32>,
    },
}

/// One instruction after `FROM`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Instruction {
    /// `RUN`.
    Run(Run),
    /// `CMD`.
    Cmd(Command),
    /// `ENTRYPOINT`.
    Entrypoint(Command),
    /// `ENV k=v …` or `ENV k v` (values unexpanded, quotes kept).
    Env(Vec<(String, String)>),
    /// `ARG`.
    Arg(Vec<ArgDecl>),
    /// `LABEL k=v …` (keys and values unexpanded, quotes kept).
    Label(Vec<(String, String)>),
    /// `MAINTAINER name` (deprecated, still honoured: the image's author).
    Maintainer(String),
    /// `EXPOSE 80 443/udp …` (unexpanded words).
    Expose(Vec<String>),
    /// `VOLUME ["/a"]` or `VOLUME /a /b` (unexpanded).
    Volume(Vec<String>),
    /// `USER name[:group]` (unexpanded).
    User(String),
    /// `WORKDIR path` (unexpanded).
    Workdir(String),
    /// `SHELL ["exe", "arg"]` (exec form only).
    Shell(Vec<String>),
    /// `STOPSIGNAL sig` (unexpanded).
    StopSignal(String),
    /// `HEALTHCHECK`.
    Healthcheck(Healthcheck),
    /// `ONBUILD INSTRUCTION …`: the trigger text as written after
    /// `ONBUILD ` (stored in the image; parsed again in a child build).
    Onbuild(String),
    /// `COPY`.
    Copy(Copy),
    /// `ADD`.
    Add(Copy),
}

impl Instruction {
    /// The instruction's keyword, upper case (`RUN`, `COPY`, …).
    pub fn keyword(&self) -> &'static str {
        match self {
            Instruction::Run(_) => "RUN",
            Instruction::Cmd(_) => "CMD",
            Instruction::Entrypoint(_) => "ENTRYPOINT",
            Instruction::Env(_) => "ENV",
            Instruction::Arg(_) => "ARG",
            Instruction::Label(_) => "LABEL",
            Instruction::Maintainer(_) => "MAINTAINER",
            Instruction::Expose(_) => "EXPOSE",
            Instruction::Volume(_) => "VOLUME",
            Instruction::User(_) => "USER",
            Instruction::Workdir(_) => "WORKDIR",
            Instruction::Shell(_) => "SHELL",
            Instruction::StopSignal(_) => "STOPSIGNAL",
            Instruction::Healthcheck(_) => "HEALTHCHECK",
            Instruction::Onbuild(_) => "ONBUILD",
            Instruction::Copy(_) => "COPY",
            Instruction::Add(_) => "ADD",
        }
    }
}
