//! The Dockerfile parser: text to [`Dockerfile`], with Docker's rules and
//! error messages (`dockerfile parse error on line 3: unknown instruction:
//! RUNN (did you mean RUN?)`). Never panics, whatever the input.

use super::ast::*;
use super::lines::{self, Node, chomp, parse_heredoc};
use super::words::{
    FlagKind, Flags, parse_interval, parse_json, parse_words, split_command, suggest, ws_split,
};

/// A parse error: the file, the line and the text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("dockerfile parse error on line {line}: {message}")]
pub struct ParseError {
    /// The file name as the user gave it.
    pub file: String,
    /// 1-based line.
    pub line: usize,
    /// The offending line's text (an instruction's, continuations joined).
    pub text: String,
    /// What is wrong.
    pub message: String,
}

/// The instruction keywords Docker knows (upper case).
const KEYWORDS: [&str; 18] = [
    "ADD",
    "ARG",
    "CMD",
    "COPY",
    "ENTRYPOINT",
    "ENV",
    "EXPOSE",
    "FROM",
    "HEALTHCHECK",
    "LABEL",
    "MAINTAINER",
    "ONBUILD",
    "RUN",
    "SHELL",
    "STOPSIGNAL",
    "USER",
    "VOLUME",
    "WORKDIR",
];

/// Parses a whole Dockerfile.
pub fn parse(file: &str, text: &str) -> Result<Dockerfile, ParseError> {
    let lines = lines::split(text, '\\').map_err(|e| ParseError {
        file: file.into(),
        line: e.line,
        text: e.text,
        message: e.message,
    })?;
    let escape = lines.directives.escape;
    let mut df = Dockerfile {
        directives: lines.directives.clone(),
        meta_args: Vec::new(),
        stages: Vec::new(),
        warnings: Vec::new(),
    };
    if let Some(s) = &df.directives.syntax {
        df.warnings.push(format!(
            "the '# syntax={s}' directive is ignored: berth builds with its own Dockerfile frontend"
        ));
    }
    df.warnings.extend(lines.warnings);
    if lines.nodes.is_empty() {
        return Err(ParseError {
            file: file.into(),
            line: text.lines().count().max(1),
            text: String::new(),
            message: "file with no instructions".into(),
        });
    }
    for node in &lines.nodes {
        let err = |message: String| ParseError {
            file: file.into(),
            line: node.line,
            text: node.original.clone(),
            message,
        };
        let parsed = parse_node(node, escape, &mut df.warnings).map_err(err)?;
        match parsed {
            Parsed::From(from) => df.stages.push(Stage {
                from: located(node, from),
                instructions: Vec::new(),
            }),
            Parsed::Instruction(ins) => match df.stages.last_mut() {
                Some(stage) => stage.instructions.push(located(node, ins)),
                None => match ins {
                    Instruction::Arg(decls) => df.meta_args.push(located(node, decls)),
                    _ => return Err(err("no build stage in current context".into())),
                },
            },
        }
    }
    Ok(df)
}

/// Parses one `ONBUILD` trigger (as stored in an image: the instruction
/// text, followed by its here-document bodies if any) for a child build.
/// `FROM`, `MAINTAINER` and `ONBUILD` are not allowed as triggers. Errors
/// carry an empty file name and lines counted within `text`.
pub fn parse_instruction(text: &str, escape: char) -> Result<Located<Instruction>, ParseError> {
    let fail = |line: usize, text: String, message: String| ParseError {
        file: String::new(),
        line,
        text,
        message,
    };
    let lines = lines::split(text, escape).map_err(|e| fail(e.line, e.text, e.message))?;
    let [node] = lines.nodes.as_slice() else {
        return Err(fail(
            1,
            text.lines().next().unwrap_or_default().to_string(),
            "onbuild trigger should be a single expression".into(),
        ));
    };
    let err = |message: String| fail(node.line, node.original.clone(), message);
    if let Some(msg) = forbidden_trigger(&node.keyword) {
        return Err(err(msg));
    }
    let mut warnings = Vec::new();
    match parse_node(node, lines.directives.escape, &mut warnings).map_err(err)? {
        Parsed::Instruction(ins) => Ok(located(node, ins)),
        Parsed::From(_) => Err(err("FROM isn't allowed as an ONBUILD trigger".into())),
    }
}

fn forbidden_trigger(keyword: &str) -> Option<String> {
    let k = keyword.to_uppercase();
    match k.as_str() {
        "ONBUILD" => Some("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed".into()),
        "MAINTAINER" | "FROM" => Some(format!("{k} isn't allowed as an ONBUILD trigger")),
        _ => None,
    }
}

fn located<T>(node: &Node, value: T) -> Located<T> {
    Located {
        line: node.line,
        end_line: node.end_line,
        original: node.original.clone(),
        value,
    }
}

