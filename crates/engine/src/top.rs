//! `docker top`: the host's `ps` (as dockerd runs it: `-ef` unless the
//! caller gives its own options) narrowed to the container's processes.
//! Nothing runs inside the container: `ps` runs on the host, is asked for
//! the container's pids only (`-q`), and its rows are filtered by those pids
//! again, so no other process of the host is ever shown.

use std::process::{Command, Stdio};

use crate::run::{Engine, Error, Result};

/// `ps`'s column titles and one row per process of the container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Top {
    /// Column titles (`UID PID PPID C STIME TTY TIME CMD` for `-ef`).
    pub titles: Vec<String>,
    /// The rows; the last column holds the rest of the line (the command
    /// with its arguments).
    pub processes: Vec<Vec<String>>,
}

/// dockerd's default `ps` options.
pub const DEFAULT_PS_ARGS: &str = "-ef";

/// Refuses options that rename a column to `PID` (the rows are matched by
/// that column), as dockerd does: `-o user=PID`.
pub fn check_ps_args(args: &str) -> Result<()> {
    let tokens: Vec<&str> = args.split_whitespace().collect();
    for (i, t) in tokens.iter().enumerate() {
        let Some((k, v)) = t.split_once('=') else {
            continue;
        };
        // `KEY= PID…` names the header in the next word
        let v = if v.is_empty() {
            tokens.get(i + 1).copied().unwrap_or("")
        } else {
            v
        };
        if v.starts_with("PID") && k != "pid" {
            return Err(Error::Invalid(format!(
                "specifying \"{k}={v}\" is not allowed"
            )));
        }
    }
    Ok(())
}

/// Parses `ps` output: the first line's words are the titles, the rows
/// whose `PID` is one of `pids` are kept (with the thread lines, `-`, that
/// follow a kept row, for `ps -m`).
pub fn parse_ps(output: &str, pids: &[i32]) -> Result<Top> {
    let mut lines = output.split('\n');
    let titles: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_owned)
        .collect();
    let Some(pid_at) = titles.iter().position(|t| t == "PID") else {
        return Err(Error::Internal(
            "Couldn't find PID field in ps output".into(),
        ));
    };
    let mut top = Top {
        titles,
        processes: Vec::new(),
    };
    let mut kept_last = false;
    for line in lines {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let Some(pid) = fields.get(pid_at) else {
            // an empty or short line
            continue;
        };
        if *pid == "-" {
            if kept_last {
                top.processes.push(row(&fields, top.titles.len()));
            }
            continue;
        }
        let p: i32 = pid
            .parse()
            .map_err(|_| Error::Internal(format!("Unexpected pid '{pid}': invalid syntax")))?;
        kept_last = pids.contains(&p);
        if kept_last {
            top.processes.push(row(&fields, top.titles.len()));
        }
    }
    Ok(top)
}

/// A row with as many cells as there are titles: the last one joins the
/// rest of the words, missing ones are empty.
fn row(fields: &[&str], columns: usize) -> Vec<String> {
    let columns = columns.max(1);
    let mut out: Vec<String> = fields
        .iter()
        .take(columns - 1)
        .map(|f| (*f).to_owned())
        .collect();
    out.resize(columns - 1, String::new());
    out.push(fields.get(columns - 1..).unwrap_or_default().join(" "));
    out
}

/// Runs the host's `ps` with `args`; its first line of complaint on failure.
fn run_ps(args: &[&str]) -> std::result::Result<String, String> {
    let out = Command::new("ps")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| e.to_string())?;
    if out.status.success() {
        return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
    }
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap_or("").trim();
    Err(if first.is_empty() {
        format!("ps exited with {}", out.status)
    } else {
        first.to_owned()
    })
}

impl Engine {
    /// `docker top`: `ps_args` (`None` or empty: `-ef`) for the processes
    /// of a running container.
    pub fn top(&self, key: &str, ps_args: Option<&str>) -> Result<Top> {
        let args = ps_args
            .filter(|a| !a.trim().is_empty())
            .unwrap_or(DEFAULT_PS_ARGS);
        check_ps_args(args)?;
        let pids = self.pids(key)?;
        // dockerd splits on single spaces
        let mut argv: Vec<&str> = args.split(' ').collect();
        let list = pids
            .iter()
            .map(i32::to_string)
            .collect::<Vec<_>>()
            .join(",");
        let quick = format!("-q{list}");
        argv.push(&quick);
        let out = match run_ps(&argv) {
            Ok(o) => o,
            // some options (`f`) do not go with -q: all processes, filtered below
            Err(_) => {
                argv.pop();
                run_ps(&argv).map_err(|e| Error::Internal(format!("ps: {e}")))?
            }
        };
        parse_ps(&out, &pids)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EF: &str = "UID          PID    PPID  C STIME TTY          TIME CMD\n\
        root        4242    4200  0 20:23 ?        00:00:00 sleep 60\n\
        root           1       0  0 19:00 ?        00:00:01 /sbin/init splash\n\
        nobody      4243    4242  0 20:23 pts/0    00:00:00 sh -c echo   a  b\n";

    #[test]
    fn rows_of_the_containers_pids_only() {
        let t = parse_ps(EF, &[4242, 4243]).unwrap();
        assert_eq!(
            t.titles,
            ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        );
        assert_eq!(t.processes.len(), 2, "the host's init is not shown");
        assert_eq!(t.processes[0][7], "sleep 60");
        assert_eq!(t.processes[1][0], "nobody");
        assert_eq!(t.processes[1][7], "sh -c echo a b");
        let t = parse_ps("PID COMMAND\n  10 sleep\n  11 sh\n", &[11]).unwrap();
        assert_eq!(t.processes, [["11", "sh"]]);
    }

    #[test]
    fn thread_lines_follow_their_process() {
        let out = "PID TID CMD\n10 - a\n- 10 -\n11 - b\n- 11 -\n";
        let t = parse_ps(out, &[10]).unwrap();
        assert_eq!(t.processes, [["10", "-", "a"], ["-", "10", "-"]]);
    }

    #[test]
    fn hostile_output_is_an_error_or_skipped_never_a_panic() {
        assert!(parse_ps("", &[1]).is_err(), "no titles");
        assert!(parse_ps("UID CMD\n0 x\n", &[1]).is_err(), "no PID column");
        assert!(
            parse_ps("PID CMD\nabc x\n", &[1]).is_err(),
            "a PID that is not a number"
        );
        assert!(parse_ps("PID CMD\n99999999999999999999 x\n", &[1]).is_err());
        // short, empty and odd lines
        let t = parse_ps("UID PID CMD\n\n0\n\n  \n0 7\n\u{0} 7 \u{1b}[2J\n", &[7]).unwrap();
        assert_eq!(t.processes.len(), 2);
        assert_eq!(t.processes[0], ["0", "7", ""], "a missing command is empty");
        assert_eq!(t.processes[1], ["\u{0}", "7", "\u{1b}[2J"]);
        let t = parse_ps("PID\n7 a b\n", &[7]).unwrap();
        assert_eq!(t.processes, [["7 a b"]], "one column holds the whole line");
    }

    #[test]
    fn ps_args_may_not_rename_a_column_to_pid() {
        assert!(check_ps_args("-ef").is_ok());
        assert!(check_ps_args("-o pid,comm").is_ok());
        assert!(check_ps_args("-o pid=PID,comm").is_ok());
        let e = check_ps_args("-o user=PID").unwrap_err().to_string();
        assert_eq!(e, "specifying \"user=PID\" is not allowed");
        assert!(check_ps_args("-o comm= PIDX").is_err());
        assert!(check_ps_args("=PID").is_err());
    }
}
