//! Build-time evaluation: the variables a step sees (the image's `ENV`
//! over the stage's `ARG`s), word expansion where Docker applies it, and
//! the image configuration changes of the metadata instructions.

use std::collections::BTreeMap;

use berth_types::image::{ContainerConfig, HealthConfig};

use super::error::{BuildError, at};
use crate::dockerfile::{Command, Healthcheck, shell};

/// Build arguments anyone may pass without an `ARG` (left out of the
/// history and the cache key, as Docker does).
pub const PROXY_ARGS: [&str; 8] = [
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
];

/// The variables of a step: the configuration's environment first, then
/// the stage's arguments.
pub struct Vars<'a> {
    /// `KEY=value` entries of the image being built.
    pub env: &'a [String],
    /// Declared arguments with their values (`None`: declared, unset).
    pub args: &'a BTreeMap<String, Option<String>>,
}

impl Vars<'_> {
    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<String> {
        for e in self.env.iter().rev() {
            if let Some((k, v)) = e.split_once('=')
                && k == name
            {
                return Some(v.to_owned());
            }
        }
        self.args.get(name).cloned().flatten()
    }

    /// Expands one word (quotes removed), naming the line on error.
    pub fn word(&self, w: &str, escape: char, line: usize) -> Result<String, BuildError> {
        shell::expand_word(w, escape, &|n| self.get(n)).map_err(|e| at(line, e.to_string()))
    }

    /// Expands a word into words (split on unquoted blanks).
    pub fn words(&self, w: &str, escape: char, line: usize) -> Result<Vec<String>, BuildError> {
        shell::expand_words(w, escape, &|n| self.get(n)).map_err(|e| at(line, e.to_string()))
    }

    /// The arguments a RUN sees as environment entries: those with a
    /// value that the image's environment does not set.
    pub fn run_env(&self) -> Vec<String> {
        self.args
            .iter()
            .filter_map(|(k, v)| Some((k, v.as_ref()?)))
            .filter(|(k, _)| {
                !self
                    .env
                    .iter()
                    .any(|e| e.split_once('=').is_some_and(|(n, _)| n == k.as_str()))
            })
            .map(|(k, v)| format!("{k}={v}"))
            .collect()
    }
}

/// Sets `KEY=value` in an environment list (replacing an earlier entry).
pub fn set_env(env: &mut Vec<String>, key: &str, value: &str) {
    let entry = format!("{key}={value}");
    match env
        .iter_mut()
        .find(|e| e.split_once('=').map_or(e.as_str(), |(k, _)| k) == key)
    {
        Some(e) => *e = entry,
        None => env.push(entry),
    }
}

/// A command as the image records it: exec form as is, shell form run by
/// `shell`.
pub fn argv(cmd: &Command, shell: &[String]) -> Vec<String> {
    match cmd {
        Command::Exec(v) => v.clone(),
        Command::Shell(s) => shell.iter().cloned().chain([s.clone()]).collect(),
    }
}

/// The shell of shell-form instructions (`SHELL`, or `/bin/sh -c`).
pub fn shell_of(cfg: &ContainerConfig) -> Vec<String> {
    if cfg.shell.is_empty() {
        vec!["/bin/sh".into(), "-c".into()]
    } else {
        cfg.shell.clone()
    }
}

/// Go's `%q` of a string slice (`["a" "b"]`), what Docker's history text
/// shows for commands.
pub fn go_quoted(v: &[String]) -> String {
    let parts: Vec<String> = v
        .iter()
        .map(|s| serde_json::to_string(s).unwrap_or_default())
        .collect();
    format!("[{}]", parts.join(" "))
}

fn nanos(d: Option<std::time::Duration>) -> i64 {
    d.map(|d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// `HEALTHCHECK` as the image records it.
pub fn health(h: &Healthcheck) -> HealthConfig {
    match h {
        Healthcheck::None => HealthConfig {
            test: vec!["NONE".into()],
            ..Default::default()
        },
        Healthcheck::Check {
            command,
            interval,
            timeout,
            start_period,
            start_interval,
            retries,
        } => {
            let test = match command {
                Command::Exec(v) => std::iter::once("CMD".to_owned())
                    .chain(v.iter().cloned())
                    .collect(),
                Command::Shell(s) => vec!["CMD-SHELL".into(), s.clone()],
            };
            HealthConfig {
                test,
                interval: nanos(*interval),
                timeout: nanos(*timeout),
                start_period: nanos(*start_period),
                start_interval: nanos(*start_interval),
                retries: i64::from(retries.unwrap_or(0)),
            }
        }
    }
}

/// Docker's signal check for `STOPSIGNAL` (a name or a number).
pub fn check_signal(s: &str, line: usize) -> Result<(), BuildError> {
    if s.parse::<berth_types::Signal>().is_ok() {
        Ok(())
    } else {
        Err(at(line, format!("Invalid signal: {s}")))
    }
}

/// `EXPOSE` words as image ports (`80/tcp`); ranges expand.
pub fn ports(words: &[String], line: usize) -> Result<Vec<String>, BuildError> {
    let mut out = Vec::new();
    for w in words {
        let (p, proto) = match w.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (w.as_str(), "tcp".to_owned()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            return Err(at(line, format!("invalid proto: {proto}")));
        }
        let bad = || at(line, format!("invalid containerPort: {p}"));
        let (lo, hi) = match p.split_once('-') {
            Some((a, b)) => (
                a.parse::<u16>().map_err(|_| bad())?,
                b.parse::<u16>().map_err(|_| bad())?,
            ),
            None => {
                let n = p.parse::<u16>().map_err(|_| bad())?;
                (n, n)
            }
        };
        if lo == 0 || hi < lo {
            return Err(bad());
        }
        for n in lo..=hi {
            out.push(format!("{n}/{proto}"));
        }
    }
    Ok(out)
}