enum Parsed {
    From(From),
    Instruction(Instruction),
}

fn at_least_one(k: &str) -> String {
    format!("{k} requires at least one argument")
}

fn exactly_one(k: &str) -> String {
    format!("{k} requires exactly one argument")
}

fn no_flags(node: &Node) -> Result<(), String> {
    Flags::parse(&node.flags, &[]).map(|_| ())
}

/// Exec form, shell form, or nothing (no arguments).
fn maybe_json(args: &str) -> Result<Option<Command>, String> {
    if args.is_empty() {
        return Ok(None);
    }
    Ok(Some(match parse_json(args)? {
        Some(v) => Command::Exec(v),
        None => Command::Shell(args.to_string()),
    }))
}

/// A JSON array, or whitespace-separated words.
fn maybe_json_list(args: &str) -> Result<(Vec<String>, bool), String> {
    Ok(match parse_json(args)? {
        Some(v) => (v, true),
        None => (ws_split(args), false),
    })
}

fn parse_node(node: &Node, escape: char, warnings: &mut Vec<String>) -> Result<Parsed, String> {
    let args = node.args.as_str();
    let ins = match node.keyword.to_lowercase().as_str() {
        "from" => return parse_from(node).map(Parsed::From),
        "arg" => {
            // Docker does not check ARG's flags.
            let words = parse_words(args, escape);
            if words.is_empty() {
                return Err(at_least_one("ARG"));
            }
            let mut decls = Vec::new();
            for w in words {
                let decl = match w.split_once('=') {
                    Some(("", _)) => return Err("ARG names can not be blank".into()),
                    Some((n, v)) => ArgDecl {
                        name: n.into(),
                        default: Some(v.into()),
                    },
                    None => ArgDecl {
                        name: w,
                        default: None,
                    },
                };
                decls.push(decl);
            }
            Instruction::Arg(decls)
        }
        "env" => Instruction::Env(name_values(node, "ENV", escape)?),
        "label" => Instruction::Label(name_values(node, "LABEL", escape)?),
        "maintainer" => {
            if args.is_empty() {
                return Err(exactly_one("MAINTAINER"));
            }
            no_flags(node)?;
            warnings.push(format!(
                "line {}: the MAINTAINER instruction is deprecated, use a label instead to define an image author",
                node.line
            ));
            Instruction::Maintainer(args.into())
        }
        "copy" => Instruction::Copy(parse_copy(node, "COPY", escape)?),
        "add" => {
            let copy = parse_copy(node, "ADD", escape)?;
            if node.flags.iter().any(|f| f.starts_with("--unpack")) {
                warnings.push(format!(
                    "line {}: ADD --unpack is not supported by berth and was ignored",
                    node.line
                ));
            }
            Instruction::Add(copy)
        }
        "onbuild" => {
            if args.is_empty() {
                return Err(at_least_one("ONBUILD"));
            }
            no_flags(node)?;
            let (child, _, child_args) = split_command(args, escape);
            if let Some(msg) = forbidden_trigger(&child) {
                return Err(msg);
            }
            if matches!(
                child.to_lowercase().as_str(),
                "add" | "cmd" | "copy" | "entrypoint" | "run" | "shell" | "volume"
            ) {
                parse_json(&child_args)?;
            }
            Instruction::Onbuild(onbuild_expression(node))
        }
        "workdir" => {
            if args.is_empty() {
                return Err(exactly_one("WORKDIR"));
            }
            no_flags(node)?;
            Instruction::Workdir(args.into())
        }
        "run" => Instruction::Run(parse_run(node)?),
        "cmd" => {
            no_flags(node)?;
            Instruction::Cmd(maybe_json(args)?.unwrap_or(Command::Shell(String::new())))
        }
        "entrypoint" => {
            no_flags(node)?;
            Instruction::Entrypoint(maybe_json(args)?.unwrap_or(Command::Shell(String::new())))
        }
        "healthcheck" => Instruction::Healthcheck(parse_healthcheck(node)?),
        "expose" => {
            let ports = ws_split(args);
            if ports.is_empty() {
                return Err(at_least_one("EXPOSE"));
            }
            no_flags(node)?;
            Instruction::Expose(ports)
        }
        "user" => {
            if args.is_empty() {
                return Err(exactly_one("USER"));
            }
            no_flags(node)?;
            Instruction::User(args.into())
        }
        "volume" => {
            let (list, _) = maybe_json_list(args)?;
            if list.is_empty() {
                return Err(at_least_one("VOLUME"));
            }
            no_flags(node)?;
            let mut vols = Vec::new();
            for v in list {
                let v = v.trim();
                if v.is_empty() {
                    return Err("VOLUME specified can not be an empty string".into());
                }
                vols.push(v.to_string());
            }
            Instruction::Volume(vols)
        }
        "stopsignal" => {
            // Docker does not check STOPSIGNAL's flags.
            if args.is_empty() {
                return Err(exactly_one("STOPSIGNAL"));
            }
            Instruction::StopSignal(args.into())
        }
        "shell" => {
            no_flags(node)?;
            match maybe_json(args)? {
                None => return Err(at_least_one("SHELL")),
                Some(Command::Exec(v)) if v.is_empty() => return Err(at_least_one("SHELL")),
                Some(Command::Exec(v)) => Instruction::Shell(v),
                Some(Command::Shell(_)) => {
                    return Err("SHELL requires the arguments to be in JSON form".into());
                }
            }
        }
        _ => {
            let mut msg = format!("unknown instruction: {}", node.keyword);
            if let Some(s) = suggest(&node.keyword, &KEYWORDS, false) {
                msg.push_str(&format!(" (did you mean {s}?)"));
            }
            return Err(msg);
        }
    };
    Ok(Parsed::Instruction(ins))
}

