//! Reading `/proc/<pid>/stat`, and checked writes into procfs.

use std::fs;
use std::io;
use std::os::fd::AsFd;

use rustix::fs::{Mode, OFlags, ResolveFlags};

/// The fields of `/proc/<pid>/stat` berth needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ProcStat {
    /// Process state (`R`, `S`, `Z`, ...).
    pub state: char,
    /// Parent pid.
    pub ppid: i32,
    /// Start time in clock ticks since boot: with the pid, it identifies a
    /// process even after the pid is reused.
    pub start_time: u64,
}

/// Reads `/proc/<pid>/stat`; `None` if the process does not exist.
pub fn stat(pid: i32) -> Option<ProcStat> {
    let s = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&s)
}

/// Parses the text of a stat file (the command name may contain spaces and
/// parentheses; the fields after its last `)` are plain).
pub fn parse_stat(s: &str) -> Option<ProcStat> {
    let rest = s.rsplit_once(')')?.1;
    let mut f = rest.split_ascii_whitespace();
    let state = f.next()?.chars().next()?;
    let ppid = f.next()?.parse().ok()?;
    // Fields 5..=21 precede starttime (field 22): skip 18 more.
    let start_time = f.nth(17)?.parse().ok()?;
    Some(ProcStat {
        state,
        ppid,
        start_time,
    })
}

/// Whether `pid` is the process that started at `start_time` and has not
/// exited (a zombie counts as exited).
pub fn alive(pid: i32, start_time: u64) -> bool {
    pid > 0
        && stat(pid)
            .is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X' | 'x'))
}

/// The boot id, which tells state written before a reboot from current
/// state (`/run` is on disk on some hosts).
pub fn boot_id() -> String {
    fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

const PROC_SUPER_MAGIC: i64 = 0x9fa0;

/// Writes `value` to `/proc/<rel>` after making sure the file really is a
/// procfs file reached without symlinks (a container could otherwise
/// redirect the write with a bind mount or symlink; CVE-2019-19921 class).
pub fn write_checked(rel: &str, value: &str) -> io::Result<()> {
    let proc = rustix::fs::open(
        "/proc",
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    check_procfs(&proc)?;
    let fd = rustix::fs::openat2(
        &proc,
        rel,
        OFlags::WRONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_SYMLINKS | ResolveFlags::NO_XDEV,
    )?;
    check_procfs(&fd)?;
    rustix::io::write(&fd, value.as_bytes())?;
    Ok(())
}

fn check_procfs(fd: impl AsFd) -> io::Result<()> {
    if !is_procfs(fd)? {
        return Err(io::Error::other("not on procfs (refusing to write)"));
    }
    Ok(())
}

/// Whether the file behind `fd` is on a procfs.
pub fn is_procfs(fd: impl AsFd) -> io::Result<bool> {
    // (f_type's integer type differs between architectures)
    #[allow(clippy::unnecessary_cast)]
    Ok(rustix::fs::fstatfs(fd)?.f_type as i64 == PROC_SUPER_MAGIC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_odd_command_names() {
        let s = "42 (a) b (c) S 1 42 42 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 12345 0 0";
        let st = parse_stat(s).unwrap();
        assert_eq!(st.state, 'S');
        assert_eq!(st.ppid, 1);
        assert_eq!(st.start_time, 12345);
    }

    #[test]
    fn this_process_is_alive() {
        let me = std::process::id() as i32;
        let st = stat(me).unwrap();
        assert!(alive(me, st.start_time));
        assert!(!alive(me, st.start_time + 1));
        assert!(!alive(0, 0));
    }
}
