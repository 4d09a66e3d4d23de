//! Who owns a temporary file or directory (`content/ingest/tmp-…`,
//! `snapshots/tmp-…`): its name starts with `tmp-p<pid>-s<start time>-`,
//! so whoever opens the root next can tell what a killed process left
//! (removed) from what a live one is writing (left alone), even after the
//! pid was reused — the engine marks containers being created the same
//! way. The start time is in clock ticks since boot (`/proc/<pid>/stat`).

use std::sync::OnceLock;

/// The prefix of this process's temporary names.
pub(crate) fn prefix() -> &'static str {
    static PREFIX: OnceLock<String> = OnceLock::new();
    PREFIX.get_or_init(|| {
        let pid = std::process::id();
        let start = berth_runtime::procfs::stat(pid as i32).map_or(0, |s| s.start_time);
        format!("tmp-p{pid}-s{start}-")
    })
}

/// Whether a temporary name's owner is gone: `Some(true)` when the name
/// is `tmp-p<pid>-s<start>-…` and that process no longer runs, or is an
/// older berth's `tmp-<pid>-…` and no process has that pid; `None` when the
/// name is not temporary.
pub(crate) fn owner_gone(name: &str) -> Option<bool> {
    if let Some((pid, start)) = marked(name) {
        return Some(!berth_runtime::procfs::alive(pid, start));
    }
    // before owners were marked: only the pid (which may have been reused)
    let (pid, _) = name.strip_prefix("tmp-")?.split_once('-')?;
    let pid: i32 = pid.parse().ok().filter(|p| *p > 0)?;
    Some(berth_runtime::procfs::stat(pid).is_none_or(|s| matches!(s.state, 'Z' | 'X' | 'x')))
}

/// The pid and start time in a marked name.
fn marked(name: &str) -> Option<(i32, u64)> {
    let rest = name.strip_prefix("tmp-p")?;
    let (pid, rest) = rest.split_once("-s")?;
    let (start, _) = rest.split_once('-')?;
    Some((pid.parse().ok()?, start.parse().ok()?))
}

/// Whether a name carries its owner's pid and start time.
pub(crate) fn is_marked(name: &str) -> bool {
    marked(name).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_live_and_dead_owners() {
        let mine = format!("{}1234", prefix());
        assert_eq!(owner_gone(&mine), Some(false), "{mine}");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert_eq!(owner_gone(&format!("tmp-p{pid}-s1-x")), Some(true));
        // this process's pid with another start time: a reused pid
        let me = std::process::id();
        assert_eq!(owner_gone(&format!("tmp-p{me}-s1-x")), Some(true));
        assert!(is_marked(&mine) && !is_marked("tmp-1-2"));
        // an older berth's names: the pid alone
        assert_eq!(owner_gone(&format!("tmp-{pid}-99")), Some(true));
        assert_eq!(owner_gone(&format!("tmp-{me}-abcdef012345-0")), Some(false));
        for other in ["abcdef", "tmp-px-s1-", "tmp-x-1", "0123456789ab", "empty"] {
            assert_eq!(owner_gone(other), None, "{other}");
        }
    }
}