fn parse_from(node: &Node) -> Result<From, String> {
    let args = ws_split(&node.args);
    let name = match args.as_slice() {
        [_, as_, name] if as_.eq_ignore_ascii_case("as") => {
            let lower = name.to_lowercase();
            if !valid_stage_name(&lower) {
                return Err(format!(
                    "invalid name for build stage: {name:?}, name can't start with a number or contain symbols"
                ));
            }
            Some(lower)
        }
        [_] => None,
        _ => return Err("FROM requires either one or three arguments".into()),
    };
    let flags = Flags::parse(&node.flags, &[("platform", FlagKind::String)])?;
    Ok(From {
        image: args.first().cloned().unwrap_or_default(),
        name,
        platform: flags.string("platform"),
    })
}

/// `^[a-z][a-z0-9-_.]*$`.
fn valid_stage_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "-_.".contains(c))
}

/// `ENV` / `LABEL`: `k v` (one pair, the rest of the line is the value) or
/// `k=v …` (quote-aware words, quotes kept).
fn name_values(node: &Node, keyword: &str, escape: char) -> Result<Vec<(String, String)>, String> {
    let args = node.args.as_str();
    let words = parse_words(args, escape);
    let pairs = match words.first() {
        None => return Err(at_least_one(keyword)),
        Some(first) if !first.contains('=') => {
            let Some((k, v)) = args.split_once(super::words::is_ws) else {
                return Err(format!("{keyword} must have two arguments"));
            };
            vec![(
                k.to_string(),
                v.trim_start_matches(super::words::is_ws).to_string(),
            )]
        }
        Some(_) => {
            let mut pairs = Vec::new();
            for w in &words {
                let Some((k, v)) = w.split_once('=') else {
                    return Err(format!(
                        "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
                    ));
                };
                pairs.push((k.to_string(), v.to_string()));
            }
            pairs
        }
    };
    Flags::parse(&node.flags, &[])?;
    if pairs.iter().any(|(k, _)| k.is_empty()) {
        return Err(format!("{keyword} names can not be blank"));
    }
    Ok(pairs)
}

fn heredoc(raw: &lines::RawHeredoc) -> Heredoc {
    Heredoc {
        name: raw.name.clone(),
        content: if raw.chomp {
            chomp(&raw.content)
        } else {
            raw.content.clone()
        },
        expand: raw.expand,
    }
}

fn parse_copy(node: &Node, keyword: &str, escape: char) -> Result<Copy, String> {
    let (mut list, _) = maybe_json_list(&node.args)?;
    if list.len() < 2 {
        return Err(format!(
            "{keyword} requires at least two arguments, but only one was provided. Destination could not be determined"
        ));
    }
    let flags = if keyword == "ADD" {
        Flags::parse(
            &node.flags,
            &[
                ("chown", FlagKind::String),
                ("chmod", FlagKind::String),
                ("link", FlagKind::Bool),
                ("keep-git-dir", FlagKind::Bool),
                ("checksum", FlagKind::String),
                ("unpack", FlagKind::Bool),
                ("exclude", FlagKind::Strings),
            ],
        )?
    } else {
        Flags::parse(
            &node.flags,
            &[
                ("chown", FlagKind::String),
                ("from", FlagKind::String),
                ("chmod", FlagKind::String),
                ("link", FlagKind::Bool),
                ("exclude", FlagKind::Strings),
                ("parents", FlagKind::Bool),
            ],
        )?
    };
    let dest = list.pop().unwrap_or_default();
    if parse_heredoc(&dest, escape)?.is_some() {
        return Err(format!(
            "{keyword} cannot accept a heredoc as a destination"
        ));
    }
    let mut heredocs = Vec::new();
    for src in &list {
        if let Some(doc) = parse_heredoc(src, escape)? {
            let content = node
                .heredocs
                .iter()
                .find(|h| h.name == doc.name)
                .map(|h| h.content.clone())
                .unwrap_or_default();
            heredocs.push(heredoc(&lines::RawHeredoc { content, ..doc }));
        }
    }
    Ok(Copy {
        sources: list,
        dest,
        heredocs,
        from: flags.string("from"),
        chown: flags.string("chown"),
        chmod: flags.string("chmod"),
        link: flags.bool("link"),
        parents: flags.bool("parents"),
        exclude: flags.all("exclude"),
        checksum: flags.string("checksum"),
        keep_git_dir: flags.bool("keep-git-dir"),
    })
}

fn parse_run(node: &Node) -> Result<Run, String> {
    let flags = Flags::parse(
        &node.flags,
        &[
            ("mount", FlagKind::Strings),
            ("network", FlagKind::String),
            ("security", FlagKind::String),
        ],
    )?;
    let network = flags.string("network");
    if let Some(n) = &network
        && !matches!(n.as_str(), "default" | "none" | "host")
    {
        return Err(format!("invalid network mode {n:?}"));
    }
    let security = flags.string("security");
    if let Some(s) = &security
        && !matches!(s.as_str(), "sandbox" | "insecure")
    {
        return Err(format!("security {s:?} is not valid"));
    }
    let command = match maybe_json(&node.args)? {
        None => return Err(at_least_one("RUN")),
        Some(Command::Exec(v)) if v.is_empty() => return Err(at_least_one("RUN")),
        Some(c) => c,
    };
    Ok(Run {
        command,
        heredocs: node.heredocs.iter().map(heredoc).collect(),
        mounts: flags.all("mount"),
        network,
        security,
    })
}

fn parse_healthcheck(node: &Node) -> Result<Healthcheck, String> {
    let args = node.args.as_str();
    if args.is_empty() {
        return Err(at_least_one("HEALTHCHECK"));
    }
    let (typ, rest) = match args.split_once(char::is_whitespace) {
        Some((t, r)) => (t, r.trim_start()),
        None => (args, ""),
    };
    let command = maybe_json(rest)?;
    let typ = typ.to_uppercase();
    if typ == "NONE" {
        // Docker does not look at the flags of HEALTHCHECK NONE.
        if command.is_some() {
            return Err("HEALTHCHECK NONE takes no arguments".into());
        }
        return Ok(Healthcheck::None);
    }
    let flags = Flags::parse(
        &node.flags,
        &[
            ("interval", FlagKind::String),
            ("timeout", FlagKind::String),
            ("start-period", FlagKind::String),
            ("start-interval", FlagKind::String),
            ("retries", FlagKind::String),
        ],
    )?;
    if typ != "CMD" {
        return Err(format!("Unknown type {typ:?} in HEALTHCHECK (try CMD)"));
    }
    let command = match command {
        None => return Err("Missing command after HEALTHCHECK CMD".into()),
        Some(Command::Exec(v)) if v.is_empty() => {
            return Err("Missing command after HEALTHCHECK CMD".into());
        }
        Some(c) => c,
    };
    let interval = parse_interval("interval", flags.string("interval"))?;
    let timeout = parse_interval("timeout", flags.string("timeout"))?;
    let start_period = parse_interval("start-period", flags.string("start-period"))?;
    let start_interval = parse_interval("start-interval", flags.string("start-interval"))?;
    let retries = match flags.string("retries").filter(|r| !r.is_empty()) {
        None => None,
        Some(r) => {
            let n: i32 = r.parse().map_err(|_| {
                let digits = r.strip_prefix(['+', '-']).unwrap_or(&r);
                let why = if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
                    "value out of range"
                } else {
                    "invalid syntax"
                };
                format!("strconv.ParseInt: parsing {r:?}: {why}")
            })?;
            if n < 0 {
                return Err(format!("--retries cannot be negative ({n})"));
            }
            Some(n.unsigned_abs())
        }
    };
    Ok(Healthcheck::Check {
        command,
        interval,
        timeout,
        start_period,
        start_interval,
        retries,
    })
}

/// The trigger as stored: the text after `ONBUILD`, then each
/// here-document's body and delimiter.
fn onbuild_expression(node: &Node) -> String {
    let o = node.original.trim_start();
    let after = o.get(..7).filter(|k| k.eq_ignore_ascii_case("onbuild"));
    let mut expr = match after {
        Some(_) => o.get(7..).unwrap_or_default().trim_start().to_string(),
        None => o.to_string(),
    };
    for h in &node.heredocs {
        expr.push('\n');
        expr.push_str(&h.content);
        expr.push_str(&h.name);
    }
    expr
}

#[cfg(test)]
#[path = "parse_tests.rs"]
mod tests;
